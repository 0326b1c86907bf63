"""deploy/overlays (single, ha) and deploy/components/monitoring render and validate offline
against a recent Kubernetes (``kubernetes-validate``), and say what they promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.settings import load_settings
from tests.deploy.kustomize import render
from tests.deploy.manifests import DEPLOY

SINGLE = DEPLOY / "overlays" / "single"
HA = DEPLOY / "overlays" / "ha"
MONITORING = DEPLOY / "components" / "monitoring"
# The schema version every rendered object must validate against: a recent release.
KUBERNETES_VERSION = "1.33.0"
# Prometheus Operator kinds have no schema in kubernetes-validate; checked by shape below.
OPERATOR_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})

Doc = dict[str, Any]


def _one(docs: list[Doc], kind: str, name: str = "lakegate") -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _pod(docs: list[Doc]) -> Doc:
    spec: Doc = _one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def _with_monitoring(tmp_path: Path, overlay: Path) -> list[Doc]:
    """``overlay`` with the monitoring component added, as the overlays' comments say."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [str(overlay)],
                "components": [str(MONITORING)],
            }
        ),
        encoding="utf-8",
    )
    return render(tmp_path)


@pytest.mark.parametrize("overlay", [SINGLE, HA], ids=["single", "ha"])
def test_every_rendered_object_validates_against_kubernetes(overlay: Path) -> None:
    """Offline schema validation, strict: an unknown field is an error too."""
    docs = render(overlay)
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "ClusterRole"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_monitoring_component_renders_and_its_kubernetes_objects_validate(
    tmp_path: Path,
) -> None:
    """The component adds a ServiceMonitor and a PrometheusRule in the gateway's namespace."""
    docs = _with_monitoring(tmp_path, SINGLE)
    for doc in docs:
        if doc["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    monitor = _one(docs, "ServiceMonitor")
    rule = _one(docs, "PrometheusRule")
    for doc in (monitor, rule):
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        assert doc["metadata"]["namespace"] == "lakegate-system"
    service = _one(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])


def test_single_is_one_sqlite_replica_replaced_on_a_claim() -> None:
    """One replica, Recreate, the ledger on the PersistentVolumeClaim, no PDB."""
    docs = render(SINGLE)
    deployment = _one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    claim = _one(docs, "PersistentVolumeClaim", "lakegate-ledger")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    (ledger,) = [v for v in _pod(docs)["volumes"] if v["name"] == "ledger"]
    assert ledger["persistentVolumeClaim"]["claimName"] == "lakegate-ledger"
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget"]


def test_the_generated_config_map_is_the_one_the_pod_mounts() -> None:
    """The content-hashed ConfigMap name is wired into the Deployment's volume."""
    docs = render(SINGLE)
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (config,) = [v for v in _pod(docs)["volumes"] if "configMap" in v]
    assert config["configMap"]["name"] == config_map["metadata"]["name"] != "lakegate-config"
    assert config_map["metadata"]["namespace"] == "lakegate-system"


def test_ha_is_three_spread_replicas_with_a_budget_and_no_claim() -> None:
    """Three replicas, one per node, a PDB keeping two, the DSN from a Secret, no SQLite claim."""
    docs = render(HA)
    deployment = _one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = _pod(docs)
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels(deployment).items()
    budget = _one(docs, "PodDisruptionBudget")
    assert 0 < budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    (ledger,) = [v for v in pod["volumes"] if v["name"] == "ledger"]
    assert set(ledger) == {"name", "emptyDir"}
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["LAKEGATE_STORE__BACKEND"]["value"] == "postgres"
    dsn_file = Path(env["LAKEGATE_STORE__DSN_FILE"]["value"])
    (secret,) = [v for v in pod["volumes"] if v["name"] == "postgresql-dsn"]
    assert secret["secret"]["secretName"] == "lakegate-postgresql"
    assert secret["secret"]["items"] == [{"key": "dsn", "path": dsn_file.name}]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "postgresql-dsn"]
    assert mount == {"name": "postgresql-dsn", "mountPath": str(dsn_file.parent), "readOnly": True}


def pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def test_the_ha_configuration_loads_with_the_dsn_from_its_secret(tmp_path: Path) -> None:
    """The rendered ConfigMap with the ha pod's environment selects PostgreSQL and reads the
    DSN from the Secret's mounted file: the overlay holds no DSN, only where to find one."""
    docs = render(HA)
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    env = {e["name"]: e["value"] for e in _pod(docs)["containers"][0]["env"] if "value" in e}
    settings = load_settings(tmp_path / "gateway.yaml", environ=env)
    assert settings.store.backend == "postgres"
    assert settings.store.dsn_file == "/var/run/secrets/lakegate/postgresql/dsn"
    assert settings.store.dsn is None
    assert not any("postgresql://" in str(value) for value in env.values())
