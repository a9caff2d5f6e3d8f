"""Soak of ebs-snapshot (volume mode, as examples/ebs-snapshot: volumes by tag, 3 generations): `sources` tagged
data volumes (two per instance, bench/ebs.py's fleet), a daily slot for `days` days, the real planner and worker on
moto made faithful (bench/soak/world.py drives them as the deployed wiring does).

What AWS does to the snapshots (seeded by the run's `Faults`): a snapshot is `pending` for the fidelity's 10 minutes
(E11), then `completed`, and its `EBS Snapshot Notification` follows; `snapshot_failed` ends it in `error` (event
result `failed`); `stuck_pending` keeps it pending for hours, past the completion deadline, before it errs. Volumes
are deleted now and then around their slot (`volume_deleted`, a new tagged volume takes the place), snapshots of
other tools carry the same volume's tags (`foreign_snapshot`), and an AMI is registered from a snapshot just as the
retention deletes it (`in_use_race`). CreateSnapshot has no client token and is called without SDK retries: a
timeout leaves its outcome unknown, the case the claim in the ledger is for.

Invariants (besides world.py's deletions and alerts): never fewer than min(N, good snapshots made) completed
snapshots per volume; at most one snapshot per volume and slot. (No orphan invariant: EBS snapshots belong to no
AMI.)
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from aws_harness import POLICY, REGION, START, run_instances, snapshot_event

from ops_automation.core import tagging
from ops_automation.ebs_snapshot import handlers

from ..ebs import ENVIRONMENT, TAGS, VOLUMES_PER_INSTANCE, fleet
from .report import ModuleReport
from .world import World

GENERATIONS = 3
COMPLETION = timedelta(minutes=10)  # tests/support/moto_fidelity.py E11: DEFAULT_SNAPSHOT_COMPLETION_TIME
RATES = {
    "snapshot_failed": 0.01,  # per snapshot
    "stuck_pending": 0.005,
    "lost_event": 0.03,  # per state event
    "duplicate_event": 0.03,
    "out_of_order_event": 0.03,
    "crash_mid_batch": 0.01,  # per worker invocation
    "lambda_retry": 0.02,  # per scheduled invocation
    "volume_deleted": 0.05,  # per day
    "foreign_snapshot": 0.02,  # per day
    "in_use_race": 0.005,  # per DeleteSnapshot
}


class EbsSnapshotSoak(World):
    handlers = handlers

    def setup(self) -> None:
        self.live: list[str] = fleet(self.ec2, -(-self.sources // VOLUMES_PER_INSTANCE))[: self.sources]
        self.known: set[str] = set()
        self.made: Counter[str] = Counter()
        self.decoys: list[str] = []  # AMIs of another tool, to race the deletions with
        [instance] = run_instances(self.ec2, 1)
        for index in range(3):
            self.decoys.append(self.backend.create_image(instance, f"other-tool-{index}", "", []).id)
        self.foreign_made = 0
        for volume_id in self.live[::10]:
            self.foreign_snapshot(volume_id)

    def foreign_snapshot(self, volume_id: str) -> None:
        """Snapshots of other tools of the volume: the source tag alone, and ours with another policy."""
        for tags in (
            {tagging.SOURCE_VOLUME: volume_id, **TAGS},
            {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: "weekly", tagging.SOURCE_VOLUME: volume_id},
        ):
            self.foreign_made += 1
            snapshot_id = self.ec2.create_snapshot(
                VolumeId=volume_id,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)}],
            )["SnapshotId"]
            self.known.add(snapshot_id)
            self.clock.now += timedelta(seconds=16)  # E13: one snapshot per volume every 15 s

    # -- a day ------------------------------------------------------------------------------------------------------

    def day(self, day: int) -> None:
        slot = START + timedelta(days=day)
        self.run_until(slot)
        if self.faults.chance("volume_deleted") and len(self.live) > 1:
            victim = self.faults.pick(self.live)
            self.at(slot + timedelta(seconds=self.faults.rng.uniform(0, 600)), lambda: self.delete_volume(victim))
        if self.faults.chance("foreign_snapshot"):
            self.foreign_snapshot(self.faults.pick(self.live))
        self.scheduled(handlers.plan_handler)

    def delete_volume(self, volume_id: str) -> None:
        volume = self.backend.get_volume(volume_id)
        instance_id = volume.attachment.instance.id if volume.attachment else None
        if instance_id:
            self.ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id)
        self.ec2.delete_volume(VolumeId=volume_id)
        self.live.remove(volume_id)
        replacement = self.ec2.create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=8,
            TagSpecifications=[{"ResourceType": "volume", "Tags": tagging.tag_list(TAGS)}],
        )["VolumeId"]
        if instance_id:
            self.ec2.attach_volume(VolumeId=replacement, InstanceId=instance_id, Device="/dev/sdz")
        self.live.append(replacement)

    # -- what EBS does with the snapshots ----------------------------------------------------------------------------

    def observe(self) -> None:
        for snapshot_id in [snapshot_id for snapshot_id in self.backend.snapshots if snapshot_id not in self.known]:
            self.known.add(snapshot_id)
            tags = self.tags_of(snapshot_id)
            if not self.owned_by(tags, POLICY):
                continue
            volume_id = self.backend.snapshots[snapshot_id].volume.id
            rng = self.faults.rng
            if self.faults.chance("snapshot_failed"):
                when = self.clock.now + timedelta(minutes=rng.uniform(1, 9))
            elif self.faults.chance("stuck_pending"):
                self.fidelity.set_snapshot_state(REGION, snapshot_id, "pending")
                when = self.clock.now + timedelta(hours=rng.uniform(2, 8))
            else:
                when = self.clock.now + COMPLETION + timedelta(seconds=1)
                self.at(when, lambda s=snapshot_id, v=volume_id: self.settle(s, v, "completed"))
                continue
            self.at(when, lambda s=snapshot_id, v=volume_id: self.settle(s, v, "error"))

    def settle(self, snapshot_id: str, volume_id: str, state: str) -> None:
        if snapshot_id not in self.backend.snapshots:
            return
        if state == "error":
            self.fidelity.set_snapshot_state(REGION, snapshot_id, "error", "soak: the snapshot failed")
        elif self.backend.snapshots[snapshot_id].status != "completed":
            return
        else:
            self.made[volume_id] += 1
        result = "succeeded" if state == "completed" else "failed"
        self.emit_event(snapshot_event(snapshot_id, volume_id, result), timedelta(seconds=5))

    def before_snapshot_deletion(self, snapshot_id: str) -> None:
        """The InUse race: another tool registers an AMI from the snapshot just as retention deletes it."""
        holders = [image_id for image_id in self.decoys if image_id in self.backend.amis]
        if holders and self.faults.chance("in_use_race"):
            self.fidelity.share_snapshot(REGION, self.faults.pick(holders), snapshot_id)

    # -- invariants -------------------------------------------------------------------------------------------------

    def owns(self, tags: dict[str, str]) -> bool:
        return self.owned_by(tags, POLICY)

    def alert_subjects(self, alert: dict[str, Any]) -> list[str]:
        what = alert.get("alert")
        if what == "backup failed; nothing purged":
            return [str(alert["resource_id"])]
        if what == "source cannot be backed up":
            return [f"{alert['source_id']}@{alert['slot']}"]
        if what == "work item given up to the dead-letter queue":
            return [str(alert["message_id"])]
        if isinstance(alert.get("snapshots"), dict):
            return sorted(alert["snapshots"])
        return super().alert_subjects(alert)

    def check_module(self) -> None:
        good: Counter[str] = Counter()
        per_slot: Counter[tuple[str, str]] = Counter()
        for snapshot_id, snapshot in self.backend.snapshots.items():
            tags = self.tags_of(snapshot_id)
            if not self.owned_by(tags, POLICY):
                continue
            volume_id = snapshot.volume.id
            per_slot[(volume_id, tags.get(tagging.SLOT, ""))] += 1
            if snapshot.status == "completed":
                good[volume_id] += 1
        for volume_id, made in self.made.items():
            if good[volume_id] < min(self.generations, made):
                self.violate(
                    "never fewer than min(N, good made) good backups",
                    volume_id,
                    f"{volume_id}: {good[volume_id]} completed snapshots, {made} made, N = {self.generations}",
                )
        for (volume_id, slot), count in per_slot.items():
            if count > 1:
                self.violate("no duplicate backup per source per slot", f"{volume_id}@{slot}", f"{count} snapshots")


def soak(seed: int, days: int, sources: int, stop_at_step: int | None = None, **rates: float) -> ModuleReport:
    env = {**ENVIRONMENT["volume"], "OPS_GENERATIONS": str(GENERATIONS)}
    return EbsSnapshotSoak("ebs_snapshot", seed, days, sources, stop_at_step, {**RATES, **rates}, env).run()
