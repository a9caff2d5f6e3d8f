"""10. instance-scheduler (issue 9): the AWS calls of one start slot and one stop slot per 1,000 EC2 instances (the
planner, the act work items, the state events, the delayed checks), the calls of a state event of an instance outside
the policy (the account-wide rule forwards those too), and the cost model's inputs for a weekday office-hours
schedule (22 start and 22 stop slots a month).

EC2 instances only: the Auto Scaling group and RDS adapters (`groups.py`, `rds.py`) are not measured.

On moto made faithful (tests/support/moto_fidelity.py) on a fixed clock, SQS on that clock: an instance is `stopping`
for `STOP_TIME` and `pending` for `START_TIME` (the fidelity's E33; AWS gives no figure), then its state event
(`stopped`, `running`: the only states the rule forwards) is delivered, each in its own invocation. Work items are
handled when due (the planner paces its act items 10 s apart; delays honoured, batches of up to 10). Steady state: one
stop and one start slot first (the ledger already holds every instance), then the measured stop and start slots.
"""

from __future__ import annotations

import heapq
import json
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from aws_harness import (
    ACCOUNT,
    LEDGER_TABLE,
    REGION,
    Clock,
    FakeContext,
    alerts_sent,
    install_runtimes,
    run_instances,
    scheduler_function_env,
    take_messages,
    work_body,
)
from tests.support.moto_fidelity import faithful_aws

from ops_automation.core.events import format_time
from ops_automation.instance_scheduler import handlers as scheduler_handlers

from .cost import IDLE_POLLS_PER_MONTH, PRICES, CycleUsage, LatencyModel, Line, Projection, project
from .driver import CycleDriver, captured
from .harness import Infra, Network, moto_account, patched_env, routed
from .model import INPUTS_FILE, METRIC_HOURS_PER_DAY

KEY = "instance-scheduler"
TAGS = {"Schedule": "office-hours"}
ACTIONS = ("stop", "start")
SIZES = (20, 200)  # instances, for the cost
CALLS_FLEET = 1_000  # instances, for the calls per 1,000 per action
SLOTS_PER_MONTH = 22  # weekday office hours: 22 start slots and 22 stop slots a month
SCHEDULES = 2  # one EventBridge Scheduler schedule per action
ALARMS = 1  # the dead-letter alarm; the missed-run alarms only with `missed_run_alarm_hours` (default null)
STOP_TIME = timedelta(minutes=1)  # assumed: how long an instance is `stopping`
START_TIME = timedelta(seconds=30)  # assumed: how long an instance is `pending`
# Not measured on an account: running/stopped events a month of instances outside the policy, which the account-wide
# rule forwards too (review note 14). Priced as its own line, at the measured calls of one such event.
ASSUMED_CHURN_EVENTS_PER_MONTH = 10_000
# Office hours in Tokyo (no DST): start 08:00 = 23:00 UTC the day before, stop 20:00 = 11:00 UTC, on weekdays.
FIRST_STOP = datetime(2024, 5, 13, 11, 0, tzinfo=UTC)  # a Monday
ROUNDS = 1_000_000


