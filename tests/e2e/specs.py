"""Run specs for end-to-end tests: the emulator reads the outcome from task parameters."""

from __future__ import annotations

from typing import Any

# Emulator outcome -> the state lakegate must report.
OUTCOMES = {
    "SUCCESS": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMEDOUT": "TIMED_OUT",
    "CANCELED": "CANCELED",
    "INTERNAL_ERROR": "INTERNAL_ERROR",
    "SKIPPED": "SKIPPED",
}


def spec(name: str, result: str = "SUCCESS", seconds: float = 1.0) -> dict[str, Any]:
    return {
        "run_name": name,
        "tasks": [
            {
                "task_key": "main",
                "existing_cluster_id": "0101-000000-test",
                "notebook_task": {
                    "notebook_path": "/Shared/e2e",
                    "base_parameters": {
                        "lakegate_emulator_result": result,
                        "lakegate_emulator_seconds": str(seconds),
                    },
                },
            }
        ],
    }
