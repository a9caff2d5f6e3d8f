"""The cost sections of the examples' READMEs (issue 11): each example at its own settings, read from its Terraform,
priced with the cost model and the committed inputs the module READMEs use (bench/cost.py, bench/cost_inputs.json).

A module call of an example becomes a `Part`: the module's measured usage per unit and cycle, at the cycles a month
its schedule makes, with the alarms its settings create. An example's lines are the sum of its parts' quantities,
priced once, so the always-free tiers are counted once per account, not once per module."""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aws_harness import runcommand_function_env
from tests.support.hcl_tree import Module, load_module, load_tf, resolve_locals

from . import ROOT, cleanup, copy, crossaccount, model, runcommand, scheduler
from .cost import (
    DAYS,
    HOURS_PER_MONTH,
    IDLE_POLLS_PER_MONTH,
    PRICES,
    CycleUsage,
    LatencyModel,
    Line,
    money,
    price_sources,
    project,
    quantity,
)
from .readme import BEGIN, END, RUN_COMMAND_FREE, RUN_COMMAND_FREE_SOURCE

EXAMPLES = ROOT / "examples"
MODULES = ROOT / "modules"
# The examples whose README must carry a generated cost section (a missing one fails the test).
PUBLISHED = (
    "ami-backup",
    "ebs-snapshot",
    "deregister-cleanup",
    "snapshot-copy",
    "instance-scheduler",
    "ssm-runcommand",
)
# Issue 11's composed examples: generated once they exist.
COMPOSED = ("complete", "landing-zone")
SIZES = (20, 200)
WIDTH = 115  # the READMEs' line length
STS_FREE = "IAM, AWS IAM Identity Center, and AWS STS are features of your AWS account offered at no additional charge."
STS_FREE_SOURCE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/introduction.html"
# EventBridge Scheduler's day-of-week names; a weekday occurs SLOTS_PER_MONTH / 5 times in the model's month
# (instance-scheduler's measured month: 22 weekdays).
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
TIMES_A_WEEKDAY_A_MONTH = scheduler.SLOTS_PER_MONTH / 5
ALWAYS_ALARMED = 1  # the dead-letter alarm of modules/internal/alarms.tf
MAX_WATCHED_INTERVAL_HOURS = 168  # modules/internal/alarms.tf: no derived missed-run alarm past 7 days


# ---------------------------------------------------------------------------------------------------------------
# Reading an example's Terraform
# ---------------------------------------------------------------------------------------------------------------

_VAR = re.compile(r"^\$\{\(?var\.([A-Za-z0-9_]+)\)?\}$")
_EMBEDDED_VAR = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class Call:
    """One `module` block of an example: its arguments over the module's defaults, `var.*` resolved."""

    block: str
    module: str  # the folder under modules/
    settings: dict[str, Any]

    def get(self, name: str) -> Any:
        return self.settings.get(name)


