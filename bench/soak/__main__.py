"""`make soak`: `python -m bench.soak [--module M] [--seed S] [--days D] [--sources N] [--stop-at-step K]`.

Runs the modules' soaks in a fixed order, skipping none silently (a module whose soak does not exist yet is
reported NOT RUN and the run fails), prints a table and every violation with the command that replays it, writes
bench/results/soak.json, and on a full default run writes the README's soak block. Exit 1 on any violation.

Python randomises str hashes per process, which would change the order some code iterates a set in, and so which
call meets which fault: the run re-executes itself with PYTHONHASHSEED=0, so a seed replays in any process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import ROOT
from .report import ModuleReport

MODULES = ("ami_backup", "ebs_snapshot", "deregister_cleanup", "snapshot_copy", "instance_scheduler", "ssm_runcommand")
DEFAULT_SEED, DEFAULT_DAYS, DEFAULT_SOURCES = 14, 365, 50
RESULTS = ROOT / "bench" / "results" / "soak.json"


@dataclass
class Outcome:
    module: str
    report: ModuleReport | None  # None: NOT RUN
    seconds: float = 0.0
    why_not: str = ""


def run_module(module: str, seed: int, days: int, sources: int, stop_at_step: int | None) -> Outcome:
    try:
        soak_module = importlib.import_module(f"bench.soak.{module}")
    except ModuleNotFoundError as error:
        if error.name != f"bench.soak.{module}":
            raise
        return Outcome(module, None, why_not="no bench/soak/" + module + ".py yet")
    started = time.perf_counter()
    report = soak_module.soak(seed, days, sources, stop_at_step)
    return Outcome(module, report, time.perf_counter() - started)


def fault_summary(report: ModuleReport) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(report.faults.items())) or "none"


def table(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| module | steps | checks | faults injected (by kind) | violations | runtime |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for outcome in outcomes:
        report = outcome.report
        if report is None:
            lines.append(f"| {outcome.module} | NOT RUN | | {outcome.why_not} | | |")
            continue
        lines.append(
            f"| {outcome.module} | {report.steps:,} | {report.checks:,} | {sum(report.faults.values()):,}: "
            f"{fault_summary(report)} | {len(report.violations)} | {outcome.seconds:.0f} s |"
        )
    return lines


def violation_lines(outcomes: Sequence[Outcome]) -> list[str]:
    lines = []
    for outcome in outcomes:
        if outcome.report is None:
            continue
        for violation in outcome.report.violations:
            lines.append(
                f"- {violation.module} step {violation.step}: {violation.invariant}: {violation.detail}\n"
                f"  replay: `{outcome.report.replay_command(violation.step)}`"
            )
    return lines


def as_json(outcomes: Sequence[Outcome], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "seed": args.seed,
        "days": args.days,
        "sources": args.sources,
        "stop_at_step": args.stop_at_step,
        "modules": [
            {"module": o.module, "run": False, "why_not": o.why_not}
            if o.report is None
            else {
                "module": o.module,
                "run": True,
                "seconds": round(o.seconds, 1),
                "steps": o.report.steps,
                "checks": o.report.checks,
                "faults": dict(sorted(o.report.faults.items())),
                "violations": [{**vars(v), "replay": o.report.replay_command(v.step)} for v in o.report.violations],
            }
            for o in outcomes
        ],
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", choices=MODULES, help="one module (default: all, in order)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES)
    parser.add_argument("--stop-at-step", type=int, default=None, help="stop after this step (replays a violation)")
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="write the README's soak block from this run too (a full default run always does); it says the days run",
    )
    return parser.parse_args(argv)


def with_fixed_hash_seed() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        os.execve(sys.executable, [sys.executable, "-m", "bench.soak", *sys.argv[1:]], env)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    modules = [args.module] if args.module else list(MODULES)
    outcomes = []
    for module in modules:
        print(f"soak {module}: seed {args.seed}, {args.days} days, {args.sources} sources ...", flush=True)
        outcomes.append(run_module(module, args.seed, args.days, args.sources, args.stop_at_step))
    lines = table(outcomes)
    violations = violation_lines(outcomes)
    print("\n".join(lines))
    print("\n".join(violations) if violations else "violations: none")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(as_json(outcomes, args), indent=2) + "\n", encoding="utf-8")
    full = (
        args.module is None
        and args.stop_at_step is None
        and (args.seed, args.days, args.sources) == (DEFAULT_SEED, DEFAULT_DAYS, DEFAULT_SOURCES)
    )
    if (full or args.write_readme) and args.module is None and args.stop_at_step is None:
        from ..performance import write_block

        note = (
            f"Seed {args.seed}, {args.days} simulated days of daily schedules, {args.sources} sources per module; "
            "one step is one Lambda invocation (a scheduled run or a worker batch), every invariant checked after each."
        )
        if not full:
            note += (
                f" Not the year `make soak` runs by default ({DEFAULT_DAYS} days): this block is from "
                f'`make soak SOAK_ARGS="--days {args.days} --write-readme"`.'
            )
        write_block("soak", "make soak", [*lines, "", note, "", *(violations or ["Violations: none (target 0)."])])
    not_run = [o for o in outcomes if o.report is None]
    return 1 if violations or not_run else 0


if __name__ == "__main__":
    with_fixed_hash_seed()
    sys.exit(main())
