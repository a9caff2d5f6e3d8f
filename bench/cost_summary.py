"""Issue 14: the projected monthly cost of every module at 20, 200 and 2,000 sources, line by line, next to the origin
design (uzresk/aws-auto-operations-using-lambda), from the committed measured inputs (bench/cost_inputs.json, written
by `make bench`) and the projection functions of bench/cost.py, readme.py, cleanup.py, copy.py, scheduler.py and
runcommand.py. Nothing is measured here (no moto): a size the bench did not measure is extrapolated from the largest
one it did, and says so.

`python -m bench.cost_summary` writes bench/results/cost_summary.json and prints the Markdown."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from tests.support.moto_fidelity import CONCURRENT_SNAPSHOT_COPIES_PER_REGION, DEFAULT_SNAPSHOT_COPY_TIME

from ops_automation.core.targeting import PAGE_SIZE

from . import ROOT, cleanup, model, readme
from . import copy as copy_bench
from . import runcommand as runcommand_bench
from . import scheduler as scheduler_bench
from .cost import (
    DAYS,
    MINUTES_PER_MONTH,
    CycleUsage,
    LatencyModel,
    Line,
    Projection,
    cycle_duration_s,
    money,
    price_sources,
    project,
    quantity,
)

SIZES = (20, 200, 2_000)
RESULTS_FILE = ROOT / "bench" / "results" / "cost_summary.json"
LAMBDA_MAX_TIMEOUT_S = readme.LAMBDA_MAX_TIMEOUT_S
SEND_COMMAND_MAX_IDS = 50  # SSM SendCommand takes at most 50 instance ids per call


@dataclass(frozen=True)
class SizedCost:
    """One module (or mode) at one size: ours and the origin design, each a projection line by line."""

    module: str
    sources: int
    source_is: str  # what one source is for this module
    basis: str  # measured at this size, projected per source, or extrapolated (from what)
    ours: Projection
    origin: Projection | None  # None: the origin has no counterpart
    apart: tuple[Line, ...] = ()  # priced next to the module, not in its total (the account's, the instances')
    lower_bound: bool = False  # the extrapolation leaves out growth the model cannot size (said in the notes)


# ---------------------------------------------------------------------------------------------------------------
# Extrapolating a size the bench did not measure
# ---------------------------------------------------------------------------------------------------------------


def pages(items: int, page_size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(items / page_size))


def repaged(fixed_calls: Mapping[str, float], measured: int, sources: int) -> dict[str, float]:
    """A cycle's listing calls (one per page of 1,000 sources) at `sources`, from those measured at `measured`."""
    return {call: n * pages(sources) / pages(measured) for call, n in fixed_calls.items()}


def copy_catch_up_listings(sources: int, destinations: int) -> int:
    """One catch-up run's listing calls: the source policy's snapshots once (SOURCE_GENERATIONS each), and every
    destination's copies (GENERATIONS each), by pages of 1,000."""
    own = pages(sources * copy_bench.SOURCE_GENERATIONS)
    return own + destinations * pages(sources * copy_bench.GENERATIONS)


def copy_at(measured: copy_bench.CopyInputs, sources: int) -> copy_bench.CopyInputs:
    """Extrapolated, not measured: each copy costs what one of `measured`'s day did (its back-pressure waits
    included); the catch-ups' listings are re-paged for `sources`."""
    catch_up = {
        call: copy_catch_up_listings(sources, measured.destinations) if call in copy_bench.LISTINGS else n
        for call, n in measured.catch_up.items()
    }
    fixed = {call: float(n * copy_bench.CATCH_UPS_PER_DAY) for call, n in catch_up.items()}
    return replace(
        measured,
        sources=sources,
        copies=sources * measured.destinations,
        catch_up=catch_up,
        usage=replace(measured.usage, fixed_calls=fixed),
        derived=True,
    )


