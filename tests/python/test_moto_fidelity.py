"""The moto fidelity patches (tests/support/moto_fidelity.py) behave as the AWS documents they cite say.

Each test drives the patched moto through boto3, as the handlers do; the patch letters (E1..E49, D1..D5) are
the module's. Where AWS leaves a duration open, the tests use the patch's parameter, not a number of their own.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_harness import ACCOUNT as MOTO_ACCOUNT
from aws_harness import EVENTS_DIR, MOTO_ENVIRONMENT, OTHER_REGION, REGION, START, Clock, client_with
from botocore.exceptions import ClientError
from moto import mock_aws
from tests.support.moto_fidelity import (
    CONCURRENT_SNAPSHOT_COPIES_PER_REGION,
    DEFAULT_DEREGISTERED_LISTED_WINDOW,
    DEFAULT_IMAGE_COPY_TIME,
    DEFAULT_INCOMPLETE_SOURCE_ERROR,
    DEFAULT_KMS_DENIED_MESSAGE,
    DEFAULT_LOCKED_SNAPSHOT_ERROR,
    DEFAULT_MANAGED_KEY_SHARE_ERROR,
    DEFAULT_SNAPSHOT_COMPLETION_TIME,
    DEFAULT_SNAPSHOT_COPY_TIME,
    DEFAULT_SNAPSHOT_IN_USE_WINDOW,
    IamDecision,
    MotoFidelity,
    UnmodelledPolicy,
    faithful_aws,
    ssm_event_entries,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in MOTO_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def faithful(moto_env: None, clock: Clock) -> Iterator[MotoFidelity]:
    with faithful_aws(clock, sqs_time=True) as fidelity:
        yield fidelity


@pytest.fixture
def ec2(moto_env: None) -> Any:
    return boto3.client("ec2", region_name=REGION)


def _instance(ec2: Any) -> str:
    return str(ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])


def _image(ec2: Any, instance_id: str, name: str, **kwargs: Any) -> str:
    return str(ec2.create_image(InstanceId=instance_id, Name=name, **kwargs)["ImageId"])


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _ids(images: list[dict[str, Any]]) -> set[str]:
    return {image["ImageId"] for image in images}


# -- E1-E5: CreateImage ------------------------------------------------------------------------------------


def test_create_image_tags_the_snapshots_of_a_snapshot_tag_specification(faithful: MotoFidelity, ec2: Any) -> None:
    image_id = _image(
        ec2,
        _instance(ec2),
        "tagged-backup",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "kind", "Value": "image"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "kind", "Value": "snapshot"}]},
        ],
    )
    [image] = ec2.describe_images(ImageIds=[image_id])["Images"]
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[faithful.snapshot_of(REGION, image_id)])["Snapshots"]
    assert image["Tags"] == [{"Key": "kind", "Value": "image"}]
    assert snapshot["Tags"] == [{"Key": "kind", "Value": "snapshot"}]


def test_create_image_refuses_a_name_in_use(faithful: MotoFidelity, ec2: Any) -> None:
    instance_id = _instance(ec2)
    _image(ec2, instance_id, "same-name")
    with pytest.raises(ClientError) as error:
        _image(ec2, instance_id, "same-name")
    assert _code(error) == "InvalidAMIName.Duplicate"


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_create_image_accepts_running_and_stopped_instances(faithful: MotoFidelity, ec2: Any, state: str) -> None:
    instance_id = _instance(ec2)
    faithful.set_instance_state(REGION, instance_id, state)
    assert _image(ec2, instance_id, f"from-{state}").startswith("ami-")


@pytest.mark.parametrize("state", ["pending", "stopping", "shutting-down", "terminated"])
def test_create_image_refuses_every_other_instance_state(faithful: MotoFidelity, ec2: Any, state: str) -> None:
    instance_id = _instance(ec2)
    faithful.set_instance_state(REGION, instance_id, state)
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] == state
    with pytest.raises(ClientError) as error:
        _image(ec2, instance_id, f"from-{state}")
    assert _code(error) == "IncorrectInstanceState"
    assert faithful.create_image_attempts == [instance_id]


def test_terminated_through_the_api_is_refused_too(faithful: MotoFidelity, ec2: Any) -> None:
    instance_id = _instance(ec2)
    ec2.terminate_instances(InstanceIds=[instance_id])
    with pytest.raises(ClientError) as error:
        _image(ec2, instance_id, "from-terminated")
    assert _code(error) == "IncorrectInstanceState"


def test_images_and_their_snapshots_carry_the_fidelity_clock(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    clock.advance(days=3)
    image_id = _image(ec2, _instance(ec2), "stamped")
    [image] = ec2.describe_images(ImageIds=[image_id])["Images"]
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[faithful.snapshot_of(REGION, image_id)])["Snapshots"]
    assert image["CreationDate"] == clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert snapshot["StartTime"] == clock.now


@pytest.mark.parametrize("state", ["pending", "failed"])
def test_set_image_state_is_what_describe_images_reports(faithful: MotoFidelity, ec2: Any, state: str) -> None:
    image_id = _image(ec2, _instance(ec2), f"now-{state}")
    faithful.set_image_state(REGION, image_id, state)
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == state


def test_injected_create_image_fault_reaches_the_caller_and_heals(faithful: MotoFidelity, ec2: Any) -> None:
    instance_id = _instance(ec2)
    faithful.fail_create_image(instance_id, "InsufficientInstanceCapacity")
    with pytest.raises(ClientError) as error:
        _image(ec2, instance_id, "faulty")
    assert _code(error) == "InsufficientInstanceCapacity"
    faithful.fail_create_image(instance_id, None)
    assert _image(ec2, instance_id, "healed")


# -- E6-E7: snapshots in use -------------------------------------------------------------------------------


def test_snapshot_filter_matches_every_mapping_and_delete_refuses_a_mapped_snapshot(
    faithful: MotoFidelity, ec2: Any
) -> None:
    instance_id = _instance(ec2)
    owner = _image(ec2, instance_id, "owner")
    borrower = _image(ec2, instance_id, "borrower")
    snapshot_id = faithful.snapshot_of(REGION, owner)
    faithful.share_snapshot(REGION, borrower, snapshot_id)
    users = ec2.describe_images(Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snapshot_id]}])
    assert _ids(users["Images"]) == {owner, borrower}
    [borrowed] = ec2.describe_images(ImageIds=[borrower])["Images"]
    assert snapshot_id in {m["Ebs"]["SnapshotId"] for m in borrowed["BlockDeviceMappings"] if "Ebs" in m}
    with pytest.raises(ClientError) as error:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert _code(error) == "InvalidSnapshot.InUse"


def test_delete_snapshot_right_after_deregister_is_in_use_for_the_window(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    image_id = _image(ec2, _instance(ec2), "to-purge")
    snapshot_id = faithful.snapshot_of(REGION, image_id)
    ec2.deregister_image(ImageId=image_id)
    for elapsed in (timedelta(0), DEFAULT_SNAPSHOT_IN_USE_WINDOW - timedelta(seconds=1)):
        clock.now = START + elapsed
        with pytest.raises(ClientError) as error:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
        assert _code(error) == "InvalidSnapshot.InUse", elapsed
    clock.now = START + DEFAULT_SNAPSHOT_IN_USE_WINDOW
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])["Snapshots"] == []


def test_after_the_window_a_snapshot_another_ami_maps_is_still_in_use(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    owner = _image(ec2, instance_id, "owner")
    borrower = _image(ec2, instance_id, "borrower")
    snapshot_id = faithful.snapshot_of(REGION, owner)
    faithful.share_snapshot(REGION, borrower, snapshot_id)
    ec2.deregister_image(ImageId=owner)
    clock.now += DEFAULT_SNAPSHOT_IN_USE_WINDOW * 10
    with pytest.raises(ClientError) as error:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert _code(error) == "InvalidSnapshot.InUse"
    assert borrower in error.value.response["Error"]["Message"]


def test_the_in_use_window_is_a_parameter(moto_env: None, ec2: Any, clock: Clock) -> None:
    with faithful_aws(clock, snapshot_in_use_window=timedelta(0)) as fidelity:
        image_id = _image(ec2, _instance(ec2), "no-window")
        snapshot_id = fidelity.snapshot_of(REGION, image_id)
        ec2.deregister_image(ImageId=image_id)
        ec2.delete_snapshot(SnapshotId=snapshot_id)


def test_denied_snapshot_deletion_is_unauthorized(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    image_id = _image(ec2, _instance(ec2), "foreign")
    snapshot_id = faithful.snapshot_of(REGION, image_id)
    ec2.deregister_image(ImageId=image_id)
    clock.now += DEFAULT_SNAPSHOT_IN_USE_WINDOW
    faithful.deny_snapshot_deletion(snapshot_id)
    with pytest.raises(ClientError) as error:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert _code(error) == "UnauthorizedOperation"


# -- E8: disabled AMIs -------------------------------------------------------------------------------------


def _disabled_setup(faithful: MotoFidelity, ec2: Any) -> tuple[str, str, str]:
    instance_id = _instance(ec2)
    enabled = _image(ec2, instance_id, "enabled")
    disabled = _image(ec2, instance_id, "disabled")
    ec2.modify_image_attribute(ImageId=disabled, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    ec2.disable_image(ImageId=disabled)
    return enabled, disabled, faithful.snapshot_of(REGION, disabled)


def test_describe_images_omits_disabled_amis_unless_include_disabled(faithful: MotoFidelity, ec2: Any) -> None:
    enabled, disabled, snapshot_id = _disabled_setup(faithful, ec2)
    snapshot_filter = [{"Name": "block-device-mapping.snapshot-id", "Values": [snapshot_id]}]
    state_filter = [{"Name": "state", "Values": ["disabled"]}]
    # Default: left out of every kind of request, the owner's own included.
    assert _ids(ec2.describe_images(Owners=["self"])["Images"]) == {enabled}
    assert ec2.describe_images(ImageIds=[disabled])["Images"] == []
    assert ec2.describe_images(Owners=["self"], Filters=snapshot_filter)["Images"] == []
    assert ec2.describe_images(Owners=["self"], Filters=state_filter)["Images"] == []
    # IncludeDisabled=True: listed, with State disabled.
    listed = ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    assert _ids(listed) == {enabled, disabled}
    assert {image["ImageId"]: image["State"] for image in listed}[disabled] == "disabled"
    assert _ids(ec2.describe_images(ImageIds=[disabled], IncludeDisabled=True)["Images"]) == {disabled}
    assert _ids(ec2.describe_images(Filters=snapshot_filter, IncludeDisabled=True)["Images"]) == {disabled}
    # DisableImage removes the launch permissions.
    attribute = ec2.describe_image_attribute(ImageId=disabled, Attribute="launchPermission")
    assert attribute["LaunchPermissions"] == []


def test_a_disabled_ami_still_holds_its_snapshots(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    _, disabled, snapshot_id = _disabled_setup(faithful, ec2)
    clock.advance(days=1)
    with pytest.raises(ClientError) as error:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert _code(error) == "InvalidSnapshot.InUse"
    ec2.enable_image(ImageId=disabled)
    assert _ids(ec2.describe_images(Owners=["self"])["Images"]) >= {disabled}


def test_disable_image_helper_is_the_api(faithful: MotoFidelity, ec2: Any) -> None:
    image_id = _image(ec2, _instance(ec2), "helper-disabled")
    faithful.disable_image(REGION, image_id)
    assert ec2.describe_images(ImageIds=[image_id])["Images"] == []
    assert ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]["State"] == "disabled"


# -- E9: recently deregistered AMIs ------------------------------------------------------------------------


def test_deregistered_amis_stay_listed_as_deregistered_for_a_while(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    kept = _image(
        ec2, instance_id, "kept", TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "p", "Value": "x"}]}]
    )
    gone = _image(
        ec2, instance_id, "gone", TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "p", "Value": "x"}]}]
    )
    ec2.deregister_image(ImageId=gone)
    tag_filter = [{"Name": "tag:p", "Values": ["x"]}]
    for request in ({"Owners": ["self"]}, {"ImageIds": [gone]}, {"Filters": tag_filter}):
        states = {image["ImageId"]: image["State"] for image in ec2.describe_images(**request)["Images"]}
        assert states.get(gone) == "deregistered", request
    clock.now += DEFAULT_DEREGISTERED_LISTED_WINDOW
    assert _ids(ec2.describe_images(Owners=["self"])["Images"]) == {kept}
    # "... and then return empty results": by id, no error.
    assert ec2.describe_images(ImageIds=[gone])["Images"] == []


def test_a_deregistered_ami_frees_its_name_and_cannot_be_deregistered_twice(faithful: MotoFidelity, ec2: Any) -> None:
    instance_id = _instance(ec2)
    first = _image(ec2, instance_id, "reused-name")
    ec2.deregister_image(ImageId=first)
    assert _image(ec2, instance_id, "reused-name") != first
    with pytest.raises(ClientError) as error:
        ec2.deregister_image(ImageId=first)
    assert _code(error) == "InvalidAMIID.Unavailable"


# -- E10: DeregisterImage(DeleteAssociatedSnapshots=True) --------------------------------------------------


def test_deregister_with_delete_associated_snapshots(faithful: MotoFidelity, ec2: Any) -> None:
    instance_id = _instance(ec2)
    image_id = _image(ec2, instance_id, "with-snapshots")
    other = _image(ec2, instance_id, "other")
    denied = _image(ec2, instance_id, "denied")
    own = faithful.snapshot_of(REGION, image_id)
    shared = faithful.snapshot_of(REGION, other)
    faithful.share_snapshot(REGION, image_id, shared)
    response = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert response["Return"] is True
    results = {item["SnapshotId"]: item["ReturnCode"] for item in response["DeleteSnapshotResults"]}
    assert results == {own: "success", shared: "skipped"}
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert own not in remaining and shared in remaining
    # Without DeleteSnapshot permission on a snapshot: deregistered anyway, the snapshot reported and kept.
    denied_snapshot = faithful.snapshot_of(REGION, denied)
    faithful.deny_snapshot_deletion(denied_snapshot)
    response = ec2.deregister_image(ImageId=denied, DeleteAssociatedSnapshots=True)
    assert response["DeleteSnapshotResults"] == [{"SnapshotId": denied_snapshot, "ReturnCode": "missing-permissions"}]
    assert denied_snapshot in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_deregister_without_the_flag_deletes_nothing(faithful: MotoFidelity, ec2: Any) -> None:
    image_id = _image(ec2, _instance(ec2), "plain")
    snapshot_id = faithful.snapshot_of(REGION, image_id)
    response = ec2.deregister_image(ImageId=image_id)
    assert response.get("DeleteSnapshotResults", []) == []
    assert ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]


# -- E11-E16: EBS snapshots --------------------------------------------------------------------------------


def _volume(
    ec2: Any,
    instance_id: str | None = None,
    device: str = "/dev/sdf",
    volume_type: str = "gp3",
    tags: dict[str, str] | None = None,
) -> str:
    """A volume in the instance's zone, attached at `device` when an instance is given."""
    zone = "us-east-1a"
    if instance_id is not None:
        [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        zone = reservation["Instances"][0]["Placement"]["AvailabilityZone"]
    specification = [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    volume_id = str(
        ec2.create_volume(
            Size=20,
            AvailabilityZone=zone,
            VolumeType=volume_type,
            **({"TagSpecifications": specification} if tags else {}),
        )["VolumeId"]
    )
    if instance_id is not None:
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
    return volume_id


def _root_volume(ec2: Any, instance_id: str) -> str:
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance = reservation["Instances"][0]
    [root] = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == instance["RootDeviceName"]]
    return str(root["Ebs"]["VolumeId"])


def _snapshot(ec2: Any, snapshot_id: str) -> dict[str, Any]:
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    return dict(snapshot)


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}


def test_a_new_snapshot_is_pending_then_completed_on_the_fidelity_clock(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    clock.advance(days=2)
    created = ec2.create_snapshot(VolumeId=_volume(ec2), Description="nightly")
    assert (created["State"], created["Progress"], created["StartTime"]) == ("pending", "0%", clock.now)
    started = clock.now
    clock.now = started + DEFAULT_SNAPSHOT_COMPLETION_TIME - timedelta(seconds=1)
    described = _snapshot(ec2, created["SnapshotId"])
    assert described["State"] == "pending" and described["Progress"] != "100%"
    assert ec2.describe_snapshots(Filters=[{"Name": "status", "Values": ["pending"]}])["Snapshots"]
    clock.now = started + DEFAULT_SNAPSHOT_COMPLETION_TIME
    described = _snapshot(ec2, created["SnapshotId"])
    assert (described["State"], described["Progress"], described["StartTime"]) == ("completed", "100%", started)


def test_the_completion_time_is_a_parameter(moto_env: None, ec2: Any, clock: Clock) -> None:
    with faithful_aws(clock, snapshot_completion_time=timedelta(hours=3)):
        snapshot_id = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
        clock.advance(hours=2, minutes=59)
        assert _snapshot(ec2, snapshot_id)["State"] == "pending"
        clock.advance(minutes=1)
        assert _snapshot(ec2, snapshot_id)["State"] == "completed"


def test_create_snapshots_answers_each_state_with_one_start_time(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    _volume(ec2, instance_id, "/dev/sdf")
    _volume(ec2, instance_id, "/dev/sdg")
    snapshots = ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id})["Snapshots"]
    assert len(snapshots) == 3  # root and two data volumes
    assert {(s["State"], s["Progress"], s["StartTime"]) for s in snapshots} == {("pending", "0%", clock.now)}
    clock.advance(seconds=DEFAULT_SNAPSHOT_COMPLETION_TIME.total_seconds())
    assert {_snapshot(ec2, s["SnapshotId"])["State"] for s in snapshots} == {"completed"}


@pytest.mark.parametrize("state", ["pending", "completed", "error", "recoverable", "recovering"])
def test_set_snapshot_state_pins_a_documented_state(faithful: MotoFidelity, ec2: Any, clock: Clock, state: str) -> None:
    snapshot_id = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
    faithful.set_snapshot_state(REGION, snapshot_id, state, "volume read error" if state == "error" else "")
    clock.advance(days=1)
    described = _snapshot(ec2, snapshot_id)
    assert described["State"] == state
    assert described.get("StateMessage") == ("volume read error" if state == "error" else None)
    listed = ec2.describe_snapshots(Filters=[{"Name": "status", "Values": [state]}])["Snapshots"]
    assert [s["SnapshotId"] for s in listed] == [snapshot_id]
    with pytest.raises(ValueError):
        faithful.set_snapshot_state(REGION, snapshot_id, "available")


def test_an_error_in_a_multi_volume_set_fails_its_pending_snapshots(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    _volume(ec2, instance_id, "/dev/sdf")
    _volume(ec2, instance_id, "/dev/sdg")
    first, *others = (
        s["SnapshotId"] for s in ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id})["Snapshots"]
    )
    alone = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]  # not of the set
    faithful.set_snapshot_state(REGION, first, "error", "internal error")
    assert {_snapshot(ec2, s)["State"] for s in others} == {"error"}
    assert _snapshot(ec2, alone)["State"] == "pending"
    clock.advance(days=1)
    assert {_snapshot(ec2, s)["State"] for s in [first, *others]} == {"error"}


def test_snapshots_of_create_image_keep_moto_behaviour(faithful: MotoFidelity, ec2: Any) -> None:
    image_id = _image(ec2, _instance(ec2), "ami-snapshots")
    snapshot = _snapshot(ec2, faithful.snapshot_of(REGION, image_id))
    assert (snapshot["State"], snapshot["Progress"]) == ("completed", "100%")


def test_create_snapshot_takes_its_tags_and_description(faithful: MotoFidelity, ec2: Any) -> None:
    created = ec2.create_snapshot(
        VolumeId=_volume(ec2, tags={"team": "data"}),
        Description="ops-automation nightly",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "policy", "Value": "nightly"}]}],
    )
    described = _snapshot(ec2, created["SnapshotId"])
    assert _tags(created) == _tags(described) == {"policy": "nightly"}  # volume tags are not copied
    assert described["Description"] == "ops-automation nightly"


def test_create_snapshots_excludes_volumes_and_copies_volume_tags(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    kept = _volume(ec2, instance_id, "/dev/sdf", tags={"team": "data", "policy": "from-volume"})
    skipped = _volume(ec2, instance_id, "/dev/sdg", tags={"team": "scratch"})
    request_tags = [{"ResourceType": "snapshot", "Tags": [{"Key": "policy", "Value": "nightly"}]}]
    snapshots = ec2.create_snapshots(
        InstanceSpecification={"InstanceId": instance_id, "ExcludeBootVolume": True, "ExcludeDataVolumeIds": [skipped]},
        Description="set of nightly",
        CopyTagsFromSource="volume",
        TagSpecifications=request_tags,
    )["Snapshots"]
    assert [s["VolumeId"] for s in snapshots] == [kept]
    described = _snapshot(ec2, snapshots[0]["SnapshotId"])
    assert _tags(described) == {"team": "data", "policy": "nightly"}  # the request's tags win
    assert described["Description"] == "set of nightly"
    # Without CopyTagsFromSource, only the request's tags; without exclusions, every attached volume.
    clock.advance(seconds=15)
    snapshots = ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id}, TagSpecifications=request_tags)[
        "Snapshots"
    ]
    assert {s["VolumeId"] for s in snapshots} == {_root_volume(ec2, instance_id), kept, skipped}
    assert {tuple(_tags(s).items()) for s in snapshots} == {(("policy", "nightly"),)}


