"""Throttled wall time against the EC2 token-bucket minimum (issue 14, "Benchmark", second bullet).

EC2 throttles each API action of an account and region with its own token bucket ("Request throttling for the
Amazon EC2 API", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): a request takes one
token, a request that finds the bucket empty is answered `RequestLimitExceeded`, and the bucket refills at a fixed
rate up to its maximum capacity. `Ec2Buckets` holds those buckets with the published sizes and refill rates (and the
resource buckets of Start/Stop/Run/TerminateInstances, one token per instance), on a simulated clock.

Everything runs on that simulated clock (never this machine's): every HTTP attempt costs the cost model's latency
(150 ms EC2, 20 ms other services), botocore's real retries (standard, the attempts of `ops_automation.core.clients`;
the baseline adaptive, max_attempts 10) sleep on it, and the Lambda workers run concurrently on it: each invocation is
a thread, and only the one whose simulated time is earliest runs (`SimScheduler`), so the buckets see requests in
the order of simulated time. The work queue is the event source mapping's: batches of up to 10 visible records, at
most `CONCURRENCY` invocations at once (the modules' `worker_max_concurrency` default, the event source mapping's
maximum concurrency), the worker's ChangeMessageVisibility back-off honoured, receives counted, the DLQ after 10.

Two ways to run a cycle:
- `real`: the module's own handlers on moto (small fleets; moto slows past a few dozen instances at steady state).
- `replay`: each record's AWS calls, recorded from the real handlers on moto at a small fleet, replayed through real
  botocore clients whose requests are answered in-process (no moto), inside the real `core.worker.consume` (its
  deferral after a throttle, its time budget); a redelivered record resumes at its first call not yet answered (the
  handlers are idempotent: they find what an earlier receive made). `check_replay` runs both at the recorded fleet with
  the buckets scaled down (so the throttled path is exercised) and compares calls, wall time and lost items.

The minimum of a phase is the larger of its latency bound (the same phase run with no bucket and no planner pacing)
and the time the buckets need to admit its EC2 calls: for each action, (calls - capacity) / refill rate. Phases are
apart in time (the AMIs and snapshots take minutes to complete), so every phase starts with full buckets.

Modules: ami-backup (create batch, then the `available` events; replay checked against moto) and ebs-snapshot in
volume mode (paced creates, snapshot events, delayed checks). The others are reported as not run (`NOT_RUN`).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import itertools
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs

import boto3
from aws_harness import MOTO_ENVIRONMENT, Clock, FakeContext, ami_event, sqs_event, take_messages, work_body
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from botocore import UNSIGNED
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import MockRawResponse
from tests.support.moto_fidelity import faithful_aws

from ops_automation.ami_backup import handlers as ami_handlers
from ops_automation.core import worker as worker_module
from ops_automation.core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS, retry_config
from ops_automation.core.events import format_time
from ops_automation.core.worker import consume
from ops_automation.ebs_snapshot import handlers as ebs_handlers

from . import ebs, throttle
from .baseline import ADAPTIVE, Baseline, EbsBaseline
from .cost import LatencyModel
from .driver import Driver, EbsDriver, captured
from .harness import (
    THROTTLED,
    Network,
    SimClock,
    _throttled_response,
    installed,
    moto_account,
    patched_env,
    routed,
    simulated_time,
)

SOURCE = "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html"
LATENCY = LatencyModel()
SEED = 14
TIMEOUT_S = 300  # modules/*/main.tf: planner and worker of ami-backup
BUDGET_SHARE = 0.8  # no run may come within 20 % of its timeout
TARGET_RATIO = 1.3
# Read now: botocore rewrites a config's `max_attempts` in place when it makes a client with it.
BASELINE_RETRIES = f"{ADAPTIVE.retries['mode']}, max_attempts {ADAPTIVE.retries['max_attempts']}"
CONCURRENCY = 5  # modules/*/variables.tf: worker_max_concurrency default (the event source mapping's maximum)
BATCH = 10  # modules/internal/functions.tf: batch_size
MAX_RECEIVES = 10  # modules/internal/queue.tf: maxReceiveCount
QUEUE_VISIBILITY_S = 6 * TIMEOUT_S
FLEETS = (10, 100, 1_000, 10_000)
RECORDED_FLEET = 10
GENERATIONS = 3
PAGE = 1000  # instances per DescribeInstances page (the planner's)
Q = "https://sqs.us-east-1.amazonaws.com/123456789012/work"  # replays: any URL, nothing leaves the process


# ---------------------------------------------------------------------------------------------------------------
# The buckets
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    capacity: float
    refill_per_s: float


# Request token buckets by category (the page's first table).
NON_MUTATING = Limit(100, 20)
UNFILTERED_NON_MUTATING = Limit(50, 10)  # listed actions, asked with neither a filter nor pagination
MUTATING = Limit(50, 5)
RESOURCE_INTENSIVE = Limit(50, 5)
UNFILTERED_ACTIONS = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)
RESOURCE_INTENSIVE_ACTIONS = frozenset(
    {
        "AcceptVpcPeeringConnection",
        "AuthorizeSecurityGroupIngress",
        "CancelSpotInstanceRequests",
        "CreateKeyPair",
        "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection",
        "RevokeSecurityGroupIngress",
        "RequestSpotInstances",
    }
)
# "Uncategorized actions": their own sizes and rates (those the modules call). CreateImage and CopySnapshot are not
# listed: they are plain mutating actions; StopInstances is mutating with a resource bucket.
UNCATEGORIZED = {
    "CopyImage": Limit(100, 1),
    "CreateSnapshot": Limit(100, 5),
    "CreateSnapshots": Limit(100, 5),
    "CreateTags": Limit(100, 10),
    "DeleteSnapshot": Limit(100, 5),
    "DeleteTags": Limit(100, 10),
    "DeregisterImage": Limit(100, 5),
    "ModifyImageAttribute": Limit(100, 5),
    "ModifySnapshotAttribute": Limit(100, 5),
    "RunInstances": Limit(5, 2),
    "StartInstances": Limit(5, 2),
    "TerminateInstances": Limit(100, 5),
    "CreateVolume": Limit(100, 5),
    "DeleteVolume": Limit(100, 5),
}
# Resource token buckets: one token per instance the request names.
RESOURCE = {
    "RunInstances": Limit(1000, 2),
    "TerminateInstances": Limit(1000, 20),
    "StartInstances": Limit(1000, 2),
    "StopInstances": Limit(1000, 20),
}
NON_MUTATING_PREFIXES = ("Describe", "List", "Search", "Get")


def request_limit(action: str, filtered_or_paginated: bool) -> tuple[str, Limit]:
    """The request bucket an EC2 request draws from: its key and limit."""
    if action in UNCATEGORIZED:
        return action, UNCATEGORIZED[action]
    if action in UNFILTERED_ACTIONS and not filtered_or_paginated:
        return f"{action} (unfiltered)", UNFILTERED_NON_MUTATING
    if action.startswith(NON_MUTATING_PREFIXES):
        return action, NON_MUTATING
    if action in RESOURCE_INTENSIVE_ACTIONS:
        return action, RESOURCE_INTENSIVE
    return action, MUTATING


@dataclass
class TokenBucket:
    limit: Limit
    scale: float = 1.0  # < 1 shrinks capacity and rate alike (the replay check exercises throttling at 10 sources)
    tokens: float = -1.0
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    @property
    def capacity(self) -> float:
        return self.limit.capacity * self.scale

    @property
    def rate(self) -> float:
        return self.limit.refill_per_s * self.scale

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def available(self, now: float, amount: float = 1) -> bool:
        self._refill(now)
        return self.tokens + 1e-9 >= amount

    def take(self, now: float, amount: float = 1) -> None:
        self._refill(now)
        self.tokens -= amount


@dataclass
class Ec2Buckets:
    """The account's EC2 buckets in one region. A refused request takes no token."""

    scale: float = 1.0
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    admitted: Counter[str] = field(default_factory=Counter)  # by request bucket key
    resources: Counter[str] = field(default_factory=Counter)  # by resource bucket key
    refused: Counter[str] = field(default_factory=Counter)

    def _bucket(self, key: str, limit: Limit) -> TokenBucket:
        if key not in self.buckets:
            self.buckets[key] = TokenBucket(limit, self.scale)
        return self.buckets[key]

    def admit(self, now: float, action: str, filtered_or_paginated: bool = True, instances: int = 0) -> bool:
        key, limit = request_limit(action, filtered_or_paginated)
        request = self._bucket(key, limit)
        resource = self._bucket(f"{action} (instances)", RESOURCE[action]) if action in RESOURCE else None
        amount = max(1, instances)
        if not request.available(now) or (resource is not None and not resource.available(now, amount)):
            self.refused[key] += 1
            return False
        request.take(now)
        self.admitted[key] += 1
        if resource is not None:
            resource.take(now, amount)
            self.resources[f"{action} (instances)"] += amount
        return True


