"""deregister-cleanup on moto made faithful (tests/support/moto_fidelity.py): the snapshots EC2 made for an AMI go
when the AMI is deregistered — by its event, the CloudTrail call, or the sweep — and nothing else ever does."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_harness import (
    ACCOUNT,
    EVENTS_DIR,
    LEDGER_TABLE,
    REGION,
    Captured,
    Clock,
    FakeContext,
    Infra,
    alerts_sent,
    ami_event,
    cleanup_function_env,
    emitted_metrics,
    run_instances,
    sqs_event,
    take_messages,
    work_body,
)
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.core import tagging
from ops_automation.core.errors import ConfigError
from ops_automation.core.events import format_time, parse_work_body
from ops_automation.core.image_links import image_of
from ops_automation.deregister_cleanup import handlers
from ops_automation.deregister_cleanup.decisions import DeregisterCleanupConfig

ConfigureCleanup = Callable[..., Any]
# What ami-backup (another policy of this project) writes on its AMIs and their snapshots.
AMI_BACKUP_TAGS = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: "nightly-amis"}
KEEP = "ops-automation:keep"


class Cleanup:
    """Makes AMIs as EC2 does, deregisters them, and drives the two functions as the deployed wiring does."""

    def __init__(self, infra: Infra, clock: Clock, fidelity: MotoFidelity) -> None:
        self.infra = infra
        self.ec2 = infra.ec2
        self.clock = clock
        self.fidelity = fidelity
        self.instance = run_instances(self.ec2, 1)[0]
        self.made = 0

    def image(self, tags: dict[str, str] | None = AMI_BACKUP_TAGS) -> tuple[str, str]:
        """An AMI of the instance (its snapshot tagged like the AMI, as ami-backup does); returns (ami, snapshot)."""
        self.made += 1
        kwargs: dict[str, Any] = {"InstanceId": self.instance, "Name": f"image-{self.made}"}
        if tags:
            kwargs["TagSpecifications"] = [
                {"ResourceType": kind, "Tags": tagging.tag_list(tags)} for kind in ("image", "snapshot")
            ]
        image_id = str(self.ec2.create_image(**kwargs)["ImageId"])
        return image_id, self.fidelity.snapshot_of(REGION, image_id)

    def deregister(self, image_id: str) -> None:
        self.ec2.deregister_image(ImageId=image_id)

    def work(self, bodies: list[str], receive_count: int = 1) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies, receive_count), FakeContext()))

    def event(self, image_id: str, state: str = "deregistered") -> dict[str, Any]:
        return self.work([ami_event(image_id, state)])

    def clean(self, rt: Any, image_id: str) -> dict[str, Any]:
        """The deregistration event, then (5 minutes later, as scheduled) the purge it schedules: the purge's
        outcome, or the event's when nothing was scheduled."""
        outcome = handlers.handle_item(rt, ACCOUNT, parse_work_body(ami_event(image_id, "deregistered"), {}))
        if outcome["outcome"] != "scheduled":
            return dict(outcome)
        [purge] = take_messages()
        assert purge["kind"] == "purge_snapshots" and purge["released_image_ids"] == [image_id]
        self.clock.advance(seconds=300)
        return dict(handlers.handle_item(rt, ACCOUNT, parse_work_body(work_body(purge), handlers.DECODERS)))

    def sweep(self) -> dict[str, Any]:
        return dict(handlers.sweep_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext()))

    def drain(self, minutes: float = 16) -> Counter[str]:
        """Hand every queued message to the worker, letting `minutes` pass before each round."""
        handled: Counter[str] = Counter()
        for _round in range(100):
            messages = take_messages()
            if not messages:
                return handled
            self.clock.advance(minutes=minutes)
            handled.update(m["kind"] for m in messages)
            assert self.work([work_body(m) for m in messages]) == {"batchItemFailures": []}
        raise AssertionError("the work queue never drained")

    def snapshot_ids(self) -> set[str]:
        return {s["SnapshotId"] for s in self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}

    def ledger(self) -> dict[str, dict[str, Any]]:
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
        return {item["sk"]["S"]: item for item in items}


