"""9. snapshot-copy (issue 8): the AWS calls of the whole life of one disaster-recovery copy (the source's
completion event, the copy work item, CopySnapshot/CopyImage in the destination, the delayed checks, the copy's
completion event forwarded from the destination region, retention of its lineage there, deleting one generation),
the scheduled catch-up's calls, and the cost model's inputs; for snapshots and for AMIs (`copy_images`).

All on moto made faithful (tests/support/moto_fidelity.py) on a fixed clock, SQS on that clock: a copy is `pending`
for the fidelity's assumed 30 minutes (E25, E32), at most 20 CopySnapshot copies are pending per destination region
(E27: the next request is refused `ResourceLimitExceeded` and the work item waits in the queue), a source must be
`completed`. Steady state: every lineage (volume, or instance for AMIs) already holds `GENERATIONS` completed copies
in each destination, made by the bench with the module's own request (setup, not counted), so the measured day's
copies each retire one.
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
from unittest import mock

import boto3
from aws_harness import (
    ACCOUNT,
    EVENTS_DIR,
    LEDGER_TABLE,
    OTHER_REGION,
    REGION,
    Clock,
    ami_event,
    run_instances,
    snapshot_event,
    take_messages,
    work_body,
)
from moto.ec2 import utils as ec2_utils
from moto.ec2.models import amis as ec2_amis
from tests.support.moto_fidelity import MotoFidelity, faithful_aws, fast_tags

from ops_automation.core import tagging
from ops_automation.core.events import format_time
from ops_automation.snapshot_copy import handlers as copy_handlers
from ops_automation.snapshot_copy.decisions import Destination

from .cost import DAYS, IDLE_POLLS_PER_MONTH, PRICES, CycleUsage, Line, Projection, _line, project
from .driver import CycleDriver
from .harness import Network, installed, moto_account, routed
from .model import ALARMS_OURS, COPY_KEY, INPUTS_FILE

POLICY = "dr"  # the copy policy (tests/python/aws_harness.py copy_function_env)
SOURCE_POLICIES = {"snapshots": "daily-volumes", "images": "nightly-amis"}  # the source policies copied
DESTINATION_REGIONS = (OTHER_REGION, "us-west-2")
GENERATIONS = 7  # modules/snapshot-copy default
SOURCE_GENERATIONS = 3  # examples/snapshot-copy's ebs-snapshot source (ami-backup's default too)
SIZES = (20, 200)  # sources: volumes (or instances, for AMIs) backed up once a day
DESTINATION_COUNTS = (1, 2)
# The catch-up's default schedule (schedule_expression = "rate(6 hours)").
CATCH_UPS_PER_DAY = 4
# The source policy's snapshots complete 0.5 s apart (ebs-snapshot paces its creates at 2 per second): so do their
# completion events, each in its own invocation.
EVENT_SPACING = timedelta(milliseconds=500)
SOURCE_COMPLETION = timedelta(minutes=11)  # past the fidelity's 10 minutes (E11)
ROUNDS = 1_000_000


# ---------------------------------------------------------------------------------------------------------------
# A moto shim for speed (answers unchanged)
# ---------------------------------------------------------------------------------------------------------------

_GENERIC_FILTER = ec2_utils.generic_filter
WILDCARDS = frozenset("*?\\")
ID_FILTERS = frozenset({"snapshot-id", "image-id"})


def _narrowed(filters: Mapping[str, Any], objects: list[Any]) -> list[Any]:
    """The objects that can pass the exact `tag:` and id filters (values without wildcards): looked up in the
    region's tag dictionary, or by id, instead of moto's filter machinery. Only objects those filters would reject
    are left out."""
    for name, values in filters.items():
        if not values or any(WILDCARDS & set(str(v)) for v in values):
            continue
        wanted = {str(v) for v in values}
        if name in ID_FILTERS:
            objects = [o for o in objects if o.id in wanted]
        elif name.startswith("tag:"):
            key = name[4:]
            objects = [o for o in objects if (o.ec2_backend.tags.get(o.id) or {}).get(key) in wanted]
    return objects


def _fast_generic_filter(filters: dict[str, Any], objects: list[Any]) -> list[Any]:
    if filters and objects and hasattr(objects[0], "ec2_backend"):
        objects = _narrowed(filters, objects)
    return _GENERIC_FILTER(filters, objects)


@contextmanager
def fast_tag_filters() -> Iterator[None]:
    """Performance, not fidelity: moto evaluates every filter on every snapshot and AMI of the region, and each
    worker call filters thousands of them by tag; exact tag filters are applied by a dictionary lookup first, and
    moto's own filter then runs on what is left (same answers: `check_tag_filters`)."""
    with (
        mock.patch.object(ec2_utils, "generic_filter", _fast_generic_filter),
        mock.patch.object(ec2_amis, "generic_filter", _fast_generic_filter),
    ):
        yield


