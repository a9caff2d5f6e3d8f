"""11. ssm-runcommand (issue 10): the AWS calls of one nightly slot at N instances, by API, tag-targeted (one
SendCommand whatever N) and by listed ids (one SendCommand per 50 ids), the events the rule forwards, and the cost
model's inputs for one nightly slot (30 slots a month) at 20 and 200 instances.

On moto made faithful (tests/support/moto_fidelity.py, E40-E52) on a fixed clock, SQS on that clock: every instance
is a managed node with its agent online; SSM delivers an invocation `DELIVERY_TIME` after its concurrency batch sends
it and it runs `RUN_TIME` (both assumed: the fidelity's `ssm_delivery_time` and `ssm_run_time`; AWS gives no
figure), then succeeds and writes its output to the S3 bucket (E50). MaxConcurrency 50: SSM sends in batches of
1, 2, 4, ... at most 50 running (E45). The two Run Command events (E52: one `EC2 Command Invocation Status-change
Notification` per instance and status, one `EC2 Command Status-change Notification` per command and status; the
statuses emitted are the fidelity's default, the terminal ones) are delivered as SSM emits them, each in its own
invocation; work items are handled when due (delays honoured, batches of up to 10). A slot ends when nothing is
under way in SSM and the queue is empty.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from aws_harness import (
    LEDGER_TABLE,
    REGION,
    RUN_OUTPUT_BUCKET,
    Clock,
    alerts_sent,
    install_runtimes,
    run_instances,
    runcommand_function_env,
    take_messages,
    work_body,
)
from tests.support.moto_fidelity import MotoFidelity, faithful_aws

from ops_automation.ssm_runcommand import handlers as runcommand_handlers

from .cost import GB, IDLE_POLLS_PER_MONTH, PRICES, CycleUsage, Line, Projection, project
from .driver import CycleDriver
from .harness import Infra, Network, moto_account, patched_env, routed
from .model import ALARMS_OURS, INPUTS_FILE

KEY = "ssm-runcommand"
TAGS = {"Backup": "nightly-db"}  # tests/python/aws_harness.py `runcommand_function_env`
MODES = ("tags", "ids")
SIZES = (20, 200)  # instances, for the cost
CALLS_SIZES = (20, 200, 1_000)  # instances, for the calls per slot by API and the ratios
SLOTS_PER_MONTH = 30  # one nightly slot
SCHEDULES = 1  # one EventBridge Scheduler schedule
ALARMS = ALARMS_OURS  # the dead-letter alarm and the planner's missed-run alarm (derived from a daily schedule)
DELIVERY_TIME = timedelta(seconds=2)  # assumed: from SSM sending an invocation to the agent acknowledging it
RUN_TIME = timedelta(seconds=60)  # assumed: how long the nightly script runs on an instance
FIRST_SLOT = datetime(2024, 5, 13, 1, 0, tzinfo=UTC)  # a nightly slot, 01:00 UTC
ROUNDS = 1_000_000
# The Status values of CommandInvocation and Command (API Reference) the `every_status` check adds to the fidelity's
# default (the terminal ones): which ones SSM emits is not documented.
EVERY_STATUS = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
MODULE_MAIN = Path(__file__).resolve().parents[1] / "modules" / "ssm-runcommand" / "main.tf"


def rule_skips(main_tf: Path = MODULE_MAIN) -> tuple[str, ...]:
    """The statuses the deployed rule does not forward: modules/ssm-runcommand/main.tf `command_status_pattern`,
    `status = [{ "anything-but" = [...] }]` (every other status is forwarded)."""
    found = re.search(r'"anything-but"\s*=\s*(\[[^\]]*\])', main_tf.read_text(encoding="utf-8"))
    if found is None:
        raise ValueError(f"{main_tf}: no anything-but status filter in the rule's pattern")
    return tuple(json.loads(found.group(1)))


RULE_SKIPS = rule_skips()
EVENT_KINDS = {
    runcommand_handlers.COMMAND_EVENT: "command_event",
    runcommand_handlers.INVOCATION_EVENT: "invocation_event",
}
# Not the module's: what the instances write to the output bucket (their role's PutObject), priced apart on
# assumptions. Output per instance per slot (stdout and stderr together) and how long the bucket keeps it (a lifecycle
# rule the user sets; without one it grows every month).
ASSUMED_OUTPUT_KB = 10
ASSUMED_OUTPUT_RETENTION_DAYS = 30


def _due(message: Mapping[str, Any], now: datetime) -> datetime:
    ms = message.get("_delayed_until_ms") or 0
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else now


class RunCommandDriver(CycleDriver):
    """One slot's timeline: the planner, then the work items as they come due and each Run Command event as SSM
    emits it (the fidelity's E52); calls and invocations kept by what was handled."""

    handlers = runcommand_handlers

    def __init__(self, clock: Clock, network: Network, fidelity: MotoFidelity) -> None:
        super().__init__(clock)
        self.network = network
        self.fidelity = fidelity
        self.pending: list[tuple[datetime, int, dict[str, Any]]] = []
        self.sequence = 0
        self.by_kind: dict[str, Counter[str]] = {}
        self.forwarded: Counter[str] = Counter()  # events the rule forwarded, by kind
        self.emitted: Counter[str] = Counter()  # events SSM emitted (the fidelity's E52), by kind
        self.metric_hours: set[int] = set()
        self.start = clock.now

    def handle(self, bodies: list[str], kind: str) -> None:
        before, output = Counter(self.network.calls.counts), len(self.seen.output.getvalue())
        self._must(self.work(bodies, kind))
        self.by_kind.setdefault(kind, Counter()).update(Counter(self.network.calls.counts) - before)
        if '"_aws"' in self.seen.output.getvalue()[output:]:
            self.metric_hours.add(int((self.clock.now - self.start).total_seconds() // 3600))

    def _deliver_events(self) -> None:
        """What SSM emitted up to now, through the rule: it matches the document name (only this policy's commands
        exist) and drops the statuses `RULE_SKIPS`."""
        for event in self.fidelity.ssm_drain_events():
            kind = EVENT_KINDS[event["detail-type"]]
            self.emitted[kind] += 1
            if event["detail"]["status"] in RULE_SKIPS:
                continue
            self.forwarded[kind] += 1
            self.handle([json.dumps(event)], kind)

    def run(self) -> dict[str, Any]:
        """The slot at the clock's time, until SSM has nothing under way and every work item is handled."""
        self.start = self.clock.now
        summary = self.plan()
        for _round in range(ROUNDS):
            for message in take_messages():
                self.sequence += 1
                heapq.heappush(self.pending, (_due(message, self.clock.now), self.sequence, message))
            change = self.fidelity.ssm_next_change()
            if change is None and not self.pending:
                self._deliver_events()
                if not take_messages():
                    return summary
                raise RuntimeError("an event enqueued work after the slot ended")
            next_message = self.pending[0][0] if self.pending else None
            if change is not None and (next_message is None or change <= next_message):
                self.clock.now = max(self.clock.now, change)
                self._deliver_events()
                continue
            assert next_message is not None
            self.clock.now = max(self.clock.now, next_message)
            self._deliver_events()
            ready: list[dict[str, Any]] = []
            while self.pending and self.pending[0][0] <= self.clock.now:
                ready.append(heapq.heappop(self.pending)[2])
            by_kind: dict[str, list[dict[str, Any]]] = {}
            for message in ready:
                by_kind.setdefault(message["kind"], []).append(message)
            for kind, messages in by_kind.items():
                self.handle([work_body(m) for m in messages], kind)
        raise RuntimeError("the slot never ended")


@dataclass(frozen=True)
class SlotRun:
    """One measured nightly slot on `instances` instances, targeted by `mode` (tags or listed ids)."""

    mode: str
    instances: int
    planner: dict[str, int]  # the planner's calls
    worker: dict[str, dict[str, int]]  # the worker's calls by what it handled: send, check, command/invocation_event
    invocations: dict[str, int]  # planner, worker
    messages: dict[str, int]  # SQS messages the worker consumed, by kind (events included)
    events: dict[str, int]  # forwarded by the rule, by kind
    emitted: dict[str, int]  # emitted by SSM, by kind (the rule drops the non-final statuses)
    succeeded: int  # ledger items of this slot `available` afterwards (one per instance)
    alerts: int
    output_objects: int  # objects the instances wrote to the output bucket (E50)
    log_bytes: int
    metric_names: tuple[str, ...]
    metric_hours: int
    minutes: float  # from the slot to its last event or work item, simulated
    event_statuses: tuple[str, ...]  # the Status values SSM emits events for (the fidelity's assumption)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def calls(self) -> Counter[str]:
        total = Counter(self.planner)
        for calls in self.worker.values():
            total.update(calls)
        return total

    def figures(self) -> dict[str, float]:
        """Every call of the slot by API, with the invocations, the events forwarded and the event source mapping's
        receives and deletes (one each per message, as the cost model counts them)."""
        figures: dict[str, float] = {call: float(n) for call, n in sorted(self.calls().items())}
        consumed = sum(self.messages.values())
        events = sum(self.events.values())
        figures["sqs.ReceiveMessage+DeleteMessage (event source mapping)"] = 2.0 * consumed
        figures["sqs.SendMessage (EventBridge: the rule's deliveries)"] = float(events)
        figures["lambda.Invoke (planner)"] = float(self.invocations["planner"])
        figures["lambda.Invoke (worker)"] = float(self.invocations["worker"])
        for kind, n in sorted(self.events.items()):
            figures[f"events.{kind} (default bus: free)"] = float(n)
        return figures


@dataclass(frozen=True)
class RunCommandInputs:
    """What the ssm-runcommand cost section is computed from: one nightly slot at `instances` instances, measured at
    that size (every call per instance: the projection is made at the size measured)."""

    mode: str
    instances: int
    usage: CycleUsage
    output_objects_each: float  # objects the instances write to the output bucket, per instance and slot

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunCommandInputs:
        return cls(**{**data, "usage": CycleUsage(**data["usage"])})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunCommandResults:
    slots: list[SlotRun] = field(default_factory=list)
    inputs: list[RunCommandInputs] = field(default_factory=list)
    warm_equals_cold: bool = False  # a first slot makes the same calls as one after a slot
    # At the smallest cost size, SSM emitting an event for every status: what it emitted, and whether the rule's
    # filter leaves the calls as they are.
    every_status: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "slots": [s.as_dict() for s in self.slots],
            "inputs": [i.as_dict() for i in self.inputs],
            "warm_equals_cold": self.warm_equals_cold,
            "every_status": self.every_status,
        }

    def slot(self, mode: str, instances: int) -> SlotRun:
        return next(s for s in self.slots if s.mode == mode and s.instances == instances)


@contextmanager
def runcommand_account(
    network: Network, clock: Clock, mode: str, instances: int, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Infra, Any]]:
    """moto made faithful, SQS on `clock`, `instances` tagged instances, the output bucket, and the functions'
    environment (tests/python/aws_harness.py `runcommand_function_env`: AWS-RunShellScript, output to S3; `settings`
    over it, an example's), targeting the tags or the instances' ids. Yields the infrastructure and the fidelity."""
    with moto_account() as infra, faithful_aws(clock, sqs_time=True) as fidelity, routed(network):
        fidelity.ssm_delivery_time = DELIVERY_TIME
        fidelity.ssm_run_time = RUN_TIME
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=RUN_OUTPUT_BUCKET)  # setup: not counted
        ids = run_instances(boto3.client("ec2", region_name=REGION), instances, TAGS)
        targets = (
            {"OPS_TARGET_TAGS": json.dumps(TAGS), "OPS_INSTANCE_IDS": "[]"}
            if mode == "tags"
            else {"OPS_TARGET_TAGS": "{}", "OPS_INSTANCE_IDS": json.dumps(ids)}
        )
        env = runcommand_function_env(
            infra.queue_url, OPS_ALERT_TOPIC_ARN=infra.topic_arn, **targets, **dict(settings or {})
        )
        with patched_env(env):
            install_runtimes(clock, "ssm_runcommand")
            try:
                yield infra, fidelity
            finally:
                runcommand_handlers.planner_runtime.install(None)
                runcommand_handlers.worker_runtime.install(None)


