"""``lakegate check-config``: every problem of every file in one pass, each naming its file;
warnings printed with exit 0, failures under --strict; YAML 1.1 word booleans read as words."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.preflight import CHECKS, Files, Finding, run_checks
from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings
from tests.deploy.manifests import ROOT

GATEWAY = """
server: {host: 127.0.0.1, port: 8080}
workspaces:
  prod: {host: https://adb-1234567890123456.7.azuredatabricks.net}
kubernetes: {mode: off}
callers:
  methods: [api_key]
  api_keys:
    - {name: k, sha256: "%s", namespaces: [team-a]}
tenants_file: tenants.yaml
""" % ("a" * 64)
TENANTS = """
defaults: {workspace: prod}
namespaces:
  team-a:
    identity: {type: pat, token: dapi-inline}
"""


def write(tmp_path: Path, gateway: str = GATEWAY, tenants: str | None = TENANTS) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway, encoding="utf-8")
    if tenants is not None:
        (tmp_path / "tenants.yaml").write_text(tenants, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_tenant_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """check-config reads the process environment; keep the machine's out of it."""
    for name in ("TEAM_A_DATABRICKS_CLIENT_SECRET", "TEAM_PAT"):
        monkeypatch.delenv(name, raising=False)


def check(path: Path, *flags: str) -> int:
    return main(["check-config", "--config", str(path), *flags])


def test_a_clean_configuration_is_ok_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to say: exit 0, one ok line, nothing on stderr."""
    assert check(write(tmp_path), "--strict") == 0
    captured = capsys.readouterr()
    assert "ok (1 workspace(s), 1 namespace(s))" in captured.out
    assert captured.err == ""


def test_problems_in_both_files_are_reported_in_one_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad key in gateway.yaml and a bad namespace in tenants.yaml, each with its file."""
    gateway = GATEWAY.replace("port: 8080", "port: -1")
    tenants = TENANTS + "  Not_A_Namespace: {}\n"
    path = write(tmp_path, gateway, tenants)
    assert check(path) == 2
    err = capsys.readouterr().err
    assert f"{path}: server.port" in err
    assert f"{tmp_path / 'tenants.yaml'}: namespaces" in err
    assert "2 problem(s)" in err


def test_an_unreadable_tenants_file_does_not_hide_the_gateway_files_problems(
    tmp_path: Path,
) -> None:
    """The missing tenants file and the gateway file's bad key come together."""
    path = write(tmp_path, GATEWAY.replace("port: 8080", "port: many"), tenants=None)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    problems = raised.value.problems
    assert any("tenants.yaml: cannot be read" in p for p in problems)
    assert any(p.startswith(f"{path}: server.port") for p in problems)


WARNED = [
    (GATEWAY.replace("methods: [api_key]", "methods: [none]"), TENANTS, "authentication off"),
    (GATEWAY.replace("adb-1234567890123456.7", "adb-0000000000000000.0"), TENANTS, "placeholder"),
    (
        GATEWAY,
        TENANTS.replace(
            "{type: pat, token: dapi-inline}",
            "{type: oauth-m2m, client_id: 00000000-0000-0000-0000-000000000000, client_secret: s}",
        ),
        "placeholder",
    ),
    (GATEWAY, TENANTS.replace("token: dapi-inline", "token_env: TEAM_PAT"), "TEAM_PAT is not set"),
]


@pytest.mark.parametrize(
    ("gateway", "tenants", "said"), WARNED, ids=["auth-off", "host", "client-id", "unset-env"]
)
def test_warnings_are_printed_with_exit_0_and_fail_under_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gateway: str, tenants: str, said: str
) -> None:
    """Each warning is printed naming its file; exit 0, and 2 with --strict."""
    path = write(tmp_path, gateway, tenants)
    assert check(path) == 0
    captured = capsys.readouterr()
    assert "1 warning(s)" in captured.out
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("warning: ")
    assert said.split()[0].lower() in line.lower()
    assert str(tmp_path) in line
    assert check(path, "--strict") == 2


def test_the_shipped_base_warns_about_its_placeholders_and_the_refused_tenant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """deploy/base passes (exit 0) but says what to replace and which tenant is refused."""
    assert check(ROOT / "deploy" / "base" / "gateway.yaml") == 0
    err = capsys.readouterr().err
    assert "workspaces.prod.host" in err
    assert "namespaces.team-a.identity.client_id" in err
    assert "TEAM_A_DATABRICKS_CLIENT_SECRET is not set" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [("kubernetes: {mode: off}", "off"), ("kubernetes: {mode: 'off'}", "off")],
)
def test_yaml_word_booleans_in_enum_settings_read_as_words(
    tmp_path: Path, text: str, expected: str
) -> None:
    """``mode: off`` unquoted is the word off, not False."""
    path = write(tmp_path, GATEWAY.replace("kubernetes: {mode: off}", text))
    assert load_settings(path, environ={}).kubernetes.mode == expected


def test_a_word_boolean_that_is_no_choice_is_refused_naming_the_choices(tmp_path: Path) -> None:
    """``over_active: no`` is the word no, refused with the words that are allowed."""
    tenants = "defaults: {workspace: prod, quotas: {over_active: no}}\n"
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, tenants=tenants), environ={})
    (problem,) = raised.value.problems
    assert "defaults.quotas.over_active" in problem
    assert "'queue' or 'refuse'" in problem


def test_word_booleans_still_set_boolean_settings(tmp_path: Path) -> None:
    """``paused: yes`` and ``draining: off`` are true and false, as people mean them."""
    tenants = "defaults: {workspace: prod, quotas: {paused: yes, draining: off}}\n"
    quotas = load_settings(write(tmp_path, tenants=tenants), environ={}).tenants.defaults.quotas
    assert (quotas.paused, quotas.draining) == (True, False)


def test_an_environment_override_reads_word_booleans_as_words(tmp_path: Path) -> None:
    """LAKEGATE_KUBERNETES__MODE=off is the word too."""
    env = {"LAKEGATE_KUBERNETES__MODE": "off"}
    assert load_settings(write(tmp_path), environ=env).kubernetes.mode == "off"


def test_more_checks_are_one_function_each(tmp_path: Path) -> None:
    """run_checks takes any list of checks; their findings follow the built-in ones."""
    settings = load_settings(write(tmp_path), environ={})

    def sdk_environment(_settings: Settings, files: Files, env: Mapping[str, str]) -> list[Finding]:
        return [Finding("warning", "environment", "DATABRICKS_HOST set")] if env else []

    files = Files(gateway="g", tenants="t")
    found = run_checks(settings, files, {"X": "1"}, (*CHECKS, sdk_environment))
    assert found == [Finding("warning", "environment", "DATABRICKS_HOST set")]


def test_a_policy_the_gateway_would_not_start_with_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Secret-held identity with kubernetes.mode off stops serve, so check-config fails."""
    tenants = TENANTS.replace("{type: pat, token: dapi-inline}", "{type: pat, secret: {name: p}}")
    assert check(write(tmp_path, tenants=tenants)) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'tenants.yaml'}: namespaces.team-a.identity: needs the" in err
