"""An injectable clock: real time plus an offset that tests and the admin API can advance."""

from __future__ import annotations

import time


class Clock:
    """Wall and monotonic time, shifted by ``advance``; never goes backwards."""

    def __init__(self, *, start_offset: float = 0.0) -> None:
        self._offset = start_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> float:
        """Seconds since the epoch, as the emulated service sees it."""
        return time.time() + self._offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def monotonic(self) -> float:
        return time.monotonic() + self._offset