def state_event(instance_id: str, state: str) -> str:
    """An `EC2 Instance State-change Notification` as EventBridge delivers it (the detail: instance id and state)."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": scheduler_handlers.STATE_CHANGE,
            "source": "aws.ec2",
            "account": ACCOUNT,
            "time": "2024-05-13T11:01:00Z",
            "region": REGION,
            "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"],
            "detail": {"instance-id": instance_id, "state": state},
        }
    )


def _due(message: Mapping[str, Any], now: datetime) -> datetime:
    ms = message.get("_delayed_until_ms") or 0
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else now


class SchedulerDriver(CycleDriver):
    """One slot's timeline: the planner, then the work items as they come due and each instance's state event when
    the fidelity completes its start or stop; calls and invocations kept by what was handled."""

    handlers = scheduler_handlers

    def __init__(self, clock: Clock, network: Network, ec2: Any) -> None:
        super().__init__(clock)
        self.network = network
        self.ec2 = ec2  # the bench's own client: not counted
        self.due_events: list[tuple[datetime, int, str]] = []
        self.pending: list[tuple[datetime, dict[str, Any]]] = []
        self.sequence = 0
        self.by_kind: dict[str, Counter[str]] = {}
        self.metric_hours: set[int] = set()
        self.start = clock.now
        self.acted = 0  # instances whose state the act items changed: one state event each

    def plan_action(self, action: str) -> dict[str, Any]:
        self.seen.planner += 1
        with captured(self.seen.output):
            event = {"scheduled_time": format_time(self.clock.now), "action": action}
            return dict(self.handlers.plan_handler(event, FakeContext()))

    def _states(self, ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(ids), 200):
            for reservation in self.ec2.describe_instances(InstanceIds=ids[start : start + 200])["Reservations"]:
                for instance in reservation["Instances"]:
                    found[instance["InstanceId"]] = instance["State"]["Name"]
        return found

    def handle(self, bodies: list[str], kind: str) -> None:
        before, output = Counter(self.network.calls.counts), len(self.seen.output.getvalue())
        self._must(self.work(bodies, kind))
        self.by_kind.setdefault(kind, Counter()).update(Counter(self.network.calls.counts) - before)
        if '"_aws"' in self.seen.output.getvalue()[output:]:
            self.metric_hours.add(int((self.clock.now - self.start).total_seconds() // 3600))

    def _act(self, messages: list[dict[str, Any]]) -> None:
        ids = [i for m in messages for i in m["instance_ids"]]
        before = self._states(ids)
        self.handle([work_body(m) for m in messages], "act")
        for instance_id, state in self._states(ids).items():
            if state == before.get(instance_id):
                continue
            self.acted += 1
            final, took = ("stopped", STOP_TIME) if state in ("stopping", "stopped") else ("running", START_TIME)
            self.sequence += 1
            due = self.clock.now + took + timedelta(seconds=1)
            heapq.heappush(self.due_events, (due, self.sequence, state_event(instance_id, final)))

    def run(self, action: str) -> dict[str, Any]:
        """The slot at the clock's time, until every event is delivered and every work item handled."""
        self.start = self.clock.now
        summary = self.plan_action(action)
        for _round in range(ROUNDS):
            for message in take_messages():
                self.pending.append((_due(message, self.clock.now), message))
            if not self.due_events and not self.pending:
                return summary
            next_message = min((due for due, _ in self.pending), default=None)
            if self.due_events and (next_message is None or self.due_events[0][0] <= next_message):
                due, _, body = heapq.heappop(self.due_events)
                self.clock.now = max(self.clock.now, due)
                self.handle([body], "state_event")
                continue
            assert next_message is not None
            self.clock.now = max(self.clock.now, next_message)
            ready = [m for due, m in self.pending if due <= self.clock.now]
            self.pending = [(due, m) for due, m in self.pending if due > self.clock.now]
            by_kind: dict[str, list[dict[str, Any]]] = {}
            for message in ready:
                by_kind.setdefault(message["kind"], []).append(message)
            for kind, messages in by_kind.items():
                for start in range(0, len(messages), 10):
                    batch = messages[start : start + 10]
                    if kind == "act":
                        self._act(batch)
                    else:
                        self.handle([work_body(m) for m in batch], kind)
        raise RuntimeError("the slot never ended")


