"""The doctor's pure parts: the report, its text, and a step tuple open to one more step."""

from __future__ import annotations

import aiohttp

from gateway.doctor import STEPS, Doctor
from gateway.doctor.model import Report, Step, failed, ok, skipped
from gateway.doctor.render import format_report, format_tenants
from gateway.doctor.walk import Walk
from gateway.errors import IdentityNotConfigured
from gateway.identity.explain import Explanation, Rule
from gateway.settings import Settings

SETTINGS = Settings.model_validate(
    {
        "workspaces": {"main": {"host": "https://adb-1.azuredatabricks.net"}},
        "callers": {"methods": ["none"]},
        "kubernetes": {"mode": "off"},
    }
)


def test_a_report_is_healthy_until_a_step_fails() -> None:
    """Skipped steps keep a report healthy; the first failed one is named."""
    passing = Report("team-a", (ok("a", "A", "fine"), skipped("b", "B", "n/a")))
    assert passing.healthy
    assert passing.first_failure is None
    broken = Report("team-a", (ok("a", "A", "fine"), failed("b", "B", obj="o", cause="c", fix="f")))
    assert not broken.healthy
    assert broken.first_failure == broken.steps[1]
    assert broken.view()["steps"][1] == {
        "name": "b", "title": "B", "outcome": "failed", "detail": "c", "object": "o",
        "cause": "c", "fix": "f", "facts": {},
    }  # fmt: skip


def test_text_shows_each_step_and_the_fix_of_a_failed_one() -> None:
    """One line a step; a failed step adds its object and fix; the last line sums up."""
    broken = failed("b", "B", obj="Secret 'x'", cause="gone", fix="make it")
    view = Report("team-a", (ok("a", "A", "fine"), broken)).view()
    assert format_report(view).splitlines() == [
        "namespace team-a",
        "  [ok  ] A: fine",
        "  [FAIL] B: gone",
        "           object: Secret 'x'",
        "           fix:    make it",
        "1 step(s) failed; the first: B",
    ]


def test_text_is_scrubbed_of_credential_shaped_values() -> None:
    """Whatever a gateway sends, a PAT-shaped value is not printed."""
    pat = "dapi" + "0123456789abcdef" * 2
    view = Report("team-a", (ok("a", "A", f"saw {pat}"),)).view()
    assert pat not in format_report(view)


def test_tenant_list_text() -> None:
    """One aligned line a namespace: state, kind, how it is known, origin or reason."""
    text = format_tenants(
        [
            {
                "namespace": "a",
                "known_as": ["tenants file"],
                "kind": "pat",
                "origin": "tenant policy",
                "state": "ok",
                "reason": None,
            },
            {
                "namespace": "team-b",
                "known_as": ["watched"],
                "kind": None,
                "origin": "default identity",
                "state": "refused",
                "reason": "no identity",
            },
        ]
    )
    assert text.splitlines() == [
        "a       ok       pat                         (tenants file) tenant policy",
        "team-b  refused  -                           (watched) no identity",
    ]


class _Refusing:
    settings = SETTINGS

    async def explain(self, namespace: str) -> Explanation:
        refusal = IdentityNotConfigured("no identity", namespace=namespace)
        rules = (Rule("default identity", "refused", "none"),)
        return Explanation(namespace, rules, None, refusal)


async def test_one_more_step_is_one_more_function() -> None:
    """A step added to the tuple is walked in order, after the others."""

    async def git_credential(walk: Walk) -> Step:
        return skipped("git", "Git credential", f"{len(walk.steps)} steps before")

    async with aiohttp.ClientSession() as session:
        doctor = Doctor(_Refusing(), session, kube=None, steps=(*STEPS, git_credential))
        report = await doctor.check("team-a")
        await doctor.aclose()
    assert [s.name for s in report.steps][-2:] == ["webhook", "git"]
    assert report.steps[-1].detail == f"{len(STEPS)} steps before"
    assert report.first_failure is not None
    assert report.first_failure.name == "identity"
