"""14. Restore tests (issue 13): the cost of ONE restore test of ami-backup (an instance launched from the AMI until
its status checks pass, then terminated) and of ebs-snapshot (a volume per snapshot of the set, created, `available`,
then deleted), and the monthly cost of a weekly test of every source (and of `sample_size = 2`) at 20 and 200
sources, line by line.

What a test costs in EC2 and EBS is priced per second with AWS's 60-second minimum (prices and their sources in
bench/cost_inputs.json, key `restore`); what it costs in the serverless functions (Lambda, SQS, DynamoDB, SNS,
CloudWatch Logs) comes from the AWS calls of one test: counted on the faithful emulator when `measure()` can run the
modules' restore handlers (`measure`: the real restore schedule and worker on moto made faithful, every work item
and state event handled as it comes due), else from the call sequence docs/DESIGN.md documents (`documented_calls`),
and the output says which. Durations are assumptions, stated in `ASSUMPTIONS` and in the tables.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from . import ROOT
from .cost import DAYS, HOURS_PER_MONTH, PRICES, LatencyModel, Line, Price

INPUTS_FILE = Path(__file__).resolve().parent / "cost_inputs.json"  # model.INPUTS_FILE (model imports the handlers)

KEY = "restore"
MODULES = ("ami-backup", "ebs-snapshot")
SIZES = (20, 200)  # sources
SAMPLE_SIZE = 2
RUNS_PER_MONTH = DAYS / 7  # a weekly schedule in the cost model's 30-day month
MINIMUM_BILLED_S = 60  # EC2 (Linux and Windows) and EBS volumes: per second, 60-second minimum
SECONDS_PER_MONTH = DAYS * 86_400  # EBS prorates a GB-month over the seconds of a 30-day month (EBS pricing example)
BATCH = 10  # the event source mapping's batch size: messages due together share an invocation
SERVERLESS = ("lambda_requests", "sqs_requests", "dynamodb_writes", "logs_ingestion", "sns_publishes")
LOG_BYTES_PER_RECORD = 700  # assumed until measured: the worker's log lines per record handled

# The module defaults the figures are computed at (the modules' restore_test input).
MAX_CONCURRENT = 2
DEADLINE_MINUTES = 30
LEASE_RETRY_S = 300  # no lease: the test re-sends itself delayed 300 s
AMI_FIRST_CHECK_S, AMI_POLL_S = 120, 60
EBS_FIRST_CHECK_S, EBS_POLL_S = 30, 30
GENERATIONS = 3  # backups per source the planner lists (examples' retention)

# Durations: AWS documents none of them as a figure; these are assumptions, stated wherever a figure uses them.
ASSUMPTIONS = {
    "pending_s": 30,  # RunInstances to `running` (an instance is billed only while `running`; its volumes are
    # billed from their creation)
    "status_ok_s": 240,  # RunInstances to both status checks `ok`: the 3rd check (120 s, then every 60 s)
    "volume_teardown_s": 30,  # TerminateInstances to the root volume deleted (DeleteOnTermination)
    "volume_available_s": 30,  # CreateVolume from a snapshot to `available` (lazy loading: the blocks are fetched
    # on first read, after `available`)
}


# -------------------------------------------------------------------------------------------------------------------
# Prices (bench/cost_inputs.json `restore.prices`; the serverless ones are cost.PRICES, shared with every module)
# -------------------------------------------------------------------------------------------------------------------


def load_inputs(path: Path = INPUTS_FILE) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8"))[KEY])


def save_inputs(inputs: Mapping[str, Any], path: Path = INPUTS_FILE) -> None:
    """Adds these inputs to the committed file model.save_inputs writes (the prices are kept as committed)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data[KEY] = dict(inputs)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def prices(inputs: Mapping[str, Any] | None = None) -> dict[str, Price]:
    raw = (inputs or load_inputs())["prices"]
    return {key: Price(p["usd"], p["per"], 0, p["source"]) for key, p in raw.items()}


def instance_price(instance_type: str, table: Mapping[str, Price]) -> Price:
    return table[f"ec2_{instance_type}"]


# -------------------------------------------------------------------------------------------------------------------
# EC2 and EBS: per second, 60-second minimum
# -------------------------------------------------------------------------------------------------------------------


VCPUS = {
    "t4g.nano": 2,
    "t3.nano": 2,
    "t3.micro": 2,
    "t3.small": 2,
    "t2.nano": 1,
}  # EC2 instance types (DescribeInstanceTypes)


def surplus_bound(scenario: Scenario, inputs: Mapping[str, Any] | None = None) -> float:
    """The most a T3/T4g test in `unlimited` mode could add in surplus CPU credits: every vCPU at 100 % for the
    billed seconds (the baseline's earned credits ignored). T2 launches in `standard` mode: none."""
    family = (scenario.instance_type or "").split(".")[0]
    key = {"t3": "surplus_t3", "t4g": "surplus_t4g"}.get(family)
    if key is None:
        return 0.0
    rate = prices(inputs)[key].usd
    return VCPUS[scenario.instance_type or ""] * billed_seconds(scenario.running_s) / 3600 * rate


def billed_seconds(seconds: float) -> float:
    """Per-second billing with a 60-second minimum (EC2 instances while `running`; EBS volumes while they exist)."""
    return max(float(MINIMUM_BILLED_S), math.ceil(seconds))


def instance_usd(instance_type: str, running_s: float, table: Mapping[str, Price]) -> float:
    return instance_price(instance_type, table).usd * billed_seconds(running_s) / 3600


def volume_usd(gib: float, existing_s: float, table: Mapping[str, Price], volume_type: str = "gp3") -> float:
    """EBS provisioned storage: GB-month x size x seconds / seconds of a 30-day month (the EBS pricing example)."""
    return table[f"ebs_{volume_type}_storage"].usd * gib * billed_seconds(existing_s) / SECONDS_PER_MONTH


