"""A small kustomize, enough for deploy/: what the tests render when kubectl is not installed.

It does what deploy/ uses, in kustomize's order for one kustomization: resources (files and
folders, each folder rendered first), components, configMapGenerator (a content-hash suffix,
and the Deployment's references renamed to it), patches (strategic merge, with ``$patch:
delete`` and ``null`` to drop a key; lists of named items merge by name), then namespace,
labels and images. Anything else in a kustomization is refused, so a new feature in deploy/
fails here loudly rather than rendering wrong.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

KNOWN_KEYS = frozenset(
    {
        "apiVersion",
        "kind",
        "namespace",
        "labels",
        "resources",
        "components",
        "configMapGenerator",
        "patches",
        "images",
    }
)
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
)


def _docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d is not None]


def _spec(folder: Path) -> Doc:
    (spec,) = _docs(folder / "kustomization.yaml")
    unknown = set(spec) - KNOWN_KEYS
    assert not unknown, f"{folder}: the test renderer does not know {sorted(unknown)}"
    return spec


def render(folder: Path) -> list[Doc]:
    """The objects ``kubectl kustomize folder`` would print (hash suffixes aside)."""
    spec = _spec(folder)
    assert spec["kind"] == "Kustomization", f"{folder} is a {spec['kind']}, not a Kustomization"
    return _build(folder, spec, [])


def _build(folder: Path, spec: Doc, objects: list[Doc]) -> list[Doc]:
    objects = list(objects)
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        objects += render(target) if target.is_dir() else _docs(target)
    for entry in spec.get("components", []):
        component = (folder / entry).resolve()
        component_spec = _spec(component)
        assert component_spec["kind"] == "Component", f"{component} is not a Component"
        objects = _build(component, component_spec, objects)
    renames: dict[str, str] = {}
    for generator in spec.get("configMapGenerator", []):
        config_map, old = _config_map(folder, generator)
        renames[old] = config_map["metadata"]["name"]
        objects.append(config_map)
    for doc in objects:
        _rename_config_maps(doc, renames)
    for patch in spec.get("patches", []):
        objects = _patch(folder, objects, patch)
    return [_transform(doc, spec) for doc in objects]


def _config_map(folder: Path, generator: Doc) -> tuple[Doc, str]:
    data = {}
    for entry in generator["files"]:
        key, _, path = entry.rpartition("=")
        source = folder / path
        data[key or source.name] = source.read_text("utf-8")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
    name = generator["name"]
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-{digest}"}}
    return {**doc, "data": data}, name


def _rename_config_maps(doc: Doc, renames: dict[str, str]) -> None:
    if doc.get("kind") != "Deployment" or not renames:
        return
    for volume in doc["spec"]["template"]["spec"].get("volumes", []):
        ref = volume.get("configMap")
        if ref and ref.get("name") in renames:
            ref["name"] = renames[ref["name"]]


def _patch(folder: Path, objects: list[Doc], patch: Doc) -> list[Doc]:
    body = yaml.safe_load(patch["patch"]) if "patch" in patch else _docs(folder / patch["path"])[0]
    assert isinstance(body, dict), "only strategic-merge patches are supported"
    target = patch.get("target") or {}
    kind = target.get("kind", body.get("kind"))
    name = target.get("name", (body.get("metadata") or {}).get("name"))
    matched = [d for d in objects if d["kind"] == kind and d["metadata"]["name"] == name]
    assert matched, f"{folder}: patch matches no {kind} {name}"
    if body.get("$patch") == "delete":
        return [d for d in objects if not any(d is m for m in matched)]
    for doc in matched:
        merged = merge(doc, {k: v for k, v in body.items() if k not in ("apiVersion", "kind")})
        doc.clear()
        doc.update(merged)
    return objects


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge: maps merge key by key (``None`` deletes), lists of maps that all have
    a ``name`` merge by it, any other list is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        out_list = copy.deepcopy(base)
        index = {item["name"]: i for i, item in enumerate(out_list)}
        for item in patch:
            if item["name"] in index:
                out_list[index[item["name"]]] = merge(out_list[index[item["name"]]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _transform(doc: Doc, spec: Doc) -> Doc:
    doc = copy.deepcopy(doc)
    metadata = doc.setdefault("metadata", {})
    if "namespace" in spec and doc["kind"] not in CLUSTER_SCOPED:
        metadata["namespace"] = spec["namespace"]
    for label in spec.get("labels", []):
        assert not label.get("includeSelectors"), "selector labels are not supported"
        metadata.setdefault("labels", {}).update(label["pairs"])
    for image in spec.get("images", []):
        _set_image(doc, image)
    return doc


def _set_image(doc: Doc, image: Doc) -> None:
    if doc.get("kind") != "Deployment":
        return
    for container in doc["spec"]["template"]["spec"]["containers"]:
        name, _, tag = container["image"].partition(":")
        if name != image["name"]:
            continue
        new_name = image.get("newName", name)
        new_tag = image.get("newTag", tag)
        container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
