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
    alerts_sent,
    ami_event,
    assumed_client,
    emitted_metrics,
    run_instances,
    sqs_event,
    take_messages,
    work_body,
)
from botocore.exceptions import ClientError
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.ami_backup import handlers
from ops_automation.ami_backup.decisions import ami_name
from ops_automation.core import purge, tagging
from ops_automation.core.events import format_time

OWNERSHIP = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: POLICY}


class Fleet:
    """Drives the planner and the worker the way the deployed wiring does, with the test deciding when time passes."""

    def __init__(self, infra: Infra, clock: Clock) -> None:
        self.infra = infra
        self.clock = clock

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def plan_and_create(self) -> list[dict[str, Any]]:
        """Planner run, then the worker on its messages; returns the check messages left on the queue."""
        handlers.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext())
        creates = take_messages()
        assert creates and all(message["kind"] == "create_image" for message in creates)
        assert self.work([work_body(message) for message in creates]) == {"batchItemFailures": []}
        checks = take_messages()
        assert all(message["kind"] == "check" for message in checks)
        return checks

    def drain(self) -> Counter[str]:
        """Let time pass and handle every delayed message (checks, snapshot purges) until the queue is empty."""
        handled: Counter[str] = Counter()
        for _round in range(50):
            messages = take_messages()
            if not messages:
                return handled
            self.clock.advance(minutes=15)
            handled.update(message["kind"] for message in messages)
            assert self.work([work_body(message) for message in messages]) == {"batchItemFailures": []}
        raise AssertionError("the work queue never drained")

    def day(self) -> list[str]:
        """One schedule slot: create, the `available` events, then the delayed work; returns new image ids."""
        checks = self.plan_and_create()
        image_ids = [check["resource_id"] for check in checks]
        assert self.work([ami_event(image_id, "available") for image_id in image_ids]) == {"batchItemFailures": []}
        leftover = take_messages()
        self.clock.advance(minutes=15)
        assert self.work([work_body(message) for message in [*checks, *leftover]]) == {"batchItemFailures": []}
        self.drain()
        return image_ids

    def images(self, **tag_filters: str) -> dict[str, dict[str, Any]]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tag_filters.items()]
        images = self.infra.ec2.describe_images(Owners=["self"], Filters=filters)["Images"]
        # DescribeImages lists a deregistered AMI for a few minutes more; it is gone all the same.
        return {image["ImageId"]: image for image in images if image["State"] != "deregistered"}

    def snapshot_exists(self, snapshot_id: str) -> bool:
        snapshots = self.infra.ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])
        return bool(snapshots["Snapshots"])

    def ledger(self) -> dict[str, str]:
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
        return {item["sk"]["S"]: item["state"]["S"] for item in items}


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
    handlers.worker_runtime().clients.client("ec2").meta.events.register(
        "provide-client-params.ec2.CreateImage", lambda params, **_: requests.append(params)
    )

    [check] = fleet.plan_and_create()

    slot = format_time(clock.now)
    image = fleet.images()[check["resource_id"]]
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
    handlers.plan_handler({"scheduled_time": format_time(clock.now)}, FakeContext())
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
    assert [check["resource_id"] for check in take_messages()] == [image["ImageId"]]


