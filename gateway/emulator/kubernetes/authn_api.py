"""TokenRequest and TokenReview, the two create endpoints of the fake API.

Both answer 201 echoing the request with defaults filled in and ``status`` added. Bodies are
accepted without apiVersion and kind, and with explicit nulls, as kubectl sends them.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.emulator.kubernetes.cluster import Cluster
from gateway.emulator.kubernetes.handlers import json_response
from gateway.emulator.kubernetes.objects import Secret, ServiceAccount, rfc3339
from gateway.emulator.kubernetes.status import StatusError, bad_request, invalid, not_found
from gateway.emulator.kubernetes.store import Store

AUTHN_GROUP = "authentication.k8s.io"
AUTHN_VERSION = f"{AUTHN_GROUP}/v1"
MIN_EXPIRATION = 600
MAX_EXPIRATION = 2**32


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{key} must be an object")
    return value


def _strings(spec: dict[str, Any], key: str) -> list[str]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"spec.{key} must be a list of strings")
    return value


def _expiration(spec: dict[str, Any], default: int) -> int:
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        return default
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise bad_request("spec.expirationSeconds must be an integer")
    if seconds < MIN_EXPIRATION:
        why = "may not specify a duration less than 10 minutes"
    elif seconds > MAX_EXPIRATION:
        why = "may not specify a duration larger than 2^32 seconds"
    else:
        return seconds
    raise invalid("TokenRequest", AUTHN_GROUP, "", [("spec.expirationSeconds", str(seconds), why)])


def _bound_secret(store: Store, sa: ServiceAccount, ref: dict[str, Any]) -> Secret | None:
    """The object a token is bound to; only Secrets, since the fake runs no pods."""
    if not ref:
        return None
    kind, name = ref.get("kind"), str(ref.get("name") or "")
    if kind == "Pod":
        raise not_found("pods", name)
    if kind != "Secret" or ref.get("apiVersion", "v1") != "v1":
        raise bad_request(f'cannot bind token for object of kind "{kind}"')
    secret = store.secret(sa.namespace, name)
    if secret is None:
        raise not_found("secrets", name)
    if ref.get("uid") and ref["uid"] != secret.uid:
        raise StatusError(
            409,
            f'Operation cannot be fulfilled on Secret "{name}": the UID in the bound object '
            f"reference ({ref['uid']}) does not match the UID in record. The object might "
            "have been deleted and then recreated",
            reason="Conflict",
            name=name,
            resource="Secret",
        )
    return secret


class AuthnApi:
    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(
                "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", self.token_request
            ),
            web.post(f"/apis/{AUTHN_VERSION}/tokenreviews", self.token_review),
            web.post(
                f"/apis/{AUTHN_VERSION}/namespaces/{{namespace}}/tokenreviews",
                self.namespaced_token_review,
            ),
        ]

    async def token_request(self, request: web.Request) -> web.Response:
        cluster = self._cluster
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        cluster.stats.token_requests[(namespace, name)] += 1
        body = await _body(request)
        metadata, spec = _object(body, "metadata"), _object(body, "spec")
        # The order of the checks is token.go's: body names, the lookup, then validation.
        for field, expected in (("name", name), ("namespace", namespace)):
            given = metadata.get(field)
            if given and given != expected:
                why = f"must match the service account {field} if specified"
                raise invalid(
                    "TokenRequest", AUTHN_GROUP, name, [(f"metadata.{field}", f'"{given}"', why)]
                )
        sa = cluster.store.service_account(namespace, name)
        if sa is None:
            raise not_found("serviceaccounts", name)
        audiences = _strings(spec, "audiences") or cluster.api_audiences
        seconds = _expiration(spec, cluster.config.tokens.default_expiration_seconds)
        bound = _bound_secret(cluster.store, sa, _object(spec, "boundObjectRef"))
        headers: dict[str, str] = {}
        longest = cluster.config.tokens.max_expiration_seconds
        if longest is not None and seconds > longest:
            headers["Warning"] = (
                f'299 - "requested expiration of {seconds} seconds shortened to {longest} seconds"'
            )
            seconds = longest
        token, expires = cluster.mint(sa, audiences, seconds, bound)
        echoed = {
            **spec,
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": spec.get("boundObjectRef"),
        }
        answer = {
            "kind": "TokenRequest",
            "apiVersion": AUTHN_VERSION,
            "metadata": {
                "name": sa.name,
                "namespace": sa.namespace,
                "uid": sa.uid,
                "creationTimestamp": rfc3339(cluster.clock.now()),
            },
            "spec": echoed,
            "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
        }
        return json_response(answer, status=201, headers=headers)

    async def token_review(self, request: web.Request) -> web.Response:
        cluster = self._cluster
        body = await _body(request)
        spec = _object(body, "spec")
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise bad_request("token is required for TokenReview in authentication")
        review = cluster.review(token, _strings(spec, "audiences"))
        cluster.stats.token_reviews["authenticated" if review.user else "failed"] += 1
        answer = {
            "kind": "TokenReview",
            "apiVersion": AUTHN_VERSION,
            "metadata": {**_object(body, "metadata"), "creationTimestamp": None},
            # Echoed whole, token included: the client's model requires spec.token.
            "spec": spec,
            "status": review.status_json(),
        }
        return json_response(answer, status=201)

    async def namespaced_token_review(self, _request: web.Request) -> web.Response:
        # TokenReview is cluster-scoped.
        raise bad_request("the tokenreviews resource is not namespaced")