def needed_bucket_s(calls: Sequence[Call], scale: float = 1.0) -> float:
    """The time full buckets need to admit every EC2 call of `calls` (all a phase's records need, whether or not
    the run got them admitted): the slowest bucket's (calls - capacity) / refill rate."""
    needed: Counter[str] = Counter()
    limits: dict[str, Limit] = {}
    for call in calls:
        if call.service != "ec2":
            continue
        filtered = any(key in call.params for key in ("Filters", "MaxResults", "NextToken"))
        key, limit = request_limit(call.operation, filtered)
        needed[key] += 1
        limits[key] = limit
        if call.operation in RESOURCE:
            resource_key = f"{call.operation} (instances)"
            needed[resource_key] += max(1, len(call.params.get("InstanceIds", [])))
            limits[resource_key] = RESOURCE[call.operation]
    return max(
        (max(0.0, n - limits[k].capacity * scale) / (limits[k].refill_per_s * scale) for k, n in needed.items()),
        default=0.0,
    )


def _ec2_request(body: bytes | str | None) -> tuple[str, bool, int]:
    """Action, whether the request filters or pages, and the instances it names (EC2 query protocol)."""
    text = body.decode() if isinstance(body, bytes) else (body or "")
    fields = parse_qs(text)
    action = fields.get("Action", [""])[0]
    filtered = any(k.startswith(("Filter.", "MaxResults", "NextToken")) for k in fields)
    instances = sum(1 for k in fields if k.startswith("InstanceId."))
    if action == "RunInstances":
        instances = int(fields.get("MaxCount", ["1"])[0])
    return action, filtered, instances


# ---------------------------------------------------------------------------------------------------------------
# Simulated time shared by concurrent invocations
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Task:
    resume: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    error: BaseException | None = None


