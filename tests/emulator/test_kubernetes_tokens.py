"""TokenRequest, TokenReview and issuer discovery through the real kubernetes-asyncio client;
tokens checked with PyJWT against the served JWKS, and exchanged at the Databricks emulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt
import pytest
from kubernetes_asyncio import client

from gateway.emulator.databricks import EmulatorServer
from gateway.emulator.kubernetes import KubeApiServer
from tests.emulator._kube import raw_response, status_of, uid_of
from tests.fixtures.databricks_emulator import DatabricksEmulator, EmulatorFactory, emulator_config
from tests.fixtures.kube_api import (
    GATEWAY_TOKEN,
    GATEWAY_USER,
    TENANT_A,
    KubeApiFactory,
    kube_config,
)

SA = "billing-api"
SUBJECT = f"system:serviceaccount:{TENANT_A}:{SA}"


def token_request(
    audiences: list[str] | None = None, seconds: int | None = None, **spec: Any
) -> client.AuthenticationV1TokenRequest:
    """A body without apiVersion and kind, as a caller that sets only the spec sends it."""
    return client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=audiences, expiration_seconds=seconds, **spec)
    )


async def mint(api: client.ApiClient, **kwargs: Any) -> client.AuthenticationV1TokenRequest:
    core = client.CoreV1Api(api)
    return await core.create_namespaced_service_account_token(SA, TENANT_A, token_request(**kwargs))


async def review(
    api: client.ApiClient, token: str, audiences: list[str] | None = None
) -> client.V1TokenReview:
    body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=audiences))
    return await client.AuthenticationV1Api(api).create_token_review(body)


async def served_keys(api: client.ApiClient) -> jwt.PyJWKSet:
    """The JWKS as the client fetches it; raw, since the client turns the JSON into repr()."""
    keyset = client.OpenidApi(api).get_service_account_issuer_open_id_keyset
    resp = await raw_response(keyset(_preload_content=False))
    return jwt.PyJWKSet.from_dict(await resp.json(content_type="application/jwk-set+json"))


async def test_token_request_claims_verify_against_the_jwks(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """The minted JWT is RS256 with the key's kid, and carries every claim of the reference."""
    answer = await mint(kube_client, audiences=["databricks"], seconds=600)
    token = answer.status.token
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": kube_api.kid}
    key = (await served_keys(kube_client))[header["kid"]]
    claims = jwt.decode(
        token, key, algorithms=["RS256"], audience="databricks", issuer=kube_api.url
    )
    uid = uid_of(kube_api, TENANT_A, SA)
    assert claims["aud"] == ["databricks"]
    assert claims["sub"] == SUBJECT
    assert claims["iat"] == claims["nbf"] == claims["exp"] - 600
    assert claims["kubernetes.io"] == {
        "namespace": TENANT_A,
        "serviceaccount": {"name": SA, "uid": uid},
    }
    assert len(claims["jti"]) == 36
    expires = datetime.fromtimestamp(claims["exp"], tz=UTC)
    assert answer.status.expiration_timestamp == expires
    assert (answer.kind, answer.metadata.name, answer.metadata.uid) == ("TokenRequest", SA, uid)


async def test_token_request_defaults(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Without audiences or expiry the server's audiences and 3600 s are echoed and used."""
    answer = await mint(kube_client)
    assert answer.spec.audiences == [kube_api.issuer]
    assert answer.spec.expiration_seconds == 3600
    claims = jwt.decode(answer.status.token, options={"verify_signature": False})
    assert claims["aud"] == [kube_api.issuer]
    assert claims["exp"] - claims["iat"] == 3600


async def test_short_expiry_is_422(kube_client: client.ApiClient) -> None:
    """expirationSeconds under 600 is 422 Invalid with the apiserver's message."""
    with pytest.raises(client.ApiException) as info:
        await mint(kube_client, seconds=60)
    assert info.value.status == 422
    body = status_of(info.value)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
        "Invalid value: 60: may not specify a duration less than 10 minutes"
    )
    assert body["details"]["causes"][0]["field"] == "spec.expirationSeconds"


