"""A fake Kubernetes API: ServiceAccounts, Secrets, TokenRequest, TokenReview, issuer discovery.

A real aiohttp server that answers as a kube-apiserver does for what lakegate uses
(shared/reference/kubernetes.md, sections 0-5), so that the real kubernetes-asyncio client is
what tests exercise. ``KubeApiServer`` serves it on a loopback port; ``serve`` runs it until
cancelled (``lakegate emulator kubernetes``); ``load_config`` reads its YAML config.
"""

from gateway.emulator.kubernetes.config import (
    CallerConfig,
    KubeEmulatorConfig,
    NamespaceConfig,
    SecretConfig,
    ServiceAccountConfig,
    TokenConfig,
    WatchConfig,
    load_config,
)
from gateway.emulator.kubernetes.server import CLUSTER, KubeApiServer, create_app, serve
from gateway.emulator.kubernetes.tokens import generate_key, key_id

__all__ = [
    "CLUSTER",
    "CallerConfig",
    "KubeApiServer",
    "KubeEmulatorConfig",
    "NamespaceConfig",
    "SecretConfig",
    "ServiceAccountConfig",
    "TokenConfig",
    "WatchConfig",
    "create_app",
    "generate_key",
    "key_id",
    "load_config",
    "serve",
]