class SimScheduler(SimClock):
    """A simulated clock for concurrent work: each task is a thread, and only the task whose wake-up time is the
    earliest runs; `sleep` in a task hands control back. Outside a task, `sleep` just advances the clock."""

    def __init__(self) -> None:
        super().__init__(LATENCY.other_call_s)
        self._heap: list[tuple[float, int, Task]] = []
        self._order = itertools.count()
        self._yielded = threading.Event()
        self._local = threading.local()

    def sleep(self, seconds: float) -> None:
        task: Task | None = getattr(self._local, "task", None)
        if task is None:
            super().sleep(seconds)
            return
        heapq.heappush(self._heap, (self.now + max(0.0, float(seconds)), next(self._order), task))
        task.resume.clear()
        self._yielded.set()
        task.resume.wait()

    def spawn(self, work: Callable[[], None]) -> Task:
        """Start `work` now (it runs when `step` reaches it)."""
        task = Task()

        def run() -> None:
            self._local.task = task
            task.resume.wait()
            try:
                work()
            except BaseException as error:  # raised again by `step`, in the loop: not lost in a thread
                task.error = error
            finally:
                task.done = True
                self._yielded.set()

        heapq.heappush(self._heap, (self.now, next(self._order), task))
        threading.Thread(target=run, daemon=True).start()
        return task

    def next_wake(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def step(self) -> None:
        """Run the earliest task until it sleeps again or ends."""
        wake, _order, task = heapq.heappop(self._heap)
        self.now = max(self.now, wake)
        self._yielded.clear()
        task.resume.set()
        self._yielded.wait()
        if task.error is not None:
            raise task.error


# ---------------------------------------------------------------------------------------------------------------
# The network: latency, the buckets, and (for replays) answers without moto
# ---------------------------------------------------------------------------------------------------------------


def _stub_response(protocol: str, operation: str, url: str) -> AWSResponse:
    if protocol == "ec2":
        body = f"<{operation}Response></{operation}Response>"
    elif protocol == "query":
        body = f"<{operation}Response><{operation}Result></{operation}Result></{operation}Response>"
    else:
        body = "{}"
    return AWSResponse(url, 200, {}, MockRawResponse(body.encode()))


@dataclass
class BucketNetwork(Network):
    """Network whose EC2 throttling is the token buckets (None: never throttled). `answer_locally`: every request
    admitted is answered here with an empty success (replays), else it goes on to moto."""

    buckets: Ec2Buckets | None = None
    answer_locally: bool = False

    def _before_send(self, service: str) -> Callable[..., AWSResponse | None]:
        seconds = self.latency.get(service, self.clock.latency)

        def before_send(request: Any, **_: Any) -> AWSResponse | None:
            self.clock.sleep(seconds)
            if service == "ec2" and self.buckets is not None:
                action, filtered, instances = _ec2_request(request.body)
                if not self.buckets.admit(self.clock.now, action, filtered, instances):
                    self.throttled += 1
                    setattr(request, THROTTLED, True)
                    return _throttled_response()
            if self.answer_locally:
                return _stub_response(self._protocols[service], self._operation(request), request.url)
            return None

        return before_send

    _protocols: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def _operation(request: Any) -> str:
        target = request.headers.get("X-Amz-Target")
        if target:
            return str(target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        return parse_qs(request.body.decode() if isinstance(request.body, bytes) else request.body or "")["Action"][0]

    def attach(self, client: Any) -> Any:
        self._protocols[client.meta.service_model.service_name] = client.meta.service_model.protocol
        return super().attach(client)


def network(buckets: Ec2Buckets | None, clock: SimScheduler, answer_locally: bool = False) -> BucketNetwork:
    return BucketNetwork(
        clock=clock, latency={"ec2": LATENCY.ec2_call_s}, buckets=buckets, answer_locally=answer_locally
    )


# ---------------------------------------------------------------------------------------------------------------
# The work queue as the event source mapping drives it, with concurrent invocations
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Message:
    body: str
    visible_at: float = 0.0
    message_id: str = ""
    receives: int = 0
    deleted: bool = False
    dead: bool = False

    @property
    def receipt_handle(self) -> str:
        return f"{self.message_id}#{self.receives}"


@dataclass
class Run:
    seconds: float  # one invocation
    timed_out: bool


Invoke = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class ConcurrentQueue:
    """Batches of up to 10 visible records to at most `concurrency` invocations at once, on the scheduler."""

    clock: SimScheduler
    concurrency: int = CONCURRENCY
    messages: list[Message] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    running: int = 0
    on_time: Callable[[float], None] = lambda _now: None  # keeps the handlers' "now" in step

    # The earliest time a waiting record becomes visible, kept up to date without scanning every record at every
    # step (a step is one HTTP attempt; 10,000 sources make hundreds of thousands): None = to be recomputed.
    _next_visible: float | None = None
    _stale: bool = True

    def hook(self, client: Any) -> None:
        if client.meta.service_model.service_name == "sqs":
            client.meta.events.register(
                "before-parameter-build.sqs.ChangeMessageVisibility", self._change_visibility, unique_id="bench-cmv"
            )

    def _change_visibility(self, params: dict[str, Any], **_: Any) -> None:
        # Read now: another invocation runs while this one waits out the request's latency.
        handle, seconds = params["ReceiptHandle"], int(params["VisibilityTimeout"])
        message = self.messages[int(handle.split("#", 1)[0][1:])]
        if message.receipt_handle == handle:
            message.visible_at = self.clock.now + LATENCY.other_call_s + seconds
            if not self._stale:
                self._next_visible = min(self._next_visible or math.inf, message.visible_at)

    def load(self, bodies: Sequence[str], delays: Sequence[float] | None = None) -> None:
        now = self.clock.now
        self.messages = [
            Message(body, now + (delays[i] if delays else 0.0), message_id=f"m{i}") for i, body in enumerate(bodies)
        ]
        self.runs = []
        self._stale = True

    def pending(self) -> list[Message]:
        return [m for m in self.messages if not m.deleted and not m.dead]

    def _earliest(self) -> float | None:
        if self._stale:
            self._next_visible = min((m.visible_at for m in self.pending()), default=None)
            self._stale = False
        return self._next_visible

    def _batch(self) -> list[Message]:
        batch: list[Message] = []
        for message in sorted(self.pending(), key=lambda m: m.visible_at):
            if message.visible_at > self.clock.now or len(batch) == BATCH:
                break
            if message.receives >= MAX_RECEIVES:
                message.dead = True
            else:
                batch.append(message)
        self._stale = True
        return batch

    def drain(self, invoke: Invoke) -> float:
        """Invoke on visible records until every record is done or dead; returns the simulated time it took."""
        start = self.clock.now
        while True:
            earliest = self._earliest()
            if earliest is not None and earliest <= self.clock.now and self.running < self.concurrency:
                batch = self._batch()  # empty when the earliest was stale or dead-lettered: recomputed next
                if batch:
                    self._start(invoke, batch)
                continue
            wake = self.clock.next_wake()
            due = earliest if earliest is not None and earliest > self.clock.now else None
            if wake is None and due is None:
                if earliest is not None and not self.running:
                    continue  # visible now: taken above
                return self.clock.now - start
            if wake is not None and (due is None or wake <= due):
                self.clock.step()
            else:
                self.clock.now = float(due)  # type: ignore[arg-type]
                self.on_time(self.clock.now)

    def _start(self, invoke: Invoke, batch: list[Message]) -> None:
        self.running += 1
        started = self.clock.now
        self.on_time(started)
        for message in batch:
            message.receives += 1
            message.visible_at = started + QUEUE_VISIBILITY_S  # unless the worker changes it
        context = throttle.SimContext(clock=self.clock, deadline=started + TIMEOUT_S)

        def work() -> None:
            try:
                response = invoke(_event(batch), context)
                seconds = self.clock.now - started
                failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
                timed_out = seconds > TIMEOUT_S  # Lambda would have ended it: the whole batch comes back
                for message in batch:
                    if message.message_id not in failed and not timed_out:
                        message.deleted = True
                self.runs.append(Run(seconds, timed_out))
                self._stale = True
            finally:
                self.running -= 1

        self.clock.spawn(work)


def _event(batch: list[Message]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": str(m.receives), "SentTimestamp": "1714989721000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1::work",
                "awsRegion": "us-east-1",
            }
            for m in batch
        ]
    }