async def test_token_request_for_a_missing_service_account_is_404(
    kube_client: client.ApiClient,
) -> None:
    """No such ServiceAccount: 404 serviceaccounts "x" not found."""
    core = client.CoreV1Api(kube_client)
    with pytest.raises(client.ApiException) as info:
        await core.create_namespaced_service_account_token("x", TENANT_A, token_request())
    assert status_of(info.value)["message"] == 'serviceaccounts "x" not found'
    assert status_of(info.value)["details"] == {"name": "x", "kind": "serviceaccounts"}


async def test_denied_token_request_is_403_and_counted(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """A deny on serviceaccounts/token gives the reference's 403 and mints nothing."""
    kube_api.deny("create", "serviceaccounts/token", namespace=TENANT_A, name=SA)
    with pytest.raises(client.ApiException) as info:
        await mint(kube_client)
    assert info.value.status == 403
    assert status_of(info.value)["message"] == (
        f'serviceaccounts "{SA}" is forbidden: User "{GATEWAY_USER}" cannot create resource '
        f'"serviceaccounts/token" in API group "" in the namespace "{TENANT_A}"'
    )
    assert kube_api.token_requests(TENANT_A, SA) == 0
    assert kube_api.request_count("create", "serviceaccounts/token", 403) == 1


async def test_token_requests_are_counted_per_service_account(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Each TokenRequest counts against its ServiceAccount; mint_token() does not count."""
    await mint(kube_client)
    await mint(kube_client, audiences=["x"])
    kube_api.mint_token(TENANT_A, SA)
    assert kube_api.token_requests(TENANT_A, SA) == 2
    assert kube_api.token_requests("tenant-b", "etl") == 0
    assert kube_api.stats()["token_requests"] == {f"{TENANT_A}/{SA}": 2}


async def test_raw_bodies_without_kind_and_with_nulls_are_accepted(
    kube_api: KubeApiServer,
) -> None:
    """A TokenRequest body with null fields and no kind is answered 201 with defaults."""
    headers = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
    body = {
        "apiVersion": None,
        "metadata": None,
        "spec": {"audiences": None, "boundObjectRef": None},
    }
    url = f"{kube_api.url}/api/v1/namespaces/{TENANT_A}/serviceaccounts/{SA}/token"
    async with aiohttp.ClientSession(headers=headers) as http, http.post(url, json=body) as resp:
        assert resp.status == 201
        answer = await resp.json()
    assert answer["spec"]["expirationSeconds"] == 3600
    assert answer["spec"]["boundObjectRef"] is None


async def test_long_expiry_is_shortened_with_a_warning(kube_api_factory: KubeApiFactory) -> None:
    """Above max_expiration_seconds the token is shortened and a Warning header says so."""
    kube = await kube_api_factory(kube_config(tokens={"max_expiration_seconds": 1200}))
    headers = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
    url = f"{kube.url}/api/v1/namespaces/{TENANT_A}/serviceaccounts/{SA}/token"
    body = {"spec": {"expirationSeconds": 7200}}
    async with aiohttp.ClientSession(headers=headers) as http, http.post(url, json=body) as resp:
        answer = await resp.json()
        warning = resp.headers["Warning"]
    assert answer["spec"]["expirationSeconds"] == 1200
    assert warning == '299 - "requested expiration of 7200 seconds shortened to 1200 seconds"'


async def test_secret_bound_tokens_die_with_the_secret(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """A token bound to a Secret names it in its claims and fails review once it is gone."""
    ref = client.V1BoundObjectReference(api_version="v1", kind="Secret", name="databricks-token")
    answer = await mint(kube_client, bound_object_ref=ref)
    claims = jwt.decode(answer.status.token, options={"verify_signature": False})
    assert claims["kubernetes.io"]["secret"]["name"] == "databricks-token"
    assert (await review(kube_client, answer.status.token)).status.authenticated is True
    kube_api.delete_secret(TENANT_A, "databricks-token")
    assert (await review(kube_client, answer.status.token)).status.authenticated is None


async def test_token_review_success_shape(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """A valid token reviews as its ServiceAccount with groups, JTI and the shared audience."""
    token = (await mint(kube_client, audiences=["gw", "other"])).status.token
    result = await review(kube_client, token, ["gw"])
    assert result.spec.token == token
    status = result.status
    assert status.authenticated is True
    assert status.audiences == ["gw"]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert status.user.username == SUBJECT
    assert status.user.uid == uid_of(kube_api, TENANT_A, SA)
    assert status.user.groups == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{TENANT_A}",
        "system:authenticated",
    ]
    assert status.user.extra == {"authentication.kubernetes.io/credential-id": [f"JTI={jti}"]}
    assert kube_api.token_reviews == 1


async def test_token_review_without_audiences_uses_the_servers(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """No spec.audiences: the token must carry the API's own audience, which is reported."""
    token = kube_api.mint_token(TENANT_A, SA)
    assert (await review(kube_client, token)).status.audiences == [kube_api.issuer]
    other = kube_api.mint_token(TENANT_A, SA, audiences=["elsewhere"])
    assert (await review(kube_client, other)).status.authenticated is None


async def test_token_review_failure_shapes(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Failures are 201 with an error and no authenticated key: the client sees None."""
    token = kube_api.mint_token(TENANT_A, SA, audiences=["gw"], seconds=600)
    wrong = await review(kube_client, token, ["billing"])
    assert wrong.status.authenticated is None
    assert wrong.status.user.username is None
    assert wrong.status.error == (
        '[invalid bearer token, token audiences ["gw"] is invalid for the target audiences '
        '["billing"]]'
    )
    garbage = await review(kube_client, "not-a-jwt")
    assert (garbage.status.authenticated, garbage.status.error) == (None, "invalid bearer token")
    kube_api.advance(600 + 61)  # past exp and go-jose's one-minute leeway
    expired = await review(kube_client, token, ["gw"])
    assert expired.status.error == "[invalid bearer token, service account token has expired]"
    assert kube_api.stats()["token_reviews"] == {"total": 3, "authenticated": 0, "failed": 3}


async def test_raw_failed_review_has_no_authenticated_key(kube_api: KubeApiServer) -> None:
    """On the wire a failed review's status is {"user": {}, "error": ...}, spec echoed."""
    headers = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
    url = f"{kube_api.url}/apis/authentication.k8s.io/v1/tokenreviews"
    body = {"spec": {"token": "nope"}}
    async with aiohttp.ClientSession(headers=headers) as http, http.post(url, json=body) as resp:
        assert resp.status == 201
        answer = await resp.json()
    assert answer["status"] == {"user": {}, "error": "invalid bearer token"}
    assert answer["spec"] == {"token": "nope"}
    assert answer["kind"] == "TokenReview"


async def test_tokens_die_with_their_service_account(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Deleting the ServiceAccount, or recreating it with a new UID, invalidates its tokens."""
    token = kube_api.mint_token(TENANT_A, SA, audiences=["gw"])
    kube_api.delete_service_account(TENANT_A, SA)
    gone = await review(kube_client, token, ["gw"])
    assert gone.status.error == "[invalid bearer token, service account token has been invalidated]"
    kube_api.create_service_account(TENANT_A, SA)
    recreated = await review(kube_client, token, ["gw"])
    assert recreated.status.authenticated is None
    assert "does not match claim" in recreated.status.error


async def test_empty_token_review_is_400(kube_client: client.ApiClient) -> None:
    """An empty spec.token is refused with 400 BadRequest."""
    with pytest.raises(client.ApiException) as info:
        await review(kube_client, "")
    assert info.value.status == 400
    assert status_of(info.value)["message"] == "token is required for TokenReview in authentication"


async def test_discovery_documents(kube_api: KubeApiServer, kube_client: client.ApiClient) -> None:
    """Discovery names the issuer and JWKS URI; the JWKS is jwk-set+json; both cacheable."""
    well_known = client.WellKnownApi(kube_client)
    call = well_known.get_service_account_issuer_open_id_configuration(_preload_content=False)
    discovery = await raw_response(call)
    assert discovery.headers["Cache-Control"].startswith("public, max-age=")
    document = await discovery.json()
    assert document == {
        "issuer": kube_api.url,
        "jwks_uri": f"{kube_api.url}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    async with aiohttp.ClientSession() as http, http.get(document["jwks_uri"]) as resp:
        assert resp.status == 200  # anonymous, as the federation fetches it
        assert resp.content_type == "application/jwk-set+json"
        assert resp.headers["Cache-Control"].startswith("public, max-age=")
        keys = (await resp.json())["keys"]
    assert keys == [
        {"use": "sig", "kty": "RSA", "n": keys[0]["n"], "e": "AQAB", "kid": kube_api.kid,
         "alg": "RS256"}
    ]  # fmt: skip


async def test_key_rotation_keeps_old_tokens_until_the_key_is_removed(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """After rotation the new key signs; old tokens verify until the old key is removed."""
    old_kid = kube_api.kid
    old = kube_api.mint_token(TENANT_A, SA, audiences=["gw"])
    new_kid = kube_api.rotate_key()
    new = kube_api.mint_token(TENANT_A, SA, audiences=["gw"])
    assert jwt.get_unverified_header(new)["kid"] == new_kid != old_kid
    assert {k["kid"] for k in kube_api.jwks()["keys"]} == {old_kid, new_kid}
    assert (await review(kube_client, old, ["gw"])).status.authenticated is True
    assert kube_api.remove_key(old_kid)
    assert (await review(kube_client, old, ["gw"])).status.authenticated is None
    assert (await review(kube_client, new, ["gw"])).status.authenticated is True


async def test_ec_keys_sign_es256(kube_api_factory: KubeApiFactory) -> None:
    """key_type EC signs ES256 and publishes a P-256 JWK."""
    kube = await kube_api_factory(kube_config(tokens={"key_type": "EC"}))
    token = kube.mint_token(TENANT_A, SA, audiences=["gw"])
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    (jwk,) = kube.jwks()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")
    key = jwt.PyJWK(jwk)
    assert jwt.decode(token, key, algorithms=["ES256"], audience="gw")["sub"] == SUBJECT


async def test_databricks_federation_accepts_minted_tokens(
    kube_api: KubeApiServer,
    kube_client: client.ApiClient,
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """A TokenRequest token exchanges at the Databricks emulator, which discovers our JWKS."""
    config = emulator_config(
        identity={
            "service_principals": [
                {
                    "name": "tenant-a-sp",
                    "application_id": "11111111-2222-4333-8444-555555555555",
                    "federation_policies": [
                        {"issuer": kube_api.issuer, "audiences": ["databricks"], "subject": SUBJECT}
                    ],
                }
            ]
        }
    )
    workspace: DatabricksEmulator = await databricks_emulator_factory(config)
    token = (await mint(kube_client, audiences=["databricks"], seconds=600)).status.token
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "client_id": "11111111-2222-4333-8444-555555555555",
        "scope": "all-apis",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{workspace.url}/oidc/v1/token", data=form) as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["token_type"] == "Bearer"
    assert kube_api.request_count("get", "/openid/v1/jwks", 200) == 1
    assert isinstance(workspace.server, EmulatorServer)


async def test_bound_object_reference_errors(kube_client: client.ApiClient) -> None:
    """A Secret UID mismatch is 409 Conflict; a Pod (the fake has none) 404; other kinds 400."""
    stale = client.V1BoundObjectReference(
        api_version="v1", kind="Secret", name="databricks-token", uid="not-the-uid"
    )
    with pytest.raises(client.ApiException) as info:
        await mint(kube_client, bound_object_ref=stale)
    assert (info.value.status, status_of(info.value)["reason"]) == (409, "Conflict")
    pod = client.V1BoundObjectReference(api_version="v1", kind="Pod", name="web-1")
    with pytest.raises(client.ApiException) as info:
        await mint(kube_client, bound_object_ref=pod)
    assert status_of(info.value)["message"] == 'pods "web-1" not found'
    node = client.V1BoundObjectReference(api_version="v1", kind="Node", name="n")
    with pytest.raises(client.ApiException) as info:
        await mint(kube_client, bound_object_ref=node)
    assert info.value.status == 400
