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
