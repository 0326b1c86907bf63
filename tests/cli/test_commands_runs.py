"""``lakegate runs``, ``get`` and ``cancel``: listing, paging, output formats."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import RunCli
from tests.cli.fake_gateway import FakeGateway


async def test_runs_all_follows_every_cursor(cli: RunCli, gateway: FakeGateway) -> None:
    """--all keeps asking with next_cursor until there is none, and lists every run."""
    for _ in range(5):
        gateway.add_run("team-a", "RUNNING")

    result = await cli("runs", "-n", "team-a", "--limit", "2", "--all")

    assert result.code == 0
    assert [line.split()[0] for line in result.out.splitlines()[1:]] == ["1", "2", "3", "4", "5"]
    cursors = [dict(r.query).get("cursor") for r in gateway.requests]
    assert cursors == [None, "2", "4"]


async def test_runs_without_all_shows_one_page_and_says_there_is_more(
    cli: RunCli, gateway: FakeGateway
) -> None:
    """Without --all one page is listed and stderr points at --all."""
    for _ in range(3):
        gateway.add_run("team-a", "RUNNING")

    result = await cli("runs", "-n", "team-a", "--limit", "2")

    assert len(result.out.splitlines()) == 3
    assert "pass --all" in result.err


async def test_runs_table_columns_are_aligned(cli: RunCli, gateway: FakeGateway) -> None:
    """Every column starts at the same offset on every line."""
    gateway.add_run("team-a", "RUNNING", labels={"team": "data"})
    gateway.add_run("team-a", "INTERNAL_ERROR")

    result = await cli("runs", "-n", "team-a")

    header, *rows = result.out.splitlines()
    for column in ("STATE", "DATABRICKS RUN", "AGE", "LABELS"):
        offset = header.index(column)
        assert all(row[offset - 2 : offset] == "  " and row[offset] != " " for row in rows)
    assert rows[0].endswith("team=data")


async def test_runs_states_are_sent_as_repeated_parameters(
    cli: RunCli, gateway: FakeGateway
) -> None:
    """Several --state options (any case) become repeated state= query parameters."""
    await cli("runs", "-n", "team-a", "--state", "running", "--state", "FAILED")

    assert gateway.requests[0].query == [("state", "RUNNING"), ("state", "FAILED")]


async def test_runs_json_output_is_valid_json(cli: RunCli, gateway: FakeGateway) -> None:
    """-o json prints one JSON document with the runs and the next cursor."""
    gateway.add_run("team-a", "RUNNING")

    result = await cli("runs", "-n", "team-a", "-o", "json")

    document = json.loads(result.out)
    assert [run["id"] for run in document["runs"]] == [1]
    assert document["next_cursor"] is None


async def test_get_json_leaves_history_out_unless_asked(cli: RunCli, gateway: FakeGateway) -> None:
    """get -o json prints the run without its history; --history adds it."""
    run_id = str(gateway.add_run("team-a", "RUNNING"))

    plain = json.loads((await cli("get", "-n", "team-a", run_id, "-o", "json")).out)
    full = json.loads((await cli("get", "-n", "team-a", run_id, "-o", "json", "--history")).out)

    assert "history" not in plain
    assert full["history"] == []


async def test_get_history_lists_the_transitions(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """get --history prints the transitions as a table after the run."""
    await cli("submit", "-n", "team-a", "-f", str(spec_file), "--wait", "--poll-interval", "0.01")

    result = await cli("get", "-n", "team-a", "1", "--history")

    history = result.out.split("\n\n")[1].splitlines()
    assert history[0].split() == ["AT", "FROM", "TO", "MESSAGE"]
    assert [line.split()[1:3] for line in history[1:]][-1] == ["RUNNING", "SUCCEEDED"]


async def test_cancel_wait_exits_0_once_the_run_is_canceled(
    cli: RunCli, gateway: FakeGateway
) -> None:
    """cancel --wait follows the run to CANCELED and exits 0."""
    run_id = str(gateway.add_run("team-a", "RUNNING"))

    result = await cli("cancel", "-n", "team-a", run_id, "--wait", "--poll-interval", "0.01")

    assert result.code == 0
    assert gateway.requests[0].path == f"/v1/namespaces/team-a/runs/{run_id}/cancel"
    assert "state              CANCELED" in result.out
