"""Where the parts of a token request come from, read AT FETCH TIME, never when built.

- ``values``: the values a fetch needs (a PAT, a client id, a client secret), given up front by
  the settings or the environment, or read from a Secret of the namespace on every fetch;
- ``token_file``: a projected token (the pod's, or AKS's workload-identity token), re-read on
  every fetch because the kubelet replaces it;
- ``minted_service_account_token``: a ServiceAccount token minted with TokenRequest, kept in
  the token cache so a burst of exchanges for one namespace costs one TokenRequest.

So a rotated Secret or a replaced token file is picked up by the next fetch (after a 401 has
invalidated the cached token, or when it goes stale). Kubernetes is reached only through the
injected ``read_secret`` and ``mint`` callables (the kube edge's), so this module imports
nothing of it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from gateway.databricks import subject
from gateway.databricks.auth import AccessToken
from gateway.errors import (
    CredentialUnavailable,
    IdentityForbidden,
    IdentityMisconfigured,
    KubernetesError,
)
from gateway.identity.cache import CacheKey, TokenCache
from gateway.secrets_registry import remember

SubjectToken = Callable[[], Awaitable[str]]
Values = Callable[[], Awaitable[dict[str, str]]]
ReadSecret = Callable[[str, str], Awaitable[Mapping[str, bytes]]]
# (namespace, service account, audiences, expiration seconds): the kube edge's TokenRequest.
Mint = Callable[[str, str, list[str], int], Awaitable[AccessToken]]

SA_TOKEN_KIND = "sa-token"  # noqa: S105 (a metrics label, not a credential)
# Minted tokens are for the cluster's issuer, not for a workspace; their keys say so.
MINTED_HOST = "kubernetes"
# The API server refuses TokenRequests for less than ten minutes.
MIN_SA_TOKEN_SECONDS = 600


def values(
    read_secret: ReadSecret,
    namespace: str,
    secret_name: str | None,
    given: Mapping[str, str | None],
) -> Values:
    """The values named in ``given``: those given as they are, each one given as None read
    from the Secret ``secret_name`` at every fetch (one read for all of them)."""
    known = {key: value.strip() for key, value in given.items() if value is not None}
    for key, value in known.items():
        problem = malformed(value)
        if problem is not None:
            raise IdentityMisconfigured(
                f"namespace '{namespace}': the {key} given in the settings or environment "
                f"{problem}",
                namespace=namespace,
                source="settings",
            )
        remember(value)
    wanted = tuple(key for key, value in given.items() if value is None)
    if not wanted:

        async def as_given() -> dict[str, str]:
            return dict(known)

        return as_given
    if secret_name is None:
        raise ValueError(f"{', '.join(wanted)} given neither up front nor by a Secret")
    name = secret_name

    async def fetch() -> dict[str, str]:
        read = await secret_values(read_secret, namespace, name, wanted)
        return {**known, **dict(zip(wanted, read, strict=True))}

    return fetch


async def secret_values(
    read_secret: ReadSecret, namespace: str, secret_name: str, keys: tuple[str, ...]
) -> tuple[str, ...]:
    """The named keys of a Secret as text; a missing, empty or non-UTF-8 key is refused."""
    try:
        data = await read_secret(namespace, secret_name)
    except KubernetesError as exc:
        if exc.http_status not in (403, 404):
            raise
        refusal = IdentityMisconfigured if exc.http_status == 404 else IdentityForbidden
        why = "does not exist" if exc.http_status == 404 else "may not be read by lakegate (RBAC)"
        raise refusal(
            f"secret '{secret_name}' in namespace '{namespace}' {why}",
            namespace=namespace,
            source=f"secret/{secret_name}",
        ) from exc
    values: list[str] = []
    for key in keys:
        raw = data.get(key)

        def unavailable(problem: str, key: str = key) -> CredentialUnavailable:
            return IdentityMisconfigured(
                f"secret '{secret_name}' in namespace '{namespace}' {problem} key '{key}'",
                namespace=namespace,
                source=f"secret/{secret_name}",
            )

        if raw is None:
            raise unavailable("has no")
        try:
            # Secrets made with `kubectl create secret --from-file` often end in a newline.
            value = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise unavailable("has a non-UTF-8") from exc
        if not value:
            raise unavailable("has an empty")
        bad = malformed(value)
        if bad is not None:
            raise unavailable(f"has a malformed value ({bad}) in")
        remember(value)
        values.append(value)
    return tuple(values)


def malformed(value: str) -> str | None:
    """Why ``value`` cannot be a credential (None when it can), never quoting it.

    A token or secret travels in a header or a form field: a control character, a space
    inside, or anything non-printable would break the request (aiohttp refuses a header with a
    newline) or smuggle another header, so such a value is refused when it is read.
    """
    if any(ch.isspace() for ch in value):
        return "holds whitespace or a line break"
    if not value.isprintable() or not value.isascii():
        return "holds control or non-printable characters"
    return None


def token_file(
    path: str | os.PathLike[str],
    *,
    namespace: str = "",
    fallbacks: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
) -> SubjectToken:
    """A token file (projected ServiceAccount or workload-identity token), read on every call
    in a worker thread: the kubelet replaces it long before it expires. When ``path`` does not
    exist, each of ``fallbacks`` is tried in turn (the pod token's places, in Flyte's order);
    a file that exists but is unreadable, empty, malformed or not a JWT (a PAT left there,
    say) is refused, never skipped, naming the file and the setting (``settings``, by path)
    that pointed to it."""
    files = [Path(path), *(Path(other) for other in fallbacks)]
    named = {str(Path(p)): setting for p, setting in (settings or {}).items()}

    def unavailable(file: Path, problem: str) -> CredentialUnavailable:
        return _file_unavailable(file, problem, namespace, named.get(str(file)))

    async def read() -> str:
        file, text = await asyncio.to_thread(_first_existing, files)
        if text is None:
            also = f" (nor does {', '.join(str(f) for f in files[1:])})" if files[1:] else ""
            raise unavailable(files[0], f"does not exist{also}")
        if isinstance(text, BaseException):
            raise unavailable(file, f"cannot be read ({type(text).__name__})") from text
        value = text.strip()
        if not value:
            raise unavailable(file, "is empty")
        problem = malformed(value)
        if problem is not None:
            raise unavailable(file, f"is malformed: it {problem}")
        remember(value)
        if subject.claims(value) is None:
            # Never sent as a subject token or an assertion: a PAT there is a credential
            # meant for another use, and the token endpoint would only refuse it.
            raise unavailable(
                file,
                f"holds {subject.not_a_jwt(value)}; it must hold an OIDC JWT (a projected "
                "ServiceAccount token); a PAT belongs in a 'pat' identity (DATABRICKS_TOKEN "
                "or a databricks-token Secret)",
            )
        return value

    return read


def _first_existing(files: Sequence[Path]) -> tuple[Path, str | BaseException | None]:
    """The first file that exists and its text (or why it cannot be read); None if none."""
    for file in files:
        try:
            return file, file.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            return file, exc
    return files[0], None


def _file_unavailable(
    file: Path, problem: str, namespace: str, setting: str | None = None
) -> CredentialUnavailable:
    named = f" (named by {setting})" if setting else ""
    return IdentityMisconfigured(
        f"token file {file}{named} {problem}", namespace=namespace, source=f"file/{file}"
    )


def minted_service_account_token(
    cache: TokenCache,
    mint: Mint,
    namespace: str,
    service_account: str,
    audience: str,
    expiration_seconds: int = MIN_SA_TOKEN_SECONDS,
) -> SubjectToken:
    """A ServiceAccount token minted with TokenRequest for ``audience``, kept in ``cache``
    (kind ``sa-token``) so a burst of exchanges for one namespace costs one TokenRequest."""
    if expiration_seconds < MIN_SA_TOKEN_SECONDS:
        raise ValueError(f"TokenRequest needs expiration_seconds >= {MIN_SA_TOKEN_SECONDS}")
    key = CacheKey(namespace, f"sa-token:{service_account}:aud={audience}", MINTED_HOST)

    async def fetch() -> AccessToken:
        token = await mint(namespace, service_account, [audience], expiration_seconds)
        remember(token.value)
        return token

    async def subject() -> str:
        return (await cache.get(key, fetch, kind=SA_TOKEN_KIND)).value

    return subject