def _succeeded(slot: str) -> int:
    client = boto3.client("dynamodb", region_name=REGION)
    found = 0
    for page in client.get_paginator("scan").paginate(TableName=LEDGER_TABLE):
        for item in page["Items"]:
            resource = item.get("sk", {}).get("S", "") + item.get("pk", {}).get("S", "")
            if item.get("state", {}).get("S") == "available" and f"run@{slot}#" in resource:
                found += 1
    return found


def _output_objects(slot_start: datetime) -> int:
    s3 = boto3.client("s3", region_name=REGION)
    found = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=RUN_OUTPUT_BUCKET):
        found += sum(1 for o in page.get("Contents", []) if o["LastModified"] >= slot_start - timedelta(seconds=1))
    return found


def measure_fleet(
    mode: str,
    instances: int,
    warm_up: bool = True,
    every_status: bool = False,
    settings: Mapping[str, str] | None = None,
) -> SlotRun:
    """With `warm_up`, the slot of the night before first (the ledger and the command history then hold a slot, as
    at steady state); then the measured slot. With `every_status`, SSM emits an event for every Status change
    (Pending, InProgress, ... as well as the terminal ones: which it emits is not documented)."""
    network, clock = Network(), Clock(FIRST_SLOT - timedelta(days=1, minutes=5))
    slots = [FIRST_SLOT - timedelta(days=1), FIRST_SLOT] if warm_up else [FIRST_SLOT]
    with runcommand_account(network, clock, mode, instances, settings) as (_infra, fidelity):
        if every_status:
            fidelity.ssm_event_statuses |= EVERY_STATUS
        run: SlotRun | None = None
        for at in slots:
            clock.now = max(clock.now, at)
            network.calls.counts.clear()
            driver = RunCommandDriver(clock, network, fidelity)
            alerts = len(alerts_sent())
            objects_before = _output_objects(at)
            summary = driver.run()
            run = SlotRun(
                mode=mode,
                instances=instances,
                planner=dict(sorted(_planner_calls(driver, network).items())),
                worker={kind: dict(sorted(c.items())) for kind, c in sorted(driver.by_kind.items())},
                invocations={"planner": driver.seen.planner, "worker": driver.seen.worker},
                messages=dict(sorted(driver.seen.messages.items())),
                events=dict(sorted(driver.forwarded.items())),
                emitted=dict(sorted(driver.emitted.items())),
                succeeded=_succeeded(summary["slot"]),
                alerts=len(alerts_sent()) - alerts,
                output_objects=_output_objects(at) - objects_before,
                log_bytes=driver.seen.log_bytes(),
                metric_names=tuple(sorted(driver.seen.metric_names())),
                metric_hours=len(driver.metric_hours),
                minutes=round((clock.now - at).total_seconds() / 60, 1),
                event_statuses=tuple(sorted(fidelity.ssm_event_statuses)),
            )
    assert run is not None
    return run