def test_carried_tags_do_not_make_a_second_backup_of_the_slot(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock, api_calls: Counter[str]
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure()
    message = {"kind": "create_image", "policy": POLICY, "instance_id": instance, "region": REGION}
    message |= {"role_arn": None, "slot": format_time(clock.now)}
    fleet.work([json.dumps({**message, "instance_tags": {"Name": "before"}})])
    api_calls.clear()

    # Re-tagged between two plannings of the same slot: the name collides and the first image is adopted.
    fleet.work([json.dumps({**message, "instance_tags": {"Name": "after"}})])

    assert {call: n for call, n in api_calls.items() if call.startswith("ec2.")} == {
        "ec2.CreateImage": 1,
        "ec2.DescribeImages": 1,
    }
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
    assert logs.matching("WARNING", "snapshot deletion deferred") == []
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
    # Retirements are counted in the logs, not as metrics (each metric name is billed per active hour).
    assert set(metrics) == {"BackupsCreated"}
    assert sum(r["deregistered"] for r in logs.matching("INFO", "retention applied")) == 6
    assert len(logs.matching("INFO", "snapshot deleted")) == 5
    assert metrics["BackupsFailed"] == 0


def test_repeated_delivery_of_the_same_slot_makes_one_ami(
    fleet: Fleet, infra: Infra, configure: Configure, capsys: Any
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure()
    handlers.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    [create] = take_messages()

    fleet.work([work_body(create)])
    fleet.work([work_body(create)])  # SQS at-least-once: the deterministic name finds the AMI

    assert len(fleet.images()) == 1
    checks = take_messages()
    assert {check["resource_id"] for check in checks} == set(fleet.images())
    [image_id] = fleet.images()
    # Completed meanwhile: a third delivery adopts the image but schedules no second check.
    fleet.work([ami_event(image_id, "available")])
    fleet.work([work_body(create)])
    assert [m for m in take_messages() if m["kind"] == "check"] == []


def test_a_lost_race_on_the_ami_name_adopts_the_winner(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure()
    slot = format_time(clock.now)
    ec2 = handlers.worker_runtime().clients.client("ec2")
    name = ami_name(POLICY, instance, slot)
    raced: list[str] = []

    def concurrent_delivery(**_: Any) -> None:
        # Another worker creates the same slot's AMI just before our CreateImage.
        if not raced:
            raced.append(_seed_image(infra, instance, name, {**OWNERSHIP, tagging.SOURCE_INSTANCE: instance}))

    ec2.meta.events.register("before-call.ec2.CreateImage", concurrent_delivery)
    message = {"kind": "create_image", "policy": POLICY, "instance_id": instance, "region": REGION}
    fleet.work([json.dumps({**message, "role_arn": None, "slot": slot})])

    assert list(fleet.images()) == raced
    assert [check["resource_id"] for check in take_messages()] == raced


def test_instance_terminated_mid_run_is_reported_and_not_retried(
    fleet: Fleet, infra: Infra, configure: Configure, capsys: Any, logs: Captured
) -> None:
    doomed, survivor = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure()
    handlers.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    infra.ec2.terminate_instances(InstanceIds=[doomed])

    result = fleet.work([work_body(message) for message in take_messages()])

    assert result == {"batchItemFailures": []}
    assert [tagging.tag_dict(i["Tags"])[tagging.SOURCE_INSTANCE] for i in fleet.images().values()] == [survivor]
    [alert] = alerts_sent()
    assert (alert["alert"], alert["instance_id"], alert["error_code"]) == (
        "instance cannot be backed up",
        doomed,
        "IncorrectInstanceState",
    )
    assert "terminated" in alert["reason"]
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 1


def test_instance_stopping_at_the_slot_is_retried_until_it_can_be_imaged(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, monkeypatch: pytest.MonkeyPatch
) -> None:
    [instance] = run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure()
    handlers.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    [create] = take_messages()
    fidelity.set_instance_state(REGION, instance, "stopping")
    deferred: list[int] = []
    sqs = handlers.worker_runtime().clients.client("sqs")
    sqs.meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility",
        lambda params, **_: deferred.append(params["VisibilityTimeout"]),
    )

    result = fleet.work([work_body(create)])

    # Not failed, not cached as done: handed back to SQS with a short back-off, no alert.
    assert len(result["batchItemFailures"]) == 1
    assert deferred == [30]
    assert fleet.images() == {} and alerts_sent() == []
    fidelity.set_instance_state(REGION, instance, "stopped")
    assert fleet.work([work_body(create)]) == {"batchItemFailures": []}
    assert len(fleet.images()) == 1


def test_malformed_record_fails_alone_with_a_reason(
    fleet: Fleet, infra: Infra, configure: Configure, logs: Captured
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure()
    handlers.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    event = sqs_event(["{not json", *(work_body(message) for message in take_messages())])

    result = handlers.work_handler(event, FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    [error] = logs.matching("ERROR", "malformed work item")
    assert "not JSON" in error["reason"]
    assert len(fleet.images()) == 1


def test_an_item_failing_on_its_last_receive_is_named_in_an_alert_before_the_dead_letter_queue(
    fleet: Fleet, configure: Configure
) -> None:
    configure()
    body = '{"kind": "delete_everything"}'

    early = handlers.work_handler(sqs_event([body], receive_count=9), FakeContext())
    assert len(early["batchItemFailures"]) == 1 and alerts_sent() == []

    last = handlers.work_handler(sqs_event([body], receive_count=10), FakeContext())

    # Still failed (the redrive moves it to the DLQ, whose alarm cannot say what it was), and named first.
    assert len(last["batchItemFailures"]) == 1
    [alert] = alerts_sent()
    assert (alert["alert"], alert["body"], alert["why"]) == (
        "work item given up to the dead-letter queue",
        body,
        "malformed",
    )


def test_message_for_another_policy_is_rejected(fleet: Fleet, configure: Configure) -> None:
    configure()
    body = json.dumps(
        {"kind": "create_image", "policy": "weekly", "instance_id": "i-01234567", "region": REGION}
        | {"role_arn": None, "slot": "2024-05-01T01:00:00Z"}
    )
    event = sqs_event([body, ami_event("ami-0123456789abcdef0", "deregistered")])
    result = handlers.work_handler(event, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_throttling_backs_off_through_sqs_and_spares_the_rest_of_the_batch(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity
) -> None:
    throttled, spared = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure()
    fidelity.fail_create_image(throttled, "RequestLimitExceeded")
    handlers.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    creates = {message["instance_id"]: message for message in take_messages()}
    deferred: list[int] = []
    handlers.worker_runtime().clients.client("sqs").meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility",
        lambda params, **_: deferred.append(params["VisibilityTimeout"]),
    )
    event = sqs_event([work_body(creates[throttled]), work_body(creates[spared])])

    result = handlers.work_handler(event, FakeContext())

    # Both handed back: the throttled one after botocore's few retries, the other without calling EC2 at all,
    # so one slot does not keep hammering the account's shared token bucket.
    assert sorted(item["itemIdentifier"] for item in result["batchItemFailures"]) == sorted(
        record["messageId"] for record in event["Records"]
    )
    assert fidelity.create_image_attempts == [throttled] * 4
    assert deferred == [30, 30]
    assert fleet.images() == {}

    # SQS hands them out again after the back-off and EC2 has calmed down.
    fidelity.fail_create_image(throttled, None)
    assert fleet.work([work_body(creates[throttled]), work_body(creates[spared])]) == {"batchItemFailures": []}
    assert len(fleet.images()) == 2


def test_a_late_record_is_handed_back_before_the_invocation_nears_its_timeout(
    fleet: Fleet, infra: Infra, configure: Configure
) -> None:
    run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure()
    handlers.plan_handler({"scheduled_time": "2024-05-01T01:00:00Z"}, FakeContext())
    bodies = [work_body(message) for message in take_messages()]
    # 300 s at the start; after the first record only 100 s are left (two thirds used, more than the budget).
    context = FakeContext(remaining_ms=[300_000, 300_000, 100_000])

    result = handlers.work_handler(sqs_event(bodies), context)

    assert len(result["batchItemFailures"]) == 1
    assert len(fleet.images()) == 1


def test_a_batch_of_only_rejected_records_reports_them_like_any_other_batch(fleet: Fleet, configure: Configure) -> None:
    configure()
    event = sqs_event(["{not json", '{"kind": "delete_everything"}'])
    # Powertools' default would raise here (function error, whole batch retried) but not in a mixed batch.
    result = handlers.work_handler(event, FakeContext())
    assert sorted(item["itemIdentifier"] for item in result["batchItemFailures"]) == sorted(
        record["messageId"] for record in event["Records"]
    )


def test_failed_ami_purges_nothing_and_alerts_once(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, capsys: Any, logs: Captured
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1")
    first = fleet.day()
    clock.advance(days=1)
    [check] = fleet.plan_and_create()

    fidelity.set_image_state(REGION, check["resource_id"], "failed")

    assert fleet.work([ami_event(check["resource_id"], "failed")]) == {"batchItemFailures": []}
    assert fleet.work([work_body(check)]) == {"batchItemFailures": []}

    assert set(fleet.images()) == {*first, check["resource_id"]}
    assert fleet.ledger()[check["resource_id"]] == "failed"
    assert take_messages() == []
    [alert] = alerts_sent()
    assert (alert["alert"], alert["resource_id"], alert["source_id"]) == (
        "backup failed; nothing purged",
        check["resource_id"],
        check["source_id"],
    )
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["BackupsFailed"] == 1


def test_pending_image_is_rechecked_then_alerts_past_the_deadline_and_purges_nothing(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, capsys: Any, logs: Captured
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1", OPS_COMPLETION_TIMEOUT_MINUTES="20")
    first = fleet.day()
    clock.advance(days=1)
    [check] = fleet.plan_and_create()
    fidelity.set_image_state(REGION, check["resource_id"], "pending")

    clock.advance(minutes=15)
    assert fleet.work([work_body(check)]) == {"batchItemFailures": []}
    [recheck] = take_messages()
    assert recheck == check | {"_delayed_until_ms": recheck["_delayed_until_ms"]}

    clock.advance(minutes=6)
    assert fleet.work([work_body(recheck)]) == {"batchItemFailures": []}

    assert take_messages() == []
    assert set(fleet.images()) == {*first, check["resource_id"]}
    [alert] = alerts_sent()
    assert alert["resource_id"] == check["resource_id"] and "past its deadline" in alert["reason"]
    assert fleet.ledger()[check["resource_id"]] == "failed"
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 1

    # The AMI completes after all: the late event still makes it a good backup and runs retention.
    fidelity.set_image_state(REGION, check["resource_id"], "available")
    assert fleet.work([ami_event(check["resource_id"], "available")]) == {"batchItemFailures": []}
    assert fleet.ledger()[check["resource_id"]] == "available"
    assert set(fleet.images()) == {check["resource_id"]}


def test_state_change_of_an_image_we_do_not_own_is_answered_from_the_ledger_without_ec2(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock, logs: Captured, api_calls: Counter[str]
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure(OPS_GENERATIONS="1")
    fleet.day()
    clock.advance(days=1)
    foreign = _seed_image(
        infra, instance, "other", {**OWNERSHIP, tagging.POLICY: "weekly", tagging.SOURCE_INSTANCE: instance}
    )
    before = set(fleet.images())
    api_calls.clear()

    assert fleet.work([ami_event(foreign, "available"), ami_event("ami-0123456789abcdef0", "available")]) == {
        "batchItemFailures": []
    }

    assert set(fleet.images()) == before
    assert len(logs.matching("INFO", "not this policy's resource; ignored")) == 2
    # Image Builder, CI bakes, other policies: one GetItem each, no DescribeImages on the account's EC2 API.
    assert api_calls == Counter({"dynamodb.GetItem": 2})


def _retire_first_generation(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock
) -> tuple[list[str], dict[str, Any]]:
    """Day 1 backups, then day 2 retires them: returns day 1's images and the purge message left on the queue."""
    run_instances(infra.ec2, 3, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1")
    first = fleet.day()
    clock.advance(days=1)
    checks = fleet.plan_and_create()
    assert fleet.work([ami_event(check["resource_id"], "available") for check in checks]) == {"batchItemFailures": []}
    purges = [message for message in take_messages() if message["kind"] == "purge_snapshots"]
    assert not set(first) & set(fleet.images())
    # One purge per retired AMI's instance; merged here into the one message a test follows.
    merged = purges[0] | {
        "snapshot_ids": sorted(s for m in purges for s in m["snapshot_ids"]),
        "released_image_ids": sorted(i for m in purges for i in m["released_image_ids"]),
    }
    return first, merged


def test_snapshots_still_in_use_after_deregistration_are_retried_until_deleted(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, logs: Captured
) -> None:
    # AWS names no duration for DeleteSnapshot's InUse answer after DeregisterImage; make it outlast the first try.
    fidelity.snapshot_in_use_window = timedelta(minutes=10)
    first, purge = _retire_first_generation(fleet, infra, configure, clock)
    snapshots = sorted(fidelity.snapshot_of(REGION, image_id) for image_id in first)
    assert sorted(purge["snapshot_ids"]) == snapshots
    assert purge["_delayed_until_ms"] > 0  # not inline: DeleteSnapshot right after DeregisterImage often fails

    clock.advance(minutes=5)
    assert fleet.work([work_body(purge)]) == {"batchItemFailures": []}

    # Not mistaken for "another AMI uses it": every snapshot is still there and scheduled again.
    assert all(fleet.snapshot_exists(snapshot) for snapshot in snapshots)
    assert logs.matching("INFO", "snapshot kept: another AMI uses it") == []
    [retry] = take_messages()
    assert (retry["kind"], sorted(retry["snapshot_ids"]), retry["attempt"]) == ("purge_snapshots", snapshots, 2)
    clock.advance(minutes=10)
    assert fleet.work([work_body(retry)]) == {"batchItemFailures": []}
    assert not any(fleet.snapshot_exists(snapshot) for snapshot in snapshots)
    assert take_messages() == [] and alerts_sent() == []


def test_a_snapshot_kept_by_a_disabled_ami_is_not_deleted(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, logs: Captured
) -> None:
    [instance] = run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1")
    [first] = fleet.day()
    shared = fidelity.snapshot_of(REGION, first)
    borrower = _seed_image(infra, instance, "borrower", {})
    fidelity.share_snapshot(REGION, borrower, shared)
    # Disabled AMIs are left out of DescribeImages unless IncludeDisabled: the in-use check must ask for them.
    infra.ec2.disable_image(ImageId=borrower)
    clock.advance(days=1)

    fleet.day()

    assert first not in fleet.images()
    assert fleet.snapshot_exists(shared)
    [kept] = logs.matching("INFO", "snapshot kept: another AMI uses it")
    assert (kept["snapshot_id"], kept["image_ids"]) == (shared, [borrower])
    assert alerts_sent() == []


def test_a_snapshot_that_cannot_be_deleted_by_the_deadline_is_named_in_an_alert(
    fleet: Fleet, infra: Infra, configure: Configure, fidelity: MotoFidelity, clock: Clock, capsys: Any
) -> None:
    first, purge = _retire_first_generation(fleet, infra, configure, clock)
    stuck = fidelity.snapshot_of(REGION, first[0])
    fidelity.deny_snapshot_deletion(stuck)  # e.g. its ownership tag was removed by hand: IAM refuses
    message = purge
    for _attempt in range(200):
        clock.advance(minutes=15)
        assert fleet.work([work_body(message)]) == {"batchItemFailures": []}
        pending = take_messages()
        if not pending:
            break
        [message] = pending
    else:
        raise AssertionError("the purge was retried forever")

    [alert] = alerts_sent()
    assert alert["alert"] == "snapshots left behind after their AMI was deregistered"
    assert alert["snapshots"] == {stuck: "UnauthorizedOperation"}
    assert alert["deregistered_image_ids"] == purge["released_image_ids"]
    assert fleet.snapshot_exists(stuck)
    assert emitted_metrics(capsys.readouterr().out)["SnapshotsLeaked"] == 1
    assert not any(fleet.snapshot_exists(fidelity.snapshot_of(REGION, image_id)) for image_id in first[1:])


def test_a_daily_cycle_costs_two_ec2_calls_and_seven_in_all_per_instance_besides_deletions(
    fleet: Fleet, infra: Infra, configure: Configure, clock: Clock, api_calls: Counter[str]
) -> None:
    instances = run_instances(infra.ec2, 4, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="2")
    for _day in range(2):
        fleet.day()
        clock.advance(days=1)
    api_calls.clear()

    fleet.day()  # steady state: one new backup per instance, and one retired

    n = len(instances)
    cycle = {  # per instance: create, complete on the event, the delayed check
        "ec2.CreateImage": 1,
        "ec2.DescribeImages": 1,  # one listing of the instance's AMIs: the new one's state and retention's input
        "dynamodb.UpdateItem": 2,  # pending, available
        "dynamodb.GetItem": 2,  # the event and the check each read the ledger; the check then leaves EC2 alone
        "sqs.SendMessage": 1,  # the delayed check
    }
    retirement = {  # per retired AMI
        "ec2.DeregisterImage": 1,
        "dynamodb.UpdateItem": 1,  # deleted
        "sqs.SendMessage": 1,  # the delayed snapshot purge
        "ec2.DescribeImages": 1,  # is the snapshot used by another AMI (disabled ones included)
        "ec2.ListImagesInRecycleBin": 1,  # is the AMI in the Recycle Bin (restoring it needs the snapshot)
        "ec2.DescribeSnapshots": 1,  # is the snapshot ours
        "ec2.DeleteSnapshot": 1,
    }
    planner = Counter({"ec2.DescribeInstances": 1, "sqs.SendMessageBatch": 1})
    expected = planner + Counter({call: count * n for call, count in cycle.items()})
    expected += Counter({call: count * n for call, count in retirement.items()})
    assert api_calls == expected
    assert sum(count for call, count in cycle.items() if call.startswith("ec2.")) == 2
    assert sum(cycle.values()) == 7


def test_ledger_records_the_account_and_region_of_each_backup(fleet: Fleet, infra: Infra, configure: Configure) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    configure()
    [image_id] = fleet.day()
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    assert [(item["pk"]["S"], item["sk"]["S"], item["source_id"]["S"]) for item in items] == [
        (f"ami-backup#{POLICY}#local#{REGION}", image_id, instance)
    ]
    assert int(items[0]["expires_at"]["N"]) > 0
    assert Counter(item["state"]["S"] for item in items) == Counter({"available": 1})


def test_cross_account_backup_goes_through_the_target_role(fleet: Fleet, configure: Configure, clock: Clock) -> None:
    spoke_account = "111122223333"
    role = f"arn:aws:iam::{spoke_account}:role/ops-automation-target"
    spoke_ec2 = assumed_client(role, "ec2")
    instance = run_instances(spoke_ec2, 1, {"Backup": "nightly"})[0]
    configure(OPS_TARGET_ROLE_ARNS=json.dumps([role]), OPS_GENERATIONS="1")

    checks = fleet.plan_and_create()
    assert [(check["role_arn"], check["source_id"]) for check in checks] == [(role, instance)]
    assert fleet.images() == {}  # nothing in the hub account
    [first] = spoke_ec2.describe_images(Owners=["self"])["Images"]

    # The spoke's EventBridge event names its account: the worker finds the role for it.
    assert fleet.work([ami_event(first["ImageId"], "available", account=spoke_account)]) == {"batchItemFailures": []}
    clock.advance(days=1)
    [second] = fleet.plan_and_create()
    assert fleet.work([ami_event(second["resource_id"], "available", account=spoke_account)]) == {
        "batchItemFailures": []
    }
    fleet.drain()

    assert [image["ImageId"] for image in spoke_ec2.describe_images(Owners=["self"])["Images"]] == [
        second["resource_id"]
    ]
    pks = {
        item["pk"]["S"] for item in boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    }
    assert pks == {f"ami-backup#{POLICY}#{spoke_account}#{REGION}"}
    assert fleet.ledger() == {first["ImageId"]: "deleted", second["resource_id"]: "available"}


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


def test_a_purge_that_cannot_be_queued_is_alerted_once_with_the_snapshots_it_leaves(
    fleet: Fleet,
    infra: Infra,
    configure: Configure,
    fidelity: MotoFidelity,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The purge is queued after the deregistration (queued before, a deregistration that then failed would leave a
    purge that no longer counts the still-registered AMI as holding its snapshots). A deregistered AMI is never listed
    again, so a purge that cannot be queued is named in one alert, not left behind silently (make soak, seed 14)."""
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="1")
    [first] = fleet.plan_and_create()
    assert fleet.work([ami_event(first["resource_id"], "available")]) == {"batchItemFailures": []}
    first_snapshot = fidelity.snapshot_of(REGION, first["resource_id"])
    clock.advance(days=1)
    [second] = fleet.plan_and_create()
    refused: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        refused.append(args)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not now"}}, "SendMessage")

    monkeypatch.setattr(purge, "send_delayed", refuse)
    assert fleet.work([ami_event(second["resource_id"], "available")]) == {"batchItemFailures": []}

    assert refused and list(fleet.images()) == [second["resource_id"]]
    [alert] = alerts_sent()
    assert alert["alert"] == purge.PURGE_NOT_QUEUED
    assert (alert["snapshots"], alert["deregistered_image_ids"]) == ([first_snapshot], [first["resource_id"]])
    assert "AccessDenied" in alert["error"]
    assert fleet.snapshot_exists(first_snapshot)  # left for deregister-cleanup's sweep or the owner, never silently