# ---------------------------------------------------------------------------------------------------------------
# Traces: what the real handlers call, per record
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)

    def hook(self, client: Any) -> None:
        service = client.meta.service_model.service_name

        def remember(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append(Call(service, model.name, json.loads(json.dumps(params, default=str))))

        client.meta.events.register(f"before-parameter-build.{service}.*", remember)

    def take(self) -> list[Call]:
        taken, self.calls = self.calls, []
        return taken


@dataclass
class Trace:
    """One cycle of a module at the recorded fleet: the planner's calls, then each phase's calls per record."""

    fleet: int
    planner: list[Call]
    pace_per_second: float | None  # the planner's pacing of the first phase (per-message delays), if any
    phases: dict[str, list[list[Call]]]
    baseline: list[list[Call]]  # the origin design, per instance (its listing is in the first)


def _record_ami_backup(fleet: int) -> Trace:
    env = {"OPS_GENERATIONS": str(GENERATIONS)}
    with throttle._account(fleet) as (infra, clock, _ids, ec2):
        with installed(infra, clock, **env):
            for _day in range(GENERATIONS):
                Driver(clock).day()
                clock.advance(days=1)
        recorder = Recorder()
        net = Network(hooks=[recorder.hook])
        with routed(net), installed(infra, clock, **env), captured(io.StringIO()):
            ami_handlers.plan_handler({"scheduled_time": format_time(clock.now)}, FakeContext())
            planner = recorder.take()
            creates = take_messages()
            assert not any(m["_delayed_until_ms"] for m in creates)  # ami-backup's own planner does not pace
            created: list[list[Call]] = []
            for message in creates:
                ami_handlers.work_handler(sqs_event([work_body(message)]), FakeContext())
                created.append(recorder.take())
            names = [throttle.ami_name(m["policy"], m["instance_id"], m["slot"]) for m in creates]
            images = [throttle._image_named(ec2, name) for name in names]
            take_messages()  # the delayed checks: the events below complete the backups first
            completed: list[list[Call]] = []
            for image_id in images:
                assert image_id is not None
                ami_handlers.work_handler(sqs_event([ami_event(image_id, "available")]), FakeContext())
                completed.append(recorder.take())
            take_messages()
    return Trace(fleet, planner, None, {"create_image": created, "completion": completed}, _record_baseline(fleet))


def _record_baseline(fleet: int) -> list[list[Call]]:
    """The origin's calls per instance on its own moto account at its steady state (its generations present, so
    its inline purge deregisters one AMI and deletes its snapshots per instance)."""
    with throttle._account(fleet) as (infra, clock, _ids, _ec2):
        warm = Baseline(Network(), infra.queue_url, GENERATIONS)
        for _day in range(GENERATIONS):
            warm.day(("Backup", "nightly"), throttle._slot(clock))
            clock.advance(days=1)
        throttle._clear_queue()
        recorder = Recorder()
        origin = Baseline(Network(hooks=[recorder.hook]), infra.queue_url, GENERATIONS)
        listing = origin.plan(("Backup", "nightly"))
        planned = recorder.take()
        first, rest = planned[:1], planned[1:]  # the listing, then DescribeInstances + SendMessage each
        calls: list[list[Call]] = []
        for index, instance_id in enumerate(listing):
            with contextlib.suppress(ClientError):
                origin.back_up(instance_id, throttle._slot(clock))
            calls.append((first if index == 0 else []) + rest[2 * index : 2 * index + 2] + recorder.take())
        throttle._clear_queue()
    return calls


class RecordingEbsDriver(EbsDriver):
    """The bench's ebs-snapshot cycle, one record per invocation, each record's calls kept by its kind."""

    def __init__(self, clock: Clock, ec2: Any, completion: timedelta, recorder: Recorder) -> None:
        super().__init__(clock, ec2, completion)
        self.recorder = recorder
        self.planner_calls: list[Call] = []
        self.records: dict[str, list[list[Call]]] = {}

    def plan(self) -> dict[str, Any]:
        summary = super().plan()
        self.planner_calls = self.recorder.take()
        return summary

    def work(self, bodies: list[str], kind: str) -> list[str]:
        failed: list[str] = []
        for body in bodies:
            failed += super().work([body], kind)
            self.records.setdefault(kind, []).append(self.recorder.take())
        return failed


def _record_ebs_snapshot(instances: int = RECORDED_FLEET // ebs.VOLUMES_PER_INSTANCE) -> Trace:
    """ebs-snapshot in volume mode (bench/ebs.py's fleet: 2 tagged data volumes per instance), one cycle at steady
    state: the planner, the creates (paced by the planner), the snapshot events and the delayed checks."""
    clock = Clock()
    recorder = Recorder()
    env = {**ebs.ENVIRONMENT["volume"], "OPS_GENERATIONS": str(GENERATIONS)}
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True) as fidelity,
        routed(Network(hooks=[recorder.hook])),
        installed(infra, clock, module="ebs_snapshot", **env),
    ):
        ec2 = boto3.client("ec2", region_name=throttle.REGION)  # the bench's own: not recorded
        volumes = ebs.fleet(ec2, instances)
        first = clock.now
        for day in range(GENERATIONS):
            clock.now = first + timedelta(days=day)
            EbsDriver(clock, ec2, fidelity.snapshot_completion_time).day()
        clock.now = first + timedelta(days=GENERATIONS)
        recorder.take()
        driver = RecordingEbsDriver(clock, ec2, fidelity.snapshot_completion_time, recorder)
        driver.day()
    return Trace(
        len(volumes),
        driver.planner_calls,
        ebs_handlers.CREATES_PER_SECOND,
        driver.records,
        _record_ebs_baseline(instances),
    )