def copies_a_day_per_destination() -> float:
    """What the pending-copy quota lets complete in a day at the fidelity's assumed copy time."""
    return CONCURRENT_SNAPSHOT_COPIES_PER_REGION * 86_400 / DEFAULT_SNAPSHOT_COPY_TIME.total_seconds()


def scheduler_at(measured: scheduler_bench.SchedulerInputs, instances: int) -> scheduler_bench.SchedulerInputs:
    """Extrapolated: per instance as measured; the planners' DescribeInstances re-paged."""
    usage = replace(measured.usage, fixed_calls=repaged(measured.usage.fixed_calls, measured.instances, instances))
    return replace(measured, instances=instances, usage=usage)


# ---------------------------------------------------------------------------------------------------------------
# The origin designs this bench had no model of (modelled the way bench/cost.py models ami-backup's)
# ---------------------------------------------------------------------------------------------------------------


def copy_origin(ours: copy_bench.CopyInputs, log_bytes_each: float) -> CycleUsage:
    """ebs-copy-snapshot/EBSCopySnapshotFunction.java: one scheduled invocation copies every volume's newest
    snapshot in turn; per copy DescribeSnapshots (the newest), CopySnapshot, DescribeSnapshots (the source's tags),
    CreateTags, DescribeSnapshots (the volume id back from the tag), DescribeSnapshots (the copies) and a
    DeleteSnapshot per copy beyond the generations (one at steady state)."""
    per_copy = {"ec2.DescribeSnapshots": 4, "ec2.CopySnapshot": 1, "ec2.CreateTags": 1, "ec2.DeleteSnapshot": 1}
    return model.baseline_usage(
        {}, per_copy, 1, log_bytes_each, checker=False, service_events=ours.usage.service_events
    )


# instance/InstanceStartFunction.java, InstanceStopFunction.java, InstanceOperation.java: per instance, the stop (or
# start) run's DescribeInstances (its state), StopInstances (StartInstances), CreateQueue (the queue's URL) and
# SendMessage; then that action's checker's DescribeInstances, CreateQueue and DeleteMessage once the state is
# reached (modelled: at its first look). A weekday is one stop and one start.
SCHEDULER_ORIGIN_RUN = {"ec2.DescribeInstances": 1, "ec2.StopInstances": 1, "sqs.CreateQueue": 1, "sqs.SendMessage": 1}
SCHEDULER_ORIGIN_CHECK = {"ec2.DescribeInstances": 1, "sqs.CreateQueue": 1, "sqs.DeleteMessage": 1}


def scheduler_origin_day() -> dict[str, int]:
    """Per instance, a weekday's calls of the origin: the stop run, the start run and both checks."""
    stop = Counter(SCHEDULER_ORIGIN_RUN) + Counter(SCHEDULER_ORIGIN_CHECK)
    start = Counter({("ec2.StartInstances" if call == "ec2.StopInstances" else call): n for call, n in stop.items()})
    return dict(sorted((stop + start).items()))


SCHEDULER_ORIGIN_CHECKERS = 2  # CheckInstanceStateStartRule and CheckInstanceStateStopRule, every minute
SCHEDULER_ORIGIN_CHECKER_REQUESTS = 2  # each run: CreateQueue, then ReceiveMessage


def scheduler_origin(log_bytes_each: float) -> CycleUsage:
    usage = model.baseline_usage(
        {},
        scheduler_origin_day(),
        1,
        log_bytes_each,
        checker=True,
        service_events="EC2 Instance State-change",
    )
    checks = SCHEDULER_ORIGIN_CHECKERS * MINUTES_PER_MONTH
    return replace(
        usage,
        invocations_fixed=2,  # the start function's run and the stop function's
        checker_invocations_per_month=checks,
        idle_sqs_requests_per_month=checks * SCHEDULER_ORIGIN_CHECKER_REQUESTS,
    )


