"""Every secret lakegate holds, by value, so that text quoting one can be scrubbed of it.

Patterns (``gateway.logs``) catch what looks like a credential; this registry catches what *is*
one, whatever it looks like: an opaque client secret an upstream error body echoes, a PAT
inside a Kubernetes status message. Whoever reads or receives a secret (settings, a Secret, a
token file, a token endpoint, TokenRequest, an authenticated caller's bearer token) calls
``remember``; ``scrub`` replaces every remembered value in a text.

It stays cheap: the values live in a bounded LRU (the oldest forgotten first), indexed by their
first ``MIN_CHARS`` characters, so ``scrub`` costs one dictionary lookup per position of the
text whatever the number of values, and remembering a value costs O(1) (a compiled alternation
of 10,000 values took a second to rebuild, blocking the loop at every new token). Before that
scan, a probe of every fifth position (each prefix is also indexed by its 4-character windows)
tells whether any prefix occurs at all; most texts hold none and are done. Values
shorter than ``MIN_CHARS`` are not remembered: masking them would mangle prose.
This module imports nothing of lakegate's, so every layer may feed it.

``clean`` serves callers that scrub the same texts over and over (every log event carries the
same routes, subjects and namespaces): it is a set of texts they found to hold nothing to
mask, replaced by an empty one each time a value is learnt or all are forgotten. Only learning
a value can make a clean text unclean, and a refresh of a known value (each request remembers
its caller's token again) does not empty it. Texts that held a secret are never kept in it.

Client ids are not secrets but identify a tenant's principal beyond need: ``remember_shown``
holds one with the text it is shown as instead (its masked form, first 4 ... last 4), so a log
line quoting a Databricks error that names a service principal shows it masked. A value known
as a secret stays masked whole.

``remember_settings`` feeds it everything the settings hold at start-up (every ``SecretStr``,
and the value of every environment variable a ``*_env`` key names), so that a secret is
masked before its first use, not only once the code that uses it has read it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from pydantic import BaseModel, SecretStr

MASK = "[redacted]"
MIN_CHARS = 8
MAX_VALUES = 10_000
# Each held prefix is also indexed by its windows of _WINDOW characters at every offset that
# leaves a window inside it, so a text need only be probed every _STRIDE positions: a prefix
# occurring at p holds one window starting in [p, p + _STRIDE - 1], where a probe falls.
_WINDOW = 4
_STRIDE = MIN_CHARS - _WINDOW + 1
_NO_COUNTS = (0,) * _STRIDE


class SecretRegistry:
    """A bounded set of secret values, indexed by prefix for a linear-time scan."""

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self._max = max_values
        # Each value -> what it is replaced with (MASK for a secret).
        self._values: OrderedDict[str, str] = OrderedDict()
        # First MIN_CHARS characters -> how many values starting so have each length, and
        # (what scrub reads, replaced whole) those lengths, longest first. A scan tries each
        # length against _values: every JWT of one issuer shares its first 40 characters, so
        # trying each value that shares the prefix cost as many tries as tokens held.
        self._by_prefix: dict[str, dict[int, int]] = {}
        self._lengths: dict[str, tuple[int, ...]] = {}
        # A window -> how many prefixes hold it at each offset; tuples, replaced, never
        # changed, so a scrub in another thread reads one whole.
        self._windows: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        self.clean: set[str] = set()

    def __len__(self) -> int:
        return len(self._values)

    def remember(self, value: str | None, shown: str = MASK) -> None:
        """Hold ``value`` (when it is long enough to be a secret), replaced by ``shown``; a known
        value is refreshed, and a secret's whole mask is never weakened to a partial one."""
        if value is None or len(value) < MIN_CHARS:
            return
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                if shown == MASK:
                    self._values[value] = MASK
                return
            self._values[value] = shown
            prefix = value[:MIN_CHARS]
            counts = self._by_prefix.setdefault(prefix, {})
            if not counts:
                self._index_windows(prefix)
            counts[len(value)] = counts.get(len(value), 0) + 1
            self._lengths[prefix] = tuple(sorted(counts, reverse=True))
            while len(self._values) > self._max:
                self._drop(self._values.popitem(last=False)[0])
            # Replaced, not cleared, and only once the index is whole: a scrub that read the
            # old set before this may add to it, but nobody reads that set again.
            self.clean = set()

    def _drop(self, value: str) -> None:
        prefix = value[:MIN_CHARS]
        counts = self._by_prefix[prefix]
        counts[len(value)] -= 1
        if not counts[len(value)]:
            del counts[len(value)]
        if counts:
            self._lengths[prefix] = tuple(sorted(counts, reverse=True))
        else:
            del self._by_prefix[prefix], self._lengths[prefix]
            self._unindex_windows(prefix)

    def _index_windows(self, prefix: str) -> None:
        for offset in range(_STRIDE):
            window = prefix[offset : offset + _WINDOW]
            counts = list(self._windows.get(window, _NO_COUNTS))
            counts[offset] += 1
            self._windows[window] = tuple(counts)

    def _unindex_windows(self, prefix: str) -> None:
        for offset in range(_STRIDE):
            window = prefix[offset : offset + _WINDOW]
            counts = list(self._windows[window])
            counts[offset] -= 1
            if any(counts):
                self._windows[window] = tuple(counts)
            else:
                del self._windows[window]

    def _may_hold(self, text: str) -> bool:
        """Whether some held prefix occurs in ``text``: a fifth of the positions are probed,
        and most texts (request ids, messages) are answered no without the full scan. A probe
        that finds a window asks the prefix index at each offset the window is held at, at
        most ``_STRIDE`` lookups, however many prefixes share it (every PAT starts "dapi")."""
        windows = self._windows
        index = self._lengths
        for j in range(0, len(text) - _WINDOW + 1, _STRIDE):
            counts = windows.get(text[j : j + _WINDOW])
            if counts is None:
                continue
            for offset, count in enumerate(counts):
                if count and j >= offset and text[j - offset : j - offset + MIN_CHARS] in index:
                    return True
        return False

    def scrub(self, text: str) -> str:
        """``text`` with every remembered value replaced by what it is shown as."""
        index, values = self._lengths, self._values
        if not index or len(text) < MIN_CHARS or not self._may_hold(text):
            return text
        out: list[str] = []
        kept = i = 0
        last = len(text) - MIN_CHARS
        while i <= last:
            lengths = index.get(text[i : i + MIN_CHARS])
            if lengths is None:
                i += 1
                continue
            found = next((p for n in lengths if (p := text[i : i + n]) in values), None)
            if found is None:
                i += 1
                continue
            out += (text[kept:i], values.get(found, MASK))
            i = kept = i + len(found)
        if not out:
            return text
        out.append(text[kept:])
        return "".join(out)

    def forget_all(self) -> None:
        with self._lock:
            self._values.clear()
            self._by_prefix.clear()
            self._lengths.clear()
            self._windows.clear()
            self.clean = set()


