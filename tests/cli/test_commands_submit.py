"""``lakegate submit``: the body it sends, its retries, and following the run with --wait."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.cli.conftest import SPEC, RunCli
from tests.cli.fake_gateway import FakeGateway


async def test_submit_prints_the_run_and_exits_0(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """A submit prints the accepted run as a table and exits 0."""
    result = await cli("submit", "-n", "team-a", "-f", str(spec_file))

    assert result.code == 0
    assert "id                 1" in result.out
    assert "state              QUEUED" in result.out
    assert "namespace          team-a" in result.out


async def test_bare_spec_is_sent_as_the_spec(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """A file holding a runs/submit payload (it has tasks) is wrapped as the body's spec."""
    await cli("submit", "-n", "team-a", "-f", str(spec_file))

    assert gateway.posts()[0].body == {"spec": SPEC}


async def test_full_body_is_sent_as_it_is(
    cli: RunCli, gateway: FakeGateway, tmp_path: Path
) -> None:
    """A file holding a whole body ({"spec": ...}) is sent unchanged."""
    body = {"spec": SPEC, "labels": {"owner": "data"}, "callback_url": "https://hooks.example/x"}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))

    await cli("submit", "-n", "team-a", "-f", str(path))

    assert gateway.posts()[0].body == body


async def test_labels_are_parsed_and_merged_over_the_files(
    cli: RunCli, gateway: FakeGateway, tmp_path: Path
) -> None:
    """--label KEY=VALUE options join the file's labels and win over the same key."""
    path = tmp_path / "body.json"
    path.write_text(json.dumps({"spec": SPEC, "labels": {"owner": "data", "tier": "bronze"}}))

    await cli(
        "submit", "-n", "team-a", "-f", str(path), "--label", "tier=gold", "--label", "ci=a=b"
    )

    assert gateway.posts()[0].body["labels"] == {"owner": "data", "tier": "gold", "ci": "a=b"}


def test_label_without_equals_sign_is_refused() -> None:
    """A label that is not KEY=VALUE is a usage error before anything is sent."""
    from tests.cli.conftest import parser

    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["submit", "-n", "team-a", "-f", "x.json", "--label", "oops"])
    assert exit_info.value.code == 2


async def test_spec_is_read_from_stdin_with_a_dash(
    cli: RunCli, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-f - reads the spec from standard input."""
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(SPEC)))

    result = await cli("submit", "-n", "team-a", "-f", "-")

    assert result.code == 0
    assert gateway.posts()[0].body == {"spec": SPEC}


async def test_file_that_is_not_json_is_a_usage_error(
    cli: RunCli, gateway: FakeGateway, tmp_path: Path
) -> None:
    """An unreadable spec exits 2, names the file and sends nothing."""
    path = tmp_path / "spec.json"
    path.write_text("{not json")

    result = await cli("submit", "-n", "team-a", "-f", str(path))

    assert result.code == 2
    assert f"{path} is not JSON" in result.err
    assert gateway.requests == []


async def test_each_submit_generates_its_own_idempotency_key(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """Without --idempotency-key every command sends a fresh key, so two commands make two runs."""
    await cli("submit", "-n", "team-a", "-f", str(spec_file))
    await cli("submit", "-n", "team-a", "-f", str(spec_file))

    first, second = (post.headers["Idempotency-Key"] for post in gateway.posts())
    assert first != second
    assert gateway.run_count() == 2


async def test_given_idempotency_key_returns_the_same_run(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """Repeating a command with the same --idempotency-key gets the first run back."""
    args = ("submit", "-n", "team-a", "-f", str(spec_file), "--idempotency-key", "nightly-42")
    await cli(*args)
    again = await cli(*args)

    assert again.code == 0
    assert "already existed for this idempotency key" in again.err
    assert [p.headers["Idempotency-Key"] for p in gateway.posts()] == ["nightly-42"] * 2
    assert gateway.run_count() == 1


async def test_retry_after_503_reuses_the_idempotency_key(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """A 503 is retried with the same key, and the gateway ends up with one run."""
    gateway.fail_posts = 1

    result = await cli("submit", "-n", "team-a", "-f", str(spec_file))

    assert result.code == 0
    keys = [post.headers["Idempotency-Key"] for post in gateway.posts()]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert gateway.run_count() == 1
    assert "retrying" in result.err


async def test_answer_lost_after_the_run_was_created_does_not_make_a_second_run(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """A dropped connection is retried with the same key and replays the run already made."""
    gateway.fail_mode, gateway.fail_posts = "drop", 1

    result = await cli("submit", "-n", "team-a", "-f", str(spec_file))

    assert result.code == 0
    assert len(gateway.posts()) == 2
    assert gateway.run_count() == 1


async def test_retries_are_bounded(cli: RunCli, gateway: FakeGateway, spec_file: Path) -> None:
    """A gateway that keeps failing is tried 1 + --retries times, then the command exits 3."""
    gateway.fail_posts = 10

    result = await cli("submit", "-n", "team-a", "-f", str(spec_file), "--retries", "2")

    assert result.code == 3
    assert len(gateway.posts()) == 3
    assert "Run ledger unavailable (503)" in result.err


async def test_wait_follows_the_run_to_succeeded(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """--wait prints one line per state change off a terminal and exits 0 on SUCCEEDED."""
    result = await cli(
        "submit", "-n", "team-a", "-f", str(spec_file), "--wait", "--poll-interval", "0.01"
    )

    assert result.code == 0
    states = [line.split()[2] for line in result.err.splitlines() if line.startswith("run 1 ")]
    assert states == ["QUEUED", "SUBMITTING", "PENDING", "RUNNING", "SUCCEEDED"]
    assert "state              SUCCEEDED" in result.out


async def test_wait_on_a_failed_run_exits_1_with_its_message(
    cli: RunCli, gateway: FakeGateway, spec_file: Path
) -> None:
    """--wait exits 1 when the run ends in another terminal state, and shows why."""
    gateway.progression = (("PENDING", None), ("FAILED", "Task main failed: ZeroDivisionError"))

    result = await cli(
        "submit", "-n", "team-a", "-f", str(spec_file), "--wait", "--poll-interval", "0.01"
    )

    assert result.code == 1
    assert "run 1 ended FAILED: Task main failed: ZeroDivisionError" in result.err
