"""ebs-snapshot restore tests end to end on moto made faithful: the `restore` function plans, the worker restores
each chosen snapshot set as new volumes in the restore subnet's Availability Zone, the `createVolume` event or the
delayed check decides, the volumes are deleted and the set is tagged with the result.

moto emits no EBS events: the tests publish the `createVolume` event in the documented shape ("Amazon EventBridge
events for Amazon EBS", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_harness import (
    ACCOUNT,
    LEDGER_TABLE,
    POLICY,
    REGION,
    Clock,
    FakeContext,
    Infra,
    alerts_sent,
    run_instances,
    take_messages,
    work_body,
)
from botocore.exceptions import ClientError
from test_ebs_snapshot import Ebs
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.core import restore as core_restore
from ops_automation.core import tagging
from ops_automation.core.errors import ConfigError
from ops_automation.core.events import format_time
from ops_automation.core.restore import RestoreProgress, RestoreRecord
from ops_automation.core.worker import RetryLater
from ops_automation.ebs_snapshot import handlers
from ops_automation.ebs_snapshot.restore import CAUSE_WAIT, ERROR_SEEN_AT, LISTING_GRACE, EbsRestore

ConfigureEbs = Callable[..., Any]
OWNERSHIP = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: POLICY}
RESTORE_ZONE = f"{REGION}b"  # the restore subnet's; the backed-up volumes are in us-east-1a


@pytest.fixture
def ebs(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Ebs:
    return Ebs(infra, clock, fidelity)


@pytest.fixture
def subnet_id(infra: Infra) -> str:
    vpc = infra.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet: str = infra.ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone=RESTORE_ZONE)["Subnet"][
        "SubnetId"
    ]
    return subnet


def restore_setting(subnet_id: str, **overrides: Any) -> str:
    """OPS_RESTORE_TEST as modules/internal renders it for ebs-snapshot: every key of RestoreTestConfig."""
    setting: dict[str, Any] = {
        "region": None,
        "role_arn": None,
        "subnet_id": subnet_id,
        "security_group_id": "sg-0123456789abcdef0",
        "sources": "all",
        "sample_size": None,
        "source_tags": None,
        "max_concurrent": 2,
        "deadline_minutes": 30,
        "instance_type": None,
        "validation_document": None,
        "validation_parameters": None,
        "instance_profile_name": None,
        "volume_type": "gp3",
        "allow_routed_subnet": None,
    }
    return json.dumps({**setting, **overrides})


def volume_event(volume_id: str, result: str = "available", cause: str = "") -> str:
    """An `EBS Volume Notification` (createVolume) in the documented sample's shape."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "EBS Volume Notification",
            "source": "aws.ec2",
            "account": ACCOUNT,
            "time": "2024-05-01T03:00:00Z",
            "region": REGION,
            "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/{volume_id}"],
            "detail": {"result": result, "cause": cause, "event": "createVolume", "request-id": str(uuid.uuid4())},
        }
    )


