"""snapshot-copy on moto made faithful (tests/support/moto_fidelity.py E25-E32): copies are made in the destination
region, once per source and destination, completed by their event or the delayed check, kept per lineage there; the
concurrent-copy limit waits, real failures alert.

Where moto differs from AWS the fidelity layer models AWS: copies stay `pending` for `snapshot_copy_time` (moto:
completed at once), 20 concurrent copies per destination (moto: no limit), KMS denial as a copy in `error` (moto:
no KMS check), no sharing of aws/ebs-encrypted snapshots (moto: shares anything), shared snapshots visible to the
other account (moto: only the owner's)."""

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
    EVENTS_DIR,
    OTHER_REGION,
    REGION,
    Clock,
    FakeContext,
    Infra,
    alerts_sent,
    emitted_metrics,
    snapshot_event,
    sqs_event,
    take_messages,
    work_body,
)
from botocore.exceptions import ClientError
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.core import tagging
from ops_automation.core.errors import ConfigError, PartialFailure
from ops_automation.core.events import format_time
from ops_automation.snapshot_copy import handlers
from ops_automation.snapshot_copy.decisions import (
    Destination,
    SnapshotCopyConfig,
    Source,
    copy_snapshot_request,
    decode_missed_duration,
    sources_to_hold,
)

ConfigureCopy = Callable[..., Any]
HOURLY = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: "hourly"}
DR_ACCOUNT = "210987654321"
DR_ROLE = f"arn:aws:iam::{DR_ACCOUNT}:role/ops-automation-dr"


def destinations(**settings: Any) -> str:
    entry = {"kms_key_arn": None, "role_arn": None, "completion_duration_minutes": None, **settings}
    return json.dumps({OTHER_REGION: entry})


class Copies:
    """Makes source snapshots as ebs-snapshot does and drives the two functions as the deployed wiring does."""

    def __init__(self, infra: Infra, clock: Clock, fidelity: MotoFidelity) -> None:
        self.ec2 = infra.ec2
        self.dest = boto3.client("ec2", region_name=OTHER_REGION)
        self.clock = clock
        self.fidelity = fidelity
        self.volume = self.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]

    def source(self, tags: dict[str, str] | None = None, volume: str | None = None) -> str:
        """A completed snapshot of the volume (ebs-snapshot's tags by default), made one hour after the last."""
        self.clock.advance(hours=1)
        snapshot_tags = {**HOURLY, tagging.SLOT: format_time(self.clock.now)} if tags is None else tags
        snapshot_id = str(
            self.ec2.create_snapshot(
                VolumeId=volume or self.volume,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tagging.tag_list(snapshot_tags)}],
            )["SnapshotId"]
        )
        self.fidelity.set_snapshot_state(REGION, snapshot_id, "completed")
        return snapshot_id

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def run(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return self.work([work_body(message) for message in messages])

    def completed(self, snapshot_id: str) -> dict[str, Any]:
        """The source's completion event, then the copy work items it enqueued."""
        self.work([snapshot_event(snapshot_id, self.volume)])
        copies = [m for m in take_messages() if m["kind"] == "copy"]
        return self.run(copies)

    def copies(self, region: str = OTHER_REGION, client: Any = None) -> list[dict[str, Any]]:
        ec2 = client or boto3.client("ec2", region_name=region)
        found = ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:ops-automation:policy", "Values": ["dr"]}]
        )
        return list(found["Snapshots"])

    def finish_copies(self) -> dict[str, Any]:
        """Let every copy run its course (E25), then deliver the delayed checks as SQS would."""
        self.clock.advance(minutes=self.fidelity.snapshot_copy_time.total_seconds() / 60 + 1)
        return self.run([m for m in take_messages() if m["kind"] == "check"])