def test_create_snapshots_refuses_what_the_instance_specification_forbids(faithful: MotoFidelity, ec2: Any) -> None:
    instance_id = _instance(ec2)
    data = _volume(ec2, instance_id)
    forbidden: list[dict[str, Any]] = [
        {"InstanceId": instance_id, "ExcludeDataVolumeIds": [_root_volume(ec2, instance_id)]},
        {"InstanceId": instance_id, "ExcludeDataVolumeIds": [f"vol-{n:017x}" for n in range(41)]},
        {"InstanceId": instance_id, "ExcludeBootVolume": True, "ExcludeDataVolumeIds": [data]},
    ]
    for specification in forbidden:
        with pytest.raises(ClientError) as error:
            ec2.create_snapshots(InstanceSpecification=specification)
        assert _code(error) == "InvalidParameterValue", specification
    assert ec2.describe_snapshots()["Snapshots"] == []
    # An excluded id that is not attached excludes nothing (not documented; assumed).
    snapshots = ec2.create_snapshots(
        InstanceSpecification={"InstanceId": instance_id, "ExcludeDataVolumeIds": [_volume(ec2)]}
    )["Snapshots"]
    assert len(snapshots) == 2


# -- E13-E14: per-volume rate and concurrency --------------------------------------------------------------


def test_a_snapshot_of_a_volume_within_15_seconds_of_the_last_is_refused(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    volume_id = _volume(ec2, instance_id)
    ec2.create_snapshot(VolumeId=volume_id)
    clock.advance(seconds=14)
    with pytest.raises(ClientError) as error:
        ec2.create_snapshot(VolumeId=volume_id)
    assert _code(error) == "SnapshotCreationPerVolumeRateExceeded"
    # CreateSnapshots too, as a whole: the root volume is not snapshotted either.
    with pytest.raises(ClientError) as error:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id})
    assert _code(error) == "SnapshotCreationPerVolumeRateExceeded"
    assert len(ec2.describe_snapshots()["Snapshots"]) == 1
    clock.advance(seconds=1)
    assert len(ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id})["Snapshots"]) == 2
    clock.advance(seconds=14)
    with pytest.raises(ClientError) as error:
        ec2.create_snapshot(VolumeId=volume_id)
    assert _code(error) == "SnapshotCreationPerVolumeRateExceeded"
    ec2.create_snapshot(VolumeId=_volume(ec2))  # another volume is not affected


def _snapshots_15_seconds_apart(ec2: Any, clock: Clock, volume_id: str, count: int) -> list[str]:
    made = []
    for _ in range(count):
        made.append(str(ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]))
        clock.advance(seconds=15)
    return made


def test_a_volume_holds_five_incomplete_snapshots_deleted_pending_ones_included(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    volume_id = _volume(ec2)
    made = _snapshots_15_seconds_apart(ec2, clock, volume_id, 5)
    with pytest.raises(ClientError) as error:
        ec2.create_snapshot(VolumeId=volume_id)
    assert _code(error) == "ConcurrentSnapshotLimitExceeded"
    # Deleting a pending snapshot frees nothing until it would have completed; it leaves DescribeSnapshots at once.
    ec2.delete_snapshot(SnapshotId=made[0])
    assert made[0] not in {s["SnapshotId"] for s in ec2.describe_snapshots()["Snapshots"]}
    with pytest.raises(ClientError) as error:
        ec2.create_snapshot(VolumeId=volume_id)
    assert _code(error) == "ConcurrentSnapshotLimitExceeded"
    # A snapshot in error counts until it is deleted; completed ones do not count.
    faithful.set_snapshot_state(REGION, made[1], "error", "internal error")
    clock.now = START + DEFAULT_SNAPSHOT_COMPLETION_TIME + timedelta(minutes=5)
    for _ in range(4):
        ec2.create_snapshot(VolumeId=volume_id)
        clock.advance(seconds=15)
    with pytest.raises(ClientError) as error:
        ec2.create_snapshot(VolumeId=volume_id)
    assert _code(error) == "ConcurrentSnapshotLimitExceeded"
    ec2.delete_snapshot(SnapshotId=made[1])
    ec2.create_snapshot(VolumeId=volume_id)


@pytest.mark.parametrize("volume_type", ["st1", "sc1"])
def test_an_st1_or_sc1_volume_holds_one_pending_snapshot(
    faithful: MotoFidelity, ec2: Any, clock: Clock, volume_type: str
) -> None:
    volume_id = _volume(ec2, volume_type=volume_type)
    [first] = _snapshots_15_seconds_apart(ec2, clock, volume_id, 1)
    with pytest.raises(ClientError) as error:
        ec2.create_snapshot(VolumeId=volume_id)
    assert _code(error) == "ConcurrentSnapshotLimitExceeded"
    faithful.set_snapshot_state(REGION, first, "completed")
    ec2.create_snapshot(VolumeId=volume_id)


# -- E15: snapshot lock; archive tier ----------------------------------------------------------------------


def test_a_governance_lock_stops_deletion_until_unlocked(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    snapshot_id = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
    clock.advance(days=1)
    faithful.lock_snapshot(REGION, snapshot_id, mode="governance")
    with pytest.raises(ClientError) as error:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert _code(error) == DEFAULT_LOCKED_SNAPSHOT_ERROR == faithful.locked_snapshot_error
    faithful.unlock_snapshot(REGION, snapshot_id)
    ec2.delete_snapshot(SnapshotId=snapshot_id)


def test_a_compliance_lock_holds_until_it_expires_from_completion(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    snapshot_id = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
    faithful.lock_snapshot(REGION, snapshot_id, mode="compliance", duration=timedelta(days=1))  # while pending
    with pytest.raises(ValueError):
        faithful.unlock_snapshot(REGION, snapshot_id)
    # The duration starts when the snapshot completes.
    for elapsed in (timedelta(days=1), DEFAULT_SNAPSHOT_COMPLETION_TIME + timedelta(days=1) - timedelta(seconds=1)):
        clock.now = START + elapsed
        with pytest.raises(ClientError) as error:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
        assert _code(error) == "OperationNotPermitted", elapsed
    clock.now = START + DEFAULT_SNAPSHOT_COMPLETION_TIME + timedelta(days=1)
    ec2.delete_snapshot(SnapshotId=snapshot_id)


def test_describe_locked_snapshots_answers_the_locks(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    governed, timed, free = (ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"] for _ in range(3))
    clock.advance(days=1)
    faithful.lock_snapshot(REGION, governed, mode="governance")
    faithful.lock_snapshot(REGION, timed, mode="compliance", duration=timedelta(days=7))
    answer = ec2.describe_locked_snapshots(SnapshotIds=[governed, timed, free])["Snapshots"]
    states = {entry["SnapshotId"]: entry["LockState"] for entry in answer}
    assert states == {governed: "governance", timed: "compliance"}  # no entry for a snapshot without a lock
    [entry] = [entry for entry in answer if entry["SnapshotId"] == timed]
    assert (entry["LockDuration"], entry["LockCreatedOn"], entry["LockExpiresOn"]) == (
        7,
        clock.now,
        clock.now + timedelta(days=7),
    )
    clock.advance(days=7)
    expired = ec2.describe_locked_snapshots(Filters=[{"Name": "lock-state", "Values": ["expired"]}])["Snapshots"]
    assert [entry["SnapshotId"] for entry in expired] == [timed]
    ec2.delete_snapshot(SnapshotId=timed)


def test_a_lock_placed_while_pending_is_cancelled_when_the_snapshot_fails(faithful: MotoFidelity, ec2: Any) -> None:
    snapshot_id = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
    faithful.lock_snapshot(REGION, snapshot_id, mode="compliance")
    faithful.set_snapshot_state(REGION, snapshot_id, "error", "internal error")
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    failed = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
    faithful.set_snapshot_state(REGION, failed, "error")
    with pytest.raises(ValueError):  # only pending or completed snapshots can be locked
        faithful.lock_snapshot(REGION, failed)


def test_deregister_with_delete_associated_snapshots_keeps_a_locked_one(faithful: MotoFidelity, ec2: Any) -> None:
    image_id = _image(ec2, _instance(ec2), "locked-snapshot")
    snapshot_id = faithful.snapshot_of(REGION, image_id)
    faithful.lock_snapshot(REGION, snapshot_id)
    response = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert response["DeleteSnapshotResults"] == [{"SnapshotId": snapshot_id, "ReturnCode": "client-error"}]
    assert _snapshot(ec2, snapshot_id)["SnapshotId"] == snapshot_id


def test_an_archived_snapshot_is_listed_in_the_archive_tier_and_can_be_deleted(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    snapshot_id = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
    with pytest.raises(ValueError):  # pending: AWS archives completed snapshots only
        faithful.archive_snapshot(REGION, snapshot_id)
    clock.advance(days=30)
    faithful.archive_snapshot(REGION, snapshot_id)
    assert _snapshot(ec2, snapshot_id)["StorageTier"] == "archive"
    archived = ec2.describe_snapshots(Filters=[{"Name": "storage-tier", "Values": ["archive"]}])["Snapshots"]
    assert [s["SnapshotId"] for s in archived] == [snapshot_id]
    ec2.delete_snapshot(SnapshotId=snapshot_id)  # allowed; AWS only bills the rest of the 90-day minimum
    # A snapshot an AMI uses is archived only once every such AMI is disabled.
    image_id = _image(ec2, instance_id, "archived-ami")
    ami_snapshot = faithful.snapshot_of(REGION, image_id)
    with pytest.raises(ValueError):
        faithful.archive_snapshot(REGION, ami_snapshot)
    ec2.disable_image(ImageId=image_id)
    faithful.archive_snapshot(REGION, ami_snapshot)
    assert _snapshot(ec2, ami_snapshot)["StorageTier"] == "archive"


# -- E16: unknown and malformed ids; fault injection --------------------------------------------------------


def test_unknown_deleted_and_malformed_sources_get_the_documented_codes(faithful: MotoFidelity, ec2: Any) -> None:
    deleted = _volume(ec2)
    ec2.delete_volume(VolumeId=deleted)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: ec2.create_snapshot(VolumeId="vol-0123456789abcdef0"), "InvalidVolume.NotFound"),
        (lambda: ec2.create_snapshot(VolumeId=deleted), "InvalidVolume.NotFound"),
        (lambda: ec2.create_snapshot(VolumeId="vol-not-a-volume"), "InvalidVolumeID.Malformed"),
        (
            lambda: ec2.create_snapshots(InstanceSpecification={"InstanceId": "i-0123456789abcdef0"}),
            "InvalidInstanceID.NotFound",
        ),
        (
            lambda: ec2.create_snapshots(InstanceSpecification={"InstanceId": "i-nope"}),
            "InvalidInstanceID.Malformed",
        ),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as error:
            call()
        assert _code(error) == code


def test_injected_create_snapshot_faults_reach_the_caller_and_heal(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    volume_id = _volume(ec2, instance_id)
    faithful.fail_create_snapshot(volume_id, "IncorrectState")
    faithful.fail_create_snapshot(instance_id, "InternalError")
    with pytest.raises(ClientError) as error:
        ec2.create_snapshot(VolumeId=volume_id)
    assert _code(error) == "IncorrectState"
    with pytest.raises(ClientError) as error:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id})
    assert _code(error) == "InternalError"
    assert faithful.create_snapshot_attempts == [volume_id, instance_id]
    assert ec2.describe_snapshots()["Snapshots"] == []
    faithful.fail_create_snapshot(volume_id, None)
    faithful.fail_create_snapshot(instance_id, None)
    ec2.create_snapshot(VolumeId=volume_id)
    clock.advance(seconds=15)
    assert len(ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id})["Snapshots"]) == 2


# -- D1-D5: deployments and the event flow -----------------------------------------------------------------


def test_eventbridge_delivers_the_account_field(faithful: MotoFidelity) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ami", EventPattern=json.dumps({"source": ["aws.ec2"]}))
    events.put_targets(Rule="ami", Targets=[{"Id": "q", "Arn": queue_arn}])
    events.put_events(Entries=[{"Source": "aws.ec2", "DetailType": "EC2 AMI State Change", "Detail": "{}"}])
    [message] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert json.loads(message["Body"])["account"] == faithful.account_id


def _queue(region: str, name: str) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", region_name=region)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return sqs, url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _bus(region: str) -> str:
    return f"arn:aws:events:{region}:{MOTO_ACCOUNT}:event-bus/default"


def test_an_event_bus_target_in_another_region_gets_the_original_event(faithful: MotoFidelity) -> None:
    """D5: the event a destination Region forwards keeps its `region`, `id`, `time` and `resources`, so the source
    Region's rule on the origin's `region` routes it; it is not forwarded a second time."""
    sqs, queue_url, queue_arn = _queue(REGION, "forwarded")
    home = boto3.client("events", region_name=REGION)
    away = boto3.client("events", region_name=OTHER_REGION)
    pattern = {"source": ["aws.ec2"], "region": [OTHER_REGION]}
    home.put_rule(Name="from-away", EventPattern=json.dumps(pattern))
    home.put_targets(Rule="from-away", Targets=[{"Id": "q", "Arn": queue_arn}])
    # A rule of the receiving bus that would send the event on to a third bus (the away bus again): not taken.
    home.put_rule(Name="onwards", EventPattern=json.dumps({"source": ["aws.ec2"]}))
    home.put_targets(Rule="onwards", Targets=[{"Id": "bus", "Arn": _bus(OTHER_REGION)}])
    away.put_rule(Name="forward", EventPattern=json.dumps({"source": ["aws.ec2"]}))
    away.put_targets(Rule="forward", Targets=[{"Id": "bus", "Arn": _bus(REGION)}])
    away_sqs, away_url, away_arn = _queue(OTHER_REGION, "away")
    away.put_rule(Name="local", EventPattern=json.dumps({"source": ["aws.ec2"]}))
    away.put_targets(Rule="local", Targets=[{"Id": "q", "Arn": away_arn}])
    resource = f"arn:aws:ec2::{OTHER_REGION}:snapshot/snap-0123456789abcdef0"
    [entry] = away.put_events(
        Entries=[
            {
                "Source": "aws.ec2",
                "DetailType": "EBS Snapshot Notification",
                "Resources": [resource],
                "Detail": json.dumps({"event": "copySnapshot", "result": "succeeded"}),
                "Time": START,
            }
        ]
    )["Entries"]
    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    assert (event["region"], event["account"], event["id"]) == (OTHER_REGION, faithful.account_id, entry["EventId"])
    assert event["resources"] == [resource]
    assert event["time"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert event["detail"] == {"event": "copySnapshot", "result": "succeeded"}
    # The away bus's own queue got the event once: the receiving bus's `onwards` rule did not send it back.
    assert len(away_sqs.receive_message(QueueUrl=away_url, MaxNumberOfMessages=10)["Messages"]) == 1


def test_an_event_put_on_a_bus_is_forwarded_by_an_event_bus_target(faithful: MotoFidelity) -> None:
    """D5: PutEvents on the receiving bus itself still reaches that bus's event-bus targets (one hop)."""
    away_sqs, away_url, away_arn = _queue(OTHER_REGION, "away")
    boto3.client("events", region_name=OTHER_REGION).put_rule(Name="local", EventPattern='{"source": ["aws.ec2"]}')
    boto3.client("events", region_name=OTHER_REGION).put_targets(Rule="local", Targets=[{"Id": "q", "Arn": away_arn}])
    home = boto3.client("events", region_name=REGION)
    home.put_rule(Name="onwards", EventPattern=json.dumps({"source": ["aws.ec2"]}))
    home.put_targets(Rule="onwards", Targets=[{"Id": "bus", "Arn": _bus(OTHER_REGION)}])
    home.put_events(Entries=[{"Source": "aws.ec2", "DetailType": "EBS Snapshot Notification", "Detail": "{}"}])
    [message] = away_sqs.receive_message(QueueUrl=away_url)["Messages"]
    assert json.loads(message["Body"])["region"] == REGION


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _function(layers: list[str] | None = None) -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    response = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="fn",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Layers=layers or [],
    )
    return str(response["FunctionArn"])


def test_public_powertools_layers_exist(faithful: MotoFidelity) -> None:
    layer = f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:7"
    _function([layer])
    configuration = boto3.client("lambda", region_name=REGION).get_function_configuration(FunctionName="fn")
    assert [item["Arn"] for item in configuration["Layers"]] == [layer]


def test_sqs_messages_wait_for_a_poller_instead_of_a_push_to_docker(faithful: MotoFidelity) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="work")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _function()
    boto3.client("lambda", region_name=REGION).create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="fn")
    sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
    assert len(sqs.receive_message(QueueUrl=queue_url)["Messages"]) == 1


def test_sqs_delays_and_visibility_run_on_the_fidelity_clock(faithful: MotoFidelity, clock: Clock) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="delayed", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="later", DelaySeconds=900)
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []
    clock.advance(seconds=901)
    [message] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []  # in flight
    clock.advance(seconds=301)
    assert sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"] == message["Body"]


# -- the entry point ---------------------------------------------------------------------------------------


def test_faithful_aws_is_entered_once_and_simulated_time_restores_the_clocks(moto_env: None) -> None:
    with faithful_aws() as fidelity:
        with pytest.raises(RuntimeError), faithful_aws():
            pass
        other = Clock()
        with fidelity.simulated_time(other):
            assert fidelity.now() == START and fidelity.sqs_clock is other
        assert fidelity.clock is None and fidelity.sqs_clock is None
    with pytest.raises(ValueError):
        faithful_aws(sqs_time=True).__enter__()


def test_the_http_server_honours_the_patched_parameters() -> None:
    """The same patches through `scripts.local_aws.local_aws()` (a ThreadedMotoServer in this process), as
    Terraform and the deployed handlers reach it."""
    from scripts.local_aws import local_aws

    clock = Clock()
    with local_aws(REGION) as aws, aws.fidelity.simulated_time(clock):
        ec2 = aws.client("ec2")
        instance_id = _instance(ec2)
        enabled = _image(ec2, instance_id, "enabled")
        disabled = _image(ec2, instance_id, "disabled")
        ec2.disable_image(ImageId=disabled)
        assert _ids(ec2.describe_images(Owners=["self"])["Images"]) == {enabled}
        assert _ids(ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]) == {enabled, disabled}
        response = ec2.deregister_image(ImageId=enabled, DeleteAssociatedSnapshots=True)
        assert [item["ReturnCode"] for item in response["DeleteSnapshotResults"]] == ["success"]
        assert ec2.describe_images(ImageIds=[enabled])["Images"][0]["State"] == "deregistered"
        # EBS snapshots: the parameters moto ignores, and the states on the fidelity clock (E11, E12).
        kept = _volume(ec2, instance_id, "/dev/sdf", tags={"team": "data"})
        skipped = _volume(ec2, instance_id, "/dev/sdg")
        [snapshot] = ec2.create_snapshots(
            InstanceSpecification={
                "InstanceId": instance_id,
                "ExcludeBootVolume": True,
                "ExcludeDataVolumeIds": [skipped],
            },
            CopyTagsFromSource="volume",
        )["Snapshots"]
        assert (snapshot["VolumeId"], snapshot["State"], _tags(snapshot)) == (kept, "pending", {"team": "data"})
        clock.advance(seconds=DEFAULT_SNAPSHOT_COMPLETION_TIME.total_seconds())
        assert _snapshot(ec2, snapshot["SnapshotId"])["State"] == "completed"


def test_a_snapshot_copy_has_an_arbitrary_volume_id_and_the_fidelity_start_time(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    """E18."""
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    source = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    clock.advance(hours=2)
    copied = ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    [listed] = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": [copied]}])[
        "Snapshots"
    ]
    assert listed["VolumeId"] != volume
    assert listed["StartTime"] == clock.now
    [original] = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": [source]}])[
        "Snapshots"
    ]
    assert original["VolumeId"] == volume


# -- E19, E20: the snapshots of CreateImage and CopyImage ----------------------------------------------------

CREATE_IMAGE_DESCRIPTION = re.compile(r"^Created by CreateImage\((i-[0-9a-f]{17})\) for (ami-[0-9a-f]{17})$")


def _instance_with_root(ec2: Any, size: int) -> tuple[str, str]:
    instance_id = str(
        ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=1,
            MaxCount=1,
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": size, "VolumeType": "gp3"}}],
        )["Instances"][0]["InstanceId"]
    )
    return instance_id, _root_volume(ec2, instance_id)


def test_create_image_snapshots_the_instance_root_volume(faithful: MotoFidelity, ec2: Any) -> None:
    """E19: VolumeId/VolumeSize of the snapshot and the AMI's root mapping are the root volume's (moto: 15 GiB)."""
    instance_id, root = _instance_with_root(ec2, 30)
    image_id = _image(ec2, instance_id, "root-volume")
    snapshot = _snapshot(ec2, faithful.snapshot_of(REGION, image_id))
    assert (snapshot["VolumeId"], snapshot["VolumeSize"]) == (root, 30)
    assert CREATE_IMAGE_DESCRIPTION.match(snapshot["Description"]).groups() == (instance_id, image_id)  # type: ignore[union-attr]
    by_volume = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [root]}])
    assert [s["SnapshotId"] for s in by_volume["Snapshots"]] == [snapshot["SnapshotId"]]
    [mapping] = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    assert (mapping["Ebs"]["SnapshotId"], mapping["Ebs"]["VolumeSize"]) == (snapshot["SnapshotId"], 30)
    root_type = ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["VolumeType"]
    assert mapping["Ebs"]["VolumeType"] == root_type


def test_create_image_description_with_the_volume_is_a_setting(faithful: MotoFidelity, ec2: Any) -> None:
    """E19: the other observed form, `… for ami-… from vol-…` (AWS publishes none)."""
    faithful.create_image_description_with_volume = True
    instance_id, root = _instance_with_root(ec2, 12)
    image_id = _image(ec2, instance_id, "with-volume")
    description = _snapshot(ec2, faithful.snapshot_of(REGION, image_id))["Description"]
    assert description == f"Created by CreateImage({instance_id}) for {image_id} from {root}"


