"""EBS snapshots as backups: listing, how a snapshot's state counts, and snapshot sets.

A set is what one slot made for one source: one snapshot (CreateSnapshot) or all the snapshots of one
crash-consistent CreateSnapshots call. Sets are the unit of completion and retention: a set is good only when
every snapshot in it completed, and it is kept or retired whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from . import tagging
from .retention import RetentionItem, State
from .targeting import MAX_FILTER_VALUES, PAGE_SIZE, chunked

# DescribeSnapshots states. `recoverable`: deleted and held in the Recycle Bin, no longer a backup; `recovering`:
# being restored from it, not usable yet.
SNAPSHOT_STATES: Mapping[str, State | None] = {
    "completed": "available",
    "pending": "pending",
    "recovering": "pending",
    "error": "failed",
    "recoverable": None,
}
ARCHIVE_TIER = "archive"
# An archived snapshot is billed for at least 90 days in the archive tier; deleting it earlier is charged for the
# rest of that period (EBS snapshot archive pricing).
ARCHIVE_MINIMUM = timedelta(days=90)


def list_snapshots(ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This account's snapshots only (`OwnerIds=self`: without it the listing includes every public snapshot)."""
    return [snapshot for page in snapshot_pages(ec2, filters) for snapshot in page]


def list_snapshots_by_id(ec2: Any, snapshot_ids: Iterable[str]) -> list[dict[str, Any]]:
    """A filter rather than `SnapshotIds`: one id deleted meanwhile would otherwise fail the whole call."""
    found: list[dict[str, Any]] = []
    for chunk in chunked(sorted(set(snapshot_ids)), MAX_FILTER_VALUES):
        found.extend(list_snapshots(ec2, [{"Name": "snapshot-id", "Values": chunk}]))
    return found


def snapshot_state(snapshot: Mapping[str, Any]) -> State | None:
    return SNAPSHOT_STATES.get(str(snapshot.get("State", "")), "pending")


def is_archived(snapshot: Mapping[str, Any]) -> bool:
    """In the archive tier, or temporarily restored from it (`StorageTier` is `standard` then, with a
    `RestoreExpiryTime`)."""
    return snapshot.get("StorageTier") == ARCHIVE_TIER or bool(snapshot.get("RestoreExpiryTime"))


def locked_snapshot_ids(ec2: Any, snapshot_ids: Iterable[str]) -> set[str]:
    """The snapshots under a snapshot lock that has not expired. DeleteSnapshot refuses them whatever the caller's
    permissions, with an error code AWS does not document, so the lock is asked for before deleting."""
    locked: set[str] = set()
    # Ids and MaxResults together are refused (InvalidParameterCombination): one call per chunk of ids.
    for chunk in chunked(sorted(set(snapshot_ids)), MAX_FILTER_VALUES):
        response = ec2.describe_locked_snapshots(SnapshotIds=chunk)
        locked.update(
            str(entry["SnapshotId"]) for entry in response.get("Snapshots", []) if entry.get("LockState") != "expired"
        )
    return locked


def archive_minimum_passed(ec2: Any, snapshot_ids: Iterable[str], now: datetime) -> set[str]:
    """The archived snapshots whose archival completed at least the archive tier's minimum period ago. One still
    being archived, or whose archival time is not reported, has not passed it."""
    passed: set[str] = set()
    for chunk in chunked(sorted(set(snapshot_ids)), MAX_FILTER_VALUES):
        paginator = ec2.get_paginator("describe_snapshot_tier_status")
        for page in paginator.paginate(Filters=[{"Name": "snapshot-id", "Values": chunk}]):
            for status in page.get("SnapshotTierStatuses", []):
                archived_at = status.get("ArchivalCompleteTime")
                archived = status.get("StorageTier") == ARCHIVE_TIER and isinstance(archived_at, datetime)
                if archived and archived_at + ARCHIVE_MINIMUM <= now:
                    passed.add(str(status["SnapshotId"]))
    return passed