def _planner_calls(driver: RunCommandDriver, network: Network) -> Counter[str]:
    worker = Counter[str]()
    for calls in driver.by_kind.values():
        worker.update(calls)
    return Counter(network.calls.counts) - worker


def inputs_of(run: SlotRun) -> RunCommandInputs:
    """One nightly slot, every call per instance (measured at this size; SendCommand's one call and the listing's
    pages included, so the projection holds at the measured size only)."""
    n = run.instances
    calls = run.calls()
    ec2 = sum(v for k, v in calls.items() if k.startswith("ec2."))
    usage = CycleUsage(
        design="ours",
        ec2_calls_each=ec2 / n,
        other_calls_each={k: v / n for k, v in sorted(calls.items()) if not k.startswith("ec2.")},
        fixed_calls={},
        invocations_each=run.invocations["worker"] / n,
        invocations_fixed=run.invocations["planner"],
        sqs_messages_each=sum(run.messages.values()) / n,
        eventbridge_deliveries_each=sum(run.events.values()) / n,
        log_bytes_each=round(run.log_bytes / n, -1),
        metric_names=len(run.metric_names),
        metric_hours_per_day=run.metric_hours,
        alarms=ALARMS,
        idle_sqs_requests_per_month=IDLE_POLLS_PER_MONTH,
        scheduler_invocations_per_day=SCHEDULES,
        service_events="SSM Run Command status-change",
    )
    return RunCommandInputs(run.mode, n, usage, run.output_objects / n)


