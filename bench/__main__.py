"""`make bench`: measure everything in one run, print the tables, write bench/results/*.json, bench/RESULTS.md,
bench/cost_inputs.json and the cost sections of modules/ami-backup/README.md, modules/ebs-snapshot/README.md,
modules/deregister-cleanup/README.md, modules/snapshot-copy/README.md, modules/instance-scheduler/README.md and
modules/ssm-runcommand/README.md.

`python -m bench organization` measures only the landing-zone scale (issue 12, bench/organization.py): the planner
and the fan-out at 10 to 500 accounts, written to bench/results/organization.json and printed (a few minutes).

`python -m bench ssm-runcommand` measures only ssm-runcommand (issue 10): its results file, its inputs in
bench/cost_inputs.json and its README section; bench/RESULTS.md is rewritten only when bench/results/ holds every
other measurement of an earlier full run.

`python -m bench restore` measures only the restore tests (issue 13, bench/restore.py): the cost of one test and a
month of weekly tests at 20 and 200 sources, its inputs in bench/cost_inputs.json (key `restore`) and its section of
bench/RESULTS.md (spliced in; the rest of the file untouched) and the restore-cost blocks of the two module READMEs.

Both also write the cost sections of the examples' READMEs (bench/examples.py, issue 11). `python -m bench examples`
writes only those, from the committed inputs (no measurement); `--measure` first measures again what only the examples
need (the hub's cross-account cycle, ssm-runcommand slots at an example's own settings, about 2 minutes); `--check`
writes nothing and exits 1 when a section is missing or stale; `--missing-to DIR` writes the section of a composed
example whose README has no markers yet to DIR/cost-<example>.md."""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import (
    ROOT,
    bucket,
    cleanup,
    cost_summary,
    crossaccount,
    ebs,
    examples,
    footprint,
    model,
    organization,
    performance,
    planner,
    readme,
    scale,
    throttle,
)
from . import calls as calls_bench
from . import copy as copy_bench
from . import restore as restore_bench
from . import runcommand as runcommand_bench
from . import scheduler as scheduler_bench
from .cost import EXCLUDED_PRICES, ISSUE_OLD_FIGURE_20, PRICES, LatencyModel, money, project

RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / "bench" / "RESULTS.md"
CALLS_FLEET = 20
PLANNER_FLEETS = (1_000, 10_000)
COST_FLEETS = (20, 200, 2_000)


def _row(figure: str, ours: str, baseline: str, target: str = "") -> str:
    return f"| {figure} | {ours} | {baseline} | {target} |"


def measure() -> dict[str, Any]:
    ours, base = calls_bench.measure(CALLS_FLEET)
    ours_usage = model.ours_usage(ours)
    origin_usage = model.origin_usage(base, ours_usage.log_bytes_each)
    return {
        "calls": {"ours": ours.calls.as_dict(), "baseline": base.as_dict()},
        "usage": {"ours": asdict(ours_usage), "origin": asdict(origin_usage)},
        "planner_check": planner.check_against_moto(),
        "planner": {
            "ours": [asdict(planner.run_stand_in(n)) for n in PLANNER_FLEETS],
            "baseline": [asdict(planner.baseline_peak(n)) for n in PLANNER_FLEETS],
        },
        "footprint": footprint.measure(),
        "scale": scale.measure(processes=2),
        "bucket": bucket.measure(),
        "throttle": throttle.measure(),
        "ebs": measure_ebs(),
        "cleanup": cleanup.measure().as_dict(),
        "copy": copy_bench.measure().as_dict(),
        "scheduler": scheduler_bench.measure().as_dict(),
        "ssm_runcommand": runcommand_bench.measure().as_dict(),
        "cross_account": crossaccount.measure().as_dict(),
        "example_runs": examples.measure_runs(),
        "organization": organization.measure().as_dict(),
        "restore": restore_results(),
    }


def with_footprint_keys(results: dict[str, Any]) -> dict[str, Any]:
    """The footprint's import figures and largest zip under the keys the RESULTS.md rows read."""
    found = results["footprint"]
    return {**results, "imports": found["imports"], "zip_bytes": max(found["zip_bytes"].values())}


def restore_results() -> dict[str, Any]:
    """The calls of one restore test per module (measured, or the documented flow: `source` says which)."""
    measured = restore_bench.measure()
    return {m: (measured.get(m) or restore_bench.documented_calls(m)).as_dict() for m in restore_bench.MODULES}


def restore_measured(results: dict[str, Any]) -> dict[str, restore_bench.TestCalls] | None:
    got = {
        m: restore_bench.TestCalls.from_dict(c)
        for m, c in results.get("restore", {}).items()
        if c.get("source") != restore_bench.DOCUMENTED
    }
    return got or None


def measure_ebs() -> dict[str, Any]:
    cycles, inputs = ebs.measure()
    return {
        "cycles": {
            mode: {design: c.as_dict() for design, c in by_design.items()} for mode, by_design in cycles.items()
        },
        "inputs": {mode: asdict(m) for mode, m in inputs.items()},
    }


def ebs_inputs(results: dict[str, Any]) -> dict[str, model.ModeInputs]:
    return {mode: model.ModeInputs.from_dict(m) for mode, m in results["ebs"]["inputs"].items()}


def ebs_figures(results: dict[str, Any]) -> list[str]:
    """Issue 6: calls per volume (volume mode) and per instance set (instance mode), and the monthly cost."""
    cycles = results["ebs"]["cycles"]
    rows = ["| figure | ours | baseline (origin design) |", "|---|---|---|"]
    for mode, by_design in cycles.items():
        mine, theirs = by_design["ours"], by_design["baseline"]
        where = f"{mode} mode, {mine['volumes']} volumes" + (
            f" in {mine['units']} sets" if mine["units"] != mine["volumes"] else ""
        )
        rows += [
            f"| EC2 calls / {mine['unit']} / daily cycle ({where}; planner and retiring one generation included) "
            f"| {mine['ec2_each']:.2f} | {theirs['ec2_each']:.2f} |",
            f"| other AWS calls / {mine['unit']} / daily cycle "
            f"| {mine['other_each']:.2f} | {theirs['other_each']:.2f} |",
            f"| {mode} mode: generations retired / {mine['unit']} / cycle; snapshots beyond the generations "
            f"afterwards; ledger entries pending or work items left | {mine['retired_each']:.2f}; "
            f"{mine['leaked_snapshots']}; {mine['unfinished']} | {theirs['retired_each']:.2f}; "
            f"{theirs['leaked_snapshots']}; (none kept) |",
        ]
    for mode, m in ebs_inputs(results).items():
        for n in readme.EBS_SIZES:
            ours, origin = readme.ebs_projection(m, "ours", n), readme.ebs_projection(m, "origin", n)
            rows.append(
                f"| monthly cost at {n:,} volumes, {mode} mode (after always-free tiers; storage excluded) | "
                f"{money(ours.total)} ({money(ours.total_after_free_tier)}) | "
                f"{money(origin.total)} ({money(origin.total_after_free_tier)}) |"
            )
    return rows