@dataclass
class _RecordingEbsBaseline(EbsBaseline):
    recorder: Recorder = field(default_factory=Recorder)
    per_volume: list[list[Call]] = field(default_factory=list)

    def snapshot_volume(self, volume_id: str, slot: str) -> None:
        listing = self.recorder.take() if not self.per_volume else []
        with contextlib.suppress(ClientError):
            super().snapshot_volume(volume_id, slot)
        self.per_volume.append(listing + self.recorder.take())


def _record_ebs_baseline(instances: int) -> list[list[Call]]:
    """The origin's ebs-snapshot (volume mode) per volume at its steady state, on its own moto account."""
    clock = Clock()
    with moto_account(), faithful_aws(clock):
        ec2 = boto3.client("ec2", region_name=throttle.REGION)
        ebs.fleet(ec2, instances)
        tag = next(iter(ebs.TAGS.items()))
        first = clock.now
        warm = EbsBaseline(Network(), GENERATIONS)
        for day in range(GENERATIONS):
            clock.now = first + timedelta(days=day)
            warm.day("volume", tag, clock.now.strftime("%Y%m%d%H%M"))
        clock.now = first + timedelta(days=GENERATIONS)
        recorder = Recorder()
        origin = _RecordingEbsBaseline(Network(hooks=[recorder.hook]), GENERATIONS)
        origin.recorder = recorder
        origin.day("volume", tag, clock.now.strftime("%Y%m%d%H%M"))
    return origin.per_volume


# ---------------------------------------------------------------------------------------------------------------
# Replays
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Container:
    """One Lambda execution environment: its own clients (and so its own botocore retry quota)."""

    clients: dict[str, Any]


def _scaled_planner(trace: Trace, fleet: int) -> list[Call]:
    """The planner's calls at `fleet`: its listings one page per MaxResults sources, one SendMessageBatch per 10,
    every other call once."""
    out: list[Call] = []
    seen: set[str] = set()
    for call in trace.planner:
        if call.operation in seen:
            continue
        seen.add(call.operation)
        if call.operation.startswith("Describe"):
            repeat = math.ceil(fleet / int(call.params.get("MaxResults", PAGE)))
        elif call.operation == "SendMessageBatch":
            repeat = math.ceil(fleet / BATCH)
        else:
            repeat = 1
        out.extend([call] * repeat)
    return out


def _delays(trace: Trace, fleet: int) -> list[float]:
    """The planner's pacing at `fleet` (core.fanout.BatchSender: the n-th message waits n / pace s, at most 900 s)."""
    if trace.pace_per_second is None:
        return [0.0] * fleet
    return [float(int(min(900, i / trace.pace_per_second))) for i in range(fleet)]


def _call(client: Any, call: Call) -> None:
    client._make_api_call(call.operation, call.params)


@dataclass
class PhaseResult:
    seconds: float
    minimum_s: float
    bucket_s: float
    latency_s: float
    records: int
    done: int
    lost: int
    dead_lettered: int
    invocations: int
    longest_run_s: float
    ec2_calls: dict[str, int]
    throttled: int

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _replay_phase(
    records: list[list[Call]], buckets: Ec2Buckets | None, delays: Sequence[float] | None, seed: int
) -> tuple[float, ConcurrentQueue, BucketNetwork, list[int]]:
    clock = SimScheduler()
    net = network(buckets, clock, answer_locally=True)
    queue = ConcurrentQueue(clock)
    net.hooks.append(queue.hook)
    progress = [0] * len(records)
    with simulated_time(clock, seed):
        containers = [_container(net) for _ in range(queue.concurrency)]
        free = list(containers)

        def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
            container = free.pop()
            try:
                return consume(
                    event,
                    context,
                    sqs=lambda: container.clients["sqs"],
                    queue_url=Q,
                    decode=int,
                    handle=lambda index: _resume(container, records[index], progress, index),
                    give_up=lambda _record, _why: None,
                    max_receive_count=MAX_RECEIVES,
                )
            finally:
                free.append(container)

        queue.load([str(i) for i in range(len(records))], delays)
        with captured(io.StringIO()), per_container_processor():
            seconds = queue.drain(invoke)
    return seconds, queue, net, progress


