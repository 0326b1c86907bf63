"""Live reload of the tenants file: the whole tenant policy, without a restart.

``TenantsReloader`` watches the tenants file by polling its resolved target (a ConfigMap
mounted as a file is updated by the kubelet swapping a symlink, so the name's own mtime does
not move; the target's path, inode, size and mtime do) and reloads on SIGHUP too. A new file
is read and validated whole, with the rest of the settings, before anything changes; a
broken one is refused with one log line naming the file and key, the running policy stays,
and the readiness detail and ``lakegate_tenant_policy_stale`` say the policy is stale.

How consumers see the new policy: the process has one ``Settings``, and every consumer reads
``settings.tenants`` when it decides (the identity resolver, the run service, admission, the
quota view), so the reloader replaces that one attribute in place. ``Settings`` is frozen for
everyone else; this module is its one writer, and the swap is one reference assignment on the
event loop, so a reader sees either the old policy or the new one whole. Consumers that cache
what they derived from the policy subscribe to ``on_changed``: each applied reload tells them
which namespaces' identity-bearing policy (presence, workspace, identity) changed, or None for
every namespace when the defaults' workspace did; the identity resolver forgets those
namespaces' resolutions, so a changed identity takes effect at the next use.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from gateway.errors import ConfigError, LakegateError
from gateway.logs import get_logger
from gateway.settings.gateway import Settings
from gateway.settings.tenants import TenantsSettings

log = get_logger(__name__)

Signature = tuple[str, int, int, int] | None


def _signature(path: str) -> Signature:
    """What changes when the file (or the target of its symlinks) is replaced."""
    try:
        target = os.path.realpath(path)
        stat = os.stat(target)
    except OSError:
        return None
    return (target, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _unknown_workspaces(tenants: TenantsSettings, settings: Settings) -> list[str]:
    named = [("defaults.workspace", tenants.defaults.workspace)] + [
        (f"namespaces.{ns}.workspace", policy.workspace)
        for ns, policy in tenants.namespaces.items()
    ]
    return [
        f"{key}: workspace '{name}' is not in the workspaces allow-list"
        for key, name in named
        if name is not None and name not in settings.workspaces
    ]


def _identity_of(tenants: TenantsSettings, namespace: str) -> tuple[object, ...] | None:
    policy = tenants.namespaces.get(namespace)
    return None if policy is None else (policy.workspace, policy.identity)


def identity_changes(old: TenantsSettings, new: TenantsSettings) -> frozenset[str] | None:
    """The namespaces whose identity may resolve differently under ``new``; None: all of them.

    A namespace's entry appearing or going counts (an unconfigured namespace resolves
    otherwise), and so does its workspace or identity; quotas and the rest do not.
    """
    if old.defaults.workspace != new.defaults.workspace:
        return None
    names = set(old.namespaces) | set(new.namespaces)
    return frozenset(n for n in names if _identity_of(old, n) != _identity_of(new, n))


class TenantsReloader:
    """Replaces ``settings.tenants`` with the tenants file's new content once it validates."""

    def __init__(
        self,
        settings: Settings,
        source: Callable[[], Settings],
        *,
        on_stale: Callable[[bool], None] = lambda _stale: None,
        interval_seconds: float = 1.0,
    ) -> None:
        self._settings = settings
        self._source = source
        self._on_stale = on_stale
        self._interval = interval_seconds
        self.stale: str | None = None
        # Told, after a new policy is in place, whose identity it may change (None: anyone's).
        self.on_changed: list[Callable[[frozenset[str] | None], None]] = []
        self._seen: Signature = None
        if settings.tenants_file:
            self._seen = _signature(settings.tenants_file)

    @property
    def path(self) -> str | None:
        return self._settings.tenants_file

    def apply(self, fresh: Settings) -> bool:
        """Swap in ``fresh``'s tenant policy if it fits the running settings; True if it did."""
        problems = _unknown_workspaces(fresh.tenants, self._settings)
        if problems:
            self.refuse(ConfigError([f"{self.path}: {p}" for p in problems]))
            return False
        old = self._settings.tenants
        changed = fresh.tenants != old
        # The one writer of a frozen model's attribute: see the module docstring.
        object.__setattr__(self._settings, "tenants", fresh.tenants)
        self.stale = None
        self._on_stale(False)
        if changed:
            names = identity_changes(old, fresh.tenants)
            log.info("tenants_reloaded", file=self.path,
                     identities_changed="all" if names is None else sorted(names))  # fmt: skip
            if names is None or names:
                for listener in self.on_changed:
                    listener(names)
        return changed

    def refuse(self, exc: LakegateError) -> None:
        """Keep the running policy; say once, naming file and key, why the new one was not."""
        first = exc.message.splitlines()[0] if exc.message else type(exc).__name__
        self.stale = first
        self._on_stale(True)
        log.error("tenants_reload_refused", file=self.path, problem=first)

    async def reload(self) -> bool:
        """Read and validate the settings again (off the loop) and apply their tenants."""
        try:
            fresh = await asyncio.to_thread(self._source)
        except LakegateError as exc:
            self.refuse(exc)
            return False
        return self.apply(fresh)

    async def watch_forever(self) -> None:
        """Reload whenever the tenants file's resolved target changes; until cancelled."""
        path = self.path
        if path is None:
            return
        while True:
            await asyncio.sleep(self._interval)
            seen = await asyncio.to_thread(_signature, path)
            if seen != self._seen and seen is not None:
                self._seen = seen
                await self.reload()

    async def check(self) -> tuple[bool, str]:
        """Readiness: a stale policy is not an outage, only a detail to notice."""
        if self.stale is None:
            return True, f"tenant policy from {Path(self.path).name if self.path else 'settings'}"
        return True, f"tenant policy stale: the new file was refused ({self.stale})"
