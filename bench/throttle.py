"""3. Throttled time relative to unthrottled, on a simulated clock (never this machine's wall clock).

A share of EC2 requests (every HTTP attempt, retries included) is answered `RequestLimitExceeded` from a seeded
RNG; every attempt costs a stated latency (the cost model's: 150 ms per EC2 request, 20 ms per other request);
botocore's own retry sleeps, jitter (seeded) and adaptive token bucket run on the simulated clock. Ours uses
`standard` retries with the attempts of `ops_automation.core.clients` (PLANNER_ATTEMPTS for the planner,
WORKER_ATTEMPTS for the worker); the baseline (the origin design) uses `adaptive` with max_attempts 10.

- Planner: 1,000 instances on moto, the planner run unthrottled and throttled, ours vs the baseline's planner.
- Worker: a batch of 10 `create_image` records, then a completion batch (the 10 `available` AMI events), at
  steady state (3 generations present, so the completion retires one AMI per instance). Ours runs as the event
  source mapping drives it: a simulated queue hands out batches of visible records, honours
  ChangeMessageVisibility (the worker's back-off) and counts receives (maxReceiveCount 10, then the DLQ); it
  redelivers deferred records after their back-off until every record is done. The baseline backs up the same
  10 instances in one invocation, retrying in process (its completion and retention are inline).
"""

from __future__ import annotations

import contextlib
import io
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3
from aws_harness import ACCOUNT, QUEUE, REGION, Clock, FakeContext, ami_event, run_instances, take_messages, work_body
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import MockRawResponse
from moto.sqs.models import sqs_backends
from tests.support.moto_fidelity import faithful_aws

from ops_automation.ami_backup import handlers
from ops_automation.ami_backup.decisions import ami_name
from ops_automation.core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
from ops_automation.core.completion import ledger_key
from ops_automation.core.events import format_time
from ops_automation.core.scope import Target

from .baseline import ADAPTIVE, Baseline
from .cost import LatencyModel
from .driver import Driver, captured
from .harness import Infra, Network, SimClock, installed, moto_account, routed, simulated_time

SHARE = 0.20  # of EC2 requests throttled
# At 20 % botocore's in-process retries absorb nearly every throttle; a storm shows the worker's deferral path.
STORM_SHARE = 0.70
SEED = 5
LATENCY = LatencyModel()
TIMEOUT_S = 300  # modules/ami-backup/main.tf: planner and worker
BUDGET_SHARE = 0.8  # no run may end near its timeout
MAX_RECEIVES = 10  # modules/internal/queue.tf: maxReceiveCount of the work queue
QUEUE_VISIBILITY_S = 6 * TIMEOUT_S  # modules/internal/queue.tf: a record failed without a back-off returns then
PLANNER_FLEET = 1_000
BATCH = 10  # modules/internal/functions.tf: the event source mapping's batch size
GENERATIONS = 3
TAGS = {"Backup": "nightly"}
RETRY_MODES = {
    "ours": {
        "planner": f"standard, max_attempts {PLANNER_ATTEMPTS}",
        "worker": f"standard, max_attempts {WORKER_ATTEMPTS}",
    },
    "baseline": {"planner": f"adaptive, max_attempts {ADAPTIVE.retries['max_attempts']}"},
}


def network(share: float, seed: int = SEED) -> Network:
    clock = SimClock(latency=LATENCY.other_call_s)
    return Network(clock=clock, throttle_share=share, rng=random.Random(seed), latency={"ec2": LATENCY.ec2_call_s})


@dataclass(frozen=True)
class Timed:
    """One run on the simulated clock."""

    seconds: float
    requests: int  # API calls the code made (a retried call counts once; `throttled` counts the extra attempts)
    throttled: int  # attempts answered RequestLimitExceeded
    completed: bool

    @property
    def timeout_share(self) -> float:
        return self.seconds / TIMEOUT_S


# ---------------------------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------------------------


def _plan_ours(infra: Infra, clock: Clock, share: float, seed: int) -> Timed:
    net = network(share, seed)
    completed = True
    with routed(net), simulated_time(net.clock, seed), installed(infra, clock), captured(io.StringIO()):
        try:
            handlers.plan_handler({"scheduled_time": format_time(clock.now)}, FakeContext())
        except Exception:  # a planner that gave up is a figure, not a crash of the bench
            completed = False
    enqueued = len(take_messages())
    return Timed(net.clock.now, net.calls.total(), net.throttled, completed and enqueued > 0)