def ebs_notes(results: dict[str, Any]) -> list[str]:
    volume = results["ebs"]["cycles"]["volume"]["ours"]
    instance = results["ebs"]["cycles"]["instance"]["ours"]
    return [
        "### ebs-snapshot: how it is measured",
        "",
        f"- One fleet on moto made faithful (tests/support/moto_fidelity.py): {instance['units']} instances tagged "
        f"`{next(iter(ebs.TAGS))} = {next(iter(ebs.TAGS.values()))}`, each with {ebs.VOLUMES_PER_INSTANCE} data "
        f"volumes tagged the same ({volume['volumes']} volumes). Volume mode targets the volume tags, instance mode "
        "the instance tags with `exclude_root_volume = true`; as examples/ebs-snapshot: daily, "
        f"{ebs.GENERATIONS} generations, `copy_volume_tags` on.",
        f"- Steady state: {ebs.GENERATIONS} daily cycles, then the measured one, which also retires one generation "
        "per volume (set). Per unit = every call of the cycle, the planner's included, divided by the volumes "
        "(sets); retries are not calls (none happen here).",
        "- A cycle as deployed: the planner; the create work items as they come due (the planner paces them at 2 per "
        "second with per-message delays, so the event source mapping gets them 2 at a time); the snapshots "
        "complete 10 minutes later in EC2 (the fidelity's assumed completion time); one completion event per "
        "snapshot (volume mode) or per set (instance mode), each in its own invocation; the delayed checks in "
        "batches of 10, which find the ledger done.",
        "- Baseline: `bench/baseline.py` `EbsBaseline`, the origin's ebs-snapshot function (volume mode) and its "
        "per-instance pattern for sets (instance mode), on the same moto and fleet. Not modelled for it: the "
        "500 ms polls it sleeps while waiting for CreateSnapshot's answer, its Java runtime (512 MB): it is "
        "priced with ours' latency model and memory.",
        "- Not in any figure: EBS snapshot storage (see the price list), and `createSnapshot` events of other "
        'tools reaching the queue (modules/ebs-snapshot/README.md, "Events reacted to").',
    ]


def ebs_calls_by_api(results: dict[str, Any]) -> list[str]:
    """Every API of the measured cycle, per unit, ours next to the origin."""
    rows = ["| mode | call | ours / unit | origin / unit |", "|---|---|---|---|"]
    for mode, by_design in results["ebs"]["cycles"].items():
        per_design = {
            design: {call: n / c["units"] for call, n in (Counter(c["planner"]) + Counter(c["worker"])).items()}
            for design, c in by_design.items()
        }
        for call in sorted(set(per_design["ours"]) | set(per_design["baseline"])):
            ours, base = per_design["ours"].get(call), per_design["baseline"].get(call)
            rows.append(
                f"| {mode} | {call} | {'' if ours is None else f'{ours:.2f}'} | "
                f"{'' if base is None else f'{base:.2f}'} |"
            )
    return rows


def cleanup_inputs(results: dict[str, Any]) -> cleanup.CleanupInputs:
    return cleanup.CleanupInputs.from_dict(results["cleanup"]["inputs"])


def _per(calls: dict[str, int], n: int, prefix: str = "") -> str:
    return ", ".join(f"{call.split('.')[1]} {v / n:.2f}" for call, v in calls.items() if call.startswith(prefix))


def cleanup_figures(results: dict[str, Any]) -> list[str]:
    """Issue 7: the sweep by pages, the purge per orphan, the event path per AMI, ours next to the origin."""
    c = results["cleanup"]
    rows = ["| figure | ours | baseline (origin design) |", "|---|---|---|"]
    for run in c["sweeps"]:
        ec2 = {k: v for k, v in run["calls"].items() if k.startswith("ec2.")}
        rows.append(
            f"| sweep over {run['snapshots']:,} CreateImage snapshots ({run['orphans']:,} of deregistered AMIs, "
            f"{run['registered']:,} of registered ones, {run['recycled']:,} of AMIs in the Recycle Bin): EC2 calls "
            f"by API; per 1,000 snapshots | {_calls(ec2)}; {sum(ec2.values()) * 1000 / run['snapshots']:.2f} "
            f"(SendMessageBatch {run['calls'].get('sqs.SendMessageBatch', 0)} for {run['purges_enqueued']} purge "
            "messages) | no sweep: the orphans stay |"
        )
    p = c["purge"]
    rows += [
        f"| worker purge of the {p['orphans']:,} orphans found ({p['messages']} messages of 20, {p['invocations']} "
        f"invocations as the paced messages come due): EC2 calls per orphan deleted | "
        f"{_per(p['calls'], p['deleted'], 'ec2.')} (total {sum(p['calls'].values()) / p['deleted']:.2f}) | |",
        f"| after the purge: orphans left for the next daily sweep (one sweep hands out at most "
        f"{cleanup.MAX_PURGES_PER_SWEEP} messages of 20); snapshots of registered or binned AMIs kept | "
        f"{p['orphans_left']}; {p['others_kept']} of {p['others']} | |",
    ]
    days = {(d["design"], d["timing"]): d for d in c["days"]}
    for timing in cleanup.TIMINGS:
        mine, theirs = days[("ours", timing)], days[("origin", timing)]
        n = mine["amis"]
        rows += [
            f"| event path, {n} AMIs deregistered, each event handled {timing}: calls per AMI by API "
            "(its delayed purge and any retry included) | "
            f"{_per(mine['calls'], n)} | {_per(theirs['calls'], n)} |",
            f"| ... invocations and SQS messages per AMI; snapshots deleted / left behind | "
            f"{mine['invocations'] / n:.2f} and {mine['messages'] / n:.2f}; {mine['deleted']} / {mine['left']} | "
            f"{theirs['invocations'] / n:.2f} and 0; {theirs['deleted']} / {theirs['left']} |",
        ]
    ours_day = days[("ours", cleanup.TIMINGS[0])]
    other_form = next(d for d in c["days"] if d["design"].startswith("origin, "))
    rows += [
        f"| repeated event (CloudTrail rule on, or a redelivery): calls per AMI | "
        f"{_per(ours_day['repeat_calls'], ours_day['amis'])} | (acts again) |",
        f"| EC2's other observed description (`Created by CreateImage(i-…) for ami-…`, no ` from vol-…`): "
        f"snapshots deleted / left behind after the window | {ours_day['amis']} / 0 (both forms read) | "
        f"{other_form['deleted']} / {other_form['left']} (its filter needs ` from *`) |",
    ]
    inputs = cleanup_inputs(results)
    for n in readme.CLEANUP_SIZES:
        ours, origin = project(inputs.usage("ours", n), n), project(inputs.usage("origin", n), n)
        rows.append(
            f"| monthly cost at {n:,} AMIs deregistered a day, sweep over {n * inputs.snapshots_per_source:,} "
            f"snapshots (after always-free tiers; storage excluded) | {money(ours.total)} "
            f"({money(ours.total_after_free_tier)}) | {money(origin.total)} ({money(origin.total_after_free_tier)}) |"
        )
    return rows