@pytest.fixture
def cleanup(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Cleanup:
    return Cleanup(infra, clock, fidelity)


def cloudtrail_event(sample: str, image_id: str) -> str:
    event = json.loads((EVENTS_DIR / sample).read_text())
    event["detail"]["requestParameters"]["imageId"] = image_id
    event["account"] = ACCOUNT
    event["detail"]["recipientAccountId"] = ACCOUNT
    return json.dumps(event)


# ---------------------------------------------------------------------------------------------------------------
# The link: only the descriptions EC2 writes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "image"),
    [
        ("Created by CreateImage(i-0123456789abcdef0) for ami-0123456789abcdef0", "ami-0123456789abcdef0"),
        ("Created by CreateImage(i-12345678) for ami-87654321 from vol-0a1b2c3d", "ami-87654321"),
        (
            "Copied for DestinationAmi ami-0123456789abcdef0 from SourceAmi ami-0fedcba987654321f for SourceSnapshot"
            " snap-0123456789abcdef0. Task created on 1,712,345,678,901.",
            "ami-0123456789abcdef0",
        ),
        # Not written by EC2 for this AMI: a copy's prefix, a person's text, a truncated id, trailing words.
        ("[Copied snap-0123456789abcdef0 from us-east-1] Created by CreateImage(i-12345678) for ami-87654321", None),
        ("backup of ami-0123456789abcdef0", None),
        ("Created by CreateImage(i-12345678) for ami-8765432", None),
        ("Created by CreateImage(i-12345678) for ami-87654321 please keep", None),
        ("", None),
    ],
)
def test_only_the_exact_descriptions_ec2_writes_link_a_snapshot_to_an_ami(description: str, image: str | None) -> None:
    assert image_of({"Description": description}) == image


