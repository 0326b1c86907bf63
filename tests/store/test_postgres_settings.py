"""Choosing the PostgreSQL ledger: the settings that select it, where its DSN comes from, and
that the DSN's password is never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.cli import main
from gateway.errors import ConfigError
from gateway.secrets_registry import scrub
from gateway.settings import StoreSettings
from gateway.store.postgres_dsn import DsnSource, dsn_problem, read_dsn

DSN = "postgresql://lakegate:Pw-Never-Shown-1@db.example.internal:5432/lakegate"


@pytest.mark.parametrize("spelling", ["postgres", "postgresql", "PostgreSQL"])
def test_both_spellings_select_one_backend(spelling: str) -> None:
    """postgres and postgresql are one backend, whatever the case."""
    settings = StoreSettings.model_validate({"backend": spelling, "dsn": DSN})
    assert settings.backend == "postgres"


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({}, "and none is set"),
        ({"dsn": DSN, "dsn_env": "PG"}, "not dsn and dsn_env"),
        ({"dsn_env": "PG", "dsn_file": "/x"}, "not dsn_env and dsn_file"),
    ],
)
def test_postgres_needs_exactly_one_dsn_source(given: dict[str, str], words: str) -> None:
    """None, or two, of dsn, dsn_env and dsn_file is refused, naming them."""
    with pytest.raises(ValidationError, match=words):
        StoreSettings.model_validate({"backend": "postgres", **given})


def test_a_dsn_on_sqlite_is_refused_not_ignored() -> None:
    """A DSN source with backend sqlite would do nothing: refused, saying so."""
    with pytest.raises(ValidationError, match="only applies to backend postgres"):
        StoreSettings.model_validate({"dsn_env": "PG"})


def test_the_pool_bounds_are_ordered() -> None:
    with pytest.raises(ValidationError, match="pool_min_size"):
        StoreSettings.model_validate(
            {"backend": "postgres", "dsn": DSN, "pool_min_size": 5, "pool_max_size": 2}
        )


def test_the_inline_dsn_never_prints() -> None:
    """The settings hold the DSN as a secret: neither repr nor a dump shows the password."""
    settings = StoreSettings.model_validate({"backend": "postgres", "dsn": DSN})
    assert "Pw-Never-Shown-1" not in repr(settings)
    assert "Pw-Never-Shown-1" not in str(settings.model_dump())


def test_a_dsn_read_from_the_environment_is_masked_from_then_on() -> None:
    """read_dsn registers the DSN and its password: any text quoting them is scrubbed."""
    assert read_dsn(DsnSource(dsn_env="PG"), {"PG": f"  {DSN}\n"}) == DSN
    text = scrub(f"connect {DSN} failed; password Pw-Never-Shown-1 refused")
    assert "Pw-Never-Shown-1" not in text
    assert "[redacted]" in text


def test_a_dsn_file_is_read_as_a_mounted_secret(tmp_path: Path) -> None:
    """dsn_file holds the URL (a Secret's key mounted as a file, newline and all)."""
    path = tmp_path / "dsn"
    path.write_text(DSN + "\n", encoding="utf-8")
    assert read_dsn(DsnSource(dsn_file=str(path)), {}) == DSN


@pytest.mark.parametrize(
    ("source", "environ", "words"),
    [
        (DsnSource(dsn_env="LAKEGATE_PG"), {}, "environment variable LAKEGATE_PG"),
        (DsnSource(dsn_file="/nonexistent/dsn"), {}, "cannot read it"),
        (DsnSource(dsn="mysql://db/x"), {}, "not a postgresql:// URL"),
        (DsnSource(dsn="host=db dbname=x"), {}, "key=value DSNs are not supported"),
        (DsnSource(dsn="postgresql://db:notaport/x"), {}, "not a DSN lakegate can read"),
    ],
)
def test_a_bad_source_is_one_line_naming_it(
    source: DsnSource, environ: dict[str, str], words: str
) -> None:
    """Each problem is one line naming the setting; read_dsn raises it as a ConfigError."""
    problem = dsn_problem(source, environ)
    assert problem is not None
    assert words in problem
    assert problem.startswith(source.where())
    with pytest.raises(ConfigError):
        read_dsn(source, environ)


def test_check_config_reports_a_missing_dsn_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check-config reads the DSN source as the gateway will: one error line, exit 1."""
    monkeypatch.delenv("LAKEGATE_TEST_DSN_UNSET", raising=False)
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "workspaces: {prod: {host: https://adb-1234567890123456.7.azuredatabricks.net}}\n"
        "kubernetes: {mode: off}\ncallers: {methods: [none]}\n"
        "store: {backend: postgres, dsn_env: LAKEGATE_TEST_DSN_UNSET}\n",
        encoding="utf-8",
    )
    assert main(["check-config", "--config", str(config)]) != 0
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    lines = [line for line in printed.splitlines() if "store.dsn_env" in line]
    assert len(lines) == 1
    assert "LAKEGATE_TEST_DSN_UNSET" in lines[0]
    assert "not set" in lines[0]
    assert lines[0].startswith("error:")


@pytest.mark.parametrize(
    ("section", "field"),
    [("store: {lease_seconds: 0.5}", "store.lease_seconds"),
     ("webhooks: {lease_seconds: 3600}", "webhooks.lease_seconds")],
)  # fmt: skip
def test_check_config_refuses_a_lease_out_of_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, field: str
) -> None:
    """A lease under 1 s or over 10 minutes is refused before the gateway starts, by name."""
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "workspaces: {prod: {host: https://adb-1234567890123456.7.azuredatabricks.net}}\n"
        f"kubernetes: {{mode: off}}\ncallers: {{methods: [none]}}\n{section}\n",
        encoding="utf-8",
    )
    assert main(["check-config", "--config", str(config)]) != 0
    captured = capsys.readouterr()
    assert field in captured.out + captured.err
