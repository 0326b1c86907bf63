"""The Kubernetes edge: client set-up, Secrets, the ServiceAccount informer, TokenRequest and
TokenReview, over one kubernetes-asyncio ``ApiClient``.

Every kubernetes-asyncio and aiohttp exception met here is translated in ``status`` into
``gateway.errors.KubernetesError`` or one of its refinements (``KubeNotFound``,
``KubeForbidden``, ``KubeInvalid``, ``KubeExpired``); nothing above this package sees a
foreign exception. Secret values and tokens are never logged and never in a repr.
"""

from gateway.kube.accounts import ServiceAccountRef
from gateway.kube.backoff import Backoff
from gateway.kube.cache import AccountChange, Listener
from gateway.kube.client import KubeConfig, TokenFile, load_configuration, open_api_client
from gateway.kube.facade import KubeClient
from gateway.kube.informer import InformerStatus, ServiceAccountInformer
from gateway.kube.reflector import InformerOptions, ReflectorStatus
from gateway.kube.reviews import ReviewResult, TokenReviewer, parse_service_account_username
from gateway.kube.secrets import SecretData, SecretReader
from gateway.kube.selectors import LabelSelector, SelectorError
from gateway.kube.status import (
    KubeApiError,
    KubeExpired,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    Target,
)
from gateway.kube.tokens import MintedToken, TokenMinter

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