def test_copy_image_describes_and_tags_the_destination_snapshot(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E20: the copy's snapshot, in the destination Region, with EC2's description, the tags of the request and
    CopyImageTags, an arbitrary volume id, the source's size and the fidelity clock."""
    instance_id, _ = _instance_with_root(ec2, 25)
    source_image = _image(
        ec2,
        instance_id,
        "copy-source",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "team", "Value": "web"}]}],
    )
    source_snapshot = faithful.snapshot_of(REGION, source_image)
    clock.advance(hours=3)
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    copied = destination.copy_image(
        SourceImageId=source_image,
        SourceRegion=REGION,
        Name="copy-destination",
        CopyImageTags=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "copy", "Value": "yes"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "ops-automation:managed-by", "Value": "test"}]},
        ],
    )["ImageId"]
    [snapshot] = destination.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    millis = f"{int(clock.now.timestamp() * 1000):,}"
    assert snapshot["Description"] == (
        f"Copied for DestinationAmi {copied} from SourceAmi {source_image} for SourceSnapshot {source_snapshot}. "
        f"Task created on {millis}."
    )
    assert "," in millis
    assert (snapshot["VolumeId"], snapshot["VolumeSize"], snapshot["StartTime"]) == ("vol-ffffffff", 25, clock.now)
    assert _tags(snapshot) == {"ops-automation:managed-by": "test"}
    [image] = destination.describe_images(ImageIds=[copied])["Images"]
    assert _tags(image) == {"team": "web", "copy": "yes"}
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snapshot["SnapshotId"]
    assert image["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 25
    assert image["CreationDate"].startswith(clock.now.strftime("%Y-%m-%dT%H:%M:%S"))
    # The source Region gains no snapshot; without CopyImageTags the source's tags stay behind.
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [source_snapshot]
    plain = destination.copy_image(SourceImageId=source_image, SourceRegion=REGION, Name="plain-copy")["ImageId"]
    assert _tags(destination.describe_images(ImageIds=[plain])["Images"][0]) == {}


def test_copy_image_refuses_other_tag_resource_types(faithful: MotoFidelity, ec2: Any) -> None:
    """E20: "If you specify other values for ResourceType, the request fails." (code assumed)."""
    source_image = _image(ec2, _instance(ec2), "copy-refused")
    with pytest.raises(ClientError) as error:
        ec2.copy_image(
            SourceImageId=source_image,
            SourceRegion=REGION,
            Name="copy-refused-2",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}],
        )
    assert _code(error) == "InvalidParameterValue"


# -- E21: filter wildcards ------------------------------------------------------------------------------------


def test_filter_values_match_with_the_documented_wildcards(faithful: MotoFidelity, ec2: Any) -> None:
    """E21: `*`, `?` (exactly one character), backslash escapes; `[` is literal (moto: fnmatch classes)."""
    volume = _volume(ec2)
    descriptions = ["backup [daily]", "*literal", "Xliteral", "ab", "a"]
    faithful.snapshot_rate_interval = timedelta(0)  # E13 is not what this test is about
    ids = {}
    for description in descriptions:
        ids[description] = ec2.create_snapshot(VolumeId=volume, Description=description)["SnapshotId"]
        faithful.set_snapshot_state(REGION, ids[description], "completed")  # E14: keep below the pending limit

    def matching(*values: str) -> set[str]:
        response = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "description", "Values": list(values)}])
        return {description for description, snapshot_id in ids.items() if snapshot_id in _ids_of(response)}

    assert matching("backup [daily]") == {"backup [daily]"}
    assert matching("backup [d]aily]") == set()
    assert matching("\\*literal") == {"*literal"}
    assert matching("?literal") == {"*literal", "Xliteral"}
    assert matching("a?") == {"ab"}
    assert matching("a*") == {"ab", "a"}
    assert matching("A*") == set()  # case-sensitive


def _ids_of(response: dict[str, Any]) -> set[str]:
    return {snapshot["SnapshotId"] for snapshot in response["Snapshots"]}


def test_the_image_description_prefilters_find_ec2_written_descriptions(faithful: MotoFidelity, ec2: Any) -> None:
    """E19-E21: the server-side filters a cleanup would use find the snapshots of CreateImage and CopyImage."""
    image_id = _image(ec2, _instance(ec2), "prefilter")
    copied = ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="prefilter-copy")["ImageId"]
    response = ec2.describe_snapshots(
        OwnerIds=["self"],
        Filters=[{"Name": "description", "Values": ["Created by CreateImage(*) for ami-*", "Copied for *"]}],
    )
    assert _ids_of(response) == {faithful.snapshot_of(REGION, image_id), faithful.snapshot_of(REGION, copied)}


# -- E22: the Recycle Bin -------------------------------------------------------------------------------------


def test_a_recycled_ami_is_listed_in_the_recycle_bin_until_purged(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    instance_id = _instance(ec2)
    image_id = _image(ec2, instance_id, "recycled", Description="nightly backup")
    kept = _image(ec2, instance_id, "kept")
    entered = clock.now
    faithful.recycle_image(REGION, image_id, retain_until=entered + timedelta(days=7))
    [listed] = ec2.list_images_in_recycle_bin()["Images"]
    assert listed == {
        "ImageId": image_id,
        "Name": "recycled",
        "Description": "nightly backup",
        "RecycleBinEnterTime": entered,
        "RecycleBinExitTime": entered + timedelta(days=7),
    }
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin(ImageIds=[image_id, kept])["Images"]] == [image_id]
    # Deregistered: listed as such for the E9 window, then gone from DescribeImages.
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "deregistered"
    clock.advance(seconds=DEFAULT_DEREGISTERED_LISTED_WINDOW.total_seconds())
    assert ec2.describe_images(ImageIds=[image_id])["Images"] == []
    assert _ids(ec2.describe_images(Owners=["self"])["Images"]) == {kept}
    assert len(ec2.list_images_in_recycle_bin()["Images"]) == 1
    faithful.purge_recycled_image(REGION, image_id)
    assert ec2.list_images_in_recycle_bin()["Images"] == []
    # Without a purge, the AMI leaves the bin at its exit time (AWS deletes it then).
    faithful.recycle_image(REGION, kept, retain_until=clock.now + timedelta(days=1))
    clock.advance(days=1)
    assert ec2.list_images_in_recycle_bin(ImageIds=[kept])["Images"] == []


def test_the_snapshots_of_a_recycled_ami_can_be_deleted(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E22: AWS documents that deleting them makes the AMI unrecoverable; it does not refuse (after E7's window)."""
    image_id = _image(ec2, _instance(ec2), "recycled-snapshots")
    snapshot_id = faithful.snapshot_of(REGION, image_id)
    faithful.recycle_image(REGION, image_id, retain_until=clock.now + timedelta(days=30))
    with pytest.raises(ClientError) as error:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert _code(error) == "InvalidSnapshot.InUse"
    clock.advance(seconds=DEFAULT_SNAPSHOT_IN_USE_WINDOW.total_seconds())
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [image_id]


def test_list_images_in_recycle_bin_pages_and_limits(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    instance_id = _instance(ec2)
    images = sorted(_image(ec2, instance_id, f"paged-{index}") for index in range(3))
    for image_id in images:
        faithful.recycle_image(REGION, image_id, retain_until=clock.now + timedelta(days=1))
    first = ec2.list_images_in_recycle_bin(MaxResults=2)
    second = ec2.list_images_in_recycle_bin(MaxResults=2, NextToken=first["NextToken"])
    assert [i["ImageId"] for i in first["Images"] + second["Images"]] == images
    assert "NextToken" not in second
    paginated = ec2.get_paginator("list_images_in_recycle_bin").paginate(PaginationConfig={"PageSize": 1})
    assert [i["ImageId"] for page in paginated for i in page["Images"]] == images
    with pytest.raises(ClientError) as error:
        ec2.list_images_in_recycle_bin(ImageIds=[f"ami-{index:017x}" for index in range(21)])
    assert _code(error) == "InvalidParameterValue"
    with pytest.raises(ClientError) as error:
        ec2.list_images_in_recycle_bin(MaxResults=1001)
    assert _code(error) == "InvalidParameterValue"
    with pytest.raises(KeyError):
        faithful.recycle_image(REGION, "ami-00000000000000000", retain_until=clock.now + timedelta(days=1))


# -- E23: snapshot tiers --------------------------------------------------------------------------------------


def test_snapshot_tier_status_filters_the_last_tiering_operation_and_pages(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    volume = _volume(ec2)
    snapshots = []
    for _ in range(3):
        snapshots.append(ec2.create_snapshot(VolumeId=volume)["SnapshotId"])
        clock.advance(minutes=15)  # E11: completed; E13: beyond the rate limit
    standard, *archived = snapshots
    clock.advance(days=1)
    backdated = clock.now - timedelta(hours=6)
    faithful.archive_snapshot(REGION, archived[0], at=backdated)
    faithful.archive_snapshot(REGION, archived[1])
    statuses = ec2.describe_snapshot_tier_status(
        Filters=[{"Name": "last-tiering-operation", "Values": ["archival-completed"]}]
    )["SnapshotTierStatuses"]
    assert sorted(s["SnapshotId"] for s in statuses) == sorted(archived)
    by_id = {s["SnapshotId"]: s for s in statuses}
    assert by_id[archived[0]]["ArchivalCompleteTime"] == backdated
    assert by_id[archived[1]]["ArchivalCompleteTime"] == clock.now
    assert by_id[archived[1]]["LastTieringStartTime"] == clock.now
    assert by_id[archived[1]]["StorageTier"] == "archive"
    [plain] = ec2.describe_snapshot_tier_status(Filters=[{"Name": "snapshot-id", "Values": [standard]}])[
        "SnapshotTierStatuses"
    ]
    assert plain["StorageTier"] == "standard" and "ArchivalCompleteTime" not in plain
    assert (
        ec2.describe_snapshot_tier_status(
            Filters=[{"Name": "last-tiering-operation", "Values": ["temporary-restore-completed"]}]
        )["SnapshotTierStatuses"]
        == []
    )
    first = ec2.describe_snapshot_tier_status(MaxResults=2)
    second = ec2.describe_snapshot_tier_status(MaxResults=2, NextToken=first["NextToken"])
    assert sorted(s["SnapshotId"] for s in first["SnapshotTierStatuses"] + second["SnapshotTierStatuses"]) == sorted(
        snapshots
    )
    with pytest.raises(ValueError):  # before the snapshot existed
        faithful.archive_snapshot(REGION, standard, at=START - timedelta(days=1))


def test_modify_snapshot_tier_runs_on_the_fidelity_clock(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    snapshot_id = ec2.create_snapshot(VolumeId=_volume(ec2))["SnapshotId"]
    clock.advance(days=2)
    assert ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")["TieringStartTime"] == clock.now
    [status] = ec2.describe_snapshot_tier_status(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])[
        "SnapshotTierStatuses"
    ]
    assert status["ArchivalCompleteTime"] == clock.now


def test_describe_snapshots_pages_by_max_results(faithful: MotoFidelity, ec2: Any) -> None:
    """E24: pages of MaxResults with a NextToken, as AWS documents; moto answers everything at once."""
    # One volume each: the per-volume rate and pending limits (E13, E14) are not what this test is about.
    volumes = [ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"] for _ in range(12)]
    made = {ec2.create_snapshot(VolumeId=volume)["SnapshotId"] for volume in volumes}
    pages = list(ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 5}))
    assert [len(page["Snapshots"]) for page in pages] == [5, 5, 2]
    assert {s["SnapshotId"] for page in pages for s in page["Snapshots"]} == made


def test_the_http_server_lists_the_recycle_bin_and_tier_status() -> None:
    """E20, E22, E23 through `scripts.local_aws.local_aws()`, as the deployed handlers reach them."""
    from scripts.local_aws import local_aws

    clock = Clock()
    with local_aws(REGION) as aws, aws.fidelity.simulated_time(clock):
        ec2 = aws.client("ec2")
        image_id = _image(ec2, _instance(ec2), "served")
        copied = ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="served-copy")["ImageId"]
        copy_snapshot = aws.fidelity.snapshot_of(REGION, copied)
        assert _snapshot(ec2, copy_snapshot)["Description"].startswith(f"Copied for DestinationAmi {copied} ")
        aws.fidelity.recycle_image(REGION, image_id, retain_until=clock.now + timedelta(days=3))
        assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [image_id]
        ec2.disable_image(ImageId=copied)
        clock.advance(seconds=aws.fidelity.image_copy_time.total_seconds())  # E32: only a completed copy archives
        aws.fidelity.archive_snapshot(REGION, copy_snapshot)
        [status] = ec2.describe_snapshot_tier_status(
            Filters=[{"Name": "last-tiering-operation", "Values": ["archival-completed"]}]
        )["SnapshotTierStatuses"]
        assert (status["SnapshotId"], status["ArchivalCompleteTime"]) == (copy_snapshot, clock.now)


# -- E25-E32: copies across Regions and accounts ---------------------------------------------------------------

DR_ACCOUNT = "222222222222"


def _completed_snapshot(ec2: Any, clock: Clock, **tags: str) -> str:
    """A snapshot of CreateSnapshot in `ec2`'s Region, completed (E11) by the time this returns."""
    region = ec2.meta.region_name
    volume = ec2.create_volume(AvailabilityZone=f"{region}a", Size=8)["VolumeId"]
    specification = [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    snapshot = str(ec2.create_snapshot(VolumeId=volume, TagSpecifications=specification if tags else [])["SnapshotId"])
    clock.advance(seconds=DEFAULT_SNAPSHOT_COMPLETION_TIME.total_seconds())
    return snapshot


def _account_client(service: str, account_id: str, region: str) -> Any:
    """A client acting in `account_id` through an assumed role, as a cross-account copier does (moto attributes
    the role's credentials to its account)."""
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/dr-copier", RoleSessionName="dr-copy"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _key_arn(region: str, client: Any = None) -> str:
    kms = client or boto3.client("kms", region_name=region)
    return str(kms.create_key(Description="dr copies")["KeyMetadata"]["Arn"])


def test_a_copy_is_made_in_the_destination_region_pending_then_completed(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    """E25 (and E18): requested in the destination Region with SourceRegion; tagged at creation; pending ("0%") on
    the fidelity clock until `snapshot_copy_time` later. The source Region gains nothing (the origin's bug)."""
    source = _completed_snapshot(ec2, clock)
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    answer = destination.copy_snapshot(
        SourceSnapshotId=source,
        SourceRegion=REGION,
        Description="dr copy",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "source-snapshot", "Value": source}]}],
    )
    copied = answer["SnapshotId"]
    assert _tags(answer) == {"source-snapshot": source}
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [source]
    snapshot = _snapshot(destination, copied)
    assert (snapshot["State"], snapshot["Progress"], snapshot["VolumeId"]) == ("pending", "0%", "vol-ffffffff")
    assert (snapshot["StartTime"], snapshot["Description"], _tags(snapshot)) == (
        clock.now,
        "dr copy",
        {"source-snapshot": source},
    )
    clock.advance(seconds=DEFAULT_SNAPSHOT_COPY_TIME.total_seconds() / 2)
    assert _snapshot(destination, copied)["Progress"] == "50%"
    clock.advance(seconds=DEFAULT_SNAPSHOT_COPY_TIME.total_seconds() / 2)
    assert (_snapshot(destination, copied)["State"], _snapshot(destination, copied)["Progress"]) == (
        "completed",
        "100%",
    )


def test_the_copy_time_is_a_parameter(moto_env: None, ec2: Any, clock: Clock) -> None:
    """E25, E32: `timedelta(0)` completes copies at once, as moto does."""
    with faithful_aws(clock, snapshot_copy_time=timedelta(0), image_copy_time=timedelta(0)):
        source = _completed_snapshot(ec2, clock)
        copied = ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
        assert _snapshot(ec2, copied)["State"] == "completed"
        image = ec2.copy_image(SourceImageId=_image(ec2, _instance(ec2), "now"), SourceRegion=REGION, Name="now-2")
        assert ec2.describe_images(ImageIds=[image["ImageId"]])["Images"][0]["State"] == "available"


def test_a_copy_can_end_in_error_and_copy_faults_reach_the_caller(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    """E25 helpers: `end_copy_in_error` (the copy runs, then ends in error with a StateMessage), `set_snapshot_state`
    (at once) and `fail_copy_snapshot` (the request fails; healed with None)."""
    source = _completed_snapshot(ec2, clock)
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    failing = destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    faithful.end_copy_in_error(failing, "copy broke")
    assert _snapshot(destination, failing)["State"] == "pending"
    clock.advance(seconds=DEFAULT_SNAPSHOT_COPY_TIME.total_seconds())
    broken = _snapshot(destination, failing)
    assert (broken["State"], broken["StateMessage"]) == ("error", "copy broke")
    pinned = destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    faithful.set_snapshot_state(OTHER_REGION, pinned, "error", "pinned")
    assert _snapshot(destination, pinned)["State"] == "error"
    faithful.fail_copy_snapshot(source, "InternalError")
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    assert _code(error) == "InternalError"
    faithful.fail_copy_snapshot(source, None)
    destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    assert faithful.copy_snapshot_attempts == [source] * 4


def test_only_a_completed_source_can_be_copied(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E26: a pending or failed source is refused (code assumed: IncorrectState); an unknown one is NotFound."""
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    pending = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId=pending, SourceRegion=REGION)
    assert _code(error) == DEFAULT_INCOMPLETE_SOURCE_ERROR == "IncorrectState"
    faithful.set_snapshot_state(REGION, pending, "error", "broken")
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId=pending, SourceRegion=REGION)
    assert _code(error) == "IncorrectState"
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId="snap-0123456789abcdef0", SourceRegion=REGION)
    assert _code(error) == "InvalidSnapshot.NotFound"
    # A copy still pending cannot be copied on either.
    source = _completed_snapshot(ec2, clock)
    copied = destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    with pytest.raises(ClientError) as error:
        ec2.copy_snapshot(SourceSnapshotId=copied, SourceRegion=OTHER_REGION)
    assert _code(error) == "IncorrectState"


def test_twenty_pending_copies_per_destination_region(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E27: the 21st concurrent copy into one Region is ResourceLimitExceeded; other Regions, failed copies and
    completed ones do not count."""
    assert CONCURRENT_SNAPSHOT_COPIES_PER_REGION == faithful.concurrent_snapshot_copies == 20
    source = _completed_snapshot(ec2, clock)
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    copies = [destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"] for _ in range(20)]
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    assert _code(error) == "ResourceLimitExceeded"
    ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)  # another destination Region
    faithful.set_snapshot_state(OTHER_REGION, copies[0], "error", "broken")
    extra = destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    with pytest.raises(ClientError):
        destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    destination.delete_snapshot(SnapshotId=extra)
    destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    clock.advance(seconds=DEFAULT_SNAPSHOT_COPY_TIME.total_seconds())
    destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    faithful.concurrent_snapshot_copies = 1
    with pytest.raises(ClientError):
        destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)


def test_copies_are_encrypted_as_requested(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E28: Encrypted with KmsKeyId records the key; Encrypted alone uses the Region's default EBS key; an encrypted
    source stays encrypted; KmsKeyId without encryption is refused."""
    source = _completed_snapshot(ec2, clock)
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    key = _key_arn(OTHER_REGION)
    with_key = destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId=key)
    assert (
        _snapshot(destination, with_key["SnapshotId"])["Encrypted"],
        _snapshot(destination, with_key["SnapshotId"])["KmsKeyId"],
    ) == (True, key)
    by_default = _snapshot(
        destination,
        destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True)["SnapshotId"],
    )
    managed = faithful.aws_managed_ebs_key(OTHER_REGION)
    assert (by_default["Encrypted"], by_default["KmsKeyId"]) == (True, managed)
    plain = _snapshot(
        destination, destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    )
    assert plain["Encrypted"] is False and "KmsKeyId" not in plain
    clock.advance(seconds=DEFAULT_SNAPSHOT_COPY_TIME.total_seconds())
    again = _snapshot(
        ec2, ec2.copy_snapshot(SourceSnapshotId=with_key["SnapshotId"], SourceRegion=OTHER_REGION)["SnapshotId"]
    )
    assert (again["Encrypted"], again["KmsKeyId"]) == (True, faithful.aws_managed_ebs_key(REGION))
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, KmsKeyId=key)
    assert _code(error) == "InvalidParameterCombination"


def test_a_snapshot_shared_with_another_account_can_be_seen_and_copied(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    """E28: account B sees and copies A's snapshot once A shares it (CreateVolumePermission); the copy is B's, in
    B's destination Region; before the share B cannot copy it and DescribeSnapshots leaves it out."""
    source = _completed_snapshot(ec2, clock)
    dr_source_region = _account_client("ec2", DR_ACCOUNT, REGION)
    dr_destination = _account_client("ec2", DR_ACCOUNT, OTHER_REGION)
    assert dr_source_region.describe_snapshots(SnapshotIds=[source])["Snapshots"] == []  # no access: left out
    with pytest.raises(ClientError) as error:
        dr_source_region.describe_snapshots(SnapshotIds=["snap-0123456789abcdef0"])
    assert _code(error) == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as error:
        dr_destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    assert _code(error) == "InvalidSnapshot.NotFound"
    ec2.modify_snapshot_attribute(
        SnapshotId=source, Attribute="createVolumePermission", OperationType="add", UserIds=[DR_ACCOUNT]
    )
    [shared] = dr_source_region.describe_snapshots(SnapshotIds=[source])["Snapshots"]
    assert shared["OwnerId"] == faithful.account_id
    assert [
        s["SnapshotId"] for s in dr_source_region.describe_snapshots(OwnerIds=[faithful.account_id])["Snapshots"]
    ] == [source]
    assert [
        s["SnapshotId"] for s in dr_source_region.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]
    ] == [source]
    assert dr_source_region.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    copied = dr_destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    assert _snapshot(dr_destination, copied)["OwnerId"] == DR_ACCOUNT
    assert [s["SnapshotId"] for s in dr_destination.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [copied]
    assert boto3.client("ec2", region_name=OTHER_REGION).describe_snapshots(OwnerIds=["self"])["Snapshots"] == []


def test_a_snapshot_under_the_aws_managed_key_cannot_be_shared(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E29: ModifySnapshotAttribute refuses a snapshot encrypted with `alias/aws/ebs` (code observed, assumed) and a
    public share of an encrypted one; a customer managed key can be shared."""
    source = _completed_snapshot(ec2, clock)
    managed = faithful.encrypt_with_aws_managed_key(REGION, source)
    assert _snapshot(ec2, source)["KmsKeyId"] == managed
    with pytest.raises(ClientError) as error:
        ec2.modify_snapshot_attribute(
            SnapshotId=source, Attribute="createVolumePermission", OperationType="add", UserIds=[DR_ACCOUNT]
        )
    assert _code(error) == DEFAULT_MANAGED_KEY_SHARE_ERROR == "OperationNotPermitted"
    by_default = ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]  # stays aws/ebs
    clock.advance(seconds=DEFAULT_SNAPSHOT_COPY_TIME.total_seconds())
    with pytest.raises(ClientError):
        ec2.modify_snapshot_attribute(
            SnapshotId=by_default, Attribute="createVolumePermission", OperationType="add", UserIds=[DR_ACCOUNT]
        )
    key = _key_arn(REGION)
    reencrypted = ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId=key)
    ec2.modify_snapshot_attribute(
        SnapshotId=reencrypted["SnapshotId"],
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=[DR_ACCOUNT],
    )
    with pytest.raises(ClientError):
        ec2.modify_snapshot_attribute(
            SnapshotId=reencrypted["SnapshotId"],
            Attribute="createVolumePermission",
            OperationType="add",
            GroupNames=["all"],
        )


def test_a_denied_kms_key_fails_the_copy(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E30: by default the copy is made and is in error (StateMessage; a CopyImage AMI `failed`); as a setting, the
    request fails with CustomerKeyHasBeenRevoked. The source's key counts too."""
    source = _completed_snapshot(ec2, clock)
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    key = _key_arn(OTHER_REGION)
    faithful.deny_kms_key(key)
    denied = destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId=key)
    snapshot = _snapshot(destination, denied["SnapshotId"])
    assert (snapshot["State"], snapshot["StateMessage"]) == ("error", DEFAULT_KMS_DENIED_MESSAGE)
    image = destination.copy_image(
        SourceImageId=_image(ec2, _instance(ec2), "kms-source"),
        SourceRegion=REGION,
        Name="kms",
        Encrypted=True,
        KmsKeyId=key,
    )["ImageId"]
    [failed] = destination.describe_images(ImageIds=[image])["Images"]
    assert (failed["State"], failed["StateReason"]["Code"]) == ("failed", "CustomerKeyHasBeenRevoked")
    faithful.kms_denial_fails_request = True
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId=key)
    assert _code(error) == "CustomerKeyHasBeenRevoked"
    source_key = _key_arn(REGION)
    faithful.deny_kms_key(key, denied=False)
    encrypted_source = _snapshot(
        ec2,
        ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId=source_key)[
            "SnapshotId"
        ],
    )
    clock.advance(seconds=DEFAULT_SNAPSHOT_COPY_TIME.total_seconds())
    faithful.deny_kms_key(source_key)
    with pytest.raises(ClientError) as error:
        destination.copy_snapshot(SourceSnapshotId=encrypted_source["SnapshotId"], SourceRegion=REGION, KmsKeyId=key)
    assert _code(error) == "CustomerKeyHasBeenRevoked"