@dataclass(frozen=True)
class SlotRun:
    """One measured slot of one action on `instances` tagged instances."""

    action: str
    instances: int
    planner: dict[str, int]  # the planner's calls
    worker: dict[str, dict[str, int]]  # the worker's calls by what it handled: act, state_event, check
    invocations: dict[str, int]  # planner, worker
    messages: dict[str, int]  # SQS messages the worker consumed, by kind (state events included)
    state_events: int  # delivered by the rule: one per instance that changed state
    acted: int  # instances started or stopped
    verified: int  # ledger items of this slot `available` afterwards
    alerts: int
    log_bytes: int
    metric_names: tuple[str, ...]
    metric_hours: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def calls(self) -> Counter[str]:
        total = Counter(self.planner)
        for calls in self.worker.values():
            total.update(calls)
        return total

    def per_1000(self) -> dict[str, float]:
        """Every call of the slot per 1,000 instances, by API, with the invocations, the state events and the
        event source mapping's receives and deletes (one each per message, as the cost model counts them)."""
        scale = 1000 / self.instances
        figures = {call: n * scale for call, n in sorted(self.calls().items())}
        consumed = sum(self.messages.values())
        figures["sqs.ReceiveMessage+DeleteMessage (event source mapping)"] = 2 * consumed * scale
        figures["sqs.SendMessage (EventBridge: state events)"] = self.state_events * scale
        figures["lambda.Invoke (planner)"] = self.invocations["planner"] * scale
        figures["lambda.Invoke (worker)"] = self.invocations["worker"] * scale
        figures["events.state-change events"] = self.state_events * scale
        return figures


@dataclass(frozen=True)
class SchedulerInputs:
    """What the instance-scheduler cost section is computed from: a weekday (one start and one stop slot) at
    `instances` instances, measured at that size."""

    instances: int
    usage: CycleUsage  # per instance per weekday; the planners' listing as fixed calls
    foreign_event: dict[str, float]  # calls of one state event of an instance outside the policy
    foreign_log_bytes: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchedulerInputs:
        return cls(**{**data, "usage": CycleUsage(**data["usage"])})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SchedulerResults:
    slots: list[SlotRun] = field(default_factory=list)
    inputs: list[SchedulerInputs] = field(default_factory=list)
    foreign_event: dict[str, int] = field(default_factory=dict)
    warm_equals_cold: bool = False  # a first slot makes the same calls as one at steady state

    def as_dict(self) -> dict[str, Any]:
        return {
            "slots": [s.as_dict() for s in self.slots],
            "inputs": [i.as_dict() for i in self.inputs],
            "foreign_event": self.foreign_event,
            "warm_equals_cold": self.warm_equals_cold,
        }


@contextmanager
def scheduler_account(network: Network, clock: Clock) -> Iterator[Infra]:
    """moto made faithful, SQS on `clock`, the functions' environment (modules/instance-scheduler defaults: office
    hours in Tokyo, 20-minute deadline, no excluded date in the measured week)."""
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True, instance_start_time=START_TIME, instance_stop_time=STOP_TIME),
        routed(network),
        patched_env(
            scheduler_function_env(
                infra.queue_url,
                OPS_ALERT_TOPIC_ARN=infra.topic_arn,
                OPS_EXCLUDED_DATES="[]",
                OPS_TARGET_TAGS=json.dumps(TAGS),
            )
        ),
    ):
        install_runtimes(clock, "instance_scheduler")
        try:
            yield infra
        finally:
            scheduler_handlers.planner_runtime.install(None)
            scheduler_handlers.worker_runtime.install(None)


def _verified(action: str, slot: str) -> int:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    return sum(
        1
        for item in items
        if item.get("state", {}).get("S") == "available"
        and item.get("slot", {}).get("S") == slot
        and item.get("source_id", {}).get("S") == action
    )


