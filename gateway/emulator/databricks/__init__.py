"""Databricks workspace emulator: Jobs API runs, OIDC identity, fault injection.

A real aiohttp server that answers as a workspace does (shared/reference/databricks.md), for
the demo and the tests. ``EmulatorServer`` serves it on a loopback port; ``serve`` runs it
until cancelled (``lakegate emulator databricks``); ``load_config`` reads its YAML config.
"""

from gateway.emulator.databricks.config import (
    EmulatorConfig,
    LifecycleConfig,
    LimitsConfig,
    OutcomeRule,
    RateLimit,
    load_config,
)
from gateway.emulator.databricks.faults import FaultSpec
from gateway.emulator.databricks.lifecycle import Outcome
from gateway.emulator.databricks.server import WORKSPACE, EmulatorServer, create_app, serve
from gateway.emulator.databricks.workspace import Workspace

__all__ = [
    "WORKSPACE",
    "EmulatorConfig",
    "EmulatorServer",
    "FaultSpec",
    "LifecycleConfig",
    "LimitsConfig",
    "Outcome",
    "OutcomeRule",
    "RateLimit",
    "Workspace",
    "create_app",
    "load_config",
    "serve",
]
