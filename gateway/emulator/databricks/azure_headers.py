"""What the Azure headers of each authenticated API call said, recorded without their values.

Azure Databricks lets a service principal that is not yet a workspace user in when its call
carries ``X-Databricks-Azure-SP-Management-Token`` (a token for the Azure management resource)
and ``X-Databricks-Azure-Workspace-Resource-Id``. The emulator does not check either; it
records, per call, whether the management token was present and which resource id was named,
so tests can say what lakegate sent. The management token itself is never kept or served.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDictProxy

MANAGEMENT_TOKEN_HEADER = "X-Databricks-Azure-SP-Management-Token"
RESOURCE_ID_HEADER = "X-Databricks-Azure-Workspace-Resource-Id"
# Enough for any test's calls; the counters below are never trimmed.
MAX_CALLS_KEPT = 10_000


@dataclass
class AzureHeaderStats:
    """Per call: method, path, principal, management token present, resource id named."""

    calls: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_CALLS_KEPT))
    with_management_token: int = 0
    by_resource_id: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def record(
        self, method: str, path: str, principal: str, headers: CIMultiDictProxy[str]
    ) -> None:
        management = bool(headers.get(MANAGEMENT_TOKEN_HEADER, "").strip())
        resource_id = headers.get(RESOURCE_ID_HEADER) or None
        self.total += 1
        self.with_management_token += management
        if resource_id is not None:
            self.by_resource_id[resource_id] += 1
        self.calls.append(
            {
                "method": method,
                "path": path,
                "principal": principal,
                "management_token": management,
                "resource_id": resource_id,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "with_management_token": self.with_management_token,
            "by_resource_id": dict(self.by_resource_id),
            "calls": list(self.calls),
        }
