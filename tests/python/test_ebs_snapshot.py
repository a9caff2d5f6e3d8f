"""ebs-snapshot end to end on moto made faithful (tests/support/moto_fidelity.py): plan, create once per slot,
complete on the EBS events or the delayed check, retain whole sets, and every bad path the issue names."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_harness import (
    LEDGER_TABLE,
    POLICY,
    REGION,
    Captured,
    Clock,
    FakeContext,
    Infra,
    alerts_sent,
    ebs_function_env,
    run_instances,
    snapshot_event,
    snapshots_event,
    sqs_event,
    take_messages,
    work_body,
)
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.core import tagging
from ops_automation.core.claims import IN_FLIGHT
from ops_automation.core.errors import ConfigError
from ops_automation.core.events import format_time, parse_work_body
from ops_automation.ebs_snapshot import handlers
from ops_automation.ebs_snapshot.decisions import EbsSnapshotConfig, set_id

ConfigureEbs = Callable[..., Any]
OWNERSHIP = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: POLICY}


class Ebs:
    """Drives the planner and worker as the deployed wiring does; the test decides when time passes."""

    def __init__(self, infra: Infra, clock: Clock, fidelity: MotoFidelity) -> None:
        self.infra = infra
        self.clock = clock
        self.fidelity = fidelity
        self.az = f"{REGION}a"

    def volume(
        self, tags: dict[str, str] | None = None, instance_id: str | None = None, device: str = "/dev/sdf"
    ) -> str:
        kwargs: dict[str, Any] = {"AvailabilityZone": self.az, "Size": 8}
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "volume", "Tags": tagging.tag_list(tags)}]
        volume_id: str = self.infra.ec2.create_volume(**kwargs)["VolumeId"]
        if instance_id:
            self.infra.ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
        return volume_id

    def plan(self, **event: Any) -> dict[str, Any]:
        return dict(handlers.plan_handler({"scheduled_time": format_time(self.clock.now), **event}, FakeContext()))

    def work(self, bodies: list[str], receive_count: int = 1) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies, receive_count), FakeContext()))

    def plan_and_create(self) -> list[dict[str, Any]]:
        """Planner run, then the worker on its messages; returns the check messages left on the queue."""
        self.plan()
        creates = take_messages()
        assert creates and all(m["kind"] in ("create_snapshot", "create_snapshots") for m in creates)
        assert self.work([work_body(m) for m in creates]) == {"batchItemFailures": []}
        checks = take_messages()
        assert checks and all(m["kind"] == "check" for m in checks)
        return checks

    def complete_all(self, checks: list[dict[str, Any]]) -> None:
        for snapshot in self.snapshots().values():
            if snapshot["State"] == "pending":
                self.fidelity.set_snapshot_state(REGION, snapshot["SnapshotId"], "completed")

    def drain(self) -> Counter[str]:
        handled: Counter[str] = Counter()
        for _round in range(50):
            messages = take_messages()
            if not messages:
                return handled
            self.clock.advance(minutes=15)
            handled.update(m["kind"] for m in messages)
            assert self.work([work_body(m) for m in messages]) == {"batchItemFailures": []}
        raise AssertionError("the work queue never drained")

    def slot_by_events(self) -> list[dict[str, Any]]:
        """One schedule slot in volume mode: create, complete in EC2, deliver the events, then the delayed work."""
        checks = self.plan_and_create()
        self.complete_all(checks)
        events = [snapshot_event(c["resource_id"], c["source_id"]) for c in checks]
        assert self.work(events) == {"batchItemFailures": []}
        leftover = take_messages()
        self.clock.advance(minutes=61)
        assert self.work([work_body(m) for m in [*checks, *leftover]]) == {"batchItemFailures": []}
        self.drain()
        return checks

    def snapshots(self, **tag_filters: str) -> dict[str, dict[str, Any]]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tag_filters.items()]
        listed = self.infra.ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]
        return {snapshot["SnapshotId"]: snapshot for snapshot in listed}

    def ledger(self) -> dict[str, str]:
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
        return {item["sk"]["S"]: item["state"]["S"] for item in items}


@pytest.fixture
def ebs(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Ebs:
    return Ebs(infra, clock, fidelity)


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------


def test_instance_mode_refuses_volume_targets_naming_the_variable_and_value() -> None:
    env = ebs_function_env(OPS_SNAPSHOT_MODE="instance", OPS_TARGET_TAGS=json.dumps({"Backup": "x"}))
    with pytest.raises(ConfigError) as raised:
        EbsSnapshotConfig.from_env(env)
    assert raised.value.variable == "OPS_VOLUME_IDS"
    assert "instance" in str(raised.value)


def test_unknown_mode_and_empty_targets_are_refused() -> None:
    with pytest.raises(ConfigError, match="OPS_SNAPSHOT_MODE='volumes'"):
        EbsSnapshotConfig.from_env(ebs_function_env(OPS_SNAPSHOT_MODE="volumes"))
    with pytest.raises(ConfigError, match="no volume ids, volume tags, instance ids or instance tags"):
        EbsSnapshotConfig.from_env(ebs_function_env(OPS_VOLUME_TAGS="{}"))
    with pytest.raises(ConfigError, match="OPS_VOLUME_IDS"):
        EbsSnapshotConfig.from_env(ebs_function_env(OPS_VOLUME_IDS='["vol-XYZ"]'))


# ---------------------------------------------------------------------------------------------------------------
# Volume mode
# ---------------------------------------------------------------------------------------------------------------


def test_volume_snapshot_is_tagged_at_creation_copies_volume_tags_and_schedules_a_check(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock
) -> None:
    instance = run_instances(ebs.infra.ec2, 1)[0]
    volume = ebs.volume({"Backup": "hourly", "Name": "db-data", "ops-automation:policy": "forged"}, instance)
    configure_ebs()

    [check] = ebs.plan_and_create()

    slot = format_time(clock.now)
    [snapshot] = ebs.snapshots().values()
    tags = tagging.tag_dict(snapshot["Tags"])
    assert tags == {
        **OWNERSHIP,
        tagging.SOURCE_VOLUME: volume,
        tagging.SOURCE_INSTANCE: instance,
        tagging.SLOT: slot,
        "Backup": "hourly",
        "Name": "db-data",
    }
    assert snapshot["VolumeId"] == volume
    assert snapshot["Description"] == f"ops-automation {POLICY} snapshot of {volume} at {slot}"
    assert check["resource_id"] == snapshot["SnapshotId"] and check["source_id"] == volume
    assert ebs.ledger()[snapshot["SnapshotId"]] == "pending"


def test_a_repeated_delivery_never_makes_a_second_snapshot(ebs: Ebs, configure_ebs: ConfigureEbs) -> None:
    ebs.volume({"Backup": "hourly"})
    configure_ebs()
    ebs.plan()
    [create] = take_messages()

    assert ebs.work([work_body(create)]) == {"batchItemFailures": []}
    assert ebs.work([work_body(create)]) == {"batchItemFailures": []}

    assert len(ebs.snapshots()) == 1
    # Each delivery (re)schedules the delayed check: one that died after recording the snapshot still gets one.
    assert {m["resource_id"] for m in take_messages()} == set(ebs.snapshots())


def test_a_delivery_while_another_is_in_flight_waits_then_a_stale_claim_adopts_what_was_made(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock
) -> None:
    volume = ebs.volume({"Backup": "hourly"})
    rt = configure_ebs()
    ebs.plan()
    [create] = take_messages()
    # An invocation claimed the slot and made the snapshot, then died before recording it.
    from ops_automation.core.claims import claim
    from ops_automation.core.scope import Target

    held = claim(rt, Target(REGION, None), volume, create["slot"], 90)
    assert held.status == "new"
    made = ebs.infra.ec2.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": tagging.tag_list({**OWNERSHIP, tagging.SOURCE_VOLUME: volume, tagging.SLOT: create["slot"]}),
            }
        ],
    )["SnapshotId"]

    in_flight = ebs.work([work_body(create)])
    assert len(in_flight["batchItemFailures"]) == 1
    assert len(ebs.snapshots()) == 1

    clock.advance(seconds=IN_FLIGHT.total_seconds() + 1)
    assert ebs.work([work_body(create)]) == {"batchItemFailures": []}
    assert list(ebs.snapshots()) == [made]
    [check] = take_messages()
    assert check["resource_id"] == made


def test_per_volume_rate_limit_backs_off_through_sqs_and_the_slot_is_still_made(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock, infra: Infra
) -> None:
    volume = ebs.volume({"Backup": "hourly"})
    configure_ebs()
    # Someone else snapshotted the volume a moment ago: AWS refuses another one for a few seconds.
    infra.ec2.create_snapshot(VolumeId=volume)
    ebs.plan()
    [create] = take_messages()

    deferred = ebs.work([work_body(create)])
    assert len(deferred["batchItemFailures"]) == 1
    assert alerts_sent() == []

    clock.advance(minutes=1)
    assert ebs.work([work_body(create)], receive_count=2) == {"batchItemFailures": []}
    assert len(ebs.snapshots(**{tagging.POLICY: POLICY})) == 1


def test_a_lost_response_to_create_snapshot_never_makes_a_second_snapshot(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock
) -> None:
    from botocore.exceptions import ReadTimeoutError

    ebs.volume({"Backup": "hourly"})
    rt = configure_ebs()
    ebs.plan()
    [create] = take_messages()

    def lose_the_response(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com")

    once = rt.clients.client("ec2", REGION, None, retries=False)
    once.meta.events.register("after-call.ec2.CreateSnapshot", lose_the_response)

    # AWS made the snapshot; the worker never heard. No SDK retry, and the claim stays held.
    assert len(ebs.work([work_body(create)])["batchItemFailures"]) == 1
    assert len(ebs.snapshots()) == 1
    assert len(ebs.work([work_body(create)], receive_count=2)["batchItemFailures"]) == 1

    once.meta.events.unregister("after-call.ec2.CreateSnapshot", lose_the_response)
    clock.advance(seconds=IN_FLIGHT.total_seconds() + 1)
    assert ebs.work([work_body(create)], receive_count=3) == {"batchItemFailures": []}
    [snapshot] = ebs.snapshots()
    assert [m["resource_id"] for m in take_messages()] == [snapshot]


@pytest.mark.parametrize(
    ("code", "deferred", "alerted"),
    [("PendingSnapshotLimitExceeded", True, False), ("SnapshotLimitExceeded", False, True)],
)
def test_account_wide_snapshot_quotas_back_off_or_alert(
    code: str, deferred: bool, alerted: bool, ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity
) -> None:
    volume = ebs.volume({"Backup": "hourly"})
    configure_ebs()
    ebs.plan()
    [create] = take_messages()
    fidelity.fail_create_snapshot(volume, code)

    result = ebs.work([work_body(create)])

    assert bool(result["batchItemFailures"]) is deferred
    assert [a["error_code"] for a in alerts_sent()] == ([code] if alerted else [])
    assert ebs.snapshots() == {}


def test_a_copy_carrying_our_tags_is_not_counted_nor_deleted(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock, infra: Infra
) -> None:
    volume = ebs.volume({"Backup": "hourly"})
    configure_ebs(OPS_GENERATIONS="1")
    clock.advance(hours=1)
    [first] = ebs.slot_by_events()
    # Someone copies our snapshot with our tags: the copy's VolumeId is vol-ffffffff, not the volume.
    tags = tagging.tag_list({**OWNERSHIP, tagging.SOURCE_VOLUME: volume, tagging.SLOT: "2024-01-01T00:00:00Z"})
    copy = infra.ec2.copy_snapshot(
        SourceSnapshotId=first["resource_id"],
        SourceRegion=REGION,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
    )["SnapshotId"]
    for _hour in range(2):
        clock.advance(hours=1)
        ebs.slot_by_events()

    assert copy in ebs.snapshots()
    assert first["resource_id"] not in ebs.snapshots()


def test_a_volume_deleted_between_plan_and_work_is_alerted_once_and_not_retried(
    ebs: Ebs, configure_ebs: ConfigureEbs, infra: Infra
) -> None:
    volume = ebs.volume({"Backup": "hourly"})
    configure_ebs()
    ebs.plan()
    [create] = take_messages()
    infra.ec2.delete_volume(VolumeId=volume)

    assert ebs.work([work_body(create)]) == {"batchItemFailures": []}

    [alert] = alerts_sent()
    assert alert["alert"] == "source cannot be backed up"
    assert alert["error_code"] == "InvalidVolume.NotFound"
    assert take_messages() == []


def test_a_tag_filter_that_matches_nothing_logs_once_alerts_once_and_does_not_raise(
    ebs: Ebs, configure_ebs: ConfigureEbs, logs: Captured
) -> None:
    ebs.volume({"Backup": "weekly"})
    configure_ebs()

    summary = ebs.plan()

    assert summary["planned"] == 0
    assert len(logs.matching("WARNING", "backups stopped: no target matched")) == 1
    [alert] = alerts_sent()
    assert "nothing matched" in json.dumps(alert)
    assert take_messages() == []


def test_ten_generations_keep_three_whole_sets_and_never_touch_foreign_snapshots(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock, infra: Infra
) -> None:
    volume = ebs.volume({"Backup": "hourly"})
    foreign = infra.ec2.create_snapshot(VolumeId=volume, Description="someone else's")["SnapshotId"]
    configure_ebs(OPS_GENERATIONS="3")
    made: list[str] = []
    for _hour in range(10):
        clock.advance(hours=1)
        made.extend(check["resource_id"] for check in ebs.slot_by_events())

    mine = ebs.snapshots(**{tagging.POLICY: POLICY})
    assert sorted(mine) == sorted(made[-3:])
    assert foreign in ebs.snapshots()
    ledger = ebs.ledger()
    assert [ledger[s] for s in made] == ["deleted"] * 7 + ["available"] * 3


def test_a_snapshot_in_error_alerts_and_purges_nothing(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock
) -> None:
    ebs.volume({"Backup": "hourly"})
    configure_ebs(OPS_GENERATIONS="1")
    clock.advance(hours=1)
    [good] = ebs.slot_by_events()
    clock.advance(hours=1)
    [check] = ebs.plan_and_create()
    fidelity.set_snapshot_state(REGION, check["resource_id"], "error", "internal error")

    assert ebs.work([snapshot_event(check["resource_id"], check["source_id"], "failed")]) == {"batchItemFailures": []}

    [alert] = alerts_sent()
    assert alert["alert"] == "backup failed; nothing purged"
    assert "internal error" in json.dumps(alert)
    remaining = ebs.snapshots()
    assert good["resource_id"] in remaining
    # The snapshot in error is no backup and counts against the volume's 5 concurrent snapshots: it goes.
    assert check["resource_id"] not in remaining
    assert ebs.ledger()[check["resource_id"]] == "failed"


def test_errored_snapshots_are_removed_so_repeated_failures_never_block_the_volume(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock
) -> None:
    ebs.volume({"Backup": "hourly"})
    configure_ebs(OPS_GENERATIONS="7")
    for _hour in range(7):
        clock.advance(hours=1)
        [check] = ebs.plan_and_create()
        fidelity.set_snapshot_state(REGION, check["resource_id"], "error", "internal error")
        assert ebs.work([snapshot_event(check["resource_id"], check["source_id"], "failed")]) == {
            "batchItemFailures": []
        }
    clock.advance(hours=1)

    # AWS refuses a sixth incomplete snapshot of a volume (ConcurrentSnapshotLimitExceeded); none is left to count.
    [check] = ebs.plan_and_create()
    assert check["resource_id"] in ebs.snapshots()


def test_a_still_pending_snapshot_of_the_previous_slot_is_kept_when_the_next_completes(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock
) -> None:
    ebs.volume({"Backup": "hourly"})
    configure_ebs(OPS_GENERATIONS="1")
    clock.advance(hours=1)
    [older] = ebs.plan_and_create()
    fidelity.set_snapshot_state(REGION, older["resource_id"], "pending")
    clock.advance(hours=1)
    [newer] = ebs.plan_and_create()
    fidelity.set_snapshot_state(REGION, newer["resource_id"], "completed")

    assert ebs.work([snapshot_event(newer["resource_id"], newer["source_id"])]) == {"batchItemFailures": []}

    snapshots = ebs.snapshots()
    assert older["resource_id"] in snapshots and newer["resource_id"] in snapshots
    assert ebs.ledger()[newer["resource_id"]] == "available"


def test_a_snapshot_an_ami_uses_a_locked_one_and_an_archived_one_are_kept(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock, infra: Infra
) -> None:
    ebs.volume({"Backup": "hourly"})
    configure_ebs(OPS_GENERATIONS="10")
    made = []
    for _hour in range(4):
        clock.advance(hours=1)
        made.extend(check["resource_id"] for check in ebs.slot_by_events())
    used, locked, archived, newest = made
    # moto's RegisterImage ignores block device mappings: an AMI that maps the snapshot is modelled by the fidelity
    # layer (E6), as AWS has it when an AMI is registered from that snapshot.
    instance = run_instances(infra.ec2, 1)[0]
    image = infra.ec2.create_image(InstanceId=instance, Name="from-snapshot")["ImageId"]
    fidelity.share_snapshot(REGION, image, used)
    fidelity.disable_image(REGION, image)
    fidelity.lock_snapshot(REGION, locked, mode="compliance")
    fidelity.archive_snapshot(REGION, archived)
    # Keeping one generation from now on, the next slot retires all four older sets but these three.
    configure_ebs(OPS_GENERATIONS="1")
    clock.advance(hours=1)
    ebs.slot_by_events()

    remaining = ebs.snapshots()
    assert {used, locked, archived} <= set(remaining)
    assert newest not in remaining
    assert alerts_sent() == []


def test_events_of_snapshots_that_are_not_ours_are_ignored_without_calling_ec2(
    ebs: Ebs, configure_ebs: ConfigureEbs, api_calls: Counter[str]
) -> None:
    configure_ebs()
    foreign = [
        snapshot_event("snap-0123456789abcdef0", "vol-0123456789abcdef0"),
        snapshots_event({"snap-0123456789abcdef1": "vol-0123456789abcdef1"}),
    ]

    assert ebs.work(foreign) == {"batchItemFailures": []}

    assert not [call for call in api_calls if call.startswith("ec2.")]


@pytest.mark.parametrize(
    "sample",
    [
        "ebs-snapshot-create-succeeded.json",
        "ebs-snapshot-create-failed.json",
        "ebs-snapshots-create-multi-succeeded.json",
        "ebs-snapshots-create-multi-failed.json",
        "ebs-snapshot-copy-succeeded.json",
    ],
)
def test_every_published_event_variant_is_understood(sample: str, ebs: Ebs, configure_ebs: ConfigureEbs) -> None:
    from aws_harness import EVENTS_DIR

    configure_ebs()
    body = (EVENTS_DIR / "normalized" / sample).read_text()
    result = handlers.handle_item(handlers.worker_runtime(), parse_work_body(body, handlers.DECODERS))
    assert result["outcome"] == "ignored"


# ---------------------------------------------------------------------------------------------------------------
# Volumes found through instances, exclusions
# ---------------------------------------------------------------------------------------------------------------


def test_instance_targets_snapshot_every_attached_volume_but_the_root_and_excluded_ones(
    ebs: Ebs, configure_ebs: ConfigureEbs
) -> None:
    instance = run_instances(ebs.infra.ec2, 1, {"Backup": "hourly"})[0]
    data = ebs.volume({"Name": "data"}, instance, "/dev/sdf")
    ebs.volume({"NoBackup": "true"}, instance, "/dev/sdg")
    configure_ebs(
        OPS_VOLUME_TAGS="{}",
        OPS_TARGET_TAGS=json.dumps({"Backup": "hourly"}),
        OPS_EXCLUDE_ROOT_VOLUME="true",
        OPS_EXCLUDE_VOLUME_TAGS=json.dumps({"NoBackup": "true"}),
    )

    summary = ebs.plan()

    creates = take_messages()
    assert [m["volume_id"] for m in creates] == [data]
    assert creates[0]["instance_id"] == instance
    assert any("exclusion tag" in skipped for skipped in summary["skipped"])


# ---------------------------------------------------------------------------------------------------------------
# Instance mode: crash-consistent sets
# ---------------------------------------------------------------------------------------------------------------


def _instance_mode(ebs: Ebs, configure_ebs: ConfigureEbs, **overrides: str) -> tuple[str, list[str]]:
    instance = run_instances(ebs.infra.ec2, 1, {"Backup": "hourly"})[0]
    data = [ebs.volume({"Name": f"data{n}"}, instance, f"/dev/sd{letter}") for n, letter in ((1, "f"), (2, "g"))]
    configure_ebs(
        OPS_SNAPSHOT_MODE="instance",
        OPS_VOLUME_TAGS="{}",
        OPS_TARGET_TAGS=json.dumps({"Backup": "hourly"}),
        OPS_EXCLUDE_ROOT_VOLUME="true",
        **overrides,
    )
    return instance, data


def test_instance_mode_makes_one_tagged_set_and_completes_it_on_the_multi_volume_event(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock
) -> None:
    instance, data = _instance_mode(ebs, configure_ebs)

    [check] = ebs.plan_and_create()

    snapshots = ebs.snapshots(**{tagging.POLICY: POLICY})
    assert sorted(s["VolumeId"] for s in snapshots.values()) == sorted(data)
    slot = format_time(clock.now)
    for snapshot in snapshots.values():
        tags = tagging.tag_dict(snapshot["Tags"])
        assert tags[tagging.SNAPSHOT_SET] == set_id(POLICY, instance, slot)
        assert tags[tagging.SOURCE_INSTANCE] == instance and tags[tagging.SLOT] == slot
    assert check["resource_id"] == min(snapshots)
    ebs.complete_all([check])

    event = snapshots_event({s: snapshots[s]["VolumeId"] for s in snapshots})
    assert ebs.work([event]) == {"batchItemFailures": []}
    assert ebs.ledger()[min(snapshots)] == "available"


def test_a_set_with_one_failed_volume_is_not_good_and_retires_nothing(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock
) -> None:
    _instance, _data = _instance_mode(ebs, configure_ebs, OPS_GENERATIONS="1")
    [first] = ebs.plan_and_create()
    ebs.complete_all([first])
    clock.advance(minutes=61)
    assert ebs.work([work_body(first)]) == {"batchItemFailures": []}
    first_set = set(ebs.snapshots(**{tagging.POLICY: POLICY}))

    clock.advance(hours=1)
    ebs.plan_and_create()
    second_set = set(ebs.snapshots(**{tagging.POLICY: POLICY})) - first_set
    broken, fine = sorted(second_set)
    fidelity.set_snapshot_state(REGION, broken, "error", "volume read error")
    fidelity.set_snapshot_state(REGION, fine, "completed")
    event = snapshots_event({broken: "vol-00000001", fine: "vol-00000002"}, result="failed")

    assert ebs.work([event]) == {"batchItemFailures": []}

    assert first_set <= set(ebs.snapshots())
    assert ebs.ledger()[min(second_set)] == "failed"
    assert "volume read error" in json.dumps(alerts_sent())


def test_instance_mode_retention_keeps_or_retires_sets_whole(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock
) -> None:
    _instance_mode(ebs, configure_ebs, OPS_GENERATIONS="2")
    sets: list[set[str]] = []
    for _hour in range(4):
        clock.advance(hours=1)
        before = set(ebs.snapshots())
        [check] = ebs.plan_and_create()
        sets.append(set(ebs.snapshots()) - before)
        ebs.complete_all([check])
        clock.advance(minutes=61)
        assert ebs.work([work_body(check)]) == {"batchItemFailures": []}
        ebs.drain()

    remaining = set(ebs.snapshots(**{tagging.POLICY: POLICY}))
    assert remaining == sets[2] | sets[3]
    assert all(len(s) == 2 for s in sets)


def test_a_set_that_lost_a_snapshot_is_not_a_good_generation(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock, infra: Infra
) -> None:
    _instance_mode(ebs, configure_ebs, OPS_GENERATIONS="2")
    oldest = _complete_set(ebs, clock)
    middle = _complete_set(ebs, clock)
    # Someone deletes one snapshot of a complete set by hand: it is no crash-consistent backup any more.
    infra.ec2.delete_snapshot(SnapshotId=sorted(middle)[1])

    newest = _complete_set(ebs, clock)

    # Two good generations are the newest set and the oldest one; counted as good, the broken middle set would
    # have made the oldest one go.
    remaining = set(ebs.snapshots(**{tagging.POLICY: POLICY}))
    assert oldest | newest <= remaining
    assert sorted(middle)[0] in remaining


def _complete_set(ebs: Ebs, clock: Clock) -> set[str]:
    clock.advance(hours=1)
    before = set(ebs.snapshots())
    [check] = ebs.plan_and_create()
    made = set(ebs.snapshots()) - before
    ebs.complete_all([check])
    clock.advance(minutes=61)
    assert ebs.work([work_body(check)]) == {"batchItemFailures": []}
    ebs.drain()
    return made


def test_one_locked_snapshot_keeps_its_whole_set(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock
) -> None:
    _instance_mode(ebs, configure_ebs, OPS_GENERATIONS="1")
    first = _complete_set(ebs, clock)
    fidelity.lock_snapshot(REGION, sorted(first)[0], mode="governance")

    second = _complete_set(ebs, clock)

    remaining = set(ebs.snapshots())
    assert first | second <= remaining
    assert alerts_sent() == []


def test_dry_run_plans_and_reports_without_creating_anything(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock
) -> None:
    volume = ebs.volume({"Backup": "hourly"})
    configure_ebs(OPS_GENERATIONS="1")
    for _hour in range(2):
        clock.advance(hours=1)
        ebs.slot_by_events()
    kept = set(ebs.snapshots())
    configure_ebs(OPS_GENERATIONS="1", OPS_DRY_RUN="true")
    clock.advance(hours=1)

    summary = ebs.plan()

    assert take_messages() == []
    [entry] = summary["plan"]
    assert entry["source_id"] == volume
    assert [d["snapshot_ids"] for d in entry["would_delete"]] == [sorted(kept)]
    assert set(ebs.snapshots()) == kept


def test_the_delayed_check_completes_a_set_whose_event_never_came(
    ebs: Ebs, configure_ebs: ConfigureEbs, clock: Clock
) -> None:
    ebs.volume({"Backup": "hourly"})
    configure_ebs()
    [check] = ebs.plan_and_create()
    ebs.complete_all([check])
    clock.advance(minutes=61)

    assert ebs.work([work_body(check)]) == {"batchItemFailures": []}

    assert ebs.ledger()[check["resource_id"]] == "available"


def test_a_check_past_its_deadline_on_a_pending_snapshot_alerts_once(
    ebs: Ebs, configure_ebs: ConfigureEbs, fidelity: MotoFidelity, clock: Clock
) -> None:
    ebs.volume({"Backup": "hourly"})
    configure_ebs()
    [check] = ebs.plan_and_create()
    fidelity.set_snapshot_state(REGION, check["resource_id"], "pending")
    clock.advance(minutes=61)

    assert ebs.work([work_body(check)]) == {"batchItemFailures": []}
    assert ebs.work([work_body(check)]) == {"batchItemFailures": []}

    assert len(alerts_sent()) == 1
    assert ebs.ledger()[check["resource_id"]] == "failed"


def test_the_planner_hands_creates_out_at_a_pace_the_accounts_snapshot_bucket_keeps_up_with() -> None:
    from ops_automation.core.fanout import BatchSender

    class Sqs:
        def __init__(self) -> None:
            self.delays: list[int] = []

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.delays.extend(entry.get("DelaySeconds", 0) for entry in Entries)
            return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}

    sqs = Sqs()
    sender = BatchSender(sqs, "queue", pace_per_second=handlers.CREATES_PER_SECOND)
    for index in range(4000):
        sender.add(
            handlers.CreateSnapshotMessage(POLICY, f"vol-{index:08x}", None, REGION, None, "2024-05-01T01:00:00Z")
        )
    sender.flush()

    assert sender.sent == 4000
    # 2 per second: CreateSnapshot's bucket refills at 5 per second for the whole account.
    assert sqs.delays[:5] == [0, 0, 1, 1, 2]
    assert max(sqs.delays) == 900  # SQS's longest delay; beyond 1,800 items the rest arrive together
    assert sqs.delays == sorted(sqs.delays)