def _resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        found = _VAR.match(value)
        if found:
            return variables.get(found.group(1), value)
        return _EMBEDDED_VAR.sub(lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {_resolve(k, variables): _resolve(v, variables) for k, v in value.items()}
    return value


def _defaults(module: Module) -> dict[str, Any]:
    return {name: body.get("default") for name, body in module.variables.items()}


def module_calls(example: Path) -> list[Call]:
    """The example's calls of public modules (a submodule such as snapshot-copy's destination is not one)."""
    caller = load_module(example)
    variables = _defaults(caller)
    calls = []
    for block, body in caller.module_calls.items():
        path = str(body.get("source", "")).rstrip("/").split("/")
        folder = path[-1]
        if path[-2:-1] != ["modules"] or path.count("modules") != 1 or not (MODULES / folder).is_dir():
            continue  # not a public module: a submodule (snapshot-copy's destination) or another source
        arguments = resolve_locals(dict(body), caller.locals)
        settings = {**_defaults(load_module(MODULES / folder)), **_resolve(arguments, variables)}
        calls.append(Call(block, folder, settings))
    return calls


def regions(example: Path) -> list[str]:
    """`region` of each aws provider block, `var.*` resolved: the default provider's first."""
    variables = _defaults(load_module(example))
    found: list[tuple[bool, str]] = []
    for tf in sorted(example.glob("*.tf")):
        for block in load_tf(tf).get("provider", []):
            for name, body in block.items():
                if name == "aws" and "region" in body:
                    found.append(("alias" in body, str(_resolve(body["region"], variables))))
    return list(dict.fromkeys(region for _alias, region in sorted(found, key=lambda f: f[0])))


# ---------------------------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------------------------


def _field_count(text: str, low: int, high: int, names: Sequence[str] = ()) -> int:
    """How many values an EventBridge cron field takes: `*`, `?`, lists, ranges and steps (`L`, `W`, `#`: one)."""
    count = 0
    for part in text.split(","):
        value, _, step = part.partition("/")
        if value in ("*", "?"):
            first, last = low, high
        elif "-" in value:
            a, b = value.split("-", 1)
            first, last = _number(a, names), _number(b, names)
        else:
            first = _number(value, names)
            last = high if step else first
        count += len(range(first, last + 1, int(step) if step else 1))
    return count


def _number(text: str, names: Sequence[str]) -> int:
    text = text.upper().rstrip("LW").split("#")[0]
    return names.index(text) + 1 if text in names else int(text or 1)


@dataclass(frozen=True)
class Schedule:
    expression: str
    cycles: float  # runs a month (the model's month: 30 days, 22 weekdays)
    interval_hours: float  # modules/internal/alarms.tf's reading of it, from which it derives the missed-run alarm

    @property
    def text(self) -> str:
        return f"{quantity(self.cycles)} runs a month"


def schedule(expression: str) -> Schedule:
    """Runs a month and the interval the internal module derives its missed-run alarm from."""
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)", expression)
    if rate:
        minutes = int(rate.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[rate.group(2)]
        return Schedule(expression, DAYS * 1440 / minutes, math.ceil(minutes / 60))
    cron = re.fullmatch(r"cron\(\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*\)", expression)
    if not cron:
        raise ValueError(f"not a recurring EventBridge Scheduler expression: {expression}")
    minute, hour, day, month, weekday, _year = cron.groups()
    a_day = _field_count(minute, 0, 59) * _field_count(hour, 0, 23)
    if weekday not in ("*", "?"):
        days = _field_count(weekday, 1, 7, WEEKDAYS) * TIMES_A_WEEKDAY_A_MONTH
    elif day not in ("*", "?"):
        days = float(_field_count(day, 1, 31))
    else:
        days = float(DAYS)
    days *= _field_count(month, 1, 12) / 12
    # modules/internal/alarms.tf reads any cron that fires every day as daily, however often within the day.
    every_day = day in ("*", "?") and month == "*" and weekday in ("*", "?")
    return Schedule(expression, a_day * days, 24.0 if every_day else float(MAX_WATCHED_INTERVAL_HOURS))


# ---------------------------------------------------------------------------------------------------------------
# Parts: one module at one example's settings
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One module of an example at one size: the lines it adds (quantities), what it is, and what is apart."""

    block: str
    module: str
    what: str
    lines: list[Line]
    apart: list[Line] = field(default_factory=list)  # priced, in no total: the account's or the instances'

    @property
    def total(self) -> float:
        return math.fsum(line.usd for line in self.lines)


def _price_key(line: Line) -> str:
    keys = [key for key, price in PRICES.items() if price.per == line.unit]
    if len(keys) > 1:
        keys = [key for key in keys if key.split("_")[0] == line.item.split()[0].lower()]
    if len(keys) != 1:
        raise ValueError(f"no single price for {line.item} ({line.unit})")
    return keys[0]


def priced(item: str, key: str, amount: float) -> Line:
    price = PRICES[key]
    return Line(item, amount, price.per, amount * price.usd, max(0.0, amount - price.free) * price.usd)


def summed(groups: Sequence[Sequence[Line]]) -> list[Line]:
    """Quantities of the same line added up and priced once (one account's free tiers)."""
    amounts: dict[str, float] = {}
    keys: dict[str, str] = {}
    for lines in groups:
        for line in lines:
            keys[line.item] = _price_key(line)
            amounts[line.item] = amounts.get(line.item, 0.0) + line.quantity
    return [priced(item, keys[item], amounts[item]) for item in amounts]


def missed_run_alarms(call: Call, schedules: Sequence[Schedule]) -> int:
    """modules/internal/alarms.tf: one per scheduled function, unless its schedule runs less often than weekly."""
    if call.get("missed_run_alarm_hours") is not None:
        return len(schedules)
    return sum(1 for s in schedules if s.interval_hours + 1 <= MAX_WATCHED_INTERVAL_HOURS)


def event_rules(call: Call) -> int:
    """The event_patterns of each module's main.tf at these settings."""
    if call.module == "deregister-cleanup":
        return 1 + bool(call.get("cloudtrail_events"))
    if call.module == "instance-scheduler":
        return 1 + (call.get("auto_scaling_groups") == "capacity") + bool(call.get("schedule_rds"))
    if call.module == "snapshot-copy":
        return (1 if call.get("copy_images") else 2) + 1
    return 1


def alarms(call: Call, schedules: Sequence[Schedule]) -> int:
    """The dead-letter alarm, the missed-run alarms, and with `kms_key_arn` one per event rule."""
    kms = event_rules(call) if call.get("kms_key_arn") is not None else 0
    return ALWAYS_ALARMED + missed_run_alarms(call, schedules) + kms


def at_cycles(usage: CycleUsage, cycles: float, alarm_count: int) -> CycleUsage:
    """The usage of a cycle at `cycles` a month: a metric is billed for at most every hour of the month."""
    hours = min(usage.metric_hours_per_day, HOURS_PER_MONTH / cycles) if cycles else 0
    return replace(usage, metric_hours_per_day=hours, alarms=alarm_count)


def _timezone(call: Call, name: str = "schedule_timezone") -> str:
    return str(call.get(name) or "UTC")


def _when(expression: str, call: Call, name: str = "schedule_timezone") -> str:
    return f"`{expression}` {_timezone(call, name)}"


def ami_backup_part(call: Call, n: int, usage: CycleUsage | None = None, note: str = "") -> Part:
    every = schedule(str(call.get("schedule_expression")))
    base = usage or model.load_inputs()[0]
    p = project(at_cycles(base, every.cycles, alarms(call, [every])), n, days=every.cycles)
    what = (
        f"{_when(every.expression, call)} ({every.text}), {call.get('generations')} generations, {n:,} instances{note}"
    )
    return Part(call.block, call.module, what, p.lines)


def ebs_snapshot_part(call: Call, n: int, usage: CycleUsage | None = None, note: str = "") -> Part:
    every = schedule(str(call.get("schedule_expression")))
    mode = str(call.get("snapshot_mode") or "volume")
    measured = model.load_ebs_inputs()
    inputs = measured[mode]
    base = usage or inputs.ours
    by_instance = bool(call.get("instance_tags") or call.get("instance_ids"))
    by_volume = bool(call.get("volume_tags") or call.get("volume_ids"))
    if mode == "volume" and by_instance:
        # The planner then lists the instances and their volumes' tags, as in instance mode (measured there).
        listing = measured["instance"].ours.fixed_calls
        fixed = {k: max(v, listing.get(k, 0)) for k, v in base.fixed_calls.items()} if by_volume else {}
        base = replace(base, fixed_calls={**listing, **fixed})
    units = n // inputs.volumes_per_unit
    p = project(at_cycles(base, every.cycles, alarms(call, [every])), units, days=every.cycles)
    sets = f" ({units:,} instance sets)" if inputs.volumes_per_unit > 1 else ""
    targets = "instances' volumes" if by_instance and not by_volume else "volumes"
    what = (
        f"{_when(every.expression, call)} ({every.text}), {mode} mode, {call.get('generations')} generations, "
        f"{n:,} {targets}{sets}{note}"
    )
    return Part(call.block, call.module, what, p.lines)


def deregister_cleanup_part(call: Call, n: int) -> Part:
    every = schedule(str(call.get("sweep_schedule_expression")))
    inputs = cleanup.load_inputs()
    usage = inputs.usage("ours", n)
    if call.get("cloudtrail_events"):
        usage = cleanup.with_cloudtrail(usage, inputs.repeat_each)
    p = project(at_cycles(usage, every.cycles, alarms(call, [every])), n, days=every.cycles)
    what = (
        f"sweep {_when(every.expression, call, 'sweep_schedule_timezone')} ({every.text}), "
        f"`{call.get('scope')}` scope, {n:,} AMIs deregistered a day (an AMI policy retiring one per instance a "
        f"day), {n * inputs.snapshots_per_source:,} snapshots swept"
    )
    return Part(call.block, call.module, what, p.lines)


def _copy_inputs(kind: str, sources: int, destinations: int) -> copy.CopyInputs:
    runs = copy.load_inputs()
    for run in runs:
        if (run.kind, run.sources, run.destinations) == (kind, sources, destinations):
            return run
    for run in runs:
        if (run.kind, run.sources, run.destinations) == (kind, sources, 1) and not run.derived:
            return copy.with_destinations(run, destinations)
    raise LookupError(f"snapshot-copy: no measured day of {kind} at {sources} sources")


def _is_service_events(line: Line) -> bool:
    return line.item.startswith("EventBridge") and line.unit == PRICES["eventbridge_aws_events"].per


def snapshot_copy_part(call: Call, n: int, source_cycles: float, source: str = "") -> Part:
    """Per copy at the source's cadence (a copy follows each source backup), the catch-ups at their own."""
    catch_up = schedule(str(call.get("schedule_expression")))
    kind = "images" if call.get("copy_images") else "snapshots"
    destinations = len(call.get("destinations") or {})
    inputs = _copy_inputs(kind, n, destinations)
    usage = inputs.usage
    per_copy = replace(
        usage,
        fixed_calls={},
        invocations_fixed=0,
        idle_sqs_requests_per_month=0,
        alarms=0,
        scheduler_invocations_per_day=0,
        eventbridge_deliveries_each=0,  # priced below, source completions and forwarded results apart
    )
    catch_ups_a_day = catch_up.cycles / DAYS
    per_run = {call_name: calls / copy.CATCH_UPS_PER_DAY for call_name, calls in usage.fixed_calls.items()}
    catch_ups = replace(
        usage,
        ec2_calls_each=0,
        other_calls_each={},
        fixed_calls=per_run,
        invocations_each=0,
        invocations_fixed=1,
        sqs_messages_each=0,
        eventbridge_deliveries_each=0,
        log_bytes_each=0,
        metric_names=0,
        alarms=alarms(call, [catch_up]),
        scheduler_invocations_per_day=1,
    )
    copies = inputs.copies
    # The measured log bytes per copy include the day's catch-ups (bench/copy.py inputs_of): left with the copies.
    generic = [
        *project(at_cycles(per_copy, source_cycles, 0), copies, days=source_cycles).lines,
        *project(catch_ups, 0, days=catch_up.cycles).lines,
    ]
    month = copies * source_cycles
    events = [
        priced(
            f"EventBridge {usage.service_events} events (source completions)",
            "eventbridge_aws_events",
            inputs.source_events_each * month,
        ),
        priced(
            "EventBridge copy results forwarded across regions (custom events)",
            "eventbridge_custom_events",
            inputs.forwarded_events_each * month,
        ),
        priced("SQS requests (incl. idle long polls)", "sqs_requests", usage.eventbridge_deliveries_each * month),
    ]
    lines = summed([[line for line in generic if not _is_service_events(line)], events])
    what = (
        f"{kind} to {destinations} region{'s' if destinations > 1 else ''}, {quantity(source_cycles)} source "
        f"backups a month per source ({source}), catch-up `{catch_up.expression}` ({catch_up.text}, "
        f"{catch_ups_a_day:g} a day), {call.get('generations')} generations, {n:,} sources"
        + (" (2 destinations derived from the 1-destination day)" if inputs.derived else "")
    )
    return Part(call.block, call.module, what, lines)


def instance_scheduler_part(call: Call, n: int) -> Part:
    expressions = [str(call.get(key)) for key in ("start_schedule", "stop_schedule") if call.get(key)]
    schedules = [schedule(e) for e in expressions]
    inputs = next(i for i in scheduler.load_inputs()[0] if i.instances == n)
    slots = schedules[0].cycles
    usage = at_cycles(inputs.usage, slots, alarms(call, schedules))
    p = project(usage, n, days=slots)
    churn = scheduler.churn_line(inputs)
    what = (
        " and ".join(_when(e, call) for e in expressions)
        + f" ({quantity(slots)} weekdays of one start and one stop slot), {n:,} instances (EC2 only)"
    )
    return Part(call.block, call.module, what, p.lines, [churn])


# An example's ssm-runcommand settings that change the calls of a slot (its pace, its checks, its deadline), as
# modules/ssm-runcommand/main.tf hands them to the functions; the slot is measured again at them by `make bench`.
RUN_KEY = "ssm-runcommand-examples"
RUN_SOURCE = (
    "bench/examples.py measure_runs: bench/runcommand.py's slot (tags, the night before first) at 20 and 200 "
    "instances with the example's own settings over tests/python/aws_harness.py runcommand_function_env"
)
DEFAULT_EXECUTION_TIMEOUT_S = 3600  # modules/ssm-runcommand/main.tf local.default_execution_timeout


def runcommand_settings(call: Call) -> dict[str, str]:
    delivery = int(call.get("timeout_seconds"))
    execution = call.get("execution_timeout_seconds")
    deadline = (
        call.get("verify_deadline_minutes")
        or math.ceil((delivery + int(execution or DEFAULT_EXECUTION_TIMEOUT_S)) / 60) + 15
    )
    return {
        "OPS_MAX_CONCURRENCY": str(call.get("max_concurrency")),
        "OPS_MAX_ERRORS": str(call.get("max_errors")),
        "OPS_DELIVERY_TIMEOUT_SECONDS": str(delivery),
        "OPS_EXECUTION_TIMEOUT_SECONDS": "" if execution is None else str(execution),
        "OPS_COMPLETION_TIMEOUT_MINUTES": str(deadline),
    }


def _module_settings(settings: Mapping[str, str]) -> bool:
    """Whether these are the settings the module README's slot was measured at."""
    measured = runcommand_function_env()
    return all(measured[key] == value for key, value in settings.items())


def load_runs(path: Path = model.INPUTS_FILE) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8")).get(RUN_KEY, {}).get("runs", []))


def runcommand_inputs(call: Call, n: int) -> runcommand.RunCommandInputs:
    """The slot at this example's settings: the module README's when they are the same, else the one measured for
    the example (bench/cost_inputs.json)."""
    mode = "ids" if call.get("instance_ids") else "tags"
    settings = runcommand_settings(call)
    if _module_settings(settings):
        found = runcommand.load_inputs().inputs
    else:
        runs = [run for run in load_runs() if run["settings"] == settings]
        if not runs:
            raise LookupError(f"{call.block}: no slot measured at {settings}: run `python -m bench examples --measure`")
        found = [runcommand.RunCommandInputs.from_dict(i) for i in runs[0]["inputs"]]
    return next(i for i in found if i.instances == n and i.mode == mode)


def measure_runs(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One slot at 20 and 200 instances for each distinct ssm-runcommand setting of the examples."""
    wanted: list[dict[str, str]] = []
    for name in names or (*PUBLISHED, *COMPOSED):
        if not (EXAMPLES / name / "main.tf").exists():
            continue
        for call in module_calls(EXAMPLES / name):
            settings = runcommand_settings(call) if call.module == "ssm-runcommand" else None
            if settings and not _module_settings(settings) and settings not in wanted:
                wanted.append(settings)
    return [
        {
            "settings": settings,
            "inputs": [
                runcommand.inputs_of(runcommand.measure_fleet("tags", n, settings=settings)).as_dict() for n in SIZES
            ],
        }
        for settings in wanted
    ]


def save_runs(runs: Sequence[Mapping[str, Any]], path: Path = model.INPUTS_FILE) -> None:
    """Adds the examples' slots to the committed file model.save_inputs writes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data[RUN_KEY] = {"source": RUN_SOURCE, "runs": [dict(run) for run in runs]}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def ssm_runcommand_part(call: Call, n: int) -> Part:
    every = schedule(str(call.get("schedule_expression")))
    inputs = runcommand_inputs(call, n)
    p = project(at_cycles(inputs.usage, every.cycles, alarms(call, [every])), n, days=every.cycles)
    apart = []
    if call.get("output_s3_bucket_name"):
        apart = list(runcommand.output_lines(n, inputs.output_objects_each))
    settings = runcommand_settings(call)
    what = (
        f"{_when(every.expression, call)} ({every.text}), {inputs.mode}-targeted, `max_concurrency = "
        f'"{settings["OPS_MAX_CONCURRENCY"]}"`, {settings["OPS_COMPLETION_TIMEOUT_MINUTES"]}-minute deadline, '
        f"{n:,} instances"
    )
    return Part(call.block, call.module, what, p.lines, apart)


# ---------------------------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Costed:
    """One example at one size."""

    size: int
    parts: list[Part]
    lines: list[Line]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return math.fsum(line.usd for line in self.lines)

    @property
    def total_after_free_tier(self) -> float:
        return math.fsum(line.usd_after_free_tier for line in self.lines)

    @property
    def apart(self) -> list[Line]:
        return [line for part in self.parts for line in part.apart]


def _source_cycles(calls: Sequence[Call], copy_call: Call) -> tuple[float, str]:
    """How often each source is backed up: the example's ami-backup or ebs-snapshot policy the copies follow."""
    names = set(copy_call.get("source_policies") or [])
    for call in calls:
        if call.module in ("ami-backup", "ebs-snapshot") and call.get("name") in names:
            every = schedule(str(call.get("schedule_expression")))
            return every.cycles, f"the `{call.block}` policy"
    return float(DAYS), "a daily source backup (assumed: no source policy of this example is named)"


def parts_of(calls: Sequence[Call], n: int) -> list[Part]:
    """Every module of a single-account example at `n` instances (volumes, sources: one per instance)."""
    builders: dict[str, Callable[[Call, int], Part]] = {
        "ami-backup": ami_backup_part,
        "ebs-snapshot": ebs_snapshot_part,
        "deregister-cleanup": deregister_cleanup_part,
        "instance-scheduler": instance_scheduler_part,
        "ssm-runcommand": ssm_runcommand_part,
    }
    parts = []
    for call in calls:
        if call.module == "snapshot-copy":
            parts.append(snapshot_copy_part(call, n, *_source_cycles(calls, call)))
        elif call.module in builders:
            parts.append(builders[call.module](call, n))
        else:
            parts.append(Part(call.block, call.module, "IAM only", []))
    return parts


def _forwarded(calls: Sequence[Call]) -> bool:
    """Whether the workload accounts forward their state events to the hub (modules/event-forwarding blocks)."""
    return any(call.module == "event-forwarding" for call in calls)


def landing_zone_parts(calls: Sequence[Call], n: int) -> tuple[list[Part], list[str]]:
    """Hub modules backing up the spokes through their roles (the checked cycle), each spoke and region listed once a
    run (by the planner, or by a worker's scope item with OU targeting), AssumeRole at most once per role and
    invocation; the spoke roles and forwarding rules are free."""
    measured = crossaccount.load_inputs()
    parts, notes = [], []
    latency = LatencyModel()
    forwarded = _forwarded(calls)
    # Each target-account-role block is one workload account: the hub's role ARNs are built in a for expression, or
    # the hub targets the accounts of OUs (target_organizational_units) by one role name.
    accounts = sum(1 for call in calls if call.module == "target-account-role")
    for call in calls:
        explicit = call.get("target_accounts") or call.get("target_role_arns") or []
        roles = len(explicit) if isinstance(explicit, list) and explicit else accounts
        targets = max(1, roles) * max(1, len(call.get("regions") or []))
        if call.module in ("ami-backup", "ebs-snapshot") and roles:
            usage = measured.ami_backup if call.module == "ami-backup" else measured.ebs_snapshot
            fixed = {k: v * targets for k, v in usage.fixed_calls.items()}
            fixed["sts.AssumeRole"] = float(roles) * usage.invocations_fixed
            others = {**usage.other_calls_each, "sts.AssumeRole": usage.invocations_each * roles}
            spoke = replace(usage, fixed_calls=fixed, other_calls_each=others)
            completion = "the forwarded state events" if forwarded else "the delayed check"
            note = f" in {roles} accounts ({n // roles:,} each), completed by {completion}"
            build = ami_backup_part if call.module == "ami-backup" else ebs_snapshot_part
            part = build(call, n, spoke, note)
            every = schedule(str(call.get("schedule_expression")))
            assume = (usage.invocations_fixed * roles + usage.invocations_each * n * roles) * every.cycles
            listed_by = (
                "scope items listed by the workers" if call.get("target_organizational_units") else "planner listings"
            )
            notes.append(
                f"`{call.block}` makes at most {quantity(assume)} AssumeRole calls a month ({money(0)}; "
                f"{latency.other_call_s * 1000:.0f} ms of Lambda duration each, in its duration line) and "
                f"{quantity(targets * every.cycles)} {listed_by} ({roles} accounts x "
                f"{targets // max(1, roles)} regions a run)"
            )
            parts.append(part)
        elif call.module == "target-account-role":
            grants = call.get("grants")
            roles_made = f"{len(grants)} roles" if isinstance(grants, dict) else "its roles"
            what = f"IAM in a workload account: {roles_made} and their inline policies (free)"
            parts.append(Part(call.block, call.module, what, []))
        elif call.module == "event-forwarding":
            what = "in a workload account and region: an EventBridge rule to the hub's bus and its role (free)"
            parts.append(Part(call.block, call.module, what, []))
        else:
            parts.extend(parts_of([call], n))
    return parts, notes


def cost(example: Path, n: int) -> Costed:
    calls = module_calls(example)
    if example.name == "landing-zone":
        parts, notes = landing_zone_parts(calls, n)
    else:
        parts, notes = parts_of(calls, n), []
    return Costed(n, parts, summed([part.lines for part in parts]), notes)


# ---------------------------------------------------------------------------------------------------------------
# The section
# ---------------------------------------------------------------------------------------------------------------

UNIT_WORDS = {"ebs-snapshot": "volumes", "snapshot-copy": "volumes"}
# What N of the headline means to each module: each is priced at N of its own targets.
TARGETS = {
    "ami-backup": "N instances imaged",
    "ebs-snapshot": "N volumes snapshotted by each ebs-snapshot policy",
    "snapshot-copy": "N sources copied each time they are backed up",
    "deregister-cleanup": "N AMIs deregistered a day (an AMI policy retiring one per instance a day)",
    "instance-scheduler": "N instances started and stopped",
    "ssm-runcommand": "N instances running the command",
    "target-account-role": "",
    "event-forwarding": "",
}


def _lines_table(costed: Costed) -> list[str]:
    rows = ["| line | quantity/month | cost | after free tier |", "|---|---|---|---|"]
    rows += [
        f"| {line.item} | {quantity(line.quantity)} {line.unit} | {money(line.usd)} | "
        f"{money(line.usd_after_free_tier)} |"
        for line in costed.lines
    ]
    rows.append(f"| **total** | | **{money(costed.total)}** | **{money(costed.total_after_free_tier)}** |")
    rows += [
        f"| apart, not the example's: {line.item} | {quantity(line.quantity)} {line.unit} | {money(line.usd)} | "
        f"{money(line.usd_after_free_tier)} |"
        for line in costed.apart
    ]
    return rows


def _subtotals(costs: Sequence[Costed], unit: str) -> list[str]:
    header = " | ".join(f"{c.size:,} {unit}" for c in costs)
    rows = [f"| module block | module | settings (at {costs[0].size:,}) | {header} |"]
    rows.append("|---|---|---|" + "---|" * len(costs))
    for index, part in enumerate(costs[0].parts):
        cells = " | ".join(money(c.parts[index].total) for c in costs)
        rows.append(f"| `{part.block}` | {part.module} | {part.what} | {cells} |")
    cells = " | ".join(f"**{money(c.total)}** ({money(c.total_after_free_tier)})" for c in costs)
    rows.append(f"| **total** (after the always-free tiers, counted once) | | | {cells} |")
    return rows


def _fixed_share(costed: Costed) -> str:
    """What does not grow with the fleet: each work queue's idle long polling and the alarms."""
    queues = sum(1 for part in costed.parts if part.lines)
    alarm = next(line for line in costed.lines if line.item == "CloudWatch alarms")
    idle = priced("idle", "sqs_requests", queues * IDLE_POLLS_PER_MONTH)
    return (
        f"Of the {money(costed.total)} at {costed.size:,}, {money(idle.usd + alarm.usd)} is the same at any size: the "
        f"idle long polling of {queues} work queue{'s' if queues > 1 else ''} (the event source mapping's 5 pollers, "
        f"{quantity(IDLE_POLLS_PER_MONTH)} SQS requests a month each) and {quantity(alarm.quantity)} CloudWatch "
        "alarms; the always-free tiers (1 M SQS requests and 10 alarms a month) cover part of it."
    )


def _meaning(costs: Sequence[Costed]) -> str:
    phrases = [TARGETS[module] for module in dict.fromkeys(p.module for p in costs[0].parts) if TARGETS[module]]
    sizes = " and ".join(f"{c.size:,}" for c in costs)
    return f"Each module is priced at N of its own targets, N = {sizes}: " + "; ".join(phrases) + "."


def _unit(example: Path) -> str:
    return UNIT_WORDS.get(example.name, "instances")


def _paragraph(text: str) -> str:
    return textwrap.fill(text, width=WIDTH, break_long_words=False, break_on_hyphens=False)


def section(example: Path, sizes: Sequence[int] = SIZES, heading: bool = True) -> str:
    """The README's cost section of one example."""
    costs = [cost(example, n) for n in sizes]
    unit = _unit(example)
    latency = LatencyModel()
    where = " and ".join(regions(example)) or "the provider's region"
    parts = ["## Cost", ""] if heading else []
    parts += [
        _paragraph(
            f"Projected monthly cost of this example as written, at {' and '.join(f'{n:,}' for n in sizes)} {unit}, "
            "generated by `make bench` (bench/examples.py) from its Terraform (schedules, time zones, modes, "
            "destinations, alarms) with the cost model and the measured inputs of the module READMEs (bench/cost.py, "
            "bench/cost_inputs.json: the calls, log bytes and metrics of cycles measured on moto made faithful). "
            "Each module's calls per unit and cycle are the measured ones; its cycles a month come from its schedule "
            "(the model's month: 30 days, 22 weekdays); the generations kept change the storage, not the calls (each "
            "cycle retires one). Lambda duration is modelled at "
            f"{latency.ec2_call_s * 1000:.0f} ms per EC2 call and {latency.other_call_s * 1000:.0f} ms per other "
            "call, 256 MB arm64 functions. Prices are us-east-1 list prices, as in the module READMEs; this example "
            f"deploys in {where}, where some list prices differ (not modelled). The always-free tiers are counted "
            "once for the whole example (one account), in brackets."
        ),
        "",
        _paragraph(_meaning(costs)),
        "",
        *_subtotals(costs, unit),
    ]
    parts += ["", _paragraph(_fixed_share(costs[0]))]
    if any(c.notes for c in costs):
        parts += ["", *(f"- {c.size:,} {unit}: {'; '.join(c.notes)}." for c in costs)]
    for costed in costs:
        parts += ["", f"### {costed.size:,} {unit}, line by line", "", *_lines_table(costed)]
    for note in _excluded(example, costs):
        parts += ["", _paragraph(note)]
    keys = ("s3_put_requests",) if any(c.apart for c in costs) else ()
    parts += ["", _paragraph("Prices: " + price_sources(*keys) + ".")]
    return "\n".join(parts)


def _excluded(example: Path, costs: Sequence[Costed]) -> list[str]:
    modules = {part.module for part in costs[0].parts}
    notes = ["**Not in the total**: the alert topic's deliveries (failures only)."]
    if modules & {"ami-backup", "ebs-snapshot", "snapshot-copy", "deregister-cleanup"}:
        notes[0] = (
            "**Not in the total**: EBS snapshot and AMI storage (per GB-month of the blocks each snapshot adds, "
            f"{money(PRICES['ebs_snapshot_storage'].usd)} standard tier: the same whatever makes the backups, and "
            "what a deleted snapshot stops costing); the alert topic's deliveries (failures only)."
        )
    if "snapshot-copy" in modules:
        notes.append(
            "Cross-region data transfer of the copies and their storage in the destination region are not priced "
            "(modules/snapshot-copy/README.md)."
        )
    if "instance-scheduler" in modules:
        notes.append(
            "The instance-scheduler line apart is the account's churn: the state-change rule forwards the "
            f"`running`/`stopped` events of every instance of the account, priced at an assumed "
            f"{scheduler.ASSUMED_CHURN_EVENTS_PER_MONTH:,} a month (modules/instance-scheduler/README.md). Its "
            "`excluded_dates` make a month with a listed date one slot pair shorter (not modelled)."
        )
    if "ssm-runcommand" in modules:
        notes.append(
            f'Run Command itself: "{RUN_COMMAND_FREE}" ({RUN_COMMAND_FREE_SOURCE}). The slot is measured at this '
            "example's `max_concurrency`, `max_errors`, timeouts and deadline (modules/ssm-runcommand/README.md's "
            f"method: SSM delivers an invocation {runcommand.DELIVERY_TIME.total_seconds():g} s after sending it, "
            f"the script runs {runcommand.RUN_TIME.total_seconds():g} s, every instance succeeds). The S3 lines "
            f"apart are the instances' output ({runcommand.ASSUMED_OUTPUT_KB:g} KB per instance and night, kept "
            f"{runcommand.ASSUMED_OUTPUT_RETENTION_DAYS} days: assumed)."
        )
    if example.name == "landing-zone":
        accounts = sum(1 for part in costs[0].parts if part.module == "target-account-role")
        if "event-forwarding" in modules:
            completion = (
                "The hub's calls are those of a cycle measured in one account with the delayed check completing "
                "each backup (bench/crossaccount.py); with the workload accounts' events forwarded, the state event "
                "completes it first and the check finds it done: the same EC2 calls, plus one SQS message, worker "
                "invocation share and ledger read per backup (not modelled). Events a rule sends to another bus "
                f"are billed as custom events, {money(1.0)} per million (about one per backup: not modelled), "
                "https://aws.amazon.com/eventbridge/pricing/."
            )
        else:
            completion = (
                "The hub's calls are those of a cycle measured in one account with no AMI or snapshot event "
                "delivered: a workload account's events stay on its own bus, so the delayed check completes each "
                "backup (bench/crossaccount.py)."
            )
        notes.append(
            f'IAM roles and AssumeRole are free: "{STS_FREE}" (IAM User Guide, What is IAM?: {STS_FREE_SOURCE}). '
            f"The fleet is split evenly between the {accounts} workload accounts; the split changes only the "
            "listings (one page per account and region up to 1,000 instances). "
            f"{completion} A function keeps a role's session for its hour: AssumeRole is counted as at most one "
            "call per role and invocation."
        )
    return notes


# ---------------------------------------------------------------------------------------------------------------
# Writing and checking
# ---------------------------------------------------------------------------------------------------------------


def readme_of(name: str) -> Path:
    return EXAMPLES / name / "README.md"


def heading_outside(text: str) -> bool:
    """Whether the README puts `## Cost` right before its markers (the section then starts with its text)."""
    return text.split(BEGIN, 1)[0].rstrip().endswith("## Cost")


def expected(name: str) -> str:
    path = readme_of(name)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return section(EXAMPLES / name, heading=not heading_outside(text))


def stale() -> list[str]:
    """Examples whose cost section is missing or not what the model computes: a published example's directory
    missing is one of them, a composed example's only once its directory exists."""
    from .readme import current

    problems = []
    for name in (*PUBLISHED, *COMPOSED):
        path = readme_of(name)
        if not path.exists():
            if name in PUBLISHED or (EXAMPLES / name).is_dir():
                problems.append(f"examples/{name}/README.md is missing")
            continue
        text = path.read_text(encoding="utf-8")
        if current(text) is None:
            problems.append(f"examples/{name}/README.md has no {BEGIN}/{END} markers")
        elif current(text) != expected(name):
            problems.append(
                f"examples/{name}/README.md: the cost section is stale (run `.venv/bin/python -m bench examples`)"
            )
    return problems


def write_all(missing_to: Path | None = None) -> list[str]:
    """Every example's section between its markers (appended to a published example's README without them); a
    composed example without markers is written to `missing_to`/cost-<example>.md if given. Returns what was
    written."""
    from .readme import write

    written = []
    for name in (*PUBLISHED, *COMPOSED):
        path = readme_of(name)
        if not (EXAMPLES / name).is_dir():
            continue
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        has_markers = BEGIN in text and END in text
        if name in PUBLISHED or has_markers:
            write(expected(name), path)
            written.append(str(path.relative_to(ROOT)))
        elif missing_to is not None:
            target = missing_to / f"cost-{name}.md"
            target.write_text(f"{BEGIN}\n{section(EXAMPLES / name)}\n{END}\n", encoding="utf-8")
            written.append(str(target))
    return written


def totals() -> dict[str, dict[int, tuple[float, float]]]:
    """Each example's monthly total and total after the always-free tiers, by size (for the run's summary)."""
    return {
        name: {n: (c.total, c.total_after_free_tier) for n in SIZES for c in [cost(EXAMPLES / name, n)]}
        for name in (*PUBLISHED, *COMPOSED)
        if (EXAMPLES / name / "main.tf").exists()
    }