class _PerContainerProcessor:
    """`core.worker.processor` is a module global: one per execution environment in Lambda. Concurrent invocations
    here share a process, so each thread (invocation) gets its own BatchProcessor."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _own(self) -> BatchProcessor:
        if not hasattr(self._local, "processor"):
            self._local.processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return self._local.processor  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._own(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._own()(*args, **kwargs)


@contextlib.contextmanager
def per_container_processor() -> Iterator[None]:
    with mock.patch.object(worker_module, "processor", _PerContainerProcessor()):
        yield


SERVICES = ("ec2", "sqs", "dynamodb", "sns")


def _clients(net: BucketNetwork, config: Config) -> dict[str, Any]:
    """Replayed parameters were valid when recorded, and the requests never leave the process: neither validated nor
    signed (a third of botocore's work per request)."""
    unvalidated = config.merge(Config(parameter_validation=False, signature_version=UNSIGNED))
    return {service: net.client(service, config=unvalidated) for service in SERVICES}


def _container(net: BucketNetwork) -> Container:
    return Container(_clients(net, retry_config(WORKER_ATTEMPTS)))


def _resume(container: Container, calls: list[Call], progress: list[int], index: int) -> dict[str, Any]:
    """A redelivered record starts at its first call not yet answered."""
    while progress[index] < len(calls):
        _call(container.clients[calls[progress[index]].service], calls[progress[index]])
        progress[index] += 1
    return {}


def _phase(records: list[list[Call]], delays: Sequence[float] | None, scale: float, seed: int) -> PhaseResult:
    # The latency bound: the same records with no bucket and no pacing (the planner's pacing is a cost of the design).
    free_seconds, _q, _n, _p = _replay_phase(records, None, None, seed)
    buckets = Ec2Buckets(scale)
    seconds, queue, net, progress = _replay_phase(records, buckets, delays, seed)
    done = sum(1 for m, p, r in zip(queue.messages, progress, records, strict=True) if m.deleted and p == len(r))
    lost = sum(1 for m, p, r in zip(queue.messages, progress, records, strict=True) if m.deleted and p < len(r))
    bucket_s = needed_bucket_s([call for calls in records for call in calls], scale)
    return PhaseResult(
        seconds=seconds,
        minimum_s=max(bucket_s, free_seconds),
        bucket_s=bucket_s,
        latency_s=free_seconds,
        records=len(records),
        done=done,
        lost=lost + sum(1 for m in queue.messages if m.dead),
        dead_lettered=sum(1 for m in queue.messages if m.dead),
        invocations=len(queue.runs),
        longest_run_s=max((r.seconds for r in queue.runs), default=0.0),
        ec2_calls=dict(buckets.admitted),
        throttled=net.throttled,
    )


def _sequential(calls: list[Call], buckets: Ec2Buckets | None, config: Config, seed: int) -> tuple[float, int, int]:
    """One invocation making `calls` in turn (a planner): seconds, calls failed, throttled attempts."""
    clock = SimScheduler()
    net = network(buckets, clock, answer_locally=True)
    failed = 0
    with simulated_time(clock, seed):
        clients = _clients(net, config)
        for call in calls:
            try:
                _call(clients[call.service], call)
            except ClientError:
                failed += 1
    return clock.now, failed, net.throttled


def _planner(trace: Trace, fleet: int, scale: float, seed: int) -> PhaseResult:
    calls = _scaled_planner(trace, fleet)
    free, _f, _t = _sequential(calls, None, retry_config(PLANNER_ATTEMPTS), seed)
    buckets = Ec2Buckets(scale)
    seconds, failed, throttled = _sequential(calls, buckets, retry_config(PLANNER_ATTEMPTS), seed)
    bucket_s = needed_bucket_s(calls, scale)
    return PhaseResult(
        seconds=seconds,
        minimum_s=max(free, bucket_s),
        bucket_s=bucket_s,
        latency_s=free,
        records=fleet,
        done=0 if failed else fleet,
        lost=fleet if failed else 0,  # a planner that gave up enqueued nothing after its failed call
        dead_lettered=0,
        invocations=1,
        longest_run_s=seconds,
        ec2_calls=dict(buckets.admitted),
        throttled=throttled,
    )


def _baseline(trace: Trace, fleet: int, scale: float, seed: int) -> dict[str, Any]:
    """The origin: the listing, then each instance in turn in one invocation (adaptive, max_attempts 10)."""
    listing = trace.baseline[0][:1]
    per = [trace.baseline[0][1:], *trace.baseline[1:]]
    instances = [per[i % len(per)] for i in range(fleet)]
    clock = SimScheduler()
    buckets = Ec2Buckets(scale)
    net = network(buckets, clock, answer_locally=True)
    failed = 0
    with simulated_time(clock, seed):
        clients = _clients(net, ADAPTIVE)
        for call in listing:
            _call(clients[call.service], call)
        for calls in instances:
            try:
                for call in calls:
                    _call(clients[call.service], call)
            except ClientError:
                failed += 1  # the origin logs and moves on: that instance has no backup tonight
    return {
        "seconds": round(clock.now, 3),
        "bucket_s": round(needed_bucket_s([*listing, *(call for calls in instances for call in calls)], scale), 3),
        "failed": failed,
        "throttled": net.throttled,
        "ec2_calls": dict(buckets.admitted),
        "timeout_share": round(clock.now / TIMEOUT_S, 4),
    }


def _records(recorded: list[list[Call]], fleet: int) -> list[list[Call]]:
    return [recorded[i % len(recorded)] for i in range(fleet)]


def cycle(trace: Trace, fleet: int, scale: float = 1.0, seed: int = SEED) -> dict[str, Any]:
    """One cycle of ours (planner, then each worker phase) and the baseline, replayed at `fleet`."""
    with patched_env(MOTO_ENVIRONMENT):  # credentials to sign with; nothing leaves the process
        return _cycle(trace, fleet, scale, seed)


def _cycle(trace: Trace, fleet: int, scale: float, seed: int) -> dict[str, Any]:
    phases = {"planner": _planner(trace, fleet, scale, seed)}
    delays = _delays(trace, fleet)
    for index, (name, recorded) in enumerate(trace.phases.items()):
        phases[name] = _phase(_records(recorded, fleet), delays if index == 0 else None, scale, seed)
    seconds = math.fsum(p.seconds for p in phases.values())
    minimum = math.fsum(p.minimum_s for p in phases.values())
    longest = max(p.longest_run_s for p in phases.values())
    baseline = _baseline(trace, fleet, scale, seed)
    base_minimum = max(baseline["bucket_s"], minimum)
    return {
        "fleet": fleet,
        "seconds": round(seconds, 3),
        "minimum_s": round(minimum, 3),
        "ratio": round(seconds / minimum, 3),
        "lost": sum(p.lost for p in phases.values()),
        "longest_run_share": round(longest / TIMEOUT_S, 4),
        "phases": {name: p.as_dict() for name, p in phases.items()},
        "baseline": {**baseline, "ratio": round(baseline["seconds"] / base_minimum, 3)},
    }


# ---------------------------------------------------------------------------------------------------------------
# The replay checked against the real handlers on moto
# ---------------------------------------------------------------------------------------------------------------


def _real_phases(fleet: int, scale: float, seed: int) -> dict[str, dict[str, Any]]:
    """The real ami-backup worker on moto: its create batch, then the `available` events, each phase through fresh
    buckets on the concurrent queue."""
    env = {"OPS_GENERATIONS": str(GENERATIONS)}
    with throttle._account(fleet) as (infra, clock, _ids, ec2):
        with installed(infra, clock, **env):
            for _day in range(GENERATIONS):
                Driver(clock).day()
                clock.advance(days=1)
            ami_handlers.plan_handler({"scheduled_time": format_time(clock.now)}, FakeContext())
        creates = take_messages()
        sim = SimScheduler()
        net = network(None, sim)
        queue = ConcurrentQueue(sim)
        net.hooks.append(queue.hook)
        synced = [0.0]

        def on_time(now: float) -> None:
            clock.advance(seconds=now - synced[0])
            synced[0] = now

        def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return dict(ami_handlers.work_handler(event, context))

        queue.on_time = on_time
        with (
            routed(net),
            simulated_time(sim, seed),
            installed(infra, clock, **env),
            captured(io.StringIO()),
            per_container_processor(),
        ):
            names = [throttle.ami_name(m["policy"], m["instance_id"], m["slot"]) for m in creates]

            def create_done(index: int) -> bool:
                image_id = throttle._image_named(ec2, names[index])
                return image_id is not None and throttle._ledger_state(image_id) is not None

            create = _real_phase(net, queue, scale, [work_body(m) for m in creates], invoke, create_done)
            images = [image_id for name in names if (image_id := throttle._image_named(ec2, name))]
            take_messages()  # the delayed checks: the events complete the backups first
            completion = _real_phase(
                net,
                queue,
                scale,
                [ami_event(image_id, "available") for image_id in images],
                invoke,
                lambda index: throttle._ledger_state(images[index]) == "available",
            )
        take_messages()
    return {"create_image": create, "completion": completion}


def _real_phase(
    net: BucketNetwork,
    queue: ConcurrentQueue,
    scale: float,
    bodies: list[str],
    invoke: Invoke,
    done: Callable[[int], bool],
) -> dict[str, Any]:
    buckets = Ec2Buckets(scale)
    net.buckets, throttled = buckets, net.throttled
    queue.load(bodies)
    seconds = queue.drain(invoke)
    finished = [m.deleted and done(i) for i, m in enumerate(queue.messages)]
    return {
        "seconds": round(seconds, 3),
        "ec2_calls": dict(buckets.admitted),
        "throttled": net.throttled - throttled,
        "done": sum(finished),
        "lost": len(bodies) - sum(finished),
        "dead_lettered": sum(1 for m in queue.messages if m.dead),
        "invocations": len(queue.runs),
        "longest_run_s": round(max((r.seconds for r in queue.runs), default=0.0), 3),
    }


CHECK_SCALE = 0.05  # buckets at 1/20 of their size and rate: 10 sources meet the throttle as 200 would (deferrals)


def check_replay(trace: Trace, scale: float = CHECK_SCALE, seed: int = SEED) -> dict[str, Any]:
    """Real handlers on moto and the replay, same fleet, same (scaled) buckets: calls, wall time, lost."""
    real = _real_phases(trace.fleet, scale, seed)
    phases: dict[str, Any] = {}
    with patched_env(MOTO_ENVIRONMENT):
        for name, recorded in trace.phases.items():
            replay = _phase(_records(recorded, trace.fleet), None, scale, seed).as_dict()
            phases[name] = {
                "real": real[name],
                "replay": replay,
                "same_ec2_calls": real[name]["ec2_calls"] == replay["ec2_calls"],
                "seconds_ratio": round(replay["seconds"] / real[name]["seconds"], 3),
            }
    return {"fleet": trace.fleet, "scale": scale, "phases": phases}


# ---------------------------------------------------------------------------------------------------------------
# The piece's API
# ---------------------------------------------------------------------------------------------------------------

MODULES = ("ami-backup", "ebs-snapshot", "deregister-cleanup", "snapshot-copy", "instance-scheduler", "ssm-runcommand")


RECORDERS: dict[str, Callable[[], Trace]] = {
    "ami-backup": lambda: _record_ami_backup(RECORDED_FLEET),
    "ebs-snapshot": _record_ebs_snapshot,
}
NOT_RUN = {
    "deregister-cleanup": "no recorded trace yet: its worker is event-driven (one DeregisterImage event per AMI)",
    "snapshot-copy": "no recorded trace yet",
    "instance-scheduler": "no recorded trace yet",
    "ssm-runcommand": "its calls are SSM's (SendCommand), not EC2's: no EC2 bucket applies",
}


def measure(
    fleets: Sequence[int] = FLEETS, check: bool = True, modules: Sequence[str] = tuple(RECORDERS)
) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "source": SOURCE,
        "latency_s": {"ec2": LATENCY.ec2_call_s, "other": LATENCY.other_call_s},
        "concurrency": CONCURRENCY,
        "timeout_s": TIMEOUT_S,
        "seed": SEED,
        "retry_modes": {
            "ours": {
                "planner": f"standard, max_attempts {PLANNER_ATTEMPTS}",
                "worker": f"standard, max_attempts {WORKER_ATTEMPTS}",
            },
            "baseline": BASELINE_RETRIES,
        },
        "modules": {},
        "not_run": NOT_RUN,
    }
    for module in modules:
        trace = RECORDERS[module]()
        data: dict[str, Any] = {"recorded_fleet": trace.fleet, "phases": list(trace.phases)}
        data["cycles"] = [_progress(module, cycle(trace, n)) for n in fleets]
        if check and module == "ami-backup":
            data["check"] = check_replay(trace)
        results["modules"][module] = data
    results["runtime_s"] = round(time.perf_counter() - started, 1)
    return results