def test_a_copy_that_kept_an_amis_description_is_not_that_amis_snapshot() -> None:
    description = "Created by CreateImage(i-12345678) for ami-87654321"
    assert image_of({"Description": description, "VolumeId": "vol-0a1b2c3d"}) == "ami-87654321"
    # CopySnapshot gives a copy the arbitrary volume id vol-ffffffff (API_Snapshot); the AMI never existed there.
    assert image_of({"Description": description, "VolumeId": "vol-ffffffff"}) is None
    # This project's copies carry their source snapshot.
    tags = [{"Key": tagging.SOURCE_SNAPSHOT, "Value": "snap-0123456789abcdef0"}]
    assert image_of({"Description": description, "VolumeId": "vol-0a1b2c3d", "Tags": tags}) is None


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("OPS_CLEANUP_SCOPE", "all", "must be managed or any"),
        ("OPS_CLEANUP_EXCLUSION_TAG_KEY", "aws:keep", "not starting with aws:"),
        ("OPS_CLEANUP_EXCLUSION_TAG_KEY", "", "1..128 characters"),
        ("OPS_CLEANUP_GRACE_HOURS", "0", "must be 1..8760"),
        ("OPS_CLEANUP_PRICES", '{"standard": 0.05}', "JSON object"),
        ("OPS_CLEANUP_PRICES", '{"standard": -1, "archive": 0}', "non-negative"),
        ("OPS_CLEANUP_DRY_RUN", "yes", "true or false"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable_and_value(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        DeregisterCleanupConfig.from_env(cleanup_function_env(**{variable: value}))
    assert raised.value.variable == variable
    assert repr(value) in str(raised.value) and reason in str(raised.value)


# ---------------------------------------------------------------------------------------------------------------
# Event path
# ---------------------------------------------------------------------------------------------------------------


def test_a_deregistered_ami_loses_its_snapshots_once_logged_with_the_ami_and_counted(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, logs: Captured, capsys: Any
) -> None:
    configure_cleanup()
    image, snapshot = cleanup.image()
    _, kept_snapshot = cleanup.image()
    cleanup.deregister(image)

    assert cleanup.event(image) == {"batchItemFailures": []}
    # Scheduled, not deleted at once: reads right after DeregisterImage may not show the AMI in the Recycle Bin.
    [purge] = take_messages()
    assert purge["snapshot_ids"] == [snapshot] and purge["released_image_ids"] == [image]
    assert purge["_delayed_until_ms"] and snapshot in cleanup.snapshot_ids()
    entry = cleanup.ledger()[image]
    assert entry["state"]["S"] == "deleted" and entry["refs"]["L"] == [{"S": snapshot}]

    clock.advance(seconds=300)
    assert cleanup.work([work_body(purge)]) == {"batchItemFailures": []}

    assert snapshot not in cleanup.snapshot_ids() and kept_snapshot in cleanup.snapshot_ids()
    [deleted] = logs.matching("INFO", "snapshot deleted")
    assert deleted["snapshot_id"] == snapshot and deleted["image_ids"] == [image]
    assert emitted_metrics(capsys.readouterr().out)["SnapshotsDeleted"] == 1
    assert take_messages() == []


def test_the_cloudtrail_call_and_the_state_event_end_in_one_action(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, api_calls: Counter[str]
) -> None:
    configure_cleanup()
    image, _ = cleanup.image()
    cleanup.deregister(image)

    assert cleanup.work([cloudtrail_event("cloudtrail-deregisterimage-success.json", image)]) == {
        "batchItemFailures": []
    }
    api_calls.clear()
    assert cleanup.event(image) == {"batchItemFailures": []}
    # The repeat is answered by the ledger alone, and schedules nothing.
    assert not [call for call in api_calls if call.startswith("ec2.")]
    assert Counter(m["kind"] for m in take_messages()) == {"purge_snapshots": 1}


def test_a_cloudtrail_event_with_an_error_code_deletes_nothing(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, api_calls: Counter[str]
) -> None:
    rt = configure_cleanup()
    image, snapshot = cleanup.image()
    # The call failed (the sample's errorCode): the AMI is still registered, and nothing may be touched.
    body = cloudtrail_event("cloudtrail-deregisterimage-error-unauthorized.json", image)

    assert cleanup.work([body]) == {"batchItemFailures": []}
    assert snapshot in cleanup.snapshot_ids() and take_messages() == []
    assert not [call for call in api_calls if call.startswith("ec2.")]
    # An errorMessage alone is a failure too.
    event = json.loads(cloudtrail_event("cloudtrail-deregisterimage-success.json", image))
    event["detail"]["errorMessage"] = "Request failed"
    parsed = parse_work_body(json.dumps(event), handlers.DECODERS)
    assert handlers.handle_item(rt, ACCOUNT, parsed)["outcome"] == "ignored"


def test_other_states_and_events_outside_the_scope_are_ignored_and_a_registered_ami_is_asked_again_later(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup
) -> None:
    rt = configure_cleanup()
    image, snapshot = cleanup.image()
    for state in ("available", "failed", "disabled"):
        assert handlers.handle_item(rt, ACCOUNT, parse_work_body(ami_event(image, state), {}))["outcome"] == "ignored"
    # Another region than the policy's, another account's event forwarded to this bus: not this policy's.
    for body in (
        ami_event(image, "deregistered", region="eu-west-1"),
        ami_event(image, "deregistered", account="999999999999"),
    ):
        assert handlers.handle_item(rt, ACCOUNT, parse_work_body(body, {}))["reason"] == "outside the scope"
    # A deregistration event for an AMI that DescribeImages still lists as registered: retried, nothing deleted.
    assert cleanup.event(image)["batchItemFailures"]
    assert snapshot in cleanup.snapshot_ids() and take_messages() == []


def test_the_inuse_race_right_after_deregistration_is_retried_not_skipped(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity
) -> None:
    configure_cleanup()
    fidelity.snapshot_in_use_window = timedelta(minutes=10)  # EC2 names no duration: a slow one
    image, snapshot = cleanup.image()
    cleanup.deregister(image)
    cleanup.event(image)
    [purge] = take_messages()

    clock.advance(seconds=300)
    assert cleanup.work([work_body(purge)]) == {"batchItemFailures": []}
    # Still InvalidSnapshot.InUse (E7): retried later, never reported as kept.
    assert snapshot in cleanup.snapshot_ids()
    [retry] = take_messages()
    assert retry["kind"] == "purge_snapshots" and retry["snapshot_ids"] == [snapshot] and retry["attempt"] == 2

    clock.advance(minutes=6)
    assert cleanup.work([work_body(retry)]) == {"batchItemFailures": []}
    assert snapshot not in cleanup.snapshot_ids() and take_messages() == []


def test_a_snapshot_shared_by_two_amis_stays_until_both_are_gone_then_the_sweep_takes_it(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity
) -> None:
    configure_cleanup()
    first, first_snapshot = cleanup.image()
    second, second_snapshot = cleanup.image()
    fidelity.share_snapshot(REGION, second, first_snapshot)  # the second AMI was registered with it too
    cleanup.deregister(first)
    clock.advance(minutes=5)

    assert cleanup.event(first) == {"batchItemFailures": []}
    cleanup.drain()
    assert first_snapshot in cleanup.snapshot_ids()

    cleanup.deregister(second)
    clock.advance(minutes=5)
    assert cleanup.event(second) == {"batchItemFailures": []}
    cleanup.drain()
    # The second AMI's event deletes only what EC2 made for it: the shared one is the first AMI's.
    assert second_snapshot not in cleanup.snapshot_ids() and first_snapshot in cleanup.snapshot_ids()

    clock.advance(hours=25)
    cleanup.sweep()
    cleanup.drain()
    assert first_snapshot not in cleanup.snapshot_ids()


def test_a_snapshot_used_by_a_disabled_ami_is_kept(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity
) -> None:
    configure_cleanup()
    image, snapshot = cleanup.image()
    disabled, _ = cleanup.image()
    fidelity.share_snapshot(REGION, disabled, snapshot)
    cleanup.ec2.disable_image(ImageId=disabled)  # DescribeImages omits it unless IncludeDisabled (E8)
    cleanup.deregister(image)
    clock.advance(minutes=5)

    assert cleanup.event(image) == {"batchItemFailures": []}
    cleanup.drain()
    assert snapshot in cleanup.snapshot_ids()
    clock.advance(hours=25)
    # The sweep sees the disabled AMI's mapping in its one listing of AMIs: not an orphan, nothing enqueued.
    assert cleanup.sweep()["verdicts"] == {"used by another image": 1, "image holds it": 1}
    assert take_messages() == [] and snapshot in cleanup.snapshot_ids()


def test_managed_scope_keeps_snapshots_of_amis_this_project_did_not_make_and_any_scope_deletes_them(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock
) -> None:
    rt = configure_cleanup()
    image, snapshot = cleanup.image(tags=None)
    cleanup.deregister(image)
    clock.advance(minutes=5)

    outcome = cleanup.clean(rt, image)
    assert outcome["not_owned"] == [snapshot] and outcome["deleted"] == []
    assert snapshot in cleanup.snapshot_ids()

    rt = configure_cleanup(OPS_CLEANUP_SCOPE="any", OPS_POLICY_NAME="any-scope")
    outcome = cleanup.clean(rt, image)
    assert outcome["deleted"] == [snapshot]


def test_the_exclusion_tag_keeps_a_snapshot_in_any_scope(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock
) -> None:
    rt = configure_cleanup(OPS_CLEANUP_SCOPE="any")
    image, snapshot = cleanup.image(tags={**AMI_BACKUP_TAGS, KEEP: ""})
    cleanup.deregister(image)
    clock.advance(minutes=5)

    outcome = cleanup.clean(rt, image)
    assert outcome["excluded"] == [snapshot] and snapshot in cleanup.snapshot_ids()
    clock.advance(hours=25)
    assert cleanup.sweep()["verdicts"] == {"exclusion tag": 1}


def test_a_locked_snapshot_is_kept_and_not_retried(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity
) -> None:
    rt = configure_cleanup()
    image, snapshot = cleanup.image()
    fidelity.lock_snapshot(REGION, snapshot)
    cleanup.deregister(image)
    clock.advance(minutes=5)

    outcome = cleanup.clean(rt, image)
    assert outcome["locked"] == [snapshot] and outcome["outcome"] == "purged"
    assert snapshot in cleanup.snapshot_ids() and take_messages() == []


def test_an_archived_snapshot_waits_for_its_minimum_period_unless_the_policy_deletes_early(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity
) -> None:
    rt = configure_cleanup()
    recent_image, recent = cleanup.image()
    old_image, old = cleanup.image()
    for image in (recent_image, old_image):
        cleanup.ec2.disable_image(ImageId=image)  # AWS archives only snapshots whose AMIs are disabled
    fidelity.archive_snapshot(REGION, recent, at=clock.now)
    clock.advance(days=91)
    fidelity.archive_snapshot(REGION, old, at=clock.now - timedelta(days=91))  # backdated archive
    for image in (recent_image, old_image):
        cleanup.deregister(image)
    clock.advance(minutes=5)

    # Through the deployed entry point: the event, then the delayed purge.
    assert cleanup.event(old_image) == {"batchItemFailures": []}
    cleanup.drain(minutes=5)
    assert old not in cleanup.snapshot_ids()
    assert cleanup.clean(rt, recent_image)["deleted"] == [recent]

    # The same 1-day-old archive is kept by default.
    image, snapshot = cleanup.image()
    cleanup.ec2.disable_image(ImageId=image)
    fidelity.archive_snapshot(REGION, snapshot, at=clock.now)
    cleanup.deregister(image)
    clock.advance(days=1)
    outcome = cleanup.clean(rt, image)
    assert outcome["archived"] == [snapshot] and snapshot in cleanup.snapshot_ids()

    early = configure_cleanup(OPS_CLEANUP_DELETE_ARCHIVED_EARLY="true", OPS_POLICY_NAME="early")
    assert cleanup.clean(early, image)["deleted"] == [snapshot]


def test_an_ami_in_the_recycle_bin_keeps_its_snapshots_until_it_leaves_for_good(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity
) -> None:
    rt = configure_cleanup()
    image, snapshot = cleanup.image()
    fidelity.recycle_image(REGION, image, clock.now + timedelta(days=7))
    clock.advance(minutes=5)

    outcome = cleanup.clean(rt, image)
    assert outcome["in_recycle_bin"] == [snapshot] and snapshot in cleanup.snapshot_ids()
    clock.advance(days=2)
    assert cleanup.sweep()["verdicts"] == {"image in recycle bin": 1}

    clock.advance(days=6)
    fidelity.purge_recycled_image(REGION, image)  # the bin's retention ran out: the AMI is gone for good
    assert cleanup.sweep()["orphans"] == 1
    cleanup.drain()
    assert snapshot not in cleanup.snapshot_ids()


def test_a_copied_amis_snapshots_go_with_it(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock
) -> None:
    configure_cleanup()
    source, source_snapshot = cleanup.image()
    copy = str(
        cleanup.ec2.copy_image(
            SourceImageId=source,
            SourceRegion=REGION,
            Name="copy",
            # CopyImage tags the new AMI and, separately, its new snapshots (E20).
            TagSpecifications=[
                {"ResourceType": kind, "Tags": tagging.tag_list(AMI_BACKUP_TAGS)} for kind in ("image", "snapshot")
            ],
        )["ImageId"]
    )
    copies = [s for s in cleanup.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] if image_of(s) == copy]
    assert copies, "CopyImage writes its own description on the copy's snapshots"
    cleanup.deregister(copy)
    clock.advance(minutes=5)

    assert cleanup.event(copy) == {"batchItemFailures": []}
    cleanup.drain()
    remaining = cleanup.snapshot_ids()
    assert source_snapshot in remaining and not {s["SnapshotId"] for s in copies} & remaining


def test_dry_run_deletes_nothing_and_says_what_it_would_delete(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock
) -> None:
    rt = configure_cleanup(OPS_CLEANUP_DRY_RUN="true")
    image, snapshot = cleanup.image()
    missed, missed_snapshot = cleanup.image()
    cleanup.deregister(image)
    cleanup.deregister(missed)
    clock.advance(minutes=5)

    outcome = cleanup.clean(rt, image)
    assert outcome["outcome"] == "dry run" and outcome["would_delete"] == [snapshot]
    clock.advance(hours=25)
    swept = cleanup.sweep()
    assert {entry["snapshot_id"] for entry in swept["would_delete"]} == {snapshot, missed_snapshot}
    assert take_messages() == []
    assert {snapshot, missed_snapshot} <= cleanup.snapshot_ids()
    assert image not in cleanup.ledger()


def test_a_deletion_still_refused_at_the_deadline_is_named_once_and_counted(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity, capsys: Any
) -> None:
    configure_cleanup()
    image, snapshot = cleanup.image()
    fidelity.deny_snapshot_deletion(snapshot)
    cleanup.deregister(image)
    cleanup.event(image)

    handled = cleanup.drain(minutes=60)

    assert handled["purge_snapshots"] > 2 and snapshot in cleanup.snapshot_ids()
    [alert] = [a for a in alerts_sent() if a["alert"].startswith("snapshots left behind")]
    assert alert["snapshots"] == {snapshot: "UnauthorizedOperation"} and alert["deregistered_image_ids"] == [image]
    assert emitted_metrics(capsys.readouterr().out)["SnapshotsLeaked"] == 1


def test_switching_dry_run_on_stops_deletions_already_queued(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock
) -> None:
    configure_cleanup()
    image, snapshot = cleanup.image()
    cleanup.deregister(image)
    cleanup.event(image)
    [purge] = take_messages()

    configure_cleanup(OPS_CLEANUP_DRY_RUN="true")
    clock.advance(seconds=300)
    assert cleanup.work([work_body(purge)]) == {"batchItemFailures": []}
    assert snapshot in cleanup.snapshot_ids() and take_messages() == []


# ---------------------------------------------------------------------------------------------------------------
# Sweep
# ---------------------------------------------------------------------------------------------------------------


def test_the_sweep_catches_a_missed_event_only_after_the_grace_period(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock
) -> None:
    configure_cleanup()
    image, snapshot = cleanup.image()
    _, alive_snapshot = cleanup.image()
    cleanup.deregister(image)  # no event reaches the worker

    clock.advance(hours=23)
    assert cleanup.sweep()["verdicts"] == {"in grace period": 1, "image holds it": 1}
    assert take_messages() == []

    clock.advance(hours=2)
    summary = cleanup.sweep()
    assert summary["orphans"] == 1 and summary["purges_enqueued"] == 1
    assert cleanup.drain() == Counter({"purge_snapshots": 1})
    assert cleanup.snapshot_ids() >= {alive_snapshot} and snapshot not in cleanup.snapshot_ids()


def test_the_sweep_takes_a_snapshot_ami_backup_left_behind(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, fidelity: MotoFidelity
) -> None:
    """ami-backup deregistered its AMI but could not delete the snapshot before its purge deadline (alerted):
    this module is the backstop."""
    configure_cleanup()
    image, snapshot = cleanup.image()
    fidelity.deny_snapshot_deletion(snapshot)
    cleanup.deregister(image)
    clock.advance(days=2)
    fidelity.deny_snapshot_deletion(snapshot, denied=False)

    cleanup.sweep()
    cleanup.drain()
    assert snapshot not in cleanup.snapshot_ids()


def test_the_sweep_reports_orphans_outside_its_scope_with_their_monthly_cost(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, capsys: Any
) -> None:
    configure_cleanup()
    foreign = [cleanup.image(tags=None) for _ in range(3)]
    for image, _ in foreign:
        cleanup.deregister(image)
    clock.advance(hours=25)

    summary = cleanup.sweep()

    assert summary["verdicts"] == {"out of scope": 3} and take_messages() == []
    [report] = [a for a in alerts_sent() if "scope does not let it delete" in a["alert"]]
    sizes = [s["VolumeSize"] for s in cleanup.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]
    assert report["orphans"] == 3 and report["gib"] == sum(sizes)
    assert report["monthly_cost_usd_at_most"] == pytest.approx(round(sum(sizes) * 0.05, 2))
    assert sorted(report["sample_snapshot_ids"]) == sorted(s for _, s in foreign)
    assert emitted_metrics(capsys.readouterr().out)["OrphansOutOfScope"] == 3


def test_sweep_calls_grow_with_pages_not_snapshots(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, clock: Clock, api_calls: Counter[str]
) -> None:
    configure_cleanup(OPS_CLEANUP_DRY_RUN="true")

    def sweep_calls(images: int) -> Counter[str]:
        for _ in range(images):
            image, _ = cleanup.image()
            cleanup.deregister(image)
        clock.advance(hours=25)
        api_calls.clear()
        assert cleanup.sweep()["orphans"] >= images
        return Counter({name: n for name, n in api_calls.items() if name.startswith("ec2.")})

    few, many = sweep_calls(2), sweep_calls(30)
    assert (
        few == many == Counter({"ec2.DescribeImages": 1, "ec2.ListImagesInRecycleBin": 1, "ec2.DescribeSnapshots": 1})
    )


def test_a_target_that_cannot_be_swept_is_alerted_and_the_others_are_swept(
    cleanup: Cleanup, configure_cleanup: ConfigureCleanup, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_cleanup(OPS_TARGET_REGIONS=json.dumps([REGION, "eu-west-1"]))
    from botocore.exceptions import ClientError

    from ops_automation.core import image_links

    original = image_links.recycle_bin_image_ids

    def refuse_in_eu(ec2: Any, image_ids: Any = None) -> set[str]:
        if ec2.meta.region_name == "eu-west-1":
            raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "ListImagesInRecycleBin")
        return original(ec2, image_ids)

    monkeypatch.setattr(image_links, "recycle_bin_image_ids", refuse_in_eu)
    image, _ = cleanup.image()
    cleanup.deregister(image)
    cleanup.clock.advance(hours=25)

    # Not raised: Lambda would retry the whole sweep twice, enqueueing and reporting everything three times.
    summary = cleanup.sweep()
    [alert] = [a for a in alerts_sent() if a["alert"] == "orphan sweep incomplete"]
    assert (
        alert["failed"] == 1 and "eu-west-1" in alert["failures"][0] and "UnauthorizedOperation" in alert["failures"][0]
    )
    assert summary["orphans"] == 1 and summary["purges_enqueued"] == 1


@pytest.mark.parametrize(
    ("sample", "image"),
    [
        ("cloudtrail-deregisterimage-success.json", "ami-0123456789abcdef0"),
        ("cloudtrail-deregisterimage-error-unauthorized.json", None),
        ("cloudtrail-ec2-detachvolume-doc-example.json", None),
    ],
)
def test_published_cloudtrail_samples_name_the_ami_only_for_a_successful_deregistration(
    sample: str, image: str | None
) -> None:
    from ops_automation.deregister_cleanup.decisions import deregistered_image

    parsed = parse_work_body((EVENTS_DIR / sample).read_text(), handlers.DECODERS)
    assert deregistered_image(parsed) == image
    assert parsed.region == "us-east-1"
    # Other modules do not read CloudTrail events: they reject them with a reason instead of misreading them.
    with pytest.raises(Exception, match="not a work message"):
        parse_work_body((EVENTS_DIR / sample).read_text(), {})


def test_every_published_ami_state_variant_is_understood(cleanup: Cleanup, configure_cleanup: ConfigureCleanup) -> None:
    rt = configure_cleanup()
    for name in ("ami-state-available.json", "ami-state-failed.json", "ami-state-deregistered.json"):
        body = (EVENTS_DIR / "normalized" / name).read_text()
        # The samples come from account 012345678901: not this function's, so not this policy's.
        assert handlers.handle_item(rt, ACCOUNT, parse_work_body(body, {}))["outcome"] == "ignored", name
        ours = json.dumps({**json.loads(body), "account": ACCOUNT})
        outcome = handlers.handle_item(rt, ACCOUNT, parse_work_body(ours, {}))
        # The sample's AMI made no snapshot here: nothing to schedule, but the deregistration is handled.
        expected = {"ami-state-deregistered.json": "scheduled"}.get(name, "ignored")
        assert outcome["outcome"] == expected, name