def test_copy_image_honours_the_client_token(faithful: MotoFidelity, ec2: Any) -> None:
    """E31: the same ClientToken answers the same ImageId and makes nothing new; other parameters with it fail."""
    source = _image(ec2, _instance(ec2), "token-source")
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    first = destination.copy_image(SourceImageId=source, SourceRegion=REGION, Name="dr-copy", ClientToken="t-1")[
        "ImageId"
    ]
    again = destination.copy_image(SourceImageId=source, SourceRegion=REGION, Name="dr-copy", ClientToken="t-1")[
        "ImageId"
    ]
    assert first == again
    assert [i["ImageId"] for i in destination.describe_images(Owners=["self"])["Images"]] == [first]
    with pytest.raises(ClientError) as error:
        destination.copy_image(SourceImageId=source, SourceRegion=REGION, Name="other", ClientToken="t-1")
    assert _code(error) == "IdempotentParameterMismatch"
    other = destination.copy_image(SourceImageId=source, SourceRegion=REGION, Name="dr-2", ClientToken="t-2")["ImageId"]
    assert other != first


def test_a_copied_ami_and_its_snapshot_are_pending_until_copied(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    """E32: the AMI is pending and its snapshot pending for `image_copy_time`, then available/completed; encrypted
    with the KmsKeyId asked; `set_image_state` still pins the AMI."""
    source = _image(ec2, _instance(ec2), "ami-copy-source")
    destination = boto3.client("ec2", region_name=OTHER_REGION)
    key = _key_arn(OTHER_REGION)
    copied = destination.copy_image(
        SourceImageId=source, SourceRegion=REGION, Name="dr-copy", Encrypted=True, KmsKeyId=key
    )["ImageId"]
    snapshot_id = faithful.backend(OTHER_REGION).amis[copied].ebs_snapshot.id
    assert destination.describe_images(ImageIds=[copied])["Images"][0]["State"] == "pending"
    snapshot = _snapshot(destination, snapshot_id)
    assert (snapshot["State"], snapshot["Progress"], snapshot["Encrypted"], snapshot["KmsKeyId"]) == (
        "pending",
        "0%",
        True,
        key,
    )
    clock.advance(seconds=DEFAULT_IMAGE_COPY_TIME.total_seconds())
    assert destination.describe_images(ImageIds=[copied])["Images"][0]["State"] == "available"
    assert _snapshot(destination, snapshot_id)["State"] == "completed"
    pinned = destination.copy_image(SourceImageId=source, SourceRegion=REGION, Name="dr-pinned")["ImageId"]
    faithful.set_image_state(OTHER_REGION, pinned, "failed")
    assert destination.describe_images(ImageIds=[pinned])["Images"][0]["State"] == "failed"
    assert [
        i["ImageId"] for i in destination.describe_images(Filters=[{"Name": "state", "Values": ["pending"]}])["Images"]
    ] == []


# -- E33-E36: StartInstances, StopInstances -----------------------------------------------------------------


def _state(ec2: Any, instance_id: str) -> dict[str, Any]:
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservation["Instances"][0])


def _change(answer: list[dict[str, Any]], instance_id: str) -> tuple[str, str]:
    [change] = [item for item in answer if item["InstanceId"] == instance_id]
    return change["PreviousState"]["Name"], change["CurrentState"]["Name"]


def test_stop_and_start_pass_through_stopping_and_pending_on_the_fidelity_clock(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    faithful.instance_stop_time = timedelta(minutes=2)
    faithful.instance_start_time = timedelta(minutes=1)
    instance_id = _instance(ec2)
    stopping = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"]
    assert _change(stopping, instance_id) == ("running", "stopping")
    assert _state(ec2, instance_id)["State"] == {"Code": 64, "Name": "stopping"}
    clock.advance(seconds=119)
    assert _state(ec2, instance_id)["State"]["Name"] == "stopping"
    clock.advance(seconds=1)
    assert _state(ec2, instance_id)["State"] == {"Code": 80, "Name": "stopped"}
    starting = ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"]
    assert _change(starting, instance_id) == ("stopped", "pending")
    assert _state(ec2, instance_id)["State"] == {"Code": 0, "Name": "pending"}
    clock.advance(minutes=1)
    assert _state(ec2, instance_id)["State"] == {"Code": 16, "Name": "running"}
    ec2.stop_instances(InstanceIds=[instance_id])
    faithful.set_instance_state(REGION, instance_id, "stopping")  # a pinned state holds
    clock.advance(hours=1)
    assert _state(ec2, instance_id)["State"]["Name"] == "stopping"


@pytest.mark.parametrize("action", ["start_instances", "stop_instances"])
@pytest.mark.parametrize(
    ("bad_id", "code"),
    [("i-123", "InvalidInstanceID.Malformed"), ("i-0123456789abcdef0", "InvalidInstanceID.NotFound")],
)
def test_a_bad_id_fails_the_whole_batch(faithful: MotoFidelity, ec2: Any, action: str, bad_id: str, code: str) -> None:
    instance_id = _instance(ec2)
    if action == "start_instances":
        faithful.set_instance_state(REGION, instance_id, "stopped")
    before = _state(ec2, instance_id)["State"]
    with pytest.raises(ClientError) as error:
        getattr(ec2, action)(InstanceIds=[instance_id, bad_id])
    assert _code(error) == code
    assert _state(ec2, instance_id)["State"] == before


@pytest.mark.parametrize("action", ["start_instances", "stop_instances"])
@pytest.mark.parametrize("gone", ["terminated", "shutting-down"])
def test_a_terminated_instance_in_a_batch_is_incorrect_state_and_nothing_acts(
    faithful: MotoFidelity, ec2: Any, action: str, gone: str
) -> None:
    other, dead = _instance(ec2), _instance(ec2)
    if action == "start_instances":
        faithful.set_instance_state(REGION, other, "stopped")
    before = _state(ec2, other)["State"]
    if gone == "terminated":
        ec2.terminate_instances(InstanceIds=[dead])
    else:
        faithful.set_instance_state(REGION, dead, gone)
    with pytest.raises(ClientError) as error:
        getattr(ec2, action)(InstanceIds=[other, dead])
    assert _code(error) == "IncorrectInstanceState"
    assert _state(ec2, other)["State"] == before
    assert _state(ec2, dead)["State"]["Name"] == gone


@pytest.mark.parametrize(
    ("action", "key", "state"),
    [
        ("start_instances", "StartingInstances", "running"),
        ("start_instances", "StartingInstances", "pending"),
        ("stop_instances", "StoppingInstances", "stopped"),
        ("stop_instances", "StoppingInstances", "stopping"),
    ],
)
def test_an_instance_already_on_its_way_is_answered_as_it_is(
    faithful: MotoFidelity, ec2: Any, action: str, key: str, state: str
) -> None:
    instance_id = _instance(ec2)
    faithful.set_instance_state(REGION, instance_id, state)
    answer = getattr(ec2, action)(InstanceIds=[instance_id])[key]
    assert _change(answer, instance_id) == (state, state)
    assert _state(ec2, instance_id)["State"]["Name"] == state


def test_a_start_with_a_denied_kms_key_goes_pending_then_stopped_with_the_launch_error(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    encrypted = str(
        ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=1,
            MaxCount=1,
            BlockDeviceMappings=[
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": key}}
            ],
        )["Instances"][0]["InstanceId"]
    )
    plain = _instance(ec2)
    ec2.stop_instances(InstanceIds=[encrypted, plain])
    faithful.deny_kms_key(key)
    faithful.instance_start_time = timedelta(minutes=1)
    starting = ec2.start_instances(InstanceIds=[encrypted, plain])["StartingInstances"]
    assert _change(starting, encrypted) == ("stopped", "pending")
    assert _state(ec2, encrypted)["State"]["Name"] == "pending"
    clock.advance(minutes=1)
    fell_back = _state(ec2, encrypted)
    assert fell_back["State"] == {"Code": 80, "Name": "stopped"}
    assert fell_back["StateReason"] == {
        "Code": "Client.InternalError",
        "Message": "Client.InternalError: Client error on launch",
    }
    assert _state(ec2, plain)["State"]["Name"] == "running"
    faithful.deny_kms_key(key, denied=False)
    ec2.start_instances(InstanceIds=[encrypted])
    clock.advance(minutes=1)
    assert _state(ec2, encrypted)["State"]["Name"] == "running"


def test_hibernate_needs_an_instance_enabled_for_hibernation(faithful: MotoFidelity, ec2: Any) -> None:
    plain = _instance(ec2)
    enabled = str(
        ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, HibernationOptions={"Configured": True})[
            "Instances"
        ][0]["InstanceId"]
    )
    with pytest.raises(ClientError) as error:
        ec2.stop_instances(InstanceIds=[enabled, plain], Hibernate=True)
    assert _code(error) == "UnsupportedHibernationConfiguration"
    assert _state(ec2, enabled)["State"]["Name"] == "running"
    answer = ec2.stop_instances(InstanceIds=[enabled], Hibernate=True)["StoppingInstances"]
    assert _change(answer, enabled) == ("running", "stopping")
    assert _state(ec2, enabled)["State"]["Name"] == "stopped"


def test_a_one_time_spot_instance_refuses_the_whole_stop_request(faithful: MotoFidelity, ec2: Any) -> None:
    on_demand = _instance(ec2)
    spot, persistent = (
        str(i["InstanceId"])
        for i in ec2.run_instances(
            ImageId="ami-12345678", MinCount=2, MaxCount=2, InstanceMarketOptions={"MarketType": "spot"}
        )["Instances"]
    )
    faithful.persistent_spot(persistent)
    with pytest.raises(ClientError) as error:
        ec2.stop_instances(InstanceIds=[on_demand, spot])
    assert _code(error) == "UnsupportedOperation"
    assert "one-time Spot Instance request" in str(error.value)
    assert _state(ec2, on_demand)["State"]["Name"] == "running"
    ec2.stop_instances(InstanceIds=[on_demand, persistent])
    assert _state(ec2, persistent)["State"]["Name"] == "stopped"


# -- E40-E49: SSM Run Command ----------------------------------------------------------------------------------

SHELL = "AWS-RunShellScript"


@pytest.fixture
def ssm(moto_env: None) -> Any:
    return boto3.client("ssm", region_name=REGION)


def _instances(ec2: Any, count: int, **tags: str) -> list[str]:
    spec: dict[str, Any] = {"ImageId": "ami-12345678", "MinCount": count, "MaxCount": count}
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return [str(i["InstanceId"]) for i in ec2.run_instances(**spec)["Instances"]]


def _send(ssm: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("DocumentName", SHELL)
    kwargs.setdefault("Parameters", {"commands": ["/opt/backup.sh"]})
    kwargs.setdefault("TimeoutSeconds", 600)
    return dict(ssm.send_command(**kwargs)["Command"])


def _command(ssm: Any, command_id: str) -> dict[str, Any]:
    return dict(ssm.list_commands(CommandId=command_id)["Commands"][0])


def _invocation(ssm: Any, command_id: str, instance_id: str) -> dict[str, Any]:
    return dict(ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id))


def _status(ssm: Any, command_id: str, instance_id: str) -> tuple[str, str, int]:
    answer = _invocation(ssm, command_id, instance_id)
    return answer["Status"], answer["StatusDetails"], answer["ResponseCode"]