def check_tag_filters(objects: list[Any], filters: dict[str, Any]) -> bool:
    """The shim answers what moto answers, for `objects` and `filters`."""
    return [o.id for o in _fast_generic_filter(filters, objects)] == [o.id for o in _GENERIC_FILTER(filters, objects)]


# ---------------------------------------------------------------------------------------------------------------
# Events as EventBridge delivers them
# ---------------------------------------------------------------------------------------------------------------


def copy_event(copy_id: str, source_id: str, region: str) -> str:
    """A `copySnapshot` `EBS Snapshot Notification`, emitted in the destination region and forwarded to the source
    region's bus (the delivered event is the original: `region` is the destination)."""
    sample = json.loads((EVENTS_DIR / "normalized" / "ebs-snapshot-copy-succeeded.json").read_text())
    sample.update(region=region, account=ACCOUNT, id=str(uuid.uuid4()))
    sample["detail"].update(
        result="succeeded",
        snapshot_id=f"arn:aws:ec2::{region}:snapshot/{copy_id}",
        source=f"arn:aws:ec2::{REGION}:snapshot/{source_id}",
    )
    sample["resources"] = [sample["detail"]["snapshot_id"]]
    return json.dumps(sample)


def _due(message: Mapping[str, Any], now: datetime) -> datetime:
    ms = message.get("_delayed_until_ms") or 0
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else now


# ---------------------------------------------------------------------------------------------------------------
# Driving the two functions as the deployed wiring does
# ---------------------------------------------------------------------------------------------------------------