SMOKE_FLEET = 100
SMOKE_SCALE = 1.0  # the published buckets: 100 create records exceed CreateImage's burst (50)


def _progress(module: str, result: dict[str, Any]) -> dict[str, Any]:
    print(f"bucket: {module}, {result['fleet']:,} sources, ratio {result['ratio']}", file=sys.stderr, flush=True)
    return result


def smoke_trace() -> Trace:
    """A stated trace with the calls `_record_ami_backup` records for ami-backup (per create record, per completion
    record, and the origin's per instance), so the smoke test needs no moto warm-up: the engine is under test."""
    listing = Call("ec2", "DescribeInstances", {"Filters": [{"Name": "tag:Backup", "Values": ["nightly"]}]})
    send_batch = Call("sqs", "SendMessageBatch", {"QueueUrl": Q, "Entries": [{"Id": "0", "MessageBody": "{}"}]})
    send = Call("sqs", "SendMessage", {"QueueUrl": Q, "MessageBody": "{}"})
    ledger = Call("dynamodb", "UpdateItem", {"TableName": "ledger", "Key": {"pk": {"S": "i-0"}}})
    image = Call("ec2", "DescribeImages", {"ImageIds": ["ami-0"]})
    deregister = Call("ec2", "DeregisterImage", {"ImageId": "ami-0"})
    create = [Call("ec2", "CreateImage", {"InstanceId": "i-0", "Name": "backup-i-0"}), ledger, send]
    completion = [
        Call("dynamodb", "GetItem", {"TableName": "ledger", "Key": {}}),
        image,
        deregister,
        ledger,
        send,
        ledger,
    ]
    origin = [
        Call("ec2", "DescribeInstances", {"InstanceIds": ["i-0"]}),
        send,
        Call("dynamodb", "PutItem", {"TableName": "ledger", "Item": {"pk": {"S": "lock"}}}),
        Call("ec2", "CreateImage", {"InstanceId": "i-0", "Name": "i-0-slot"}),
        send,
        image,
        Call("ec2", "CreateTags", {"Resources": ["ami-0"], "Tags": [{"Key": "InstanceId", "Value": "i-0"}]}),
        Call("ec2", "DescribeImages", {"Owners": ["self"], "Filters": [{"Name": "tag:InstanceId", "Values": ["i-0"]}]}),
        deregister,
        Call("ec2", "DeleteSnapshot", {"SnapshotId": "snap-0"}),
    ]
    phases = {"create_image": [create], "completion": [completion]}
    return Trace(SMOKE_FLEET, [listing, send_batch], None, phases, [[listing, *origin], origin])