def test_e40_instance_ids_target_exactly_the_ids_given(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    a, b, c = _instances(ec2, 3)
    command = _send(ssm, InstanceIds=[a, b, a])
    listed = _command(ssm, command["CommandId"])
    assert listed["InstanceIds"] == [a, b]
    assert listed["TargetCount"] == 2
    with pytest.raises(ClientError) as error:
        _invocation(ssm, command["CommandId"], c)
    assert _code(error) == "InvocationDoesNotExist"


def test_e40_key_instance_ids_target(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    a, _ = _instances(ec2, 2)
    command = _send(ssm, Targets=[{"Key": "InstanceIds", "Values": [a]}])
    assert _command(ssm, command["CommandId"])["InstanceIds"] == [a]


def test_e40_tag_targets_and_keys_among_managed_valid_nodes(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    both = _instances(ec2, 2, Backup="nightly", Tier="db")
    only_backup = _instances(ec2, 1, Backup="nightly")
    weekly = _instances(ec2, 1, Backup="weekly", Tier="db")
    gone = _instances(ec2, 1, Backup="nightly", Tier="db")[0]
    unmanaged = _instances(ec2, 1, Backup="nightly", Tier="db")[0]
    ec2.terminate_instances(InstanceIds=[gone])
    faithful.unmanage(unmanaged)

    by_tag = _send(ssm, Targets=[{"Key": "tag:Backup", "Values": ["nightly", "weekly"]}])
    assert set(_command(ssm, by_tag["CommandId"])["InstanceIds"]) == {*both, *only_backup, *weekly}
    anded = _send(ssm, Targets=[{"Key": "tag:Backup", "Values": ["nightly"]}, {"Key": "tag-key", "Values": ["Tier"]}])
    listed = _command(ssm, anded["CommandId"])
    assert set(listed["InstanceIds"]) == set(both)
    assert listed["TargetCount"] == 2


def test_e41_unknown_terminated_and_unmanaged_ids_refuse_the_whole_request(
    faithful: MotoFidelity, ec2: Any, ssm: Any
) -> None:
    good, gone, unmanaged = _instances(ec2, 3)
    ec2.terminate_instances(InstanceIds=[gone])
    faithful.unmanage(unmanaged)
    for bad in ("i-0123456789abcdef0", gone, unmanaged):
        with pytest.raises(ClientError) as error:
            _send(ssm, InstanceIds=[good, bad])
        assert _code(error) == "InvalidInstanceId"
        assert error.value.response["Error"]["Message"] == (
            f"Instances [[{bad}]] not in a valid state for account {MOTO_ACCOUNT}"
        )
    with pytest.raises(ClientError) as error:
        _send(ssm, Targets=[{"Key": "InstanceIds", "Values": [unmanaged]}])
    assert _code(error) == "InvalidInstanceId"
    assert ssm.list_commands()["Commands"] == []
    faithful.manage(unmanaged)
    assert _command(ssm, _send(ssm, InstanceIds=[unmanaged])["CommandId"])["TargetCount"] == 1


def test_e41_a_stopped_managed_node_is_a_valid_target(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    stopped = _instances(ec2, 1)[0]
    ec2.stop_instances(InstanceIds=[stopped])
    assert _command(ssm, _send(ssm, InstanceIds=[stopped])["CommandId"])["TargetCount"] == 1


def test_e43_default_invocation_succeeds_at_once_on_the_fidelity_clock(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    a = _instances(ec2, 1)[0]
    command = _send(ssm, InstanceIds=[a], Parameters={"commands": ["true"], "executionTimeout": ["1200"]})
    assert command["RequestedDateTime"] == clock()
    assert command["ExpiresAfter"] == clock() + timedelta(seconds=600 + 1200)
    answer = _invocation(ssm, command["CommandId"], a)
    assert (answer["Status"], answer["StatusDetails"], answer["ResponseCode"]) == ("Success", "Success", 0)
    assert answer["ExecutionStartDateTime"] == clock().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert answer["ExecutionElapsedTime"] == "PT0.000S"


def test_e43_pending_in_progress_then_failed_with_the_exit_code(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    a = _instances(ec2, 1)[0]
    faithful.ssm_delivery_time = timedelta(seconds=10)
    faithful.ssm_outcome(a, "Failed", exit_code=3, after=timedelta(seconds=50), stdout="out", stderr="err")
    command_id = _send(ssm, InstanceIds=[a])["CommandId"]
    answer = _invocation(ssm, command_id, a)
    assert (answer["Status"], answer["ResponseCode"], answer["ExecutionStartDateTime"]) == ("Pending", -1, "")
    clock.advance(seconds=10)
    answer = _invocation(ssm, command_id, a)
    assert (answer["Status"], answer["ResponseCode"], answer["ExecutionEndDateTime"]) == ("InProgress", -1, "")
    assert answer["ExecutionStartDateTime"] != ""
    clock.advance(seconds=49)
    assert _status(ssm, command_id, a)[0] == "InProgress"
    clock.advance(seconds=1)
    answer = _invocation(ssm, command_id, a)
    assert (answer["Status"], answer["StatusDetails"], answer["ResponseCode"]) == ("Failed", "Failed", 3)
    assert (answer["StandardOutputContent"], answer["StandardErrorContent"]) == ("out", "err")
    assert answer["ExecutionElapsedTime"] == "PT50.000S"


def test_e43_execution_timeout_at_the_documents_execution_timeout(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    a = _instances(ec2, 1)[0]
    faithful.ssm_outcome(a, "ExecutionTimedOut")
    command_id = _send(ssm, InstanceIds=[a], Parameters={"commands": ["sleep 9999"], "executionTimeout": ["300"]})[
        "CommandId"
    ]
    clock.advance(seconds=299)
    assert _status(ssm, command_id, a)[:2] == ("InProgress", "InProgress")
    clock.advance(seconds=1)
    assert _status(ssm, command_id, a) == ("TimedOut", "ExecutionTimedOut", faithful.ssm_execution_timeout_code)


def test_e43_delivery_timeout_at_the_total_timeout(faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock) -> None:
    a, stopped, lost = _instances(ec2, 3)
    faithful.ssm_outcome(a, "DeliveryTimedOut")
    ec2.stop_instances(InstanceIds=[stopped])
    faithful.lose_agent(lost)
    command_id = _send(ssm, InstanceIds=[a, stopped, lost], Parameters={"commands": ["x"], "executionTimeout": ["60"]})[
        "CommandId"
    ]
    clock.advance(seconds=659)
    assert _status(ssm, command_id, a)[:2] == ("InProgress", "InProgress")
    assert _status(ssm, command_id, stopped)[:2] == ("Delayed", "Delayed")
    assert _status(ssm, command_id, lost)[:2] == ("InProgress", "InProgress")
    clock.advance(seconds=1)
    for instance_id in (a, stopped, lost):
        assert _status(ssm, command_id, instance_id) == ("TimedOut", "DeliveryTimedOut", -1)


def test_e43_undeliverable(faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock) -> None:
    a = _instances(ec2, 1)[0]
    faithful.ssm_outcome(a, "Undeliverable", after=timedelta(minutes=2))
    command_id = _send(ssm, InstanceIds=[a])["CommandId"]
    assert _status(ssm, command_id, a)[0] == "Pending"
    clock.advance(minutes=2)
    assert _status(ssm, command_id, a) == (faithful.ssm_undeliverable_status, "Undeliverable", -1)


def test_e43_outcome_hook_validates_and_clears(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    a = _instances(ec2, 1)[0]
    with pytest.raises(ValueError):
        faithful.ssm_outcome(a, "Failed")
    with pytest.raises(ValueError):
        faithful.ssm_outcome(a, "Exploded")
    faithful.ssm_outcome(a, "Failed", exit_code=1)
    faithful.ssm_outcome(a, None)
    command_id = _send(ssm, InstanceIds=[a])["CommandId"]
    assert _status(ssm, command_id, a)[0] == "Success"


def test_e44_send_command_answers_pending_with_zero_counts(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    ids = _instances(ec2, 2)
    command = _send(ssm, InstanceIds=ids)
    assert (command["Status"], command["StatusDetails"]) == ("Pending", "Pending")
    assert [command[k] for k in ("TargetCount", "CompletedCount", "ErrorCount", "DeliveryTimedOutCount")] == [0] * 4
    listed = _command(ssm, command["CommandId"])
    assert (listed["Status"], listed["TargetCount"], listed["CompletedCount"]) == ("Success", 2, 2)


def test_e44_command_status_and_counts_follow_the_invocations(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    a, b, c = _instances(ec2, 3)
    faithful.ssm_outcome(b, "Failed", exit_code=1, after=timedelta(seconds=30))
    command_id = _send(ssm, InstanceIds=[a, b, c])["CommandId"]
    listed = _command(ssm, command_id)
    assert (listed["Status"], listed["CompletedCount"], listed["ErrorCount"]) == ("InProgress", 2, 0)
    clock.advance(seconds=30)
    listed = _command(ssm, command_id)
    assert (listed["Status"], listed["StatusDetails"], listed["CompletedCount"], listed["ErrorCount"]) == (
        "Failed",
        "Failed",
        3,
        1,
    )
    tolerant = _send(ssm, InstanceIds=[a, b, c], MaxErrors="1")["CommandId"]
    clock.advance(seconds=30)
    listed = _command(ssm, tolerant)
    assert (listed["Status"], listed["StatusDetails"]) == (faithful.ssm_incomplete_status, "Incomplete")


def test_e44_undeliverable_and_delivery_timeouts(faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock) -> None:
    ids = _instances(ec2, 5)
    for instance_id in ids[:4]:
        faithful.ssm_outcome(instance_id, "Undeliverable")
    mostly = _send(ssm, InstanceIds=ids)["CommandId"]
    assert _command(ssm, mostly)["Status"] == "Success"
    only = _send(ssm, InstanceIds=ids[:4])["CommandId"]
    assert _command(ssm, only)["Status"] == "Failed"
    faithful.ssm_outcome(ids[4], "DeliveryTimedOut")
    late = _send(ssm, InstanceIds=[ids[4]], Parameters={"commands": ["x"], "executionTimeout": ["30"]})["CommandId"]
    clock.advance(seconds=630)
    listed = _command(ssm, late)
    assert (listed["Status"], listed["StatusDetails"], listed["DeliveryTimedOutCount"], listed["ErrorCount"]) == (
        "TimedOut",
        "DeliveryTimedOut",
        1,
        0,
    )


def test_e44_no_instances_in_tag(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    _instances(ec2, 1, Backup="weekly")
    command_id = _send(ssm, Targets=[{"Key": "tag:Backup", "Values": ["nightly"]}])["CommandId"]
    listed = _command(ssm, command_id)
    assert (listed["Status"], listed["StatusDetails"], listed["TargetCount"]) == (
        faithful.ssm_no_instances_status,
        "NoInstancesInTag",
        0,
    )


def test_e46_get_command_invocation_plugin_and_errors(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    a, b = _instances(ec2, 2)
    faithful.ssm_outcome(a, "Success", stdout="x" * 30000)
    shell = _send(ssm, InstanceIds=[a])["CommandId"]
    answer = _invocation(ssm, shell, a)
    assert answer["PluginName"] == "aws:runShellScript"
    assert len(answer["StandardOutputContent"]) == 24000
    power = _send(ssm, InstanceIds=[a], DocumentName="AWS-RunPowerShellScript")["CommandId"]
    assert _invocation(ssm, power, a)["PluginName"] == "aws:runPowerShellScript"
    with pytest.raises(ClientError) as error:
        ssm.get_command_invocation(CommandId=power, InstanceId=a, PluginName="aws:runShellScript")
    assert _code(error) == "InvalidPluginName"
    with pytest.raises(ClientError) as error:
        _invocation(ssm, shell, b)
    assert _code(error) == "InvocationDoesNotExist"
    with pytest.raises(ClientError) as error:
        _invocation(ssm, "00000000-0000-0000-0000-000000000000", a)
    assert _code(error) == "InvalidCommandId"


def test_e47_list_command_invocations_filters_details_and_pages(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    ids = _instances(ec2, 55, Backup="nightly")
    faithful.ssm_outcome(ids[7], "Failed", exit_code=42, stdout="disk full")
    command_id = _send(ssm, Targets=[{"Key": "tag:Backup", "Values": ["nightly"]}])["CommandId"]
    other = _send(ssm, InstanceIds=[ids[0]])["CommandId"]

    first = ssm.list_command_invocations(CommandId=command_id, MaxResults=50)
    assert len(first["CommandInvocations"]) == 50
    rest = ssm.list_command_invocations(CommandId=command_id, MaxResults=50, NextToken=first["NextToken"])
    assert "NextToken" not in rest
    rows = first["CommandInvocations"] + rest["CommandInvocations"]
    assert sorted(row["InstanceId"] for row in rows) == sorted(ids)
    assert all(row["CommandPlugins"] == [] for row in rows)
    paged = list(ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id))
    assert sum(len(page["CommandInvocations"]) for page in paged) == 55

    detailed = ssm.list_command_invocations(CommandId=command_id, InstanceId=ids[7], Details=True)
    (row,) = detailed["CommandInvocations"]
    (plugin,) = row["CommandPlugins"]
    assert (row["Status"], plugin["Name"], plugin["ResponseCode"], plugin["Output"]) == (
        "Failed",
        "aws:runShellScript",
        42,
        "disk full",
    )
    failed = ssm.list_command_invocations(Filters=[{"key": "Status", "value": "Failed"}])["CommandInvocations"]
    assert [(r["CommandId"], r["InstanceId"]) for r in failed] == [(command_id, ids[7])]
    by_instance = ssm.list_command_invocations(InstanceId=ids[0])["CommandInvocations"]
    assert {r["CommandId"] for r in by_instance} == {command_id, other}
    with pytest.raises(ClientError) as error:
        ssm.list_command_invocations(CommandId="00000000-0000-0000-0000-000000000000")
    assert _code(error) == "InvalidCommandId"


def test_e49_describe_instance_information_lists_managed_running_nodes(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    online, lost, unmanaged, stopped, gone = _instances(ec2, 5)
    faithful.unmanage(unmanaged)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[gone])
    faithful.lose_agent(lost)
    lost_at = clock()
    clock.advance(minutes=5)
    nodes = {n["InstanceId"]: n for n in ssm.describe_instance_information()["InstanceInformationList"]}
    assert set(nodes) == {online, lost}
    assert (nodes[online]["PingStatus"], nodes[online]["LastPingDateTime"]) == ("Online", clock())
    assert (nodes[lost]["PingStatus"], nodes[lost]["LastPingDateTime"]) == ("ConnectionLost", lost_at)
    assert nodes[online]["ResourceType"] == "EC2Instance"
    asked = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [online, unmanaged]}])
    assert [n["InstanceId"] for n in asked["InstanceInformationList"]] == [online]
    by_ping = ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}])
    assert [n["InstanceId"] for n in by_ping["InstanceInformationList"]] == [lost]
    with pytest.raises(ClientError) as error:
        ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}])
    assert _code(error) == "InvalidInstanceId"
    faithful.restore_agent(lost)
    assert (
        len(
            ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Online"]}])[
                "InstanceInformationList"
            ]
        )
        == 2
    )


def test_e49_describe_instance_information_pages_ten_by_default(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    ids = _instances(ec2, 23)
    first = ssm.describe_instance_information()
    assert len(first["InstanceInformationList"]) == 10
    pages = list(ssm.get_paginator("describe_instance_information").paginate())
    assert [len(p["InstanceInformationList"]) for p in pages] == [10, 10, 3]
    assert sorted(n["InstanceId"] for p in pages for n in p["InstanceInformationList"]) == sorted(ids)


def test_forget_clears_the_ssm_registry_and_outcomes(faithful: MotoFidelity, ec2: Any) -> None:
    a = _instances(ec2, 1)[0]
    faithful.unmanage(a)
    faithful.ssm_outcome(a, "Failed", exit_code=1)
    faithful.forget()
    assert faithful.ssm_node(a).managed
    assert faithful.ssm_outcomes == {}


def test_the_http_server_answers_run_command_as_patched() -> None:
    """E41, E43, E44, E47, E49 through `scripts.local_aws.local_aws()`, as the deployed handlers reach them."""
    from scripts.local_aws import local_aws

    clock = Clock()
    with local_aws(REGION) as aws, aws.fidelity.simulated_time(clock):
        ec2, ssm = aws.client("ec2"), aws.client("ssm")
        a, b = _instances(ec2, 2)
        aws.fidelity.unmanage(b)
        with pytest.raises(ClientError) as error:
            _send(ssm, InstanceIds=[a, b])
        assert _code(error) == "InvalidInstanceId"
        aws.fidelity.ssm_outcome(a, "Failed", exit_code=2, after=timedelta(seconds=5))
        command = _send(ssm, InstanceIds=[a])
        assert command["Status"] == "Pending"
        clock.advance(seconds=5)
        [row] = ssm.list_command_invocations(CommandId=command["CommandId"], Details=True)["CommandInvocations"]
        assert (row["Status"], row["CommandPlugins"][0]["ResponseCode"]) == ("Failed", 2)
        assert _command(ssm, command["CommandId"])["Status"] == "Failed"
        nodes = ssm.describe_instance_information()["InstanceInformationList"]
        assert [n["InstanceId"] for n in nodes] == [a]


def test_e48_list_commands_filters_and_pages(faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock) -> None:
    a, b = _instances(ec2, 2)
    faithful.ssm_outcome(b, "Failed", exit_code=1)
    early = _send(ssm, InstanceIds=[a], Comment="slot 1")["CommandId"]
    clock.advance(hours=1)
    failed = _send(ssm, InstanceIds=[b], Comment="slot 2")["CommandId"]
    faithful.ssm_outcome(a, "Success", after=timedelta(minutes=5))
    running = _send(ssm, InstanceIds=[a], DocumentName="AWS-RunPowerShellScript")["CommandId"]

    def ids(**kwargs: Any) -> list[str]:
        return [c["CommandId"] for c in ssm.list_commands(**kwargs)["Commands"]]

    assert ids(Filters=[{"key": "Status", "value": "Failed"}]) == [failed]
    assert ids(Filters=[{"key": "Status", "value": "Success"}]) == [early]
    assert ids(Filters=[{"key": "ExecutionStage", "value": "Executing"}]) == [running]
    assert ids(Filters=[{"key": "ExecutionStage", "value": "Complete"}]) == [early, failed]
    after = clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(Filters=[{"key": "InvokedAfter", "value": after}, {"key": "DocumentName", "value": SHELL}]) == [failed]
    assert ids(Filters=[{"key": "InvokedBefore", "value": after}]) == [early]
    first = ssm.list_commands(MaxResults=2)
    assert len(first["Commands"]) == 2
    rest = ssm.list_commands(MaxResults=2, NextToken=first["NextToken"])
    assert [c["CommandId"] for c in rest["Commands"]] == [running] and "NextToken" not in rest
    with pytest.raises(ClientError) as error:
        ssm.list_commands(Filters=[{"key": "ExecutionStage", "value": "Sleeping"}])
    assert _code(error) == "InvalidFilterKey"


@pytest.mark.parametrize(
    "request_args",
    [
        {"InstanceIds": [f"i-{n:017x}" for n in range(51)]},
        {"Targets": [{"Key": f"tag:K{n}", "Values": ["v"]} for n in range(6)]},
        {"Targets": [{"Key": "tag:K", "Values": [f"v{n}" for n in range(51)]}]},
        {"Targets": [{"Key": "tag:K", "Values": ["v"]}], "Comment": "c" * 101},
        {"Targets": [{"Key": "tag:K", "Values": ["v"]}], "MaxConcurrency": "abc"},
        {"Targets": [{"Key": "tag:K", "Values": ["v"]}], "MaxErrors": "101%"},
    ],
)
def test_e42_send_command_request_limits(faithful: MotoFidelity, ssm: Any, request_args: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as error:
        _send(ssm, **request_args)
    assert _code(error) == "ValidationException"
    assert ssm.list_commands()["Commands"] == []


def test_e42_fifty_ids_and_the_edge_patterns_pass(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    ids = _instances(ec2, 50)
    command_id = _send(ssm, InstanceIds=ids, MaxConcurrency="100%", MaxErrors="0", Comment="c" * 100)["CommandId"]
    assert _command(ssm, command_id)["TargetCount"] == 50


# -- E45: MaxConcurrency batches and MaxErrors --------------------------------------------------------------------


def _started(ssm: Any, command_id: str, instance_id: str) -> str:
    return str(_invocation(ssm, command_id, instance_id)["ExecutionStartDateTime"])


def _at(clock: Clock, seconds: int = 0) -> str:
    return (clock() + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_e45_max_errors_zero_terminates_the_invocations_not_sent(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    first, *rest = _instances(ec2, 4)
    faithful.ssm_outcome(first, "Failed", exit_code=1)
    command_id = _send(ssm, InstanceIds=[first, *rest])["CommandId"]
    assert _status(ssm, command_id, first) == ("Failed", "Failed", 1)
    for instance_id in rest:
        answer = _invocation(ssm, command_id, instance_id)
        assert (answer["Status"], answer["StatusDetails"], answer["ResponseCode"]) == (
            faithful.ssm_terminated_status,
            "Terminated",
            -1,
        )
        assert answer["ExecutionStartDateTime"] == ""
    listed = _command(ssm, command_id)
    assert (listed["Status"], listed["CompletedCount"], listed["ErrorCount"]) == ("Failed", 4, 1)
    terminated = ssm.list_command_invocations(CommandId=command_id, Filters=[{"key": "Status", "value": "Terminated"}])
    assert sorted(r["InstanceId"] for r in terminated["CommandInvocations"]) == sorted(rest)


def test_e45_the_ramp_sends_1_then_2_then_4_once_acknowledged(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    ids = _instances(ec2, 7)
    faithful.ssm_delivery_time = timedelta(seconds=5)
    faithful.ssm_run_time = timedelta(seconds=100)
    command_id = _send(ssm, InstanceIds=ids)["CommandId"]
    clock.advance(seconds=5)
    assert [_status(ssm, command_id, i)[0] for i in ids] == ["InProgress"] + ["Pending"] * 6
    clock.advance(seconds=20)
    starts = [_started(ssm, command_id, i) for i in ids]
    assert starts == [_at(clock, -20)] + [_at(clock, -15)] * 2 + [_at(clock, -10)] * 4


def test_e45_max_concurrency_one_runs_one_after_the_other(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    ids = _instances(ec2, 3)
    for instance_id in ids:
        faithful.ssm_outcome(instance_id, "Success", after=timedelta(seconds=10))
    command_id = _send(ssm, InstanceIds=ids, MaxConcurrency="1")["CommandId"]
    clock.advance(seconds=5)
    assert [_status(ssm, command_id, i)[0] for i in ids] == ["InProgress", "Pending", "Pending"]
    clock.advance(seconds=25)
    assert [_started(ssm, command_id, i) for i in ids] == [_at(clock, -30), _at(clock, -20), _at(clock, -10)]
    assert _command(ssm, command_id)["Status"] == "Success"


def test_e45_ten_percent_of_fifty_stops_at_the_sixth_error(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    ids = _instances(ec2, 50)
    for instance_id in ids[:5]:
        faithful.ssm_outcome(instance_id, "Failed", exit_code=2)
    five = _send(ssm, InstanceIds=ids, MaxConcurrency="1", MaxErrors="10%")["CommandId"]
    assert [_status(ssm, five, i)[1] for i in ids[5:]] == ["Success"] * 45
    assert _command(ssm, five)["Status"] == faithful.ssm_incomplete_status
    faithful.ssm_outcome(ids[5], "ExecutionTimedOut")  # counts against MaxErrors too
    parameters = {"commands": ["x"], "executionTimeout": ["60"]}
    six = _send(ssm, InstanceIds=ids, MaxConcurrency="1", MaxErrors="10%", Parameters=parameters)["CommandId"]
    clock.advance(seconds=59)
    assert {_status(ssm, six, i)[1] for i in ids[6:]} == {"Pending"}  # waiting for the sixth to end
    clock.advance(seconds=1)
    assert [_status(ssm, six, i)[1] for i in ids[6:]] == ["Terminated"] * 44
    assert _command(ssm, six)["ErrorCount"] == 6


def test_e45_undeliverable_and_delivery_timeouts_do_not_count(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    lost, *rest = _instances(ec2, 3)
    faithful.ssm_outcome(lost, "Undeliverable")
    command_id = _send(ssm, InstanceIds=[lost, *rest], MaxConcurrency="1")["CommandId"]
    assert [_status(ssm, command_id, i)[1] for i in rest] == ["Success", "Success"]


# -- E50: output to S3, CloudWatchOutputConfig echoed ---------------------------------------------------------------


def _object(url: str) -> str:
    """Read the object a StandardOutputUrl names (the URL form is the fidelity's assumption; its path is bucket/key)."""
    bucket, key = re.sub(r"^https://[^/]+/", "", url).split("/", 1)
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    return str(body.decode())


def test_e50_output_is_written_to_s3_when_the_invocation_ends(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="run-output")
    failed, quiet, denied = _instances(ec2, 3)
    faithful.ssm_outcome(failed, "Failed", exit_code=4, after=timedelta(seconds=30), stdout="half", stderr="disk full")
    faithful.ssm_outcome(quiet, "Success", after=timedelta(seconds=30), stdout="done")
    faithful.deny_instance_output(denied)
    command_id = _send(
        ssm,
        InstanceIds=[failed, quiet, denied],
        OutputS3BucketName="run-output",
        OutputS3KeyPrefix="runs/nightly",
        MaxErrors="2",
    )["CommandId"]
    answer = _invocation(ssm, command_id, failed)
    assert answer["StandardOutputUrl"].endswith(
        f"/run-output/runs/nightly/{command_id}/{failed}/awsrunShellScript/0.awsrunShellScript/stdout"
    )
    assert s3.list_objects_v2(Bucket="run-output", Prefix="runs/").get("KeyCount") == 0  # still running
    clock.advance(seconds=30)
    answer = _invocation(ssm, command_id, failed)
    assert (_object(answer["StandardOutputUrl"]), _object(answer["StandardErrorUrl"])) == ("half", "disk full")
    quiet_answer = _invocation(ssm, command_id, quiet)
    assert _object(quiet_answer["StandardOutputUrl"]) == "done"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="run-output")["Contents"]}
    assert not any(quiet in k and k.endswith("stderr") for k in keys)  # empty stderr: no object
    assert not any(denied in k for k in keys)
    assert _status(ssm, command_id, denied)[0] == "Success"
    [row] = ssm.list_command_invocations(CommandId=command_id, InstanceId=failed, Details=True)["CommandInvocations"]
    [plugin] = row["CommandPlugins"]
    assert row["StandardOutputUrl"] == plugin["StandardOutputUrl"] == answer["StandardOutputUrl"]
    assert (plugin["OutputS3BucketName"], plugin["OutputS3KeyPrefix"]) == ("run-output", "runs/nightly")
    plain = _send(ssm, InstanceIds=[quiet])["CommandId"]
    assert _invocation(ssm, plain, quiet)["StandardOutputUrl"] == ""


def test_e50_a_missing_output_bucket_refuses_send_command(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    a = _instances(ec2, 1)[0]
    with pytest.raises(ClientError) as error:
        _send(ssm, InstanceIds=[a], OutputS3BucketName="no-such-bucket")
    assert _code(error) == "InvalidOutputFolder"
    assert ssm.list_commands()["Commands"] == []


def test_e50_cloudwatch_output_config_is_echoed(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    a = _instances(ec2, 1)[0]
    config = {"CloudWatchLogGroupName": "/aws/ssm/nightly", "CloudWatchOutputEnabled": True}
    command = _send(ssm, InstanceIds=[a], CloudWatchOutputConfig=config, DocumentVersion="$LATEST")
    assert command["CloudWatchOutputConfig"] == config
    assert command["DocumentVersion"] == "$LATEST"
    assert _invocation(ssm, command["CommandId"], a)["CloudWatchOutputConfig"] == config
    [row] = ssm.list_command_invocations(CommandId=command["CommandId"])["CommandInvocations"]
    assert row["CloudWatchOutputConfig"] == config


# -- E42: document checks -----------------------------------------------------------------------------------------


def test_e42_document_name_version_and_parameters(faithful: MotoFidelity, ec2: Any, ssm: Any) -> None:
    a = _instances(ec2, 1)[0]
    refusals = [
        ({"DocumentName": "No-Such-Document"}, "InvalidDocument"),
        ({"DocumentVersion": "2"}, "InvalidDocumentVersion"),
        ({"Parameters": {"commands": ["true"], "shell": ["zsh"]}}, "InvalidParameters"),
        ({"Parameters": {"executionTimeout": ["60"]}}, "InvalidParameters"),  # commands is required
    ]
    for args, code in refusals:
        with pytest.raises(ClientError) as error:
            _send(ssm, InstanceIds=[a], **args)
        assert _code(error) == code, args
    assert ssm.list_commands()["Commands"] == []
    arn = f"arn:aws:ssm:{REGION}::document/{SHELL}"
    for args in ({"DocumentName": arn}, {"DocumentVersion": "$DEFAULT"}, {"DocumentVersion": "1"}):
        _send(ssm, InstanceIds=[a], **args)
    content = {
        "schemaVersion": "2.2",
        "description": "backup",
        "parameters": {"target": {"type": "String"}, "level": {"type": "String", "default": "full"}},
        "mainSteps": [{"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": ["true"]}}],
    }
    ssm.create_document(Content=json.dumps(content), Name="Backup", DocumentType="Command", DocumentFormat="JSON")
    _send(ssm, InstanceIds=[a], DocumentName="Backup", Parameters={"target": ["/data"]})
    for args, code in [
        ({"Parameters": {}}, "InvalidParameters"),
        ({"Parameters": {"target": ["/"], "commands": ["x"]}}, "InvalidParameters"),
        ({"Parameters": {"target": ["/"]}, "DocumentVersion": "7"}, "InvalidDocumentVersion"),
    ]:
        with pytest.raises(ClientError) as error:
            _send(ssm, InstanceIds=[a], DocumentName="Backup", **args)
        assert _code(error) == code, args


# -- E51: CancelCommand ---------------------------------------------------------------------------------------------


def test_e51_cancel_command_cancels_what_has_not_ended(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    done, running = _instances(ec2, 2)
    faithful.ssm_outcome(running, "Success", after=timedelta(minutes=10))
    command_id = _send(ssm, InstanceIds=[done, running])["CommandId"]
    clock.advance(minutes=1)
    ssm.cancel_command(CommandId=command_id)
    assert _status(ssm, command_id, done)[0] == "Success"
    assert _status(ssm, command_id, running)[:2] == ("Cancelled", "Cancelled")
    clock.advance(minutes=20)
    assert _status(ssm, command_id, running)[:2] == ("Cancelled", "Cancelled")
    assert _command(ssm, command_id)["Status"] == "Cancelled"
    with pytest.raises(ClientError) as error:
        ssm.cancel_command(CommandId="00000000-0000-0000-0000-000000000000")
    assert _code(error) == "InvalidCommandId"


# -- E52: EventBridge events ----------------------------------------------------------------------------------------


def _sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS_DIR / name).read_text(encoding="utf-8")))


def test_e52_events_of_every_status_change_shaped_like_aws_examples(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    good, bad = _instances(ec2, 2)
    faithful.ssm_outcome(good, "Success", after=timedelta(seconds=30))
    faithful.ssm_outcome(bad, "Failed", exit_code=1, after=timedelta(seconds=90))
    requested = clock()
    command = _send(ssm, InstanceIds=[good, bad], MaxErrors="1")
    assert faithful.ssm_events() == []
    assert faithful.ssm_next_change() == requested + timedelta(seconds=30)
    clock.advance(minutes=5)
    events = faithful.ssm_events()
    assert [(e["detail-type"], e["detail"].get("instance-id"), e["detail"]["status"]) for e in events] == [
        ("EC2 Command Invocation Status-change Notification", good, "Success"),
        ("EC2 Command Invocation Status-change Notification", bad, "Failed"),
        ("EC2 Command Status-change Notification", None, faithful.ssm_incomplete_status),
    ]
    invocation, _, whole = events
    for event, sample in (
        (invocation, "ssm-command-invocation-status-success.json"),
        (whole, "ssm-command-status-success.json"),
    ):
        shape = _sample(sample)
        assert set(event) == set(shape) and set(event["detail"]) == set(shape["detail"])
        assert (event["source"], event["account"], event["region"], event["version"]) == (
            "aws.ssm",
            MOTO_ACCOUNT,
            REGION,
            "0",
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["detail"]["requested-date-time"])
    assert invocation["time"] == (requested + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert invocation["resources"] == [f"arn:aws:ec2:{REGION}:{MOTO_ACCOUNT}:instance/{good}"]
    assert whole["detail"]["parameters"] == {"commands": ["/opt/backup.sh"]}
    assert whole["detail"]["command-id"] == command["CommandId"]
    assert len(whole["resources"]) == 2
    assert faithful.ssm_events(since=requested + timedelta(seconds=30)) == events[1:]
    assert faithful.ssm_next_change() is None
    assert faithful.ssm_drain_events() == events and faithful.ssm_drain_events() == []
    faithful.ssm_event_statuses.add("InProgress")
    assert [e["detail"]["status"] for e in faithful.ssm_events()][:3] == ["InProgress"] * 3


def test_e52_events_pass_the_module_rule_through_put_events(
    faithful: MotoFidelity, ec2: Any, ssm: Any, clock: Clock
) -> None:
    sqs, url, arn = _queue(REGION, "ssm-events")
    events_client = boto3.client("events", region_name=REGION)
    pattern = {
        "source": ["aws.ssm"],
        "detail-type": ["EC2 Command Status-change Notification", "EC2 Command Invocation Status-change Notification"],
        "detail": {"document-name": [SHELL]},
    }
    events_client.put_rule(Name="ssm", EventPattern=json.dumps(pattern))
    events_client.put_targets(Rule="ssm", Targets=[{"Id": "q", "Arn": arn}])
    a = _instances(ec2, 1)[0]
    _send(ssm, InstanceIds=[a])
    _send(ssm, InstanceIds=[a], DocumentName="AWS-RunPowerShellScript")  # filtered out by the rule
    entries = ssm_event_entries(faithful.ssm_drain_events())
    assert len(entries) == 4
    assert events_client.put_events(Entries=entries)["FailedEntryCount"] == 0
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in received]
    assert sorted(b["detail-type"] for b in bodies) == sorted(pattern["detail-type"])
    assert all(b["detail"]["document-name"] == SHELL and b["detail"]["status"] == "Success" for b in bodies)


# -- I1: AssumeRole evaluates the trust policy in the role's account -----------------------------------------

SPOKE = "111111111111"
SPOKE_ROLE = f"arn:aws:iam::{SPOKE}:role/ops-automation-ami-backup"
HUB_FUNCTION = f"arn:aws:iam::{MOTO_ACCOUNT}:role/hub-worker"
HUB_OTHER = f"arn:aws:iam::{MOTO_ACCOUNT}:role/hub-other"
EXTERNAL_ID = "landing-zone-7f3a"
SESSION = "ops-automation-nightly"
OWNERSHIP = {"ops-automation:managed-by": "terraform-aws-ops-automation", "ops-automation:policy": "nightly"}


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _trust(principals: list[str], conditions: dict[str, Any] | None = None) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}
    default = {
        "StringEquals": {"sts:ExternalId": EXTERNAL_ID},
        "StringLike": {"sts:RoleSessionName": "ops-automation-*"},
    }
    return _document({**statement, "Condition": default if conditions is None else conditions})


def _session(credentials: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _assume(role_arn: str, credentials: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    sts = _session(credentials, "sts") if credentials else boto3.client("sts", region_name=REGION)
    kwargs.setdefault("RoleSessionName", SESSION)
    return dict(sts.assume_role(RoleArn=role_arn, **kwargs)["Credentials"])


def _spoke_admin() -> dict[str, Any]:
    """A session in the spoke through a role that does not exist (moto's way into another account, kept by I1)."""
    return _assume(f"arn:aws:iam::{SPOKE}:role/OrganizationAccountAccessRole")


def _role_with_policy(iam: Any, arn: str, trust: str, policy: str | None) -> None:
    name = arn.rsplit("/", 1)[-1]
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName="business", PolicyDocument=policy)


def _may_assume(*role_arns: str) -> str:
    return _document({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": list(role_arns)})


LAMBDA_TRUST = _document(
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
)


@pytest.fixture
def landing_zone(faithful: MotoFidelity) -> MotoFidelity:
    """Hub roles in the default account (the function's, trusted by the spoke role, and another one allowed by its
    own policy only); the spoke role in SPOKE with the default trust and no permissions yet."""
    hub_iam = boto3.client("iam", region_name=REGION)
    _role_with_policy(hub_iam, HUB_FUNCTION, LAMBDA_TRUST, _may_assume(SPOKE_ROLE))
    _role_with_policy(hub_iam, HUB_OTHER, LAMBDA_TRUST, _may_assume(SPOKE_ROLE))
    _role_with_policy(_session(_spoke_admin(), "iam"), SPOKE_ROLE, _trust([HUB_FUNCTION]), None)
    return faithful


def _denied(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as error:
        call()
    return _code(error)


def test_i1_the_trusted_hub_role_assumes_the_spoke_role_with_external_id(landing_zone: MotoFidelity) -> None:
    hub = _assume(HUB_FUNCTION)
    spoke = _assume(SPOKE_ROLE, hub, ExternalId=EXTERNAL_ID)
    identity = _session(spoke, "sts").get_caller_identity()
    assert identity["Account"] == SPOKE
    assert identity["Arn"] == f"arn:aws:sts::{SPOKE}:assumed-role/ops-automation-ami-backup/{SESSION}"
    hub_session = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/hub-worker/{SESSION}"
    assert landing_zone.iam.decisions_of("sts:AssumeRole") == [
        IamDecision(hub_session, SPOKE, "sts:AssumeRole", SPOKE_ROLE, True)
    ]


def test_i1_a_missing_or_wrong_external_id_is_refused(landing_zone: MotoFidelity) -> None:
    hub = _assume(HUB_FUNCTION)
    assert _denied(lambda: _assume(SPOKE_ROLE, hub)) == "AccessDenied"
    assert _denied(lambda: _assume(SPOKE_ROLE, hub, ExternalId="guess")) == "AccessDenied"
    assert [d.allowed for d in landing_zone.iam.decisions_of("sts:AssumeRole")] == [False, False]


def test_i1_a_hub_role_the_trust_does_not_name_is_refused_although_its_policy_allows(
    landing_zone: MotoFidelity,
) -> None:
    other = _assume(HUB_OTHER)
    with pytest.raises(ClientError) as error:
        _assume(SPOKE_ROLE, other, ExternalId=EXTERNAL_ID)
    assert _code(error) == "AccessDenied"
    message = error.value.response["Error"]["Message"]
    assert message == (
        f"User: arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/hub-other/{SESSION} is not authorized to perform: "
        f"sts:AssumeRole on resource: {SPOKE_ROLE}"
    )


def test_i1_cross_account_the_callers_identity_policy_must_allow_too(landing_zone: MotoFidelity) -> None:
    boto3.client("iam", region_name=REGION).put_role_policy(
        RoleName="hub-worker", PolicyName="business", PolicyDocument=_may_assume(f"arn:aws:iam::{SPOKE}:role/other")
    )
    hub = _assume(HUB_FUNCTION)
    assert _denied(lambda: _assume(SPOKE_ROLE, hub, ExternalId=EXTERNAL_ID)) == "AccessDenied"


def test_i1_an_explicit_deny_in_the_callers_policy_wins(landing_zone: MotoFidelity) -> None:
    deny = {"Effect": "Deny", "Action": "sts:*", "Resource": "*"}
    allow = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": SPOKE_ROLE}
    iam = boto3.client("iam", region_name=REGION)
    iam.put_role_policy(RoleName="hub-worker", PolicyName="business", PolicyDocument=_document(allow, deny))
    hub = _assume(HUB_FUNCTION)
    assert _denied(lambda: _assume(SPOKE_ROLE, hub, ExternalId=EXTERNAL_ID)) == "AccessDenied"


def test_i1_the_session_name_must_match(landing_zone: MotoFidelity) -> None:
    hub = _assume(HUB_FUNCTION)
    call = lambda: _assume(SPOKE_ROLE, hub, ExternalId=EXTERNAL_ID, RoleSessionName="someone")  # noqa: E731
    assert _denied(call) == "AccessDenied"


def test_i1_principal_org_id_and_principal_arn_conditions(landing_zone: MotoFidelity) -> None:
    conditions = {
        "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"},
        "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{MOTO_ACCOUNT}:role/hub-*"},
    }
    spoke_iam = _session(_spoke_admin(), "iam")
    spoke_iam.update_assume_role_policy(
        RoleName="ops-automation-ami-backup", PolicyDocument=_trust([f"arn:aws:iam::{MOTO_ACCOUNT}:root"], conditions)
    )
    hub = _assume(HUB_OTHER)
    assert _denied(lambda: _assume(SPOKE_ROLE, hub)) == "AccessDenied"  # the hub is in no organization yet
    landing_zone.iam.join_organization(MOTO_ACCOUNT, "o-abcdefghij")
    assert _session(_assume(SPOKE_ROLE, hub), "sts").get_caller_identity()["Account"] == SPOKE
    landing_zone.iam.join_organization(MOTO_ACCOUNT, "o-zzzzzzzzzz")
    assert _denied(lambda: _assume(SPOKE_ROLE, hub)) == "AccessDenied"


def test_i1_leaves_the_dummy_key_and_roles_that_do_not_exist_to_moto(landing_zone: MotoFidelity) -> None:
    # Terraform's providers reach the spoke with the dummy key through OrganizationAccountAccessRole, which no
    # one created; the harness assumes the hub roles (trusted by Lambda only) the same way.
    assert _session(_assume(SPOKE_ROLE), "sts").get_caller_identity()["Account"] == SPOKE
    hub = _assume(HUB_FUNCTION)
    missing = f"arn:aws:iam::{SPOKE}:role/not-created"
    assert _session(_assume(missing, hub), "sts").get_caller_identity()["Account"] == SPOKE
    assert landing_zone.iam.decisions == []


def test_i1_unmodelled_policy_elements_fail_loudly(landing_zone: MotoFidelity) -> None:
    spoke_iam = _session(_spoke_admin(), "iam")
    conditions = {"NumericLessThan": {"sts:DurationSeconds": "3600"}}
    spoke_iam.update_assume_role_policy(
        RoleName="ops-automation-ami-backup", PolicyDocument=_trust([HUB_FUNCTION], conditions)
    )
    hub = _assume(HUB_FUNCTION)
    with pytest.raises(UnmodelledPolicy, match="NumericLessThan"):
        _assume(SPOKE_ROLE, hub, ExternalId=EXTERNAL_ID)


# -- I2: the spoke role's policies decide the mutating EC2 calls of its sessions --------------------------------

IMAGES = "arn:aws:ec2:*::image/*"
SNAPSHOTS = "arn:aws:ec2:*::snapshot/*"


def _ownership(prefix: str) -> dict[str, Any]:
    return {"StringEquals": {f"{prefix}/{key}": value for key, value in OWNERSHIP.items()}}


# The shape of ami-backup's target-role policy (modules/ami-backup/iam.tf, modules/internal/iam.tf).
AMI_BACKUP_POLICY = _document(
    {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:DescribeImages"], "Resource": "*"},
    {
        "Effect": "Allow",
        "Action": "ec2:CreateImage",
        "Resource": "arn:aws:ec2:*:*:instance/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Backup": "daily"}},
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateImage",
        "Resource": [IMAGES, SNAPSHOTS],
        "Condition": _ownership("aws:RequestTag"),
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": [IMAGES, SNAPSHOTS],
        "Condition": {
            "StringEquals": {**_ownership("aws:RequestTag")["StringEquals"], "ec2:CreateAction": "CreateImage"}
        },
    },
    {
        "Effect": "Allow",
        "Action": "ec2:DeregisterImage",
        "Resource": IMAGES,
        "Condition": _ownership("aws:ResourceTag"),
    },
    {
        "Effect": "Allow",
        "Action": "ec2:DeleteSnapshot",
        "Resource": SNAPSHOTS,
        "Condition": _ownership("aws:ResourceTag"),
    },
    {
        "Effect": "Allow",
        "Action": ["ec2:StartInstances", "ec2:StopInstances"],
        "Resource": "arn:aws:ec2:*:*:instance/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Backup": "daily"}},
    },
    {
        "Effect": "Deny",
        "Action": "ec2:DeleteSnapshot",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/keep": "true"}},
    },
)


@dataclass(frozen=True)
class Spoke:
    fidelity: MotoFidelity
    admin: Any  # EC2 in the spoke through a role that does not exist: left to moto
    worker: Any  # EC2 in the spoke as the hub worker through the spoke role: decided by I2
    tagged: str
    untagged: str
    session_arn: str


def _tag_specifications(**tags_by_type: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        for kind, tags in tags_by_type.items()
    ]


@pytest.fixture
def spoke(landing_zone: MotoFidelity) -> Spoke:
    admin = _spoke_admin()
    _session(admin, "iam").put_role_policy(
        RoleName="ops-automation-ami-backup", PolicyName="ami-backup", PolicyDocument=AMI_BACKUP_POLICY
    )
    ec2_admin = _session(admin, "ec2")
    launched = [
        ec2_admin.run_instances(
            ImageId="ami-12345678",
            MinCount=1,
            MaxCount=1,
            **({"TagSpecifications": _tag_specifications(instance=tags)} if tags else {}),
        )["Instances"][0]["InstanceId"]
        for tags in ({"Backup": "daily"}, {})
    ]
    worker = _session(_assume(SPOKE_ROLE, _assume(HUB_FUNCTION), ExternalId=EXTERNAL_ID), "ec2")
    session_arn = f"arn:aws:sts::{SPOKE}:assumed-role/ops-automation-ami-backup/{SESSION}"
    return Spoke(landing_zone, ec2_admin, worker, launched[0], launched[1], session_arn)


def _backup(client: Any, instance_id: str, name: str, tags: dict[str, str] | None = None) -> str:
    specified = _tag_specifications(image=tags, snapshot=tags) if tags else None
    return _image(client, instance_id, name, **({"TagSpecifications": specified} if specified else {}))


def _snapshots_of(client: Any, image_id: str) -> list[str]:
    image = client.describe_images(ImageIds=[image_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def test_i2_the_session_backs_up_a_targeted_instance_with_the_ownership_tags(spoke: Spoke) -> None:
    image_id = _backup(spoke.worker, spoke.tagged, "nightly-1", OWNERSHIP)
    assert spoke.admin.describe_images(ImageIds=[image_id])["Images"][0]["OwnerId"] == SPOKE
    decided = [(d.action, d.resource.split(":", 5)[5], d.allowed) for d in spoke.fidelity.iam.decisions[1:]]
    assert decided == [
        ("ec2:CreateImage", f"instance/{spoke.tagged}", True),
        ("ec2:CreateImage", "image/*", True),
        ("ec2:CreateTags", "image/*", True),
        ("ec2:CreateImage", "snapshot/*", True),
        ("ec2:CreateTags", "snapshot/*", True),
    ]
    assert {d.principal for d in spoke.fidelity.iam.decisions[1:]} == {spoke.session_arn}


def test_i2_create_image_without_ownership_tags_or_of_an_untargeted_instance_is_unauthorized(spoke: Spoke) -> None:
    assert _denied(lambda: _backup(spoke.worker, spoke.tagged, "untagged")) == "UnauthorizedOperation"
    assert _denied(lambda: _backup(spoke.worker, spoke.untagged, "other", OWNERSHIP)) == "UnauthorizedOperation"
    other_policy = {**OWNERSHIP, "ops-automation:policy": "weekly"}
    assert _denied(lambda: _backup(spoke.worker, spoke.tagged, "weekly", other_policy)) == "UnauthorizedOperation"
    assert spoke.admin.describe_images(Owners=["self"])["Images"] == []


def test_i2_unowned_images_and_snapshots_cannot_be_retired_and_remain(spoke: Spoke) -> None:
    unowned = _backup(spoke.admin, spoke.tagged, "golden")
    snapshots = _snapshots_of(spoke.admin, unowned)
    with pytest.raises(ClientError) as error:
        spoke.worker.deregister_image(ImageId=unowned)
    assert _code(error) == "UnauthorizedOperation"
    assert error.value.response["Error"]["Message"] == (
        f"You are not authorized to perform this operation. User: {spoke.session_arn} is not authorized to perform: "
        f"ec2:DeregisterImage on resource: arn:aws:ec2:{REGION}::image/{unowned} because no identity-based policy "
        "allows the ec2:DeregisterImage action"
    )
    assert _denied(lambda: spoke.worker.delete_snapshot(SnapshotId=snapshots[0])) == "UnauthorizedOperation"
    assert spoke.admin.describe_images(ImageIds=[unowned])["Images"][0]["State"] == "available"
    assert spoke.admin.describe_snapshots(SnapshotIds=snapshots)["Snapshots"]


def test_i2_owned_backups_are_retired(spoke: Spoke, clock: Clock) -> None:
    image_id = _backup(spoke.worker, spoke.tagged, "nightly-1", OWNERSHIP)
    snapshots = _snapshots_of(spoke.admin, image_id)
    spoke.worker.deregister_image(ImageId=image_id)
    clock.advance(seconds=spoke.fidelity.snapshot_in_use_window.total_seconds() + 1)
    spoke.worker.delete_snapshot(SnapshotId=snapshots[0])
    assert spoke.admin.describe_snapshots(SnapshotIds=[])["Snapshots"] == []


def test_i2_ownership_tags_cannot_be_forged_onto_an_unowned_image(spoke: Spoke) -> None:
    unowned = _backup(spoke.admin, spoke.tagged, "golden")
    tags = [{"Key": k, "Value": v} for k, v in OWNERSHIP.items()]
    call = lambda: spoke.worker.create_tags(Resources=[unowned], Tags=tags)  # noqa: E731
    assert _denied(call) == "UnauthorizedOperation"
    assert _denied(lambda: spoke.worker.deregister_image(ImageId=unowned)) == "UnauthorizedOperation"


def test_i2_an_explicit_deny_wins_over_the_allow(spoke: Spoke, clock: Clock) -> None:
    image_id = _backup(spoke.worker, spoke.tagged, "nightly-1", {**OWNERSHIP, "keep": "true"})
    snapshots = _snapshots_of(spoke.admin, image_id)
    spoke.worker.deregister_image(ImageId=image_id)
    clock.advance(seconds=spoke.fidelity.snapshot_in_use_window.total_seconds() + 1)
    with pytest.raises(ClientError) as error:
        spoke.worker.delete_snapshot(SnapshotId=snapshots[0])
    assert "with an explicit deny in an identity-based policy" in error.value.response["Error"]["Message"]
    assert spoke.admin.describe_snapshots(SnapshotIds=snapshots)["Snapshots"]


def test_i2_start_and_stop_follow_the_instance_tags(spoke: Spoke) -> None:
    spoke.worker.stop_instances(InstanceIds=[spoke.tagged])
    assert _denied(lambda: spoke.worker.stop_instances(InstanceIds=[spoke.untagged])) == "UnauthorizedOperation"
    assert _denied(lambda: spoke.worker.stop_instances(InstanceIds=[spoke.tagged, spoke.untagged])) == (
        "UnauthorizedOperation"
    )
    states = spoke.admin.describe_instances(InstanceIds=[spoke.untagged])["Reservations"][0]["Instances"]
    assert states[0]["State"]["Name"] == "running"


def test_i2_a_session_of_a_role_without_policies_and_the_dummy_key_are_left_to_moto(spoke: Spoke) -> None:
    image_id = _backup(spoke.admin, spoke.untagged, "anything")
    spoke.admin.deregister_image(ImageId=image_id)
    hub_ec2 = boto3.client("ec2", region_name=REGION)
    hub_image = _backup(hub_ec2, _instance(hub_ec2), "hub")
    hub_ec2.deregister_image(ImageId=hub_image)
    assert [d for d in spoke.fidelity.iam.decisions if d.action.startswith("ec2:")] == []


def test_i2_unmodelled_condition_operators_fail_loudly(spoke: Spoke) -> None:
    statement = {
        "Effect": "Allow",
        "Action": "ec2:StopInstances",
        "Resource": "*",
        "Condition": {"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}},
    }
    _session(_spoke_admin(), "iam").put_role_policy(
        RoleName="ops-automation-ami-backup", PolicyName="dated", PolicyDocument=_document(statement)
    )
    with pytest.raises(UnmodelledPolicy, match="DateLessThan"):
        spoke.worker.stop_instances(InstanceIds=[spoke.untagged])


# -- E53-E55: the accounts of an organization ----------------------------------------------------------------------

ORG_SCP = "SERVICE_CONTROL_POLICY"


@dataclass(frozen=True)
class Organization:
    fidelity: MotoFidelity
    client: Any  # Organizations in the management account (the emulator's default account)
    root: str
    prod: str  # an OU under the root
    team: str  # an OU under prod
    member: str  # an account in team
    other: str  # an account directly under the root
    credentials: dict[str, dict[str, Any]]  # account -> a session of its OrganizationAccountAccessRole


def _scp(client: Any, target: str, *statements: dict[str, Any]) -> str:
    policy_id = str(
        client.create_policy(
            Name=f"scp-{uuid.uuid4().hex[:8]}", Type=ORG_SCP, Description="test", Content=_document(*statements)
        )["Policy"]["PolicySummary"]["Id"]
    )
    client.attach_policy(PolicyId=policy_id, TargetId=target)
    return policy_id


@pytest.fixture
def organization(faithful: MotoFidelity) -> Organization:
    client = boto3.client("organizations", region_name=REGION)
    client.create_organization(FeatureSet="ALL")
    root = client.list_roots()["Roots"][0]["Id"]
    client.enable_policy_type(RootId=root, PolicyType=ORG_SCP)
    prod = client.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    team = client.create_organizational_unit(ParentId=prod, Name="team")["OrganizationalUnit"]["Id"]
    member, other = (
        client.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
        for name in ("member", "other")
    )
    client.move_account(AccountId=member, SourceParentId=root, DestinationParentId=team)
    credentials = {
        account: _assume(f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole") for account in (member, other)
    }
    return Organization(faithful, client, root, prod, team, member, other, credentials)


def _in(organization: Organization, account: str, service: str, region: str = REGION) -> Any:
    return client_with(organization.credentials[account], service, region)


def _error(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as error:
        call()
    return dict(error.value.response["Error"])


# E53: opt-in Regions


def test_e53_describe_regions_lists_the_enabled_regions_of_the_account(faithful: MotoFidelity, ec2: Any) -> None:
    enabled = ec2.describe_regions()["Regions"]
    assert {r["RegionName"] for r in enabled} == {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-central-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
    }  # fmt: skip
    assert {r["OptInStatus"] for r in enabled} == {"opt-in-not-required"}
    everything = {r["RegionName"]: r["OptInStatus"] for r in ec2.describe_regions(AllRegions=True)["Regions"]}
    assert everything["ap-east-1"] == everything["af-south-1"] == everything["eu-south-1"] == "not-opted-in"
    assert not [name for name in everything if name.startswith(("us-gov-", "cn-"))]  # other partitions' Regions
    faithful.accounts.enable_region(MOTO_ACCOUNT, "ap-east-1")
    assert {r["RegionName"]: r["OptInStatus"] for r in ec2.describe_regions()["Regions"]}["ap-east-1"] == "opted-in"
    opted = ec2.describe_regions(AllRegions=True, Filters=[{"Name": "opt-in-status", "Values": ["opted-in"]}])
    assert [r["RegionName"] for r in opted["Regions"]] == ["ap-east-1"]
    named = ec2.describe_regions(RegionNames=["me-south-1", "eu-west-1"])["Regions"]
    assert {(r["RegionName"], r["OptInStatus"]) for r in named} == {
        ("me-south-1", "not-opted-in"),
        ("eu-west-1", "opt-in-not-required"),
    }
    wild = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["eu-west-?"]}])["Regions"]
    assert sorted(r["RegionName"] for r in wild) == ["eu-west-1", "eu-west-2", "eu-west-3"]
    bad = _error(lambda: ec2.describe_regions(Filters=[{"Name": "geography", "Values": ["x"]}]))
    assert bad["Code"] == "InvalidParameterValue"


def test_e53_a_region_the_account_has_not_enabled_refuses_its_credentials(organization: Organization) -> None:
    fidelity, member = organization.fidelity, organization.member
    refused = _error(lambda: _in(organization, member, "ec2", "ap-east-1").describe_instances())
    assert refused == {"Code": "AuthFailure", "Message": "AWS was not able to validate the provided access credentials"}
    assert _error(lambda: _in(organization, member, "sqs", "ap-east-1").list_queues())["Code"] == "InvalidClientTokenId"
    assert _error(lambda: _in(organization, member, "sts", "me-south-1").get_caller_identity())["Code"] == (
        "InvalidClientTokenId"
    )
    fidelity.accounts.enable_region(member, "ap-east-1")
    assert _in(organization, member, "ec2", "ap-east-1").describe_instances()["Reservations"] == []
    regions = {r["RegionName"] for r in _in(organization, member, "ec2").describe_regions()["Regions"]}
    assert "ap-east-1" in regions
    # Another account (here the management account, with the emulator's key) has not enabled it.
    hub = boto3.client("ec2", region_name="ap-east-1")
    assert _error(hub.describe_instances)["Code"] == "AuthFailure"
    # AssumeRole at an opt-in Regional STS endpoint: the Region must be enabled in the caller's and the role's account.
    fidelity.accounts.enable_region(MOTO_ACCOUNT, "ap-east-1")
    regional = boto3.client("sts", region_name="ap-east-1")
    role = f"arn:aws:iam::{organization.other}:role/OrganizationAccountAccessRole"
    assert _error(lambda: regional.assume_role(RoleArn=role, RoleSessionName="probe"))["Code"] == "InvalidClientTokenId"
    fidelity.accounts.enable_region(organization.other, "ap-east-1")
    assert regional.assume_role(RoleArn=role, RoleSessionName="probe")["Credentials"]
    fidelity.accounts.disable_region(member, "ap-east-1")
    assert _error(lambda: _in(organization, member, "ec2", "ap-east-1").describe_instances())["Code"] == "AuthFailure"


def test_e53_default_regions_cannot_be_enabled_or_disabled(faithful: MotoFidelity) -> None:
    with pytest.raises(ValueError, match="no opt-in Region"):
        faithful.accounts.enable_region(MOTO_ACCOUNT, "us-east-1")
    with pytest.raises(ValueError, match="no opt-in Region"):
        faithful.accounts.disable_region(MOTO_ACCOUNT, "eu-west-1")
    assert faithful.accounts.region_enabled("210987654321", "eu-west-1")
    assert not faithful.accounts.region_enabled("210987654321", "il-central-1")


# E54: service control policies


def test_e54_a_deny_on_an_ou_denies_the_accounts_below_it_only(organization: Organization) -> None:
    _scp(organization.client, organization.prod, {"Effect": "Deny", "Action": "ec2:DescribeInstances", "Resource": "*"})
    denied = _error(lambda: _in(organization, organization.member, "ec2").describe_instances())
    session = f"arn:aws:sts::{organization.member}:assumed-role/OrganizationAccountAccessRole/{SESSION}"
    assert denied == {
        "Code": "UnauthorizedOperation",
        "Message": "You are not authorized to perform this operation. User: "
        f"{session} is not authorized to perform: ec2:DescribeInstances on resource: * with an explicit deny in a "
        "service control policy",
    }
    _in(organization, organization.member, "ec2").describe_images(Owners=["self"])  # another action
    _in(organization, organization.other, "ec2").describe_instances()  # under the root only
    boto3.client("ec2", region_name=REGION).describe_instances()  # the management account: SCPs do not apply
    refused = [d for d in organization.fidelity.accounts.scp_decisions if d.denied]
    assert [(d.account, d.action) for d in refused] == [(organization.member, "ec2:DescribeInstances")]


def test_e54_not_action_and_conditions_on_the_requested_region(organization: Organization) -> None:
    region_lock = {
        "Effect": "Deny",
        "NotAction": ["ec2:Describe*", "sts:*"],
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": [REGION]}},
    }
    _scp(organization.client, organization.root, region_lock)
    member = organization.member
    assert _in(organization, member, "sqs").list_queues().get("QueueUrls", []) == []
    denied = _error(lambda: _in(organization, member, "sqs", OTHER_REGION).list_queues())
    assert denied["Code"] == "AccessDeniedException"
    assert denied["Message"].endswith("sqs:ListQueues on resource: * with an explicit deny in a service control policy")
    _in(organization, member, "ec2", OTHER_REGION).describe_instances()
    assert _error(lambda: _in(organization, member, "dynamodb", OTHER_REGION).list_tables())["Code"] == (
        "AccessDeniedException"
    )


def test_e54_every_level_must_allow(organization: Organization) -> None:
    client = organization.client
    _scp(client, organization.team, {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"})
    client.detach_policy(PolicyId="p-FullAWSAccess", TargetId=organization.team)
    member = organization.member
    _in(organization, member, "ec2").describe_instances()
    denied = _error(lambda: _in(organization, member, "iam").list_roles())
    assert denied["Code"] == "AccessDenied"  # IAM speaks the query protocol
    assert denied["Message"].endswith(
        "iam:ListRoles on resource: * because no service control policy allows the iam:ListRoles action"
    )
    # GetCallerIdentity needs no permission: no policy can deny it (STS API Reference).
    assert _in(organization, member, "sts").get_caller_identity()["Account"] == member


def test_e54_ec2_changes_are_decided_per_resource_and_tags(organization: Organization) -> None:
    statement = {
        "Effect": "Deny",
        "Action": "ec2:CreateImage",
        "Resource": "arn:aws:ec2:*:*:instance/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}},
    }
    _scp(organization.client, organization.member, statement)
    ec2_member = _in(organization, organization.member, "ec2")
    prod, dev = (
        ec2_member.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=_tag_specifications(instance={"env": env})
        )["Instances"][0]["InstanceId"]
        for env in ("prod", "dev")
    )
    assert _error(lambda: _image(ec2_member, prod, "prod-image"))["Code"] == "UnauthorizedOperation"
    assert _image(ec2_member, dev, "dev-image").startswith("ami-")
    assert ec2_member.describe_images(Owners=["self"])["Images"][0]["Name"] == "dev-image"


def test_e54_scps_apply_only_with_the_policy_type_enabled_on_the_root(organization: Organization) -> None:
    _scp(organization.client, organization.root, {"Effect": "Deny", "Action": "*", "Resource": "*"})
    assert _error(lambda: _in(organization, organization.other, "ec2").describe_instances())["Code"] == (
        "UnauthorizedOperation"
    )
    organization.client.disable_policy_type(RootId=organization.root, PolicyType=ORG_SCP)
    _in(organization, organization.other, "ec2").describe_instances()


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Deny", "Action": "sqs:*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceIp": "x"}}},
        {"Effect": "Deny", "Action": "sqs:*", "Resource": "arn:aws:sqs:*:*:queue-*"},
        {
            "Effect": "Deny",
            "Action": "sqs:*",
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "x"}},
        },
    ],
    ids=["unknown-key", "resource-of-unmodelled-action", "unknown-operator"],
)
def test_e54_unmodelled_scp_elements_fail_loudly(organization: Organization, statement: dict[str, Any]) -> None:
    _scp(organization.client, organization.prod, statement)
    with pytest.raises(UnmodelledPolicy):
        _in(organization, organization.member, "sqs").list_queues()


# E55: account states and pages


def test_e55_close_account_is_pending_closure_then_closed(organization: Organization, clock: Clock) -> None:
    client, member = organization.client, organization.member

    def states() -> list[tuple[str, str]]:
        listed = client.list_accounts_for_parent(ParentId=organization.team)["Accounts"]
        described = client.describe_account(AccountId=member)["Account"]
        assert [(a["Status"], a["State"]) for a in listed] == [(described["Status"], described["State"])]
        return [(a["Status"], a["State"]) for a in listed]

    assert states() == [("ACTIVE", "ACTIVE")]
    client.close_account(AccountId=member)
    assert states() == [("PENDING_CLOSURE", "PENDING_CLOSURE")]
    assert _error(lambda: client.close_account(AccountId=member))["Code"] == "AccountAlreadyClosedException"
    clock.advance(seconds=organization.fidelity.accounts.account_closure_time.total_seconds())
    assert states() == [("SUSPENDED", "CLOSED")]
    by_id = {a["Id"]: a["State"] for a in client.list_accounts()["Accounts"]}
    assert by_id[member] == "CLOSED" and by_id[organization.other] == "ACTIVE"


def test_e55_an_aws_enforced_suspension(organization: Organization) -> None:
    organization.fidelity.accounts.suspend_account(organization.other)
    listed = organization.client.list_accounts_for_parent(ParentId=organization.root)["Accounts"]
    assert {(a["Id"], a["Status"], a["State"]) for a in listed} >= {(organization.other, "SUSPENDED", "SUSPENDED")}
    organization.fidelity.accounts.suspend_account(organization.other, suspended=False)
    listed = organization.client.list_accounts_for_parent(ParentId=organization.root)["Accounts"]
    assert {a["State"] for a in listed if a["Id"] == organization.other} == {"ACTIVE"}


def test_e55_list_pages_take_max_results_1_to_20_and_default_to_20(organization: Organization) -> None:
    client = organization.client
    for number in range(22):
        client.create_account(AccountName=f"bulk-{number}", Email=f"bulk-{number}@example.com")
    for call in (
        lambda: client.list_accounts_for_parent(ParentId=organization.root, MaxResults=21),
        lambda: client.list_accounts(MaxResults=50),
        lambda: client.list_organizational_units_for_parent(ParentId=organization.root, MaxResults=21),
    ):
        assert _error(call)["Code"] == "InvalidInputException"
    first = client.list_accounts()
    assert len(first["Accounts"]) == 20 and first["NextToken"]
    page = client.list_accounts_for_parent(ParentId=organization.root, MaxResults=20)
    assert len(page["Accounts"]) == 20 and page["NextToken"]
    pages = client.get_paginator("list_accounts_for_parent").paginate(ParentId=organization.root)
    assert sum(len(p["Accounts"]) for p in pages) == 24  # 22, `other` and the management account


# I1 with Organizations: aws:ResourceOrgID


def test_i1_resource_org_id_is_the_organization_of_the_roles_account(organization: Organization) -> None:
    org_id = organization.client.describe_organization()["Organization"]["Id"]
    in_org = {"StringEquals": {"aws:ResourceOrgID": org_id}}
    policy = _document(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/spoke", "Condition": in_org}
    )
    _role_with_policy(boto3.client("iam", region_name=REGION), HUB_FUNCTION, LAMBDA_TRUST, policy)
    trust = _document({"Effect": "Allow", "Principal": {"AWS": HUB_FUNCTION}, "Action": "sts:AssumeRole"})
    for account in (organization.member, SPOKE):  # SPOKE is in no organization
        admin = _in(organization, account, "iam") if account != SPOKE else _session(_spoke_admin(), "iam")
        admin.create_role(RoleName="spoke", AssumeRolePolicyDocument=trust)
    hub = _assume(HUB_FUNCTION)
    assert _session(_assume(f"arn:aws:iam::{organization.member}:role/spoke", hub), "sts").get_caller_identity()
    assert _denied(lambda: _assume(f"arn:aws:iam::{SPOKE}:role/spoke", hub)) == "AccessDenied"
    # A role that does not exist in an account of the organization is refused too (outside one, moto's way in stays).
    missing = f"arn:aws:iam::{organization.member}:role/not-created"
    boto3.client("iam", region_name=REGION).put_role_policy(
        RoleName="hub-worker", PolicyName="any", PolicyDocument=_may_assume("*")
    )
    assert _denied(lambda: _assume(missing, _assume(HUB_FUNCTION))) == "AccessDenied"
    assert not organization.fidelity.iam.decisions_of("sts:AssumeRole")[-1].allowed


# -- E56-E60: restore tests (RunInstances, DescribeInstanceStatus, CreateVolume, DeleteVolume) ---------------------


@dataclass(frozen=True)
class Network:
    subnet: str
    group: str


def _network(ec2: Any) -> Network:
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
    group = ec2.create_security_group(GroupName="restore-test", Description="no rules", VpcId=vpc)["GroupId"]
    return Network(subnet["SubnetId"], group)


def _x86_image(ec2: Any) -> str:
    return _image(ec2, _instance(ec2), f"backup-{uuid.uuid4().hex[:8]}")


def _launch(ec2: Any, image_id: str, network: Network, **kwargs: Any) -> dict[str, Any]:
    interface = {
        "DeviceIndex": 0,
        "SubnetId": network.subnet,
        "Groups": [network.group],
        "AssociatePublicIpAddress": False,
        "DeleteOnTermination": True,
    }
    kwargs.setdefault("InstanceType", "t3.nano")
    answer = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, NetworkInterfaces=[interface], **kwargs)
    return dict(answer)


def _statuses(ec2: Any, instance_id: str, **kwargs: Any) -> dict[str, str]:
    found = ec2.describe_instance_status(InstanceIds=[instance_id], **kwargs)["InstanceStatuses"]
    if not found:
        return {}
    [status] = found
    fields = ("SystemStatus", "InstanceStatus", "AttachedEbsStatus")
    return {field: status[field]["Status"] for field in fields if field in status}


def test_e56_a_client_token_answers_the_first_launch_and_refuses_other_parameters(
    faithful: MotoFidelity, ec2: Any
) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    first = _launch(ec2, image_id, network, ClientToken="restore-1")
    again = _launch(ec2, image_id, network, ClientToken="restore-1")
    assert again["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in again["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    with pytest.raises(ClientError) as error:
        _launch(ec2, image_id, network, ClientToken="restore-1", InstanceType="t3.micro")
    assert _code(error) == "IdempotentParameterMismatch"
    other = _launch(ec2, image_id, network, ClientToken="restore-2")
    untokened = [_launch(ec2, image_id, network)["ReservationId"] for _ in range(2)]
    ids = {first["ReservationId"], other["ReservationId"], *untokened}
    assert len(ids) == 4
    assert faithful.run_instances_attempts.count(image_id) == 4


def test_e56_a_retry_after_termination_answers_the_same_instance_and_launches_none(
    faithful: MotoFidelity, ec2: Any
) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    [instance] = _launch(ec2, image_id, network, ClientToken="restore-1")["Instances"]
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    [retried] = _launch(ec2, image_id, network, ClientToken="restore-1")["Instances"]
    assert retried["InstanceId"] == instance["InstanceId"]  # (State in the answer stays moto's `pending`)
    assert _state(ec2, instance["InstanceId"])["State"]["Name"] == "terminated"
    assert len(ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image_id]}])["Reservations"]) == 1


def test_e57_an_instance_type_of_another_architecture_is_refused(faithful: MotoFidelity, ec2: Any) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    with pytest.raises(ClientError) as error:
        _launch(ec2, image_id, network, InstanceType="t4g.nano")
    assert _code(error) == "InvalidParameterValue"
    assert error.value.response["Error"]["Message"].startswith(
        "The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the "
        "specified AMI."
    )
    arm = _x86_image(ec2)
    faithful.backend(REGION).amis[arm].architecture = "arm64"  # as an AMI of a Graviton instance
    assert _launch(ec2, arm, network, InstanceType="t4g.nano")["Instances"][0]["InstanceType"] == "t4g.nano"
    with pytest.raises(ClientError) as error:
        _launch(ec2, arm, network, InstanceType="t3.nano")
    assert _code(error) == "InvalidParameterValue"
    faithful.architecture_mismatch_error = "InvalidParameterCombination"
    with pytest.raises(ClientError) as error:
        _launch(ec2, arm, network, InstanceType="t2.nano")
    assert _code(error) == "InvalidParameterCombination"
    assert "'x86_64' of the specified instance type" in error.value.response["Error"]["Message"]
    # refused requests launch nothing
    assert (faithful.run_instances_attempts.count(image_id), faithful.run_instances_attempts.count(arm)) == (0, 1)


def test_e57_an_ami_that_is_deregistered_or_not_available_cannot_be_launched(faithful: MotoFidelity, ec2: Any) -> None:
    network = _network(ec2)
    pending, gone = _x86_image(ec2), _x86_image(ec2)
    faithful.set_image_state(REGION, pending, "pending")
    ec2.deregister_image(ImageId=gone)
    for image_id in (pending, gone):
        with pytest.raises(ClientError) as error:
            _launch(ec2, image_id, network)
        assert _code(error) == "InvalidAMIID.Unavailable"
    faithful.set_image_state(REGION, pending, "available")
    assert _launch(ec2, pending, network)["Instances"]
    assert _launch(ec2, "ami-12345678", network)["Instances"]  # an id moto never knew: left to moto


def test_e58_a_launch_is_pending_for_the_launch_time_and_stamped_on_the_fidelity_clock(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    faithful.instance_launch_time = timedelta(seconds=30)
    [instance] = _launch(ec2, image_id, network)["Instances"]
    instance_id = instance["InstanceId"]
    assert instance["State"]["Name"] == "pending"
    assert _state(ec2, instance_id)["State"] == {"Code": 0, "Name": "pending"}
    assert _state(ec2, instance_id)["LaunchTime"] == clock.now
    assert _statuses(ec2, instance_id) == {}  # DescribeInstanceStatus lists running instances only
    clock.advance(seconds=29)
    assert _state(ec2, instance_id)["State"]["Name"] == "pending"
    clock.advance(seconds=1)
    assert _state(ec2, instance_id)["State"] == {"Code": 16, "Name": "running"}


def test_e58_the_network_interface_tag_specification_tags_the_interface(faithful: MotoFidelity, ec2: Any) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    tags = {"ops-automation:restore-test": "t-1"}
    [instance] = _launch(ec2, image_id, network, TagSpecifications=_tag_specifications(**{"network-interface": tags}))[
        "Instances"
    ]
    [interface] = instance["NetworkInterfaces"]
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[interface["NetworkInterfaceId"]])
    assert described["NetworkInterfaces"][0]["TagSet"] == [{"Key": "ops-automation:restore-test", "Value": "t-1"}]
    assert "PublicIpAddress" not in _state(ec2, instance["InstanceId"])  # AssociatePublicIpAddress False (moto)
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    with pytest.raises(ClientError):  # DeleteOnTermination (moto)
        ec2.describe_network_interfaces(NetworkInterfaceIds=[interface["NetworkInterfaceId"]])


def test_e59_status_checks_initialize_then_pass(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    faithful.instance_launch_time = timedelta(seconds=20)
    faithful.status_check_time = timedelta(minutes=3)
    instance_id = _launch(ec2, image_id, network)["Instances"][0]["InstanceId"]
    assert _statuses(ec2, instance_id, IncludeAllInstances=True) == {
        "SystemStatus": "not-applicable",
        "InstanceStatus": "not-applicable",
        "AttachedEbsStatus": "not-applicable",
    }
    clock.advance(seconds=20)
    assert set(_statuses(ec2, instance_id).values()) == {"initializing"}
    [status] = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status["InstanceStatus"]["Details"] == [{"Name": "reachability", "Status": "initializing"}]
    clock.advance(minutes=3)
    assert set(_statuses(ec2, instance_id).values()) == {"ok"}
    [status] = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status["SystemStatus"]["Details"] == [{"Name": "reachability", "Status": "passed"}]
    assert status["InstanceState"] == {"Code": 16, "Name": "running"}


def test_e59_default_checks_pass_at_once_as_moto_answers(faithful: MotoFidelity, ec2: Any) -> None:
    instance_id = _instance(ec2)
    assert set(_statuses(ec2, instance_id).values()) == {"ok"}


@pytest.mark.parametrize(("which", "field"), [("instance", "InstanceStatus"), ("system", "SystemStatus")])
def test_e59_an_impaired_check_fails_with_impaired_since(
    faithful: MotoFidelity, ec2: Any, clock: Clock, which: str, field: str
) -> None:
    faithful.status_check_time = timedelta(minutes=3)
    launched = clock.now
    instance_id = _launch(ec2, _x86_image(ec2), _network(ec2))["Instances"][0]["InstanceId"]
    clock.advance(minutes=1)
    faithful.impair_instance(instance_id, which)
    [status] = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status[field] == {
        "Status": "impaired",
        "Details": [{"Name": "reachability", "Status": "failed", "ImpairedSince": launched}],
    }
    clock.advance(minutes=5)
    later = _statuses(ec2, instance_id)
    assert later[field] == "impaired" and list(later.values()).count("ok") == 2
    faithful.impair_instance(instance_id, which, impaired=False)
    assert set(_statuses(ec2, instance_id).values()) == {"ok"}
    faithful.impair_instance(instance_id, "ebs")
    [status] = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status["AttachedEbsStatus"]["Details"][0]["ImpairedSince"] == clock.now
    with pytest.raises(ValueError, match="which"):
        faithful.impair_instance(instance_id, "application")


def test_e59_a_start_initializes_the_checks_again(faithful: MotoFidelity, ec2: Any, clock: Clock) -> None:
    faithful.status_check_time = timedelta(minutes=2)
    instance_id = _instance(ec2)
    clock.advance(minutes=2)
    ec2.stop_instances(InstanceIds=[instance_id])
    assert _statuses(ec2, instance_id) == {}
    assert set(_statuses(ec2, instance_id, IncludeAllInstances=True).values()) == {"not-applicable"}
    ec2.start_instances(InstanceIds=[instance_id])
    assert set(_statuses(ec2, instance_id).values()) == {"initializing"}
    clock.advance(minutes=2)
    assert set(_statuses(ec2, instance_id).values()) == {"ok"}


def _described_volume(ec2: Any, volume_id: str) -> dict[str, Any]:
    return dict(ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])


def _source_snapshot(ec2: Any) -> str:
    volume_id = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=2)["VolumeId"]
    return str(ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"])


def test_e60_create_volume_honours_the_client_token(faithful: MotoFidelity, ec2: Any) -> None:
    snapshot_id = _source_snapshot(ec2)
    first = ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot_id, ClientToken="t-0")
    again = ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot_id, ClientToken="t-0")
    assert again["VolumeId"] == first["VolumeId"]
    with pytest.raises(ClientError) as error:
        ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot_id, ClientToken="t-0", VolumeType="gp3")
    assert _code(error) == "IdempotentParameterMismatch"
    elsewhere = ec2.create_volume(AvailabilityZone=f"{REGION}b", SnapshotId=snapshot_id, ClientToken="t-0")
    assert elsewhere["VolumeId"] != first["VolumeId"]  # the zone, like the Region, scopes the token
    other = ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot_id, ClientToken="t-1")
    assert other["VolumeId"] != first["VolumeId"]
    assert faithful.create_volume_attempts.count(snapshot_id) == 3


