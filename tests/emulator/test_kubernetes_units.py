"""The fake Kubernetes API's pure parts: selectors, request info, Status bodies, keys, config."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.emulator.kubernetes import KubeEmulatorConfig, generate_key, key_id, load_config
from gateway.emulator.kubernetes.access import Rbac, User, query_bool, request_info
from gateway.emulator.kubernetes.objects import ServiceAccount
from gateway.emulator.kubernetes.selectors import FieldSelector, LabelSelector, SelectorError
from gateway.emulator.kubernetes.status import invalid, not_found, status_body
from gateway.errors import ConfigError

LABELS = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db,cache)", True),
        ("missing notin (a)", True),
        ("app notin (web)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("app in (web,db),!missing,tier", True),
        ("n>4", True),
        ("n<5", False),
        ("app>1", False),
        ("  app = web ,  tier in ( front )  ", True),
    ],
)
def test_label_selector_forms(selector: str, expected: bool) -> None:
    """Every label selector form of the reference matches as the apiserver's parser does."""
    assert LabelSelector.parse(selector).matches(LABELS) is expected


@pytest.mark.parametrize("selector", ["app in ()", "app=a b", "bad key!=x", "a,,b", "n>x", "-a"])
def test_malformed_label_selectors_are_refused(selector: str) -> None:
    """A selector that does not parse raises SelectorError (a 400 on the wire)."""
    with pytest.raises(SelectorError):
        LabelSelector.parse(selector)


def test_field_selectors_on_name_and_namespace() -> None:
    """metadata.name and metadata.namespace select with =, == and !=; other fields refuse."""
    sa = ServiceAccount("tenant-a", "web", "uid", 1, 0.0)
    assert FieldSelector.parse("metadata.name=web").matches(sa)
    assert FieldSelector.parse("metadata.namespace==tenant-a,metadata.name!=db").matches(sa)
    assert not FieldSelector.parse("metadata.name!=web").matches(sa)
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.x"):
        FieldSelector.parse("spec.x=1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("0", False), ("false", False), ("FALSE", False), ("False", False),
     ("True", True), ("true", True), ("1", True), ("", True), ("yes", True)],
)  # fmt: skip
def test_query_booleans_follow_the_apiserver(value: str | None, expected: bool) -> None:
    """Only absent, 0 and any case of false are false; everything else is true."""
    query = {} if value is None else {"watch": value}
    assert query_bool(query, "watch") is expected


@pytest.mark.parametrize(
    ("method", "path", "query", "verb", "resource", "namespace", "name"),
    [
        ("GET", "/api/v1/serviceaccounts", {}, "list", "serviceaccounts", "", ""),
        ("GET", "/api/v1/serviceaccounts", {"watch": "True"}, "watch", "serviceaccounts", "", ""),
        ("GET", "/api/v1/namespaces/a/serviceaccounts", {"watch": "false"}, "list",
         "serviceaccounts", "a", ""),
        ("GET", "/api/v1/namespaces/a/secrets/s", {}, "get", "secrets", "a", "s"),
        ("POST", "/api/v1/namespaces/a/serviceaccounts/x/token", {}, "create",
         "serviceaccounts/token", "a", "x"),
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {}, "create", "tokenreviews",
         "", ""),
    ],
)  # fmt: skip
def test_request_info_reads_the_url_as_the_apiserver(
    method: str,
    path: str,
    query: dict[str, str],
    verb: str,
    resource: str,
    namespace: str,
    name: str,
) -> None:
    """Verb, resource (with subresource), namespace and name come from method, path, query."""
    info = request_info(method, path, query)
    assert (info.verb, info.full_resource, info.namespace, info.name) == (
        verb,
        resource,
        namespace,
        name,
    )


def test_forbidden_messages_match_the_reference_formats() -> None:
    """Named, namespaced, cluster-scoped, grouped and non-resource denials read as in §4."""
    user = User("system:serviceaccount:gw:gateway")
    rbac = Rbac()
    rbac.deny("*", "*")
    cases = {
        ("POST", "/api/v1/namespaces/tenant-a/serviceaccounts/x/token"): (
            'serviceaccounts "x" is forbidden: User "system:serviceaccount:gw:gateway" cannot '
            'create resource "serviceaccounts/token" in API group "" in the namespace "tenant-a"'
        ),
        ("GET", "/api/v1/serviceaccounts"): (
            'serviceaccounts is forbidden: User "system:serviceaccount:gw:gateway" cannot list '
            'resource "serviceaccounts" in API group "" at the cluster scope'
        ),
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews"): (
            'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:gw:'
            'gateway" cannot create resource "tokenreviews" in API group '
            '"authentication.k8s.io" at the cluster scope'
        ),
        ("GET", "/openid/v1/jwks"): (
            'forbidden: User "system:serviceaccount:gw:gateway" cannot get path "/openid/v1/jwks"'
        ),
    }
    for (method, path), message in cases.items():
        assert request_info(method, path, {}).forbidden_message(user.username) == message


