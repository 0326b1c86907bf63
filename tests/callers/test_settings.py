"""The callers section: selectors, salted hashes, and the checks that run at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gateway.errors import ConfigError
from gateway.settings import (
    CallersSettings,
    Settings,
    load_settings,
    parse_salted_hash,
    parse_selector,
)

SHA = "a" * 64

EXAMPLE = f"""
kubernetes: {{mode: in-cluster}}
callers:
  methods: [kubernetes, api_key, jwt]
  kubernetes: {{audiences: [lakegate], cache_seconds: 30, failure_cache_seconds: 5}}
  api_keys:
    - {{name: reports, sha256: "{SHA}", namespaces: [team-a]}}
    - name: batch
      hash: "scrypt$16384$8$1$c2FsdHNhbHQ=$ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0"
      namespace_selector: "tier=batch"
  jwt_issuers:
    - issuer: https://token.actions.githubusercontent.com
      audiences: [lakegate]
      namespace_claim: namespace
      claim_map:
        - {{claim: repository, values: {{"org/repo-a": [team-a]}}}}
  grants:
    - {{subject: "system:serviceaccount:airflow:scheduler", namespaces: [team-a, team-b]}}
    - subject: "system:serviceaccount:platform:*"
      namespace_selector: "lakegate.io/tier in (batch,ml),!frozen"
"""


@pytest.mark.parametrize("text", ["", "a=b,,c", "Bad Key=1", "k=bad value!", "k in (a,b"])
def test_invalid_selectors_are_refused(text: str) -> None:
    """Empty, malformed or impossible selectors fail at parse time, not by matching nothing."""
    with pytest.raises(ValueError, match=r"not a label|empty"):
        parse_selector(text)


@pytest.mark.parametrize(
    "text",
    [
        "scrypt$16384$8$1$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$600000$c2FsdA==$ZGlnZXN0",
    ],
)
def test_salted_hashes_parse(text: str) -> None:
    """Both salted forms parse to their scheme, parameters, salt and digest."""
    parsed = parse_salted_hash(text)
    assert parsed.salt == b"salt"
    assert parsed.digest == b"digest"


@pytest.mark.parametrize(
    "text",
    [
        "md5$x",
        "scrypt$1000$8$1$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$10$c2FsdA==$ZGlnZXN0",
        "scrypt$x",
    ],
)
def test_bad_salted_hashes_are_refused(text: str) -> None:
    """Unknown schemes, weak parameters and bad shapes are configuration errors."""
    with pytest.raises(ValueError, match=r"hash|scrypt|pbkdf2"):
        parse_salted_hash(text)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"methods": ["none", "api_key"]}, "cannot be combined"),
        ({"methods": ["api_key"]}, "api_keys"),
        ({"methods": ["jwt"]}, "jwt_issuers"),
        ({"methods": ["api_key", "api_key"], "api_keys": [{"name": "k", "sha256": SHA}]}, "once"),
        ({"api_keys": [{"name": "k", "sha256": "abc"}]}, "64 hex"),
        ({"api_keys": [{"name": "k"}]}, "exactly one"),
        ({"api_keys": [{"name": "k", "sha256": SHA}, {"name": "k", "sha256": "b" * 64}]}, "unique"),
        ({"api_keys": [{"name": "k", "sha256": SHA, "namespaces": ["Team_A"]}]}, "namespace"),
        ({"grants": [{"subject": "x"}]}, "namespaces"),
        ({"jwt_issuers": [{"issuer": "http://issuer.example", "audiences": ["a"]}]}, "https"),
        ({"jwt_issuers": [{"issuer": "https://i.example", "audiences": []}]}, "audiences"),
        ({"kubernetes": {"audiences": []}}, "audiences"),
    ],
)
def test_invalid_sections_are_refused(section: dict[str, Any], problem: str) -> None:
    """Each inconsistent callers section is refused with a message naming the problem."""
    with pytest.raises(ValidationError, match=problem):
        CallersSettings.model_validate(section)


def test_kubernetes_methods_and_selectors_need_the_kubernetes_api() -> None:
    """TokenReview and selector grants are refused at load when kubernetes.mode is off."""
    with pytest.raises(ValidationError, match=r"kubernetes\.mode"):
        Settings.model_validate({"callers": {"methods": ["kubernetes"]}})
    grant = {"subject": "x", "namespace_selector": "a=b"}
    with pytest.raises(ValidationError, match=r"kubernetes\.mode"):
        Settings.model_validate({"callers": {"grants": [grant]}})


def test_the_documented_example_loads(tmp_path: Path) -> None:
    """The example section in the report and module docs is valid as written."""
    path = tmp_path / "gateway.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    settings = load_settings(path, environ={})
    assert settings.callers.methods == ("kubernetes", "api_key", "jwt")
    assert settings.callers.uses_selectors()
    assert yaml.safe_load(EXAMPLE)["callers"]["grants"][0]["namespaces"] == ["team-a", "team-b"]


def test_a_bad_section_names_file_and_key(tmp_path: Path) -> None:
    """load_settings reports a bad callers key with the file it is in."""
    path = tmp_path / "gateway.yaml"
    path.write_text("callers: {methods: [password]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert any(str(path) in p and "callers.methods" in p for p in caught.value.problems)


def test_key_hashes_stay_out_of_reprs() -> None:
    """A printed callers section names keys but shows none of their hashes."""
    section = CallersSettings.model_validate(
        {"methods": ["api_key"], "api_keys": [{"name": "k", "sha256": SHA}]}
    )
    assert SHA not in repr(section)
    assert SHA not in str(section)


@pytest.mark.parametrize(
    "text",
    [
        # 128 * N * r bytes: 4 GiB, then 128 MiB, for one check.
        "scrypt$1048576$32$1$c2FsdA==$ZGlnZXN0",
        "scrypt$131072$8$1$c2FsdA==$ZGlnZXN0",
        # p runs the memory-hard part p times over.
        "scrypt$16384$8$16$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$10000000$c2FsdA==$ZGlnZXN0",
    ],
)
def test_salted_hashes_too_costly_to_check_are_refused(text: str) -> None:
    """A hash whose one check would take more than 64 MiB, or seconds of CPU, is refused at
    configuration load: every unknown key presented would pay it."""
    with pytest.raises(ValueError, match=r"at most"):
        parse_salted_hash(text)