def cleanup_notes(results: dict[str, Any]) -> list[str]:
    c = results["cleanup"]
    return [
        "### deregister-cleanup: how it is measured",
        "",
        "- moto made faithful, fixed clock, `managed` scope, snapshots tagged as ami-backup tags them. AMIs are made "
        "with CreateImage at moto's backend (setup, not counted), one snapshot each, described as EC2 does "
        "(`Created by CreateImage(i-…) for ami-… from vol-…`, the form the origin's filter needs; ours reads both).",
        "- Sweep: one account grown to "
        + " then ".join(f"{s['snapshots']:,}" for s in c["sweeps"])
        + " snapshots (of every 20: 16 of deregistered AMIs, 3 of registered ones, 1 of an AMI deregistered into "
        "the Recycle Bin with `fidelity.recycle_image`), past the 24-hour grace; the sweep reads only, so the "
        "first sweep's messages are dropped and the last one's drained by the worker (delays honoured, batches "
        "of up to 10 as they come due). DescribeSnapshots pages by MaxResults/NextToken as AWS documents "
        "(fidelity E24; moto answers one page); the fidelity's `fast_tags` looks tags up directly instead of "
        "moto's scan of every tag (same answer, checked in the run: "
        f"{all(s['tags_checked'] for s in c['sweeps'])}).",
        "- Event path: an account holding 20 snapshots per AMI deregistered that day; 20 AMIs deregistered, each "
        "`deregistered` state event in its own invocation, handled at once (inside the fidelity's assumed 60 s "
        "`InvalidSnapshot.InUse` window after DeregisterImage) or after that window; every message the worker "
        "sends (delayed purges, retries) handled as it comes due; then the same events again; then the day's sweep. "
        "The cost model uses the `at once` day.",
        "- Baseline: `bench/baseline.py` `DeregisterBaseline`, the origin's deregister-image function on the same "
        "moto and AMIs: one invocation per CloudTrail event, DescribeSnapshots by description, DeleteSnapshot per "
        "snapshot, the first error ends it (logged, not retried). It checks neither `errorCode`, nor whether "
        "another AMI uses a snapshot, nor whose the snapshot is.",
    ]


def scheduler_inputs(
    results: dict[str, Any],
) -> tuple[list[scheduler_bench.SchedulerInputs], list[scheduler_bench.SlotRun]]:
    r = scheduler_bench.results_from_dict(results["scheduler"])
    return r.inputs, r.slots


def copy_inputs(results: dict[str, Any]) -> list[copy_bench.CopyInputs]:
    return [copy_bench.CopyInputs.from_dict(m) for m in results["copy"]["inputs"]]


def copy_figures(results: dict[str, Any]) -> list[str]:
    """Issue 8: calls per copy by service, the catch-up, and the monthly cost, per configuration."""
    rows = [
        "| figure | "
        + " | ".join(f"{d['kind']}, {d['sources']} x {d['destinations']}" for d in results["copy"]["days"])
        + " |"
    ]
    days = results["copy"]["days"]
    rows.append("|---" * (1 + len(days)) + "|")

    def row(label: str, cell: Any) -> None:
        rows.append(f"| {label} | " + " | ".join(cell(d) for d in days) + " |")

    def per(d: dict[str, Any], prefix: str) -> str:
        return _per(d["calls"], d["copies"], prefix) or "0"

    row("EC2 calls per copy by API (the whole day: events, waits, checks, retention)", lambda d: per(d, "ec2."))
    row("DynamoDB calls per copy", lambda d: per(d, "dynamodb."))
    row("SQS calls per copy (the worker's sends)", lambda d: per(d, "sqs."))
    row("SNS publishes per copy (alerts)", lambda d: per(d, "sns.") if "sns.Publish" in d["calls"] else "0")
    row(
        "Lambda invocations per copy; SQS messages consumed per copy",
        lambda d: f"{d['invocations'] / d['copies']:.2f}; {sum(d['messages'].values()) / d['copies']:.2f}",
    )
    row(
        "copy requests per copy (refused ones included); back-pressure waits per copy",
        lambda d: f"{d['copy_requests'] / d['copies']:.2f}; {d['redelivered_waits'] / d['copies']:.2f}",
    )
    row("hours from the first source event to the last copy completed", lambda d: f"{d['hours_to_last_copy']:.1f}")
    row(
        "copies retired; every lineage at 7 generations; pending ledger entries or messages left; alerts",
        lambda d: f"{d['retired']}; {d['generations_kept']}; {d['unfinished']}; {d['alerts']}",
    )
    row("scheduled catch-up, nothing missing: calls", lambda d: _calls(d["catch_up"]))
    row(
        "catch-up with one copy missing: calls; enqueued",
        lambda d: f"{_calls(d['catch_up_missing'])}; {d['catch_up_enqueued']}",
    )
    check = results["copy"]["derivation_check"]
    rows += [
        "",
        "| monthly cost (storage and transfer excluded) | total | after the always-free tiers | Lambda GB-s per copy |",
        "|---|---|---|---|",
    ]
    for inputs in copy_inputs(results):
        p = copy_bench.projection(inputs)
        rows.append(
            f"| {inputs.kind}, {inputs.label} | {money(p.total)} | {money(p.total_after_free_tier)} | "
            f"{readme.copy_gb_seconds_each(inputs):.3f} |"
        )
    if check:
        inv = check["invocations_each"]
        rows += [
            "",
            f"Derivation check at {check['sources']} sources: the 2-destination day derived from the 1-destination "
            f"one makes the measured calls per copy: {check['same_calls']}; the same catch-up: "
            f"{check['same_catch_up']}; invocations per copy derived {inv['derived']:.2f}, measured "
            f"{inv['measured']:.2f} (one event's copy items share an invocation).",
        ]
    return rows


def copy_notes(results: dict[str, Any]) -> list[str]:
    return [
        "### snapshot-copy: how it is measured",
        "",
        "- moto made faithful, fixed clock, SQS on that clock. Per configuration one account at steady state: every "
        f"lineage (volume, or instance for AMIs) holds {copy_bench.GENERATIONS} completed copies in each destination "
        "region, made with the module's own request from the bench's clients (setup, not counted), and the source "
        f"region keeps the source policy's last {copy_bench.SOURCE_GENERATIONS} backups.",
        "- The measured day: each lineage's new backup completes; the completion events come 0.5 s apart, each in "
        "its own invocation; every work item is handled when due (delays honoured, batches of up to 10); a copy's "
        "completion event (`copySnapshot`, or the copied AMI's `available`) is delivered when the fidelity completes "
        "the copy (30 minutes after the request); delayed checks come every 15 minutes while it is pending. Calls "
        "per copy = every call of the day / (sources x destinations).",
        "- Then a catch-up with nothing missing, and one after a copy of the newest generation was deleted in the "
        "first destination (its work item and that copy's life measured apart).",
        "- Speed shims, not fidelity (same answers, checked in the run: "
        f"{results['copy']['filters_checked']}): moto's tag lookup (`fast_tags`) and exact tag and id filters "
        "applied by dictionary lookup before moto's own filtering (`bench/copy.py` `fast_tag_filters`).",
    ]


def scheduler_figures(results: dict[str, Any]) -> list[str]:
    """Issue 9: calls per 1,000 instances per action (EC2 instances only), and the monthly cost."""
    r = scheduler_bench.results_from_dict(results["scheduler"])
    rows = ["| figure | " + " | ".join(s.action for s in r.slots) + " |", "|---" * (1 + len(r.slots)) + "|"]
    per = [s.per_1000() for s in r.slots]
    for call in sorted({call for figures in per for call in figures}):
        rows.append(f"| {call} per 1,000 instances | " + " | ".join(f"{f.get(call, 0):,.0f}" for f in per) + " |")
    rows.append(
        "| instances acted on / verified / alerts | "
        + " | ".join(f"{s.acted} / {s.verified} / {s.alerts} of {s.instances:,}" for s in r.slots)
        + " |"
    )
    rows += ["", "| instances | monthly cost (after always-free tiers) | assumed churn line | with churn |"]
    rows.append("|---|---|---|---|")
    for inputs in r.inputs:
        p, c = scheduler_bench.projection(inputs), scheduler_bench.churn_line(inputs)
        rows.append(
            f"| {inputs.instances:,} | {money(p.total)} ({money(p.total_after_free_tier)}) | {money(c.usd)} | "
            f"{money(p.total + c.usd)} ({money(p.total_after_free_tier + c.usd_after_free_tier)}) |"
        )
    return rows