# -------------------------------------------------------------------------------------------------------------------
# The serverless side of one test: AWS calls, invocations, messages
# -------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCalls:
    """The functions' side of one test (a test that passes), and of one planner run whatever the tests."""

    module: str
    calls: dict[str, float]  # "ec2.RunInstances" -> calls per test, its lease taken at the first attempt
    invocations: float  # worker invocations per test
    messages: float  # SQS messages the event source mapping consumes per test (events included)
    deliveries: float  # state events EventBridge puts on the queue per test (AWS service events: free)
    log_bytes: float
    run_calls: dict[str, float]  # one planner run besides its SendMessageBatch (which grows with the tests)
    source: str
    checks: int = 0  # delayed checks handled per test (the status polls)
    poll_calls: dict[str, float] = field(default_factory=dict)  # what one more poll costs (a check that waits)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestCalls:
        return cls(**data)


DOCUMENTED = "documented flow (docs/DESIGN.md, restore tests), not measured: the adapters could not run"


def _log_bytes(records: float) -> float:
    return records * LOG_BYTES_PER_RECORD


def documented_calls(module: str, polls: int = 3, volumes: int = 1) -> TestCalls:
    """One test as docs/DESIGN.md describes it, its lease taken at the first attempt (waiting is `lease_waits`).

    ami-backup: restore_test (prepare: DescribeSecurityGroups, DescribeImages; lease; ledger record; RunInstances;
    resource ids; one index entry; the delayed check and sweep sent), `polls` delayed checks (the record read,
    DescribeInstanceStatus; a re-send while starting), the three state events the rule forwards (running,
    shutting-down, terminated: index and record read, DescribeInstanceStatus on `running` only), the finish
    (TerminateInstances, CreateTags on the image, the ledger transition, the lease released), the test's delayed sweep
    (DescribeInstances).
    ebs-snapshot, a set of `volumes`: restore_test (DescribeSubnets; lease; record; CreateVolume each; resource ids;
    an index entry each; check and sweep sent), one createVolume event per volume (index and record read,
    DescribeVolumes; the last one finishes: DeleteVolume each, CreateTags on the set's snapshots, transition,
    release), the delayed check (finds the record finished), the sweep (DescribeVolumes)."""
    if module == "ami-backup":
        events = 3
        calls = Counter(
            {
                "ec2.DescribeSecurityGroups": 1,
                "ec2.DescribeImages": 1,
                "ec2.RunInstances": 1,
                "ec2.DescribeInstanceStatus": polls + 1,
                "ec2.TerminateInstances": 1,
                "ec2.CreateTags": 1,
                "ec2.DescribeInstances": 1,
                "dynamodb.UpdateItem": 6,  # lease, record, resource ids, index entry, transition, release
                "dynamodb.GetItem": polls + 2 * events,
                "sqs.SendMessage": 2 + (polls - 1),  # check, sweep, the re-sent checks
            }
        )
        messages = 1 + polls + events + 1
        records = messages
        invocations = 1 / BATCH + polls + events + 1
        return TestCalls(module, dict(sorted(calls.items())), invocations, messages, events, _log_bytes(records),
                         {"ec2.DescribeImages": 1}, DOCUMENTED, polls)  # fmt: skip
    calls = Counter(
        {
            "ec2.DescribeSubnets": 1,
            "ec2.CreateVolume": volumes,
            "ec2.DescribeVolumes": volumes + 1,
            "ec2.DeleteVolume": volumes,
            "ec2.CreateTags": 1,
            "dynamodb.UpdateItem": 5 + volumes,  # lease, record, resource ids, an index entry each, transition, release
            "dynamodb.GetItem": 2 * volumes + 1,
            "sqs.SendMessage": 2,
        }
    )
    messages = 1 + volumes + 1 + 1
    invocations = 1 / BATCH + volumes + 1 + 1
    return TestCalls(module, dict(sorted(calls.items())), invocations, messages, volumes, _log_bytes(messages),
                     {"ec2.DescribeSnapshots": 1}, DOCUMENTED, 1)  # fmt: skip


# -------------------------------------------------------------------------------------------------------------------
# Waiting for a lease: at most `max_concurrent` tests at once, the others re-send themselves 300 s later
# -------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseWaits:
    tests: int
    max_concurrent: int
    hold_s: float
    attempts_failed: int  # re-sends (each: max_concurrent conditional writes refused, a SendMessage, a message)
    invocations: int  # worker invocations of the waiting re-sends (those due together share a batch of 10)
    lease_writes: int  # conditional writes of the attempts that took a lease (slot i costs i + 1)
    hours: float  # from the planner to the last test finished
    over_a_day: int  # tests still waiting after 24 h (alerted "restore test not run", dropped)


