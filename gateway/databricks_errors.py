"""Databricks' error body, ``{"error_code", "message", "details": [google.rpc.RequestInfo]}``.

Shared by the compatible API's refusals (``gateway.api.compat.errors``) and the server's answer
to a request head it cannot parse (``gateway.serving``), which comes before any routing. It
imports nothing of lakegate's, so the serving layer (which the emulators use too) may import it.
"""

from __future__ import annotations

from typing import Any

REQUEST_INFO = "type.googleapis.com/google.rpc.RequestInfo"


def error_body(error_code: str, message: str, request_id: str) -> dict[str, Any]:
    """The body a Databricks client reads an error from; ``message`` must be redacted already."""
    details = [{"@type": REQUEST_INFO, "request_id": request_id, "serving_data": ""}]
    return {"error_code": error_code, "message": message, "details": details}
