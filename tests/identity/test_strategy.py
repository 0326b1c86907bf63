"""What every identity kind is made of: the environment, plan contexts, and refusals of blank
parts. Pure: no event loop."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gateway.errors import ConfigError, CredentialUnavailable
from gateway.identity.strategy import (
    Environment,
    Plan,
    PlanContext,
    WorkspaceRef,
    first,
    require,
)
from gateway.settings import Settings

WS = WorkspaceRef("prod", "https://prod.cloud.databricks.com")
PLAN = Plan("oauth-m2m", WS, "tenant policy", client_id="sp-1")


@pytest.mark.parametrize(
    ("variables", "names", "value"),
    [
        ({"A": "x"}, ("A",), "x"),
        ({"A": "  x \n"}, ("A",), "x"),
        ({"A": "  ", "B": "y"}, ("A", "B"), "y"),
        ({"A": "x", "B": "y"}, ("A", "B"), "x"),
        ({}, ("A", "B"), None),
    ],
    ids=["set", "stripped", "blank-skipped", "first-wins", "unset"],
)
def test_the_environment_gives_the_first_variable_set(
    variables: dict[str, str], names: tuple[str, ...], value: str | None
) -> None:
    """A variable of only blanks counts as unset; the first set one of several wins."""
    assert Environment(variables).get(*names) == value


@pytest.mark.parametrize(
    ("variables", "values"),
    [({"A": "x", "B": " y "}, ("x", "y")), ({"A": "x", "B": " "}, None), ({"A": "x"}, None)],
    ids=["all-set", "one-blank", "one-unset"],
)
def test_the_environment_gives_every_variable_or_none(
    variables: dict[str, str], values: tuple[str, ...] | None
) -> None:
    """A kind that needs several variables gets them all, stripped, or nothing."""
    assert Environment(variables).every("A", "B") == values


@pytest.mark.parametrize(
    ("value", "env", "environ", "secret"),
    [
        (SecretStr("inline"), None, {}, "inline"),
        (None, "TEAM", {"TEAM": "from-env"}, "from-env"),
        (None, None, {}, None),
    ],
    ids=["inline", "environment", "neither"],
)
def test_a_plan_context_reads_a_secret_inline_or_from_the_environment(
    value: SecretStr | None, env: str | None, environ: dict[str, str], secret: str | None
) -> None:
    """A secret is the inline value or the named variable's; neither given is no secret."""
    where = PlanContext(Settings(), "team-a", WS, environ=environ)
    got = where.secret(value, env)
    assert (got.get_secret_value() if got else None) == secret


def test_a_secret_in_an_unset_variable_is_a_config_error() -> None:
    """A secret named by an unset variable is a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="environment TEAM"):
        PlanContext(Settings(), "team-a", WS).secret(None, "TEAM")


def test_a_plan_context_makes_plans_as_it_is() -> None:
    """Plans made in a context carry its workspace, origin, sharing and discovery."""
    where = PlanContext(Settings(), "", WS, origin="o", shared=True, discovered=True)
    plan = where.plan("pat", secret_name="s")
    assert (plan.workspace, plan.origin, plan.shared, plan.discovered) == (WS, "o", True, True)
    assert (plan.kind, plan.secret_name) == ("pat", "s")


@pytest.mark.parametrize(
    ("subjects", "subject"),
    [(("a", "b"), "a"), ((None, "b"), "b"), (("", None), "inline"), ((), "inline")],
    ids=["first", "skips-none", "nothing-set", "none-given"],
)
def test_the_subject_is_the_first_part_set(subjects: tuple[str | None, ...], subject: str) -> None:
    """A key names the most specific part set; an identity given only inline is 'inline'."""
    assert first(*subjects) == subject


def test_require_gives_back_the_values_when_none_is_blank() -> None:
    """Required parts come back in order, as plain strings."""
    assert require(PLAN, "team-a", tenant_id="t", client_id="c") == ("t", "c")


def test_require_names_every_blank_part() -> None:
    """Blank or missing parts are refused together, named in words, for the namespace."""
    with pytest.raises(CredentialUnavailable, match="needs a tenant id, token file") as raised:
        require(PLAN, "team-a", tenant_id=" ", client_id="c", token_file=None)
    assert (raised.value.namespace, raised.value.source) == (
        "team-a",
        "oauth-m2m (tenant policy)",
    )
