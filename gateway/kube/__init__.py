"""The Kubernetes edge: client set-up, Secrets, the ServiceAccount informer, TokenRequest and
TokenReview, over one kubernetes-asyncio ``ApiClient``.

``client`` holds ``KubeClient``, what the rest of lakegate uses; ``connection`` builds its
``ApiClient`` (in-cluster, kubeconfig or explicit); ``informer`` and ``reflector`` keep the
labelled ServiceAccounts current; ``secrets``, ``tokens``, ``reviews`` and ``namespaces`` are
one API call each; ``status`` translates every foreign exception. Label selectors are
``gateway.selectors``, shared with the settings.

Every kubernetes-asyncio and aiohttp exception met here is translated in ``status`` into
``gateway.errors.KubernetesError`` or one of its refinements (``KubeNotFound``,
``KubeForbidden``, ``KubeInvalid``, ``KubeExpired``); nothing above this package sees a
foreign exception. Secret values and tokens are never logged and never in a repr.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.kube.accounts import ServiceAccountRef
    from gateway.kube.backoff import Backoff
    from gateway.kube.cache import AccountChange, Listener
    from gateway.kube.client import KubeClient
    from gateway.kube.connection import KubeConfig, TokenFile, load_configuration, open_api_client
    from gateway.kube.informer import InformerStatus, ServiceAccountInformer
    from gateway.kube.reflector import InformerOptions, ReflectorStatus
    from gateway.kube.reviews import ReviewResult, TokenReviewer, parse_service_account_username
    from gateway.kube.secrets import SecretData, SecretReader
    from gateway.kube.status import (
        KubeApiError,
        KubeExpired,
        KubeForbidden,
        KubeInvalid,
        KubeNotFound,
        Target,
    )
    from gateway.kube.tokens import MintedToken, TokenMinter
    from gateway.selectors import LabelSelector, SelectorError

# Where each name lives. Importing the package imports none of them: kubernetes-asyncio
# (about 40 MiB of RSS) is loaded by the first name used, so a gateway with
# ``kubernetes.mode: off`` never loads it.
_HOMES = {
    "AccountChange": "gateway.kube.cache",
    "Backoff": "gateway.kube.backoff",
    "InformerOptions": "gateway.kube.reflector",
    "InformerStatus": "gateway.kube.informer",
    "KubeApiError": "gateway.kube.status",
    "KubeClient": "gateway.kube.client",
    "KubeConfig": "gateway.kube.connection",
    "KubeExpired": "gateway.kube.status",
    "KubeForbidden": "gateway.kube.status",
    "KubeInvalid": "gateway.kube.status",
    "KubeNotFound": "gateway.kube.status",
    "LabelSelector": "gateway.selectors",
    "Listener": "gateway.kube.cache",
    "MintedToken": "gateway.kube.tokens",
    "ReflectorStatus": "gateway.kube.reflector",
    "ReviewResult": "gateway.kube.reviews",
    "SecretData": "gateway.kube.secrets",
    "SecretReader": "gateway.kube.secrets",
    "SelectorError": "gateway.selectors",
    "ServiceAccountInformer": "gateway.kube.informer",
    "ServiceAccountRef": "gateway.kube.accounts",
    "Target": "gateway.kube.status",
    "TokenFile": "gateway.kube.connection",
    "TokenMinter": "gateway.kube.tokens",
    "TokenReviewer": "gateway.kube.reviews",
    "load_configuration": "gateway.kube.connection",
    "open_api_client": "gateway.kube.connection",
    "parse_service_account_username": "gateway.kube.reviews",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "AccountChange",
    "Backoff",
    "InformerOptions",
    "InformerStatus",
    "KubeApiError",
    "KubeClient",
    "KubeConfig",
    "KubeExpired",
    "KubeForbidden",
    "KubeInvalid",
    "KubeNotFound",
    "LabelSelector",
    "Listener",
    "MintedToken",
    "ReflectorStatus",
    "ReviewResult",
    "SecretData",
    "SecretReader",
    "SelectorError",
    "ServiceAccountInformer",
    "ServiceAccountRef",
    "Target",
    "TokenFile",
    "TokenMinter",
    "TokenReviewer",
    "load_configuration",
    "open_api_client",
    "parse_service_account_username",
]
