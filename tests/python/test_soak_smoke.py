"""A short seeded soak of ami-backup, ebs-snapshot and deregister-cleanup (`make soak` runs a simulated year): each
runs its real handlers through a few days of raised fault rates with no violation, injects faults of several kinds,
and each invariant checker flags a violation planted in the emulated account, so the soak can fail. No timing."""

from __future__ import annotations

import json
from datetime import timedelta

import bench  # noqa: F401 - puts the paths the soak needs in place
import boto3
import pytest
from aws_harness import LEDGER_TABLE, POLICY, REGION
from bench.soak import ami_backup, deregister_cleanup, ebs_snapshot
from bench.soak.faults import Faults
from bench.soak.world import World

from ops_automation.ami_backup import handlers as ami_handlers
from ops_automation.core import tagging
from ops_automation.deregister_cleanup import handlers as cleanup_handlers

pytestmark = pytest.mark.tier1

SEED = 3
DAYS = 3
SOURCES = 2
# Raised, so a few days meet every kind; one generation, so retention and purges run from the second day.
AWS_RATES = {"throttling": 0.08, "server_error": 0.03, "timeout": 0.03, "access_denied": 0.01}
WORLD_RATES = {
    "lost_event": 0.2,
    "duplicate_event": 0.2,
    "out_of_order_event": 0.2,
    "crash_mid_batch": 0.1,
    "lambda_retry": 0.3,
    "image_failed": 0.15,
    "stuck_pending": 0.1,
    "snapshot_failed": 0.15,
    "instance_terminated": 0.5,
    "volume_deleted": 0.5,
    "unmanaged_image": 0.5,
    "recycled": 0.2,
    "in_use_race": 0.2,
}
ONE_GENERATION = {"OPS_GENERATIONS": "1"}


def ami_world() -> World:
    rates = {**ami_backup.RATES, **AWS_RATES, **WORLD_RATES}
    return ami_backup.AmiBackupSoak("ami_backup", SEED, DAYS, SOURCES, None, rates, ONE_GENERATION)


def ebs_world() -> World:
    rates = {**ebs_snapshot.RATES, **AWS_RATES, **WORLD_RATES}
    env = {**ebs_snapshot.ENVIRONMENT["volume"], **ONE_GENERATION}
    return ebs_snapshot.EbsSnapshotSoak("ebs_snapshot", SEED, DAYS, SOURCES, None, rates, env)


def cleanup_world() -> World:
    rates = {**deregister_cleanup.RATES, **AWS_RATES, **WORLD_RATES}
    soak = deregister_cleanup.DeregisterCleanupSoak("deregister_cleanup", SEED, DAYS, SOURCES, None, rates)
    soak.generations = 1  # AMIs the soak keeps registered per instance: deregistrations from the second day
    return soak


def assert_clean_run_with_faults(world: World) -> None:
    """The soak itself (moto accounts do not nest: each test opens one, runs it, then plants in it)."""
    world.run_days()
    report = world.report
    assert report.violations == []
    assert report.steps > DAYS and report.checks == 3 * report.steps
    assert len(report.faults) >= 4, report.faults
    assert any(kind in report.faults for kind in ("throttling", "server_error", "timeout", "access_denied"))
    assert world.outcomes["worker"] > 0
    world.faults.rates.clear()  # the plants below meet no fault


def _flagged(world: World) -> set[str]:
    before = len(world.report.violations)
    world.check()
    return {violation.invariant for violation in world.report.violations[before:]}


def test_faults_are_seeded_and_answer_as_aws_does() -> None:
    first, second = Faults(9, {"throttling": 0.5}), Faults(9, {"throttling": 0.5})
    assert [first.chance("throttling") for _ in range(50)] == [second.chance("throttling") for _ in range(50)]
    assert first.injected == second.injected and 0 < first.injected["throttling"] < 50
    assert Faults(9).chance("not a kind") is False  # a kind without a rate never happens


# ---------------------------------------------------------------------------------------------------------------
# Each checker flags a planted violation
# ---------------------------------------------------------------------------------------------------------------


def _owned_images(world: World) -> list[str]:
    return [image_id for image_id in world.backend.amis if world.owned_by(world.tags_of(image_id), POLICY)]


