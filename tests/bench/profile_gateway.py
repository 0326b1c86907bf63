"""Where the gateway's CPU goes under bench_gateway's load: py-spy samples of each phase.

    .venv/bin/python tests/bench/profile_gateway.py [--top 15] [bench_gateway's options]
        [--keep DIR]

Runs the same stack and the same load as ``bench_gateway.py`` (and prints its report), while
``py-spy record`` samples the gateway process during the "gateway submit" and "gateway get"
phases (py-spy must be installed: ``.venv/bin/pip install py-spy``; it attaches with ptrace,
and ``--nonblocking`` keeps it from pausing the gateway). For each phase it prints the
functions with the most samples on top of the stack (self) and anywhere in it (total), as a
share of the phase's samples. By default only the thread holding the GIL is sampled: the
Python work, which is nearly all of the gateway's CPU; ``--all-threads`` samples every thread
py-spy thinks is running, which counts the ledger thread while it waits in fsync (in
``atomic``'s COMMIT) and SQLite's own work, which runs without the GIL. ``--keep DIR`` leaves
the raw collapsed stacks there (flamegraph.pl reads them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from _stack import Stack
from bench_gateway import PhaseHook, Variant, arguments, bench, report

PROFILED = ("gateway submit", "gateway get")
RATE = 250  # samples per second


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(found, os.X_OK):
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


@contextlib.contextmanager
def sampled(pid: int, out: Path, gil: bool) -> Iterator[None]:
    """py-spy recording ``pid`` into ``out`` (collapsed stacks) for the duration of the block."""
    command = [py_spy(), "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
               "--rate", str(RATE), "--nolineno", "--nonblocking"]  # fmt: skip
    if gil:
        command.append("--gil")
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        _, err = spy.communicate(timeout=60)
        if not out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")


def top(collapsed: Path, n: int) -> list[str]:
    """The ``n`` functions with the most self and total samples in a collapsed-stack file."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        weight = int(count)
        samples += weight
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight
    if not samples:
        return ["  no samples"]
    lines = [f"  {samples} samples at {RATE}/s ({samples / RATE:.1f} s of CPU)", "  self:"]
    lines += [f"    {c / samples:6.1%}  {f}" for f, c in own.most_common(n)]
    lines.append("  total (the function and what it called), the gateway's and its libraries':")
    lines += [
        f"    {c / samples:6.1%}  {f}" for f, c in total.most_common() if _ours_or_a_library(f)
    ][:n]  # fmt: skip
    return lines


# Thread roots, the event loop and the command line are in nearly every stack.
_ROOTS = ("gateway/__main__.py", "gateway/cli/", "asyncio/", "concurrent/", "<frozen")


def _ours_or_a_library(frame: str) -> bool:
    """A frame of a file in a package (not a stdlib module at the top level), not a root."""
    where = frame.rpartition("(")[2]
    return "/" in where and not where.startswith(_ROOTS) and frame != "run (gateway/serving.py)"


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--all-threads", action="store_true",
        help="sample every running thread, not only the one holding the GIL",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, default=None, help="leave the raw stacks here")
    args = parser.parse_args()
    py_spy()
    outdir = args.keep or Path(tempfile.mkdtemp(prefix="lakegate-profile-"))
    outdir.mkdir(parents=True, exist_ok=True)
    files = {name: outdir / f"{name.replace(' ', '-')}.txt" for name in PROFILED}

    def hook(stack: Stack) -> PhaseHook:
        def around(name: str) -> contextlib.AbstractContextManager[object]:
            if name not in files:
                return contextlib.nullcontext()
            return sampled(stack.gateway_pid, files[name], not args.all_threads)

        return around

    variant = Variant("ledger on disk (temporary directory), sampled by py-spy", None)
    bench(args, variant, hook)
    report(variant)
    for name, path in files.items():
        print(f"-- profile of the gateway during '{name}'")
        print("\n".join(top(path, args.top)))
    if args.keep is None:
        shutil.rmtree(outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