class Restore:
    """Drives the `restore` function and the worker's restore items; the test decides when time passes."""

    def __init__(self, ebs: Ebs, clock: Clock) -> None:
        self.ebs = ebs
        self.clock = clock
        self.ec2 = ebs.infra.ec2

    def plan(self) -> list[dict[str, Any]]:
        """The restore schedule fires now; returns the items it queued."""
        handlers.restore_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext())
        return take_messages()

    def work(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The worker on `messages`; returns what they queued (checks, sweeps, re-sent tests)."""
        assert self.ebs.work([work_body(m) for m in messages]) == {"batchItemFailures": []}
        return take_messages()

    def launch(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Plan and run the tests: (the test items, what they queued)."""
        planned = self.plan()
        tests = [m for m in planned if m["kind"] == "restore_test"]
        assert tests, planned
        return tests, self.work(tests)

    def test_volumes(self) -> dict[str, dict[str, Any]]:
        listed = self.ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": [tagging.RESTORE_TEST]}])
        return {volume["VolumeId"]: volume for volume in listed["Volumes"]}

    def ledger(self) -> dict[str, dict[str, Any]]:
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
        return {item["sk"]["S"]: item for item in items}

    def record(self, test_id: str) -> tuple[str, dict[str, str]]:
        item = next(item for sk, item in self.ledger().items() if sk.endswith(f"restore#{test_id}"))
        details = {key: value["S"] for key, value in item.get("details", {}).get("M", {}).items()}
        return item["state"]["S"], details

    def snapshot_tags(self, snapshot_ids: list[str] | tuple[str, ...]) -> list[dict[str, str]]:
        snapshots = self.ec2.describe_snapshots(SnapshotIds=list(snapshot_ids))["Snapshots"]
        return [tagging.tag_dict(snapshot.get("Tags")) for snapshot in snapshots]


@pytest.fixture
def restore(ebs: Ebs, clock: Clock) -> Restore:
    return Restore(ebs, clock)


def _backed_up_volume(ebs: Ebs, configure_ebs: ConfigureEbs, subnet_id: str, **overrides: str) -> str:
    volume = ebs.volume({"Backup": "hourly"})
    configure_ebs(OPS_RESTORE_TEST=restore_setting(subnet_id), **overrides)
    ebs.slot_by_events()
    return volume


def _kinds(messages: list[dict[str, Any]]) -> Counter[str]:
    return Counter(m["kind"] for m in messages)


# ---------------------------------------------------------------------------------------------------------------
# Volume mode
# ---------------------------------------------------------------------------------------------------------------


def test_a_volume_mode_set_restores_in_the_subnets_zone_passes_on_the_event_and_is_deleted(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock, api_calls: Counter[str]
) -> None:
    _backed_up_volume(ebs, configure_ebs, subnet_id)
    [snapshot_id] = ebs.snapshots(**{tagging.POLICY: POLICY})
    clock.advance(hours=1)
    slot = format_time(clock.now)

    planned = restore.plan()
    assert _kinds(planned) == Counter({"restore_sweep": 1, "restore_test": 1})
    [test] = [m for m in planned if m["kind"] == "restore_test"]
    assert test["backup_ids"] == [snapshot_id]
    tags_before = api_calls["ec2.CreateTags"]
    queued = restore.work([test])

    [volume] = restore.test_volumes().values()
    assert volume["AvailabilityZone"] == RESTORE_ZONE
    assert volume["SnapshotId"] == snapshot_id and volume["VolumeType"] == "gp3"
    assert tagging.tag_dict(volume["Tags"]) == {
        **OWNERSHIP,
        tagging.RESTORE_TEST: test["test_id"],
        tagging.SLOT: slot,
        tagging.SOURCE_SNAPSHOT: snapshot_id,
    }
    # Tagged at creation: the only CreateTags of the test is the result on the snapshot, later.
    assert api_calls["ec2.CreateTags"] == tags_before
    assert _kinds(queued) == Counter({"restore_check": 1, "restore_sweep": 1})
    assert restore.record(test["test_id"])[0] == "pending"

    clock.advance(seconds=20)
    assert ebs.work([volume_event(volume["VolumeId"])]) == {"batchItemFailures": []}

    assert restore.test_volumes() == {}
    [tags] = restore.snapshot_tags([snapshot_id])
    assert tags[tagging.RESTORE_RESULT] == "passed" and tags[tagging.RESTORE_TESTED] == slot
    state, details = restore.record(test["test_id"])
    assert state == "available"
    assert details["result"] == "passed" and details["backup_ids"] == snapshot_id
    assert details["resource_ids"] == volume["VolumeId"] and details["duration_seconds"] == "20"
    assert alerts_sent() == []
    # The delayed check finds the test done and touches no EC2.
    calls_before = sum(n for call, n in api_calls.items() if call.startswith("ec2."))
    restore.work([m for m in queued if m["kind"] == "restore_check"])
    assert sum(n for call, n in api_calls.items() if call.startswith("ec2.")) == calls_before

    # The next run: the set already passed; nothing newer to test.
    clock.advance(days=1)
    assert _kinds(restore.plan()) == Counter({"restore_sweep": 1})


# ---------------------------------------------------------------------------------------------------------------
# Instance mode: every volume of the crash-consistent set
# ---------------------------------------------------------------------------------------------------------------


def test_an_instance_set_restores_every_volume_passes_on_the_check_and_deletes_them_all(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock, fidelity: MotoFidelity
) -> None:
    instance = run_instances(ebs.infra.ec2, 1, {"Backup": "hourly"})[0]
    for letter in "fg":
        ebs.volume({"Name": f"data-{letter}"}, instance, f"/dev/sd{letter}")
    configure_ebs(
        OPS_SNAPSHOT_MODE="instance",
        OPS_VOLUME_TAGS="{}",
        OPS_TARGET_TAGS=json.dumps({"Backup": "hourly"}),
        OPS_EXCLUDE_ROOT_VOLUME="true",
        OPS_RESTORE_TEST=restore_setting(subnet_id, volume_type="gp2"),
    )
    [check] = ebs.plan_and_create()
    ebs.complete_all([check])
    clock.advance(minutes=61)
    restore.work([check])
    snapshots = ebs.snapshots(**{tagging.POLICY: POLICY})
    snapshot_ids = sorted(snapshots)
    assert len(snapshot_ids) == 2
    # A snapshot carrying the set's tags that the set's request did not make (tags copied by hand) is not restored:
    # the set is what the ledger's request claim recorded, as for retention.
    stray = ebs.infra.ec2.create_snapshot(
        VolumeId=ebs.volume(),
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": snapshots[snapshot_ids[0]]["Tags"]}],
    )["SnapshotId"]
    fidelity.set_snapshot_state(REGION, stray, "completed")
    fidelity.volume_creation_time = timedelta(minutes=2)

    [test], queued = restore.launch()
    assert test["source_id"] == instance and sorted(test["backup_ids"]) == snapshot_ids
    volumes = restore.test_volumes()
    assert sorted(v["SnapshotId"] for v in volumes.values()) == snapshot_ids
    assert {v["State"] for v in volumes.values()} == {"creating"}
    assert {v["VolumeType"] for v in volumes.values()} == {"gp2"}
    assert all(tagging.tag_dict(v["Tags"])[tagging.SOURCE_SNAPSHOT] == v["SnapshotId"] for v in volumes.values())

    # The first check finds them still creating and polls again.
    [first_check] = [m for m in queued if m["kind"] == "restore_check"]
    clock.advance(seconds=30)
    [again] = restore.work([first_check])
    assert again["kind"] == "restore_check" and restore.test_volumes().keys() == volumes.keys()

    clock.advance(minutes=2)
    assert restore.work([again]) == []

    assert restore.test_volumes() == {}
    assert [tags[tagging.RESTORE_RESULT] for tags in restore.snapshot_tags(snapshot_ids)] == ["passed", "passed"]
    state, details = restore.record(test["test_id"])
    assert state == "available" and sorted(details["resource_ids"].split(",")) == sorted(volumes)


# ---------------------------------------------------------------------------------------------------------------
# A set that does not restore
# ---------------------------------------------------------------------------------------------------------------


def test_a_volume_ending_in_error_fails_the_set_once_and_retention_keeps_the_set_that_passed(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock, fidelity: MotoFidelity
) -> None:
    _backed_up_volume(ebs, configure_ebs, subnet_id, OPS_GENERATIONS="1")
    [passed] = ebs.snapshots(**{tagging.POLICY: POLICY})
    _tests, queued = restore.launch()
    clock.advance(seconds=30)
    restore.work([m for m in queued if m["kind"] == "restore_check"])
    assert restore.snapshot_tags([passed])[0][tagging.RESTORE_RESULT] == "passed"

    clock.advance(hours=1)
    ebs.slot_by_events()
    [broken] = set(ebs.snapshots(**{tagging.POLICY: POLICY})) - {passed}
    assert passed in ebs.snapshots(), "the newest set that passed a restore test is kept"
    fidelity.fail_volume_creation(broken)
    [test], queued = restore.launch()
    assert test["backup_ids"] == [broken]
    [volume] = restore.test_volumes()
    [check] = [m for m in queued if m["kind"] == "restore_check"]

    # The delayed check delivered twice sees the volume in error before its event: it waits for the event's cause.
    clock.advance(seconds=30)
    assert ebs.work([work_body(check), work_body(check)]) == {"batchItemFailures": []}
    assert alerts_sent() == []
    # The event, with no cause (not a KMS failure), decides; the checks re-sent meanwhile find it decided: one alert.
    assert ebs.work([volume_event(volume, "failed")]) == {"batchItemFailures": []}
    clock.advance(seconds=30)
    restore.work([m for m in take_messages() if m["kind"] == "restore_check"])

    [alert] = alerts_sent()
    assert alert["alert"] == "restore test failed"
    assert broken in json.dumps(alert) and volume in json.dumps(alert)
    assert restore.test_volumes() == {}
    assert restore.snapshot_tags([broken])[0][tagging.RESTORE_RESULT] == "failed"
    state, details = restore.record(test["test_id"])
    assert state == "failed" and details["result"] == "failed" and "error" in details["reason"]

    # The next set completes: retention (1 generation) deletes the set that does not restore, keeps the one that did.
    clock.advance(hours=1)
    ebs.slot_by_events()
    remaining = set(ebs.snapshots(**{tagging.POLICY: POLICY}))
    assert passed in remaining and broken not in remaining and len(remaining) == 2


def test_a_volume_that_fails_on_its_kms_key_is_not_run_and_the_set_is_not_blamed(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock, fidelity: MotoFidelity
) -> None:
    _backed_up_volume(ebs, configure_ebs, subnet_id)
    [snapshot_id] = ebs.snapshots(**{tagging.POLICY: POLICY})
    fidelity.fail_volume_creation(snapshot_id)
    [test], _queued = restore.launch()
    [volume] = restore.test_volumes()
    # The documented failed createVolume example: the cause is the disabled key.
    cause = "arn:aws:kms:us-east-1:012345678901:key/01234567-0123-0123-0123-0123456789ab is disabled."

    clock.advance(seconds=30)
    assert ebs.work([volume_event(volume, "failed", cause)]) == {"batchItemFailures": []}

    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run" and cause in alert["reason"]
    assert restore.test_volumes() == {}
    assert tagging.RESTORE_RESULT not in restore.snapshot_tags([snapshot_id])[0]
    assert restore.record(test["test_id"])[1]["result"] == "not_run"


# ---------------------------------------------------------------------------------------------------------------
# Launch refusals
# ---------------------------------------------------------------------------------------------------------------


def test_a_capacity_refusal_is_retried_later_and_is_not_a_failed_backup(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock, fidelity: MotoFidelity
) -> None:
    _backed_up_volume(ebs, configure_ebs, subnet_id)
    [snapshot_id] = ebs.snapshots(**{tagging.POLICY: POLICY})
    fidelity.fail_create_volume("InsufficientVolumeCapacity")

    [test], queued = restore.launch()

    assert restore.test_volumes() == {}
    [retry] = queued
    assert retry["kind"] == "restore_test" and retry["attempt"] == 2
    assert alerts_sent() == []
    assert tagging.RESTORE_RESULT not in restore.snapshot_tags([snapshot_id])[0]

    clock.advance(minutes=1)
    queued = restore.work([retry])
    [volume] = restore.test_volumes()
    assert ebs.work([volume_event(volume)]) == {"batchItemFailures": []}
    assert restore.snapshot_tags([snapshot_id])[0][tagging.RESTORE_RESULT] == "passed"
    assert restore.record(test["test_id"])[0] == "available"


def test_a_volume_quota_refusal_after_eight_attempts_alerts_not_run_once(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock, fidelity: MotoFidelity
) -> None:
    _backed_up_volume(ebs, configure_ebs, subnet_id)
    [snapshot_id] = ebs.snapshots(**{tagging.POLICY: POLICY})
    fidelity.fail_create_volume("VolumeLimitExceeded", times=8)

    [test], queued = restore.launch()
    for _attempt in range(7):
        clock.advance(minutes=15)
        queued = restore.work(queued)

    assert queued == []
    [alert] = alerts_sent()
    assert alert["alert"] == "restore test not run" and "VolumeLimitExceeded" in alert["reason"]
    assert tagging.RESTORE_RESULT not in restore.snapshot_tags([snapshot_id])[0]
    assert restore.test_volumes() == {}
    assert restore.record(test["test_id"])[1]["result"] == "not_run"


# ---------------------------------------------------------------------------------------------------------------
# Leftovers, archived sets, IAM
# ---------------------------------------------------------------------------------------------------------------


def test_the_sweep_deletes_a_test_volume_left_past_its_deadline(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock
) -> None:
    _backed_up_volume(ebs, configure_ebs, subnet_id)
    [snapshot_id] = ebs.snapshots(**{tagging.POLICY: POLICY})
    left = ebs.infra.ec2.create_volume(
        AvailabilityZone=RESTORE_ZONE,
        SnapshotId=snapshot_id,
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": tagging.tag_list({**OWNERSHIP, tagging.RESTORE_TEST: "crashed"})}
        ],
    )["VolumeId"]
    someone_elses = ebs.volume({tagging.RESTORE_TEST: "not-ours"})

    sweeps = [m for m in restore.plan() if m["kind"] == "restore_sweep"]
    restore.work(sweeps)
    assert left in restore.test_volumes(), "not past its deadline + grace yet"

    clock.advance(minutes=46)
    restore.work(sweeps)

    assert set(restore.test_volumes()) == {someone_elses}
    [report] = alerts_sent()
    assert report["alert"] == "restore test leftovers cleaned up" and report["resource_ids"] == [left]