def measure_fleet(instances: int, warm_up: bool = True) -> tuple[dict[str, SlotRun], dict[str, int], int]:
    """With `warm_up`, a stop and a start slot first (the ledger then holds every instance, as at steady state);
    then the measured stop and start slots; then one state event of an instance outside the policy. Returns the
    slots by action, that event's calls and its log bytes."""
    network, clock = Network(), Clock(FIRST_STOP - timedelta(days=1))
    runs: dict[str, SlotRun] = {}
    slots = [("stop", FIRST_STOP), ("start", FIRST_STOP + timedelta(hours=12))]
    if warm_up:
        slots = [("stop", FIRST_STOP - timedelta(days=3)), ("start", FIRST_STOP - timedelta(hours=12)), *slots]
    with scheduler_account(network, clock):
        ec2 = boto3.client("ec2", region_name=REGION)
        run_instances(ec2, instances, TAGS)
        (outsider,) = run_instances(ec2, 1, {"Schedule": "always-on"})
        for index, (action, at) in enumerate(slots):
            clock.now = max(clock.now, at)
            network.calls.counts.clear()
            driver = SchedulerDriver(clock, network, ec2)
            alerts = len(alerts_sent())
            summary = driver.run(action)
            if index < len(slots) - 2:
                continue
            runs[action] = SlotRun(
                action=action,
                instances=instances,
                planner=dict(sorted(_planner_calls(driver, network).items())),
                worker={kind: dict(sorted(c.items())) for kind, c in sorted(driver.by_kind.items())},
                invocations={"planner": driver.seen.planner, "worker": driver.seen.worker},
                messages=dict(driver.seen.messages),
                state_events=driver.seen.messages.get("state_event", 0),
                acted=driver.acted,
                verified=_verified(action, summary["slot"]),
                alerts=len(alerts_sent()) - alerts,
                log_bytes=driver.seen.log_bytes(),
                metric_names=tuple(sorted(driver.seen.metric_names())),
                metric_hours=len(driver.metric_hours),
            )
        # An instance outside the policy changes state: the rule forwards its event all the same.
        clock.now += timedelta(hours=1)
        network.calls.counts.clear()
        driver = SchedulerDriver(clock, network, ec2)
        driver.handle([state_event(outsider, "stopped")], "state_event")
        foreign = dict(sorted(network.calls.counts.items()))
        foreign_log = driver.seen.log_bytes()
    return runs, foreign, foreign_log


def _planner_calls(driver: SchedulerDriver, network: Network) -> Counter[str]:
    worker = Counter[str]()
    for calls in driver.by_kind.values():
        worker.update(calls)
    return Counter(network.calls.counts) - worker


def inputs_of(runs: Mapping[str, SlotRun], foreign: Mapping[str, int], foreign_log: int) -> SchedulerInputs:
    """A weekday: one stop slot and one start slot. The planners' EC2 listing per slot is fixed (one
    DescribeInstances per 1,000 instances), the rest per instance."""
    n = next(iter(runs.values())).instances
    worker: Counter[str] = Counter()
    fixed: Counter[str] = Counter()
    invocations = planners = messages = events = log_bytes = metric_hours = 0
    names: set[str] = set()
    for run in runs.values():
        for calls in run.worker.values():
            worker.update(calls)
        for call, count in run.planner.items():
            (fixed if call.startswith("ec2.") else worker)[call] += count
        invocations += run.invocations["worker"]
        planners += run.invocations["planner"]
        messages += sum(run.messages.values())
        events += run.state_events
        log_bytes += run.log_bytes
        metric_hours += run.metric_hours
        names.update(run.metric_names)
    ec2 = sum(v for k, v in worker.items() if k.startswith("ec2."))
    usage = CycleUsage(
        design="ours",
        ec2_calls_each=ec2 / n,
        other_calls_each={k: v / n for k, v in sorted(worker.items()) if not k.startswith("ec2.")},
        fixed_calls={k: float(v) for k, v in sorted(fixed.items())},
        invocations_each=invocations / n,
        invocations_fixed=planners,
        sqs_messages_each=messages / n,
        eventbridge_deliveries_each=events / n,  # the state events of our own starts and stops
        log_bytes_each=round(log_bytes / n, -1),
        metric_names=len(names),
        metric_hours_per_day=metric_hours or METRIC_HOURS_PER_DAY,
        alarms=ALARMS,
        idle_sqs_requests_per_month=IDLE_POLLS_PER_MONTH,
        scheduler_invocations_per_day=SCHEDULES,
        service_events="EC2 Instance State-change",
    )
    return SchedulerInputs(n, usage, {k: float(v) for k, v in foreign.items()}, float(foreign_log))


