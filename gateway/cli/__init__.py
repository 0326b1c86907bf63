"""The ``lakegate`` command, and the REST client it talks to the gateway with.

main.py        the parser: serve, demo, check-config, emulator, and the client commands
commands.py    submit, get, cancel, runs: running them, exit codes, what they print
invocation.py  what a command runs with, read before the loop (URL, namespace, token, body)
output.py      how runs look on a terminal (pure, but for the live state line)
client.py      LakegateClient: an async client of the /v1 API (also for tests, benchmarks)
retry.py       the client's declared retry policy, honouring Retry-After
errors.py      the client's errors
"""

from gateway.cli.main import main

__all__ = ["main"]
