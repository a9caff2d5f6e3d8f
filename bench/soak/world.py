"""What the soaks of ami-backup, ebs-snapshot and deregister-cleanup share: one simulated account on moto made
faithful, its clock, the work queue driven as the event source mapping drives it, the steps, and the invariants
every module has (deletions, alerts).

The deployed wiring, reproduced:
- the scheduled function (planner or sweeper) is invoked at its slot; a failed invocation is retried as EventBridge
  Scheduler's retry policy does (modules/internal/schedules.tf: 3 retries within an hour); an invocation delivered
  twice is the `lambda_retry` fault;
- the work queue is moto's SQS on the simulated clock (`faithful_aws(clock, sqs_time=True)`): delays, visibility
  timeouts (6 x the function timeout), the worker's ChangeMessageVisibility back-off and the redrive to the
  dead-letter queue after 10 receives are SQS's own. The event source mapping receives batches of up to 10 visible
  messages, invokes the worker, and deletes what it did not report failed; a worker that dies mid-batch
  (`crash_mid_batch`: it handled the first k records, then the invocation failed) has the whole batch redelivered;
- EventBridge puts state events on the same queue, each on its own (lost, duplicated or late by the faults).

One step is one invocation: a scheduled one or a worker batch. After each, the invariants are checked.
"""

from __future__ import annotations

import heapq
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, ClassVar
from unittest import mock
from urllib.parse import parse_qs

import boto3
from aws_harness import ACCOUNT, ALERT_TOPIC, LEDGER_TABLE, QUEUE, REGION, START, Clock, FakeContext
from moto.dynamodb.models import dynamodb_backends
from moto.moto_api._internal import mock_random
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from tests.support.moto_fidelity import MotoFidelity, faithful_aws, fast_tags

from ops_automation.core import image_links, tagging
from ops_automation.core.clients import ClientFactory
from ops_automation.core.events import format_time

from ..driver import captured
from ..harness import Infra, installed, moto_account
from .faults import Faults
from .report import ModuleReport, Violation

SERVICES = ("ec2", "sqs", "dynamodb", "sns")  # every service the three modules' functions call
FUNCTION_TIMEOUT_S = 300  # modules/*/main.tf: both functions
QUEUE_VISIBILITY_S = 6 * FUNCTION_TIMEOUT_S  # modules/internal/queue.tf
MAX_RECEIVES = 10  # modules/internal/main.tf: maxReceiveCount
BATCH = 10  # modules/internal/functions.tf: the event source mapping's batch size
SCHEDULE_RETRIES = 3  # modules/internal/schedules.tf: retry_policy.maximum_retry_attempts
SCHEDULE_RETRY_DELAY = timedelta(minutes=1)
# E7: how long DeleteSnapshot answers InvalidSnapshot.InUse after DeregisterImage. AWS gives no figure; longer
# than the first purge's 5-minute delay, so the soak meets it (the fidelity's default, 60 s, never would).
IN_USE_WINDOW = timedelta(minutes=7)
DLQ = "ops-automation-nightly-dlq"


class StopSoak(Exception):
    """`--stop-at-step` reached."""


@dataclass(frozen=True)
class Deletion:
    """A DeregisterImage or DeleteSnapshot a handler sent, with its target as it was just before."""

    step: int
    operation: str
    resource_id: str
    tags: dict[str, str]
    in_use_by: tuple[str, ...]  # registered (or disabled, or binned) AMIs other than its own that mapped it


