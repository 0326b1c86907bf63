"""What tests and embedders may replace when they build the application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver

from gateway.callers.api_keys import Hasher, derive
from gateway.identity.resolver import IdentityResolver
from gateway.settings import Settings
from gateway.store.base import Store


@dataclass(frozen=True)
class Overrides:
    """What tests and embedders may replace; everything else is built from settings."""

    store: Store | None = None
    identities: Callable[[aiohttp.ClientSession], IdentityResolver] | None = None
    clock: Callable[[], datetime] | None = None
    environ: Mapping[str, str] | None = None
    run_poller: bool = True
    poll_idle_seconds: float = 0.5
    # Replaces poller.inline_submit_seconds when set (tests make Databricks look slow fast).
    inline_submit_seconds: float | None = None
    # Reads the settings again (``lakegate serve`` passes its loader); when given, SIGHUP
    # reloads the ``callers`` section (methods' keys, issuers, grants) without a restart.
    settings_source: Callable[[], Settings] | None = None
    # The webhook dispatcher, and the resolver under its guard (tests answer names themselves).
    run_dispatcher: bool = True
    webhook_resolver: AbstractResolver | None = None
    # Derives salted API-key digests (tests count concurrent checks with their own).
    api_key_hasher: Hasher = derive


Ctx = Callable[[web.Application], AsyncIterator[None]]