def _plan_baseline(infra: Infra, share: float, seed: int) -> Timed:
    net = network(share, seed)
    completed = True
    with simulated_time(net.clock, seed):
        baseline = Baseline(net, infra.queue_url)
        try:
            baseline.plan(("Backup", "nightly"))
        except ClientError:
            completed = False
    _clear_queue()
    return Timed(net.clock.now, net.calls.total(), net.throttled, completed)


def planner(fleet: int = PLANNER_FLEET, share: float = SHARE, seed: int = SEED) -> dict[str, Any]:
    clock = Clock()
    with moto_account() as infra:
        ec2 = boto3.client("ec2", region_name=REGION)
        for _ in range(fleet // 100):  # reservations of 100: moto pages by reservation
            run_instances(ec2, 100, TAGS)
        runs = {
            "ours": {
                "unthrottled": _plan_ours(infra, clock, 0, seed),
                "throttled": _plan_ours(infra, clock, share, seed),
            },
            "baseline": {
                "unthrottled": _plan_baseline(infra, 0, seed),
                "throttled": _plan_baseline(infra, share, seed),
            },
        }
    return {"instances": fleet, "share": share, **{design: _summary(r) for design, r in runs.items()}}


def _summary(runs: dict[str, Timed]) -> dict[str, Any]:
    plain, throttled = runs["unthrottled"], runs["throttled"]
    return {
        "unthrottled": _timed(plain),
        "throttled": _timed(throttled),
        "ratio": throttled.seconds / plain.seconds,
        "under_budget": throttled.completed and throttled.seconds < BUDGET_SHARE * TIMEOUT_S,
    }


def _timed(run: Timed) -> dict[str, Any]:
    return {
        "seconds": round(run.seconds, 3),
        "timeout_share": round(run.timeout_share, 4),
        "requests": run.requests,
        "throttled": run.throttled,
        "completed": run.completed,
        "exceeds_timeout": run.seconds > TIMEOUT_S,
    }


# ---------------------------------------------------------------------------------------------------------------
# Worker: the queue as the event source mapping sees it
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Message:
    body: str
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receives: int = 0
    visible_at: float = 0.0
    deleted: bool = False  # reported done: SQS deletes it
    dead: bool = False  # received MAX_RECEIVES times and back again: moved to the DLQ

    @property
    def receipt_handle(self) -> str:
        return f"{self.message_id}#{self.receives}"


@dataclass
class SimContext(FakeContext):
    """The invocation's remaining time on the simulated clock."""

    clock: SimClock = field(default_factory=SimClock)
    deadline: float = TIMEOUT_S

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.now) * 1000))


@dataclass
class Invocation:
    seconds: float
    records: int
    done: int
    handed_back: int  # reported failed: back to SQS (deferred with a back-off, or failed)
    timed_out: bool