def scheduler_notes(results: dict[str, Any]) -> list[str]:
    r = scheduler_bench.results_from_dict(results["scheduler"])
    foreign = ", ".join(f"{call} {n}" for call, n in r.foreign_event.items()) or "none"
    return [
        "### instance-scheduler: how it is measured",
        "",
        "- EC2 instances only: the Auto Scaling group and RDS adapters (`groups.py`, `rds.py`) are not measured.",
        "- moto made faithful, fixed clock, SQS on that clock; the real `plan_handler` and `work_handler` with "
        "modules/instance-scheduler's defaults (20-minute deadline). Instances tagged `Schedule = office-hours`; "
        f"an instance is `stopping` for {scheduler_bench.STOP_TIME.total_seconds():.0f} s and `pending` for "
        f"{scheduler_bench.START_TIME.total_seconds():.0f} s (assumed), then its state event is delivered in its "
        "own invocation; work items are handled when due (the planner paces act items of 50 instances 10 s apart; "
        "batches of up to 10); the delayed checks come at most 15 minutes later (SQS's maximum delay).",
        f"- Calls per 1,000: one stop and one start slot on {r.slots[0].instances:,} instances, the first slots of "
        "the account; at "
        + " and ".join(f"{i.instances}" for i in r.inputs)
        + " instances (the cost) a stop and a start slot first, then the measured ones. A first slot makes the "
        f"same calls as one at steady state (checked at {r.inputs[0].instances} instances: {r.warm_equals_cold}).",
        f"- A state event of an instance outside the policy (the rule is account-wide, review note 14): {foreign}. "
        f"Priced apart at an assumed {scheduler_bench.ASSUMED_CHURN_EVENTS_PER_MONTH:,} events a month.",
        f"- A month: {scheduler_bench.SLOTS_PER_MONTH} start and {scheduler_bench.SLOTS_PER_MONTH} stop slots "
        "(weekday office hours); the event source mapping's idle polls all month.",
    ]


def runcommand_figures(results: dict[str, Any]) -> list[str]:
    """Issue 10: calls per nightly slot by API at each size and mode, the ratios, and the monthly cost."""
    r = runcommand_bench.results_from_dict(results["ssm_runcommand"])
    rows = readme.runcommand_calls_rows(r.slots)
    rows += [
        "",
        "| instances | monthly cost, tags (after always-free tiers) | instances' S3 output (assumed) |",
        "|---|---|---|",
    ]
    for inputs in r.inputs:
        p = runcommand_bench.projection(inputs)
        s3 = sum(line.usd for line in runcommand_bench.output_lines(inputs.instances, inputs.output_objects_each))
        rows.append(f"| {inputs.instances:,} | {money(p.total)} ({money(p.total_after_free_tier)}) | {money(s3)} |")
    return rows


def runcommand_notes(results: dict[str, Any]) -> list[str]:
    r = runcommand_bench.results_from_dict(results["ssm_runcommand"])
    sizes, every = sorted({s.instances for s in r.slots}), r.every_status
    return [
        "### ssm-runcommand: how it is measured",
        "",
        "- moto made faithful (E40-E52), fixed clock, SQS on that clock; the real `plan_handler` and `work_handler` "
        "with tests/python/aws_harness.py's `runcommand_function_env` (AWS-RunShellScript, MaxConcurrency 50, "
        "output to the S3 bucket, which exists). Every instance a managed node, online, succeeding; SSM delivers an "
        f"invocation {runcommand_bench.DELIVERY_TIME.total_seconds():g} s after sending it and the script runs "
        f"{runcommand_bench.RUN_TIME.total_seconds():g} s (assumed), sent in batches of 1, 2, 4, ... at most 50 "
        "running (E45).",
        "- The events come from the fidelity's emitter (E52) as the clock reaches each change, each in its own "
        "invocation; work items are handled when due (the delayed check 5 minutes after the send, then at the "
        "deadline in chained delays of at most 15 minutes while instances are still running).",
        f"- Calls by API: the first slot of an account, at {', '.join(f'{n:,}' for n in sizes)} instances, "
        "tag-targeted and by listed ids. Cost: at "
        + " and ".join(f"{i.instances}" for i in r.inputs)
        + " instances a slot the night before, then the measured one; a first slot makes the same calls "
        f"(checked at {r.inputs[0].instances}: {r.warm_equals_cold}).",
        "- The events pass the deployed rule's filter (modules/ssm-runcommand/main.tf: every status but "
        f"{', '.join(runcommand_bench.RULE_SKIPS)}); the fidelity emits the terminal statuses only. With SSM "
        f"emitting every status (checked at {every.get('instances')}): emitted {every.get('emitted')}, forwarded "
        f"{every.get('forwarded')}, the same calls {every.get('same_calls')}.",
        "- Not measured: failures (one SNS publish and one `InvocationsFailed` each), offline or unmanaged instances, "
        "several regions or accounts, output to CloudWatch Logs, SSM's own SNS notifications.",
    ]


def figures(results: dict[str, Any]) -> list[str]:
    ours_c, base_c = results["calls"]["ours"], results["calls"]["baseline"]
    rows = [
        "| figure | ours | baseline (origin design) | target |",
        "|---|---|---|---|",
        _row(
            f"EC2 calls / instance / daily cycle, besides deletions ({CALLS_FLEET} instances)",
            f"{ours_c['per_instance_ec2']:.2f}",
            f"{base_c['per_instance_ec2']:.2f}",
            "≤ 2 (issue: 6 before)",
        ),
        _row(
            "all AWS calls / instance / daily cycle, besides deletions",
            f"{ours_c['per_instance_all']:.2f}",
            f"{base_c['per_instance_all']:.2f}",
            "≤ 8 (issue: 12.1 before)",
        ),
    ]
    for mine, theirs in zip(results["planner"]["ours"], results["planner"]["baseline"], strict=True):
        n = mine["instances"]
        rows.append(_row(f"planner calls at {n:,} instances", _calls(mine["calls"]), _calls(theirs["calls"])))
        rows.append(
            _row(f"planner peak memory at {n:,} (tracemalloc)", _mb(mine["peak_bytes"]), _mb(theirs["peak_bytes"]))
        )
    ours_p = results["planner"]["ours"]
    growth = (ours_p[-1]["peak_bytes"] - ours_p[0]["peak_bytes"]) / (ours_p[-1]["instances"] - ours_p[0]["instances"])
    rows.append(_row("planner memory growth per extra instance", f"{growth:.0f} B (the sets of seen ids)", "", ""))
    ratios = [value for key, value in results["imports"].items() if "/" in key and key.endswith("_ratio")]
    spread = f"{min(ratios):.2f}x to {max(ratios):.2f}x ({len(ratios)} functions)"
    rows.append(_row("cold import of each function vs `import boto3` (from its zip, no .pyc)", spread, "", "≤ 1.5x"))
    largest = f"{results['zip_bytes'] / 1024:.1f} KB"
    rows.append(_row("largest function zip (core modules it imports + one module)", largest, "", "< 100 KB"))
    rows.extend(throttle_rows(results["throttle"]))
    for n in COST_FLEETS:
        ours = project(model_usage(results, "ours"), n)
        origin = project(model_usage(results, "origin"), n)
        rows.append(
            _row(
                f"monthly cost at {n:,} instances (after always-free tiers)",
                f"{money(ours.total)} ({money(ours.total_after_free_tier)})",
                f"{money(origin.total)} ({money(origin.total_after_free_tier)})",
                f"≤ $0.50 at 20 (issue: {money(ISSUE_OLD_FIGURE_20)} before)" if n == 20 else "",
            )
        )
    return rows