@dataclass
class World:
    """One soak run of one module. Subclasses set `module`, build the account in `setup`, drive a day in `day`,
    react to what the handlers made in `observe`, and add their invariants in `check_module`."""

    module: str
    seed: int
    days: int
    sources: int
    stop_at_step: int | None = None
    rates: dict[str, float] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.report = ModuleReport(self.module, self.seed, self.days, self.sources)
        self.faults = Faults(self.seed, self.rates)
        self.report.faults = self.faults.injected
        self.clock = Clock(START - timedelta(hours=1))  # setup happens before the first slot
        self.step_no = 0
        self._timeline: list[tuple[datetime, int, Callable[[], None]]] = []
        self._sequence = 0
        self._reported: set[tuple[str, str]] = set()
        self.pending_deletions: list[Deletion] = []
        self.deletions: list[Deletion] = []  # confirmed: the resource is gone
        self.alerts: list[dict[str, Any]] = []
        self.alert_counts: Counter[tuple[str, str]] = Counter()
        self.ledger: dict[tuple[str, str], str] = {}
        self._touched: set[tuple[str, str]] = set()
        self.outcomes: Counter[str] = Counter()  # not faults: what happened (function errors, dead letters...)
        self.deregistered_at: dict[str, datetime] = {}
        self.generations = int(self.env.get("OPS_GENERATIONS", "3"))
        self.faults_after_step: list[int] = []  # faults injected so far, after each step: a replay must match it

    # -- the account ----------------------------------------------------------------------------------------------

    @contextmanager
    def account(self) -> Iterator[None]:
        mock_random.seed(self.seed)  # moto's ids and message ids: the same run gives the same ids
        with ExitStack() as stack:
            self.infra: Infra = stack.enter_context(moto_account())
            self.fidelity: MotoFidelity = stack.enter_context(
                faithful_aws(self.clock, sqs_time=True, snapshot_in_use_window=IN_USE_WINDOW)
            )
            stack.enter_context(fast_tags())  # moto's tag lookup scans every tag of the account: same answers, faster
            stack.enter_context(installed(self.infra, self.clock, module=self.module, **self.env))
            stack.enter_context(self._recording())
            self.ec2 = boto3.client("ec2", region_name=REGION)  # the soak's own: never faulted, never recorded
            self.sqs = boto3.client("sqs", region_name=REGION)
            self.dynamodb = boto3.client("dynamodb", region_name=REGION)
            self.backend = self.fidelity.backend(REGION)
            self._configure_queue()
            yield

    def _configure_queue(self) -> None:
        dlq_url = self.sqs.create_queue(QueueName=DLQ)["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
        self.sqs.set_queue_attributes(
            QueueUrl=self.infra.queue_url,
            Attributes={"VisibilityTimeout": str(QUEUE_VISIBILITY_S), "RedrivePolicy": redrive},
        )
        self.dlq_url = dlq_url

    @contextmanager
    def _recording(self) -> Iterator[None]:
        """Every client the handlers make reports its deletions and ledger writes (botocore's
        `before-parameter-build`: once per call, with the call's parameters)."""
        original = ClientFactory.client
        hooked: set[int] = set()

        def client(factory: ClientFactory, service: str, *args: Any, **kwargs: Any) -> Any:
            made = original(factory, service, *args, **kwargs)
            if id(made) not in hooked:
                hooked.add(id(made))
                made.meta.events.register("before-parameter-build.ec2.DeregisterImage", self._before_deregister)
                made.meta.events.register("before-parameter-build.ec2.DeleteSnapshot", self._before_delete_snapshot)
                for operation in ("PutItem", "UpdateItem", "DeleteItem"):
                    made.meta.events.register(f"before-parameter-build.dynamodb.{operation}", self._before_ledger_write)
            return made

        with mock.patch.object(ClientFactory, "client", client):
            yield

    def _before_deregister(self, params: dict[str, Any], **_: Any) -> None:
        image_id = params["ImageId"]
        ami = self.backend.amis.get(image_id)
        mapped = tuple(self.fidelity.snapshots_mapped_by(ami)) if ami is not None else ()
        self._record("DeregisterImage", image_id, ())
        if params.get("DeleteAssociatedSnapshots"):
            for snapshot_id in mapped:
                self._record("DeleteSnapshot", snapshot_id, (image_id,))

    def _before_delete_snapshot(self, params: dict[str, Any], **_: Any) -> None:
        snapshot_id = params["SnapshotId"]
        self.before_snapshot_deletion(snapshot_id)
        self._record("DeleteSnapshot", snapshot_id, ())

    def before_snapshot_deletion(self, snapshot_id: str) -> None:
        """A module's chance to race the deletion (the InUse race); nothing by default."""

    def _record(self, operation: str, resource_id: str, exclude: tuple[str, ...]) -> None:
        tags = dict(self.backend.tags.get(resource_id, {}))
        in_use = () if operation != "DeleteSnapshot" else self.images_using(resource_id, exclude)
        self.pending_deletions.append(Deletion(self.step_no, operation, resource_id, tags, in_use))

    def _before_ledger_write(self, params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key") or params.get("Item") or {}
        if "pk" in key and "sk" in key:
            self._touched.add((key["pk"]["S"], key["sk"]["S"]))

    def images_using(self, snapshot_id: str, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
        """AMIs that hold `snapshot_id`: registered or disabled (the backend's), or in the Recycle Bin."""
        holders = [
            ami.id
            for ami in self.backend.amis.values()
            if ami.id not in exclude and snapshot_id in self.fidelity.snapshots_mapped_by(ami)
        ]
        binned = self.fidelity.recycle_bin.get((ACCOUNT, REGION), {})
        holders += [
            image_id
            for image_id, entry in binned.items()
            if entry.ami.ebs_snapshot.id == snapshot_id and entry.exits > self.clock.now  # past it, AWS deleted it
        ]
        return tuple(holders)

    # -- time and the world's own actions -------------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        """Something AWS (not a handler) does at `when`: a state change, an event put on the queue."""
        self._sequence += 1
        heapq.heappush(self._timeline, (when, self._sequence, action))

    def _run_due_actions(self) -> None:
        while self._timeline and self._timeline[0][0] <= self.clock.now:
            _, _, action = heapq.heappop(self._timeline)
            action()

    def emit_event(self, body: str, after: timedelta) -> None:
        """EventBridge puts a state event on the work queue `after` the change, unless the faults lose, repeat or
        delay it (out of order: after later events and the delayed checks)."""
        if self.faults.chance("lost_event"):
            return
        due = self.clock.now + after
        if self.faults.chance("out_of_order_event"):
            due += timedelta(minutes=self.faults.rng.uniform(60, 30 * 60))
        self.at(due, lambda: self._put(body))
        if self.faults.chance("duplicate_event"):
            self.at(due + timedelta(minutes=self.faults.rng.uniform(0, 180)), lambda: self._put(body))

    def _put(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.infra.queue_url, MessageBody=body)

    def _next_visible(self) -> datetime | None:
        queue = sqs_backends[ACCOUNT][REGION].queues[QUEUE]
        times = [max(message.visible_at, message.delayed_until) for message in queue._messages]
        return datetime.fromtimestamp(min(times) / 1000, UTC) if times else None

    def run_until(self, until: datetime) -> None:
        """The world's actions and the worker on every batch that comes due, until `until`."""
        while True:
            self._run_due_actions()
            received = self.sqs.receive_message(
                QueueUrl=self.infra.queue_url,
                MaxNumberOfMessages=BATCH,
                VisibilityTimeout=QUEUE_VISIBILITY_S,
                AttributeNames=["All"],
            ).get("Messages", [])
            if received:
                self.work_batch(received)
                continue
            candidates = [t for t in (self._next_visible(), self._timeline[0][0] if self._timeline else None) if t]
            upcoming = min(candidates, default=None)
            if upcoming is None or upcoming > until:
                self.clock.now = max(self.clock.now, until)
                self._run_due_actions()
                return
            # moto's visibility is in milliseconds: a hair past it, so the message is visible
            self.clock.now = max(self.clock.now, upcoming + timedelta(milliseconds=1))

    # -- invocations (steps) --------------------------------------------------------------------------------------

    def step(self, what: str, action: Callable[[], None]) -> None:
        self.step_no = self.report.steps = self.report.steps + 1
        self.outcomes[what] += 1
        with self.faults.on_aws_calls(SERVICES), captured(io.StringIO()):
            action()
        self.observe()
        self.check()
        self.faults_after_step.append(sum(self.faults.injected.values()))
        if self.stop_at_step is not None and self.step_no >= self.stop_at_step:
            raise StopSoak

    def scheduled(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        """The scheduled function at its slot, retried on failure as the schedule's retry policy does; delivered
        twice now and then (`lambda_retry`)."""
        event = {"scheduled_time": format_time(self.clock.now)}
        for attempt in range(1 + SCHEDULE_RETRIES):
            failed: list[BaseException] = []

            def invoke(failed: list[BaseException] = failed) -> None:
                try:
                    handler(event, FakeContext())
                except Exception as error:  # the function failed: the schedule retries it
                    failed.append(error)

            self.step("scheduled", invoke)
            if not failed:
                if attempt == 0 and self.faults.chance("lambda_retry"):
                    self.step("scheduled", invoke)
                return
            self.outcomes["scheduled function error"] += 1
            self.clock.now += SCHEDULE_RETRY_DELAY
        self.outcomes["scheduled invocation dropped"] += 1

    def work_batch(self, messages: list[dict[str, Any]]) -> None:
        records = [_record(message) for message in messages]

        def invoke() -> None:
            if self.faults.chance("crash_mid_batch"):
                # The function dies after the first k records (timeout, out of memory): no response, so the event
                # source mapping deletes nothing and the whole batch comes back after the visibility timeout.
                handled = self.faults.rng.randrange(len(records) + 1)
                if handled:
                    self._invoke_worker(records[:handled])
                return
            response = self._invoke_worker(records)
            if response is None:
                return
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.infra.queue_url, ReceiptHandle=message["ReceiptHandle"])

        self.step("worker", invoke)

    def _invoke_worker(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return dict(self.handlers.work_handler({"Records": records}, FakeContext()))
        except Exception:  # a function error: the batch comes back whole
            self.outcomes["worker function error"] += 1
            return None

    # -- what a module provides -----------------------------------------------------------------------------------

    handlers: ClassVar[ModuleType]  # the module's `ops_automation.<module>.handlers`

    def setup(self) -> None:
        raise NotImplementedError

    def day(self, day: int) -> None:
        raise NotImplementedError

    def observe(self) -> None:
        """React to what the step's handlers did (new images or snapshots get their fate)."""

    def check_module(self) -> None:
        raise NotImplementedError

    def owns(self, tags: dict[str, str]) -> bool:
        """Whether the module may delete a resource with these tags."""
        raise NotImplementedError

    def alert_subjects(self, alert: dict[str, Any]) -> list[str]:
        """What an alert is about (a ledger resource id, an instance and slot, a message id...): no two alerts may
        be about the same thing, and every failure in the ledger must be the subject of one."""
        return [json.dumps(alert, sort_keys=True, default=str)]

    # -- the run --------------------------------------------------------------------------------------------------

    @contextmanager
    def opened(self) -> Iterator[World]:
        """The account set up, before the first day (the smoke test plants violations in it afterwards)."""
        with self.account():
            self.setup()
            yield self

    def run_days(self) -> None:
        try:
            for day in range(self.days):
                self.day(day)
            self.finish()
        except StopSoak:
            pass

    def run(self) -> ModuleReport:
        with self.opened():
            self.run_days()
        return self.report

    def finish(self) -> None:
        """After the last day: a day more for what is in flight, then the end-of-run checks."""
        self.run_until(self.clock.now + timedelta(days=1))

    # -- invariants -----------------------------------------------------------------------------------------------

    def violate(self, invariant: str, key: str, detail: str) -> None:
        """Each violation once (a lasting one is reported at the step it appeared)."""
        if (invariant, key) in self._reported:
            return
        self._reported.add((invariant, key))
        self.report.violations.append(Violation(self.module, invariant, self.step_no, detail))

    def check(self) -> None:
        self._refresh_ledger()
        self._read_alerts()
        for invariant in (self.check_deletions, self.check_alerts, self.check_module):
            self.report.checks += 1
            invariant()

    def _refresh_ledger(self) -> None:
        """The ledger items the step wrote, read from the emulator's table (a scan per step would grow with the run)."""
        backend = dynamodb_backends[ACCOUNT][REGION]
        for pk, sk in sorted(self._touched):
            item = backend.get_item(LEDGER_TABLE, {"pk": {"S": pk}, "sk": {"S": sk}})
            state = item.attrs.get("state") if item is not None else None
            if state is None:
                self.ledger.pop((pk, sk), None)
            else:
                self.ledger[(pk, sk)] = str(state.value)
        self._touched.clear()

    def _read_alerts(self) -> None:
        topic = next(t for t in sns_backends[ACCOUNT][REGION].topics.values() if t.name == ALERT_TOPIC)
        for notification in topic.sent_notifications[len(self.alerts) :]:
            alert = json.loads(notification[1])
            self.alerts.append(alert)
            for subject in self.alert_subjects(alert):
                self.alert_counts[(str(alert.get("alert")), subject)] += 1

    def check_deletions(self) -> None:
        """Nothing without the ownership tags deleted; no snapshot deleted while an AMI used it."""
        for deletion in self.pending_deletions:
            gone = (
                deletion.resource_id not in self.backend.amis
                if deletion.operation == "DeregisterImage"
                else deletion.resource_id not in self.backend.snapshots
            )
            if not gone:
                continue
            self.deletions.append(deletion)
            if deletion.operation == "DeregisterImage":
                self.deregistered_at.setdefault(deletion.resource_id, self.clock.now)
            if not self.owns(deletion.tags):
                self.violate(
                    "nothing without ownership tags deleted",
                    deletion.resource_id,
                    f"{deletion.operation} {deletion.resource_id} (step {deletion.step}) had tags {deletion.tags}",
                )
            if deletion.in_use_by:
                self.violate(
                    "nothing in use deleted",
                    deletion.resource_id,
                    f"{deletion.resource_id} deleted while AMI(s) {list(deletion.in_use_by)} used it",
                )
        self.pending_deletions = []

    def check_alerts(self) -> None:
        """Every failure recorded in the ledger alerted, and no failure alerted twice, except where AWS took a
        publish and lost its answer (the call then fails and is retried: SNS has no idempotency token)."""
        lost_publishes: Counter[tuple[str, str]] = Counter()
        for body in self.faults.unanswered_bodies.get("sns.Publish", []):
            message = parse_qs(body.decode() if isinstance(body, bytes) else str(body)).get("Message", ["{}"])[0]
            alert = json.loads(message)
            for subject in self.alert_subjects(alert):
                lost_publishes[(str(alert.get("alert")), subject)] += 1
        for (what, subject), alerts in self.alert_counts.items():
            if alerts > 1 + lost_publishes[(what, subject)]:
                self.violate(
                    "every failure alerted exactly once",
                    f"{what}|{subject}",
                    f"{what!r} about {subject}: {alerts} alerts",
                )
        alerted = {subject for _what, subject in self.alert_counts}
        for (_pk, resource_id), state in self.ledger.items():
            if state == "failed" and resource_id not in alerted:
                self.violate(
                    "every failure alerted exactly once",
                    resource_id,
                    f"{resource_id} is failed in the ledger and was never alerted",
                )

    # -- reading the account --------------------------------------------------------------------------------------

    def tags_of(self, resource_id: str) -> dict[str, str]:
        return dict(self.backend.tags.get(resource_id, {}))

    def image_of_snapshot(self, snapshot: Any) -> str | None:
        return image_links.image_of({"Description": snapshot.description, "Tags": []})

    @staticmethod
    def owned_by(tags: dict[str, str], policy: str | None) -> bool:
        if tags.get(tagging.MANAGED_BY) != tagging.MANAGED_BY_VALUE:
            return False
        return policy is None or tags.get(tagging.POLICY) == policy


def _record(message: dict[str, Any]) -> dict[str, Any]:
    """The SQS record the event source mapping hands the function for a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"],
            "SentTimestamp": message["Attributes"]["SentTimestamp"],
        },
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}",
        "awsRegion": REGION,
    }