def test_e60_a_new_volume_is_creating_then_available_on_the_fidelity_clock(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    snapshot_id = _source_snapshot(ec2)
    faithful.volume_creation_time = timedelta(seconds=40)
    created = clock.now
    answer = ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot_id)
    volume_id = answer["VolumeId"]
    assert answer["State"] == "creating"
    assert _described_volume(ec2, volume_id)["CreateTime"] == created
    filtered = ec2.describe_volumes(Filters=[{"Name": "status", "Values": ["creating"]}])["Volumes"]
    assert [v["VolumeId"] for v in filtered] == [volume_id]
    with pytest.raises(ClientError) as error:
        ec2.delete_volume(VolumeId=volume_id)
    assert _code(error) == "IncorrectState"
    clock.advance(seconds=40)
    assert _described_volume(ec2, volume_id)["State"] == "available"
    ec2.delete_volume(VolumeId=volume_id)
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"] == []


def test_e60_a_volume_of_a_failing_snapshot_ends_in_error_and_can_be_deleted(
    faithful: MotoFidelity, ec2: Any, clock: Clock
) -> None:
    bad, good = _source_snapshot(ec2), _source_snapshot(ec2)
    faithful.volume_creation_time = timedelta(seconds=10)
    faithful.fail_volume_creation(bad)
    failing = ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=bad)["VolumeId"]
    healthy = ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=good)["VolumeId"]
    assert _described_volume(ec2, failing)["State"] == "creating"
    clock.advance(seconds=10)
    assert (_described_volume(ec2, failing)["State"], _described_volume(ec2, healthy)["State"]) == (
        "error",
        "available",
    )
    ec2.delete_volume(VolumeId=failing)
    faithful.set_volume_state(healthy, "error")
    assert _described_volume(ec2, healthy)["State"] == "error"
    faithful.set_volume_state(healthy, None)
    assert _described_volume(ec2, healthy)["State"] == "available"