def test_archived_sets_are_never_tested(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, fidelity: MotoFidelity
) -> None:
    _backed_up_volume(ebs, configure_ebs, subnet_id)
    [snapshot_id] = ebs.snapshots(**{tagging.POLICY: POLICY})
    fidelity.archive_snapshot(REGION, snapshot_id)

    assert _kinds(restore.plan()) == Counter({"restore_sweep": 1})

    assert restore.test_volumes() == {}
    [report] = alerts_sent()
    assert report["alert"] == "restore test found nothing to test"


def test_through_the_restore_role_iam_allows_an_owned_set_and_refuses_a_snapshot_without_the_ownership_tags(
    ebs: Ebs, restore: Restore, configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock, fidelity: MotoFidelity
) -> None:
    role_arn = _restore_role()
    owned_volume = ebs.volume({"Backup": "hourly"})
    _backed_up_volume(ebs, configure_ebs, subnet_id)
    snapshots = ebs.snapshots(**{tagging.POLICY: POLICY})
    by_volume = {snapshot["VolumeId"]: snapshot_id for snapshot_id, snapshot in snapshots.items()}
    owned, retagged = by_volume[owned_volume], next(s for v, s in by_volume.items() if v != owned_volume)
    configure_ebs(
        OPS_TARGET_ROLE_ARNS=json.dumps([role_arn]),
        OPS_RESTORE_TEST=restore_setting(subnet_id, role_arn=role_arn),
    )
    planned = [m for m in restore.plan() if m["kind"] == "restore_test"]
    assert len(planned) == 2
    # Between plan and test, one snapshot lost its ownership (someone retagged it).
    ebs.infra.ec2.delete_tags(Resources=[retagged], Tags=[{"Key": tagging.MANAGED_BY}])

    queued = restore.work(planned)

    [volume] = restore.test_volumes().values()
    assert volume["SnapshotId"] == owned
    refused = [d for d in fidelity.iam.decisions_of("ec2:CreateVolume") if not d.allowed]
    assert [d.resource.rsplit(":", 1)[1] for d in refused] == [f"snapshot/{retagged}"]
    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run" and alert["error_code"] == "UnauthorizedOperation"
    assert alert["backup_ids"] == [retagged]

    clock.advance(seconds=30)
    restore.work([m for m in queued if m["kind"] == "restore_check"])
    assert restore.test_volumes() == {}
    assert restore.snapshot_tags([owned])[0][tagging.RESTORE_RESULT] == "passed"
    assert tagging.RESTORE_RESULT not in restore.snapshot_tags([retagged])[0]
    assert {d.action for d in fidelity.iam.decisions if d.allowed} >= {
        "ec2:CreateVolume",
        "ec2:DeleteVolume",
        "ec2:CreateTags",
    }