def projection(inputs: RunCommandInputs) -> Projection:
    """The month: 30 nightly slots (the instances' S3 output is `output_lines`, apart)."""
    return project(inputs.usage, inputs.instances, days=SLOTS_PER_MONTH)


def output_lines(instances: int, objects_per_instance: float, kb: float = ASSUMED_OUTPUT_KB) -> tuple[Line, Line]:
    """Not the module's: the instances' uploads to the output bucket (their role's PutObject) and what the bucket
    keeps, at list price, on the assumed output size and retention (no free tier)."""
    puts = objects_per_instance * instances * SLOTS_PER_MONTH
    kept_gb = kb * 1024 * instances * ASSUMED_OUTPUT_RETENTION_DAYS / GB  # steady state: the retention's slots
    put_price, storage_price = PRICES["s3_put_requests"], PRICES["s3_standard_storage"]
    return (
        Line("S3 PUT of the output by the instances (assumed: as the fidelity writes it)", puts, put_price.per,
             puts * put_price.usd, puts * put_price.usd),
        Line(f"S3 Standard storage of the output (assumed: {kb:g} KB per instance and slot, kept "
             f"{ASSUMED_OUTPUT_RETENTION_DAYS} days)", kept_gb, storage_price.per, kept_gb * storage_price.usd,
             kept_gb * storage_price.usd),
    )  # fmt: skip


