"""Settings: loading, environment overrides, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.errors import ConfigError
from gateway.settings import load_settings, normalize_host, resolve_secret

GATEWAY = """
server: {port: 9090}
workspaces:
  prod: {host: "https://adb-1.2.azuredatabricks.net/"}
tenants_file: tenants.yaml
"""
TENANTS = """
defaults: {workspace: prod}
namespaces:
  team-a:
    identity: {type: pat, token: dapi0123456789abcdef0123456789abcdef}
  team-b:
    identity: {type: oauth-m2m, client_id: abc, client_secret_env: TEAM_B_SECRET}
    quotas: {max_active_runs: 3}
"""


def write(tmp_path: Path, gateway: str = GATEWAY, tenants: str = TENANTS) -> Path:
    (tmp_path / "tenants.yaml").write_text(tenants)
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway)
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ or {})
    return info.value.problems


def test_loads_gateway_and_tenants_files(tmp_path: Path) -> None:
    """Both files load into one frozen settings object with normalized hosts."""
    settings = load_settings(write(tmp_path), environ={})
    assert settings.server.port == 9090
    assert settings.workspaces["prod"].host == "https://adb-1.2.azuredatabricks.net"
    assert settings.tenants.quotas("team-b").max_active_runs == 3
    assert settings.tenants.quotas("unknown").max_active_runs == 20
    assert settings.workspace_for("team-a") == settings.workspaces["prod"]


def test_environment_overrides_gateway_keys(tmp_path: Path) -> None:
    """LAKEGATE_SECTION__KEY overrides the file, parsed as a YAML scalar."""
    environ = {"LAKEGATE_SERVER__PORT": "7000", "LAKEGATE_STORE__SQLITE_PATH": "/data/x.db"}
    settings = load_settings(write(tmp_path), environ=environ)
    assert settings.server.port == 7000
    assert settings.store.sqlite_path == "/data/x.db"


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    """An override that fails validation is reported under its variable's name."""
    problems = problems_of(write(tmp_path), {"LAKEGATE_SERVER__PORT": "lots"})
    assert len(problems) == 1
    assert problems[0].startswith("environment LAKEGATE_SERVER__PORT: server.port:")


def test_error_in_tenants_file_names_that_file_and_key(tmp_path: Path) -> None:
    """A bad tenant policy names tenants.yaml and the dotted key."""
    tenants = "namespaces:\n  team-a:\n    identity: {type: pat}\n"
    problems = problems_of(write(tmp_path, tenants=tenants))
    assert problems == [
        f"{tmp_path / 'tenants.yaml'}: namespaces.team-a.identity: "
        "pat: give exactly one of 'token', 'token_env', 'secret'"
    ]


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    """A typo in a key is an error, not silently ignored."""
    problems = problems_of(write(tmp_path, gateway=GATEWAY + "sever: {port: 1}\n"))
    assert problems == [f"{tmp_path / 'gateway.yaml'}: sever: Extra inputs are not permitted"]


def test_invalid_namespace_name_is_refused(tmp_path: Path) -> None:
    """Namespace names must be Kubernetes names."""
    problems = problems_of(write(tmp_path, tenants="namespaces:\n  Team_A: {}\n"))
    assert "'Team_A' is not a Kubernetes namespace name" in problems[0]


def test_workspace_reference_must_be_on_the_allow_list(tmp_path: Path) -> None:
    """A tenant pointing at an unknown workspace is refused with the known names."""
    problems = problems_of(write(tmp_path, tenants="namespaces:\n  a: {workspace: dev}\n"))
    assert "workspace 'dev' is not in the workspaces allow-list (known: prod)" in problems[0]


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    """Broken YAML names the file and the line."""
    problems = problems_of(write(tmp_path, gateway="server: [port\n"))
    assert problems[0].startswith(f"{tmp_path / 'gateway.yaml'}: not valid YAML (line ")


def test_missing_tenants_file_is_named(tmp_path: Path) -> None:
    """A tenants_file that does not exist is reported with its path."""
    path = tmp_path / "gateway.yaml"
    path.write_text(GATEWAY)
    problems = problems_of(path)
    assert problems[0].startswith(f"{tmp_path / 'tenants.yaml'}: cannot be read")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://ADB-1.azuredatabricks.net/", "https://adb-1.azuredatabricks.net"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://localhost:1", "http://localhost:1"),
    ],
)
def test_hosts_are_normalized(host: str, expected: str) -> None:
    """Hosts compare as scheme://netloc."""
    assert normalize_host(host) == expected