def _ratio(throttled: float, plain: float) -> str:
    return f"{throttled:.1f} s / {plain:.1f} s = {throttled / plain:.2f}x"


def _records(phase: dict[str, Any]) -> str:
    return f"{phase['done_first']} / {phase['deferred_first']} / {phase['lost']} / {phase['dead_lettered']}"


def throttle_rows(t: dict[str, Any]) -> list[str]:
    """Item 3: throttled time relative to unthrottled, simulated clock (latency and retry sleeps, not this machine)."""
    timeout, budget = t["timeout_s"], f"< {throttle.BUDGET_SHARE:.0%} of {t['timeout_s']} s"
    p, mine, theirs = t["planner"], t["planner"]["ours"], t["planner"]["baseline"]
    share = f"{p['share']:.0%}"

    def verdict(run: dict[str, Any]) -> str:
        within = "under" if run["seconds"] < throttle.BUDGET_SHARE * timeout else "NOT under"
        over = "; exceeds the timeout" if run["exceeds_timeout"] else ""
        return f"{run['timeout_share']:.1%} of its {timeout} s timeout ({within} 80 %{over})"

    rows = [
        _row(
            f"planner at {p['instances']:,} instances, {share} of EC2 requests throttled: simulated time "
            "throttled / unthrottled",
            f"{_ratio(mine['throttled']['seconds'], mine['unthrottled']['seconds'])}; {verdict(mine['throttled'])}; "
            f"{mine['throttled']['throttled']} of its EC2 attempts throttled (worst case for one request: "
            f"{t['worst_backoff_s']['planner']:.0f} s of retry sleeps)",
            f"{_ratio(theirs['throttled']['seconds'], theirs['unthrottled']['seconds'])}; "
            f"{verdict(theirs['throttled'])}; {theirs['throttled']['throttled']} attempts throttled",
            budget,
        )
    ]
    for key, label in (("worker", share), ("worker_storm", f"{t['worker_storm']['share']:.0%} (a storm)")):
        w = t[key]
        plain, hot = w["ours"]["unthrottled"], w["ours"]["throttled"]
        base_plain, base_hot = w["baseline"]["unthrottled"], w["baseline"]["throttled"]
        create, completion = hot["create_image"], hot["completion"]
        base_verdict = "exceeds" if base_hot["exceeds_timeout"] else "within"
        rows += [
            _row(
                f"worker, {label} of EC2 requests throttled: one invocation on a batch of {w['records']} "
                "create_image records, simulated time throttled / unthrottled",
                _ratio(create["first_invocation_s"], plain["create_image"]["first_invocation_s"]),
                f"{_ratio(base_hot['seconds'], base_plain['seconds'])} (its {w['records']} backups with completion "
                f"and retention inline, adaptive retries in process); {base_verdict} the {timeout} s timeout",
                "ours < baseline",
            ),
            _row(
                f"worker, {label}: one invocation on the completion batch ({w['records']} AMI `available` events, "
                "retention included)",
                _ratio(completion["first_invocation_s"], plain["completion"]["first_invocation_s"]),
                "(inline above)",
            ),
            _row(
                f"worker, {label}: records done / deferred to SQS / lost / dead-lettered in the first invocation "
                "(create; completion)",
                f"{_records(create)}; {_records(completion)}",
                f"{base_hot['done']} done, {base_hot['failed']} failed"
                + (
                    f" (in process, past its {timeout} s timeout: Lambda would end it there and redeliver the batch)"
                    if base_hot["exceeds_timeout"]
                    else ""
                ),
                "lost = 0",
            ),
            _row(
                f"worker, {label}: time until every record is done, SQS redelivering deferred records after their "
                "back-off (create + completion) vs unthrottled",
                f"{create['total_s']:.1f} s + {completion['total_s']:.1f} s in "
                f"{create['invocations'] + completion['invocations']} invocations (longest "
                f"{max(create['max_invocation_s'], completion['max_invocation_s']):.1f} s) vs "
                f"{plain['create_image']['total_s']:.1f} s + {plain['completion']['total_s']:.1f} s",
                f"{base_hot['seconds']:.1f} s vs {base_plain['seconds']:.1f} s, in one invocation",
                "every invocation < 80 % of 300 s",
            ),
        ]
    return rows


def model_usage(results: dict[str, Any], design: str) -> Any:
    from .cost import CycleUsage

    return CycleUsage(**results["usage"][design])


def _calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{name.split('.')[1]} {count:,}" for name, count in sorted(calls.items()))


def _mb(value: int) -> str:
    return f"{value / 1e6:.2f} MB"


def throttle_notes(t: dict[str, Any]) -> str:
    modes = t["retry_modes"]
    return "\n".join(
        [
            "## Throttling (item 3), how it is measured",
            "",
            f"- Simulated clock, never this machine's: every HTTP attempt costs {t['latency_s']['ec2'] * 1000:.0f} ms "
            f"(EC2) or {t['latency_s']['other'] * 1000:.0f} ms (other services); botocore's real retry sleeps, its "
            f"jitter (seeded) and adaptive mode's token bucket advance the same clock. EC2 attempts are answered "
            f"`RequestLimitExceeded` from a seeded RNG (seed {t['seed']}); moto does not act on them.",
            f"- Retries: ours {modes['ours']['planner']} (planner) and {modes['ours']['worker']} (worker), from "
            f"`ops_automation.core.clients`; the baseline {modes['baseline']['planner']}.",
            "- Planner: on moto, 1,000 instances in reservations of 100. Ours makes one DescribeInstances per 1,000 "
            "instances, so a 20 % share throttles it or not at all: the worst case of its retries is given instead.",
            "- Worker: steady state (3 generations present). Ours runs on a simulated queue: batches of up to 10 "
            "visible records, ChangeMessageVisibility honoured (the worker's back-off: 30 s, 60 s, ... capped at "
            "900 s), receives counted, the DLQ after 10 receives; deferred records are redelivered after their "
            "back-off until done. A record is done when SQS deleted it *and* its AMI (create) or its ledger entry "
            "`available` (completion) exists; lost = deleted without that, or never finished. The baseline "
            "backs up the same instances in one invocation (no queue: it retries in process).",
            f"- At 20 % the worker's {modes['ours']['worker'].split(', ')[1]} absorbs the throttles in process "
            "(short jittered sleeps) and nothing is deferred; the storm row shows the deferral path.",
        ]
    )