def runcommand_origin(instances: int) -> CycleUsage:
    """run-command/RunScriptFunction.java: one scheduled invocation a night, one SendCommand naming the instances
    (priced at one per 50 ids: SSM refuses more in one call, which the origin does not split)."""
    calls = {"ssm.SendCommand": math.ceil(instances / SEND_COMMAND_MAX_IDS)}
    # Its own log lines are a few per night, not per instance: the platform's lines per invocation only.
    return model.baseline_usage(
        {}, calls, instances, 0.0, checker=False, service_events="SSM Run Command status-change"
    )


# ---------------------------------------------------------------------------------------------------------------
# Every module at every size
# ---------------------------------------------------------------------------------------------------------------


def ami_backup_costs(sizes: Sequence[int]) -> list[SizedCost]:
    ours, origin = model.load_inputs()
    basis = "projected per instance from the daily cycle measured at 20 instances"
    return [SizedCost("ami-backup", n, "instance", basis, project(ours, n), project(origin, n)) for n in sizes]


def ebs_costs(sizes: Sequence[int]) -> list[SizedCost]:
    costs = []
    for mode, m in model.load_ebs_inputs().items():
        source_is = "volume" if m.volumes_per_unit == 1 else f"volume ({m.volumes_per_unit} per instance set)"
        basis = (
            f"projected per {m.unit} from the daily cycle measured at {m.units_measured * m.volumes_per_unit} volumes"
        )
        costs += [
            SizedCost(
                f"ebs-snapshot ({mode} mode)",
                n,
                source_is,
                basis,
                readme.ebs_projection(m, "ours", n),
                readme.ebs_projection(m, "origin", n),
            )
            for n in sizes
        ]
    return costs


def cleanup_costs(sizes: Sequence[int]) -> list[SizedCost]:
    inputs = cleanup.load_inputs()
    basis = (
        f"projected per AMI from the day measured at {inputs.units_measured} AMIs; the sweep's listings by pages "
        f"of {inputs.page_size:,} at {inputs.snapshots_per_source} snapshots per source"
    )
    return [
        SizedCost(
            "deregister-cleanup",
            n,
            "AMI deregistered a day",
            basis,
            project(inputs.usage("ours", n), n),
            project(inputs.usage("origin", n), n),
        )
        for n in sizes
    ]


def _by_size(measured: Mapping[int, Any], n: int) -> tuple[Any, str]:
    """The inputs measured at `n`, else the largest measured ones (and the basis saying so)."""
    if n in measured:
        return measured[n], "measured at this size"
    largest = max(measured)
    return measured[largest], f"extrapolated from the {largest:,}-source measurement"


def copy_costs(sizes: Sequence[int]) -> list[SizedCost]:
    """Snapshots copied to one destination region (the module's defaults: `copy_images = false`)."""
    runs = copy_bench.load_inputs()
    measured = {r.sources: r for r in runs if r.kind == "snapshots" and r.destinations == 1 and not r.derived}
    smallest = measured[min(measured)]
    origin_usage = copy_origin(smallest, smallest.usage.log_bytes_each)
    costs = []
    for n in sizes:
        inputs, basis = _by_size(measured, n)
        inputs = inputs if inputs.sources == n else copy_at(inputs, n)
        costs.append(
            SizedCost(
                "snapshot-copy",
                n,
                "volume backed up daily, copied to 1 region",
                basis,
                copy_bench.projection(inputs),
                project(origin_usage, inputs.copies),
                lower_bound=inputs.derived and n > copies_a_day_per_destination(),
            )
        )
    return costs


def scheduler_costs(sizes: Sequence[int]) -> list[SizedCost]:
    measured = {i.instances: i for i in scheduler_bench.load_inputs()[0]}
    costs = []
    for n in sizes:
        inputs, basis = _by_size(measured, n)
        inputs = inputs if inputs.instances == n else scheduler_at(inputs, n)
        origin = scheduler_origin(inputs.usage.log_bytes_each)
        costs.append(
            SizedCost(
                "instance-scheduler",
                n,
                "instance stopped and started each weekday",
                basis,
                scheduler_bench.projection(inputs),
                project(origin, n, days=scheduler_bench.SLOTS_PER_MONTH),
                apart=(scheduler_bench.churn_line(inputs),),
            )
        )
    return costs