REGISTRY = SecretRegistry()


def remember(value: str | None) -> None:
    """Register a secret value with the process-wide registry."""
    REGISTRY.remember(value)


def remember_shown(value: str | None, shown: str) -> None:
    """Register an identifying value (a client id) to be shown as ``shown`` in logs."""
    REGISTRY.remember(value, shown)


def scrub(text: str) -> str:
    """Replace every registered secret value in ``text``."""
    return REGISTRY.scrub(text)


def remember_settings(node: object, environ: Mapping[str, str]) -> None:
    """Register every secret a settings tree holds: each ``SecretStr`` value, and the value
    of each environment variable a field ending in ``_env`` names. A value made of several
    secrets (webhook secrets rotate as ``whsec_a whsec_b``) is registered piece by piece too.
    """
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if name.endswith("_env") and isinstance(value, str):
                _remember_each(environ.get(value))
            else:
                remember_settings(value, environ)
    elif isinstance(node, SecretStr):
        _remember_each(node.get_secret_value())
    elif isinstance(node, Mapping):
        for value in node.values():
            remember_settings(value, environ)
    elif isinstance(node, list | tuple | set | frozenset):
        for value in node:
            remember_settings(value, environ)


def _remember_each(value: str | None) -> None:
    if not value:
        return
    remember(value.strip())
    for piece in value.split():
        remember(piece)