RESTORE_ROLE = "ops-automation-nightly-restore"


def _restore_role() -> str:
    """A target role whose policy is the restore part of what modules/ebs-snapshot grants (I2 decides its calls)."""
    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn: str = iam.create_role(RoleName=RESTORE_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    owned_request = {f"aws:RequestTag/{key}": value for key, value in OWNERSHIP.items()}
    owned_resource = {f"aws:ResourceTag/{key}": value for key, value in OWNERSHIP.items()}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "ec2:CreateVolume",
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {
                    "StringEquals": owned_request,
                    "Null": {f"aws:RequestTag/{tagging.RESTORE_TEST}": "false"},
                },
            },
            {
                "Effect": "Allow",
                "Action": "ec2:CreateVolume",
                "Resource": "arn:aws:ec2:*::snapshot/*",
                "Condition": {"StringEquals": owned_resource},
            },
            {
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateVolume"}},
            },
            {
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "arn:aws:ec2:*::snapshot/*",
                "Condition": {
                    "StringEquals": owned_resource,
                    "ForAllValues:StringEquals": {"aws:TagKeys": [tagging.RESTORE_RESULT, tagging.RESTORE_TESTED]},
                },
            },
            {
                "Effect": "Allow",
                "Action": "ec2:DeleteVolume",
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringEquals": owned_resource},
            },
        ],
    }
    iam.put_role_policy(RoleName=RESTORE_ROLE, PolicyName="restore", PolicyDocument=json.dumps(policy))
    return arn


