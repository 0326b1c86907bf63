"""The ledger's one error of its own: its database cannot be reached right now."""

from __future__ import annotations

from gateway.errors import StoreError


class StoreUnavailable(StoreError):
    """The ledger's database cannot be reached (restarting, failing over, links dropped): the
    same request may succeed once it is back, so the answer says when to try again."""

    title = "Run ledger unreachable"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def fields(self) -> dict[str, object]:
        return {"retry_after": self.retry_after}
