"""Every secret lakegate holds, by value, so that text quoting one can be scrubbed of it.

Patterns (``gateway.logs``) catch what looks like a credential; this registry catches what *is*
one, whatever it looks like: an opaque client secret an upstream error body echoes, a PAT
inside a Kubernetes status message. Whoever reads or receives a secret (settings, a Secret, a
token file, a token endpoint, TokenRequest, an authenticated caller's bearer token) calls
``remember``; ``scrub`` replaces every remembered value in a text.

It stays cheap: the values live in a bounded LRU (the oldest forgotten first), and one compiled
alternation, longest value first, is rebuilt lazily on the first ``scrub`` after the set
changed. Values shorter than ``MIN_CHARS`` are not remembered: masking them would mangle prose.
This module imports nothing of lakegate's, so every layer may feed it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

MASK = "[redacted]"
MIN_CHARS = 8
MAX_VALUES = 10_000


class SecretRegistry:
    """A bounded set of secret values and the one regex that finds any of them."""

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self._max = max_values
        self._values: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def remember(self, value: str | None) -> None:
        """Hold ``value`` (when it is long enough to be a secret); a known value is refreshed."""
        if value is None or len(value) < MIN_CHARS:
            return
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                return
            self._values[value] = None
            while len(self._values) > self._max:
                self._values.popitem(last=False)
            self._pattern = None

    def scrub(self, text: str) -> str:
        """``text`` with every remembered value replaced by ``MASK``."""
        if not self._values or not text:
            return text
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                ordered = sorted(self._values, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return pattern.sub(MASK, text)

    def forget_all(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None


REGISTRY = SecretRegistry()


def remember(value: str | None) -> None:
    """Register a secret value with the process-wide registry."""
    REGISTRY.remember(value)


def scrub(text: str) -> str:
    """Replace every registered secret value in ``text``."""
    return REGISTRY.scrub(text)