# ---------------------------------------------------------------------------------------------------------------
# The adapter alone
# ---------------------------------------------------------------------------------------------------------------


class _Volumes:
    """DescribeVolumes of a fixed listing (the adapter's only call in observe)."""

    def __init__(self, volumes: list[dict[str, Any]]) -> None:
        self.volumes = volumes

    def get_paginator(self, _name: str) -> Any:
        listing = self.volumes

        class Pages:
            def paginate(self, Filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
                wanted = set(Filters[0]["Values"])
                return [{"Volumes": [v for v in listing if v["VolumeId"] in wanted]}]

        return Pages()


def _record(clock: Clock, *volume_ids: str, details: dict[str, str] | None = None) -> RestoreRecord:
    return RestoreRecord("t", "vol-source", "slot", ("snap-1",), volume_ids, clock.now, details or {})


# The failed createVolume event came (without a cause): a volume in error is judged at once.
EVENT_CAME = {core_restore.EVENT_FAILED: "true", core_restore.EVENT_CAUSE: ""}


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({"vol-a": "available", "vol-b": "available"}, "ready"),
        ({"vol-a": "available", "vol-b": "in-use"}, "ready"),
        ({"vol-a": "available", "vol-b": "creating"}, "starting"),
        ({"vol-a": "creating", "vol-b": "error"}, "failed"),
        ({"vol-a": "available", "vol-b": "deleting"}, "failed"),
    ],
)
def test_observe_decides_from_every_volumes_state(states: dict[str, str], expected: str, clock: Clock) -> None:
    adapter = EbsRestore(_config(), POLICY, "volume", lambda *_: [])
    ec2 = _Volumes([{"VolumeId": v, "State": s, "SnapshotId": "snap-1"} for v, s in states.items()])

    progress = adapter.observe(ec2, _record(clock, *states, details=EVENT_CAME), clock.now)

    assert progress.state == expected
    assert progress.details["volumes"] == ", ".join(f"{v}={s}" for v, s in sorted(states.items()))