def report(
    results: dict[str, Any],
    table: list[str],
    ebs_table: list[str],
    cleanup_table: list[str],
    copy_table: list[str],
    scheduler_table: list[str] | None = None,
    runcommand_table: list[str] | None = None,
) -> str:
    landing_zone = (
        [
            "## Landing-zone scale (issue 12): the two-level fan-out next to the single-level planner",
            "",
            *organization.table(results["organization"]),
            "",
            *organization.notes(results["organization"]),
            "",
        ]
        if "organization" in results
        else []
    )
    ours, origin = model_usage(results, "ours"), model_usage(results, "origin")
    sources = "\n".join(
        f"- {key}: ${p.usd:.10g} per {p.per}, free {p.free:g}/month — {p.source}"
        + (" (stated, in no total)" if key in EXCLUDED_PRICES else "")
        for key, p in PRICES.items()
    )
    check = results["planner_check"]
    return "\n".join(
        [
            "# Benchmark results (generated by `make bench`; do not edit)",
            "",
            *table,
            "",
            f"Stand-in EC2/SQS checked against moto on {check['instances']} instances: same calls "
            f"{check['same_calls']}, same messages {check['same_messages']}.",
            "",
            throttle_notes(results["throttle"]),
            "",
            readme.section(ours, origin).replace("## Cost", "## Cost, line by line"),
            "",
            "## ebs-snapshot (issue 6): calls per volume and per instance set, and cost",
            "",
            *ebs_table,
            "",
            "### ebs-snapshot: AWS calls by API, per unit per daily cycle",
            "",
            *ebs_calls_by_api(results),
            "",
            *ebs_notes(results),
            "",
            readme.ebs_section(ebs_inputs(results), readme.EBS_SIZES)
            .replace("## Cost", "## ebs-snapshot cost, line by line")
            .replace("](../../examples/", "](../examples/"),
            "",
            "## deregister-cleanup (issue 7): calls per 1,000 snapshots swept, per orphan, per AMI, and cost",
            "",
            *cleanup_table,
            "",
            *cleanup_notes(results),
            "",
            readme.cleanup_section(cleanup_inputs(results), readme.CLEANUP_SIZES).replace(
                "## Cost", "## deregister-cleanup cost, line by line"
            ),
            "",
            "## snapshot-copy (issue 8): calls per copy, the catch-up, and cost",
            "",
            *copy_table,
            "",
            *copy_notes(results),
            "",
            "## snapshot-copy cost, line by line",
            "",
            readme.copy_section(copy_inputs(results)).replace("](../../examples/", "](../examples/"),
            "",
            "## instance-scheduler (issue 9): calls per 1,000 instances per action, and cost",
            "",
            *(scheduler_table or scheduler_figures(results)),
            "",
            *scheduler_notes(results),
            "",
            "## instance-scheduler cost, line by line",
            "",
            readme.scheduler_section(*scheduler_inputs(results)),
            "",
            "## ssm-runcommand (issue 10): calls per nightly slot by API, and cost",
            "",
            *(runcommand_table or runcommand_figures(results)),
            "",
            *runcommand_notes(results),
            "",
            "## ssm-runcommand cost, line by line",
            "",
            runcommand_section(results).replace("](../../examples/", "](../examples/"),
            "",
            *restore_bench.report_section(restore_measured(results)),
            "",
            *landing_zone,
            "## Prices (us-east-1 list prices)",
            "",
            sources,
            "",
            "- SQS event source mapping: Lambda long-polls with 5 pollers when idle and scales down to 5; the further "
            "optimisation to 2 is not available when maximum concurrency is set "
            "(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).",
            "- CloudWatch custom metrics are prorated by the hour and metered only in hours a metric receives data "
            "(https://aws.amazon.com/cloudwatch/pricing/); modelled as metric names x active hours / 730.",
            "- AWS service events (EC2 AMI State Change) on the default bus are free, and so are AWS management "
            'events delivered by CloudTrail (`AWS API Call via CloudTrail`, e.g. DeregisterImage): "AWS management '
            'events are ingested by the event bus for free"; Scheduler has 14 M free invocations a month '
            "(https://aws.amazon.com/eventbridge/pricing/). The trail such events need is not priced (CloudTrail's "
            "first copy of management events is free).",
            "",
            "Raw figures: bench/results/*.json (not committed).",
        ]
    )


def runcommand_section(results: dict[str, Any]) -> str:
    r = runcommand_bench.results_from_dict(results["ssm_runcommand"])
    return readme.runcommand_section(r.inputs, r.slots, r.every_status)


def write_runcommand_readme(results: dict[str, Any]) -> bool:
    """Its own markers only, as snapshot-copy's: the section is never appended to a README without them."""
    path = readme.RUNCOMMAND_README
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if readme.BEGIN not in text or readme.END not in text:
        print(f"{path.relative_to(ROOT)} has no {readme.BEGIN}/{readme.END} markers: not written")
        return False
    readme.write(runcommand_section(results), path)
    return True


def main_runcommand() -> int:
    """Only ssm-runcommand: `python -m bench ssm-runcommand`."""
    value = runcommand_bench.measure().as_dict()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ssm_runcommand.json").write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    runcommand_bench.save_inputs(runcommand_bench.results_from_dict(value))
    written = write_runcommand_readme({"ssm_runcommand": value})
    print("\n".join(runcommand_figures({"ssm_runcommand": value})))
    names = [*MEASURED, "ssm_runcommand"]
    if all((RESULTS / f"{name}.json").exists() for name in names):
        names += ["organization"] if (RESULTS / "organization.json").exists() else []
        names += ["restore"] if (RESULTS / "restore.json").exists() else []
        results = {name: json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8")) for name in names}
        tables = (figures, ebs_figures, cleanup_figures, copy_figures, scheduler_figures)
        REPORT.write_text(report(results, *(table(results) for table in tables)) + "\n", encoding="utf-8")
        if all((RESULTS / f"{name}.json").exists() for name in PERFORMANCE_PIECES):  # its section is kept
            pieces = {n: json.loads((RESULTS / f"{n}.json").read_text(encoding="utf-8")) for n in PERFORMANCE_PIECES}
            write_performance(pieces)
        print(f"wrote {REPORT.relative_to(ROOT)} (the other modules' figures from bench/results/*.json)")
    else:
        print(f"{REPORT.relative_to(ROOT)} not rewritten: bench/results/ lacks an earlier full run's figures")
    print(
        f"wrote bench/results/ssm_runcommand.json, {model.INPUTS_FILE.relative_to(ROOT)}"
        + (f" and the cost section of {readme.RUNCOMMAND_README.relative_to(ROOT)}" if written else "")
    )
    write_examples()
    return 0


def write_examples(missing_to: Path | None = None) -> None:
    """The examples' cost sections from the committed inputs, and their monthly totals."""
    for path in examples.write_all(missing_to):
        print(f"wrote the cost section of {path}")
    for name, by_size in examples.totals().items():
        figures = ", ".join(f"{n:,}: {money(total)} ({money(free)})" for n, (total, free) in by_size.items())
        print(f"examples/{name} monthly (after the always-free tiers): {figures}")


RESTORE_HEADING = "## Restore tests (issue 13)"


def splice_restore(report_text: str, section: list[str]) -> str:
    """RESULTS.md with its restore section replaced (or inserted before the landing-zone or the price list)."""
    lines = report_text.split("\n")
    if any(line.startswith(RESTORE_HEADING) for line in lines):
        start = next(i for i, line in enumerate(lines) if line.startswith(RESTORE_HEADING))
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    else:
        start = end = next(
            i for i, line in enumerate(lines) if line.startswith(("## Landing-zone", "## Prices (us-east-1"))
        )
    return "\n".join([*lines[:start], *section, "", *lines[end:]])


def main_restore(args: list[str]) -> int:
    """`python -m bench restore`."""
    if args:
        print("usage: python -m bench restore", file=sys.stderr)
        return 2
    value = restore_results()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "restore.json").write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    inputs = restore_bench.load_inputs()
    restore_bench.save_inputs({**inputs, "calls": value})
    measured = restore_measured({"restore": value})
    section = restore_bench.report_section(measured)
    REPORT.write_text(splice_restore(REPORT.read_text(encoding="utf-8"), section), encoding="utf-8")
    readmes = restore_bench.write_readmes(measured)
    print("\n".join(section))
    print(f"\nwrote bench/results/restore.json, {model.INPUTS_FILE.relative_to(ROOT)} (key `restore`), the restore "
          f"section of {REPORT.relative_to(ROOT)} and the restore cost of "
          f"{', '.join(str(p.relative_to(ROOT)) for p in readmes)}")  # fmt: skip
    return 0


