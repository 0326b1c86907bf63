"""This checkout's gateway against another revision's, in alternating runs of bench_gateway.

    .venv/bin/python tests/bench/compare_gateway.py --against REV [--pairs 6]
        [bench_gateway's options, e.g. --quiet-poller --tasks 30]

The machine is shared, and its speed moves by half within an hour: one run of each tells
nothing about a change of a tenth. So this checks REV out into a temporary git worktree and
runs ``bench_gateway.py`` ``--pairs`` times for each gateway, alternating (which one goes first
alternates too, so a drift of the machine's speed falls on both), every run against this
checkout's emulator and load generator; it prints each run's figures and, for both, the
median of each over its runs. The figure to read is ``submit x`` (submit_x_emulator_cpu):
the gateway's CPU per accepted submit as a multiple of the emulator's CPU per straight
runs/submit in the same run, which a slower hour slows on both sides. REV's gateway must
accept the config this checkout's bench writes (any revision since the bench took its
present shape does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().with_name("bench_gateway.py")
ROOT = BENCH.parents[2]
# Read first: the figures a change to the request path moves, with the heading each gets.
SHOWN = {
    "submit_x_emulator_cpu": "submit x", "get_x_emulator_cpu": "get x",
    "submit_us": "submit µs", "get_us": "get µs", "submit_loop_us": "loop µs",
    "submit_other_threads_us": "ledger µs", "emulator_submit_us": "emu µs",
    "submit_throughput_x": "submit/s x", "get_throughput_x": "get/s x",
}  # fmt: skip


def one_run(
    label: str, source: Path | None, bench_args: list[str], workdir: Path
) -> dict[str, float]:
    summary, log = workdir / f"{label}.json", workdir / f"{label}.log"
    command = [sys.executable, str(BENCH), *bench_args, "--summary", str(summary)]
    if source is not None:
        command += ["--gateway-source", str(source)]
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not summary.exists():
        tail = "".join(log.read_text(encoding="utf-8").splitlines(keepends=True)[-30:])
        raise RuntimeError(f"bench_gateway failed for {label} (exit {done.returncode}):\n{tail}")
    figures: dict[str, float] = json.loads(summary.read_text(encoding="utf-8"))
    return figures


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def row(name: str, figures: dict[str, float]) -> str:
    return f"  {name:<16}" + "".join(f" {figures[key]:>10.2f}" for key in SHOWN)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the git revision to compare with")
    parser.add_argument("--pairs", type=int, default=6, help="runs of each gateway (default 6)")
    args, bench_args = parser.parse_known_args()
    here = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    this = f"{here}{'+changes' if dirty else ''}"
    # Against its own commit, the two gateways still need two names to keep their runs apart.
    other_label = args.against if args.against != this else f"{args.against} (worktree)"
    runs: dict[str, list[dict[str, float]]] = {this: [], other_label: []}
    with tempfile.TemporaryDirectory(prefix="lakegate-compare-") as tmp:
        workdir, other = Path(tmp), Path(tmp) / "other"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(other),
             args.against],
            check=True,
        )  # fmt: skip
        try:
            print(f"{args.pairs} runs of bench_gateway.py {' '.join(bench_args)} each, alternating")
            print("  " + " " * 16 + "".join(f" {heading:>10}" for heading in SHOWN.values()))
            for i in range(args.pairs):
                order = [(this, None), (other_label, other)]
                for label, source in order if i % 2 == 0 else order[::-1]:
                    figures = one_run(f"run-{i}-{source is None}", source, bench_args, workdir)
                    runs[label].append(figures)
                    print(row(label, figures), flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)],
                check=False,
            )  # fmt: skip
    print("medians:")
    middle = {label: medians(found) for label, found in runs.items()}
    for label, figures in middle.items():
        print(row(label, figures))
    ratio = middle[this]["submit_x_emulator_cpu"] / middle[other_label]["submit_x_emulator_cpu"]
    print(f"  {this} / {other_label}, submit_x_emulator_cpu: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