def test_a_volume_not_listed_is_starting_just_after_the_launch_and_gone_after(clock: Clock) -> None:
    adapter = EbsRestore(_config(), POLICY, "volume", lambda *_: [])
    ec2 = _Volumes([{"VolumeId": "vol-a", "State": "available"}])
    record = _record(clock, "vol-a", "vol-b")

    assert adapter.observe(ec2, record, clock.now + timedelta(seconds=30)).state == "starting"
    late: RestoreProgress = adapter.observe(ec2, record, clock.now + LISTING_GRACE)
    assert late.state == "failed" and "vol-b: no longer exists" in late.reason


def test_a_volume_whose_creation_failed_on_kms_is_not_the_backups_fault(clock: Clock) -> None:
    adapter = EbsRestore(_config(), POLICY, "volume", lambda *_: [])
    ec2 = _Volumes([{"VolumeId": "vol-a", "State": "error", "SnapshotId": "snap-1"}])
    cause = "arn:aws:kms:sa-east-1:0123456789ab:key/01234567-0123-0123-0123-0123456789ab is disabled."
    record = _record(clock, "vol-a", details={core_restore.EVENT_FAILED: "true", core_restore.EVENT_CAUSE: cause})

    progress = adapter.observe(ec2, record, clock.now)

    assert progress.state == "failed" and progress.details[core_restore.NOT_BACKUP_FAULT] == "true"
    assert cause in progress.reason and "restore_test.kms_key_arns" in progress.reason
    without_cause = adapter.observe(ec2, _record(clock, "vol-a", details=EVENT_CAME), clock.now)
    assert without_cause.state == "failed" and core_restore.NOT_BACKUP_FAULT not in without_cause.details