def churn_line(inputs: SchedulerInputs, events: float = ASSUMED_CHURN_EVENTS_PER_MONTH) -> Line:
    """The assumed churn, at list price (no free tier: the module's own usage takes it first): per event the rule's
    SQS send, the event source mapping's receive and delete, one invocation, its calls (measured), its logs."""
    latency = LatencyModel()
    calls = inputs.foreign_event
    ec2 = sum(v for k, v in calls.items() if k.startswith("ec2."))
    other = sum(calls.values()) - ec2
    seconds = ec2 * latency.ec2_call_s + other * latency.other_call_s + latency.invocation_s
    reads = sum(v for k, v in calls.items() if k == "dynamodb.GetItem")
    writes = sum(v for k, v in calls.items() if k in ("dynamodb.UpdateItem", "dynamodb.PutItem"))
    sqs = 3 + sum(v for k, v in calls.items() if k.startswith("sqs."))
    log_bytes = inputs.foreign_log_bytes + latency.platform_log_bytes
    each = (
        PRICES["lambda_requests"].usd
        + seconds * latency.memory_gb * PRICES["lambda_gb_seconds"].usd
        + reads * PRICES["dynamodb_reads"].usd
        + writes * PRICES["dynamodb_writes"].usd
        + sqs * PRICES["sqs_requests"].usd
        + log_bytes * PRICES["logs_ingestion"].usd
    )
    return Line(
        f"assumed churn: {events:,.0f} running/stopped events of other instances (not measured)",
        events,
        "event",
        each * events,
        each * events,
    )


def projection(inputs: SchedulerInputs) -> Projection:
    """The month: 22 weekdays of one start and one stop slot (the churn is `churn_line`, apart)."""
    return project(inputs.usage, inputs.instances, days=SLOTS_PER_MONTH)


def measure(sizes: tuple[int, ...] = SIZES, calls_fleet: int = CALLS_FLEET) -> SchedulerResults:
    """The cost sizes at steady state; the calls fleet without the warm-up slots (moto's DynamoDB makes 4 slots of
    1,000 instances take minutes), which the smallest size checks makes the same calls."""
    results = SchedulerResults()
    for n in sizes:
        runs, foreign, foreign_log = measure_fleet(n)
        results.inputs.append(inputs_of(runs, foreign, foreign_log))
        if n == min(sizes):
            cold = measure_fleet(n, warm_up=False)[0]
            results.warm_equals_cold = all(cold[a].as_dict() == runs[a].as_dict() for a in ACTIONS)
        if n == calls_fleet:
            results.slots, results.foreign_event = [runs[a] for a in ACTIONS], foreign
    if not results.slots:
        runs, foreign, _log = measure_fleet(calls_fleet, warm_up=False)
        results.slots, results.foreign_event = [runs[a] for a in ACTIONS], foreign
    return results


def save_inputs(results: SchedulerResults, path: Path = INPUTS_FILE) -> None:
    """Adds this module's inputs (and the measured slots the README's calls table shows) to the committed file
    model.save_inputs writes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data[KEY] = {"inputs": [i.as_dict() for i in results.inputs], "slots": [s.as_dict() for s in results.slots]}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def load_inputs(path: Path = INPUTS_FILE) -> tuple[list[SchedulerInputs], list[SlotRun]]:
    data = json.loads(path.read_text(encoding="utf-8"))[KEY]
    slots = [SlotRun(**{**s, "metric_names": tuple(s["metric_names"])}) for s in data["slots"]]
    return [SchedulerInputs.from_dict(m) for m in data["inputs"]], slots


def results_from_dict(data: Mapping[str, Any]) -> SchedulerResults:
    return SchedulerResults(
        slots=[SlotRun(**{**s, "metric_names": tuple(s["metric_names"])}) for s in data["slots"]],
        inputs=[SchedulerInputs.from_dict(i) for i in data["inputs"]],
        foreign_event=dict(data["foreign_event"]),
        warm_equals_cold=bool(data["warm_equals_cold"]),
    )
