"""Invariants of the kustomize manifests under deploy/, checked offline without a cluster."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.identity.plans import AUDIENCE_ANNOTATIONS, CLIENT_ID_ANNOTATIONS, ENABLED_LABELS
from gateway.settings import (
    OAuthM2MIdentity,
    PatIdentity,
    Settings,
    load_settings,
    resolve_secret,
)
from tests.deploy.manifests import (
    BASE,
    DEPLOY,
    EXAMPLE_TENANT,
    Doc,
    all_objects,
    container,
    container_port,
    deployment,
    generator_inputs,
    kustomizations,
    load_docs,
    manifest_files,
    mount_for,
    objects,
    one,
    pod_spec,
    volume,
    volume_with,
)

GATEWAY_NAMESPACE = "lakegate-system"
GATEWAY_SA = "lakegate"
TENANT_SECRETS = {"databricks-oauth", "databricks-token"}
# The webhook signing Secret a tenants-file entry may name (test_rbac_secret_names.py).
WEBHOOK_SECRET = "lakegate-webhook"
# The names the Kubernetes identity resolver looks for on a tenant's ServiceAccount.
FEDERATION_LABEL = "lakegate.io/databricks-enabled"
FEDERATION_ANNOTATIONS = (
    "lakegate.io/databricks-client-id",
    "lakegate.io/databricks-audience",
    "lakegate.io/databricks-workspace",
)
CALLER_LABEL = "lakegate.io/caller"
SCRAPER_LABEL = "lakegate.io/metrics-scraper"
# What envFrom can turn into a variable; other keys are skipped by the kubelet with an event.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RBAC_KINDS = ("Role", "ClusterRole")


def _rel(path: Path) -> str:
    return str(path.relative_to(DEPLOY))


def _rules(kind: str) -> list[tuple[str, Doc]]:
    return [
        (f"{kind}/{doc['metadata']['name']}", rule)
        for doc in objects(kind)
        for rule in doc.get("rules", [])
    ]


def _container_environ(tenant_env_names: set[str]) -> dict[str, str]:
    """The environment the gateway container sees: literal env plus the tenant credentials."""
    environ = {e["name"]: e["value"] for e in container().get("env", []) if "value" in e}
    # envFrom supplies these from the lakegate-tenant-credentials Secret; fake values suffice.
    environ.update({name: f"fake-{name.lower()}" for name in tenant_env_names})
    return environ


def _pod_labels() -> dict[str, str]:
    labels: dict[str, str] = deployment()["spec"]["template"]["metadata"]["labels"]
    return labels


def _tenant_env_names() -> set[str]:
    tenants = yaml.safe_load((BASE / "tenants.yaml").read_text("utf-8"))
    names = set()
    for policy in (tenants.get("namespaces") or {}).values():
        identity = (policy or {}).get("identity") or {}
        names.update(identity[key] for key in ("client_secret_env", "token_env") if key in identity)
    return names


# --- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=_rel)
def test_every_document_is_a_named_kubernetes_object(path: Path) -> None:
    """Each YAML document under deploy/ has apiVersion, kind and metadata.name."""
    docs = load_docs(path)
    assert docs, f"{path} holds no document"
    for doc in docs:
        assert doc.get("apiVersion"), f"{path}: a document has no apiVersion"
        assert doc.get("kind"), f"{path}: a document has no kind"
        assert (doc.get("metadata") or {}).get("name"), f"{path}: a {doc['kind']} has no name"


@pytest.mark.parametrize("kustomization", kustomizations(), ids=_rel)
def test_kustomization_lists_every_resource_file_in_its_folder(kustomization: Path) -> None:
    """A manifest left out of its kustomization would silently never be applied."""
    folder = kustomization.parent
    spec = load_docs(kustomization)[0]
    # A Component (deploy/components/) lists its resources the same way.
    assert spec["kind"] in ("Kustomization", "Component")
    listed = spec.get("resources", [])
    for entry in listed:
        target = folder / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), (
            f"{kustomization}: resource {entry} does not exist"
        )
    inputs = {p.name for p in generator_inputs(kustomization)}
    present = {
        p.name
        for p in folder.glob("*.y*ml")
        if p.name != "kustomization.yaml" and p.name not in inputs
    }
    assert present == {e for e in listed if (folder / e).is_file()}


@pytest.mark.parametrize("kustomization", kustomizations(), ids=_rel)
def test_generator_inputs_exist(kustomization: Path) -> None:
    """Every file a ConfigMap or Secret generator reads is there."""
    for path in generator_inputs(kustomization):
        assert path.is_file(), f"{kustomization}: generator input {path} is missing"


# --- configuration --------------------------------------------------------------------------


def test_deploy_configuration_loads_in_the_container_environment() -> None:
    """deploy/base/gateway.yaml and its tenants file validate, and every named secret resolves."""
    env_names = _tenant_env_names()
    environ = _container_environ(env_names)
    settings = load_settings(BASE / "gateway.yaml", environ=environ)
    for namespace, policy in settings.tenants.namespaces.items():
        identity = policy.identity
        if isinstance(identity, PatIdentity):
            assert resolve_secret(identity.token, identity.token_env, environ), namespace
        elif isinstance(identity, OAuthM2MIdentity):
            secret = resolve_secret(identity.client_secret, identity.client_secret_env, environ)
            assert secret, namespace
    # Inline secrets would end up in a ConfigMap, readable by anyone who can read ConfigMaps.
    for namespace, policy in settings.tenants.namespaces.items():
        identity = policy.identity
        assert getattr(identity, "token", None) is None, namespace
        assert getattr(identity, "client_secret", None) is None, namespace


def test_server_listens_on_the_container_port_on_all_interfaces() -> None:
    """The gateway binds where the probes and the Service reach it."""
    settings = load_settings(BASE / "gateway.yaml", environ=_container_environ(_tenant_env_names()))
    assert settings.server.host == "0.0.0.0"
    assert container_port("http") == settings.server.port
    # The gateway drains requests for shutdown_grace_seconds; the kubelet must wait longer.
    assert pod_spec()["terminationGracePeriodSeconds"] > settings.server.shutdown_grace_seconds


def test_config_is_mounted_where_the_container_reads_it() -> None:
    """--config names a generated file inside the ConfigMap's mount."""
    args = container()["args"]
    config_path = Path(args[args.index("--config") + 1])
    config_volume = volume_with("configMap")
    assert Path(mount_for(config_volume["name"])["mountPath"]) == config_path.parent
    generators = load_docs(BASE / "kustomization.yaml")[0]["configMapGenerator"]
    generator = next(g for g in generators if g["name"] == config_volume["configMap"]["name"])
    assert config_path.name in generator["files"]


