"""A run's spec held as its ledger text until somebody reads it.

A run's spec is the largest thing in its row (a hundred-task job is tens of kilobytes) and
nearly nothing that reads a run looks at it: the poller claims and reschedules runs by the
hundred, the API shows runs without it, only a submission and the Databricks-compatible
runs/get read it. ``LazyObject`` is the row's text behind the ``Mapping`` interface, decoded
(exactly, by ``jsonexact``) the first time a key is read, once.

A text that is not a JSON object is the ledger's fault, not the reader's: it raises the
``StoreError`` that naming the run gives, where it is read, so one bad row fails the request
or the poll that uses it rather than every claim that happens to return it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gateway import jsonexact
from gateway.errors import StoreError


class LazyObject(Mapping[str, Any]):
    """The spec of run ``run_id``, JSON object ``text``, decoded on first use."""

    __slots__ = ("_run_id", "_text", "_value")

    def __init__(self, text: str, run_id: int, value: dict[str, Any] | None = None) -> None:
        """``value``, when given, is what ``text`` decodes to: the object the text was
        just written from, which then needs no decoding. The run id is kept, not an error
        message made from it: rows are decoded by the hundred, and errors are rare."""
        self._text = text
        self._run_id = run_id
        self._value = value

    def _decoded(self) -> dict[str, Any]:
        value = self._value
        if value is None:
            try:
                decoded = jsonexact.loads(self._text)
            except ValueError as exc:
                raise self._malformed(str(exc)) from exc
            if not isinstance(decoded, dict):
                raise self._malformed(f"not a JSON object but {type(decoded).__name__}")
            # Two threads decoding at once both get an equal dict; either may be kept.
            value = self._value = decoded
        return value

    def _malformed(self, why: str) -> StoreError:
        return StoreError(f"the spec of run {self._run_id} in the ledger is malformed: {why}")

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __contains__(self, key: object) -> bool:
        return key in self._decoded()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyObject) and other._text == self._text:
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._decoded() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # a mapping, as unhashable as a dict

    def __repr__(self) -> str:
        return repr(self._decoded())
