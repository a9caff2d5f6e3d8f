"""Soak of ami-backup: `sources` instances tagged for the nightly policy, a daily slot for `days` days, the real
planner and worker (bench/soak/world.py drives them as the deployed wiring does), on moto made faithful.

What AWS does to the AMIs (each seeded by the run's `Faults`): an AMI is `pending` for a few minutes, then
`available` (its `EC2 AMI State Change` event follows); `image_failed` makes it `failed`; `stuck_pending` keeps it
pending for hours, past the completion deadline, before it fails. Instances are terminated now and then around
their slot (`instance_terminated`, a new tagged instance takes the place), AMIs of other tools are registered for
the same instances (`foreign_image`: the origin's tags alone, or this project's with another policy), and another
AMI registers a snapshot just as the purge deletes it (`in_use_race`).

Invariants (besides world.py's deletions and alerts): never fewer than min(N, good backups made) good backups per
instance; at most one AMI per instance and slot; no snapshot of a retired AMI left past the purge's deadline unless
an alert named it or another AMI uses it.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from aws_harness import POLICY, REGION, START, ami_event, run_instances

from ops_automation.ami_backup import handlers
from ops_automation.core import tagging
from ops_automation.core.purge import PURGE_DEADLINE, PURGE_NOT_QUEUED

from .report import ModuleReport
from .world import World

GENERATIONS = 3
TAGS = {"Backup": "nightly"}
LEFT_BEHIND_ALERTS = (
    "snapshots left behind after their AMI was deregistered",
    "snapshots left behind: their deletion kept failing",
    PURGE_NOT_QUEUED,
)
# A purge retries until PURGE_DEADLINE, then alerts; an hour on top for its last back-off.
ORPHAN_GRACE = PURGE_DEADLINE + timedelta(hours=1)
RATES = {
    "image_failed": 0.01,  # per AMI
    "stuck_pending": 0.005,  # per AMI
    "lost_event": 0.03,  # per state event
    "duplicate_event": 0.03,
    "out_of_order_event": 0.03,
    "crash_mid_batch": 0.01,  # per worker invocation
    "lambda_retry": 0.02,  # per scheduled invocation
    "instance_terminated": 0.05,  # per day
    "foreign_image": 0.02,  # per day
    "in_use_race": 0.005,  # per DeleteSnapshot
}


class AmiBackupSoak(World):
    handlers = handlers

    def setup(self) -> None:
        self.live: list[str] = []
        for start in range(0, self.sources, 50):
            self.live += run_instances(self.ec2, min(50, self.sources - start), TAGS)
        self.known: set[str] = set()
        self.made: Counter[str] = Counter()  # good backups made, by instance
        self.decoys: list[str] = []
        self.foreign_made = 0
        for instance_id in self.live[::10]:
            self.foreign_image(instance_id)

    def foreign_image(self, instance_id: str) -> None:
        """AMIs of other tools for the instance: the origin's tags alone, and ours with another policy."""
        for tags in (
            {tagging.SOURCE_INSTANCE: instance_id, "InstanceId": instance_id},
            {
                tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
                tagging.POLICY: "weekly",
                tagging.SOURCE_INSTANCE: instance_id,
            },
        ):
            self.foreign_made += 1
            spec = [{"ResourceType": kind, "Tags": tagging.tag_list(tags)} for kind in ("image", "snapshot")]
            image = self.backend.create_image(instance_id, f"other-tool-{self.foreign_made}", "", spec)
            self.known.add(image.id)
            self.decoys.append(image.id)

    # -- a day ------------------------------------------------------------------------------------------------------

    def day(self, day: int) -> None:
        slot = START + timedelta(days=day)
        self.run_until(slot)
        if self.faults.chance("instance_terminated") and len(self.live) > 1:
            victim = self.faults.pick(self.live)
            self.at(slot + timedelta(seconds=self.faults.rng.uniform(0, 600)), lambda: self.terminate(victim))
        if self.faults.chance("foreign_image"):
            self.foreign_image(self.faults.pick(self.live))
        self.scheduled(handlers.plan_handler)

    def terminate(self, instance_id: str) -> None:
        self.ec2.terminate_instances(InstanceIds=[instance_id])
        self.live.remove(instance_id)
        self.live += run_instances(self.ec2, 1, TAGS)

    # -- what EC2 does with the AMIs ------------------------------------------------------------------------------

    def observe(self) -> None:
        for image_id in [image_id for image_id in self.backend.amis if image_id not in self.known]:
            self.known.add(image_id)
            tags = self.tags_of(image_id)
            if not self.owned_by(tags, POLICY):
                continue
            source = tags.get(tagging.SOURCE_INSTANCE, "")
            rng = self.faults.rng
            if self.faults.chance("image_failed"):
                self.fidelity.set_image_state(REGION, image_id, "failed")
                self.emit_event(ami_event(image_id, "failed"), timedelta(minutes=rng.uniform(5, 30)))
                continue
            self.fidelity.set_image_state(REGION, image_id, "pending")
            if self.faults.chance("stuck_pending"):
                when = self.clock.now + timedelta(hours=rng.uniform(2, 8))
                self.at(when, lambda image_id=image_id, source=source: self.settle(image_id, source, "failed"))
            else:
                when = self.clock.now + timedelta(minutes=rng.uniform(3, 25))
                self.at(when, lambda image_id=image_id, source=source: self.settle(image_id, source, "available"))

    def settle(self, image_id: str, source: str, state: str) -> None:
        if image_id not in self.backend.amis:
            return
        self.fidelity.set_image_state(REGION, image_id, state)
        if state == "available":
            self.made[source] += 1
        self.emit_event(ami_event(image_id, state), timedelta(seconds=5))

    def before_snapshot_deletion(self, snapshot_id: str) -> None:
        """The InUse race: an AMI of another tool is registered from the snapshot just as the purge deletes it."""
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
        if what == "instance cannot be backed up":
            return [f"{alert['instance_id']}@{alert['slot']}"]
        if what == "work item given up to the dead-letter queue":
            return [str(alert["message_id"])]
        if what in LEFT_BEHIND_ALERTS:
            return sorted(alert["snapshots"])
        return super().alert_subjects(alert)

    def check_module(self) -> None:
        good: Counter[str] = Counter()
        per_slot: Counter[tuple[str, str]] = Counter()
        for image_id, ami in self.backend.amis.items():
            tags = self.tags_of(image_id)
            if not self.owned_by(tags, POLICY):
                continue
            source = tags.get(tagging.SOURCE_INSTANCE, "")
            per_slot[(source, tags.get(tagging.SLOT, ""))] += 1
            if ami.state == "available" and ami.ebs_snapshot.id in self.backend.snapshots:
                good[source] += 1
        for source, made in self.made.items():
            if good[source] < min(self.generations, made):
                self.violate(
                    "never fewer than min(N, good made) good backups",
                    source,
                    f"{source}: {good[source]} good AMIs, {made} made, N = {self.generations}",
                )
        for (source, slot), count in per_slot.items():
            if count > 1:
                self.violate("no duplicate backup per source per slot", f"{source}@{slot}", f"{count} AMIs")
        self.check_orphans()

    def check_orphans(self) -> None:
        """A snapshot of an AMI this policy deregistered, still there past the purge's deadline, is a leak unless
        an alert named it or another AMI uses it."""
        alerted = {subject for (what, subject) in self.alert_counts if what in LEFT_BEHIND_ALERTS}
        for snapshot_id, snapshot in self.backend.snapshots.items():
            image_id = self.image_of_snapshot(snapshot)
            since = self.deregistered_at.get(image_id or "")
            if since is None or self.clock.now - since <= ORPHAN_GRACE or snapshot_id in alerted:
                continue
            if self.owned_by(self.tags_of(snapshot_id), POLICY) and not self.images_using(snapshot_id):
                self.violate(
                    "no orphaned snapshot older than the grace period",
                    snapshot_id,
                    f"{snapshot_id} of {image_id} (deregistered {since:%Y-%m-%d %H:%M}) never purged nor alerted",
                )


def soak(seed: int, days: int, sources: int, stop_at_step: int | None = None, **rates: float) -> ModuleReport:
    return AmiBackupSoak(
        "ami_backup", seed, days, sources, stop_at_step, {**RATES, **rates}, {"OPS_GENERATIONS": str(GENERATIONS)}
    ).run()
