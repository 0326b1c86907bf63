"""Emulators of the services lakegate talks to, for the demo and the tests.

They follow shared/reference/: where the real service behaves differently, the emulator is
wrong. Nothing in the gateway imports them; only the CLI and the tests do.
"""