def main_examples(args: list[str]) -> int:
    """`python -m bench examples [--check] [--missing-to DIR]`."""
    if args == ["--check"]:
        problems = examples.stale()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    if args in ([], ["--measure"]):
        if args:
            crossaccount.save_inputs(crossaccount.measure())
            examples.save_runs(examples.measure_runs())
        write_examples()
        return 0
    if len(args) == 2 and args[0] == "--missing-to" and Path(args[1]).is_dir():
        write_examples(Path(args[1]))
        return 0
    print("usage: python -m bench examples [--check | --measure | --missing-to DIR]", file=sys.stderr)
    return 2


PERFORMANCE_PIECES = ("footprint", "scale", "bucket", "cost_summary")
IMPORT_TARGET, ZIP_TARGET_KB, RATIO_TARGET, TIMEOUT_SHARE_TARGET = 1.5, 100, 1.3, 0.8


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def targets(pieces: dict[str, Any]) -> list[str]:
    """Every figure of issue 14's benchmark against its target, from the pieces' results."""
    fp, sc, bk = pieces["footprint"], pieces["scale"], pieces["bucket"]
    rows = ["| figure | measured | target | verdict |", "|---|---|---|---|"]
    ratios = [f["ratio"] for f in fp["functions"]]
    worst = max(fp["functions"], key=lambda f: f["ratio"])
    rows.append(
        f"| cold import vs `import boto3`, {len(ratios)} functions | {min(ratios):.2f}x to {max(ratios):.2f}x "
        f"(worst: {worst['module']} {worst['key']}) | ≤ {IMPORT_TARGET:g}x | {_verdict(max(ratios) <= IMPORT_TARGET)} |"
    )
    largest = max(fp["zip_bytes"].items(), key=lambda item: item[1])
    rows.append(
        f"| largest function zip | {largest[1] / 1024:.1f} KB ({largest[0]}) | < {ZIP_TARGET_KB} KB | "
        f"{_verdict(largest[1] < ZIP_TARGET_KB * 1024)} |"
    )
    measured = [f for f in sc["functions"] if f.get("peak_bytes", 1) > 0]
    unmeasured = [f"{f['module']} {f['function']}" for f in sc["functions"] if f not in measured]
    heaviest = max(measured, key=lambda f: f["total_mb"])
    rows.append(
        f"| peak memory at {sc['memory_fleet']:,} sources, {len(measured)} functions | largest "
        f"{heaviest['total_mb']:.0f} MB ({heaviest['module']} {heaviest['function']})"
        + (f"; not measured: {', '.join(unmeasured)}" if unmeasured else "")
        + f" | ≤ {sc['lambda_mb']} MB | {_verdict(all(f['fits'] for f in measured))} |"
    )
    ours = {(c["module"], c["sources"]): c["each"] for c in sc["cycles"] if c["design"] == "ours"}
    origin = {(c["module"], c["sources"]): c["each"] for c in sc["cycles"] if c["design"] != "ours"}
    compared = [key for key in ours if key in origin]
    fewer_ec2 = [key for key in compared if ours[key]["ec2"] <= origin[key]["ec2"]]
    rows.append(
        f"| EC2 calls (the account-wide buckets) per source per cycle, ours ≤ the origin design | {len(fewer_ec2)} of "
        f"{len(compared)} (module, fleet) pairs; where not: "
        + (", ".join(sorted({m for m, _n in compared if (m, _n) not in fewer_ec2})) or "none")
        + " | none in the issue (shown next to the origin) | — |"
    )
    for module, data in bk["modules"].items():
        for cycle in data["cycles"]:
            n = cycle["fleet"]
            rows.append(
                f"| {module} at {n:,} sources: throttled time / token-bucket minimum | {cycle['ratio']:.2f} | "
                f"≤ {RATIO_TARGET:g} | {_verdict(cycle['ratio'] <= RATIO_TARGET)} |"
            )
            rows.append(f"| {module} at {n:,}: items lost | {cycle['lost']:,} | 0 | {_verdict(cycle['lost'] == 0)} |")
            rows.append(
                f"| {module} at {n:,}: longest function run | {cycle['longest_run_share']:.0%} of its timeout | "
                f"< {TIMEOUT_SHARE_TARGET:.0%} | {_verdict(cycle['longest_run_share'] < TIMEOUT_SHARE_TARGET)} |"
            )
    for module, why in bk.get("not_run", {}).items():
        rows.append(
            f"| {module}: throttled time / token-bucket minimum | not measured: {why} | ≤ {RATIO_TARGET:g} | — |"
        )
    return rows


def performance_lines(pieces: dict[str, Any], full_costs: bool = False) -> list[str]:
    """The README's `bench` block: the targets, then each piece's tables (the costs' totals only, unless
    `full_costs`: the line-by-line tables are for bench/RESULTS.md)."""
    costs = cost_summary.markdown(pieces["cost_summary"])
    if not full_costs:
        costs = costs[: next((i for i, line in enumerate(costs) if line.startswith("How these")), len(costs))]
    return [
        *targets(pieces),
        "",
        "### Calls per source per cycle, every module, ours next to the origin design",
        "",
        *scale.markdown(pieces["scale"]),
        *_remeasured(pieces["scale"]),
        "",
        "### Throttled time against the EC2 token buckets",
        "",
        *bucket.markdown(pieces["bucket"]),
        "",
        "### Cold import and zip size",
        "",
        *footprint.markdown(pieces["footprint"]),
        "",
        *[line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in costs],
        "",
        "Costs are projected, not billed: list prices applied to the AWS calls, log bytes and metrics measured per "
        f"cycle, with Lambda duration modelled from those calls ({LatencyModel().ec2_call_s * 1000:.0f} ms per EC2 "
        f"call, {LatencyModel().other_call_s * 1000:.0f} ms per other call). "
        "Line-by-line costs and every other figure: [bench/RESULTS.md](bench/RESULTS.md).",
    ]


