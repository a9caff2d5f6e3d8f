"""work_handler end to end on moto (with the AWS-fidelity patches): create, complete, purge, and every bad path."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_harness import (
    LEDGER_TABLE,
    POLICY,
    REGION,
    Captured,
    Clock,
    Configure,
    FakeContext,
    Infra,
    ami_event,
    emitted_metrics,
    run_instances,
    sqs_event,
    take_messages,
    work_body,
)
from moto_aws_fidelity import MotoFidelity

from ops_automation import ami_backup, clients, tagging
from ops_automation.events import format_time

OWNERSHIP = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: POLICY}


class Fleet:
    """Drives the planner and the worker the way the deployed wiring does, with the test deciding when time passes."""

    def __init__(self, infra: Infra, clock: Clock) -> None:
        self.infra = infra
        self.clock = clock

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(ami_backup.work_handler(sqs_event(bodies), FakeContext()))

    def plan_and_create(self) -> list[dict[str, Any]]:
        """Planner run, then the worker on its messages; returns the check messages left on the queue."""
        ami_backup.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext())
        creates = take_messages()
        assert creates and all(message["kind"] == "create_image" for message in creates)
        assert self.work([work_body(message) for message in creates]) == {"batchItemFailures": []}
        checks = take_messages()
        assert all(message["kind"] == "check_image" for message in checks)
        return checks

    def day(self) -> list[str]:
        """One schedule slot: create, the `available` events, then the delayed checks; returns new image ids."""
        checks = self.plan_and_create()
        image_ids = [check["image_id"] for check in checks]
        assert self.work([ami_event(image_id, "available") for image_id in image_ids]) == {"batchItemFailures": []}
        self.clock.advance(minutes=15)
        assert self.work([work_body(check) for check in checks]) == {"batchItemFailures": []}
        assert take_messages() == []
        return image_ids

    def images(self, **tag_filters: str) -> dict[str, dict[str, Any]]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tag_filters.items()]
        images = self.infra.ec2.describe_images(Owners=["self"], Filters=filters)["Images"]
        return {image["ImageId"]: image for image in images}

    def snapshot_exists(self, snapshot_id: str) -> bool:
        snapshots = self.infra.ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])
        return bool(snapshots["Snapshots"])

    def ledger(self) -> dict[str, str]:
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
        return {item["resource_id"]["S"]: item["state"]["S"] for item in items}


@pytest.fixture
def fleet(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Fleet:
    return Fleet(infra, clock)


def _seed_image(infra: Infra, instance_id: str, name: str, tags: dict[str, str]) -> str:
    specs = [{"ResourceType": "image", "Tags": tagging.tag_list(tags)}] if tags else []
    image_id: str = infra.ec2.create_image(InstanceId=instance_id, Name=name, TagSpecifications=specs)["ImageId"]
    return image_id


def test_create_tags_image_and_snapshot_copies_instance_tags_and_schedules_a_check(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly", "Name": "web-1", "ops-automation:policy": "forged"})[0]
    configure()
    requests: list[dict[str, Any]] = []
    ami_backup.runtime().clients.client("ec2").meta.events.register(
        "provide-client-params.ec2.CreateImage", lambda params, **_: requests.append(params)
    )

    [check] = fleet.plan_and_create()

    slot = format_time(clock.now)
    image = fleet.images()[check["image_id"]]
    expected_tags = {
        **OWNERSHIP,
        tagging.SOURCE_INSTANCE: instance,
        tagging.SLOT: slot,
        "Backup": "nightly",
        "Name": "web-1",
    }
    assert tagging.tag_dict(image["Tags"]) == expected_tags
    snapshot = infra.ec2.describe_snapshots(SnapshotIds=[fidelity.snapshot_of(REGION, image["ImageId"])])["Snapshots"][
        0
    ]
    assert tagging.tag_dict(snapshot["Tags"]) == expected_tags
    assert image["Name"] == f"{POLICY}-{instance}-{clock.now:%Y%m%dT%H%M%SZ}"
    assert requests[0]["NoReboot"] is True
    assert [spec["ResourceType"] for spec in requests[0]["TagSpecifications"]] == ["image", "snapshot"]
    assert check["deadline"] == format_time(clock.now + timedelta(minutes=60))
    assert check["_delayed_until_ms"] > 0
    assert fleet.ledger() == {image["ImageId"]: "pending"}


def test_worker_copies_the_carried_tags_without_describing_any_instance(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, api_calls: Counter[str]
) -> None:
    instances = [run_instances(infra.ec2, 1, {"Backup": "nightly", "Name": f"web-{n}"})[0] for n in range(5)]
    configure()
    ami_backup.plan_handler({"scheduled_time": format_time(clock.now)}, FakeContext())
    creates = take_messages()
    api_calls.clear()

    assert fleet.work([work_body(message) for message in creates]) == {"batchItemFailures": []}

    assert api_calls["ec2.CreateImage"] == len(instances)
    assert api_calls["ec2.DescribeInstances"] == 0
    images = fleet.images()
    assert len(images) == len(instances)
    for image in images.values():
        instance = tagging.tag_dict(image["Tags"])[tagging.SOURCE_INSTANCE]
        expected = {
            **OWNERSHIP,
            tagging.SOURCE_INSTANCE: instance,
            tagging.SLOT: format_time(clock.now),
            "Backup": "nightly",
            "Name": f"web-{instances.index(instance)}",
        }
        assert tagging.tag_dict(image["Tags"]) == expected
        snapshot_id = fidelity.snapshot_of(REGION, image["ImageId"])
        [snapshot] = infra.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        assert tagging.tag_dict(snapshot["Tags"]) == expected


def test_create_message_of_an_older_planner_gets_ownership_tags_only(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, api_calls: Counter[str]
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly", "Name": "web-1"})[0]
    configure()
    slot = format_time(clock.now)
    old_format = {"kind": "create_image", "policy": POLICY, "instance_id": instance, "region": REGION}

    assert fleet.work([json.dumps({**old_format, "role_arn": None, "slot": slot})]) == {"batchItemFailures": []}

    [image] = fleet.images().values()
    expected = {**OWNERSHIP, tagging.SOURCE_INSTANCE: instance, tagging.SLOT: slot}
    assert tagging.tag_dict(image["Tags"]) == expected
    [snapshot] = infra.ec2.describe_snapshots(SnapshotIds=[fidelity.snapshot_of(REGION, image["ImageId"])])["Snapshots"]
    assert tagging.tag_dict(snapshot["Tags"]) == expected
    assert api_calls["ec2.DescribeInstances"] == 0
    assert [check["image_id"] for check in take_messages()] == [image["ImageId"]]


def test_carried_tags_are_not_part_of_the_idempotency_key(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock, api_calls: Counter[str]
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure()
    message = {"kind": "create_image", "policy": POLICY, "instance_id": instance, "region": REGION}
    message |= {"role_arn": None, "slot": format_time(clock.now)}
    fleet.work([json.dumps({**message, "instance_tags": {"Name": "before"}})])
    api_calls.clear()

    # Re-tagged between two plannings of the same slot: still the same work item, answered from its record.
    fleet.work([json.dumps({**message, "instance_tags": {"Name": "after"}})])

    assert not [call for call in api_calls if call.startswith("ec2.")]
    [image] = fleet.images().values()
    assert tagging.tag_dict(image["Tags"])["Name"] == "before"


def test_a_week_of_backups_keeps_exactly_n_generations_and_touches_nothing_else(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, capsys: Any, logs: Captured
) -> None:
    instances = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    target = instances[0]
    # Older than every backup, so a rule that mistook them for ours would delete them first.
    clock.now -= timedelta(days=30)
    bystanders = {
        "unmanaged, same source tag": _seed_image(infra, target, "manual", {tagging.SOURCE_INSTANCE: target}),
        "policy tag without managed-by": _seed_image(
            infra, target, "half", {tagging.POLICY: POLICY, tagging.SOURCE_INSTANCE: target}
        ),
        "another policy": _seed_image(
            infra,
            target,
            "weekly",
            {**OWNERSHIP, tagging.POLICY: "weekly", tagging.SOURCE_INSTANCE: target, tagging.SLOT: "x"},
        ),
    }
    clock.now += timedelta(days=30)
    configure(OPS_GENERATIONS="3")

    created: list[list[str]] = []
    snapshot_of: dict[str, str] = {}
    for day in range(6):
        created.append(fleet.day())
        snapshot_of.update({image_id: fidelity.snapshot_of(REGION, image_id) for image_id in created[-1]})
        if day == 0:
            # An AMI someone registered from our first backup's snapshot: that snapshot must survive the purge.
            shared_snapshot = fidelity.snapshot_of(REGION, created[0][0])
            borrower = _seed_image(infra, instances[1], "borrower", {})
            fidelity.share_snapshot(REGION, borrower, shared_snapshot)
        clock.advance(days=1)

    for instance in instances:
        remaining = fleet.images(**{tagging.POLICY: POLICY, tagging.SOURCE_INSTANCE: instance})
        owned = {image_id for image_id, image in remaining.items() if tagging.is_owned(image["Tags"], POLICY)}
        newest = {image_id for ids in created[-3:] for image_id in ids}
        assert len(owned) == 3
        assert owned <= newest
    all_images = fleet.images()
    assert set(bystanders.values()) <= set(all_images)
    assert borrower in all_images

    purged = [image_id for ids in created[:3] for image_id in ids]
    assert not set(purged) & set(all_images)
    assert [fleet.snapshot_exists(snapshot_of[image_id]) for image_id in purged] == [
        snapshot_of[image_id] == shared_snapshot for image_id in purged
    ]
    assert all(fleet.snapshot_exists(snapshot_of[image_id]) for ids in created[3:] for image_id in ids)
    # Kept by our own check (one DescribeImages over all candidates), not by a refused DeleteSnapshot.
    assert [r["snapshot_id"] for r in logs.matching("INFO", "snapshot kept: another AMI uses it")] == [shared_snapshot]
    assert logs.matching("INFO", "snapshot skipped") == []
    owned_snapshots = [
        snapshot
        for snapshot in infra.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if tagging.is_owned(snapshot.get("Tags"), POLICY)
    ]
    # 6 kept backups, plus the purged one whose snapshot another AMI still uses.
    assert len(owned_snapshots) == 7

    ledger = fleet.ledger()
    assert {ledger[image_id] for image_id in purged} == {"deleted"}
    assert {ledger[image_id] for ids in created[3:] for image_id in ids} == {"available"}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["BackupsCreated"] == 12
    assert metrics["BackupsDeleted"] == 6
    assert metrics["SnapshotsDeleted"] == 5
    assert metrics["BackupsFailed"] == 0


def test_repeated_delivery_of_the_same_slot_makes_one_ami(
    fleet: Fleet, infra: Infra, configure: Configure, capsys: Any
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure()
    ami_backup.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    [create] = take_messages()

    fleet.work([work_body(create)])
    fleet.work([work_body(create)])  # SQS at-least-once: same message again, served by the idempotency record
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName="ops-automation-nightly-idempotency")
    infra.dynamodb.create_table(
        TableName="ops-automation-nightly-idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    fleet.work([work_body(create)])  # idempotency record expired: the deterministic name finds the AMI

    assert len(fleet.images()) == 1
    checks = take_messages()
    assert {check["image_id"] for check in checks} == set(fleet.images())


def test_a_lost_race_on_the_ami_name_adopts_the_winner(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure()
    slot = format_time(clock.now)
    ec2 = ami_backup.runtime().clients.client("ec2")
    name = ami_backup.ami_name(POLICY, instance, slot)
    raced: list[str] = []

    def concurrent_delivery(**_: Any) -> None:
        # Another worker creates the same slot's AMI between our lookup and our CreateImage.
        if not raced:
            raced.append(_seed_image(infra, instance, name, {**OWNERSHIP, tagging.SOURCE_INSTANCE: instance}))

    ec2.meta.events.register("before-call.ec2.CreateImage", concurrent_delivery)
    message = {"kind": "create_image", "policy": POLICY, "instance_id": instance, "region": REGION}
    fleet.work([json.dumps({**message, "role_arn": None, "slot": slot})])

    assert list(fleet.images()) == raced
    assert [check["image_id"] for check in take_messages()] == raced


def test_instance_terminated_mid_run_is_reported_and_not_retried(
    fleet: Fleet, infra: Infra, configure: Configure, capsys: Any, logs: Captured
) -> None:
    doomed, survivor = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure()
    ami_backup.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    infra.ec2.terminate_instances(InstanceIds=[doomed])

    result = fleet.work([work_body(message) for message in take_messages()])

    assert result == {"batchItemFailures": []}
    assert [tagging.tag_dict(i["Tags"])[tagging.SOURCE_INSTANCE] for i in fleet.images().values()] == [survivor]
    [error] = logs.matching("ERROR", "instance cannot be backed up")
    assert (error["instance_id"], error["error_code"]) == (doomed, "IncorrectInstanceState")
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 1


def test_malformed_record_fails_alone_with_a_reason(
    fleet: Fleet, infra: Infra, configure: Configure, logs: Captured
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure()
    ami_backup.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    event = sqs_event(["{not json", *(work_body(message) for message in take_messages())])

    result = ami_backup.work_handler(event, FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    [error] = logs.matching("ERROR", "malformed work item")
    assert "not JSON" in error["reason"]
    assert len(fleet.images()) == 1


def test_message_for_another_policy_is_rejected(fleet: Fleet, configure: Configure) -> None:
    configure()
    body = json.dumps(
        {"kind": "create_image", "policy": "weekly", "instance_id": "i-01234567", "region": REGION}
        | {"role_arn": None, "slot": "2024-05-01T01:00:00Z"}
    )
    event = sqs_event([body, ami_event("ami-0123456789abcdef0", "deregistered")])
    result = ami_backup.work_handler(event, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_throttled_record_fails_and_succeeds_on_redelivery_while_others_succeed(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttled, fine = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    # Two retries instead of ten keep the test fast; the retry path is the same.
    monkeypatch.setattr(clients, "RETRY_CONFIG", clients.Config(retries={"mode": "adaptive", "max_attempts": 2}))
    configure()
    fidelity.fail_create_image(throttled, "RequestLimitExceeded")
    ami_backup.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    creates = {message["instance_id"]: message for message in take_messages()}
    event = sqs_event([work_body(creates[throttled]), work_body(creates[fine])])

    result = ami_backup.work_handler(event, FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    # botocore's max_attempts counts retries: the first try plus 2, then the error reaches our code.
    assert fidelity.create_image_attempts == [throttled] * 3 + [fine]
    sources = [tagging.tag_dict(image["Tags"])[tagging.SOURCE_INSTANCE] for image in fleet.images().values()]
    assert sources == [fine]

    # SQS redelivers after the visibility timeout and EC2 has calmed down. The failed attempt left no
    # idempotency record behind, so the redelivery really creates the AMI.
    fidelity.fail_create_image(throttled, None)
    assert fleet.work([work_body(creates[throttled])]) == {"batchItemFailures": []}
    assert len(fleet.images()) == 2


def test_failed_ami_purges_nothing_and_alerts_once(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, capsys: Any, logs: Captured
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1")
    first = fleet.day()
    clock.advance(days=1)
    [check] = fleet.plan_and_create()
    fidelity.set_image_state(REGION, check["image_id"], "failed")

    assert fleet.work([ami_event(check["image_id"], "failed")]) == {"batchItemFailures": []}
    assert fleet.work([work_body(check)]) == {"batchItemFailures": []}

    assert set(fleet.images()) == {*first, check["image_id"]}
    assert fleet.ledger()[check["image_id"]] == "failed"
    assert take_messages() == []
    assert len(logs.matching("ERROR", "backup failed; nothing purged")) == 2
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["BackupsFailed"], metrics["BackupsDeleted"]) == (1, 0)


def test_pending_image_is_rechecked_then_alerts_past_the_deadline_and_purges_nothing(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, capsys: Any, logs: Captured
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1", OPS_COMPLETION_TIMEOUT_MINUTES="20")
    first = fleet.day()
    clock.advance(days=1)
    [check] = fleet.plan_and_create()
    fidelity.set_image_state(REGION, check["image_id"], "pending")

    clock.advance(minutes=15)
    assert fleet.work([work_body(check)]) == {"batchItemFailures": []}
    [recheck] = take_messages()
    assert recheck == check | {"_delayed_until_ms": recheck["_delayed_until_ms"]}

    clock.advance(minutes=6)
    assert fleet.work([work_body(recheck)]) == {"batchItemFailures": []}

    assert take_messages() == []
    assert set(fleet.images()) == {*first, check["image_id"]}
    [alert] = logs.matching("ERROR", "backup still pending past its deadline; nothing purged")
    assert alert["instance_id"] and alert["image_id"] == check["image_id"]
    assert fleet.ledger()[check["image_id"]] == "pending"
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 1


def test_state_change_of_an_image_we_do_not_own_is_ignored(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock, logs: Captured
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure(OPS_GENERATIONS="1")
    fleet.day()
    clock.advance(days=1)
    foreign = _seed_image(
        infra, instance, "other", {**OWNERSHIP, tagging.POLICY: "weekly", tagging.SOURCE_INSTANCE: instance}
    )
    before = set(fleet.images())

    assert fleet.work([ami_event(foreign, "available"), ami_event("ami-0123456789abcdef0", "available")]) == {
        "batchItemFailures": []
    }

    assert set(fleet.images()) == before
    assert len(logs.matching("INFO", "image not managed by this policy; ignored")) == 1
    assert len(logs.matching("INFO", "image not found; not ours to complete")) == 1


def test_one_failing_snapshot_deletion_does_not_stop_the_others_and_retries_the_message(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock
) -> None:
    run_instances(infra.ec2, 3, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1")
    first = fleet.day()
    clock.advance(days=1)
    checks = fleet.plan_and_create()
    snapshots = {image_id: fidelity.snapshot_of(REGION, image_id) for image_id in first}
    broken = snapshots[first[0]]

    def fail_one(params: dict[str, Any], **_: Any) -> Any:
        if params["SnapshotId"] == broken:
            raise ami_backup.ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "DeleteSnapshot")
        return None

    ami_backup.runtime().clients.client("ec2").meta.events.register(
        "provide-client-params.ec2.DeleteSnapshot", fail_one
    )
    event = sqs_event([ami_event(check["image_id"], "available") for check in checks])

    result = ami_backup.work_handler(event, FakeContext())

    failed = [item["itemIdentifier"] for item in result["batchItemFailures"]]
    assert len(failed) == 1
    assert fleet.snapshot_exists(broken)
    assert not any(fleet.snapshot_exists(snapshots[image_id]) for image_id in first[1:])
    assert not set(first) & set(fleet.images())


def test_ledger_records_the_account_and_region_of_each_backup(fleet: Fleet, infra: Infra, configure: Configure) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure()
    [image_id] = fleet.day()
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    assert [(item["pk"]["S"], item["sk"]["S"].split("#")[1]) for item in items] == [
        (f"ami-backup#{POLICY}#local#{REGION}#{instance}", image_id)
    ]
    assert int(items[0]["expires_at"]["N"]) > 0
    assert Counter(item["state"]["S"] for item in items) == Counter({"available": 1})


def test_cross_account_backup_goes_through_the_target_role(fleet: Fleet, configure: Configure, clock: Clock) -> None:
    spoke_account = "111122223333"
    role = f"arn:aws:iam::{spoke_account}:role/ops-automation-target"
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role, RoleSessionName="setup")[
        "Credentials"
    ]
    spoke_ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    instance = run_instances(spoke_ec2, 1, {"Backup": "nightly"})[0]
    configure(OPS_TARGET_ROLE_ARNS=json.dumps([role]), OPS_GENERATIONS="1")

    checks = fleet.plan_and_create()
    assert [(check["role_arn"], check["instance_id"]) for check in checks] == [(role, instance)]
    assert fleet.images() == {}  # nothing in the hub account
    [first] = spoke_ec2.describe_images(Owners=["self"])["Images"]

    # The spoke's EventBridge event names its account: the worker finds the role for it.
    assert fleet.work([ami_event(first["ImageId"], "available", account=spoke_account)]) == {"batchItemFailures": []}
    clock.advance(days=1)
    [second] = fleet.plan_and_create()
    assert fleet.work([ami_event(second["image_id"], "available", account=spoke_account)]) == {"batchItemFailures": []}

    assert [image["ImageId"] for image in spoke_ec2.describe_images(Owners=["self"])["Images"]] == [second["image_id"]]
    pks = {
        item["pk"]["S"] for item in boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    }
    assert pks == {f"ami-backup#{POLICY}#{spoke_account}#{REGION}#{instance}"}
    assert fleet.ledger() == {first["ImageId"]: "deleted", second["image_id"]: "available"}


def test_purged_image_whose_snapshot_lacks_ownership_tags_keeps_the_snapshot(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, logs: Captured
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    clock.now -= timedelta(days=1)
    # Ours by its image tags, but its snapshot was never tagged (e.g. made before snapshot tagging existed).
    legacy = _seed_image(infra, instance, "legacy", {**OWNERSHIP, tagging.SOURCE_INSTANCE: instance})
    legacy_snapshot = fidelity.snapshot_of(REGION, legacy)
    clock.now += timedelta(days=1)
    configure(OPS_GENERATIONS="1")

    fleet.day()

    assert legacy not in fleet.images()
    assert fleet.snapshot_exists(legacy_snapshot)
    assert [r["snapshot_id"] for r in logs.matching("WARNING", "snapshot kept: no ownership tags")] == [legacy_snapshot]