def runcommand_measured() -> dict[int, runcommand_bench.RunCommandInputs]:
    """The steady-state slots of the cost sizes, and the largest first slot of the calls sizes (tag-targeted; the
    bench checks that a first slot makes the same calls as one at steady state)."""
    results = runcommand_bench.load_inputs()
    measured = {i.instances: i for i in results.inputs if i.mode == "tags"}
    tags = [s for s in results.slots if s.mode == "tags" and s.instances not in measured]
    if tags and results.warm_equals_cold:
        largest = max(tags, key=lambda s: s.instances)
        measured[largest.instances] = runcommand_bench.inputs_of(largest)
    return measured


def runcommand_costs(sizes: Sequence[int]) -> list[SizedCost]:
    measured = runcommand_measured()
    costs = []
    for n in sizes:
        inputs, basis = _by_size(measured, n)
        inputs = replace(inputs, instances=n)  # per instance as measured
        costs.append(
            SizedCost(
                "ssm-runcommand",
                n,
                "instance, tag-targeted, nightly",
                basis,
                runcommand_bench.projection(inputs),
                project(runcommand_origin(n), n, days=runcommand_bench.SLOTS_PER_MONTH),
                apart=runcommand_bench.output_lines(n, inputs.output_objects_each),
            )
        )
    return costs


MODULES: tuple[Callable[[Sequence[int]], list[SizedCost]], ...] = (
    ami_backup_costs,
    ebs_costs,
    cleanup_costs,
    copy_costs,
    scheduler_costs,
    runcommand_costs,
)


def all_costs(sizes: Sequence[int] = SIZES) -> list[SizedCost]:
    return [cost for module in MODULES for cost in module(sizes)]