def test_ledger_lives_on_the_persistent_volume() -> None:
    """sqlite_path is on the PVC mount, so accepted runs survive a restart."""
    settings = load_settings(BASE / "gateway.yaml", environ=_container_environ(_tenant_env_names()))
    ledger = volume_with("persistentVolumeClaim")
    one("PersistentVolumeClaim", ledger["persistentVolumeClaim"]["claimName"], BASE)
    mount = mount_for(ledger["name"])
    assert not mount.get("readOnly", False)
    assert Path(settings.store.sqlite_path).parent == Path(mount["mountPath"])


def test_single_replica_is_replaced_not_rolled() -> None:
    """SQLite has one writer: one replica, and Recreate so two pods never share the ledger."""
    spec = deployment()["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    assert not objects("PodDisruptionBudget", BASE), "a PDB over one replica blocks node drains"


# --- the pod --------------------------------------------------------------------------------


def test_probes_hit_health_endpoints_on_the_port_the_service_targets() -> None:
    """Liveness is /healthz, readiness /readyz, both on the Service's target port."""
    service = one("Service", "lakegate", BASE)
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == "http"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["selector"].items() <= _pod_labels().items()
    target = container_port(port["targetPort"])
    main = container()
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = main[probe]["httpGet"]
        assert http["path"] == path
        assert container_port(http["port"]) == target


def test_pod_runs_restricted() -> None:
    """Non-root numeric user, read-only root, no privilege escalation, no capabilities, seccomp."""
    pod = pod_spec()["securityContext"]
    main = container()["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert isinstance(pod["runAsUser"], int)
    assert pod["runAsUser"] > 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert main["readOnlyRootFilesystem"] is True
    assert main["allowPrivilegeEscalation"] is False
    assert main["capabilities"]["drop"] == ["ALL"]
    assert not main["capabilities"].get("add")
    # Resource requests keep the scheduler honest; a memory limit bounds a leak.
    assert container()["resources"]["requests"]
    assert container()["resources"]["limits"]["memory"]


def test_federation_token_is_projected_with_an_audience() -> None:
    """The gateway's own identity is a projected, audience-bound, rotating token file."""
    projected = volume("databricks-token")["projected"]["sources"]
    (source,) = (s["serviceAccountToken"] for s in projected if "serviceAccountToken" in s)
    assert source["audience"]
    # The API server refuses less than 600 s; schema validation alone would not catch it.
    assert source.get("expirationSeconds", 3600) >= 600
    mount = mount_for("databricks-token")
    assert mount["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container()["env"]}
    assert env["DATABRICKS_OIDC_TOKEN_FILEPATH"] == f"{mount['mountPath']}/{source['path']}"


def test_tenant_credentials_come_from_a_secret_ref() -> None:
    """Variables tenants.yaml names are loaded from a Secret, and are loadable names."""
    refs = [e["secretRef"]["name"] for e in container().get("envFrom", []) if "secretRef" in e]
    assert refs == ["lakegate-tenant-credentials"]
    for name in _tenant_env_names():
        assert ENV_NAME.match(name), f"{name} cannot be loaded by envFrom"
        assert not name.startswith("LAKEGATE_"), f"{name} would be read as a config override"
    # Service links would inject LAKEGATE_* variables for the Service named lakegate.
    assert pod_spec()["enableServiceLinks"] is False


# --- network --------------------------------------------------------------------------------


def test_network_policy_admits_callers_on_the_gateway_port_only() -> None:
    """Ingress: labelled caller namespaces, on the container port; egress: DNS and HTTPS."""
    policy = one("NetworkPolicy", "lakegate", BASE)["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= _pod_labels().items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress, _metrics = policy["ingress"]
    (peer,) = ingress["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {CALLER_LABEL: "true"}
    assert [container_port(p["port"]) for p in ingress["ports"]] == [container_port("http")]
    egress = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 443)} <= egress


def _base_settings() -> Settings:
    return load_settings(BASE / "gateway.yaml", environ=_container_environ(_tenant_env_names()))


def test_metrics_listener_is_the_port_prometheus_scrapes_and_only_it_may() -> None:
    """The metrics listener binds the container port named metrics; the scrape annotations,
    the Service and the NetworkPolicy all name that port, and only a scraper namespace may
    reach it (callers may not, and scrapers may not reach the API port)."""
    settings = _base_settings()
    assert settings.server.metrics_listener == ("0.0.0.0", container_port("metrics"))
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/scheme"] == "http"
    assert int(annotations["prometheus.io/port"]) == container_port("metrics")
    assert annotations["prometheus.io/path"] == "/metrics"
    service = one("Service", "lakegate", BASE)
    (metrics,) = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
    assert container_port(metrics["targetPort"]) == container_port("metrics")
    rules = one("NetworkPolicy", "lakegate", BASE)["spec"]["ingress"]
    reaching = {
        container_port(p["port"]): [peer["namespaceSelector"]["matchLabels"] for peer in r["from"]]
        for r in rules
        for p in r["ports"]
    }
    assert reaching == {
        container_port("http"): [{CALLER_LABEL: "true"}],
        container_port("metrics"): [{SCRAPER_LABEL: "true"}],
    }


# --- RBAC -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "rule"), [r for kind in RBAC_KINDS for r in _rules(kind)])
def test_no_rule_lists_secrets_or_uses_wildcards(role: str, rule: Doc) -> None:
    """A list or watch on secrets returns every secret's data; wildcards grant the unknown."""
    for field in ("apiGroups", "resources", "verbs", "resourceNames"):
        assert "*" not in rule.get(field, []), f"{role}: wildcard in {field}"
    if "secrets" in rule["resources"]:
        assert set(rule["verbs"]) == {"get"}, f"{role}: secrets may only be read by name"
        assert rule.get("resourceNames"), f"{role}: secrets must be named"


def test_gateway_cluster_role_holds_only_the_cluster_wide_rights() -> None:
    """Cluster-wide: ServiceAccount list/watch (the informer), TokenReview, namespace get."""
    rules = one("ClusterRole", "lakegate", BASE)["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("", "serviceaccounts", "list"),
        ("", "serviceaccounts", "watch"),
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("", "namespaces", "get"),
    }
    assert all(not rule.get("resourceNames") for rule in rules)


def test_tenant_template_reads_named_secrets_and_mints_tokens() -> None:
    """lakegate-tenant: get the two credential Secrets and the webhook one by name, create
    ServiceAccount tokens."""
    rules = one("ClusterRole", "lakegate-tenant", BASE)["rules"]
    by_resource = {resource: rule for rule in rules for resource in rule["resources"]}
    assert set(by_resource) == {"secrets", "serviceaccounts/token"}
    assert set(by_resource["secrets"]["resourceNames"]) == TENANT_SECRETS | {WEBHOOK_SECRET}
    assert by_resource["secrets"]["verbs"] == ["get"]
    assert by_resource["serviceaccounts/token"]["verbs"] == ["create"]


def test_tenant_template_is_never_bound_cluster_wide() -> None:
    """Only RoleBindings, one per tenant namespace, may grant lakegate-tenant."""
    for binding in objects("ClusterRoleBinding"):
        assert binding["roleRef"]["name"] != "lakegate-tenant", binding["metadata"]["name"]


@pytest.mark.parametrize("kind", ["ClusterRoleBinding", "RoleBinding"])
def test_bindings_grant_the_gateway_service_account(kind: str) -> None:
    """Every lakegate binding names the ServiceAccount the Deployment runs as."""
    one("ServiceAccount", GATEWAY_SA, BASE)
    assert pod_spec()["serviceAccountName"] == GATEWAY_SA
    bindings = [b for b in objects(kind) if b["roleRef"]["name"].startswith("lakegate")]
    assert bindings
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": GATEWAY_SA, "namespace": GATEWAY_NAMESPACE}
        ]


def test_base_objects_live_in_the_gateway_namespace() -> None:
    """The base's namespaced objects and its kustomization agree on lakegate-system."""
    assert load_docs(BASE / "kustomization.yaml")[0]["namespace"] == GATEWAY_NAMESPACE
    one("Namespace", GATEWAY_NAMESPACE, BASE)
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for path, doc in all_objects():
        if path.is_relative_to(BASE) and doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace") == GATEWAY_NAMESPACE, f"{path}: {doc['kind']}"


# --- the example tenant namespace -----------------------------------------------------------


def test_example_service_account_is_labelled_for_federation() -> None:
    """The label and the three annotations the identity resolver reads are all there."""
    accounts = [
        sa
        for sa in objects("ServiceAccount", EXAMPLE_TENANT)
        if sa["metadata"].get("labels", {}).get(FEDERATION_LABEL) == "true"
    ]
    assert len(accounts) == 1
    annotations = accounts[0]["metadata"]["annotations"]
    assert all(annotations.get(key) for key in FEDERATION_ANNOTATIONS)
    settings = load_settings(BASE / "gateway.yaml", environ=_container_environ(_tenant_env_names()))
    assert annotations["lakegate.io/databricks-workspace"] in settings.workspaces


def test_example_secret_is_readable_and_obviously_a_placeholder() -> None:
    """The example Secret has a name the gateway may read and values nobody mistakes for real."""
    (secret,) = objects("Secret", EXAMPLE_TENANT)
    assert secret["metadata"]["name"] in TENANT_SECRETS
    data = secret["stringData"]
    assert set(data) == {"client_id", "client_secret"}
    assert all(value.startswith("REPLACE-ME") for value in data.values())
    assert not secret.get("data"), "base64 data would hide whether a real secret was committed"


def test_example_namespace_binds_the_template_and_may_call_the_gateway() -> None:
    """The tenant namespace binds lakegate-tenant and carries the caller label."""
    (namespace,) = objects("Namespace", EXAMPLE_TENANT)
    assert namespace["metadata"]["labels"][CALLER_LABEL] == "true"
    (binding,) = objects("RoleBinding", EXAMPLE_TENANT)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "lakegate-tenant",
    }
    kustomization = load_docs(EXAMPLE_TENANT / "kustomization.yaml")[0]
    assert kustomization["namespace"] == namespace["metadata"]["name"]


# --- rendering (only where kubectl is installed; it renders offline) ------------------------


@pytest.mark.parametrize("kustomization", kustomizations(), ids=_rel)
def test_kustomize_renders(kustomization: Path) -> None:
    """`kubectl kustomize` builds each folder, and generated names are wired through."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    if load_docs(kustomization)[0]["kind"] == "Component":
        pytest.skip("a Component renders only inside a kustomization (test_overlays)")
    done = subprocess.run(
        [kubectl, "kustomize", str(kustomization.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert rendered
    config_maps = [d["metadata"]["name"] for d in rendered if d["kind"] == "ConfigMap"]
    for doc in rendered:
        if doc["kind"] != "Deployment":
            continue
        # The generated ConfigMap carries a content hash; the Deployment must point at it.
        names = [
            v["configMap"]["name"]
            for v in doc["spec"]["template"]["spec"]["volumes"]
            if "configMap" in v
        ]
        assert names
        assert set(names) <= set(config_maps)


@pytest.mark.parametrize(
    "path",
    [BASE / "rbac.yaml", BASE / "rbac-tenant.yaml", BASE / "tenants.yaml", DEPLOY / "README.md"],
    ids=_rel,
)
def test_where_discovery_is_explained_every_label_it_reads_is_named(path: Path) -> None:
    """The resolver reads Flyte's label beside lakegate's; the files that say which
    ServiceAccounts the gateway finds (and may mint tokens for) name both."""
    text = path.read_text("utf-8")
    missing = [label for label in ENABLED_LABELS if label not in text]
    assert not missing, f"{_rel(path)} does not name {missing}"


def test_deploy_readme_names_flytes_annotations() -> None:
    """The annotations table's Flyte counterparts, so a Flyte namespace needs no lakegate name."""
    text = (DEPLOY / "README.md").read_text("utf-8")
    flyte = [a for a in (*CLIENT_ID_ANNOTATIONS, *AUDIENCE_ANNOTATIONS) if a.startswith("flyte.")]
    assert flyte
    assert all(annotation in text for annotation in flyte)


# --- behind an ingress ---------------------------------------------------------------------


@pytest.mark.parametrize("folder", [BASE, DEPLOY.parent / "config"], ids=["deploy/base", "config"])
def test_the_commented_trusted_proxies_line_is_one_uncomment_from_working(
    folder: Path, tmp_path: Path
) -> None:
    """Both shipped gateway.yaml files show server.trusted_proxies with an ingress pod CIDR;
    uncommented as an operator would, the gateway trusts exactly that network."""
    text = (folder / "gateway.yaml").read_text("utf-8")
    commented = '  # trusted_proxies: ["10.244.0.0/16"]\n'
    assert text.count(commented) == 1
    (tmp_path / "gateway.yaml").write_text(text.replace(commented, commented.replace("# ", "")))
    shutil.copy(folder / "tenants.yaml", tmp_path / "tenants.yaml")
    settings = load_settings(
        tmp_path / "gateway.yaml", environ=_container_environ(_tenant_env_names())
    )
    assert [str(n) for n in settings.server.trusted_proxies] == ["10.244.0.0/16"]
    assert not load_settings(
        folder / "gateway.yaml", environ=_container_environ(_tenant_env_names())
    ).server.trusted_proxies
