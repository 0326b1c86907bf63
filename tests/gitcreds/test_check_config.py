"""``lakegate check-config`` refuses ``git_credentials: entra`` for a namespace whose
identity is not an Azure service principal, and says why (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

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
AZURE = (
    "{type: azure-client-secret, tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011e47a, "
    "client_id: 3c9e1f0a-5b7d-4e2f-8a61-0d4c2b9e7f13, client_secret: inline-secret-value}"
)
WORKLOAD = (
    "{type: azure-workload-identity, tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011e47a, "
    "client_id: 3c9e1f0a-5b7d-4e2f-8a61-0d4c2b9e7f13, token_file: /dev/null}"
)
PAT = "{type: pat, token: dapi-inline-token}"


def run(tmp_path: Path, identity: str | None, mode: str = "entra") -> int:
    policy = f"identity: {identity}, " if identity else ""
    team = f"  team-a: {{{policy}git_credentials: {mode}}}\n"
    tenants = "defaults: {workspace: prod}\nnamespaces:\n" + team
    (tmp_path / "tenants.yaml").write_text(tenants, encoding="utf-8")
    path = tmp_path / "gateway.yaml"
    path.write_text(GATEWAY, encoding="utf-8")
    return main(["check-config", "--config", str(path), "--strict"])


@pytest.mark.parametrize("identity", [AZURE, WORKLOAD], ids=["client-secret", "workload"])
def test_an_azure_namespace_may_enable_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], identity: str
) -> None:
    """An Entra client secret or workload identity with git_credentials: entra is fine."""
    assert run(tmp_path, identity) == 0
    assert "git_credentials" not in capsys.readouterr().err


def test_a_pat_namespace_cannot_enable_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PAT namespace is an error naming the file, the key, the cause and the fix."""
    assert run(tmp_path, PAT) == 2
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "git_credentials" in line)
    assert f"{tmp_path / 'tenants.yaml'}: namespaces.team-a.git_credentials:" in line
    assert "needs an Azure service principal" in line
    assert "a pat identity" in line
    assert "set git_credentials: off" in line


def test_a_namespace_without_an_identity_of_its_own_cannot_enable_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Discovered identities (ServiceAccounts, Secrets) are never Entra ones: refused too."""
    assert run(tmp_path, None) == 2
    assert "has no identity of its own" in capsys.readouterr().err


def test_off_is_the_default_and_says_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """git_credentials: off (the default) on a PAT namespace is no finding."""
    assert run(tmp_path, PAT, mode="off") == 0
    assert "git_credentials" not in capsys.readouterr().err