def test_e60_defaults_keep_moto_s_available_volume(faithful: MotoFidelity, ec2: Any) -> None:
    answer = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)
    assert answer["State"] == "available"
    ec2.delete_volume(VolumeId=answer["VolumeId"])


def test_fault_injection_fails_run_instances_and_create_volume_the_given_times(
    faithful: MotoFidelity, ec2: Any
) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    faithful.fail_run_instances("InsufficientInstanceCapacity", times=2)
    for _ in range(2):
        with pytest.raises(ClientError) as error:
            _launch(ec2, image_id, network, ClientToken="restore-1")
        assert _code(error) == "InsufficientInstanceCapacity"
    assert _launch(ec2, image_id, network, ClientToken="restore-1")["Instances"]
    assert len(ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image_id]}])["Reservations"]) == 1
    faithful.fail_run_instances("VcpuLimitExceeded", image_id="ami-0000000000000000f", message="You have requested")
    assert _launch(ec2, image_id, network)["Instances"]  # another image: not this fault
    with pytest.raises(ClientError) as error:
        _launch(ec2, "ami-0000000000000000f", network)
    assert (_code(error), error.value.response["Error"]["Message"]) == ("VcpuLimitExceeded", "You have requested")
    snapshot_id = _source_snapshot(ec2)
    faithful.fail_create_volume("InsufficientVolumeCapacity", snapshot_id=snapshot_id)
    before = len(ec2.describe_volumes()["Volumes"])
    with pytest.raises(ClientError) as error:
        ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot_id)
    assert _code(error) == "InsufficientVolumeCapacity"
    assert len(ec2.describe_volumes()["Volumes"]) == before
    assert ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot_id)["VolumeId"]


