"""The Azure DevOps Git credential keeper (``gateway.gitcreds``): hooked into the submitter,
with its background refresher cancelled and awaited on shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.app.overrides import Ctx, Overrides
from gateway.appkeys import DATABRICKS_HTTP, METRICS, REMOTE_RUNS, STORE
from gateway.databricks.git_credentials import GitCredentialsClient
from gateway.gitcreds.keeper import GitCredentialKeeper
from gateway.gitcreds.refresher import GitCredentialRefresher
from gateway.runs.submitter import Submitter
from gateway.settings import Settings
from gateway.tasks import stop

GIT_CREDENTIALS = web.AppKey("lakegate.git_credentials", GitCredentialKeeper)
GIT_CREDENTIAL_REFRESHER = web.AppKey("lakegate.git_credential_refresher", GitCredentialRefresher)


def _clock(over: Overrides) -> Callable[[], float]:
    # The run clock tests shift is the one the keeper judges a token's validity by.
    shifted = over.clock
    return time.time if shifted is None else lambda: shifted().timestamp()


def gitcreds_ctx(settings: Settings, over: Overrides) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        metrics = app[METRICS]
        client = GitCredentialsClient.from_settings(
            app[DATABRICKS_HTTP], settings.databricks, on_call=metrics.observe_databricks_call
        )
        keeper = GitCredentialKeeper(client, lambda: settings.tenants, metrics, clock=_clock(over))
        submitter = app[REMOTE_RUNS]
        if not isinstance(submitter, Submitter):
            raise TypeError("git_credentials needs the runs package's Submitter to hook into")
        submitter.before_submit.append(keeper.before_submit)
        refresher = GitCredentialRefresher(keeper, app[STORE])
        app[GIT_CREDENTIALS], app[GIT_CREDENTIAL_REFRESHER] = keeper, refresher
        task = asyncio.create_task(refresher.run_forever(), name="git-credential-refresher")
        try:
            yield
        finally:
            await stop(task)

    return ctx
