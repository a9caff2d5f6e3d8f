"""Event parsing against every AWS sample event in ../shared/events (and normalized/), plus malformed input."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_harness import EVENTS_DIR

from ops_automation.ami_backup.decisions import CreateImageMessage, decode_create_image
from ops_automation.core import events
from ops_automation.core.errors import MalformedEventError
from ops_automation.core.events import (
    AmiStateChange,
    CheckMessage,
    PurgeSnapshotsMessage,
    parse_schedule_event,
    to_body,
)


def parse_work_body(body: object) -> object:
    """The ami-backup worker's view: the core's kinds and events plus `create_image`."""
    return events.parse_work_body(body, {"create_image": decode_create_image})


def _sample_files() -> list[Path]:
    if not EVENTS_DIR.is_dir():
        return []
    return sorted([*EVENTS_DIR.glob("*.json"), *EVENTS_DIR.glob("normalized/*.json")])


SAMPLES = _sample_files()
# Under CI the samples are always laid beside the clone, so their absence fails instead of skipping.
needs_samples = pytest.mark.skipif(
    not SAMPLES and os.environ.get("CI") != "true",
    reason=f"AWS sample events not found at {EVENTS_DIR} (expected ../shared/events from the repo root)",
)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _kind(event: Any) -> str:
    """Which of our entry points (if any) subscribes to this payload."""
    if isinstance(event, dict) and "Records" in event:
        return "sqs"
    if event.get("detail-type") == "EC2 AMI State Change":
        return "ami"
    if event.get("detail-type") == "Scheduled Event" or "scheduledTime" in event:
        return "schedule"
    if event.get("detail-type") in (events.EBS_SNAPSHOT_NOTIFICATION, events.EBS_MULTI_VOLUME_SNAPSHOTS):
        return "ebs"
    return "other"


@needs_samples
def test_the_sample_folder_holds_every_kind_we_subscribe_to() -> None:
    kinds = {_kind(_load(path)) for path in SAMPLES}
    assert {"sqs", "ami", "schedule", "ebs", "other"} <= kinds


@needs_samples
@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: str(path.relative_to(EVENTS_DIR)))
def test_every_sample_event_is_parsed_or_rejected_with_a_reason(path: Path) -> None:
    event = _load(path)
    kind = _kind(event)
    if kind == "sqs":
        for record in event["Records"]:
            inner = json.loads(record["body"]) if record["body"].startswith("{") else None
            if isinstance(inner, dict) and inner.get("detail-type") == "EC2 AMI State Change":
                parsed = parse_work_body(record["body"])
                assert isinstance(parsed, AmiStateChange)
                assert parsed.image_id == inner["detail"]["ImageId"]
                assert parsed.state == inner["detail"]["State"]
                assert parsed.region == inner["region"] == record["awsRegion"]
            else:
                with pytest.raises(MalformedEventError, match=r"not JSON|not a work message"):
                    parse_work_body(record["body"])
    elif kind == "ami":
        parsed = parse_work_body(json.dumps(event))
        assert isinstance(parsed, AmiStateChange)
        assert (parsed.image_id, parsed.state, parsed.region, parsed.account) == (
            event["detail"]["ImageId"],
            event["detail"]["State"],
            event["region"],
            event["account"],
        )
        # The image id is also recoverable from the resource ARN (`arn:aws:ec2:<region>::image/<id>`).
        without_detail_id = {**event, "detail": {k: v for k, v in event["detail"].items() if k != "ImageId"}}
        assert parse_work_body(json.dumps(without_detail_id)).image_id == event["detail"]["ImageId"]  # type: ignore[union-attr]
    elif kind == "schedule":
        trigger = parse_schedule_event(event)
        expected = event.get("scheduledTime") or event["time"]
        assert trigger.slot == expected
        assert trigger.scheduled_time.tzinfo is not None
    elif kind == "ebs":
        parsed = parse_work_body(json.dumps(event))
        assert isinstance(parsed, events.SnapshotEvent)
        entries = event["detail"].get("snapshots") or [event["detail"]]
        # Ids from whichever ARN layout the sample uses; the account from the envelope, never from the ARN.
        assert parsed.snapshot_ids == tuple(entry["snapshot_id"].rsplit("/", 1)[1] for entry in entries)
        assert parsed.source_ids == tuple(entry["source"].rsplit("/", 1)[1] for entry in entries)
        assert (parsed.event, parsed.result, parsed.account) == (
            event["detail"]["event"],
            event["detail"]["result"],
            event["account"],
        )
        assert parsed.region in (event["region"], events.arn_region(entries[0]["snapshot_id"]))
    else:
        # Instance-state, SSM and CloudTrail events are other modules' business: a backup worker must reject them
        # with a reason instead of misreading them.
        with pytest.raises(MalformedEventError, match="not a work message"):
            parse_work_body(json.dumps(event))


def test_our_scheduler_input_uses_snake_case_and_truncates_to_seconds() -> None:
    trigger = parse_schedule_event({"scheduled_time": "2024-05-01T01:00:00.750Z"})
    assert trigger.scheduled_time == datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
    assert trigger.slot == "2024-05-01T01:00:00Z"


def test_schedule_time_with_offset_is_normalised_to_utc() -> None:
    assert parse_schedule_event({"scheduled_time": "2024-05-01T10:00:00+09:00"}).slot == "2024-05-01T01:00:00Z"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({}, "none of scheduled_time"),
        ({"scheduled_time": "<aws.scheduler.scheduled-time>"}, "not an ISO-8601"),
        ({"scheduledTime": "2024-05-01T01:00:00"}, "no time zone"),
        ({"scheduled_time": 1714525200}, "must be an ISO-8601"),
        ([], "must be a JSON object"),
    ],
)
def test_malformed_schedule_payloads_say_why(payload: Any, reason: str) -> None:
    with pytest.raises(MalformedEventError, match=reason):
        parse_schedule_event(payload)


def test_work_messages_round_trip() -> None:
    create = CreateImageMessage("nightly", "i-0123456789abcdef0", "us-east-1", None, "2024-05-01T01:00:00Z")
    check = CheckMessage(
        "nightly",
        "ami-0123456789abcdef0",
        "i-0123456789abcdef0",
        "eu-west-1",
        "arn:aws:iam::111122223333:role/backup",
        "2024-05-01T01:00:00Z",
        "2024-05-01T02:00:00Z",
    )
    purge = PurgeSnapshotsMessage(
        "nightly", "us-east-1", None, ("snap-0123456789abcdef0",), ("ami-0123456789abcdef0",), "2024-05-02T01:00:00Z", 3
    )
    assert parse_work_body(to_body(create)) == create
    assert parse_work_body(to_body(check)) == check
    assert parse_work_body(to_body(purge)) == purge
    assert json.loads(to_body(create))["kind"] == "create_image"
    assert check.deadline_time == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


def test_create_message_carries_instance_tags_only_when_given() -> None:
    slot = "2024-05-01T01:00:00Z"
    tagged = CreateImageMessage("nightly", "i-01234567", "us-east-1", None, slot, {"Name": "web-1", "Team": "東京"})
    untagged = CreateImageMessage("nightly", "i-01234567", "us-east-1", None, slot)

    assert parse_work_body(to_body(tagged)) == tagged
    # Kept as UTF-8 rather than \uXXXX escapes: SQS limits bytes, not characters.
    assert "東京" in to_body(tagged)
    # Without tags the body is exactly the format older workers and planners use.
    assert set(json.loads(to_body(untagged))) == {"kind", "policy", "instance_id", "region", "role_arn", "slot"}


def test_create_message_from_an_older_planner_has_no_instance_tags() -> None:
    body = json.dumps(
        {"kind": "create_image", "policy": "nightly", "instance_id": "i-01234567", "region": "us-east-1"}
        | {"role_arn": None, "slot": "2024-05-01T01:00:00Z"}
    )
    parsed = parse_work_body(body)
    assert isinstance(parsed, CreateImageMessage)
    assert parsed.instance_tags is None


@pytest.mark.parametrize("instance_tags", [["Name", "web-1"], {"Name": 1}, "Name=web-1"])
def test_malformed_instance_tags_are_rejected(instance_tags: Any) -> None:
    body = json.dumps(
        {"kind": "create_image", "policy": "nightly", "instance_id": "i-01234567", "region": "us-east-1"}
        | {"role_arn": None, "slot": "2024-05-01T01:00:00Z", "instance_tags": instance_tags}
    )
    with pytest.raises(MalformedEventError, match="instance_tags"):
        parse_work_body(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("Test message.", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"kind": "delete_everything"}', "unknown message kind"),
        (
            '{"kind": "create_image", "policy": "p", "region": "us-east-1", "role_arn": null, "slot": "x"}',
            "instance_id",
        ),
        (
            '{"kind": "create_image", "policy": "p", "instance_id": "i-1", "region": "r", '
            '"slot": "2024-05-01T01:00:00Z"}',
            "role_arn",
        ),
        ('{"detail-type": "EC2 AMI State Change", "region": "r", "account": "1", "detail": "{}"}', "no detail object"),
        (
            '{"kind": "purge_snapshots", "policy": "p", "region": "r", "role_arn": null, "snapshot_ids": ["vol-1"], '
            '"released_image_ids": [], "deadline": "2024-05-01T01:00:00Z"}',
            "snapshot_ids",
        ),
        (
            '{"kind": "purge_snapshots", "policy": "p", "region": "r", "role_arn": null, "snapshot_ids": [], '
            '"released_image_ids": [], "deadline": "2024-05-01T01:00:00Z", "attempt": 0}',
            "attempt",
        ),
        (
            '{"detail-type": "EC2 AMI State Change", "region": "r", "account": "1", "resources": [], '
            '"detail": {"State": "available"}}',
            "no image id",
        ),
    ],
)
def test_malformed_work_bodies_say_why(body: str, reason: str) -> None:
    with pytest.raises(MalformedEventError, match=reason):
        parse_work_body(body)


# ---------------------------------------------------------------------------------------------------------------
# Restore tests' state events: decoded only by the modules that pass the decoders
# ---------------------------------------------------------------------------------------------------------------

RESTORE_EVENT_DECODERS = {
    events.INSTANCE_STATE_CHANGE: events.decode_instance_state_change,
    events.EBS_VOLUME_NOTIFICATION: events.decode_volume_notification,
}


def _instance_samples() -> list[Path]:
    return sorted(EVENTS_DIR.glob("ec2-instance-state-*.json")) if EVENTS_DIR.is_dir() else []


@needs_samples
@pytest.mark.parametrize("path", _instance_samples(), ids=lambda path: path.name)
def test_instance_state_change_samples_decode(path: Path) -> None:
    event = _load(path)
    parsed = events.parse_work_body(json.dumps(event), RESTORE_EVENT_DECODERS)
    assert parsed == events.InstanceStateChange(
        event["detail"]["instance-id"], event["detail"]["state"], event["region"], event["account"]
    )


def _volume_event(result: str = "available", cause: str = "", arn: str | None = None) -> dict[str, Any]:
    """The `createVolume` examples of "Amazon EventBridge for Amazon EBS"
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html), placeholders filled in."""
    return {
        "version": "0",
        "id": "01234567-0123-0123-0123-012345678901",
        "detail-type": "EBS Volume Notification",
        "source": "aws.ec2",
        "account": "012345678901",
        "time": "2024-05-01T01:05:00Z",
        "region": "us-east-1",
        "resources": [arn or "arn:aws:ec2:us-east-1:012345678901:volume/vol-01234567"],
        "detail": {"result": result, "cause": cause, "event": "createVolume", "request-id": "01234567-0123-0123"},
    }


def test_volume_notifications_decode_success_and_failure() -> None:
    parsed = events.parse_work_body(json.dumps(_volume_event()), RESTORE_EVENT_DECODERS)
    assert parsed == events.VolumeNotification(
        "vol-01234567", "createVolume", "available", "", "us-east-1", "012345678901"
    )
    failed = _volume_event(
        "failed",
        "arn:aws:kms:sa-east-1:0123456789ab:key/01234567-0123-0123-0123-0123456789ab is disabled.",
        "arn:aws:ec2:sa-east-1:0123456789ab:volume/vol-01234567",
    )
    parsed = events.parse_work_body(json.dumps(failed), RESTORE_EVENT_DECODERS)
    assert isinstance(parsed, events.VolumeNotification)
    assert (parsed.result, parsed.region) == ("failed", "sa-east-1")  # the volume's region, from its ARN
    assert "is disabled" in parsed.cause


def test_restore_events_are_rejected_by_workers_without_their_decoders() -> None:
    with pytest.raises(MalformedEventError, match="not a work message"):
        parse_work_body(json.dumps(_volume_event()))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({**_volume_event(), "resources": []}, "no volume in resources"),
        ({**_volume_event(), "resources": ["arn:aws:ec2:us-east-1:1:snapshot/snap-01234567"]}, "vol-"),
        ({**_volume_event(), "detail": {"result": "available"}}, "'event'"),
        (
            {"detail-type": events.INSTANCE_STATE_CHANGE, "region": "us-east-1", "account": "1", "detail": {}},
            "instance-id",
        ),
        (
            {
                "detail-type": events.INSTANCE_STATE_CHANGE,
                "region": "us-east-1",
                "account": "1",
                "detail": {"instance-id": "ami-01234567", "state": "running"},
            },
            "not an id",
        ),
    ],
)
def test_malformed_restore_events_say_why(event: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedEventError, match=reason):
        events.parse_work_body(json.dumps(event), RESTORE_EVENT_DECODERS)
