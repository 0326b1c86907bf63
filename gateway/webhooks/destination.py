"""Where a run's events go, pure: its accepted ``callback_url``, else the namespace's ``url``.

A ``callback_url`` is accepted at submission only if it starts with one of the namespace's
``allowed_url_prefixes`` and passes the URL guard; otherwise the submission is refused (400,
naming the prefixes or the rule). At delivery the same checks run again on the settings of
that moment, so a prefix an operator has since removed is no longer sent to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import InvalidRequest
from gateway.settings.webhooks import TenantWebhooks
from gateway.webhooks.guard import Guard, UrlRefused


def check_callback_url(namespace: str, url: str, policy: TenantWebhooks, guard: Guard) -> None:
    """Refuse (InvalidRequest) a ``callback_url`` the namespace may not send to."""
    if not policy.allows(url):
        allowed = ", ".join(policy.allowed_url_prefixes) or "none"
        raise InvalidRequest(
            f"callback_url '{url}' is not allowed in namespace '{namespace}': it must start with "
            f"one of the namespace's webhooks.allowed_url_prefixes ({allowed}); ask an operator "
            "to add a prefix in the tenants file, or leave callback_url out to use the "
            "namespace's default endpoint",
            field="callback_url",
        )
    try:
        guard.check_url(url)
    except UrlRefused as exc:
        raise InvalidRequest(
            f"callback_url refused in namespace '{namespace}' by rule {exc.rule}: {exc}",
            field="callback_url",
        ) from exc


def destination(payload: Mapping[str, Any], policy: TenantWebhooks, guard: Guard) -> str | None:
    """The URL an event goes to now, or None when it goes nowhere."""
    data = payload.get("data")
    callback = data.get("callback_url") if isinstance(data, Mapping) else None
    if isinstance(callback, str) and policy.allows(callback):
        try:
            guard.check_url(callback)
        except UrlRefused:
            pass
        else:
            return callback
    return policy.url
