"""The snapshot-copy soak: a year of daily source snapshots (01:00 UTC, the ebs-snapshot policy `daily-volumes` of
bench/copy.py, keeping its newest 3) of `sources` volumes, copied to one destination region by the real worker
(their `createSnapshot` completion events) and the real catch-up planner (every 6 hours), completed by the copies'
`copySnapshot` events forwarded from the destination, with retention there (7 generations, modules/snapshot-copy's
default). moto made faithful: a source is `pending` 10 minutes (E11), a copy 30 minutes (E25), at most 20 pending
copies per destination (E27: ResourceLimitExceeded, the item waits).

Faults (seeded, `Faults`): throttling, 5xx, timeouts (a read timeout of CopySnapshot: the copy was made, the answer
lost) and AccessDenied on the EC2 calls; duplicate, late and lost events; duplicate work items and schedules; a
crash after k records of a batch; per copy, the copy ending in `error`, stuck `pending` past the completion timeout
(24 hours) before it completes, or deleted while pending; per source, deleted by its owner before it is copied.

Invariants, after every step: at most one live (pending or completed) copy per source and destination; nothing
without the ownership tags deleted (snapshots of the destination made by hand, one carrying the policy's tags but not
`ManagedBy`); at most one failure alert per copy and per source. At each day's end (before the next sources): every
source that still exists and completed a day ago has exactly one live copy; each volume keeps at most 7 completed
copies, and at least min(7, its sources copied so far that were not deleted or failed); every copy that failed (in
`error`, deleted while pending, past its deadline) is alerted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_harness import OTHER_REGION, REGION, snapshot_event
from moto.moto_api._internal import mock_random
from tests.support.moto_fidelity import MotoFidelity, faithful_aws, fast_tags

from ops_automation.core import tagging
from ops_automation.snapshot_copy import handlers as copy_handlers

from ..copy import (
    GENERATIONS,
    SOURCE_COMPLETION,
    SOURCE_GENERATIONS,
    SOURCE_POLICIES,
    copy_event,
    environment,
    fast_tag_filters,
)
from ..harness import Clock, installed, moto_account
from .faults import Faults
from .instance_scheduler import AWS_SERVICES, GIVEN_UP, Alerts, StopSoak, Wiring, checked
from .report import ModuleReport

MODULE = "snapshot_copy"
DESTINATION = OTHER_REGION
SOURCE_POLICY = SOURCE_POLICIES["snapshots"]
SOURCES_AT = timedelta(hours=1)
CATCH_UP_EVERY = timedelta(hours=6)  # modules/snapshot-copy's default schedule, rate(6 hours)
FIRST_DAY = datetime(2025, 1, 6, tzinfo=UTC)
STUCK_FOR = timedelta(hours=30)  # a copy stuck `pending` past the 24-hour completion timeout, then completing
FAILED_ALERT = "backup failed; nothing purged"  # core.completion.BACKUP
CANNOT_COPY = "source cannot be copied"
LIVE = frozenset({"pending", "completed"})
POLICY = "dr"  # bench/copy.py's copy policy
ALERT_WITHIN = timedelta(hours=25)  # a failed copy is alerted by its event, or at the latest by the 24-hour check

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
    "source_deleted": 0.003,
    "copy_failed": 0.005,
    "copy_stuck_pending": 0.003,
    "copy_deleted": 0.002,
}
RAISED = {kind: min(0.2, rate * 10) for kind, rate in RATES.items()} | {
    "throttling": 0.06,
    "server_error": 0.03,
    "timeout": 0.03,
    "access_denied": 0.01,
}


@dataclass
class Ledger:
    """What the soak did and saw, to judge the module by."""

    sources: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # source id -> (volume, completed at)
    deleted_sources: set[str] = field(default_factory=set)  # by chaos (the owner), before they were copied
    failed_copies: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # copy id -> (how, started)
    copy_alerts: Counter[str] = field(default_factory=Counter)  # copy id -> failure alerts
    source_alerts: Counter[str] = field(default_factory=Counter)  # source id -> "cannot be copied" alerts
    dead_letters: int = 0


class CopySoak:
    def __init__(self, seed: int, days: int, sources: int, stop_at_step: int | None, rates: dict[str, float]) -> None:
        self.report = ModuleReport(MODULE, seed, days, sources)
        self.days = days
        self.sources = sources
        self.stop_at_step = stop_at_step
        self.faults = Faults(seed, rates)
        self.clock = Clock(FIRST_DAY)
        self.alerts = Alerts()
        self.seen = Ledger()
        self.known_copies: set[str] = set()
        self.chaos: list[tuple[datetime, str, str]] = []  # (when, what, id)
        self.next_catch_up = FIRST_DAY + CATCH_UP_EVERY

    # -- the account -------------------------------------------------------------------------------------------

    def _setup(self, fidelity: MotoFidelity) -> None:
        self.fidelity = fidelity
        self.ec2 = boto3.client("ec2", region_name=REGION)  # the soak's own clients: never faulted
        self.dest = boto3.client("ec2", region_name=DESTINATION)
        self.volumes = [
            self.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"] for _ in range(self.sources)
        ]
        self.history: list[list[str]] = []
        # Not ours: made by hand in the destination, one carrying the policy's tags but not ManagedBy.
        volume, other = (
            self.dest.create_volume(AvailabilityZone=f"{DESTINATION}a", Size=8)["VolumeId"] for _ in range(2)
        )
        mimic = {tagging.POLICY: POLICY, tagging.SOURCE_VOLUME: volume, tagging.SOURCE_REGION: REGION}
        self.foreign = [
            self.dest.create_snapshot(VolumeId=other)["SnapshotId"],
            self.dest.create_snapshot(
                VolumeId=volume,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tagging.tag_list(mimic)}],
            )["SnapshotId"],
        ]

    def _copies(self) -> list[tuple[str, str, str, dict[str, str]]]:
        """(copy id, state, source id, tags) of every snapshot of this policy in the destination."""
        backend = self.fidelity.backend(DESTINATION)
        found = []
        for snapshot in list(backend.snapshots.values()):
            tags = backend.tags.get(snapshot.id) or {}
            if tags.get(tagging.POLICY) != POLICY or tags.get(tagging.MANAGED_BY) != tagging.MANAGED_BY_VALUE:
                continue
            found.append((snapshot.id, snapshot.status, tags.get(tagging.SOURCE_SNAPSHOT, ""), tags))
        return found

    # -- invariants --------------------------------------------------------------------------------------------

    def check(self, step: int) -> None:
        for alert in self.alerts.new():
            self._note_alert(alert)
        copies = self._copies()
        live = Counter(source for _copy, state, source, _tags in copies if state in LIVE)
        for source_id, n in live.items():
            checked(
                self.report,
                "no duplicate copy per source and destination",
                step,
                n <= 1,
                lambda s=source_id, m=n: f"{s}: {m} live copies in {DESTINATION}",
            )
        snapshots = self.fidelity.backend(DESTINATION).snapshots
        for snapshot_id in self.foreign:
            checked(
                self.report,
                "nothing without ownership tags deleted",
                step,
                snapshot_id in snapshots,
                lambda s=snapshot_id: f"{s} (not made by the policy) was deleted",
            )
        for copy_id, n in self.seen.copy_alerts.items():
            checked(self.report, "every failure alerted exactly once", step, n <= 1, lambda c=copy_id, m=n: f"{c}: {m}")
        for source_id, n in self.seen.source_alerts.items():
            checked(
                self.report,
                "every failure alerted exactly once",
                step,
                n <= 1,
                lambda s=source_id, m=n: f"{s}: {m} 'cannot be copied' alerts",
            )
        self._announce()

    def _announce(self) -> None:
        """New copies: their `copySnapshot` event when EC2 ends them (forwarded from the destination), and the
        chaos that meets some of them."""
        for copy_id, record in list(self.fidelity.copy_records.items()):
            if copy_id in self.known_copies or record.by_copy_image:
                continue
            self.known_copies.add(copy_id)
            if self.faults.chance("copy_failed"):
                self.fidelity.end_copy_in_error(copy_id)
                self.seen.failed_copies[copy_id] = ("ended in error", record.started)
            elif self.faults.chance("copy_stuck_pending"):
                record.duration = STUCK_FOR
                self.seen.failed_copies[copy_id] = ("stuck pending past its deadline", record.started)
            elif self.faults.chance("copy_deleted"):
                moment = record.started + record.duration * self.faults.rng.random()
                self.chaos.append((moment, "delete_copy", copy_id))
                self.chaos.sort()
            done = record.started + record.duration
            self.wiring.event(done, self._copy_event(copy_id, record.source_id, record.ends_in_error))

    @staticmethod
    def _copy_event(copy_id: str, source_id: str, error: str | None) -> str:
        body = json.loads(copy_event(copy_id, source_id, DESTINATION))
        if error is not None:
            body["detail"].update(result="failed", cause=error)
        return json.dumps(body)

    def _note_alert(self, alert: dict[str, Any]) -> None:
        kind = alert.get("alert")
        if kind == FAILED_ALERT:
            self.seen.copy_alerts[str(alert.get("resource_id"))] += 1
        elif kind == CANNOT_COPY:
            self.seen.source_alerts[str(alert.get("source_id"))] += 1
        elif kind == GIVEN_UP:
            self.seen.dead_letters += 1

    def end_of_day(self) -> None:
        dead_letters = self.seen.dead_letters + len(self.wiring.dead_letters)
        self.wiring.dead_letters.clear()
        for alert in self.alerts.new():
            self._note_alert(alert)
        dead_letters += self.seen.dead_letters
        self.seen.dead_letters = 0
        step = self.report.steps
        now = self.clock.now
        copies = self._copies()
        live_by_source = Counter(source for _c, state, source, _t in copies if state in LIVE)
        existing = {s.id: s.status for s in self.fidelity.backend(REGION).snapshots.values()}
        for source_id, (_volume, completed) in self.seen.sources.items():
            if existing.get(source_id) != "completed" or completed > now - timedelta(hours=12):
                continue
            checked(
                self.report,
                "every source has exactly one copy per destination",
                step,
                live_by_source.get(source_id, 0) == 1,
                lambda s=source_id: f"{s}: {live_by_source.get(s, 0)} live copies in {DESTINATION}",
            )
        completed = Counter(
            tags.get(tagging.SOURCE_VOLUME, "") for _c, state, _s, tags in copies if state == "completed"
        )
        for volume in self.volumes:
            checked(
                self.report,
                "copies retained per the retention",
                step,
                completed.get(volume, 0) <= GENERATIONS,
                lambda v=volume: f"{v}: {completed.get(v, 0)} completed copies, retention keeps {GENERATIONS}",
            )
        for copy_id, (how, started) in list(self.seen.failed_copies.items()):
            if now < started + ALERT_WITHIN:
                continue  # its deadline is ahead
            checked(
                self.report,
                "every failure alerted exactly once",
                step,
                self.seen.copy_alerts.get(copy_id, 0) >= 1 or dead_letters > 0,
                lambda c=copy_id, h=how: f"copy {c} {h}, not alerted",
            )
            del self.seen.failed_copies[copy_id]

    # -- the year ----------------------------------------------------------------------------------------------

    def run(self, plant: Callable[[CopySoak], None] | None = None) -> ModuleReport:
        """The year; then, for the smoke test, `plant` (a violation made by hand) and every invariant checked again."""
        mock_random.seed(self.report.seed)  # moto's ids: the same seed gives the same run
        with ExitStack() as stack:
            self._setup(stack.enter_context(copy_world(self.clock)))
            self.wiring = Wiring(
                copy_handlers, self.clock, self.faults, self.report, self.check, stop_at_step=self.stop_at_step
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
        self.end_of_day()

    def _year(self) -> None:
        for day in range(self.days + 1):
            at = FIRST_DAY + timedelta(days=day) + SOURCES_AT
            self.wiring.run_until(at, self._next_moment)
            if day:
                self.end_of_day()
            if day == self.days:
                break
            self._new_sources()

    def _new_sources(self) -> None:
        """The source policy's daily snapshots (its own retention first: it keeps the newest 3); each completes after
        10 minutes and its `createSnapshot` event goes to the copy policy's queue."""
        slot = self.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        while len(self.history) >= SOURCE_GENERATIONS:
            for source_id in self.history.pop(0):
                if source_id not in self.seen.deleted_sources:
                    with suppress(Exception):
                        self.ec2.delete_snapshot(SnapshotId=source_id)
                self.seen.sources.pop(source_id, None)
        today: list[str] = []
        done = self.clock.now + SOURCE_COMPLETION
        for volume in self.volumes:
            tags = tagging.ownership_tags(SOURCE_POLICY, source_volume=volume, slot=slot)
            spec = [{"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)}]
            source_id = self.ec2.create_snapshot(VolumeId=volume, TagSpecifications=spec)["SnapshotId"]
            today.append(source_id)
            self.seen.sources[source_id] = (volume, done)
            self.wiring.event(done, snapshot_event(source_id, volume))
            if self.faults.chance("source_deleted"):
                # Deleted by its owner before it could be copied (or while being copied).
                moment = done + timedelta(seconds=self.faults.rng.randrange(0, 1800))
                self.chaos.append((moment, "delete_source", source_id))
        self.chaos.sort()
        self.history.append(today)

    def _next_moment(self) -> datetime | None:
        """Chaos and catch-ups due now; the next moment one is due."""
        while self.chaos and self.chaos[0][0] <= self.clock.now:
            _moment, what, resource_id = self.chaos.pop(0)
            if what == "delete_source":
                with suppress(Exception):
                    self.ec2.delete_snapshot(SnapshotId=resource_id)
                self.seen.deleted_sources.add(resource_id)
                self.seen.sources.pop(resource_id, None)
            elif self._state(resource_id) == "pending":
                with suppress(Exception):
                    self.dest.delete_snapshot(SnapshotId=resource_id)
                    started = self.fidelity.copy_records[resource_id].started
                    self.seen.failed_copies[resource_id] = ("deleted while pending", started)
        if self.next_catch_up <= self.clock.now:
            at = self.next_catch_up
            self.next_catch_up += CATCH_UP_EVERY
            self.wiring.schedule({"scheduled_time": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
        moments = [self.next_catch_up, *([self.chaos[0][0]] if self.chaos else [])]
        return min(moments)

    def _state(self, copy_id: str) -> str | None:
        snapshot = self.fidelity.backend(DESTINATION).snapshots.get(copy_id)
        return None if snapshot is None else str(snapshot.status)


@contextmanager
def copy_world(clock: Clock) -> Iterator[MotoFidelity]:
    """bench/copy.py's account settings (snapshots of `daily-volumes` copied to one destination, encrypted, 7
    generations, 24-hour completion timeout), SQS on the clock, and bench/copy.py's speed shims (moto's answers
    unchanged: `fast_tags`, `fast_tag_filters`); yields the fidelity."""
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True) as fidelity,
        fast_tags(),
        fast_tag_filters(),
        installed(infra, clock, module=MODULE, **environment(False, (DESTINATION,))),
    ):
        yield fidelity


def soak(
    seed: int, days: int, sources: int, stop_at_step: int | None = None, rates: dict[str, float] | None = None
) -> ModuleReport:
    return CopySoak(seed, days, sources, stop_at_step, rates or RATES).run()