def measure(
    sizes: Sequence[int] = SIZES, calls_sizes: Sequence[int] = CALLS_SIZES, modes: Sequence[str] = MODES
) -> RunCommandResults:
    """Every mode at every calls size (the first slot of the account); the cost sizes, tag-targeted, at steady state
    (a slot the night before); the smallest checked to make the same calls cold, and with SSM emitting an event
    for every status (the rule drops the non-final ones)."""
    results = RunCommandResults()
    for mode in modes:
        for n in calls_sizes:
            results.slots.append(measure_fleet(mode, n, warm_up=False))
    for n in sizes:
        warm = measure_fleet("tags", n)
        results.inputs.append(inputs_of(warm))
        if n == min(sizes):
            every = measure_fleet("tags", n, every_status=True)
            results.every_status = {
                "instances": n,
                "emitted": every.emitted,
                "forwarded": every.events,
                "same_calls": every.calls() == warm.calls() and every.messages == warm.messages,
            }
            cold = next((s for s in results.slots if s.mode == "tags" and s.instances == n), None)
            cold = cold or measure_fleet("tags", n, warm_up=False)
            results.warm_equals_cold = (
                cold.calls() == warm.calls() and cold.messages == warm.messages and cold.events == warm.events
            )
    return results


def save_inputs(results: RunCommandResults, path: Path = INPUTS_FILE) -> None:
    """Adds this module's inputs (and the measured slots the README's calls table shows) to the committed file
    model.save_inputs writes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data[KEY] = results.as_dict()
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _slot(data: Mapping[str, Any]) -> SlotRun:
    return SlotRun(
        **{**data, "metric_names": tuple(data["metric_names"]), "event_statuses": tuple(data["event_statuses"])}
    )


def results_from_dict(data: Mapping[str, Any]) -> RunCommandResults:
    return RunCommandResults(
        slots=[_slot(s) for s in data["slots"]],
        inputs=[RunCommandInputs.from_dict(i) for i in data["inputs"]],
        warm_equals_cold=bool(data.get("warm_equals_cold", False)),
        every_status=dict(data.get("every_status", {})),
    )


def load_inputs(path: Path = INPUTS_FILE) -> RunCommandResults:
    return results_from_dict(json.loads(path.read_text(encoding="utf-8"))[KEY])
