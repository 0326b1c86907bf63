"""The operator guide's ledger backup and restore: backup.py run against a live gateway's
ledger, the copy put in place as the restore steps say, and a gateway started on it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.docs.blocks import procedure
from tests.fixtures.gateway import StackFactory, namespace_name

LIVE = "/var/lib/lakegate/lakegate.db"
COPY = "/tmp/lakegate-backup.db"  # noqa: S108 - the guide's path, replaced in the test


def _spec(name: str) -> dict[str, object]:
    return {
        "run_name": name,
        "tasks": [
            {
                "task_key": "main",
                "notebook_task": {"notebook_path": "/Jobs/x"},
                "existing_cluster_id": "0101-000000-demo",
            }
        ],
    }


def test_the_restore_steps_drop_the_old_wal_and_shm_files() -> None:
    """The old -wal and -shm belong to the replaced file and must not meet the restored one."""
    steps = procedure("restore").text
    assert "rm -f lakegate.db-wal lakegate.db-shm" in steps
    assert steps.index("rm -f") < steps.index("mv restored.db lakegate.db")
    assert "--replicas=1" in steps


def _backup_and_restore(ledger: Path, tmp_path: Path) -> Path:
    """backup.py as the guide gives it, then the restore steps' effect on the volume."""
    assert Path(f"{ledger}-wal").exists(), "the gateway keeps its ledger open in WAL mode"
    backup = tmp_path / "b.db"
    script = procedure("backup").text.replace(LIVE, str(ledger)).replace(COPY, str(backup))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "backup ok: 6 runs" in done.stdout
    # The copy in place of the ledger, with no -wal or -shm beside it.
    restored = tmp_path / "restored" / "lakegate.db"
    restored.parent.mkdir()
    shutil.copyfile(backup, restored)
    assert not Path(f"{restored}-wal").exists()
    with sqlite3.connect(restored) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return restored


async def test_a_backup_of_the_live_ledger_restores_every_run(
    gateway_stack_factory: StackFactory, tmp_path: Path
) -> None:
    """backup.py copies the ledger while the gateway runs (its latest writes still in the
    WAL); a gateway started on the restored copy serves the same runs, in the same states."""
    live = await gateway_stack_factory(namespaces=2)
    ledger = Path(live.settings.store.sqlite_path)
    runs: dict[str, list[dict[str, object]]] = {}
    async with live.client() as client:
        for index in range(2):
            namespace = namespace_name(index)
            submitted = [(await client.submit(namespace, _spec(f"r{i}"))).run for i in range(3)]
            runs[namespace] = [
                dict(await client.wait(namespace, run["id"], poll_interval=0.1))
                for run in submitted
            ]
    restored = await asyncio.to_thread(_backup_and_restore, ledger, tmp_path)

    again = await gateway_stack_factory(
        namespaces=2, gateway={"store": {"sqlite_path": str(restored)}}
    )
    async with again.client() as client:
        for namespace, originals in runs.items():
            for original in originals:
                run = await client.get(namespace, original["id"])
                assert run["state"] == original["state"] == "SUCCEEDED"
                assert run["databricks_run_id"] == original["databricks_run_id"]
            listed = await client.list_runs(namespace)
            assert sorted(r["id"] for r in listed.runs) == sorted(r["id"] for r in originals)