def lease_waits(tests: int, hold_s: float, max_concurrent: int = MAX_CONCURRENT) -> LeaseWaits:
    """Every test enqueued at once by the planner; each attempt tries the slots in order (a refused conditional write
    is billed as a write); a test holds its slot `hold_s` (launch to release); a refused one comes back 300 s later."""
    free_at = [0.0] * max_concurrent
    due: dict[float, int] = {0.0: tests}
    failed = invocations = lease_writes = over = 0
    finished = 0.0
    while due:
        t = min(due)
        n = due.pop(t)
        if t > 86_400:
            over += n
            continue
        if t > 0:
            invocations += -(-n // BATCH)
        waiting = 0
        for _ in range(n):
            slot = next((i for i, at in enumerate(free_at) if at <= t), None)
            if slot is None:
                waiting += 1
                continue
            lease_writes += slot + 1
            free_at[slot] = t + hold_s
            finished = max(finished, t + hold_s)
        if waiting:
            failed += waiting
            due[t + LEASE_RETRY_S] = due.get(t + LEASE_RETRY_S, 0) + waiting
    return LeaseWaits(tests, max_concurrent, hold_s, failed, invocations, lease_writes, finished / 3600, over)


# -------------------------------------------------------------------------------------------------------------------
# One test, and a month
# -------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One restore test's resources and how long they live."""

    module: str
    instance_type: str | None = None  # ami-backup
    gib: tuple[float, ...] = ()  # root (and data) volumes of the AMI; the set's volumes (ebs-snapshot)
    seconds: float = 0  # ami-backup: RunInstances to the verdict; ebs-snapshot: CreateVolume to DeleteVolume
    polls: int = 3
    volume_type: str = "gp3"

    @property
    def running_s(self) -> float:
        return max(0.0, self.seconds - ASSUMPTIONS["pending_s"])

    @property
    def volume_s(self) -> float:
        if self.module == "ami-backup":
            return self.seconds + ASSUMPTIONS["volume_teardown_s"]
        return self.seconds

    @property
    def label(self) -> str:
        size = " + ".join(f"{g:g} GiB" for g in self.gib)
        if self.module == "ami-backup":
            return f"{self.instance_type}, {size} {self.volume_type}, verdict {self.seconds / 60:g} min after launch"
        first = size.split(" + ")[0]
        return f"{len(self.gib)} x {first} {self.volume_type}, deleted {self.seconds / 60:g} min after CreateVolume"


def ami_scenario(instance_type: str, root_gib: float, minutes: float, data_gib: Sequence[float] = ()) -> Scenario:
    """The verdict at a poll: the first check 120 s after launch, then every 60 s (a pass at N minutes is N - 1 polls
    at N >= 2)."""
    seconds = minutes * 60
    polls = max(1, 1 + math.ceil((seconds - AMI_FIRST_CHECK_S) / AMI_POLL_S))
    return Scenario("ami-backup", instance_type, (root_gib, *data_gib), seconds, polls)


def ebs_scenario(gib: float, minutes: float, volumes: int = 1, volume_type: str = "gp3") -> Scenario:
    return Scenario("ebs-snapshot", None, (gib,) * volumes, minutes * 60, 1, volume_type)


def _calls_for(scenario: Scenario, measured: TestCalls | None) -> TestCalls:
    """The calls of `scenario`'s test: measured (adjusted by what a poll costs when it polls more or less often than
    the measured test did), else the documented flow."""
    if measured is None:
        return documented_calls(scenario.module, scenario.polls, len(scenario.gib))
    extra = scenario.polls - measured.checks
    if extra == 0 or not measured.poll_calls:
        return measured
    calls: dict[str, float] = dict(measured.calls)
    for api, n in measured.poll_calls.items():
        calls[api] = max(0.0, calls.get(api, 0.0) + extra * n)
    return replace(measured, calls=dict(sorted(calls.items())), invocations=max(1.0, measured.invocations + extra),
                   messages=max(1.0, measured.messages + extra),
                   log_bytes=max(0.0, measured.log_bytes + extra * measured.log_bytes / max(1.0, measured.messages)),
                   checks=scenario.polls)  # fmt: skip


def _writes(calls: Mapping[str, float]) -> float:
    return math.fsum(calls.get(f"dynamodb.{api}", 0) for api in ("UpdateItem", "PutItem", "DeleteItem"))


def _sum(calls: Mapping[str, float], prefix: str) -> float:
    return math.fsum(v for k, v in calls.items() if k.startswith(prefix))


def _lambda_s(calls: Mapping[str, float], invocations: float, latency: LatencyModel) -> float:
    slow = _sum(calls, "ec2.") + _sum(calls, "ssm.")
    return slow * latency.ec2_call_s + (math.fsum(calls.values()) - slow) * latency.other_call_s + (
        invocations * latency.invocation_s)  # fmt: skip


def _line(item: str, price: Price, quantity: float) -> Line:
    usd = quantity * price.usd
    return Line(item, quantity, price.per, usd, usd)  # list price: the restore tests' share of any free tier is moot


def test_lines(scenario: Scenario, measured: TestCalls | None = None, inputs: Mapping[str, Any] | None = None,
               latency: LatencyModel | None = None) -> list[Line]:  # fmt: skip
    """One test that passes, at list price (no free tier), its lease taken at the first attempt."""
    latency = latency or LatencyModel()
    table = prices(inputs)
    tc = _calls_for(scenario, measured)
    lines: list[Line] = []
    if scenario.module == "ami-backup":
        assert scenario.instance_type is not None
        price = instance_price(scenario.instance_type, table)
        seconds = billed_seconds(scenario.running_s)
        lines.append(Line(f"EC2 {scenario.instance_type} (Linux, On-Demand), billed seconds while running",
                          seconds, "second", price.usd * seconds / 3600, price.usd * seconds / 3600))  # fmt: skip
        volume_label = "EBS root and data volumes"
    else:
        volume_label = "EBS restored volumes"
    storage = table[f"ebs_{scenario.volume_type}_storage"]
    gib_s = math.fsum(g * billed_seconds(scenario.volume_s) for g in scenario.gib)
    usd = storage.usd * gib_s / SECONDS_PER_MONTH
    lines.append(Line(f"{volume_label} ({scenario.volume_type}), GiB-seconds", gib_s, "GiB-second", usd, usd))
    sqs_requests = _sum(tc.calls, "sqs.") + 2 * tc.messages + tc.deliveries
    lines += [
        _line("Lambda requests", PRICES["lambda_requests"], tc.invocations),
        _line("Lambda duration (256 MB, arm64)", PRICES["lambda_gb_seconds"],
              _lambda_s(tc.calls, tc.invocations, latency) * latency.memory_gb),
        _line("SQS requests", PRICES["sqs_requests"], sqs_requests),
        _line("DynamoDB on-demand writes", PRICES["dynamodb_writes"], _writes(tc.calls)),
        _line("DynamoDB on-demand reads", PRICES["dynamodb_reads"], _sum(tc.calls, "dynamodb.GetItem")),
        _line("SNS (a failed test only: 1 publish)", PRICES["sns_publishes"], 0),
        _line("CloudWatch Logs ingestion", PRICES["logs_ingestion"],
              tc.log_bytes + tc.invocations * latency.platform_log_bytes),
    ]  # fmt: skip
    return lines


@dataclass(frozen=True)
class Month:
    module: str
    sources: int
    tests_per_run: int
    scenario: Scenario
    waits: LeaseWaits
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> float:
        return math.fsum(line.usd for line in self.lines)

    @property
    def tests(self) -> float:
        return self.tests_per_run * RUNS_PER_MONTH


def month(scenario: Scenario, sources: int, sample_size: int | None = None, measured: TestCalls | None = None,
          inputs: Mapping[str, Any] | None = None, latency: LatencyModel | None = None) -> Month:  # fmt: skip
    """A weekly run testing every source (`sample_size` None) or a sample: the tests' lines x tests a month, plus the
    planner runs, the lease waits, the schedule and the metric."""
    latency = latency or LatencyModel()
    per_run = sources if sample_size is None else min(sample_size, sources)
    runs = RUNS_PER_MONTH
    tests = per_run * runs
    tc = _calls_for(scenario, measured)
    hold = scenario.seconds + 5  # the finish: terminate or delete, tag, transition, release
    waits = lease_waits(per_run, hold)
    one = {line.item: line for line in test_lines(scenario, measured, inputs, latency)}
    lines = [replace(line, quantity=line.quantity * tests, usd=line.usd * tests,
                     usd_after_free_tier=line.usd * tests) for line in one.values()]  # fmt: skip
    # The planner: one invocation and its listing (pages of 1,000 backups); with documented calls also its
    # SendMessageBatch per 10 items and its sweep item (a measured test carries its share of both). Each lease wait:
    # the record and the max_concurrent lease slots read, max_concurrent refused conditional writes, a SendMessage
    # and the message consumed (receive, delete). The leases taken beyond slot 0: one more write per slot.
    backups = sources * GENERATIONS
    listing = math.ceil(backups / 1000) * math.fsum(tc.run_calls.values())
    batches = 0 if measured else math.ceil((per_run + 1) / BATCH)
    sweep = 0 if measured else 1
    extra_invocations = 1 + sweep + waits.invocations
    extra_reads = waits.attempts_failed * (1 + MAX_CONCURRENT)
    extra_writes = waits.attempts_failed * MAX_CONCURRENT + (waits.lease_writes - per_run)
    extra_sqs = 3 * waits.attempts_failed + batches + 2 * sweep
    extra_s = (
        (listing + sweep) * latency.ec2_call_s
        + (batches + 3 * waits.attempts_failed + extra_writes + extra_reads) * latency.other_call_s
        + extra_invocations * latency.invocation_s
    )
    log_each = tc.log_bytes / max(1.0, tc.messages)
    add = {
        "Lambda requests": (PRICES["lambda_requests"], extra_invocations),
        "Lambda duration (256 MB, arm64)": (PRICES["lambda_gb_seconds"], extra_s * latency.memory_gb),
        "SQS requests": (PRICES["sqs_requests"], extra_sqs),
        "DynamoDB on-demand writes": (PRICES["dynamodb_writes"], extra_writes),
        "DynamoDB on-demand reads": (PRICES["dynamodb_reads"], extra_reads),
        "CloudWatch Logs ingestion": (
            PRICES["logs_ingestion"],
            extra_invocations * latency.platform_log_bytes + (waits.attempts_failed + 1 + sweep) * log_each,
        ),
    }
    for i, line in enumerate(lines):
        if line.item in add:
            price, more = add[line.item]
            q = line.quantity + more * runs
            lines[i] = Line(line.item, q, line.unit, q * price.usd, q * price.usd)
    metric_hours = 1 * math.ceil(max(waits.hours, 1 / 60)) * runs  # RestoreTestsPassed, the hours it gets data
    lines += [
        _line("CloudWatch custom metric RestoreTestsPassed (prorated by the hour)", PRICES["custom_metrics"],
              metric_hours / HOURS_PER_MONTH),
        _line("EventBridge Scheduler (the weekly restore schedule)", PRICES["scheduler_invocations"], runs),
        _line(f"EventBridge {'EC2 instance state' if scenario.module == 'ami-backup' else 'EBS volume'} events "
              "(AWS service events: free)", PRICES["eventbridge_aws_events"], tc.deliveries * tests),
    ]  # fmt: skip
    return Month(scenario.module, sources, per_run, scenario, waits, lines)


# -------------------------------------------------------------------------------------------------------------------
# Rendering
# -------------------------------------------------------------------------------------------------------------------


def usd(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 0.01:
        return f"${value:,.2f}"
    if value < 0.0000005:
        return "< $0.000001"
    return f"${value:.6f}".rstrip("0")


def qty(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.2f} M"
    if value >= 1e4:
        return f"{value / 1e3:,.1f} k"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != round(value) else f"{round(value):,}"


def per_test_rows(scenarios: Sequence[Scenario], measured: Mapping[str, TestCalls] | None = None,
                  inputs: Mapping[str, Any] | None = None) -> list[str]:  # fmt: skip
    rows = ["| test | resources | functions (Lambda, SQS, DynamoDB, Logs) | **one test** |", "|---|---|---|---|"]
    for s in scenarios:
        lines = test_lines(s, (measured or {}).get(s.module), inputs)
        resources = math.fsum(line.usd for line in lines if line.item.startswith(("EC2", "EBS")))
        functions = math.fsum(line.usd for line in lines) - resources
        rows.append(
            f"| {s.module}: {s.label} | {usd(resources)} | {usd(functions)} | **{usd(resources + functions)}** |"
        )
    return rows


def line_rows(lines: Sequence[Line]) -> list[str]:
    rows = ["| line | quantity | list price |", "|---|---|---|"]
    rows += [f"| {line.item} | {qty(line.quantity)} {line.unit} | {usd(line.usd)} |" for line in lines]
    rows.append(f"| **total** | | **{usd(math.fsum(line.usd for line in lines))}** |")
    return rows


def month_rows(months: Sequence[Month]) -> list[str]:
    """Line by line, one column per month."""
    head = "| line | " + " | ".join(
        f"{m.sources} sources, {'every source' if m.tests_per_run == m.sources else f'sample of {m.tests_per_run}'}"
        for m in months
    )
    rows = [head + " |", "|---" * (1 + len(months)) + "|"]
    for i, line in enumerate(months[0].lines):
        cells = (f"{usd(m.lines[i].usd)} ({qty(m.lines[i].quantity)} {m.lines[i].unit})" for m in months)
        rows.append(f"| {line.item} | " + " | ".join(cells) + " |")
    rows.append("| **total a month** | " + " | ".join(f"**{usd(m.total)}**" for m in months) + " |")
    rows.append("| tests a month; lease re-sends a run; hours a run takes | " + " | ".join(
        f"{qty(m.tests)}; {m.waits.attempts_failed:,}; {m.waits.hours:.1f}" for m in months) + " |")  # fmt: skip
    return rows


# Default figures: the smallest instance for each architecture, 8 GiB (Linux) and 30 GiB (Windows) root volumes,
# verdicts at the assumed 4 minutes, the 60-second minimum and the 30-minute deadline; EBS at 100 GiB and 1,000 GiB.
AMI_TYPES = ("t4g.nano", "t3.nano", "t2.nano", "t3.micro")
DEFAULT_AMI = ami_scenario("t3.nano", 8, ASSUMPTIONS["status_ok_s"] / 60)
DEFAULT_EBS = ebs_scenario(100, 1)


def per_test_scenarios() -> list[Scenario]:
    minutes = ASSUMPTIONS["status_ok_s"] / 60
    return [
        *(ami_scenario(t, 8, minutes) for t in AMI_TYPES),
        ami_scenario("t3.small", 30, minutes),
        ami_scenario("t3.nano", 8, 1),
        ami_scenario("t3.nano", 8, 10),
        ami_scenario("t3.nano", 8, DEADLINE_MINUTES),
        ami_scenario("t3.nano", 8, minutes, data_gib=(100,)),
        ebs_scenario(100, 1),
        ebs_scenario(100, 5),
        ebs_scenario(1000, 1),
        ebs_scenario(100, 1, volumes=3),
        ebs_scenario(100, DEADLINE_MINUTES),
    ]


Measured = Mapping[str, "TestCalls"] | None


def months(measured: Measured = None, inputs: Mapping[str, Any] | None = None) -> dict[str, list[Month]]:
    out: dict[str, list[Month]] = {}
    for scenario in (DEFAULT_AMI, DEFAULT_EBS):
        got = (measured or {}).get(scenario.module)
        out[scenario.module] = [
            month(scenario, n, sample, got, inputs) for sample in (None, SAMPLE_SIZE) for n in SIZES
        ]
    return out


def sources_note(measured: Mapping[str, TestCalls] | None, inputs: Mapping[str, Any] | None = None) -> list[str]:
    table = prices(inputs)
    notes = []
    for module in MODULES:
        got = (measured or {}).get(module)
        notes.append(f"- {module} calls per test: {got.source if got else DOCUMENTED}.")
    notes += [f"- {p.per}: ${p.usd:g} — {p.source}" for p in table.values()]
    return notes


def assumptions_note() -> list[str]:
    a = ASSUMPTIONS
    return [
        f"- Assumed (AWS gives no figure): `running` {a['pending_s']} s after RunInstances (billed only while "
        f"`running`; the volumes from their creation); both status checks `ok` {a['status_ok_s'] / 60:g} min after "
        f"launch, seen by the 3rd delayed check (first at {AMI_FIRST_CHECK_S} s, then every {AMI_POLL_S} s); the root "
        f"volume gone {a['volume_teardown_s']} s after TerminateInstances; a restored EBS volume `available` within "
        f"{a['volume_available_s']} s, its createVolume event finishing the test (so it exists less than the 60-second "
        "minimum).",
        "- Per second with a 60-second minimum: EC2 On-Demand Linux (and Windows since 2021) instances, and EBS "
        "volumes; EBS prorates a GB-month over the seconds of a 30-day month. Prices are us-east-1 list prices, no "
        "free tier applied (the restore tests' share of the account's free tiers is moot).",
        "- No public IPv4 address (AssociatePublicIpAddress false): no IPv4 charge. No NAT or endpoint priced (the "
        "isolated subnet is the user's; SSM endpoints, if created for a validation document, cost per hour apart).",
        "- Not priced: Windows' license charge on top of the Linux rate (per second, 60-second minimum as well); the "
        "surplus CPU credits of a T3/T4g instance in `unlimited` mode (their default at launch) whose boot runs above "
        "its baseline: at most its vCPUs x running seconds at the surplus rate, "
        f"{usd(surplus_bound(DEFAULT_AMI))} for the {DEFAULT_AMI.instance_type} test above at 100 % CPU throughout "
        f"({usd(surplus_bound(ami_scenario('t4g.nano', 8, DEFAULT_AMI.seconds / 60)))} for t4g.nano), more than the "
        "instance's own price (`CreditSpecification` `standard` at launch avoids it, at the cost of a boot throttled "
        "to the baseline); EBS snapshot storage (the backups exist anyway); lazy-loading reads of the snapshot (no "
        "charge).",
        f"- A month: {RUNS_PER_MONTH:.2f} weekly runs (30-day month). Every source's test is enqueued at once; at "
        f"most {MAX_CONCURRENT} run at a time (max_concurrent), the others re-send themselves {LEASE_RETRY_S} s later "
        "(each re-send: a message, its invocation share, max_concurrent refused conditional writes, billed as writes).",
    ]


def report_section(measured: Measured = None, inputs: Mapping[str, Any] | None = None) -> list[str]:
    """The RESULTS.md section."""
    by = months(measured, inputs)
    parts = [
        "## Restore tests (issue 13): the cost of one test, and a month",
        "",
        "One test that passes (its lease taken at once), list prices, per second with the 60-second minimum:",
        "",
        *per_test_rows(per_test_scenarios(), measured, inputs),
        "",
        f"### One ami-backup test, line by line ({DEFAULT_AMI.label})",
        "",
        *line_rows(test_lines(DEFAULT_AMI, (measured or {}).get("ami-backup"), inputs)),
        "",
        f"### One ebs-snapshot test, line by line ({DEFAULT_EBS.label})",
        "",
        *line_rows(test_lines(DEFAULT_EBS, (measured or {}).get("ebs-snapshot"), inputs)),
        "",
    ]
    for module, ms in by.items():
        parts += [f"### {module}: a weekly restore test, a month ({ms[0].scenario.label})", "", *month_rows(ms), ""]
    calls = {
        m: _calls_for(s, (measured or {}).get(m))
        for m, s in (("ami-backup", DEFAULT_AMI), ("ebs-snapshot", DEFAULT_EBS))
    }
    parts += ["### Calls per test (a test that passes)", "", "| module | calls | invocations; messages; events |",
              "|---|---|---|"]  # fmt: skip
    for module, tc in calls.items():
        parts.append(f"| {module} | {', '.join(f'{k} {qty(v)}' for k, v in tc.calls.items())} | "
                     f"{qty(tc.invocations)}; {qty(tc.messages)}; {qty(tc.deliveries)} |")  # fmt: skip
        if tc.poll_calls:
            parts.append(f"| {module}: one more status poll (a check that finds it starting) | "
                         f"{', '.join(f'{k} {qty(v)}' for k, v in tc.poll_calls.items())} | 1; 1; 0 |")  # fmt: skip
    parts += [
        "",
        "### Restore tests: sources and assumptions",
        "",
        *sources_note(measured, inputs),
        *assumptions_note(),
    ]
    return parts


def readme_snippet(module: str, measured: Measured = None, inputs: Mapping[str, Any] | None = None) -> str:
    """The cost paragraph and tables of one module's "Restore tests" README section (`python -m bench restore`
    writes it between the README's markers)."""
    by = months(measured, inputs)[module]
    table = prices(inputs)
    got = (measured or {}).get(module)
    minutes = ASSUMPTIONS["status_ok_s"] / 60

    def one(s: Scenario) -> str:
        return usd(math.fsum(line.usd for line in test_lines(s, got, inputs)))

    if module == "ami-backup":
        tests = [
            *((f"{t}, 8 GiB gp3 root volume, status checks `ok` {minutes:g} min after launch",
               ami_scenario(t, 8, minutes)) for t in AMI_TYPES),
            ("t3.small, 30 GiB gp3 root volume (a Windows AMI's default type and size; the license is not included)",
             ami_scenario("t3.small", 30, minutes)),
            ("t3.nano, 8 GiB root and a 100 GiB data volume", ami_scenario("t3.nano", 8, minutes, data_gib=(100,))),
            ("t3.nano, 8 GiB, a failure within the first minute (the 60-second minimum applies)",
             ami_scenario("t3.nano", 8, 1)),
            (f"t3.nano, 8 GiB, a test that times out at the {DEADLINE_MINUTES}-minute deadline",
             ami_scenario("t3.nano", 8, DEADLINE_MINUTES)),
        ]  # fmt: skip
        what = "instance (the smallest type for the AMI's architecture) and its volumes"
        every = "every source (t3.nano, 8 GiB)"
        caveats = (
            "Durations are assumptions (AWS gives no figure): `running` 30 s after launch, both status checks `ok` "
            f"{minutes:g} minutes after launch. Not included: a Windows AMI's license charge; surplus CPU credits of "
            "a T3/T4g instance in `unlimited` mode (their default at launch) whose boot runs above its baseline (at "
            f"most {usd(surplus_bound(DEFAULT_AMI))} for the t3.nano test, 100 % CPU throughout); SSM endpoints or "
            "NAT of the test subnet; snapshot storage. "
        )
    else:
        tests = [
            ("one 100 GiB gp3 volume, deleted once `available` (under 60 s: the minimum applies)",
             ebs_scenario(100, 1)),
            ("one 1,000 GiB gp3 volume, the same", ebs_scenario(1000, 1)),
            ("a set of 3 volumes of 100 GiB (instance mode)", ebs_scenario(100, 1, volumes=3)),
            (f"one 100 GiB volume of a test that times out at the {DEADLINE_MINUTES}-minute deadline",
             ebs_scenario(100, DEADLINE_MINUTES)),
        ]  # fmt: skip
        what = "volumes"
        every = "every source (one 100 GiB volume)"
        caveats = (
            "A restored volume is assumed `available` within 30 s (it lazy-loads its blocks afterwards; reading "
            "them costs nothing). Not included: snapshot storage. "
        )
    calls = _calls_for(by[0].scenario, got)
    sqs = _sum(calls.calls, "sqs.") + 2 * calls.messages + calls.deliveries
    sources = sorted({p.source.split(" ")[0] for p in table.values()} | {PRICES[k].source for k in SERVERLESS})
    counted = "counted on the emulator" if got else "from the documented call sequence"
    lines = [
        "### What a restore test costs",
        "",
        "Generated by `python -m bench restore` (every line in bench/RESULTS.md); us-east-1 list prices, no free "
        "tier applied. "
        + (
            "EC2 instances (while `running`) and EBS volumes (while they exist)"
            if module == "ami-backup"
            else "EBS volumes (while they exist)"
        )
        + " are billed per second with a 60-second minimum.",
        "",
        "| one test that passes | cost |",
        "|---|---|",
        *(f"| {label} | {one(s)} |" for label, s in tests),
        "",
        "| a month of weekly tests | 20 sources | 200 sources |",
        "|---|---|---|",
        f"| {every} | {usd(by[0].total)} | {usd(by[1].total)} |",
        f'| `sources = "sample"`, `sample_size = 2` | {usd(by[2].total)} | {usd(by[3].total)} |',
        "",
        f"The {what} are most of a test's cost; the functions add about "
        f"{usd(_functions_usd(by[0].scenario, got, inputs))} a test ({qty(calls.invocations)} worker invocations, "
        f"{qty(_sum(calls.calls, 'dynamodb.'))} DynamoDB and {qty(sqs)} SQS requests, {counted}). At most "
        f"`max_concurrent` tests run at once; the others wait, re-sending themselves every {LEASE_RETRY_S // 60} "
        f"minutes: a weekly run of 200 sources at `max_concurrent = {MAX_CONCURRENT}` takes about "
        f"{by[1].waits.hours:.0f} hours and {by[1].waits.attempts_failed:,} re-sends, included above. "
        + caveats
        + "Prices: "
        + ", ".join(sources)
        + ".",
    ]
    return "\n".join(lines)


def _functions_usd(scenario: Scenario, measured: TestCalls | None, inputs: Mapping[str, Any] | None) -> float:
    lines = test_lines(scenario, measured, inputs)
    return math.fsum(line.usd for line in lines if not line.item.startswith(("EC2", "EBS")))


def readme_marker(module: str) -> tuple[str, str]:
    tag = module.upper().replace("-", "_")
    return f"<!-- BEGIN_{tag}_RESTORE_COST -->", f"<!-- END_{tag}_RESTORE_COST -->"


def readme_path(module: str) -> Path:
    return ROOT / "modules" / module / "README.md"


def write_readmes(measured: Measured = None, inputs: Mapping[str, Any] | None = None) -> list[Path]:
    """Each module README's restore-cost block (between its markers, in its "Restore tests" section), regenerated."""
    written = []
    for module in MODULES:
        path = readme_path(module)
        begin, end = readme_marker(module)
        text = path.read_text(encoding="utf-8")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        path.write_text(f"{head}{begin}\n{readme_snippet(module, measured, inputs)}\n{end}{tail}", encoding="utf-8")
        written.append(path)
    return written


def readme_block(module: str) -> str:
    """What a module README holds between its restore-cost markers now."""
    begin, end = readme_marker(module)
    return readme_path(module).read_text(encoding="utf-8").split(begin, 1)[1].split(end, 1)[0].strip("\n")


# -------------------------------------------------------------------------------------------------------------------
# Measured on the faithful emulator
# -------------------------------------------------------------------------------------------------------------------


MEASURED_SOURCES = 2  # one test each, within max_concurrent: waiting for a lease is `lease_waits`
MEASURED_LAUNCH_S = ASSUMPTIONS["pending_s"]
MEASURED_STATUS_S = ASSUMPTIONS["status_ok_s"] - ASSUMPTIONS["pending_s"]  # `initializing` after `running`
MEASURED_VOLUME_S = ASSUMPTIONS["volume_available_s"]


def measure(modules: Sequence[str] = MODULES) -> dict[str, TestCalls]:
    """The calls of one test of each module on the faithful emulator, when the modules' restore handlers exist;
    else nothing (the documented flow is used, and the output says so)."""
    try:
        from ops_automation.core import restore as _core  # noqa: F401 - the machinery must be there
    except ImportError:
        return {}
    return {module: _measure(module) for module in modules}


def _measure(module: str, sources: int = MEASURED_SOURCES) -> TestCalls:
    """A steady account (one backup slot done), then the restore schedule and everything it leads to, as deployed:
    the planner; each work item when it comes due (delays on the fidelity's clock; items due together share an
    invocation, batches of 10); each state event EventBridge would forward (moto emits none: they are made here
    from what EC2 shows, each in its own invocation), until the queue is empty (the delayed sweeps included).
    Calls per test = every call after the planner's / tests; the planner's listing is `run_calls`."""
    import boto3
    from aws_harness import REGION, Clock, FakeContext, run_instances, sqs_event, take_messages, work_body
    from tests.support.moto_fidelity import faithful_aws

    from ops_automation.core import restore as _core
    from ops_automation.core import tagging
    from ops_automation.core.events import format_time

    from . import ebs as ebs_bench
    from .driver import Driver, EbsDriver, captured
    from .harness import Network, installed, moto_account, routed

    package = module.replace("-", "_")
    handlers = __import__(f"ops_automation.{package}.handlers", fromlist=["handlers"])
    clock = Clock()
    network = Network()
    with ExitStack() as stack:
        stack.enter_context(_botocore_files_once())
        infra = stack.enter_context(moto_account())
        fidelity = stack.enter_context(
            faithful_aws(
                clock,
                sqs_time=True,
                instance_launch_time=timedelta(seconds=MEASURED_LAUNCH_S),
                status_check_time=timedelta(seconds=MEASURED_STATUS_S),
                volume_creation_time=timedelta(seconds=MEASURED_VOLUME_S),
            )
        )
        ec2 = boto3.client("ec2", region_name=REGION)  # the bench's own: not counted
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
        group = ec2.create_security_group(GroupName="restore-tests", Description="no ingress", VpcId=vpc)["GroupId"]
        config = {"region": None, "role_arn": None, "subnet_id": subnet["SubnetId"], "security_group_id": group,
                  "sources": "all", "sample_size": 1, "source_tags": {}, "max_concurrent": MAX_CONCURRENT,
                  "deadline_minutes": DEADLINE_MINUTES, "instance_type": None, "validation_document": None,
                  "validation_parameters": {}, "instance_profile_name": None, "volume_type": "gp3"}  # fmt: skip
        # Every key RestoreTestConfig reads (null where not used): the contract may have grown since.
        known = {f.name for f in dataclasses.fields(_core.RestoreTestConfig)}
        config = {**dict.fromkeys(known), **{k: v for k, v in config.items() if k in known}}
        env = {"OPS_GENERATIONS": str(GENERATIONS), "OPS_RESTORE_TEST": json.dumps(config)}
        if module == "ebs-snapshot":
            env.update(ebs_bench.ENVIRONMENT["volume"])
            ebs_bench.fleet(ec2, -(-sources // ebs_bench.VOLUMES_PER_INSTANCE))
        else:
            run_instances(ec2, sources, {"Backup": "nightly"})
        clock.advance(minutes=1)  # the sources `running`, their volumes `available`
        stack.enter_context(routed(network))
        stack.enter_context(installed(infra, clock, module=package, **env))
        if module == "ebs-snapshot":
            EbsDriver(clock, ec2, fidelity.snapshot_completion_time).day()
        else:
            Driver(clock).day()
        take_messages()
        clock.advance(hours=1)

        network.calls.counts.clear()
        output = io.StringIO()
        with captured(output):
            planned = handlers.restore_handler({"scheduled_time": format_time(clock.now)}, FakeContext())
        run_calls = Counter(network.calls.counts)
        tests = int(planned["planned"])
        log_before = len(output.getvalue().encode())
        invocations = messages = deliveries = checks = waits = 0
        poll_calls: Counter[str] = Counter()
        queue: list[tuple[datetime, str, str]] = []  # (due, body, kind)
        events: list[tuple[datetime, str]] = []
        seen: dict[str, str] = {}  # restored resource -> the last state an event was made for

        def enqueue() -> None:
            for m in take_messages():
                due_ms = m.get("_delayed_until_ms") or 0
                due = datetime.fromtimestamp(due_ms / 1000, UTC) if due_ms else clock.now
                queue.append((max(due, clock.now), work_body(m), str(m["kind"])))

        def observe_ec2() -> None:
            """The state events EventBridge would forward for the restored resources, when EC2 shows them."""
            restored = [{"Name": "tag-key", "Values": [tagging.RESTORE_TEST]}]
            if module == "ebs-snapshot":
                for volume in ec2.describe_volumes(Filters=restored)["Volumes"]:
                    vid = volume["VolumeId"]
                    if vid not in seen:
                        seen[vid] = "created"
                        due = volume["CreateTime"].astimezone(UTC) + timedelta(seconds=MEASURED_VOLUME_S)
                        events.append((max(due, clock.now), _volume_event(vid, REGION, infra_account())))
                return
            for reservation in ec2.describe_instances(Filters=restored)["Reservations"]:
                for instance in reservation["Instances"]:
                    iid, state = instance["InstanceId"], instance["State"]["Name"]
                    if iid not in seen:
                        seen[iid] = "pending"
                        due = instance["LaunchTime"].astimezone(UTC) + timedelta(seconds=MEASURED_LAUNCH_S)
                        events.append((max(due, clock.now), _instance_event(iid, "running", REGION, infra_account())))
                    if state in ("shutting-down", "terminated") and seen[iid] not in ("shutting-down", "terminated"):
                        seen[iid] = "terminated"
                        for name in ("shutting-down", "terminated"):
                            events.append((clock.now, _instance_event(iid, name, REGION, infra_account())))

        enqueue()
        for _round in range(10_000):
            observe_ec2()
            if not queue and not events:
                break
            due = min([d for d, _b, _k in queue] + [d for d, _e in events])
            clock.now = max(clock.now, due)
            now_events = [e for d, e in events if d <= due]
            events = [(d, e) for d, e in events if d > due]
            for event in now_events:  # each in its own invocation
                invocations += 1
                messages += 1
                deliveries += 1
                with captured(output):
                    _must(handlers.work_handler(sqs_event([event]), FakeContext()), output)
                enqueue()
            ready = [(b, k) for d, b, k in queue if d <= due]
            queue = [(d, b, k) for d, b, k in queue if d > due]
            for start in range(0, len(ready), BATCH):
                batch = ready[start : start + BATCH]
                invocations += 1
                messages += len(batch)
                checks += sum(1 for _b, k in batch if k == "restore_check")
                before, pending = Counter(network.calls.counts), len(queue)
                with captured(output):
                    _must(handlers.work_handler(sqs_event([b for b, _k in batch]), FakeContext()), output)
                enqueue()
                resent = [k for _d, _b, k in queue[pending:]]
                if {k for _b, k in batch} == {"restore_check"} and resent == ["restore_check"] * len(batch):
                    waits += len(batch)  # checks that found the test still starting and re-sent themselves
                    poll_calls.update(network.calls.counts - before)
        else:
            raise RuntimeError("the restore tests never finished")
        worker = network.calls.counts - run_calls
        worker["sqs.SendMessageBatch"] += run_calls.pop("sqs.SendMessageBatch", 0)
        log_bytes = len(output.getvalue().encode()) - log_before
    if tests == 0:
        raise RuntimeError(f"{module}: the restore schedule planned no test: {planned}")
    # The planner's sweep item is one per run, not per test: its message and invocation stay in the tests' share
    # (a fraction of one per test), as the planner's SendMessageBatch does.
    return TestCalls(
        module=module,
        calls={k: v / tests for k, v in sorted(worker.items())},
        invocations=invocations / tests,
        messages=messages / tests,
        deliveries=deliveries / tests,
        log_bytes=round(log_bytes / tests, -1),
        run_calls={k: float(v) for k, v in sorted(run_calls.items())},
        source=(
            f"measured: bench/restore.py on moto made faithful, {tests} tests of a restore schedule (`running` "
            f"{MEASURED_LAUNCH_S} s after launch, status checks `ok` {MEASURED_STATUS_S} s later, volumes "
            f"`available` after {MEASURED_VOLUME_S} s), every work item and state event handled as it comes due"
        ),
        checks=round(checks / tests),
        poll_calls={k: v / waits for k, v in sorted(poll_calls.items())} if waits else {},
    )


@contextmanager
def _botocore_files_once() -> Iterator[None]:
    """A speed shim, not fidelity: botocore decodes its JSON models again for every new session (each runtime's
    clients, each moto backend); here each file once per measurement. botocore already shares one decoded model
    between the clients of a session (Loader.instance_cache), so sharing it between sessions changes no answer."""
    from botocore import loaders

    original = loaders.JSONFileLoader.load_file
    cache: dict[str, Any] = {}

    def load_file(self: Any, file_path: str) -> Any:
        if file_path not in cache:
            cache[file_path] = original(self, file_path)
        return cache[file_path]

    with mock.patch.object(loaders.JSONFileLoader, "load_file", load_file):
        yield


def _must(response: Mapping[str, Any], output: io.StringIO | None = None) -> None:
    if response.get("batchItemFailures"):
        tail = output.getvalue()[-20000:] if output is not None else ""
        raise RuntimeError(f"records failed: {response['batchItemFailures']}\n{tail}")


def infra_account() -> str:
    from aws_harness import ACCOUNT

    return str(ACCOUNT)


def _instance_event(instance_id: str, state: str, region: str, account: str) -> str:
    """`EC2 Instance State-change Notification` (EC2 User Guide, "EventBridge for Amazon EC2")."""
    return json.dumps(
        {"version": "0", "id": "bench", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
         "account": account, "time": "2024-05-01T01:30:00Z", "region": region,
         "resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
         "detail": {"instance-id": instance_id, "state": state}}
    )  # fmt: skip


def _volume_event(volume_id: str, region: str, account: str) -> str:
    """`EBS Volume Notification`, createVolume available (EBS User Guide, "EventBridge for Amazon EBS")."""
    return json.dumps(
        {"version": "0", "id": "bench", "detail-type": "EBS Volume Notification", "source": "aws.ec2",
         "account": account, "time": "2024-05-01T01:30:00Z", "region": region,
         "resources": [f"arn:aws:ec2:{region}:{account}:volume/{volume_id}"],
         "detail": {"result": "available", "cause": "", "event": "createVolume", "request-id": "bench"}}
    )  # fmt: skip


def committed_calls(inputs: Mapping[str, Any] | None = None) -> dict[str, TestCalls] | None:
    """The calls per test committed in bench/cost_inputs.json: the measured ones only (None: the documented flow)."""
    calls = (inputs or load_inputs()).get("calls", {})
    got = {m: TestCalls.from_dict(c) for m, c in calls.items() if c.get("source") != DOCUMENTED}
    return got or None
