"""The Secrets the lakegate-tenant ClusterRole lets the gateway read, by name, are exactly the
ones the shipped set-up reads: the Databricks credentials discovery looks for
(``identity.secret_names``) and every Secret a documented tenants-file example names
(``secret: {name: ...}``, the webhook signing Secret ``lakegate-webhook`` among them).

test_rbac_verbs.py compares resources and verbs; ``resourceNames`` narrow a rule past what a
request log can show, so they are compared here with what the configuration names. A name
missing from the role is a documented set-up refused with a 403 in a real cluster; a name
granted that nothing names is a read that should not be possible.
"""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import IdentityOptions, load_settings
from tests.deploy.manifests import BASE, DEPLOY, load_docs
from tests.docs.blocks import documents

WEBHOOK_SECRET = "lakegate-webhook"
# `secret: {name: X}` as the examples write it, in a fenced block or a commented template.
SECRET_REF = re.compile(r"\bsecret:\s*\{\s*name:\s*([a-z0-9][a-z0-9.-]*)\s*\}")
RESOURCE_NAMES = re.compile(r'resources:\s*\["secrets"\],\s*resourceNames:\s*\[([^\]]*)\]')


def granted_secret_names() -> set[str]:
    names: set[str] = set()
    for doc in load_docs(BASE / "rbac-tenant.yaml"):
        for rule in doc.get("rules", []):
            if "secrets" in rule["resources"]:
                names.update(rule.get("resourceNames", []))
    return names


def documented_secret_names() -> set[str]:
    """Every Secret named in the README, docs/ and deploy/ (YAML and guides)."""
    texts = [path.read_text("utf-8") for path in documents()]
    texts += [path.read_text("utf-8") for path in sorted(DEPLOY.rglob("*.yaml"))]
    texts.append((DEPLOY / "README.md").read_text("utf-8"))
    return {name for text in texts for name in SECRET_REF.findall(text)}


def test_the_tenant_role_grants_exactly_the_secrets_the_setup_reads() -> None:
    """Both directions: nothing documented is refused, nothing granted goes unread."""
    read = set(IdentityOptions().secret_names) | documented_secret_names()
    assert WEBHOOK_SECRET in read, "the guides show the webhook Secret by its conventional name"
    granted = granted_secret_names()
    assert not read - granted, f"named, not in rbac-tenant.yaml's resourceNames: {read - granted}"
    assert not granted - read, f"rbac-tenant.yaml grants Secrets nothing names: {granted - read}"


def test_the_narrower_role_in_deploy_readme_names_the_same_secrets() -> None:
    """The Role a namespace may bind instead must not quietly drop the webhook Secret."""
    found = RESOURCE_NAMES.findall((DEPLOY / "README.md").read_text("utf-8"))
    assert found, "deploy/README.md shows a narrower Role"
    for listed in found:
        names = {name.strip().strip('"') for name in listed.split(",")}
        assert names == granted_secret_names()


def test_the_commented_webhook_template_in_the_base_tenants_file_loads(tmp_path: Path) -> None:
    """Uncommented as an operator would, the base's webhook template is a valid policy
    reading the Secret the role grants."""
    lines = (BASE / "tenants.yaml").read_text("utf-8").splitlines()
    start = lines.index("    # webhooks:")
    block = []
    for line in lines[start:]:
        if not line.startswith("    # "):
            break
        block.append("    " + line[len("    # ") :])
    tenants = "\n".join(lines[:start] + block + lines[start + len(block) :]) + "\n"
    (tmp_path / "tenants.yaml").write_text(tenants, encoding="utf-8")
    (tmp_path / "gateway.yaml").write_text((BASE / "gateway.yaml").read_text("utf-8"))
    settings = load_settings(tmp_path / "gateway.yaml", environ={})
    webhooks = settings.tenants.webhooks("team-a")
    assert webhooks.url is not None
    assert webhooks.secret is not None
    assert webhooks.secret.name == WEBHOOK_SECRET
