"""Reading deploy/: the kustomizations, the files they generate from, and the manifests."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
EXAMPLE_TENANT = DEPLOY / "examples" / "tenant-namespace"

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    """Every non-empty YAML document in a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc is not None]


def kustomizations() -> list[Path]:
    return sorted(DEPLOY.rglob("kustomization.yaml"))


def generator_inputs(kustomization: Path) -> list[Path]:
    """Files a kustomization turns into ConfigMaps or Secrets; entries may read `key=path`."""
    spec = load_docs(kustomization)[0]
    paths = []
    for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
        for entry in generator.get("files", []):
            paths.append(kustomization.parent / entry.split("=", 1)[-1])
    return paths


def manifest_files() -> list[Path]:
    """YAML files under deploy/ that hold Kubernetes objects (not kustomizations or inputs)."""
    inputs = {p.resolve() for k in kustomizations() for p in generator_inputs(k)}
    return sorted(
        path
        for path in DEPLOY.rglob("*.y*ml")
        if path.name != "kustomization.yaml" and path.resolve() not in inputs
    )


@cache
def all_objects() -> tuple[tuple[Path, Doc], ...]:
    return tuple((path, doc) for path in manifest_files() for doc in load_docs(path))


def objects(kind: str, folder: Path = DEPLOY) -> list[Doc]:
    return [
        doc
        for path, doc in all_objects()
        if doc.get("kind") == kind and path.is_relative_to(folder)
    ]


def one(kind: str, name: str, folder: Path = DEPLOY) -> Doc:
    found = [doc for doc in objects(kind, folder) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name} under {folder}, found {len(found)}"
    return found[0]


def deployment() -> Doc:
    return one("Deployment", "lakegate", BASE)


def pod_spec() -> Doc:
    spec: Doc = deployment()["spec"]["template"]["spec"]
    return spec


def container() -> Doc:
    containers = pod_spec()["containers"]
    assert len(containers) == 1, "the gateway pod runs one container"
    main: Doc = containers[0]
    return main


def container_port(port: int | str) -> int:
    """A port reference (number or name) resolved against the gateway container's ports."""
    for declared in container()["ports"]:
        if port in (declared["containerPort"], declared.get("name")):
            number: int = declared["containerPort"]
            return number
    raise AssertionError(f"port {port!r} is not declared by the gateway container")


def mount_for(volume_name: str) -> Doc:
    mounts = [m for m in container()["volumeMounts"] if m["name"] == volume_name]
    assert len(mounts) == 1, f"volume {volume_name} should be mounted once"
    mount: Doc = mounts[0]
    return mount


def volume(name: str) -> Doc:
    found = [v for v in pod_spec()["volumes"] if v["name"] == name]
    assert len(found) == 1, f"no volume named {name}"
    vol: Doc = found[0]
    return vol


def volume_with(source: str) -> Doc:
    """The one pod volume of a given source type (configMap, persistentVolumeClaim, ...)."""
    found = [v for v in pod_spec()["volumes"] if source in v]
    assert len(found) == 1, f"expected one {source} volume, found {len(found)}"
    vol: Doc = found[0]
    return vol