def test_deny_rules_narrow_by_namespace_name_and_user() -> None:
    """A rule with a namespace, name or user refuses only requests that match all of them."""
    rbac = Rbac()
    rule = rbac.deny("get", "secrets", namespace="a", name="s", user="bob")
    info = request_info("GET", "/api/v1/namespaces/a/secrets/s", {})
    other = request_info("GET", "/api/v1/namespaces/a/secrets/t", {})
    rbac.check(other, User("bob"))
    rbac.check(info, User("alice"))
    with pytest.raises(Exception, match="is forbidden"):
        rbac.check(info, User("bob"))
    assert rbac.allow(rule) == 1
    rbac.check(info, User("bob"))


def test_status_bodies_have_the_apimachinery_shape() -> None:
    """NotFound names the resource in details.kind; Expired and Unauthorized carry no details."""
    assert not_found("secrets", "db").body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "db" not found',
        "reason": "NotFound",
        "details": {"name": "db", "kind": "secrets"},
        "code": 404,
    }
    assert "details" not in status_body(410, "too old resource version: 5 (42)")
    assert status_body(410, "x")["reason"] == "Expired"
    assert status_body(401, "Unauthorized")["reason"] == "Unauthorized"


def test_invalid_token_request_message_matches_kubectl() -> None:
    """A short expiry reads as the apiserver writes it, with an empty name and one cause."""
    why = "may not specify a duration less than 10 minutes"
    error = invalid(
        "TokenRequest", "authentication.k8s.io", "", [("spec.expirationSeconds", "60", why)]
    )
    assert error.body["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid '
        "value: 60: may not specify a duration less than 10 minutes"
    )
    assert error.body["details"]["causes"][0]["field"] == "spec.expirationSeconds"
    assert error.code == 422


def test_key_id_is_sha256_of_the_public_key_der() -> None:
    """kid = unpadded base64url of SHA-256 over the DER SubjectPublicKeyInfo."""
    key = generate_key("EC")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert key_id(key) == expected


def test_config_defaults_make_an_empty_cluster() -> None:
    """With no config the cluster is empty, RSA-signed, and tokens default to an hour."""
    config = KubeEmulatorConfig()
    assert config.namespaces == {}
    assert config.tokens.default_expiration_seconds == 3600
    assert config.tokens.key_type == "RSA"


def test_load_config_reads_yaml_and_a_signing_key_file(tmp_path: Path) -> None:
    """YAML loads; signing_key_file is read relative to the config file into the PEM."""
    key = generate_key("EC")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    (tmp_path / "sa.key").write_text(pem)
    path = tmp_path / "kube.yaml"
    path.write_text(
        "callers: [{token: abc}]\n"
        "tokens: {signing_key_file: sa.key}\n"
        "namespaces:\n  team: {secrets: {s: {string_data: {k: v}}}}\n"
    )
    config = load_config(str(path))
    assert config.tokens.signing_key_pem is not None
    assert config.tokens.signing_key_pem.get_secret_value() == pem
    assert config.namespaces["team"].secrets["s"].decoded() == {"k": b"v"}
    assert "abc" not in repr(config)


def test_load_config_names_the_file_and_key_of_each_problem(tmp_path: Path) -> None:
    """Invalid names and values are reported as 'file: key: message'."""
    path = tmp_path / "bad.yaml"
    path.write_text("namespaces:\n  Bad_NS: {}\nwatch: {history_size: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    problems = "\n".join(info.value.problems)
    assert f"{path}: namespaces" in problems
    assert f"{path}: watch.history_size" in problems


def test_the_example_config_loads() -> None:
    """config/kubernetes-emulator.yaml is valid."""
    config = load_config("config/kubernetes-emulator.yaml")
    assert config.callers
    assert config.namespaces
