"""The moto fidelity patches (tests/support/moto_fidelity.py) behave as the AWS documents they cite say.

Each test drives the patched moto through boto3, as the handlers do; the patch letters (E1..E10, D1..D4) are
the module's. Where AWS leaves a duration open, the tests use the patch's parameter, not a number of their own.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_harness import MOTO_ENVIRONMENT, REGION, START, Clock
from botocore.exceptions import ClientError
from moto import mock_aws
from tests.support.moto_fidelity import (
    DEFAULT_DEREGISTERED_LISTED_WINDOW,
    DEFAULT_SNAPSHOT_IN_USE_WINDOW,
    MotoFidelity,
    faithful_aws,
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


# -- D1-D4: deployments and the event flow -----------------------------------------------------------------


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
