"""Every configuration example in the README, docs/ and deploy/README.md loads as what it
says it is.

Each YAML or JSON block carries a marker (``<!-- example: KIND -->``, see ``tests.docs.blocks``)
and is loaded by the code that would read it for real:

- ``gateway``: ``load_settings`` on the block as gateway.yaml (a tenants file it names is
  written empty);
- ``gateway-fragment``: ``load_settings`` on the block merged into a gateway.yaml naming the
  workspaces ``prod`` and ``staging``;
- ``tenants``: ``load_settings`` on a gateway.yaml (those workspaces, Kubernetes in-cluster)
  naming the block as its tenants file;
- ``manifest``: ``kubernetes-validate``, strict, every document;
- ``kustomization``: the YAML parser, and only kustomize's own fields;
- ``federation-policy``: JSON, a Databricks service principal federation policy;
- ``rules``: ``promtool check rules``;
- ``json`` / ``yaml``: the parser alone (a body, an answer: not configuration).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.settings import load_settings
from gateway.settings.loading import parse_yaml
from tests.deploy.tools import tool
from tests.docs.blocks import ROOT, Block, all_blocks, blocks

KUBERNETES_VERSION = "1.33.0"
# Guides outside docs/ whose examples are checked too (the Kubernetes install guide).
MORE_DOCUMENTS = (ROOT / "deploy" / "README.md",)
CONFIG_LANGUAGES = frozenset({"yaml", "yml", "json"})
WORKSPACES = {
    "prod": {"host": "https://adb-1234567890123456.7.azuredatabricks.net"},
    "staging": {"host": "https://dbc-a1b2c3d4-e5f6.cloud.databricks.com"},
}
KUSTOMIZE_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "components",
        "namespace",
        "namePrefix",
        "nameSuffix",
        "images",
        "patches",
        "configMapGenerator",
        "secretGenerator",
        "generatorOptions",
        "labels",
        "commonAnnotations",
        "replicas",
    }
)


def _write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _load_gateway(block: Block, tmp_path: Path) -> None:
    data = parse_yaml(block.text) or {}
    tenants = data.get("tenants_file")
    if isinstance(tenants, str):
        (tmp_path / tenants).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / tenants).write_text("{}\n", encoding="utf-8")
    path = tmp_path / "gateway.yaml"
    path.write_text(block.text, encoding="utf-8")
    load_settings(path, environ={})


def _load_fragment(block: Block, tmp_path: Path) -> None:
    fragment = parse_yaml(block.text)
    assert isinstance(fragment, dict), "a gateway.yaml fragment is a mapping of sections"
    load_settings(_write(tmp_path / "gateway.yaml", {"workspaces": WORKSPACES, **fragment}), {})


def _load_tenants(block: Block, tmp_path: Path) -> None:
    (tmp_path / "tenants.yaml").write_text(block.text, encoding="utf-8")
    # Tenants' Secrets and ServiceAccounts are in Kubernetes, as in any real deployment.
    gateway = {
        "workspaces": WORKSPACES,
        "kubernetes": {"mode": "in-cluster"},
        "tenants_file": "tenants.yaml",
    }
    load_settings(_write(tmp_path / "gateway.yaml", gateway), environ={})


def _load_manifest(block: Block, tmp_path: Path) -> None:
    docs = [doc for doc in yaml.safe_load_all(block.text) if doc is not None]
    assert docs, "a manifest example holds at least one object"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _load_kustomization(block: Block, tmp_path: Path) -> None:
    data = yaml.safe_load(block.text)
    assert isinstance(data, dict)
    unknown = set(data) - KUSTOMIZE_FIELDS
    assert not unknown, f"not kustomization fields: {sorted(unknown)}"


def _load_policy(block: Block, tmp_path: Path) -> None:
    policy = json.loads(block.text)["oidc_policy"]
    assert set(policy) <= {"issuer", "audiences", "subject", "subject_claim", "jwks_json"}
    assert policy["issuer"].startswith("https://")
    assert isinstance(policy["audiences"], list)
    assert policy["audiences"]
    assert policy["subject"].startswith("system:serviceaccount:")


def _load_rules(block: Block, tmp_path: Path) -> None:
    rules = _write(tmp_path / "rules.yaml", yaml.safe_load(block.text))
    promtool = tool("promtool", package="prometheus")
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _parse_only(block: Block, tmp_path: Path) -> None:
    if block.language == "json":
        json.loads(block.text)
    else:
        list(yaml.safe_load_all(block.text))


LOADERS = {
    "gateway": _load_gateway,
    "gateway-fragment": _load_fragment,
    "tenants": _load_tenants,
    "manifest": _load_manifest,
    "kustomization": _load_kustomization,
    "federation-policy": _load_policy,
    "rules": _load_rules,
    "json": _parse_only,
    "yaml": _parse_only,
}


def checked_blocks() -> list[Block]:
    return [*all_blocks(), *(block for path in MORE_DOCUMENTS for block in blocks(path))]


EXAMPLES = [block for block in checked_blocks() if block.marker and block.marker[0] == "example"]


def test_every_configuration_block_is_marked() -> None:
    """A YAML or JSON block without a marker would be an example no test loads."""
    unmarked = [
        block.where
        for block in checked_blocks()
        if block.language in CONFIG_LANGUAGES and not block.marker
    ]
    assert not unmarked, f"add <!-- example: KIND --> before: {unmarked}"


def test_every_marker_names_a_known_kind() -> None:
    """A typo in a marker must not make an example silently unchecked."""
    unknown = [(b.where, b.marker[1]) for b in EXAMPLES if b.marker and b.marker[1] not in LOADERS]
    assert not unknown, f"kinds are {sorted(LOADERS)}: {unknown}"


def test_there_are_examples_of_each_configuration_file() -> None:
    """The guides show gateway.yaml, tenants files and manifests, so each is checked."""
    kinds = {block.marker[1] for block in EXAMPLES if block.marker}
    assert kinds >= {"gateway", "gateway-fragment", "tenants", "manifest", "federation-policy"}


def test_every_document_outside_docs_has_checked_examples() -> None:
    """deploy/README.md's manifests and overlay are among the examples loaded."""
    for path in MORE_DOCUMENTS:
        kinds = {b.marker[1] for b in EXAMPLES if b.path == path and b.marker}
        assert kinds >= {"manifest", "kustomization"}, (path, kinds)


@pytest.mark.parametrize("block", EXAMPLES, ids=lambda b: b.where)
def test_the_example_loads(block: Block, tmp_path: Path) -> None:
    """The example is accepted by the code that reads that kind of file."""
    assert block.marker is not None
    LOADERS[block.marker[1]](block, tmp_path)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("gateway", "server:\n  port: eighty\n"),
        ("gateway-fragment", "callers:\n  methods: [magic]\n"),
        ("tenants", "namespaces:\n  team-a:\n    identity: {type: pat}\n"),
        ("tenants", "defaults:\n  workspace: nowhere\n"),
        ("manifest", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nspec: {}\n"),
        ("kustomization", "resources: [a.yaml]\nbases: [old]\n"),
        ("federation-policy", '{"oidc_policy": {"issuer": "http://x", "audiences": ["a"]}}'),
    ],
)
def test_a_wrong_example_is_refused(kind: str, text: str, tmp_path: Path) -> None:
    """Each loader refuses what the real reader refuses, so a broken example cannot pass."""
    block = Block(Path("docs/x.md"), 1, "yaml", text, ("example", kind))
    with pytest.raises(Exception):  # noqa: B017, PT011 - each reader raises its own error
        LOADERS[kind](block, tmp_path)