def test_a_volume_in_error_waits_for_its_event_then_fails_without_one(clock: Clock) -> None:
    """The cause (a KMS key) is only in the createVolume event; a check that sees `error` first waits for it."""
    adapter = EbsRestore(_config(), POLICY, "volume", lambda *_: [])
    ec2 = _Volumes([{"VolumeId": "vol-a", "State": "error", "SnapshotId": "snap-1"}])

    first = adapter.observe(ec2, _record(clock, "vol-a"), clock.now)
    assert first.state == "starting" and first.remember == {ERROR_SEEN_AT: format_time(clock.now)}
    seen = _record(clock, "vol-a", details=dict(first.remember))
    assert adapter.observe(ec2, seen, clock.now + CAUSE_WAIT - timedelta(seconds=1)).state == "starting"

    late = adapter.observe(ec2, seen, clock.now + CAUSE_WAIT)
    assert late.state == "failed" and core_restore.NOT_BACKUP_FAULT not in late.details


def test_clean_up_deletes_what_it_can_and_retries_a_volume_still_creating() -> None:
    deleted: list[str] = []

    class Ec2:
        def delete_volume(self, VolumeId: str) -> None:
            if VolumeId == "vol-creating":
                raise ClientError({"Error": {"Code": "IncorrectState", "Message": "not 'available'"}}, "DeleteVolume")
            if VolumeId == "vol-gone":
                raise ClientError({"Error": {"Code": "InvalidVolume.NotFound", "Message": "gone"}}, "DeleteVolume")
            deleted.append(VolumeId)

    adapter = EbsRestore(_config(), POLICY, "volume", lambda *_: [])
    with pytest.raises(RetryLater, match="vol-creating"):
        adapter.clean_up(Ec2(), ["vol-creating", "vol-gone", "vol-done"])
    assert deleted == ["vol-done"]


def test_the_restore_function_refuses_a_role_the_policy_does_not_target(
    configure_ebs: ConfigureEbs, subnet_id: str, clock: Clock
) -> None:
    other = f"arn:aws:iam::{ACCOUNT}:role/somewhere-else"

    # Refused when the functions read their configuration (core.restore.restore_config), before any planning.
    with pytest.raises(ConfigError, match="target_role_arns"):
        configure_ebs(OPS_RESTORE_TEST=restore_setting(subnet_id, role_arn=other))
        handlers.restore_handler({"scheduled_time": format_time(clock.now)}, FakeContext())
    assert take_messages() == []


def _config() -> core_restore.RestoreTestConfig:
    config = core_restore.RestoreTestConfig.from_env({core_restore.ENV: restore_setting("subnet-0123456789abcdef0")})
    assert config is not None
    return config