class CopyDriver(CycleDriver):
    """One timeline: events (each in its own invocation, first when due at the same moment) and the work queue's
    messages as they come due (delays honoured, batches of up to 10). A copy's completion event is scheduled when
    EC2 would emit it: when the fidelity completes the copy."""

    handlers = copy_handlers

    def __init__(self, clock: Clock, fidelity: MotoFidelity, images: bool) -> None:
        super().__init__(clock)
        self.fidelity = fidelity
        self.images = images
        self.events: list[tuple[datetime, int, str, str]] = []
        self.pending: list[tuple[datetime, dict[str, Any]]] = []
        self.known: set[str] = set(self._records())
        self.sequence = 0
        self.redelivered_waits = 0  # copy work items back from a back-pressure wait
        self.network: Network | None = None
        self.source_calls: Counter[str] = Counter()  # calls of the source completion events' invocations
        self.metric_hours: set[int] = set()
        self.day_start = clock.now
        self.last_copy_done = clock.now

    def _records(self) -> dict[str, Any]:
        if self.images:
            return dict(self.fidelity.image_copy_records)
        return {k: r for k, r in self.fidelity.copy_records.items() if not r.by_copy_image}

    def event(self, due: datetime, body: str, kind: str) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (due, self.sequence, body, kind))

    def work(self, bodies: list[str], kind: str) -> list[str]:
        before = len(self.seen.output.getvalue())
        calls = Counter(self.network.calls.counts) if self.network else Counter()
        failed = super().work(bodies, kind)
        if self.network and kind == "source_event":
            self.source_calls.update(Counter(self.network.calls.counts) - calls)
        if '"_aws"' in self.seen.output.getvalue()[before:]:
            self.metric_hours.add(int((self.clock.now - self.day_start).total_seconds() // 3600))
        return failed

    def _collect(self) -> None:
        for message in take_messages():
            self.pending.append((_due(message, self.clock.now), message))
        for copy_id, record in self._records().items():
            if copy_id in self.known:
                continue
            self.known.add(copy_id)
            done = record.started + record.duration
            self.last_copy_done = max(self.last_copy_done, done)
            if self.images:
                self.event(done, ami_event(copy_id, "available", region=record.region), "copy_event")
            else:
                self.event(done, copy_event(copy_id, record.source_id, record.region), "copy_event")

    def run(self) -> None:
        """Until nothing is left: every event delivered, every message handled."""
        for _round in range(ROUNDS):
            self._collect()
            if not self.events and not self.pending:
                return
            next_message = min((due for due, _ in self.pending), default=None)
            if self.events and (next_message is None or self.events[0][0] <= next_message):
                due, _, body, kind = heapq.heappop(self.events)
                self.clock.now = max(self.clock.now, due)
                self._must(self.work([body], kind))
                continue
            assert next_message is not None
            self.clock.now = max(self.clock.now, next_message)
            ready = [m for due, m in self.pending if due <= self.clock.now]
            self.pending = [(due, m) for due, m in self.pending if due > self.clock.now]
            by_kind: dict[str, list[dict[str, Any]]] = {}
            for message in ready:
                by_kind.setdefault(message["kind"], []).append(message)
                self.redelivered_waits += bool(message.get("waits"))
            for kind, messages in by_kind.items():
                self._must(self.work([work_body(m) for m in messages], kind))
        raise RuntimeError("the copy timeline never ended")


# ---------------------------------------------------------------------------------------------------------------
# An account: sources in REGION, steady-state copies in the destinations (setup: the bench's own clients)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Account:
    fidelity: MotoFidelity
    clock: Clock
    images: bool
    sources: int
    destinations: tuple[str, ...]
    lineages: list[str] = field(default_factory=list)  # volumes, or instances
    made: int = 0

    def __post_init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.dest = {region: boto3.client("ec2", region_name=region) for region in self.destinations}
        if self.images:
            self.lineages = run_instances(self.ec2, self.sources)
        else:
            self.lineages = [
                self.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"] for _ in range(self.sources)
            ]

    @property
    def kind(self) -> str:
        return "images" if self.images else "snapshots"

    def new_sources(self) -> list[tuple[str, str]]:
        """Today's backup of every lineage, as the source policy tags it: (source id, lineage)."""
        policy = SOURCE_POLICIES[self.kind]
        slot = format_time(self.clock.now)
        made: list[tuple[str, str]] = []
        backend = self.fidelity.backend(REGION)
        for lineage in self.lineages:
            self.made += 1
            if self.images:
                tags = tagging.ownership_tags(policy, source_instance=lineage, slot=slot)
                spec = [{"ResourceType": kind, "Tags": tagging.tag_list(tags)} for kind in ("image", "snapshot")]
                made.append((backend.create_image(lineage, f"{policy}-{self.made}", "", spec).id, lineage))
            else:
                tags = tagging.ownership_tags(policy, source_volume=lineage, slot=slot)
                spec = [{"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)}]
                made.append((self.ec2.create_snapshot(VolumeId=lineage, TagSpecifications=spec)["SnapshotId"], lineage))
        return made

    def described(self, ids: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            if self.images:
                found += self.ec2.describe_images(ImageIds=chunk)["Images"]
            else:
                found += self.ec2.describe_snapshots(SnapshotIds=chunk)["Snapshots"]
        return found

    def copy_as_the_module_does(self, ids: list[str]) -> None:
        """Setup: the module's own request (tags, encryption) from the bench's clients; not counted."""
        limit = self.fidelity.concurrent_snapshot_copies
        self.fidelity.concurrent_snapshot_copies = 10**9  # setup copies are not the measured back-pressure
        try:
            kind = copy_handlers.IMAGES if self.images else copy_handlers.SNAPSHOTS
            attempt = format_time(self.clock.now)
            for resource in self.described(ids):
                source = kind.to_source(resource, REGION)
                for region, client in self.dest.items():
                    kind.copy(client, POLICY, source, Destination(region, None, None, None), True, attempt)
        finally:
            self.fidelity.concurrent_snapshot_copies = limit

    def retire_sources(self, history: list[list[tuple[str, str]]]) -> None:
        """The source policy's retention (setup): only its newest SOURCE_GENERATIONS backups stay."""
        for old in history[:-SOURCE_GENERATIONS]:
            for source_id, _ in old:
                if self.images:
                    self.fidelity.backend(REGION).deregister_image(source_id)
                else:
                    self.ec2.delete_snapshot(SnapshotId=source_id)
            old.clear()

    def copies(self, region: str) -> list[dict[str, Any]]:
        filters = [{"Name": f"tag:{tagging.POLICY}", "Values": [POLICY]}]
        if self.images:
            return list(self.dest[region].describe_images(Owners=["self"], Filters=filters)["Images"])
        return list(self.dest[region].describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"])

    def per_lineage(self) -> Counter[tuple[str, str]]:
        """Completed copies per (destination, lineage)."""
        tag = tagging.SOURCE_INSTANCE if self.images else tagging.SOURCE_VOLUME
        done = {"available", "completed"}
        return Counter(
            (region, tagging.tag_dict(c.get("Tags"))[tag])
            for region in self.destinations
            for c in self.copies(region)
            if c["State"] in done
        )

    def delete_copy(self, region: str, source_id: str) -> None:
        """A copy gone (deleted by hand, or never made): the catch-up's case."""
        tag = tagging.SOURCE_IMAGE if self.images else tagging.SOURCE_SNAPSHOT
        for c in self.copies(region):
            if tagging.tag_dict(c.get("Tags")).get(tag) == source_id:
                if self.images:
                    self.dest[region].deregister_image(ImageId=c["ImageId"])
                else:
                    self.dest[region].delete_snapshot(SnapshotId=c["SnapshotId"])


def environment(images: bool, destinations: tuple[str, ...]) -> dict[str, str]:
    """modules/snapshot-copy's defaults (encrypted, 7 generations, 24-hour completion timeout), same account."""
    entry = {"kms_key_arn": None, "role_arn": None, "completion_duration_minutes": None}
    return {
        "OPS_POLICY_NAME": POLICY,
        "OPS_GENERATIONS": str(GENERATIONS),
        "OPS_COMPLETION_TIMEOUT_MINUTES": "1440",
        "OPS_ENCRYPTED": "true",
        "OPS_COPY_IMAGES": "true" if images else "false",
        "OPS_SOURCE_POLICIES": json.dumps([SOURCE_POLICIES["images" if images else "snapshots"]]),
        "OPS_COPY_DESTINATIONS": json.dumps({region: entry for region in destinations}),
    }


@contextmanager
def copy_account(
    network: Network, images: bool, sources: int, destinations: int
) -> Iterator[tuple[Account, list[list[tuple[str, str]]]]]:
    """The account at steady state: GENERATIONS daily copies of every lineage in every destination (the last
    SOURCE_GENERATIONS sources still in the source region); the clock at the start of the measured day."""
    clock = Clock()
    regions = DESTINATION_REGIONS[:destinations]
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True) as fidelity,
        fast_tags(),
        fast_tag_filters(),
        routed(network),
        installed(infra, clock, module="snapshot_copy", **environment(images, regions)),
    ):
        account = Account(fidelity, clock, images, sources, regions)
        first = clock.now
        history: list[list[tuple[str, str]]] = []
        for day in range(GENERATIONS):
            clock.now = first + timedelta(days=day)
            history.append(account.new_sources())
            clock.now += SOURCE_COMPLETION
            account.copy_as_the_module_does([source_id for source_id, _ in history[-1]])
            account.retire_sources(history)
        clock.now = first + timedelta(days=GENERATIONS)
        take_messages()
        network.calls.counts.clear()
        yield account, history


# ---------------------------------------------------------------------------------------------------------------
# The measured day, and the catch-up
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyDay:
    kind: str  # "snapshots" or "images"
    sources: int
    destinations: int
    copies: int  # sources x destinations: the day's copies
    calls: dict[str, int]  # every call of the day: events, copies, waits, checks, completions, retention, purges
    source_calls: dict[str, int]  # those of the source completion events' invocations (shared by the destinations)
    invocations: int
    messages: dict[str, int]  # SQS messages the worker consumed, by kind (events included)
    copy_requests: int  # CopySnapshot/CopyImage calls, refused ones included
    redelivered_waits: int  # copy work items back from a back-pressure wait
    retired: int  # copies deleted (snapshots) or deregistered (AMIs) by retention
    hours_to_last_copy: float  # from the first source event to the last copy completing
    generations_kept: bool  # every lineage holds exactly GENERATIONS completed copies in every destination
    unfinished: int  # ledger entries still pending and messages left: 0
    alerts: int
    log_bytes: int
    metric_names: tuple[str, ...]
    metric_hours: int  # distinct hours of the day in which the worker emitted metrics
    catch_up: dict[str, int]  # one scheduled catch-up afterwards, nothing missing
    catch_up_log_bytes: int
    catch_up_missing: dict[str, int]  # one catch-up with one copy missing in the first destination
    catch_up_enqueued: int
    recopy: dict[str, int]  # the missing copy's life after that catch-up (its work item onwards)
    filters_checked: bool  # the tag-filter shim answered as moto on this account

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def each(self) -> dict[str, float]:
        return {call: n / self.copies for call, n in self.calls.items()}


def _take(network: Network) -> dict[str, int]:
    taken = dict(sorted(network.calls.counts.items()))
    network.calls.counts.clear()
    return taken


def _unfinished() -> int:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    return sum(1 for item in items if item["state"]["S"] == "pending") + len(take_messages())


def _check_filters(account: Account) -> bool:
    """The shim against moto's own filtering, on the first destination's copies and the source region."""
    region = account.destinations[0]
    backend = account.fidelity.backend(region)
    objects: list[Any] = list((backend.amis if account.images else backend.snapshots).values())
    some = objects[len(objects) // 2]
    tags = backend.tags.get(some.id) or {}
    filters = {f"tag:{key}": [value] for key, value in list(tags.items())[:3]}
    id_filter = {"image-id" if account.images else "snapshot-id": [some.id]}
    return check_tag_filters(objects, filters) and check_tag_filters(objects, id_filter)


def _alerts() -> int:
    from aws_harness import alerts_sent

    return len(alerts_sent())


def measure_day(images: bool, sources: int, destinations: int, concurrent_copies: int | None = None) -> CopyDay:
    """`concurrent_copies`: another limit of pending snapshot copies per destination than the documented 20 (the
    smoke test's, to reach back-pressure with a few sources)."""
    network = Network()
    with copy_account(network, images, sources, destinations) as (account, history):
        if concurrent_copies is not None:
            account.fidelity.concurrent_snapshot_copies = concurrent_copies
        clock = account.clock
        driver = CopyDriver(clock, account.fidelity, images)
        driver.network = network
        today = account.new_sources()
        history.append(today)
        clock.now += SOURCE_COMPLETION
        driver.day_start = start = clock.now
        for index, (source_id, lineage) in enumerate(today):
            body = ami_event(source_id, "available") if images else snapshot_event(source_id, lineage)
            driver.event(start + index * EVENT_SPACING, body, "source_event")
        driver.run()
        calls = _take(network)
        invocations, messages = driver.seen.worker, dict(driver.seen.messages)
        last_copy_done = driver.last_copy_done
        log_bytes = driver.seen.log_bytes()
        metric_names = tuple(sorted(driver.seen.metric_names()))
        kept = account.per_lineage()
        generations_kept = len(kept) == sources * destinations and set(kept.values()) == {GENERATIONS}
        unfinished = _unfinished()
        alerts = _alerts()
        # The next scheduled catch-up: nothing missing.
        clock.now = max(clock.now, last_copy_done) + timedelta(hours=1)
        before = driver.seen.log_bytes()
        driver.plan()
        catch_up = _take(network)
        catch_up_log = driver.seen.log_bytes() - before
        if take_messages():
            raise RuntimeError("the steady-state catch-up found a copy missing")
        # One copy missing in the first destination: the catch-up enqueues it, the worker copies it.
        account.delete_copy(account.destinations[0], today[0][0])
        clock.now += timedelta(hours=6)
        summary = driver.plan()
        missing = _take(network)
        driver.run()
        recopy = _take(network)
        checked = _check_filters(account)
    verb = "ec2.CopyImage" if images else "ec2.CopySnapshot"
    retire = "ec2.DeregisterImage" if images else "ec2.DeleteSnapshot"
    return CopyDay(
        kind=account.kind,
        sources=sources,
        destinations=destinations,
        copies=sources * destinations,
        calls=calls,
        source_calls=dict(sorted(driver.source_calls.items())),
        invocations=invocations,
        messages=messages,
        copy_requests=calls.get(verb, 0),
        redelivered_waits=driver.redelivered_waits,
        retired=calls.get(retire, 0),
        hours_to_last_copy=round((last_copy_done - start).total_seconds() / 3600, 2),
        generations_kept=generations_kept,
        unfinished=unfinished,
        alerts=alerts,
        log_bytes=log_bytes,
        metric_names=metric_names,
        metric_hours=len(driver.metric_hours),
        catch_up=catch_up,
        catch_up_log_bytes=catch_up_log,
        catch_up_missing=missing,
        catch_up_enqueued=int(summary.get("enqueued", 0)),
        recopy=recopy,
        filters_checked=checked,
    )


# ---------------------------------------------------------------------------------------------------------------
# Cost model inputs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyInputs:
    """What the snapshot-copy cost section is computed from: one measured day of one configuration. A copy is one
    source copied to one destination; a day makes `sources x destinations` of them (daily source backups)."""

    kind: str
    sources: int
    destinations: int
    copies: int
    calls_each: dict[str, float]  # per copy, by API: the whole day (waits, checks, retention included)
    catch_up: dict[str, int]  # one catch-up run at steady state (nothing missing)
    catch_up_missing: dict[str, int]  # one catch-up run finding one copy missing
    recopy: dict[str, int]  # that missing copy's life afterwards
    waits_each: float  # back-pressure waits per copy (ResourceLimitExceeded: the item comes back later)
    hours_to_last_copy: float
    usage: CycleUsage  # per copy; the catch-ups as fixed calls
    source_events_each: float  # AWS service events (the source's completion) per copy: 1 / destinations
    forwarded_events_each: float  # copy results forwarded from the destination region per copy
    source_calls_each: dict[str, float]  # calls of the source completion events' invocations, per copy
    derived: bool = False  # computed from the 1-destination day (`with_destinations`), not measured

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CopyInputs:
        return cls(**{**data, "usage": CycleUsage(**data["usage"])})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        plural = "s" if self.destinations > 1 else ""
        return f"{self.sources} sources x {self.destinations} destination{plural}" + (
            " (derived)" if self.derived else ""
        )


def inputs_of(day: CopyDay) -> CopyInputs:
    copies = day.copies
    ec2 = sum(n for call, n in day.calls.items() if call.startswith("ec2."))
    service = "EC2 AMI State" if day.kind == "images" else "EBS Snapshot Notification"
    usage = CycleUsage(
        design="ours",
        ec2_calls_each=ec2 / copies,
        other_calls_each={k: v / copies for k, v in day.calls.items() if not k.startswith("ec2.")},
        fixed_calls={k: float(v * CATCH_UPS_PER_DAY) for k, v in day.catch_up.items()},
        invocations_each=day.invocations / copies,
        invocations_fixed=CATCH_UPS_PER_DAY,
        sqs_messages_each=sum(day.messages.values()) / copies,
        # Every event EventBridge puts on the queue: the source's completion and the forwarded copy result.
        eventbridge_deliveries_each=(day.sources + copies) / copies,
        log_bytes_each=round((day.log_bytes + day.catch_up_log_bytes * CATCH_UPS_PER_DAY) / copies, -1),
        metric_names=len(day.metric_names),
        metric_hours_per_day=day.metric_hours,
        alarms=ALARMS_OURS,
        idle_sqs_requests_per_month=IDLE_POLLS_PER_MONTH,
        scheduler_invocations_per_day=CATCH_UPS_PER_DAY,
        service_events=service,
    )
    return CopyInputs(
        kind=day.kind,
        sources=day.sources,
        destinations=day.destinations,
        copies=copies,
        calls_each={k: v / copies for k, v in day.calls.items()},
        catch_up=day.catch_up,
        catch_up_missing=day.catch_up_missing,
        recopy=day.recopy,
        waits_each=day.redelivered_waits / copies,
        hours_to_last_copy=day.hours_to_last_copy,
        usage=usage,
        source_events_each=day.sources / copies,
        forwarded_events_each=1.0,
        source_calls_each={k: v / copies for k, v in day.source_calls.items()},
    )


LISTINGS = frozenset({"ec2.DescribeSnapshots", "ec2.DescribeImages"})


def _more_destinations(catch_up: Mapping[str, int], destinations: int) -> dict[str, int]:
    """A catch-up lists the sources once (one page here) and every destination's copies (as many pages each)."""
    return {k: 1 + destinations * (v - 1) if k in LISTINGS else v for k, v in catch_up.items()}


def with_destinations(one: CopyInputs, destinations: int) -> CopyInputs:
    """Derived, not measured: each destination region has its own limit of pending copies, so each lives the
    1-destination day again; the source completion events, their invocations, calls and messages are shared. The
    copy work items of one event (and their checks) then share an invocation, which this leaves out: invocations
    are overstated (the measured 2-destination day at 20 sources shows by how much)."""
    if one.destinations != 1:
        raise ValueError("derived from a 1-destination day")
    share = 1 - 1 / destinations
    calls = {k: v - share * one.source_calls_each.get(k, 0) for k, v in one.calls_each.items()}
    catch_up = _more_destinations(one.catch_up, destinations)
    usage = CycleUsage(
        **{
            **asdict(one.usage),
            "ec2_calls_each": sum(v for k, v in calls.items() if k.startswith("ec2.")),
            "other_calls_each": {k: v for k, v in calls.items() if not k.startswith("ec2.")},
            "fixed_calls": {k: float(v * CATCH_UPS_PER_DAY) for k, v in catch_up.items()},
            "invocations_each": one.usage.invocations_each - share,
            "sqs_messages_each": one.usage.sqs_messages_each - share,
            "eventbridge_deliveries_each": 1 / destinations + one.forwarded_events_each,
        }
    )
    return CopyInputs(
        kind=one.kind,
        sources=one.sources,
        destinations=destinations,
        copies=one.sources * destinations,
        calls_each=calls,
        catch_up=catch_up,
        catch_up_missing=_more_destinations(one.catch_up_missing, destinations),
        recopy=one.recopy,
        waits_each=one.waits_each,
        hours_to_last_copy=one.hours_to_last_copy,
        usage=usage,
        source_events_each=1 / destinations,
        forwarded_events_each=one.forwarded_events_each,
        source_calls_each={k: v / destinations for k, v in one.source_calls_each.items()},
        derived=True,
    )


def projection(inputs: CopyInputs) -> Projection:
    """The month at this configuration: the generic lines, the EventBridge line split into the source's completion
    events (AWS service events: free) and the copy results forwarded bus to bus (billed as custom events)."""
    base = project(inputs.usage, inputs.copies)
    month = inputs.copies * DAYS
    lines: list[Line] = []
    for line in base.lines:
        if line.item.startswith("EventBridge") and line.unit == PRICES["eventbridge_aws_events"].per:
            lines.append(
                _line(
                    f"EventBridge {inputs.usage.service_events} events (source completions)",
                    "eventbridge_aws_events",
                    inputs.source_events_each * month,
                )
            )
            lines.append(
                _line(
                    "EventBridge copy results forwarded across regions (custom events)",
                    "eventbridge_custom_events",
                    inputs.forwarded_events_each * month,
                )
            )
        else:
            lines.append(line)
    return Projection(base.design, inputs.sources, lines)


@dataclass(frozen=True)
class CopyResults:
    days: list[CopyDay]
    inputs: list[CopyInputs]  # the measured days', then the derived ones
    filters_checked: bool
    derivation_check: dict[str, Any]  # a 2-destination day derived from the 1-destination one vs measured

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": [d.as_dict() for d in self.days],
            "inputs": [i.as_dict() for i in self.inputs],
            "filters_checked": self.filters_checked,
            "derivation_check": self.derivation_check,
        }


# Measured: every 20-source configuration, and 200 sources to one destination (where the 20-copy limit makes most
# copies wait); 200 sources to 2 destinations is derived from it (each destination has its own limit), which the
# 20-source days check. The 200-source day takes minutes on moto: it is not repeated for 2 destinations.
CONFIGURATIONS: tuple[tuple[str, int, int], ...] = (
    ("snapshots", 20, 1),
    ("snapshots", 20, 2),
    ("snapshots", 200, 1),
    ("images", 20, 1),
    ("images", 20, 2),
)
DERIVED: tuple[tuple[str, int, int], ...] = (("snapshots", 200, 2),)


def derivation_check(inputs: list[CopyInputs]) -> dict[str, Any]:
    by = {(i.kind, i.sources, i.destinations): i for i in inputs if not i.derived}
    both = sorted(n for kind, n, d in by if kind == "snapshots" and d == 1 and ("snapshots", n, 2) in by)
    if not both:
        return {}
    one, two = by[("snapshots", both[0], 1)], by[("snapshots", both[0], 2)]
    derived = with_destinations(one, 2)
    return {
        "sources": one.sources,
        "same_calls": {k: round(v, 6) for k, v in derived.calls_each.items()}
        == {k: round(v, 6) for k, v in two.calls_each.items()},
        "same_catch_up": derived.catch_up == two.catch_up,
        "invocations_each": {"derived": derived.usage.invocations_each, "measured": two.usage.invocations_each},
    }


def measure(
    configurations: tuple[tuple[str, int, int], ...] = CONFIGURATIONS,
    derived: tuple[tuple[str, int, int], ...] = DERIVED,
    concurrent_copies: int | None = None,
) -> CopyResults:
    days = [measure_day(kind == "images", n, d, concurrent_copies) for kind, n, d in configurations]
    inputs = [inputs_of(day) for day in days]
    by = {(i.kind, i.sources, i.destinations): i for i in inputs}
    inputs += [with_destinations(by[(kind, n, 1)], d) for kind, n, d in derived]
    return CopyResults(days, inputs, all(day.filters_checked for day in days), derivation_check(inputs))


def load_inputs(path: Path = INPUTS_FILE) -> list[CopyInputs]:
    return [CopyInputs.from_dict(m) for m in json.loads(path.read_text(encoding="utf-8"))[COPY_KEY]]