@pytest.fixture
def copies(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Copies:
    return Copies(infra, clock, fidelity)


def copy_event(copy_id: str, source_id: str, result: str = "succeeded", region: str = OTHER_REGION) -> str:
    sample = json.loads((EVENTS_DIR / "normalized" / "ebs-snapshot-copy-succeeded.json").read_text())
    sample.update(region=region, account=ACCOUNT, id=str(uuid.uuid4()))
    sample["detail"].update(
        result=result,
        snapshot_id=f"arn:aws:ec2::{region}:snapshot/{copy_id}",
        source=f"arn:aws:ec2::{REGION}:snapshot/{source_id}",
    )
    sample["resources"] = [sample["detail"]["snapshot_id"]]
    return json.dumps(sample)


# ---------------------------------------------------------------------------------------------------------------
# Where copies are made, and what they carry
# ---------------------------------------------------------------------------------------------------------------


def test_the_copy_is_made_in_the_destination_region_not_the_source(
    configure_copy: ConfigureCopy, copies: Copies
) -> None:
    """The origin's bug: its DR copy was requested in the source region and never left it."""
    configure_copy()
    source = copies.source()
    result = copies.completed(source)
    assert result == {"batchItemFailures": []}
    in_destination = copies.copies(OTHER_REGION)
    assert len(in_destination) == 1
    assert copies.copies(REGION) == []
    source_region_ids = {s["SnapshotId"] for s in copies.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert source_region_ids == {source}


def test_a_copy_carries_its_origin_in_tags_and_is_encrypted_with_the_destination_key(
    configure_copy: ConfigureCopy, copies: Copies
) -> None:
    key = boto3.client("kms", region_name=OTHER_REGION).create_key()["KeyMetadata"]["Arn"]
    configure_copy(OPS_ENCRYPTED="true", OPS_COPY_DESTINATIONS=destinations(kms_key_arn=key))
    source = copies.source()
    copies.completed(source)
    (copy,) = copies.copies()
    tags = tagging.tag_dict(copy["Tags"])
    assert tags[tagging.MANAGED_BY] == tagging.MANAGED_BY_VALUE
    assert tags[tagging.POLICY] == "dr"
    assert tags[tagging.SOURCE_SNAPSHOT] == source
    assert tags[tagging.SOURCE_REGION] == REGION
    assert tags[tagging.SOURCE_VOLUME] == copies.volume
    assert tags[tagging.SOURCE_POLICY] == "hourly"
    assert tags[tagging.SOURCE_CREATED] == format_time(copies.clock.now)
    assert copy["Encrypted"] is True
    assert copy["KmsKeyId"] == key


def test_the_request_asks_the_destination_endpoint_with_source_region_only() -> None:
    """PresignedUrl and DestinationRegion are deprecated and filled by botocore from the client's region; a
    time-based copy passes its duration."""
    source = Source("snap-0123456789abcdef0", "snapshot", REGION, copies_start(), "vol-1", {}, True)
    destination = Destination(OTHER_REGION, None, None, 60)
    request = copy_snapshot_request("dr", source, destination, encrypted=False)
    assert request["SourceRegion"] == REGION
    assert request["CompletionDurationMinutes"] == 60
    assert "PresignedUrl" not in request and "DestinationRegion" not in request and "Encrypted" not in request


def copies_start() -> Any:
    from aws_harness import START

    return START


# ---------------------------------------------------------------------------------------------------------------
# Once per source and destination
# ---------------------------------------------------------------------------------------------------------------


def test_a_repeated_copy_item_makes_no_second_copy(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy()
    source = copies.source()
    copies.work([snapshot_event(source, copies.volume)])
    items = [m for m in take_messages() if m["kind"] == "copy"]
    first = copies.run(items)
    copies.clock.advance(minutes=20)  # past the claim's in-flight window
    second = copies.run(items)
    third = copies.run(items)
    assert first == second == third == {"batchItemFailures": []}
    assert len(copies.copies()) == 1


def test_a_copy_made_by_a_delivery_that_died_is_adopted_not_repeated(
    configure_copy: ConfigureCopy, copies: Copies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invocation died between CopySnapshot and recording it: the claim goes stale, and the next delivery finds
    the copy by its tags."""
    rt = configure_copy()
    source = copies.source()
    copies.work([snapshot_event(source, copies.volume)])
    (item,) = [m for m in take_messages() if m["kind"] == "copy"]

    def die(*_: Any, **__: Any) -> None:
        raise RuntimeError("invocation timed out")

    with monkeypatch.context() as patched:
        patched.setattr(handlers, "record_made", die)
        assert copies.run([item])["batchItemFailures"]
    assert len(copies.copies()) == 1
    # Within the claim's in-flight window another delivery waits: the first may still be running.
    assert len(copies.run([item])["batchItemFailures"]) == 1
    copies.clock.advance(minutes=16)
    result = handlers.copy_source(rt, handlers.decode_copy(item))
    assert result["outcome"] == "reused"
    assert len(copies.copies()) == 1


def test_a_duplicate_completion_event_touches_no_ec2(
    configure_copy: ConfigureCopy, copies: Copies, api_calls: Counter[str]
) -> None:
    configure_copy()
    source = copies.source()
    copies.completed(source)
    (copy,) = copies.copies()
    copies.clock.advance(minutes=31)
    event = copy_event(copy["SnapshotId"], source)
    assert copies.work([event]) == {"batchItemFailures": []}
    api_calls.clear()
    assert copies.work([event]) == {"batchItemFailures": []}
    assert not [call for call in api_calls if call.startswith("ec2.")]


# ---------------------------------------------------------------------------------------------------------------
# Back-pressure and failures
# ---------------------------------------------------------------------------------------------------------------


def test_the_concurrent_copy_limit_waits_without_alerting(configure_copy: ConfigureCopy, copies: Copies) -> None:
    """20 copies pending in the destination (E27): the 21st waits in the queue as a new delayed message."""
    configure_copy()
    sources = [
        copies.source(volume=copies.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"])
        for _ in range(21)
    ]
    items = [
        {"kind": "copy", "policy": "dr", "source_id": s, "source_region": REGION, "destination_region": OTHER_REGION,
         "destination_role_arn": None, "waits": 0}
        for s in sources
    ]  # fmt: skip
    assert copies.run(items[:10]) == {"batchItemFailures": []}
    assert copies.run(items[10:20]) == {"batchItemFailures": []}
    take_messages()
    assert copies.run(items[20:]) == {"batchItemFailures": []}
    assert len(copies.copies()) == 20
    (waiting,) = take_messages()
    assert waiting["kind"] == "copy" and waiting["source_id"] == sources[20] and waiting["waits"] == 1
    assert alerts_sent() == []
    copies.clock.advance(minutes=31)  # the 20 complete (E25)
    assert copies.run([waiting]) == {"batchItemFailures": []}
    assert len(copies.copies()) == 21


def test_a_kms_denial_alerts_deletes_the_error_copy_and_the_catch_up_copies_again(
    configure_copy: ConfigureCopy, copies: Copies, fidelity: MotoFidelity, capsys: pytest.CaptureFixture[str]
) -> None:
    key = boto3.client("kms", region_name=OTHER_REGION).create_key()["KeyMetadata"]["Arn"]
    configure_copy(OPS_ENCRYPTED="true", OPS_COPY_DESTINATIONS=destinations(kms_key_arn=key))
    fidelity.deny_kms_key(key)
    source = copies.source()
    copies.completed(source)
    (copy,) = copies.copies()
    assert copy["State"] == "error"
    assert copies.finish_copies() == {"batchItemFailures": []}
    (alert,) = alerts_sent()
    assert alert["resource_id"] == copy["SnapshotId"]
    assert alert["reason"] == fidelity.kms_denied_message
    assert copies.copies() == []
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 1
    # The key is fixed; the next catch-up copies the source again.
    fidelity.deny_kms_key(key, denied=False)
    copies.clock.advance(minutes=20)
    take_messages()
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert summary["enqueued"] == 1
    copies.run([m for m in take_messages() if m["kind"] == "copy"])
    (again,) = copies.copies()
    assert again["SnapshotId"] != copy["SnapshotId"]


def test_a_source_deleted_before_its_copy_ran_alerts_once(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy()
    source = copies.source()
    copies.work([snapshot_event(source, copies.volume)])
    items = [m for m in take_messages() if m["kind"] == "copy"]
    copies.ec2.delete_snapshot(SnapshotId=source)
    assert copies.run(items) == {"batchItemFailures": []}
    (alert,) = alerts_sent()
    assert alert["source_id"] == source and alert["error_code"] == "SourceNotFound"
    assert copies.copies() == []


def test_a_snapshot_that_is_not_a_source_is_not_copied(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy()
    other = copies.source(tags={tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: "weekly"})
    assert copies.work([snapshot_event(other, copies.volume)]) == {"batchItemFailures": []}
    assert take_messages() == []


# ---------------------------------------------------------------------------------------------------------------
# Completion, generations
# ---------------------------------------------------------------------------------------------------------------


def test_copies_count_only_when_completed_and_retention_keeps_the_newest_per_lineage(
    configure_copy: ConfigureCopy, copies: Copies
) -> None:
    configure_copy()  # generations 2
    made = []
    for _ in range(3):
        source = copies.source()
        copies.completed(source)
        made.append(source)
        copies.finish_copies()
    remaining = {tagging.tag_dict(c["Tags"])[tagging.SOURCE_SNAPSHOT] for c in copies.copies()}
    assert remaining == set(made[1:])
    # A fourth copy pending: nothing more is deleted until it completes.
    fourth = copies.source()
    copies.completed(fourth)
    assert len(copies.copies()) == 3


def test_the_copy_event_completes_the_copy_before_the_check(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy()
    source = copies.source()
    copies.completed(source)
    (copy,) = copies.copies()
    copies.clock.advance(minutes=31)
    copies.work([copy_event(copy["SnapshotId"], source)])
    check = next(m for m in take_messages() if m["kind"] == "check")
    rt = handlers.worker_runtime()
    result = handlers.complete_copy(rt, handlers.Target(check["region"], None), check["resource_id"], None)
    assert result["outcome"] == "already_available"


def test_an_event_from_a_region_that_is_no_destination_is_ignored(
    configure_copy: ConfigureCopy, copies: Copies
) -> None:
    configure_copy()
    assert copies.work([copy_event("snap-0123456789abcdef0", "snap-0fedcba9876543210", region="ap-south-1")]) == {
        "batchItemFailures": []
    }


def test_a_missed_completion_duration_is_a_warning(
    configure_copy: ConfigureCopy, copies: Copies, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_copy(OPS_COPY_DESTINATIONS=destinations(completion_duration_minutes=60))
    event = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "EBS Copy Snapshot Missed Completion Duration",
        "source": "aws.ec2", "account": ACCOUNT, "time": "2024-11-19T18:17:08Z", "region": OTHER_REGION,
        "resources": [f"arn:aws:ec2:{OTHER_REGION}:{ACCOUNT}:snapshot/snap-0123456789abcdef0"],
        "detail": {
            "event": "copySnapshot",
            "missedCompletionDurationCause": "throughput quota was exceeded",
            "snapshot_id": f"arn:aws:ec2:{OTHER_REGION}:{ACCOUNT}:snapshot/snap-0123456789abcdef0",
            "source": f"arn:aws:ec2:{REGION}:{ACCOUNT}:snapshot/snap-0fedcba9876543210",
            "startTime": "Sun Nov 24 22:32:55 UTC 2024", "transferType": "time-based",
        },
    }  # fmt: skip
    assert decode_missed_duration(event).copy_id == "snap-0123456789abcdef0"
    assert copies.work([json.dumps(event)]) == {"batchItemFailures": []}
    assert emitted_metrics(capsys.readouterr().out)["CopiesMissedDuration"] == 1
    (report,) = alerts_sent()
    assert report["cause"] == "throughput quota was exceeded"


# ---------------------------------------------------------------------------------------------------------------
# Catch-up
# ---------------------------------------------------------------------------------------------------------------


def test_the_catch_up_copies_a_source_whose_event_was_lost(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy()
    first = copies.source()
    copies.completed(first)
    lost = copies.source()  # its event never came
    take_messages()
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert summary["enqueued"] == 1
    (item,) = take_messages()
    assert item["source_id"] == lost
    copies.run([item])
    assert {tagging.tag_dict(c["Tags"])[tagging.SOURCE_SNAPSHOT] for c in copies.copies()} == {first, lost}


def test_the_catch_up_copies_only_what_retention_would_keep(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy()  # generations 2
    made = [copies.source() for _ in range(4)]
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert summary["enqueued"] == 2
    assert {m["source_id"] for m in take_messages()} == set(made[2:])


def test_a_catch_up_that_finds_no_source_alerts(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy(OPS_SOURCE_POLICIES=json.dumps(["hourly-typo"]))
    copies.source()
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert summary["enqueued"] == 0
    (alert,) = alerts_sent()
    assert "no source matched" in alert["failures"][0]


def test_sources_to_hold_is_per_lineage() -> None:
    start = copies_start()
    sources = [
        Source(f"snap-{i:017x}", "snapshot", REGION, start + timedelta(hours=i), lineage, {}, True)
        for i, lineage in enumerate(["vol-a", "vol-a", "vol-a", "vol-b"])
    ]
    held = sources_to_hold(sources, generations=2, max_age_days=None, now=start + timedelta(days=1))
    # Newest restore points first: each lineage's newest (vol-b's, then vol-a's), then vol-a's second newest.
    assert [s.resource_id for s in held] == [sources[3].resource_id, sources[2].resource_id, sources[1].resource_id]


# ---------------------------------------------------------------------------------------------------------------
# Cross-account
# ---------------------------------------------------------------------------------------------------------------


def test_a_cross_account_copy_shares_the_source_and_copies_in_the_dr_account(
    configure_copy: ConfigureCopy, copies: Copies
) -> None:
    configure_copy(OPS_COPY_DESTINATIONS=destinations(role_arn=DR_ROLE))
    source = copies.source()
    assert copies.completed(source) == {"batchItemFailures": []}
    permissions = copies.ec2.describe_snapshot_attribute(SnapshotId=source, Attribute="createVolumePermission")
    assert permissions["CreateVolumePermissions"] == [{"UserId": DR_ACCOUNT}]
    rt = handlers.worker_runtime()
    dr = rt.clients.client("ec2", OTHER_REGION, DR_ROLE)
    (copy,) = copies.copies(client=dr)
    assert tagging.tag_dict(copy["Tags"])[tagging.SOURCE_SNAPSHOT] == source
    assert copies.copies(OTHER_REGION) == []  # nothing in the source account's destination region


def test_an_aws_managed_key_source_is_refused_for_cross_account(
    configure_copy: ConfigureCopy, copies: Copies, fidelity: MotoFidelity
) -> None:
    configure_copy(OPS_COPY_DESTINATIONS=destinations(role_arn=DR_ROLE))
    source = copies.source()
    fidelity.encrypt_with_aws_managed_key(REGION, source)
    copies.completed(source)
    (alert,) = alerts_sent()
    assert alert["error_code"] == "SourceNotShareable" and "aws/ebs" in alert["reason"]
    permissions = copies.ec2.describe_snapshot_attribute(SnapshotId=source, Attribute="createVolumePermission")
    assert permissions["CreateVolumePermissions"] == []


# ---------------------------------------------------------------------------------------------------------------
# AMIs
# ---------------------------------------------------------------------------------------------------------------


def test_copy_images_copies_an_ami_into_the_destination_once(
    configure_copy: ConfigureCopy, copies: Copies, infra: Infra
) -> None:
    from aws_harness import ami_event, run_instances

    rt = configure_copy(OPS_COPY_IMAGES="true", OPS_SOURCE_POLICIES=json.dumps(["nightly-amis"]))
    instance = run_instances(infra.ec2, 1)[0]
    tags = {
        tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
        tagging.POLICY: "nightly-amis",
        tagging.SOURCE_INSTANCE: instance,
    }
    image = infra.ec2.create_image(
        InstanceId=instance, Name="nightly-1",
        TagSpecifications=[{"ResourceType": k, "Tags": tagging.tag_list(tags)} for k in ("image", "snapshot")],
    )["ImageId"]  # fmt: skip
    copies.work([ami_event(image, "available")])
    items = [m for m in take_messages() if m["kind"] == "copy"]
    copies.run(items)
    copies.clock.advance(minutes=20)
    copies.run(items)
    dest = boto3.client("ec2", region_name=OTHER_REGION)
    found = dest.describe_images(Owners=["self"])["Images"]
    assert len(found) == 1
    assert tagging.tag_dict(found[0]["Tags"])[tagging.SOURCE_IMAGE] == image
    assert infra.ec2.describe_images(Owners=["self"], ImageIds=[image])["Images"]
    copies.clock.advance(minutes=31)
    result = copies.work([ami_event(found[0]["ImageId"], "available", region=OTHER_REGION)])
    assert result == {"batchItemFailures": []}
    check = next(m for m in take_messages() if m["kind"] == "check")
    assert handlers.complete_copy(rt, handlers.Target(OTHER_REGION, None), check["resource_id"], None)["outcome"] == (
        "already_available"
    )


# ---------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"OPS_COPY_DESTINATIONS": destinations(completion_duration_minutes=20)}, "completion_duration_minutes"),
        ({"OPS_COPY_DESTINATIONS": destinations(completion_duration_minutes=2895)}, "completion_duration_minutes"),
        (
            {
                "OPS_ENCRYPTED": "true",
                "OPS_COPY_DESTINATIONS": destinations(kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/x"),
            },
            "kms_key_arn",
        ),
        (
            {"OPS_COPY_DESTINATIONS": destinations(kms_key_arn=f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT}:key/x")},
            "OPS_ENCRYPTED",
        ),
        ({"OPS_COPY_DESTINATIONS": json.dumps({"eu-west": {}})}, "OPS_COPY_DESTINATIONS"),
        ({"OPS_COPY_DESTINATIONS": "{}"}, "OPS_COPY_DESTINATIONS"),
        ({"OPS_SOURCE_POLICIES": "[]"}, "OPS_SOURCE_POLICIES"),
        ({"OPS_SOURCE_POLICIES": json.dumps(["dr"])}, "OPS_SOURCE_POLICIES"),
        ({"OPS_SOURCE_IDS": json.dumps(["ami-0123456789abcdef0"])}, "OPS_SOURCE_IDS"),
        ({"OPS_COPY_IMAGES": "true", "OPS_COPY_DESTINATIONS": destinations(role_arn=DR_ROLE)}, "role_arn"),
        (
            {
                "OPS_ENCRYPTED": "true",
                "OPS_COPY_DESTINATIONS": destinations(
                    role_arn=DR_ROLE, kms_key_arn=f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT}:key/x"
                ),
            },
            "kms_key_arn",
        ),
    ],
)
def test_bad_settings_name_the_field_and_value(overrides: dict[str, str], field: str) -> None:
    from aws_harness import copy_function_env

    with pytest.raises(ConfigError) as raised:
        SnapshotCopyConfig.from_env(copy_function_env(**overrides))
    assert field in raised.value.field


def test_a_destination_in_the_source_region_is_refused(
    configure_copy: ConfigureCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_copy(
        OPS_COPY_DESTINATIONS=json.dumps(
            {REGION: {"kms_key_arn": None, "role_arn": None, "completion_duration_minutes": None}}
        )
    )
    monkeypatch.setattr(handlers.worker_runtime, "_value", None)
    with pytest.raises(ConfigError, match="source region"):
        handlers.worker_runtime()


def test_a_copy_in_error_that_could_not_be_deleted_does_not_count_as_copied(
    configure_copy: ConfigureCopy, copies: Copies, fidelity: MotoFidelity
) -> None:
    configure_copy()
    source = copies.source()
    copies.completed(source)
    (copy,) = copies.copies()
    fidelity.end_copy_in_error(copy["SnapshotId"])
    fidelity.deny_snapshot_deletion(copy["SnapshotId"])
    copies.finish_copies()
    assert [c["State"] for c in copies.copies()] == ["error"]
    take_messages()
    copies.clock.advance(minutes=20)
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert summary["enqueued"] == 1


def test_ami_copies_are_retained_per_instance_in_the_destination(
    configure_copy: ConfigureCopy, copies: Copies, infra: Infra, fidelity: MotoFidelity
) -> None:
    from aws_harness import ami_event, run_instances

    configure_copy(OPS_COPY_IMAGES="true", OPS_SOURCE_POLICIES=json.dumps(["nightly-amis"]))  # generations 2
    instance = run_instances(infra.ec2, 1)[0]
    tags = {
        tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
        tagging.POLICY: "nightly-amis",
        tagging.SOURCE_INSTANCE: instance,
    }
    dest = boto3.client("ec2", region_name=OTHER_REGION)
    sources = []
    for night in range(3):
        copies.clock.advance(days=1)
        image = infra.ec2.create_image(
            InstanceId=instance, Name=f"nightly-{night}",
            TagSpecifications=[{"ResourceType": k, "Tags": tagging.tag_list(tags)} for k in ("image", "snapshot")],
        )["ImageId"]  # fmt: skip
        fidelity.set_image_state(REGION, image, "available")
        sources.append(image)
        copies.work([ami_event(image, "available")])
        copies.run([m for m in take_messages() if m["kind"] == "copy"])
        copies.clock.advance(minutes=31)
        checks = [m for m in take_messages() if m["kind"] == "check"]
        copies.run(checks)
    # A deregistered AMI stays listed for a while (E-series fidelity), in state `deregistered`.
    kept = [i for i in dest.describe_images(Owners=["self"])["Images"] if i["State"] != "deregistered"]
    assert sorted(tagging.tag_dict(i["Tags"])[tagging.SOURCE_IMAGE] for i in kept) == sorted(sources[1:])
    purges = [m for m in take_messages() if m["kind"] == "purge_snapshots"]
    assert len(purges) == 1 and purges[0]["region"] == OTHER_REGION
    # The deregistered copy's snapshots go with the core purge, in the destination (never in the source region).
    copies.clock.advance(minutes=10)
    assert copies.run(purges) == {"batchItemFailures": []}
    remaining = {s["SnapshotId"] for s in dest.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not set(purges[0]["snapshot_ids"]) & remaining
    assert infra.ec2.describe_images(Owners=["self"], ImageIds=sources)["Images"]


def copy_item(source_id: str, waits: int = 0, role_arn: str | None = None) -> dict[str, Any]:
    return {
        "kind": "copy",
        "policy": "dr",
        "source_id": source_id,
        "source_region": REGION,
        "destination_region": OTHER_REGION,
        "destination_role_arn": role_arn,
        "waits": waits,
    }


def test_a_new_item_for_a_source_whose_item_waits_is_dropped(
    configure_copy: ConfigureCopy, copies: Copies, fidelity: MotoFidelity
) -> None:
    """One waiting chain per source and destination: the next catch-up or a repeated event does not start a
    second one (each would poll, and end, on its own)."""
    configure_copy()
    source = copies.source()
    fidelity.fail_copy_snapshot(source, "ResourceLimitExceeded")
    copies.run([copy_item(source)])
    (waiting,) = take_messages()
    assert waiting["waits"] == 1
    copies.run([copy_item(source)])
    assert take_messages() == []  # the duplicate ended without a chain of its own
    fidelity.fail_copy_snapshot(source, None)
    copies.clock.advance(minutes=1)
    copies.run([waiting])
    assert len(copies.copies()) == 1
    assert alerts_sent() == []


def test_back_pressure_ends_quietly_after_its_waits_and_an_unknown_refusal_alerts(
    configure_copy: ConfigureCopy, copies: Copies, fidelity: MotoFidelity
) -> None:
    configure_copy(OPS_COPY_DESTINATIONS=destinations(completion_duration_minutes=60))
    limited, quota = copies.source(), copies.source()
    fidelity.fail_copy_snapshot(limited, "ResourceLimitExceeded")
    # A time-based copy refused while the throughput quota is used up: AWS documents no code.
    fidelity.fail_copy_snapshot(quota, "SnapshotCopyThroughputExceeded")
    copies.run([copy_item(limited, waits=96), copy_item(quota, waits=1)])
    (again,) = take_messages()
    assert again["source_id"] == quota and again["waits"] == 2
    assert alerts_sent() == []
    copies.run([copy_item(quota, waits=96)])
    (alert,) = alerts_sent()
    assert alert["source_id"] == quota and alert["error_code"] == "StillWaiting"


def test_an_archived_source_is_not_copied(
    configure_copy: ConfigureCopy, copies: Copies, fidelity: MotoFidelity
) -> None:
    """ "You can't copy an archived snapshot" (EBS user guide, "Archive Amazon EBS snapshots")."""
    configure_copy()
    archived, current = copies.source(), copies.source()
    fidelity.archive_snapshot(REGION, archived)
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert [m["source_id"] for m in take_messages()] == [current]
    assert summary["skipped"] == [f"{archived}: in the archive tier, cannot be copied"]
    copies.run([copy_item(archived)])
    (alert,) = alerts_sent()
    assert alert["error_code"] == "SourceArchived"
    assert len(copies.copies()) == 0


def test_a_share_not_yet_visible_to_the_dr_account_waits(
    configure_copy: ConfigureCopy, copies: Copies, fidelity: MotoFidelity
) -> None:
    """Right after ModifySnapshotAttribute the DR account may not see the snapshot yet (EC2 eventual consistency):
    InvalidSnapshot.NotFound for a source that exists is a wait, not "source gone"."""
    configure_copy(OPS_COPY_DESTINATIONS=destinations(role_arn=DR_ROLE))
    source = copies.source()
    fidelity.fail_copy_snapshot(source, "InvalidSnapshot.NotFound")
    copies.run([copy_item(source, role_arn=DR_ROLE)])
    assert alerts_sent() == []
    (waiting,) = take_messages()
    fidelity.fail_copy_snapshot(source, None)
    copies.run([waiting])
    dr = handlers.worker_runtime().clients.client("ec2", OTHER_REGION, DR_ROLE)
    assert len(copies.copies(client=dr)) == 1


def test_a_customer_key_source_is_shared_and_copied_cross_account(
    configure_copy: ConfigureCopy, copies: Copies
) -> None:
    configure_copy(OPS_COPY_DESTINATIONS=destinations(role_arn=DR_ROLE))
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    source = copies.source()
    snapshot = copies.ec2.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=source, Encrypted=True, KmsKeyId=key)
    encrypted = snapshot["SnapshotId"]
    copies.clock.advance(minutes=31)
    copies.ec2.create_tags(Resources=[encrypted], Tags=tagging.tag_list(HOURLY))
    copies.run([copy_item(encrypted, role_arn=DR_ROLE)])
    assert alerts_sent() == []
    dr = handlers.worker_runtime().clients.client("ec2", OTHER_REGION, DR_ROLE)
    assert [tagging.tag_dict(c["Tags"])[tagging.SOURCE_SNAPSHOT] for c in copies.copies(client=dr)] == [encrypted]


def test_one_destination_that_cannot_be_listed_does_not_stop_the_others(
    configure_copy: ConfigureCopy, copies: Copies, monkeypatch: pytest.MonkeyPatch
) -> None:
    third = "ap-southeast-2"
    none = {"kms_key_arn": None, "role_arn": None, "completion_duration_minutes": None}
    rt = configure_copy(OPS_COPY_DESTINATIONS=json.dumps({OTHER_REGION: none, third: none}))
    copies.source()
    planner = handlers.planner_runtime()
    real = planner.clients.client

    def client(service: str, region: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if service == "ec2" and region == OTHER_REGION:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeSnapshots")
        return real(service, region, *args, **kwargs)

    monkeypatch.setattr(planner.clients, "client", client)
    with pytest.raises(PartialFailure):
        handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert [m["destination_region"] for m in take_messages()] == [third]
    (alert,) = alerts_sent()
    assert alert["failures"][0].startswith(f"{OTHER_REGION}/own account")
    assert rt is not None


def test_a_failed_ami_copy_is_deregistered_and_the_next_attempt_makes_a_new_one(
    configure_copy: ConfigureCopy, copies: Copies, infra: Infra, fidelity: MotoFidelity
) -> None:
    from aws_harness import ami_event, run_instances

    configure_copy(OPS_COPY_IMAGES="true", OPS_SOURCE_POLICIES=json.dumps(["nightly-amis"]))
    instance = run_instances(infra.ec2, 1)[0]
    tags = {
        tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
        tagging.POLICY: "nightly-amis",
        tagging.SOURCE_INSTANCE: instance,
    }
    image = infra.ec2.create_image(
        InstanceId=instance, Name="nightly-0",
        TagSpecifications=[{"ResourceType": k, "Tags": tagging.tag_list(tags)} for k in ("image", "snapshot")],
    )["ImageId"]  # fmt: skip
    fidelity.set_image_state(REGION, image, "available")
    copies.work([ami_event(image, "available")])
    copies.run([m for m in take_messages() if m["kind"] == "copy"])
    dest = boto3.client("ec2", region_name=OTHER_REGION)
    (failed,) = dest.describe_images(Owners=["self"])["Images"]
    fidelity.set_image_state(OTHER_REGION, failed["ImageId"], "failed")
    copies.work([ami_event(failed["ImageId"], "failed", region=OTHER_REGION)])
    (alert,) = alerts_sent()
    assert alert["resource_id"] == failed["ImageId"]
    states = {i["ImageId"]: i["State"] for i in dest.describe_images(Owners=["self"])["Images"]}
    assert states.get(failed["ImageId"], "deregistered") == "deregistered"
    take_messages()
    copies.clock.advance(minutes=20)
    handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    copies.run([m for m in take_messages() if m["kind"] == "copy"])
    live = [i for i in dest.describe_images(Owners=["self"])["Images"] if i["State"] != "deregistered"]
    assert len(live) == 1 and live[0]["ImageId"] != failed["ImageId"]


def test_the_catch_up_finds_amis_not_yet_copied(
    configure_copy: ConfigureCopy, copies: Copies, infra: Infra, fidelity: MotoFidelity
) -> None:
    from aws_harness import run_instances

    configure_copy(OPS_COPY_IMAGES="true", OPS_SOURCE_POLICIES=json.dumps(["nightly-amis"]))
    instance = run_instances(infra.ec2, 1)[0]
    tags = {
        tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
        tagging.POLICY: "nightly-amis",
        tagging.SOURCE_INSTANCE: instance,
    }
    image = infra.ec2.create_image(
        InstanceId=instance, Name="nightly-0",
        TagSpecifications=[{"ResourceType": k, "Tags": tagging.tag_list(tags)} for k in ("image", "snapshot")],
    )["ImageId"]  # fmt: skip
    fidelity.set_image_state(REGION, image, "available")
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert summary["enqueued"] == 1
    assert [m["source_id"] for m in take_messages()] == [image]


def test_the_catch_up_looks_for_copies_in_the_dr_account(configure_copy: ConfigureCopy, copies: Copies) -> None:
    configure_copy(OPS_COPY_DESTINATIONS=destinations(role_arn=DR_ROLE))
    source = copies.source()
    copies.run([copy_item(source, role_arn=DR_ROLE)])
    take_messages()
    summary = handlers.plan_handler({"scheduled_time": format_time(copies.clock.now)}, FakeContext())
    assert summary["enqueued"] == 0 and summary["sources"] == 1