@dataclass
class SimQueue:
    """Visible records in batches of 10, ChangeMessageVisibility honoured on the simulated clock (answered here,
    with the latency of an SQS request), receives counted, and the DLQ after MAX_RECEIVES."""

    clock: SimClock
    code_clock: Clock  # the handlers' "now", kept in step with the simulated clock
    messages: list[Message] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    _params: dict[str, Any] = field(default_factory=dict)
    _synced: float = 0.0

    def hook(self, client: Any) -> None:
        if client.meta.service_model.service_name == "sqs":
            client.meta.events.register("before-parameter-build.sqs.ChangeMessageVisibility", self._remember)
            client.meta.events.register("before-call.sqs.ChangeMessageVisibility", self._change_visibility)

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self._params = dict(params)

    def _change_visibility(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.clock.sleep(LATENCY.other_call_s)
        by_handle = {m.receipt_handle: m for m in self.messages}
        by_handle[self._params["ReceiptHandle"]].visible_at = self.clock.now + int(self._params["VisibilityTimeout"])
        return AWSResponse("https://sqs", 200, {}, MockRawResponse("")), {"ResponseMetadata": {"HTTPStatusCode": 200}}

    def _sync(self) -> None:
        self.code_clock.advance(seconds=self.clock.now - self._synced)
        self._synced = self.clock.now

    def load(self, bodies: list[str]) -> None:
        self.messages = [Message(body, visible_at=self.clock.now) for body in bodies]
        self.invocations = []

    def pending(self) -> list[Message]:
        return [m for m in self.messages if not m.deleted and not m.dead]

    def drain(self, max_invocations: int = 200) -> float:
        """Invoke the worker on visible records until none is left; returns the simulated time it took."""
        start = self.clock.now
        for _ in range(max_invocations):
            pending = self.pending()
            if not pending:
                return self.clock.now - start
            visible = sorted((m for m in pending if m.visible_at <= self.clock.now), key=lambda m: m.visible_at)
            if not visible:
                self.clock.now = min(m.visible_at for m in pending)
                continue
            batch: list[Message] = []
            for message in visible:
                if message.receives >= MAX_RECEIVES:
                    message.dead = True
                elif len(batch) < BATCH:
                    batch.append(message)
            if batch:
                self.invoke(batch)
        raise RuntimeError("the simulated queue never drained")

    def invoke(self, batch: list[Message]) -> Invocation:
        self._sync()
        started = self.clock.now
        for message in batch:
            message.receives += 1
            message.visible_at = started + QUEUE_VISIBILITY_S  # unless the worker changes it
        context = SimContext(clock=self.clock, deadline=started + TIMEOUT_S)
        with captured(io.StringIO()):
            response = handlers.work_handler(_event(batch), context)
        seconds = self.clock.now - started
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        timed_out = seconds > TIMEOUT_S  # Lambda would have killed it: the whole batch comes back
        for message in batch:
            if message.message_id not in failed and not timed_out:
                message.deleted = True
        done = 0 if timed_out else len(batch) - len(failed)
        invocation = Invocation(seconds, len(batch), done, len(batch) - done, timed_out)
        self.invocations.append(invocation)
        self._sync()
        return invocation


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
                "eventSourceARN": f"arn:aws:sqs:{REGION}::work",
                "awsRegion": REGION,
            }
            for m in batch
        ]
    }


@dataclass(frozen=True)
class Phase:
    """One batch of records: its first invocation, then SQS redelivery until every record is done."""

    kind: str
    records: int
    first_invocation_s: float
    done_first: int  # done in the first invocation
    deferred_first: int  # handed back to SQS by the first invocation
    total_s: float  # from the first invocation's start to the last record done
    invocations: int
    max_invocation_s: float
    done: int  # deleted from the queue with their work done
    lost: int  # deleted from the queue without their work done, or never finished (must be 0)
    dead_lettered: int
    requests: int
    throttled: int
    timed_out: int  # invocations past the function timeout

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_phase(kind: str, net: Network, queue: SimQueue, bodies: list[str], done: Callable[[str], bool]) -> Phase:
    requests, throttled = net.calls.total(), net.throttled
    queue.load(bodies)
    total = queue.drain()
    first = queue.invocations[0]
    finished = [m.deleted and done(m.body) for m in queue.messages]
    return Phase(
        kind=kind,
        records=len(bodies),
        first_invocation_s=round(first.seconds, 3),
        done_first=first.done,
        deferred_first=first.handed_back,
        total_s=round(total, 3),
        invocations=len(queue.invocations),
        max_invocation_s=round(max(i.seconds for i in queue.invocations), 3),
        done=sum(finished),
        lost=sum(1 for m, ok in zip(queue.messages, finished, strict=True) if not ok and not m.dead),
        dead_lettered=sum(1 for m in queue.messages if m.dead),
        requests=net.calls.total() - requests,
        throttled=net.throttled - throttled,
        timed_out=sum(1 for i in queue.invocations if i.timed_out),
    )


def _clear_queue() -> None:
    """Drop what the baseline sent (bare ids, which take_messages cannot parse)."""
    sqs_backends[ACCOUNT][REGION].queues[QUEUE]._messages = []


def _slot(clock: Clock) -> str:
    return clock.now.strftime("%Y%m%dT%H%M%SZ")


@contextmanager
def _account(n: int) -> Iterator[tuple[Infra, Clock, list[str], Any]]:
    clock = Clock()
    with moto_account() as infra, faithful_aws(clock):
        ec2 = boto3.client("ec2", region_name=REGION)
        yield infra, clock, run_instances(ec2, n, TAGS), ec2


def _image_named(ec2: Any, name: str) -> str | None:
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return str(images[0]["ImageId"]) if images else None


