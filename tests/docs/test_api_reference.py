"""docs/api.md is generated from gateway/api/openapi.yaml and never drifts from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import api_reference

LINK = re.compile(r"\]\(#([^)]+)\)")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def test_docs_api_md_is_the_generated_reference() -> None:
    """An edited OpenAPI document without a regenerated reference fails here."""
    expected = api_reference.render(api_reference.load())
    current = api_reference.TARGET.read_text("utf-8") if api_reference.TARGET.exists() else ""
    assert current == expected, (
        "docs/api.md is out of date with gateway/api/openapi.yaml: "
        f"run `{api_reference.REGENERATE}` and commit docs/api.md"
    )


def test_the_check_mode_says_how_to_regenerate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--check` exits 1 on a stale file and names the command that fixes it."""
    stale = tmp_path / "api.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(api_reference, "TARGET", stale)
    monkeypatch.setattr(api_reference, "ROOT", tmp_path)

    assert api_reference.main(["--check"]) == 1
    assert api_reference.REGENERATE in capsys.readouterr().err
    assert api_reference.main([]) == 0
    assert api_reference.main(["--check"]) == 0


def test_every_operation_of_the_document_is_in_the_reference() -> None:
    """Each path and method has its own section."""
    spec = api_reference.load()
    text = api_reference.render(spec)
    for path, item in spec["paths"].items():
        for method in api_reference.METHODS:
            if method in item:
                assert f"#### `{method.upper()} {path}`" in text


def test_every_link_in_the_reference_lands_on_a_section() -> None:
    """Links to schemas, responses and operations all resolve within the page."""
    text = api_reference.render(api_reference.load())
    anchors = set(ANCHOR.findall(text))
    for heading in re.findall(r"^#### `(\w+) ([^`]+)`$", text, flags=re.MULTILINE):
        anchors.add(api_reference._op_anchor(heading[0].lower(), heading[1]))
    missing = sorted(set(LINK.findall(text)) - anchors)
    assert not missing, f"links without a target: {missing}"