# -- I2 for restore tests: RunInstances, TerminateInstances, CreateVolume, DeleteVolume, CreateTags (aws:TagKeys) ----

RESTORE_TEST = "ops-automation:restore-test"
RESTORE_KEYS = ["ops-automation:restore-result", "ops-automation:restore-tested"]
RESTORED = "arn:aws:ec2:*:*:{}/*"
TESTED = {"Null": {f"aws:RequestTag/{RESTORE_TEST}": "false"}}
TESTED_RESOURCE = {"Null": {f"aws:ResourceTag/{RESTORE_TEST}": "false"}}


def _restore_policy(subnet: str, group: str) -> str:
    """The shape of the restore-test statements of the worker policy (contract: Terraform section)."""
    return _document(
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": IMAGES,
            "Condition": _ownership("aws:ResourceTag"),
        },
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [
                f"arn:aws:ec2:{REGION}:{SPOKE}:subnet/{subnet}",
                f"arn:aws:ec2:{REGION}:{SPOKE}:security-group/{group}",
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateVolume"],
            "Resource": [RESTORED.format(kind) for kind in ("instance", "volume", "network-interface")],
            "Condition": TESTED,
        },
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": [RESTORED.format(kind) for kind in ("instance", "volume", "network-interface")],
            "Condition": {**TESTED, "StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateVolume"]}},
        },
        {
            "Effect": "Allow",
            "Action": ["ec2:TerminateInstances", "ec2:DeleteVolume"],
            "Resource": [RESTORED.format("instance"), RESTORED.format("volume")],
            "Condition": TESTED_RESOURCE,
        },
        {
            "Effect": "Allow",
            "Action": "ec2:CreateVolume",
            "Resource": SNAPSHOTS,
            "Condition": _ownership("aws:ResourceTag"),
        },
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": [IMAGES, SNAPSHOTS],
            "Condition": {
                **_ownership("aws:ResourceTag"),
                "ForAllValues:StringEquals": {"aws:TagKeys": RESTORE_KEYS},
            },
        },
    )


@dataclass(frozen=True)
class RestoreSpoke:
    spoke: Spoke
    network: Network
    image: str  # a backup: an AMI with the ownership tags
    snapshot: str  # its snapshot, with the ownership tags


@pytest.fixture
def restore_spoke(spoke: Spoke) -> RestoreSpoke:
    network = _network(spoke.admin)
    image = _backup(spoke.admin, spoke.tagged, "nightly-restore", OWNERSHIP)
    _session(_spoke_admin(), "iam").put_role_policy(
        RoleName="ops-automation-ami-backup",
        PolicyName="restore",
        PolicyDocument=_restore_policy(network.subnet, network.group),
    )
    return RestoreSpoke(spoke, network, image, _snapshots_of(spoke.admin, image)[0])


def _restored_tags(test_id: str = "t-1") -> dict[str, str]:
    return {**OWNERSHIP, RESTORE_TEST: test_id}


def _restore_launch(restore: RestoreSpoke, tags: dict[str, str] | None, **kwargs: Any) -> dict[str, Any]:
    specified = {kind: tags for kind in ("instance", "volume", "network-interface")} if tags else {}
    extra = {"TagSpecifications": _tag_specifications(**specified)} if specified else {}
    return _launch(restore.spoke.worker, restore.image, restore.network, **extra, **kwargs)


def _decided(fidelity: MotoFidelity, since: int) -> list[tuple[str, str, bool]]:
    return [(d.action, d.resource.split(":", 5)[5], d.allowed) for d in fidelity.iam.decisions[since:]]


def test_i2_run_instances_is_decided_on_every_resource_it_uses_and_creates(restore_spoke: RestoreSpoke) -> None:
    fidelity, network = restore_spoke.spoke.fidelity, restore_spoke.network
    since = len(fidelity.iam.decisions)
    [instance] = _restore_launch(restore_spoke, _restored_tags())["Instances"]
    assert _decided(fidelity, since) == [
        ("ec2:RunInstances", f"image/{restore_spoke.image}", True),
        ("ec2:RunInstances", f"subnet/{network.subnet}", True),
        ("ec2:RunInstances", f"security-group/{network.group}", True),
        ("ec2:RunInstances", "network-interface/*", True),
        ("ec2:CreateTags", "network-interface/*", True),
        ("ec2:RunInstances", "instance/*", True),
        ("ec2:CreateTags", "instance/*", True),
        ("ec2:RunInstances", "volume/*", True),
        ("ec2:CreateTags", "volume/*", True),
    ]
    since = len(fidelity.iam.decisions)
    restore_spoke.spoke.worker.terminate_instances(InstanceIds=[instance["InstanceId"]])
    assert _decided(fidelity, since) == [("ec2:TerminateInstances", f"instance/{instance['InstanceId']}", True)]


def test_i2_a_launch_without_the_restore_test_tag_or_elsewhere_is_unauthorized(restore_spoke: RestoreSpoke) -> None:
    worker, admin = restore_spoke.spoke.worker, restore_spoke.spoke.admin
    assert _denied(lambda: _restore_launch(restore_spoke, None)) == "UnauthorizedOperation"
    other = _network(admin)
    restored = {kind: _restored_tags() for kind in ("instance", "volume", "network-interface")}

    def launch() -> Any:
        return _launch(worker, restore_spoke.image, other, TagSpecifications=_tag_specifications(**restored))

    assert _denied(launch) == "UnauthorizedOperation"
    unowned = _backup(admin, restore_spoke.spoke.tagged, "golden")
    with pytest.raises(ClientError) as error:
        _launch(worker, unowned, restore_spoke.network)
    assert (
        f"ec2:RunInstances on resource: arn:aws:ec2:{REGION}::image/{unowned}"
        in error.value.response["Error"]["Message"]
    )
    assert (
        admin.describe_instances(Filters=[{"Name": "subnet-id", "Values": [restore_spoke.network.subnet]}])[
            "Reservations"
        ]
        == []
    )


def test_i2_terminate_instances_needs_the_restore_test_tag(restore_spoke: RestoreSpoke) -> None:
    spoke = restore_spoke.spoke
    assert _denied(lambda: spoke.worker.terminate_instances(InstanceIds=[spoke.tagged])) == "UnauthorizedOperation"
    assert _state(spoke.admin, spoke.tagged)["State"]["Name"] == "running"


def test_i2_create_and_delete_volume_of_an_owned_snapshot(restore_spoke: RestoreSpoke) -> None:
    fidelity, worker, admin = restore_spoke.spoke.fidelity, restore_spoke.spoke.worker, restore_spoke.spoke.admin
    since = len(fidelity.iam.decisions)
    specified = _tag_specifications(volume=_restored_tags())
    volume_id = worker.create_volume(
        AvailabilityZone=f"{REGION}a", SnapshotId=restore_spoke.snapshot, TagSpecifications=specified
    )["VolumeId"]
    assert _decided(fidelity, since) == [
        ("ec2:CreateVolume", "volume/*", True),
        ("ec2:CreateTags", "volume/*", True),
        ("ec2:CreateVolume", f"snapshot/{restore_spoke.snapshot}", True),
    ]
    untagged = lambda: worker.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=restore_spoke.snapshot)  # noqa: E731
    assert _denied(untagged) == "UnauthorizedOperation"
    foreign = admin.create_snapshot(VolumeId=_root_volume(admin, restore_spoke.spoke.untagged))["SnapshotId"]
    unowned = lambda: worker.create_volume(  # noqa: E731
        AvailabilityZone=f"{REGION}a", SnapshotId=foreign, TagSpecifications=specified
    )
    assert _denied(unowned) == "UnauthorizedOperation"
    other = admin.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    assert _denied(lambda: worker.delete_volume(VolumeId=other)) == "UnauthorizedOperation"
    worker.delete_volume(VolumeId=volume_id)
    assert [v["VolumeId"] for v in admin.describe_volumes()["Volumes"]].count(volume_id) == 0


def test_i2_create_tags_on_a_backup_is_limited_by_aws_tag_keys(restore_spoke: RestoreSpoke) -> None:
    worker = restore_spoke.spoke.worker
    result = [{"Key": RESTORE_KEYS[0], "Value": "passed"}, {"Key": RESTORE_KEYS[1], "Value": "2024-05-01T01"}]
    worker.create_tags(Resources=[restore_spoke.image, restore_spoke.snapshot], Tags=result)
    forged = [*result, {"Key": "ops-automation:policy", "Value": "weekly"}]
    call = lambda: worker.create_tags(Resources=[restore_spoke.image], Tags=forged)  # noqa: E731
    assert _denied(call) == "UnauthorizedOperation"
    tags = restore_spoke.spoke.admin.describe_images(ImageIds=[restore_spoke.image])["Images"][0]["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        **OWNERSHIP,
        RESTORE_KEYS[0]: "passed",
        RESTORE_KEYS[1]: "2024-05-01T01",
    }


def test_e61_block_device_mappings_merge_into_the_ami_s(faithful: MotoFidelity, ec2: Any) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    [root] = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    device, snapshot_id = root["DeviceName"], root["Ebs"]["SnapshotId"]
    mappings = [
        {"DeviceName": device, "Ebs": {"DeleteOnTermination": True, "VolumeType": "gp3"}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 3, "DeleteOnTermination": True}},
    ]
    [instance] = _launch(ec2, image_id, network, BlockDeviceMappings=mappings)["Instances"]
    attached = {m["DeviceName"]: m["Ebs"] for m in instance["BlockDeviceMappings"]}
    assert set(attached) == {device, "/dev/sdf"} and all(e["DeleteOnTermination"] for e in attached.values())
    volumes = {
        v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=[e["VolumeId"] for e in attached.values()])["Volumes"]
    }
    restored = volumes[attached[device]["VolumeId"]]
    assert (restored["SnapshotId"], restored["Size"], restored["VolumeType"]) == (
        snapshot_id,
        root["Ebs"]["VolumeSize"],
        "gp3",
    )
    assert volumes[attached["/dev/sdf"]["VolumeId"]]["Size"] == 3
    suppressed = [{"DeviceName": device, "NoDevice": ""}, {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 1}}]
    [bare] = _launch(ec2, image_id, network, BlockDeviceMappings=suppressed)["Instances"]
    assert [m["DeviceName"] for m in bare["BlockDeviceMappings"]] == ["/dev/sdg"]


def test_e61_a_security_group_of_a_network_interface_must_exist(faithful: MotoFidelity, ec2: Any) -> None:
    image_id, network = _x86_image(ec2), _network(ec2)
    with pytest.raises(ClientError) as error:
        _launch(ec2, image_id, Network(network.subnet, "sg-0123456789abcdef0"))
    assert _code(error) == "InvalidGroup.NotFound"
    with pytest.raises(ClientError) as error:
        _launch(ec2, image_id, Network("subnet-0123456789abcdef0", network.group))
    assert _code(error) == "InvalidSubnetID.NotFound"  # (moto)
    assert faithful.run_instances_attempts.count(image_id) == 1  # only the second got past E61 to moto