def projection_dict(p: Projection | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {**asdict(p), "total": p.total, "total_after_free_tier": p.total_after_free_tier}


def as_dict(cost: SizedCost) -> dict[str, Any]:
    return {
        **asdict(cost),
        "ours": projection_dict(cost.ours),
        "origin": projection_dict(cost.origin),
        "apart": [asdict(line) for line in cost.apart],
    }


def origin_run_seconds(sizes: Sequence[int] = SIZES) -> dict[str, dict[int, float]]:
    """The origins that run a whole cycle in one invocation (ebs-snapshot's and snapshot-copy's daily run,
    instance-scheduler's stop or start run): that invocation's modelled duration, against Lambda's 900 s maximum."""
    latency = LatencyModel()
    copy_usage = copy_origin(copy_bench.load_inputs()[0], 0.0)
    run = model.baseline_usage({}, SCHEDULER_ORIGIN_RUN, 1, 0.0, checker=False, service_events="")
    ebs = {
        f"ebs-snapshot ({mode} mode)": {n: cycle_duration_s(m.origin, n // m.volumes_per_unit, latency) for n in sizes}
        for mode, m in model.load_ebs_inputs().items()
    }
    return {
        **ebs,
        "snapshot-copy": {n: cycle_duration_s(copy_usage, n, latency) for n in sizes},
        "instance-scheduler": {n: cycle_duration_s(run, n, latency) for n in sizes},
    }


def measure() -> dict[str, Any]:
    """From the committed inputs only (bench/cost_inputs.json): no moto, seconds."""
    return {
        "sizes": list(SIZES),
        "costs": [as_dict(cost) for cost in all_costs()],
        "origin_run_seconds": {m: {str(n): s for n, s in by.items()} for m, by in origin_run_seconds().items()},
        "copies_a_day_per_destination": copies_a_day_per_destination(),
    }


# ---------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------


def _total(p: Mapping[str, Any] | None, after_free_tier: bool = False) -> str:
    if p is None:
        return "(no origin counterpart)"
    return money(p["total_after_free_tier" if after_free_tier else "total"])


def summary_table(costs: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [
        "| module | sources | ours | ours after free tier | origin | origin after free tier | basis |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in costs:
        bound = "≥ " if c["lower_bound"] else ""
        rows.append(
            f"| {c['module']} | {c['sources']:,} | {bound}{_total(c['ours'])} | {bound}{_total(c['ours'], True)} | "
            f"{_total(c['origin'])} | {_total(c['origin'], True)} | {c['basis']} |"
        )
    return rows


def line_table(c: Mapping[str, Any]) -> list[str]:
    """Every line of ours next to the origin's same line (a line only one design has: `—` in the other)."""
    ours = {line["item"]: line for line in c["ours"]["lines"]}
    origin = {line["item"]: line for line in c["origin"]["lines"]} if c["origin"] else {}
    rows = [
        "| line | ours: quantity/month | ours | ours after free tier | origin: quantity/month | origin | "
        "origin after free tier |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in [*ours, *(i for i in origin if i not in ours)]:
        cells = []
        for side in (ours, origin):
            line = side.get(item)
            cells += (
                [f"{quantity(line['quantity'])} {line['unit']}", money(line["usd"]), money(line["usd_after_free_tier"])]
                if line
                else ["—", "—", "—"]
            )
        rows.append(f"| {item} | " + " | ".join(cells) + " |")
    origin_cells = (
        f"| **{_total(c['origin'])}** | **{_total(c['origin'], True)}**"
        if c["origin"]
        else "| (no origin counterpart) |"
    )
    rows.append(f"| **total** | | **{_total(c['ours'])}** | **{_total(c['ours'], True)}** | {origin_cells} |")
    for line in c["apart"]:
        rows.append(
            f"| {line['item']} (apart: not in the total) | {quantity(line['quantity'])} {line['unit']} | "
            f"{money(line['usd'])} | {money(line['usd_after_free_tier'])} | | | |"
        )
    return rows


def notes(results: Mapping[str, Any]) -> list[str]:
    latency = LatencyModel()
    runs = results["origin_run_seconds"]
    copy_runs = ", ".join(f"{float(s):,.0f} s at {int(n):,}" for n, s in runs["snapshot-copy"].items())
    slot_runs = ", ".join(f"{float(s):,.0f} s at {int(n):,}" for n, s in runs["instance-scheduler"].items())
    capacity = results["copies_a_day_per_destination"]
    ebs_runs = "; ".join(
        f"{module.split('(')[1].rstrip(')')} "
        + ", ".join(f"{float(s):,.0f} s at {int(n):,}" for n, s in by_size.items())
        for module, by_size in runs.items()
        if module.startswith("ebs-snapshot")
    )
    return [
        "How these are computed:",
        "",
        "- Monthly, us-east-1 list prices, 256 MB arm64 functions, from the AWS calls, invocations, messages, log",
        "  bytes and metrics of the cycles `make bench` measured on moto made faithful (committed in",
        "  bench/cost_inputs.json), priced by bench/cost.py `project` (Lambda duration modelled at "
        f"{latency.ec2_call_s * 1000:.0f} ms per EC2 or SSM",
        f"  call, {latency.other_call_s * 1000:.0f} ms per other call, {latency.invocation_s * 1000:.0f} ms per "
        f"invocation). Days a month: {DAYS} (instance-scheduler: {scheduler_bench.SLOTS_PER_MONTH} weekdays of one "
        "stop and one start slot).",
        "- **Basis** says whether a size was measured, projected per source from one measured cycle (ami-backup,",
        "  ebs-snapshot, deregister-cleanup: their cost model scales by source), or extrapolated from the largest",
        "  measured size. snapshot-copy and instance-scheduler at 2,000: the per-source figures of the 200-source",
        "  measurement, their listings re-paged by 1,000; ssm-runcommand at 2,000: the per-instance figures of the",
        "  1,000-instance slot (its one SendCommand per tag target is counted twice: $0.00).",
        f"- **snapshot-copy at 2,000 is a lower bound (≥)**: at most {CONCURRENT_SNAPSHOT_COPIES_PER_REGION} snapshot "
        "copies are pending per destination region",
        f"  and a copy takes {DEFAULT_SNAPSHOT_COPY_TIME.total_seconds() / 60:.0f} minutes (the fidelity's "
        f"assumption): about {capacity:,.0f} copies complete a day per destination, fewer than",
        "  2,000. The queue's back-pressure waits per copy then grow beyond the 200-source day's, which this keeps;",
        "  the copies fall further behind each day (a quota increase or fewer sources per policy is needed).",
        "- Apart lines are not the module's and are in no total: instance-scheduler's assumed churn (every",
        "  running/stopped event of the account's other instances reaches the queue), ssm-runcommand's S3 output",
        "  written by the instances (assumed size). Storage of the snapshots and AMIs (EBS, per GB-month) and",
        "  cross-region transfer are in no figure: the same whichever design makes them (see the module READMEs).",
        "",
        "The origin designs (uzresk/aws-auto-operations-using-lambda), priced with the same table and latency model",
        "at ours' 256 MB (their Java runtime, its memory and its sleeps while polling an async call are not priced),",
        "no metrics and no alarms, log bytes per source at ours':",
        "",
        "- ami-backup, ebs-snapshot, deregister-cleanup: measured on the same moto as ours (bench/baseline.py; the",
        "  module READMEs describe them). ami-backup's has a checker every minute receiving from SQS. ebs-snapshot's",
        f"  one daily invocation's modelled duration: {ebs_runs}.",
        "- snapshot-copy (modelled, not run): ebs-copy-snapshot's one scheduled invocation a day copying every",
        "  volume's newest snapshot in turn, 7 EC2 calls per copy (4 DescribeSnapshots, CopySnapshot, CreateTags,",
        "  DeleteSnapshot), no queue, events, ledger or catch-up. Past the pending-copy quota its CopySnapshot is",
        "  refused and that copy is only logged (fewer calls, no copy). One invocation's modelled duration: "
        f"{copy_runs}",
        f"  (Lambda's maximum is {LAMBDA_MAX_TIMEOUT_S} s: past it the run stops part-way and the rest get no copy). "
        "It has no AMI copy.",
        "- instance-scheduler (modelled, not run): instance/'s start and stop functions, one scheduled invocation per",
        "  slot doing per instance DescribeInstances, StartInstances/StopInstances, CreateQueue and SendMessage; two",
        "  checkers (start, stop) every minute all month (CreateQueue and ReceiveMessage each run), per instance",
        "  DescribeInstances, CreateQueue and DeleteMessage when the state is reached (modelled: at the first look).",
        f"  One slot's modelled duration: {slot_runs}.",
        "- ssm-runcommand (modelled, not run): run-command/'s one scheduled invocation a night calling SendCommand",
        f"  with the listed instance ids (priced at one call per {SEND_COMMAND_MAX_IDS} ids: SSM refuses more in one "
        "call, which the origin",
        "  does not split); no events, queue, ledger, checks, metrics or alarms, so nothing sees a failed instance.",
        "",
        "Prices: " + price_sources("s3_put_requests") + ".",
    ]


def markdown(results: Mapping[str, Any]) -> list[str]:
    costs = results["costs"]
    lines = [
        "## Monthly cost per module at 20 / 200 / 2,000 sources, ours next to the origin design (issue 14)",
        "",
        "Totals (line by line below). A source is what the module acts on once a cycle: the `sources` column's unit",
        "is in each table's heading.",
        "",
        *summary_table(costs),
        "",
        *notes(results),
    ]
    for c in costs:
        bound = " (lower bound)" if c["lower_bound"] else ""
        lines += [
            "",
            f"### {c['module']}, {c['sources']:,} sources (a source: {c['source_is']}){bound}",
            "",
            f"Basis: {c['basis']}.",
            "",
            *line_table(c),
        ]
    return lines


def main() -> None:
    results = measure()
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