def snapshot_pages(ec2: Any, filters: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """This account's snapshots page by page (memory bounded by a page)."""
    paginator = ec2.get_paginator("describe_snapshots")
    for page in paginator.paginate(OwnerIds=["self"], Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}):
        yield page.get("Snapshots", [])


@dataclass(frozen=True)
class SnapshotSet:
    slot: str
    snapshots: tuple[Mapping[str, Any], ...]
    # Snapshots the request made that no longer exist: a set missing one is not a good backup.
    missing: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(sorted(str(snapshot["SnapshotId"]) for snapshot in self.snapshots))

    @property
    def key(self) -> str:
        """The set's ledger id: the lowest snapshot id the request made, which the set's completion event lists."""
        return min((*self.ids, *self.missing))

    @property
    def created_at(self) -> datetime:
        return min(start_time(snapshot) for snapshot in self.snapshots)

    @property
    def state(self) -> State | None:
        states = [snapshot_state(snapshot) for snapshot in self.snapshots]
        if "failed" in states or self.missing:
            return "failed"
        if None in states:
            return None
        return "available" if all(state == "available" for state in states) else "pending"

    @property
    def reason(self) -> str:
        for snapshot in self.snapshots:
            if snapshot_state(snapshot) == "failed":
                return f"{snapshot['SnapshotId']}: {snapshot.get('StateMessage') or 'in state error'}"
        if self.missing:
            return f"snapshot(s) {', '.join(self.missing)} of the set no longer exist"
        return ""

    @property
    def failed_ids(self) -> tuple[str, ...]:
        return tuple(sorted(str(s["SnapshotId"]) for s in self.snapshots if snapshot_state(s) == "failed"))

    def contains(self, snapshot_id: str) -> bool:
        return snapshot_id in self.ids or snapshot_id in self.missing

    @property
    def archived(self) -> bool:
        return any(is_archived(snapshot) for snapshot in self.snapshots)

    def owned_by(self, policy: str) -> bool:
        return all(tagging.is_owned(snapshot.get("Tags"), policy) for snapshot in self.snapshots)


def start_time(snapshot: Mapping[str, Any]) -> datetime:
    started = snapshot["StartTime"]
    if isinstance(started, datetime):
        return started
    return datetime.fromisoformat(str(started).replace("Z", "+00:00"))


def group_sets(snapshots: Iterable[Mapping[str, Any]]) -> list[SnapshotSet]:
    """Snapshots grouped by their slot tag (a snapshot without one is a set of its own), oldest first."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for snapshot in snapshots:
        slot = tagging.tag_dict(snapshot.get("Tags")).get(tagging.SLOT) or f"untagged:{snapshot['SnapshotId']}"
        groups.setdefault(slot, []).append(snapshot)
    sets = [SnapshotSet(slot, tuple(members)) for slot, members in groups.items()]
    return sorted(sets, key=lambda snapshot_set: (snapshot_set.created_at, snapshot_set.key))


def retention_item(snapshot_set: SnapshotSet, policy: str) -> RetentionItem | None:
    state = snapshot_set.state
    if state is None:
        return None
    return RetentionItem(
        id=snapshot_set.key,
        created_at=snapshot_set.created_at,
        state=state,
        managed=snapshot_set.owned_by(policy),
        restore=set_restore_result(snapshot_set),
    )


def set_restore_result(snapshot_set: SnapshotSet) -> Literal["passed", "failed"] | None:
    """A set's restore result is tagged on every snapshot of it. One `failed` fails the set; `passed` needs all:
    a set whose tagging was interrupted counts as untested until the test's retry finishes tagging it."""
    results = [
        tagging.tag_dict(snapshot.get("Tags")).get(tagging.RESTORE_RESULT) for snapshot in snapshot_set.snapshots
    ]
    if "failed" in results:
        return "failed"
    return "passed" if results and all(result == "passed" for result in results) else None