def _ledger_state(image_id: str) -> str | None:
    rt = handlers.worker_runtime()
    entry = rt.ledger.get(ledger_key(rt, Target(REGION, None), image_id))
    return entry.state if entry else None


def worker_ours(n: int = BATCH, share: float = SHARE, seed: int = SEED) -> dict[str, Phase]:
    """Steady state, then the slot's create batch and completion batch on the simulated queue."""
    env = {"OPS_GENERATIONS": str(GENERATIONS)}
    with _account(n) as (infra, clock, _ids, ec2):
        with installed(infra, clock, **env):
            for _day in range(GENERATIONS):
                Driver(clock).day()
                clock.advance(days=1)
            Driver(clock).plan()
        creates = take_messages()
        names = {work_body(m): ami_name(m["policy"], m["instance_id"], m["slot"]) for m in creates}
        net = network(share, seed)
        queue = SimQueue(net.clock, clock)
        net.hooks.append(queue.hook)
        with routed(net), simulated_time(net.clock, seed), installed(infra, clock, **env):

            def created(body: str) -> bool:
                image_id = _image_named(ec2, names[body])
                return image_id is not None and _ledger_state(image_id) is not None

            create = _run_phase("create_image", net, queue, list(names), created)
            images = [image_id for name in names.values() if (image_id := _image_named(ec2, name))]
            take_messages()  # the delayed checks: the events below complete the backups first
            events = {ami_event(image_id, "available"): image_id for image_id in images}
            completion = _run_phase(
                "ami_event", net, queue, list(events), lambda body: _ledger_state(events[body]) == "available"
            )
            take_messages()
    return {"create_image": create, "completion": completion}


def worker_baseline(n: int = BATCH, share: float = SHARE, seed: int = SEED) -> dict[str, Any]:
    """The origin: the same instances backed up in one invocation, retried in process (adaptive), with its
    completion (wait, tag) and retention inline."""
    with _account(n) as (infra, clock, ids, _ec2):
        warm = Baseline(Network(), infra.queue_url, GENERATIONS)
        for _day in range(GENERATIONS):
            warm.day(("Backup", "nightly"), _slot(clock))
            clock.advance(days=1)
        _clear_queue()
        net = network(share, seed)
        done = 0
        with simulated_time(net.clock, seed):
            baseline = Baseline(net, infra.queue_url, GENERATIONS)
            for instance_id in ids:
                with contextlib.suppress(ClientError):
                    baseline.back_up(instance_id, _slot(clock))
                    done += 1
        _clear_queue()
    return {
        "records": n,
        "seconds": round(net.clock.now, 3),
        "done": done,
        "failed": n - done,
        "requests": net.calls.total(),
        "throttled": net.throttled,
        "exceeds_timeout": net.clock.now > TIMEOUT_S,
    }


def worker(n: int = BATCH, share: float = SHARE, seed: int = SEED) -> dict[str, Any]:
    ours = {"unthrottled": worker_ours(n, 0, seed), "throttled": worker_ours(n, share, seed)}
    base = {"unthrottled": worker_baseline(n, 0, seed), "throttled": worker_baseline(n, share, seed)}
    return {
        "records": n,
        "share": share,
        "ours": {state: {k: p.as_dict() for k, p in phases.items()} for state, phases in ours.items()},
        "baseline": base,
    }


def worst_backoff_s(retries: int) -> float:
    """The longest sleeps botocore's standard mode can take for one throttled request: each retry i waits
    rand(0, 1) x min(2 ** i, 20) s (botocore.retries.standard.ExponentialBackoff, base 1 s for throttling)."""
    return float(sum(min(2**i, 20) for i in range(retries)))


def measure(planner_fleet: int = PLANNER_FLEET) -> dict[str, Any]:
    return {
        "latency_s": {"ec2": LATENCY.ec2_call_s, "other": LATENCY.other_call_s},
        "seed": SEED,
        "timeout_s": TIMEOUT_S,
        "retry_modes": RETRY_MODES,
        "worst_backoff_s": {"planner": worst_backoff_s(PLANNER_ATTEMPTS), "worker": worst_backoff_s(WORKER_ATTEMPTS)},
        "planner": planner(planner_fleet),
        "worker": worker(),
        "worker_storm": worker(share=STORM_SHARE),
    }
