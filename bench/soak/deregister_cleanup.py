"""Soak of deregister-cleanup (scope `managed`, 24-hour grace, as modules/internal's defaults): `sources` instances
each backed up daily by an AMI carrying this project's ownership tags (another policy's, as ami-backup makes
them), the oldest past 3 generations deregistered; the real worker on every `EC2 AMI State Change` (deregistered)
event and the real sweeper daily at 03:30, on moto made faithful (bench/soak/world.py drives them as the deployed
wiring does).

What happens (seeded by the run's `Faults`): the deregistration events are lost, repeated or late (the sweep must
catch what they missed); an AMI without ownership tags is deregistered now and then (`unmanaged_image`: its
snapshot is not ours to delete); an AMI goes to the Recycle Bin for 3 days instead (`recycled`: its snapshot must
stay while it can be restored); another AMI registers a snapshot just as it is deleted (`in_use_race`); and
`InvalidSnapshot.InUse` answers DeleteSnapshot for 7 minutes after each deregistration (world.IN_USE_WINDOW).

Invariants (besides world.py's deletions and alerts): no snapshot of a managed AMI left behind longer than the
grace period plus one sweep interval plus the purge's deadline after its AMI is gone, unless an alert named it or an
AMI still uses it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from aws_harness import REGION, START, ami_event, run_instances

from ops_automation.core import tagging
from ops_automation.core.purge import PURGE_DEADLINE
from ops_automation.deregister_cleanup import handlers

from ..cleanup import MANAGED_TAGS
from .report import ModuleReport
from .world import World

GENERATIONS = 3  # AMIs each instance keeps registered
GRACE = timedelta(hours=24)  # OPS_CLEANUP_GRACE_HOURS
SWEEP_AFTER_SLOT = timedelta(hours=2, minutes=30)  # the sweep at 03:30, the backups at 01:00
RECYCLE_RETENTION = timedelta(days=3)
ORPHAN_LIMIT = GRACE + timedelta(days=1) + PURGE_DEADLINE
LEFT_BEHIND_ALERTS = (
    "snapshots left behind after their AMI was deregistered",
    "snapshots left behind: their deletion kept failing",
)
RATES = {
    "lost_event": 0.03,  # per deregistration event
    "duplicate_event": 0.03,
    "out_of_order_event": 0.03,
    "crash_mid_batch": 0.01,  # per worker invocation
    "lambda_retry": 0.02,  # per scheduled invocation
    "unmanaged_image": 0.1,  # per day
    "recycled": 0.01,  # per deregistration
    "in_use_race": 0.01,  # per DeleteSnapshot
}


class DeregisterCleanupSoak(World):
    handlers = handlers

    def setup(self) -> None:
        self.instances: list[str] = []
        for start in range(0, self.sources, 50):
            self.instances += run_instances(self.ec2, min(50, self.sources - start))
        self.registered: dict[str, list[str]] = defaultdict(list)  # instance -> its managed AMIs, oldest first
        self.made = 0
        self.gone_at: dict[str, Any] = {}  # AMI -> when it stopped holding its snapshot (deregistered, bin exit)
        self.shared_with: dict[str, list[str]] = {}  # snapshot -> the AMIs the InUse race made map it

    def create_image(self, instance_id: str, tags: dict[str, str] | None) -> str:
        """An AMI and its snapshot as CreateImage makes them (EC2's description; tags on both when given)."""
        self.made += 1
        spec = (
            [{"ResourceType": kind, "Tags": tagging.tag_list(tags)} for kind in ("image", "snapshot")] if tags else []
        )
        return str(self.backend.create_image(instance_id, f"soak-{self.made}", "", spec).id)

    # -- a day ------------------------------------------------------------------------------------------------------

    def day(self, day: int) -> None:
        slot = START + timedelta(days=day)
        self.run_until(slot)
        rng = self.faults.rng
        for instance_id in self.instances:
            images = self.registered[instance_id]
            images.append(self.create_image(instance_id, MANAGED_TAGS))
            while len(images) > self.generations:
                image_id = images.pop(0)
                self.at(slot + timedelta(minutes=rng.uniform(1, 30)), lambda i=image_id: self.deregister(i))
        if self.faults.chance("unmanaged_image"):
            image_id = self.create_image(self.faults.pick(self.instances), None)
            self.at(slot + timedelta(hours=rng.uniform(1, 20)), lambda: self.deregister(image_id))
        self.run_until(slot + SWEEP_AFTER_SLOT)
        self.scheduled(handlers.sweep_handler)

    def deregister(self, image_id: str) -> None:
        if self.faults.chance("recycled"):
            exits = self.clock.now + RECYCLE_RETENTION
            self.fidelity.recycle_image(REGION, image_id, exits)
            self.gone_at[image_id] = exits
        else:
            self.ec2.deregister_image(ImageId=image_id)
            self.gone_at[image_id] = self.clock.now
        self.emit_event(ami_event(image_id, "deregistered"), timedelta(seconds=5))

    def before_snapshot_deletion(self, snapshot_id: str) -> None:
        """The InUse race: a registered AMI of ours is made to map the snapshot just as it is deleted."""
        if self.faults.chance("in_use_race"):
            holders = [images[-1] for images in self.registered.values() if images]
            holder = next((image_id for image_id in holders if image_id in self.backend.amis), None)
            if holder is not None:
                self.fidelity.share_snapshot(REGION, holder, snapshot_id)
                self.shared_with.setdefault(snapshot_id, []).append(holder)

    # -- invariants -------------------------------------------------------------------------------------------------

    def owns(self, tags: dict[str, str]) -> bool:
        return self.owned_by(tags, None)  # scope `managed`: any policy of this project

    def alert_subjects(self, alert: dict[str, Any]) -> list[str]:
        what = alert.get("alert")
        if what == "orphan sweep incomplete":
            return [str(alert["slot"])]
        if what == "work item given up to the dead-letter queue":
            return [str(alert["message_id"])]
        if what in LEFT_BEHIND_ALERTS:
            return sorted(alert["snapshots"])
        return super().alert_subjects(alert)

    def check_module(self) -> None:
        alerted = {subject for (what, subject) in self.alert_counts if what in LEFT_BEHIND_ALERTS}
        for snapshot_id, snapshot in self.backend.snapshots.items():
            image_id = self.image_of_snapshot(snapshot)
            gone = self.gone_at.get(image_id or "")
            if gone is not None:  # an orphan from when the last AMI holding it went, its own or one that raced
                holders = [self.gone_at.get(holder) for holder in self.shared_with.get(snapshot_id, [])]
                gone = None if None in holders else max([gone, *holders])
            if gone is None or self.clock.now - gone <= ORPHAN_LIMIT or snapshot_id in alerted:
                continue
            if self.owns(self.tags_of(snapshot_id)) and not self.images_using(snapshot_id):
                self.violate(
                    "no orphaned snapshot older than the grace period",
                    snapshot_id,
                    f"{snapshot_id} of {image_id} (gone {gone:%Y-%m-%d %H:%M}) never deleted nor alerted",
                )


def soak(seed: int, days: int, sources: int, stop_at_step: int | None = None, **rates: float) -> ModuleReport:
    return DeregisterCleanupSoak("deregister_cleanup", seed, days, sources, stop_at_step, {**RATES, **rates}).run()