def smoke() -> dict[str, Any]:
    return cycle(smoke_trace(), SMOKE_FLEET, scale=SMOKE_SCALE)


def markdown(results: dict[str, Any]) -> list[str]:
    lines = [
        "| module | sources | throttled wall (s) | token-bucket minimum (s) | ratio (target ≤ 1.3) "
        "| items lost (target 0) | longest run, % of timeout (target < 80 %) | baseline wall (s) | baseline ratio "
        "| baseline failed | baseline run, % of timeout |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for module, data in results["modules"].items():
        for c in data["cycles"]:
            b = c["baseline"]
            lines.append(
                f"| {module} | {c['fleet']:,} | {c['seconds']:,.1f} | {c['minimum_s']:,.1f} | {c['ratio']:.2f} "
                f"| {c['lost']} | {100 * c['longest_run_share']:.0f} % | {b['seconds']:,.1f} | {b['ratio']:.2f} "
                f"| {b['failed']} | {100 * b['timeout_share']:,.0f} % |"
            )
    for module, why in results.get("not_run", {}).items():
        lines.append(f"| {module} | NOT RUN: {why} | | | | | | | | | |")
    lines += [
        "",
        f"- EC2 token buckets with the published sizes and refill rates, one per action ({results['source']}): "
        "e.g. CreateImage 50 + 5/s (mutating), CreateSnapshot, DeleteSnapshot and DeregisterImage 100 + 5/s, "
        "CreateTags 100 + 10/s, DescribeInstances 100 + 20/s filtered or paginated and 50 + 10/s otherwise. A refused "
        "request is answered RequestLimitExceeded and takes no token.",
        f"- Simulated clock: {results['latency_s']['ec2']} s per EC2 attempt, {results['latency_s']['other']} s "
        "per other attempt; botocore's real retries sleep on it (ours: "
        f"{results['retry_modes']['ours']['planner']} planner, {results['retry_modes']['ours']['worker']} worker; "
        f"the origin: {results['retry_modes']['baseline']}).",
        f"- Workers: at most {results['concurrency']} concurrent invocations (modules/*/variables.tf "
        "worker_max_concurrency default, the event source mapping's maximum concurrency), batches of 10, the "
        "worker's ChangeMessageVisibility back-off (30 s, 60 s, ...), the DLQ after 10 receives; each concurrent "
        "invocation has its own clients (its own retry quota), as separate execution environments do.",
        "- A cycle: the planner, then each worker phase (phases start with full buckets: AMIs and snapshots take "
        "minutes). Minimum = per phase the larger of the latency bound (the phase with no bucket and no pacing) and "
        "the buckets' own time, (calls - capacity) / refill, for the slowest action; summed over the phases.",
        "- Large fleets replay each record's calls recorded from the real handlers on moto at 10 sources (through "
        "real botocore clients answered in-process, inside the real core.worker.consume); a redelivered record "
        "resumes at its first unanswered call. Lost = records SQS deleted without their calls done, or dead-lettered.",
        f"- The origin: one sequential invocation over every source (timeout {results['timeout_s']} s assumed, as "
        "ours); its % of timeout above 100 % means Lambda would end it before it finished.",
    ]
    check = results["modules"].get("ami-backup", {}).get("check")
    if check:
        for name, phase in check["phases"].items():
            lines.append(
                f"Replay checked against the real ami-backup handlers on moto, {name} phase ({check['fleet']} sources, "
                f"buckets x{check['scale']} so that they throttle): same EC2 calls {phase['same_ec2_calls']}, "
                f"wall time real {phase['real']['seconds']} s / replay {phase['replay']['seconds']} s, throttled "
                f"attempts real {phase['real']['throttled']} / replay {phase['replay']['throttled']}, lost real "
                f"{phase['real']['lost']} / replay {phase['replay']['lost']}."
            )
    return lines


def main() -> None:
    results = measure()
    out = Path(__file__).parent / "results" / "bucket.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
