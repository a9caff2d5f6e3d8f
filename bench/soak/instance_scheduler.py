"""The instance-scheduler soak: a year of daily stop (11:00 UTC) and start (23:00 UTC) slots for `sources` tagged
instances and a few untagged / other-schedule ones, the real planner and worker in-process on moto made faithful
(instances `stopping` 1 minute, `pending` 30 seconds: the fidelity's E33), each state event delivered as
EventBridge does (on its own, at the end of the transition), the work queue delivered as the event source mapping
does (batches of up to 10 when due, partial failures back after their back-off, a crashed batch back whole after the
visibility timeout, redrive to the dead-letter queue after `OPS_MAX_RECEIVE_COUNT` receives).

Faults (seeded, `Faults`): throttling, 5xx, timeouts and AccessDenied on the EC2 calls; duplicate deliveries of
work items, events and schedules; events out of order (late) or lost; the schedule retried after a planner error;
instances terminated mid-slot (a replacement launched with the tag, as an Auto Scaling group would); a crash
after k records of a batch.

Invariants, after every step: instances outside the policy are never touched; no instance changes state against
its slot's action, nor twice for one slot; at most one "not in its scheduled state" alert per instance and slot; at
each slot's end, every managed instance is in the slot's state, terminated, or alerted (an alert, or its work item
in the dead-letter queue, whose alarm is the alert).

`Wiring` (the deployed wiring: schedules, rule deliveries, the event source mapping) is shared by the snapshot-copy
and ssm-runcommand soaks.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
from aws_harness import (
    ACCOUNT,
    REGION,
    FakeContext,
    install_runtimes,
    run_instances,
    scheduler_function_env,
    sqs_event,
    take_messages,
    work_body,
)
from moto.moto_api._internal import mock_random
from moto.sns.models import sns_backends
from tests.support.moto_fidelity import MotoFidelity, faithful_aws

from ops_automation.core.events import format_time
from ops_automation.core.fanout import backoff_seconds
from ops_automation.instance_scheduler import handlers as scheduler_handlers

from ..driver import captured
from ..harness import Clock, moto_account, patched_env
from ..scheduler import START_TIME, STOP_TIME, TAGS, state_event
from .faults import Faults
from .report import ModuleReport, Violation

MODULE = "instance_scheduler"
# The services whose calls meet the AWS-call faults: EC2, and the ledger (a conditional write whose answer is lost
# is the case the claims must survive). Not SNS: a lost publish answer is a duplicate alert by design (at least
# once), and not SQS, which `Wiring` stands in for.
AWS_SERVICES = ("ec2", "dynamodb")
WORKER_BATCH = 10  # the event source mapping's batch size
WORKER_TIMEOUT = timedelta(seconds=300)  # the worker timeout of the three modules (main.tf)
VISIBILITY = 6 * WORKER_TIMEOUT  # the work queue's visibility timeout (modules/internal/queue.tf)
SCHEDULE_RETRIES = 3  # EventBridge Scheduler retries a failed invocation (its retry policy)
SCHEDULE_RETRY_DELAY = timedelta(minutes=1)
LATE_EVENT_MAX = timedelta(minutes=90)  # how late an out-of-order event may arrive
STOP_AT = timedelta(hours=11)  # 20:00 in Tokyo
START_AT = timedelta(hours=23)  # 08:00 in Tokyo, the next day
FIRST_DAY = datetime(2025, 1, 6, tzinfo=UTC)
OUTSIDERS = {"always-on": 3, "": 2}  # instances outside the policy: another schedule's tag, no tag at all
NOT_IN_STATE = "instance not in its scheduled state"
CANNOT_SCHEDULE = "instance cannot be scheduled"
GIVEN_UP = "work item given up to the dead-letter queue"

# The fault rates of a soak run (per HTTP attempt for the AWS-call kinds, per occasion for the others).
RATES: dict[str, float] = {
    "throttling": 0.02,
    "server_error": 0.004,
    "timeout": 0.004,
    "access_denied": 0.001,
    "duplicate_delivery": 0.002,  # SQS standard queues deliver at least once: a duplicate is rare
    "out_of_order": 0.02,
    "lost_event": 0.01,
    "schedule_duplicate": 0.02,
    "crash_mid_batch": 0.01,
    "instance_terminated": 0.002,
}
# The smoke test's: high enough that a few days meet every kind.
RAISED = {kind: min(0.25, rate * 10) for kind, rate in RATES.items()} | {
    "throttling": 0.08,
    "server_error": 0.03,
    "timeout": 0.03,
    "access_denied": 0.01,
}


class StopSoak(Exception):
    """`stop_at_step` reached: the run ends there (a replay)."""


class LambdaCrash(BaseException):
    """The function dies mid-batch (out of memory, a runtime crash): not an Exception, so no record handler or
    batch processor catches it; the invocation fails and the whole batch comes back."""


@dataclass(order=True)
class Delivery:
    due: datetime
    sequence: int
    body: str = field(compare=False)
    receives: int = field(compare=False, default=0)


# ---------------------------------------------------------------------------------------------------------------
# The deployed wiring: schedules, the rule's deliveries, the event source mapping
# ---------------------------------------------------------------------------------------------------------------


class Wiring:
    """Delivers what AWS delivers, with the faults AWS has: Scheduler invokes the planner (at least once, retried on
    error), the rules put events on the queue (at least once, late or lost), the event source mapping hands the
    worker batches (partial failures back after the back-off the worker set, a crashed batch back whole)."""

    def __init__(
        self,
        handlers: ModuleType,
        clock: Clock,
        faults: Faults,
        report: ModuleReport,
        check: Callable[[int], None],
        max_receives: int = 10,
        stop_at_step: int | None = None,
    ) -> None:
        self.handlers = handlers
        self.clock = clock
        self.faults = faults
        self.report = report
        self.check = check
        self.max_receives = max_receives
        self.stop_at_step = stop_at_step
        self.queue: list[Delivery] = []
        self.sequence = 0
        self.dead_letters: list[str] = []  # bodies redriven to the dead-letter queue (its alarm alerts)
        self.output = _Sink()

    # -- steps -------------------------------------------------------------------------------------------------

    def step(self) -> None:
        self.report.steps += 1
        self.check(self.report.steps)
        if self.stop_at_step is not None and self.report.steps >= self.stop_at_step:
            raise StopSoak

    def schedule(self, event: dict[str, Any]) -> None:
        """One schedule firing: the planner invoked (twice on a duplicate delivery), retried after an error."""
        deliveries = 2 if self.faults.chance("schedule_duplicate") else 1
        for _ in range(deliveries):
            for attempt in range(SCHEDULE_RETRIES + 1):
                self.collect()
                try:
                    with captured(self.output):
                        self.handlers.plan_handler(event, FakeContext())
                    break
                except Exception:
                    if attempt == SCHEDULE_RETRIES:
                        break
                    self.faults.injected["schedule_retry"] += 1
                    self.clock.now += SCHEDULE_RETRY_DELAY
                finally:
                    self.collect()
                    self.step()

    # -- the queue ---------------------------------------------------------------------------------------------

    def _push(self, due: datetime, body: str, receives: int = 0) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, Delivery(due, self.sequence, body, receives))

    def collect(self) -> None:
        """What the handlers sent to the work queue (SQS is at least once: a message may come twice)."""
        for message in take_messages():
            due = _due(message, self.clock.now)
            body = work_body(message)
            self._push(due, body)
            if self.faults.chance("duplicate_delivery"):
                self._push(due + timedelta(seconds=self.faults.rng.randrange(1, 120)), body)

    def event(self, due: datetime, body: str) -> None:
        """An event the rule puts on the queue: lost, late (out of order) or twice, sometimes."""
        if self.faults.chance("lost_event"):
            return
        if self.faults.chance("out_of_order"):
            due += timedelta(seconds=self.faults.rng.randrange(60, int(LATE_EVENT_MAX.total_seconds())))
        self._push(due, body)
        if self.faults.chance("duplicate_delivery"):
            self._push(due + timedelta(seconds=self.faults.rng.randrange(1, 300)), body)

    def next_due(self) -> datetime | None:
        return self.queue[0].due if self.queue else None

    def deliver(self) -> None:
        """One batch of what is due (the clock at the first one's time)."""
        first = heapq.heappop(self.queue)
        self.clock.now = max(self.clock.now, first.due)
        batch = [first]
        while self.queue and self.queue[0].due <= self.clock.now and len(batch) < WORKER_BATCH:
            batch.append(heapq.heappop(self.queue))
        self._invoke(batch)
        self.collect()
        self.step()

    def _invoke(self, batch: list[Delivery]) -> None:
        records = [sqs_event([d.body], d.receives + 1)["Records"][0] for d in batch]
        crash_after = self.faults.rng.randrange(len(batch)) if self.faults.chance("crash_mid_batch") else None
        try:
            with captured(self.output), self._crashing(crash_after):
                response = self.handlers.work_handler({"Records": records}, FakeContext())
        except LambdaCrash:
            for delivery in batch:
                self._back(delivery, self.clock.now + VISIBILITY)
            return
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for delivery, record in zip(batch, records, strict=True):
            if record["messageId"] in failed:
                # The worker shortened the record's visibility to its back-off (moto cannot: the receipt handle is
                # the harness's; the same delay is applied here).
                self._back(delivery, self.clock.now + timedelta(seconds=backoff_seconds(delivery.receives + 1)))

    def _back(self, delivery: Delivery, due: datetime) -> None:
        receives = delivery.receives + 1
        if receives >= self.max_receives:
            self.dead_letters.append(delivery.body)
            return
        self._push(due, delivery.body, receives)

    @contextmanager
    def _crashing(self, after: int | None) -> Iterator[None]:
        if after is None:
            yield
            return
        original = self.handlers.handle_item
        handled = [0]

        def handle_item(*args: Any) -> Any:
            if handled[0] >= after:
                raise LambdaCrash
            handled[0] += 1
            return original(*args)

        with mock.patch.object(self.handlers, "handle_item", handle_item):
            yield

    def run_until(self, until: datetime, before_each: Callable[[], datetime | None] | None = None) -> None:
        """Deliver everything due before `until` (and whatever `before_each` schedules: it returns its next moment);
        the clock ends at `until`."""
        while True:
            upcoming = before_each() if before_each is not None else None
            due = self.next_due()
            if due is None or due >= until:
                if upcoming is not None and upcoming < until:
                    self.clock.now = max(self.clock.now, upcoming)
                    continue
                break
            if upcoming is not None and upcoming < due:
                self.clock.now = max(self.clock.now, upcoming)
                continue
            self.deliver()
        self.clock.now = max(self.clock.now, until)


class _Sink:
    """Where the handlers' log lines and metrics go during a soak: counted, not kept (a year of them is large)."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)

    def flush(self) -> None:
        return None

    def getvalue(self) -> str:
        return ""


def _due(message: dict[str, Any], now: datetime) -> datetime:
    ms = message.get("_delayed_until_ms") or 0
    return max(now, datetime.fromtimestamp(ms / 1000, UTC)) if ms else now


class Alerts:
    """The alert topic's messages, read as they come (the topic keeps every one)."""

    def __init__(self) -> None:
        self.seen = 0
        self.bodies: list[dict[str, Any]] = []

    def new(self) -> list[dict[str, Any]]:
        topic = next(t for t in sns_backends[ACCOUNT][REGION].topics.values() if t.name.endswith("-alerts"))
        fresh = [json.loads(n[1]) for n in topic.sent_notifications[self.seen :]]
        self.seen += len(fresh)
        self.bodies.extend(fresh)
        return fresh


def checked(report: ModuleReport, invariant: str, step: int, holds: bool, detail: Callable[[], str]) -> None:
    """One check; a violation is appended once (a broken invariant stays broken for the steps after it)."""
    report.checks += 1
    if not holds:
        found = detail()
        if not any(v.invariant == invariant and v.detail == found for v in report.violations[-50:]):
            report.violations.append(Violation(report.module, invariant, step, found))


# ---------------------------------------------------------------------------------------------------------------
# The instance-scheduler world
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Slot:
    action: str
    slot: str
    at: datetime
    # instance id -> the state changes seen during this slot ("stop" / "start")
    changes: dict[str, list[str]] = field(default_factory=dict)


class Fleet:
    """The account: managed instances (tagged), outsiders, and what the invariants need to know of them."""

    def __init__(self, fidelity: MotoFidelity, sources: int) -> None:
        self.fidelity = fidelity
        self.ec2 = boto3.client("ec2", region_name=REGION)  # the soak's own client: never faulted
        self.managed: set[str] = set(run_instances(self.ec2, sources, TAGS))
        self.outsiders: dict[str, str] = {}
        for tag, n in OUTSIDERS.items():
            for instance_id in run_instances(self.ec2, n, {"Schedule": tag} if tag else None):
                self.outsiders[instance_id] = "running"
        self.terminated: set[str] = set()
        self.launched_at: dict[str, datetime] = {}  # replacements: instance id -> when launched
        self.states: dict[str, str] = self.read()
        self.announced: set[tuple[str, datetime]] = set()

    def read(self) -> dict[str, str]:
        backend = self.fidelity.backend(REGION)
        return {i.id: i._state.name for i in backend.all_instances()}

    def terminate(self, instance_id: str) -> str:
        """Terminated mid-run (by its owner, a Spot interruption, a failed host); a replacement launched with the
        schedule's tag, as an Auto Scaling group would. Returns the replacement."""
        self.ec2.terminate_instances(InstanceIds=[instance_id])
        self.terminated.add(instance_id)
        (replacement,) = run_instances(self.ec2, 1, TAGS)
        self.managed.add(replacement)
        self.launched_at[replacement] = self.fidelity.now()
        return replacement

    def transitions(self) -> list[tuple[datetime, str]]:
        """State events due: one per state change under way, at its end (EventBridge emits `stopped` / `running`)."""
        due: list[tuple[datetime, str]] = []
        for instance_id, record in list(self.fidelity.instance_transitions.items()):
            key = (instance_id, record.started)
            if key in self.announced:
                continue
            self.announced.add(key)
            end = record.started + record.duration + timedelta(seconds=1)
            due.append((end, state_event(instance_id, record.final)))
        return due


DIRECTION = {"stopping": "stop", "stopped": "stop", "pending": "start", "running": "start"}


class SchedulerSoak:
    def __init__(self, seed: int, days: int, sources: int, stop_at_step: int | None, rates: dict[str, float]) -> None:
        self.report = ModuleReport(MODULE, seed, days, sources)
        self.days = days
        self.sources = sources
        self.stop_at_step = stop_at_step
        self.faults = Faults(seed, rates)
        self.clock = Clock(FIRST_DAY)
        self.alerts = Alerts()
        self.not_in_state: Counter[tuple[str, str]] = Counter()  # (instance, slot) -> alerts
        self.alerted: set[tuple[str, str]] = set()  # (instance, slot) alerted some way; slot "*" for any slot
        self.current: Slot | None = None
        self._pending_chaos: list[tuple[datetime, str]] = []

    # -- invariants --------------------------------------------------------------------------------------------

    def check(self, step: int) -> None:
        fleet = self.fleet
        states = fleet.read()
        for alert in self.alerts.new():
            self._note_alert(alert)
        for instance_id, expected in fleet.outsiders.items():
            checked(
                self.report,
                "unmanaged instances never touched",
                step,
                states.get(instance_id) == expected,
                lambda i=instance_id, e=expected: f"{i} (outside the policy) is {states.get(i)}, was {e}",
            )
        slot = self.current
        if slot is not None:
            for instance_id in fleet.managed:
                before, now = fleet.states.get(instance_id), states.get(instance_id)
                if before is None or now is None or DIRECTION.get(now) == DIRECTION.get(before):
                    continue  # unchanged, or launched during the slot (a replacement: the next slot's)
                if now in DIRECTION:
                    slot.changes.setdefault(instance_id, []).append(DIRECTION[now])
            for instance_id, changes in slot.changes.items():
                checked(
                    self.report,
                    "no duplicate or contrary action per slot",
                    step,
                    changes == [slot.action],
                    lambda i=instance_id, c=changes: f"{i}: changes {c} during the {slot.action} slot {slot.slot}",
                )
        for (instance_id, slot_name), n in self.not_in_state.items():
            checked(
                self.report,
                "every failure alerted exactly once",
                step,
                n <= 1,
                lambda i=instance_id, s=slot_name, k=n: f"{i}: {k} alerts for slot {s}",
            )
        fleet.states = states
        for due, body in fleet.transitions():
            self.wiring.event(due, body)

    def _note_alert(self, alert: dict[str, Any]) -> None:
        kind = alert.get("alert")
        if kind == NOT_IN_STATE:
            key = (str(alert.get("resource_id")), str(alert.get("slot")))
            self.not_in_state[key] += 1
            self.alerted.add(key)
        elif kind == CANNOT_SCHEDULE:
            self.alerted.add((str(alert.get("resource_id")), "*"))
        elif kind == GIVEN_UP:
            self._note_dead_letter(str(alert.get("body", "")))
        elif kind is not None and "not planned" in str(kind):
            self.alerted.add(("*", str(alert.get("slot"))))

    def _note_dead_letter(self, body: str) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            return
        ids = payload.get("instance_ids") or [payload.get("resource_id")]
        detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
        ids = [*ids, detail.get("instance-id")]
        current = self.current.slot if self.current is not None else "*"
        for instance_id in ids:
            if instance_id:
                # A state event names no slot: it was the current slot's.
                self.alerted.add((str(instance_id), str(payload.get("slot") or current)))

    def end_of_slot(self, slot: Slot) -> None:
        """The slot's outcome, before the next slot: every managed instance in the slot's state, terminated, or
        alerted."""
        for body in self.wiring.dead_letters:
            self._note_dead_letter(body)
        self.wiring.dead_letters.clear()
        for alert in self.alerts.new():
            self._note_alert(alert)
        desired = "stopped" if slot.action == "stop" else "running"
        states = self.fleet.read()
        step = self.report.steps
        for instance_id in sorted(self.fleet.managed):
            state = states.get(instance_id)
            launched = self.fleet.launched_at.get(instance_id)
            ok = (
                state == desired
                or (launched is not None and launched >= slot.at)
                or state in ("shutting-down", "terminated")
                or instance_id in self.fleet.terminated
                or bool({(instance_id, slot.slot), (instance_id, "*"), ("*", slot.slot)} & self.alerted)
            )
            checked(
                self.report,
                "every managed instance ends its slot in the desired state, or alerted",
                step,
                ok,
                lambda i=instance_id, s=state: f"{i} is {s} after the {slot.action} slot {slot.slot}, not alerted",
            )

    # -- the year ----------------------------------------------------------------------------------------------

    def slots(self) -> Iterator[tuple[str, datetime]]:
        for day in range(self.days):
            midnight = FIRST_DAY + timedelta(days=day)
            yield "stop", midnight + STOP_AT
            yield "start", midnight + START_AT

    def run(self, plant: Callable[[SchedulerSoak], None] | None = None) -> ModuleReport:
        """The year; then, for the smoke test, `plant` (a violation made by hand) and every invariant checked again."""
        mock_random.seed(self.report.seed)  # moto's ids: the same seed gives the same run
        with ExitStack() as stack:
            self.fleet = Fleet(stack.enter_context(scheduler_world(self.clock)), self.sources)
            self.wiring = Wiring(
                scheduler_handlers, self.clock, self.faults, self.report, self.check, stop_at_step=self.stop_at_step
            )
            stack.enter_context(self.faults.on_aws_calls(AWS_SERVICES))
            with suppress(StopSoak):
                self._year()
                if plant is not None:
                    plant(self)
                    self.final_checks()
        self.report.faults = Counter(self.faults.injected)
        return self.report

    def final_checks(self) -> None:
        self.check(self.report.steps)
        if self.current is not None:
            self.end_of_slot(self.current)

    def _year(self) -> None:
        previous: Slot | None = None
        for action, at in self.slots():
            self.wiring.run_until(at)
            if previous is not None:
                self.end_of_slot(previous)
            slot = Slot(action, format_time(at), at)
            self.current = slot
            self.fleet.states = self.fleet.read()
            self.wiring.schedule({"scheduled_time": slot.slot, "action": action})
            self._chaos(at)
            previous = slot
        self.wiring.run_until(self.clock.now + timedelta(hours=6))
        if previous is not None:
            self.end_of_slot(previous)

    def _chaos(self, at: datetime) -> None:
        """Instances terminated during the slot: at a random moment of its first 20 minutes."""
        for instance_id in sorted(self.fleet.managed - self.fleet.terminated):
            if self.faults.chance("instance_terminated"):
                moment = at + timedelta(seconds=self.faults.rng.randrange(1, 1200))
                self._pending_chaos.append((moment, instance_id))
        self._pending_chaos.sort()
        self.wiring.run_until(at + timedelta(minutes=25), self._next_chaos)

    def _next_chaos(self) -> datetime | None:
        while self._pending_chaos and self._pending_chaos[0][0] <= self.clock.now:
            _moment, instance_id = self._pending_chaos.pop(0)
            self.fleet.terminate(instance_id)
        return self._pending_chaos[0][0] if self._pending_chaos else None


@contextmanager
def scheduler_world(clock: Clock) -> Iterator[MotoFidelity]:
    """bench/scheduler.py's account settings (modules/instance-scheduler's defaults, office hours in Tokyo, SQS on
    the clock, instances `stopping` and `pending` for the bench's assumed times), every day scheduled (no excluded
    date); yields the fidelity (bench/scheduler.py's `scheduler_account` does not)."""
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True, instance_start_time=START_TIME, instance_stop_time=STOP_TIME) as fidelity,
        patched_env(
            scheduler_function_env(
                infra.queue_url,
                OPS_ALERT_TOPIC_ARN=infra.topic_arn,
                OPS_EXCLUDED_DATES="[]",
                OPS_TARGET_TAGS=json.dumps(TAGS),
            )
        ),
    ):
        install_runtimes(clock, MODULE)
        try:
            yield fidelity
        finally:
            scheduler_handlers.planner_runtime.install(None)
            scheduler_handlers.worker_runtime.install(None)


def soak(
    seed: int, days: int, sources: int, stop_at_step: int | None = None, rates: dict[str, float] | None = None
) -> ModuleReport:
    return SchedulerSoak(seed, days, sources, stop_at_step, rates or RATES).run()