@pytest.mark.parametrize(
    "host",
    ["http://adb-1.azuredatabricks.net", "ftp://adb-1.azuredatabricks.net", "https://"],
)
def test_bad_hosts_are_refused(host: str) -> None:
    """Plain http off loopback, other schemes and no host at all are refused."""
    with pytest.raises(ValueError, match=r"URL|http|path"):
        normalize_host(host)


def test_secrets_are_masked_in_repr(tmp_path: Path) -> None:
    """An inline token never shows in a repr or str of the settings."""
    settings = load_settings(write(tmp_path), environ={})
    assert "dapi0123456789abcdef" not in repr(settings)
    assert "dapi0123456789abcdef" not in str(settings)


def test_resolve_secret_reads_named_environment_variable() -> None:
    """A secret named by an environment variable is read from it, and missing is an error."""
    assert resolve_secret(None, "S", {"S": "value"}) == "value"
    with pytest.raises(ConfigError, match="environment S: is not set"):
        resolve_secret(None, "S", {})


def test_check_config_exits_nonzero_with_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config prints each problem and exits 2 on a bad file, 0 on a good one."""
    bad = write(tmp_path, gateway=GATEWAY + "server: {port: -1}\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "server.port" in capsys.readouterr().err
    good = write(tmp_path)
    assert main(["check-config", "--config", str(good)]) == 0
    assert "ok (1 workspace(s), 2 namespace(s))" in capsys.readouterr().out


def test_shipped_example_configuration_is_valid() -> None:
    """config/gateway.yaml as shipped passes validation."""
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "config" / "gateway.yaml", environ={})
    assert "team-a" in settings.tenants.namespaces


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "pat", "secret": {"name": "databricks-token"}},
        {"type": "oauth-m2m", "secret": {"name": "databricks-oauth"}},
        {"type": "oauth-m2m", "client_id": "abc", "client_secret_env": "S"},
        {"type": "service-account-federation", "service_account": "etl", "client_id": "sp"},
        {"type": "pod-token-federation"},
        {"type": "azure-client-secret", "tenant_id": "t", "client_id": "c", "client_secret": "x"},
        {"type": "azure-workload-identity", "tenant_id": "t", "client_id": "c", "token_file": "f"},
        {"type": "default"},
    ],
)
def test_every_identity_type_loads(tmp_path: Path, identity: dict[str, object]) -> None:
    """Each identity type of the tenant policy validates in its documented form."""
    tenants = "namespaces:\n  team-a:\n    identity: " + repr(identity).replace("'", '"') + "\n"
    settings = load_settings(write(tmp_path, tenants=tenants), environ={})
    policy = settings.tenants.policy("team-a")
    assert policy is not None
    assert policy.identity is not None
    assert policy.identity.type == identity["type"]


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ({"type": "oauth-m2m", "client_secret": "x"}, "'client_id' is required"),
        ({"type": "pat", "token": "x", "secret": {"name": "s"}}, "give exactly one of"),
        ({"type": "pat", "secret": {"name": "Not_A_Name"}}, "not a Kubernetes object name"),
        ({"type": "service-account-federation"}, "service_account: Field required"),
        ({"type": "kerberos"}, "does not match any of the expected tags"),
    ],
)
def test_bad_identities_are_refused_with_the_reason(
    tmp_path: Path, identity: dict[str, object], message: str
) -> None:
    """An identity that cannot work is refused at start-up, saying why."""
    tenants = "namespaces:\n  team-a:\n    identity: " + repr(identity).replace("'", '"') + "\n"
    problems = problems_of(write(tmp_path, tenants=tenants))
    assert any(message in p for p in problems), problems


def test_kubernetes_explicit_mode_needs_host_and_token(tmp_path: Path) -> None:
    """Explicit Kubernetes access without a host is refused."""
    problems = problems_of(write(tmp_path, gateway=GATEWAY + "kubernetes: {mode: explicit}\n"))
    assert "needs 'host' and 'token_file'" in problems[0]


def test_azure_authority_is_normalized(tmp_path: Path) -> None:
    """The Entra authority keeps its path and ends with one slash."""
    gateway = GATEWAY + "identity: {azure_authority: 'http://127.0.0.1:9/'}\n"
    settings = load_settings(write(tmp_path, gateway=gateway), environ={})
    assert settings.identity.azure_authority == "http://127.0.0.1:9/"
    assert settings.identity.default_for_unconfigured is False