def _remeasured(results: dict[str, Any]) -> list[str]:
    again = results.get("remeasured")
    if not again:
        return []
    return ["", f"Measured again after a change, in a later run: {', '.join(again['modules'])} ({again['why']})."]


def write_performance(pieces: dict[str, Any]) -> None:
    performance.write_block("bench", "make bench", performance_lines(pieces))
    section = [ACROSS_MODULES, "", *performance_lines(pieces, full_costs=True)[:-1]]
    REPORT.write_text(splice_section(REPORT.read_text(encoding="utf-8"), ACROSS_MODULES, section), encoding="utf-8")


ACROSS_MODULES = "## Across all modules (issue 14)"


def splice_section(report_text: str, heading: str, section: list[str]) -> str:
    """RESULTS.md with the section under `heading` replaced, or inserted before the price list."""
    lines = report_text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    if starts:
        start = starts[0]
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    else:
        start = end = next(i for i, line in enumerate(lines) if line.startswith("## Prices (us-east-1"))
    return "\n".join([*lines[:start], *section, "", *lines[end:]])


def main_performance(args: list[str]) -> int:
    """`python -m bench performance [PIECE ...]`: measure the named pieces (none: measure nothing), then write the
    README block and the RESULTS.md section from bench/results/<piece>.json."""
    unknown = [arg for arg in args if arg not in PERFORMANCE_PIECES]
    if unknown:
        print(f"usage: python -m bench performance [{' | '.join(PERFORMANCE_PIECES)} ...]", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args:
        value = scale.measure(processes=2) if name == "scale" else PIECE_MODULES[name].measure()
        (RESULTS / f"{name}.json").write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    missing = [name for name in PERFORMANCE_PIECES if not (RESULTS / f"{name}.json").exists()]
    if missing:
        print(f"bench/results/ lacks {', '.join(missing)}: run `python -m bench performance {' '.join(missing)}`")
        return 1
    pieces = {name: json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8")) for name in PERFORMANCE_PIECES}
    write_performance(pieces)
    print("\n".join(targets(pieces)))
    readme_path, report_path = performance.README.relative_to(ROOT), REPORT.relative_to(ROOT)
    print(f"\nwrote the bench block of {readme_path} and its section of {report_path}")
    return 0


PIECE_MODULES: dict[str, Any] = {"footprint": footprint, "scale": scale, "bucket": bucket, "cost_summary": cost_summary}


# The measurements of a full run besides ssm-runcommand's (bench/results/<name>.json).
MEASURED = ("calls", "usage", "planner_check", "planner", "imports", "zip_bytes", "throttle", "ebs", "cleanup", "copy",
            "scheduler")  # fmt: skip


def main() -> int:
    warnings.simplefilter("ignore")
    if sys.argv[1:] == ["ssm-runcommand"]:
        return main_runcommand()
    if sys.argv[1:] == ["organization"]:
        return organization.main()
    if sys.argv[1:2] == ["examples"]:
        return main_examples(sys.argv[2:])
    if sys.argv[1:2] == ["restore"]:
        return main_restore(sys.argv[2:])
    if sys.argv[1:2] == ["performance"]:
        return main_performance(sys.argv[2:])
    if sys.argv[1:]:
        print(
            "usage: python -m bench [ssm-runcommand | organization | restore | performance [PIECE ...] | examples "
            "[--check | --measure | --missing-to DIR]]",
            file=sys.stderr,
        )
        return 2
    results = with_footprint_keys(measure())
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, value in results.items():
        (RESULTS / f"{name}.json").write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    ours, origin = model_usage(results, "ours"), model_usage(results, "origin")
    ebs_modes = ebs_inputs(results)
    cleanup_in = cleanup_inputs(results)
    copy_in = copy_inputs(results)
    restore_inputs = restore_bench.load_inputs()  # model.save_inputs rewrites the file without it
    model.save_inputs(
        ours, origin, ebs_modes, cleanup_in.as_dict(), snapshot_copy=[inputs.as_dict() for inputs in copy_in]
    )
    scheduler_bench.save_inputs(scheduler_bench.results_from_dict(results["scheduler"]))
    runcommand_bench.save_inputs(runcommand_bench.results_from_dict(results["ssm_runcommand"]))
    crossaccount.save_inputs(crossaccount.CrossAccountInputs.from_dict(results["cross_account"]))
    restore_bench.save_inputs({**restore_inputs, "calls": results["restore"]})
    restore_bench.write_readmes(restore_measured(results))
    examples.save_runs(results["example_runs"])
    readme.write(readme.section(ours, origin))
    readme.write(readme.ebs_section(ebs_modes), readme.EBS_README)
    readme.write(readme.cleanup_section(cleanup_in), readme.CLEANUP_README)
    copy_readme = readme.COPY_README.exists() and readme.BEGIN in readme.COPY_README.read_text(encoding="utf-8")
    if copy_readme:  # its own markers only: the section is never appended to a README without them
        readme.write(readme.copy_section(copy_in), readme.COPY_README)
    scheduler_text = readme.SCHEDULER_README.read_text(encoding="utf-8")
    scheduler_readme = readme.BEGIN in scheduler_text and readme.END in scheduler_text
    if scheduler_readme:  # its own markers only, as snapshot-copy's
        readme.write(readme.scheduler_section(*scheduler_inputs(results)), readme.SCHEDULER_README)
    table, ebs_table, cleanup_table = figures(results), ebs_figures(results), cleanup_figures(results)
    copy_table, scheduler_table = copy_figures(results), scheduler_figures(results)
    runcommand_table = runcommand_figures(results)
    runcommand_readme = write_runcommand_readme(results)
    REPORT.write_text(
        report(results, table, ebs_table, cleanup_table, copy_table, scheduler_table, runcommand_table) + "\n",
        encoding="utf-8",
    )
    print("\n".join(table))
    print("\n" + "\n".join(ebs_table))
    print("\n" + "\n".join(cleanup_table))
    print("\n" + "\n".join(copy_table))
    print("\n" + "\n".join(scheduler_table))
    print("\n" + "\n".join(runcommand_table))
    print("\n" + "\n".join(organization.table(results["organization"])))
    print(
        f"\nwrote {REPORT.relative_to(ROOT)}, {model.INPUTS_FILE.relative_to(ROOT)}, bench/results/*.json and "
        f"the cost sections of {readme.README.relative_to(ROOT)}, {readme.EBS_README.relative_to(ROOT)}, "
        f"{readme.CLEANUP_README.relative_to(ROOT)}"
        + (f" and {readme.COPY_README.relative_to(ROOT)}" if copy_readme else "")
        + (f" and {readme.SCHEDULER_README.relative_to(ROOT)}" if scheduler_readme else "")
        + (f" and {readme.RUNCOMMAND_README.relative_to(ROOT)}" if runcommand_readme else "")
    )
    if not scheduler_readme:
        print(f"{readme.SCHEDULER_README.relative_to(ROOT)} has no {readme.BEGIN}/{readme.END} markers: not written")
    write_examples()
    # From the inputs saved above: the cost summary is never older than this run's measurements.
    results["cost_summary"] = cost_summary.measure()
    (RESULTS / "cost_summary.json").write_text(json.dumps(results["cost_summary"], indent=2) + "\n", encoding="utf-8")
    write_performance({name: results[name] for name in PERFORMANCE_PIECES})
    print("\n" + "\n".join(targets({name: results[name] for name in PERFORMANCE_PIECES})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