def test_ami_backup_soak_keeps_its_invariants_and_each_checker_flags_a_planted_violation() -> None:
    world = ami_world()
    with world.opened():
        assert_clean_run_with_faults(world)
        ec2 = world.ec2

        # An untagged snapshot deleted through the handlers' own client, as a handler would.
        volume_id = ec2.describe_volumes()["Volumes"][0]["VolumeId"]
        untagged = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
        ami_handlers.worker_runtime().clients.client("ec2").delete_snapshot(SnapshotId=untagged)
        assert "nothing without ownership tags deleted" in _flagged(world)

        # A snapshot an AMI maps, deleted (the fidelity refuses it: the record and EC2's side are planted).
        owned = _owned_images(world)
        in_use = world.backend.amis[owned[0]].ebs_snapshot.id
        world._record("DeleteSnapshot", in_use, ())
        del world.backend.snapshots[in_use]
        assert "nothing in use deleted" in _flagged(world)

        # A good backup gone: fewer than min(N, made).
        good = [i for i in owned[1:] if world.backend.amis[i].state == "available"]
        ec2.deregister_image(ImageId=good[-1])
        assert "never fewer than min(N, good made) good backups" in _flagged(world)

        # A second AMI of one instance and slot.
        tags = world.tags_of(good[0])
        spec = [{"ResourceType": kind, "Tags": tagging.tag_list(tags)} for kind in ("image", "snapshot")]
        world.backend.create_image(tags[tagging.SOURCE_INSTANCE], "planted-duplicate", "", spec)
        assert "no duplicate backup per source per slot" in _flagged(world)

        # A snapshot of a retired AMI left past the purge's deadline.
        ec2.deregister_image(ImageId=good[0])
        world.deregistered_at[good[0]] = world.clock.now - timedelta(days=3)
        assert "no orphaned snapshot older than the grace period" in _flagged(world)

        # One failure alerted twice, and a failure in the ledger never alerted.
        body = json.dumps({"alert": "backup failed; nothing purged", "resource_id": "ami-0planted0000000"})
        for _ in range(2):
            boto3.client("sns", region_name=REGION).publish(TopicArn=world.infra.topic_arn, Message=body)
        assert "every failure alerted exactly once" in _flagged(world)
        pk = f"ami-backup#{POLICY}#local#{REGION}"
        item = {"pk": {"S": pk}, "sk": {"S": "ami-0unalerted00000"}, "state": {"S": "failed"}}
        world.dynamodb.put_item(TableName=LEDGER_TABLE, Item=item)
        world._touched.add((pk, "ami-0unalerted00000"))
        before = len(world.report.violations)
        world.check()
        assert any("never alerted" in v.detail for v in world.report.violations[before:])


def test_ebs_snapshot_soak_keeps_its_invariants_and_flags_planted_violations() -> None:
    world = ebs_world()
    with world.opened():
        assert_clean_run_with_faults(world)
        owned = [s for s in world.backend.snapshots if world.owned_by(world.tags_of(s), POLICY)]
        assert isinstance(world, ebs_snapshot.EbsSnapshotSoak)
        completed = [
            s
            for s in owned
            if world.backend.snapshots[s].status == "completed" and world.backend.snapshots[s].volume.id in world.live
        ]
        volume_id = world.backend.snapshots[completed[0]].volume.id
        tags = world.tags_of(completed[0])
        world.backend.delete_snapshot(completed[-1])
        assert "never fewer than min(N, good made) good backups" in _flagged(world)
        world.clock.now += timedelta(minutes=1)  # E13: one snapshot per volume every 15 s
        world.ec2.create_snapshot(
            VolumeId=volume_id, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)}]
        )
        assert "no duplicate backup per source per slot" in _flagged(world)


def test_deregister_cleanup_soak_keeps_its_invariants_and_flags_planted_violations() -> None:
    world = cleanup_world()
    with world.opened():
        assert_clean_run_with_faults(world)
        assert isinstance(world, deregister_cleanup.DeregisterCleanupSoak)
        image_id = next(images[-1] for images in world.registered.values() if images)
        world.ec2.deregister_image(ImageId=image_id)
        world.gone_at[image_id] = world.clock.now - timedelta(days=5)
        assert "no orphaned snapshot older than the grace period" in _flagged(world)
        # A snapshot without ownership tags deleted by the handlers' client.
        volume_id = world.ec2.describe_volumes()["Volumes"][0]["VolumeId"]
        untagged = world.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
        cleanup_handlers.worker_runtime().clients.client("ec2").delete_snapshot(SnapshotId=untagged)
        assert "nothing without ownership tags deleted" in _flagged(world)


def test_a_seed_replays_the_same_steps_and_faults_and_stops_at_the_step_asked() -> None:
    def run(stop_at_step: int | None) -> World:
        world = cleanup_world()
        world.days, world.sources, world.stop_at_step = 2, 1, stop_at_step
        world.run()
        return world

    full = run(None)
    stop_at = full.report.steps // 2
    replay = run(stop_at)
    assert full.report.steps > 2 and replay.report.steps == stop_at
    assert replay.faults_after_step == full.faults_after_step[:stop_at]
    assert replay.report.checks == 3 * stop_at
