"""Tier 3: `terraform apply` examples/ebs-snapshot against a local AWS, run a simulated series of daily slots through
the deployed resources with the real handlers (tests/e2e/ebs_snapshot_scenario.py says what happens in which slot),
fire the example's restore tests once, check what is left, then `terraform destroy`.

Everything runs once (session-scoped fixture, on the local AWS tests/e2e/conftest.py shares with the other
examples); each test checks one property of the outcome.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from tests.e2e import ebs_snapshot_scenario as ebs
from tests.e2e import scenario

EXAMPLE = ebs.EXAMPLE
MANAGED_BY = "ops-automation:managed-by"
POLICY = "ops-automation:policy"
SOURCE_VOLUME = "ops-automation:source-volume"
SOURCE_INSTANCE = "ops-automation:source-instance"
SLOT = "ops-automation:slot"
SNAPSHOT_ARN_PREFIX = "arn:aws:ec2:*::snapshot/"
CANNOT_BACK_UP = "source cannot be backed up"
BACKUP_FAILED = "backup failed; nothing purged"
RESTORE_TEST, RESTORE_RESULT, RESTORE_TESTED = ebs.RESTORE_TEST, ebs.RESTORE_RESULT, ebs.RESTORE_TESTED
SOURCE_SNAPSHOT = "ops-automation:source-snapshot"


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    series: ebs.SeriesReport
    state: ebs.FinalState
    terraform_environments: dict[str, dict[str, str]]
    business_policies: dict[str, dict[str, Any]]  # IAM documents as deployed, keyed planner/worker
    region: str
    seconds: float  # the series and the reads after it
    restore: ebs.EbsRestoreReport  # the restore schedule fired once after the series


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(EXAMPLE)
    ebs.wait_for_network_applies(applied)
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    deployment = scenario.deployment_from_terraform(aws, run.outputs, EXAMPLE)
    series = ebs.run_series(aws, deployment)
    state = ebs.final_state(aws, deployment)
    seconds = time.monotonic() - started
    restoring = ebs.restore_deployment(aws, run, deployment, ebs.MODULE)
    restore = ebs.run_restore(aws, series, restoring)
    business_policies = scenario.business_policies(aws, deployment)
    business_policies["restore"] = scenario.business_policies(aws, restoring)["planner"]
    applied.start_destroy(EXAMPLE)
    print(f"\ntier 3 ebs-snapshot: series {seconds:.1f}s, restore run {restore.seconds:.1f}s")
    print("\n".join(ebs.restore_diagnostics(restore)))
    return Outcome(
        run=run,
        series=series,
        state=state,
        terraform_environments=run.outputs["function_environments"],
        business_policies=business_policies,
        region=aws.region,
        seconds=seconds,
        restore=restore,
    )


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}


def _slot(outcome: Outcome, number: int) -> ebs.SlotRun:
    return outcome.series.slots[number - 1]


def _slots(outcome: Outcome) -> list[str]:
    return [run.slot for run in outcome.series.slots]


def _good_slots(outcome: Outcome) -> dict[str, list[str]]:
    """Per tagged volume, the slots that should have made a good (completed) snapshot."""
    volumes = outcome.series.volumes
    slots = _slots(outcome)
    return {
        volumes.db_data: slots,
        volumes.logs: [slot for number, slot in enumerate(slots, start=1) if number != ebs.ERROR_SLOT],
        volumes.scratch: slots[: ebs.VOLUME_DELETED_SLOT - 1],
    }


def _managed(outcome: Outcome) -> dict[str, dict[str, Any]]:
    policy = outcome.series.deployment.policy_name
    return {sid: s for sid, s in outcome.state.snapshots.items() if _tags(s).get(POLICY) == policy}


def _alerts(outcome: Outcome, what: str) -> list[dict[str, Any]]:
    return [alert for alert in outcome.series.alerts if alert["alert"] == what]


def _ledger(outcome: Outcome) -> dict[str, dict[str, Any]]:
    return {item["sk"]: item for item in outcome.state.ledger}


# ---------------------------------------------------------------------------------------------------------------
# The deployment and the series as a whole
# ---------------------------------------------------------------------------------------------------------------


def test_deployed_functions_run_with_the_environment_terraform_reports(outcome: Outcome) -> None:
    deployment = outcome.series.deployment
    restore = outcome.restore.deployment
    assert restore is not None
    assert deployment.planner_environment == outcome.terraform_environments["planner"]
    assert deployment.worker_environment == outcome.terraform_environments["worker"]
    assert restore.planner_environment == outcome.terraform_environments["restore"]
    for environment in (deployment.planner_environment, deployment.worker_environment, restore.planner_environment):
        assert environment["OPS_WORK_QUEUE_URL"] == deployment.work_queue_url
        assert environment["OPS_LEDGER_TABLE"] == deployment.ledger_table
        assert environment["OPS_POLICY_NAME"] == outcome.run.outputs["policy_name"]
        assert environment["OPS_SNAPSHOT_MODE"] == "volume"
        assert environment["OPS_ALERT_TOPIC_ARN"] == outcome.run.outputs["alarm_topic_arn"]


def test_the_series_retires_snapshots(outcome: Outcome) -> None:
    # Otherwise the retention assertions below would pass without retention ever running.
    generations = outcome.series.deployment.generations
    assert all(len(slots) > generations for slots in list(_good_slots(outcome).values())[:2])
    assert outcome.series.purged


def test_every_tagged_volume_gets_one_snapshot_per_slot_while_it_exists(outcome: Outcome) -> None:
    volumes = outcome.series.volumes
    for number, run in enumerate(outcome.series.slots, start=1):
        expected = {volumes.db_data, volumes.logs} | ({volumes.scratch} if number < ebs.VOLUME_DELETED_SLOT else set())
        assert Counter(snapshot.volume_id for snapshot in run.created) == Counter(expected), run.slot
        assert {snapshot.slot for snapshot in run.created} == {run.slot}


def test_each_volume_keeps_exactly_its_newest_good_generations(outcome: Outcome) -> None:
    generations = outcome.series.deployment.generations
    kept: dict[str, list[str]] = {}
    for snapshot in _managed(outcome).values():
        assert snapshot["State"] == "completed"
        kept.setdefault(_tags(snapshot)[SOURCE_VOLUME], []).append(_tags(snapshot)[SLOT])
    # A deleted volume is no longer planned: its last snapshots stay (never below N good ones).
    assert {volume: sorted(slots) for volume, slots in kept.items()} == {
        volume: slots[-generations:] for volume, slots in _good_slots(outcome).items()
    }


def test_snapshots_are_tagged_at_creation_with_ownership_source_and_the_volume_tags(outcome: Outcome) -> None:
    series = outcome.series
    policy = series.deployment.policy_name
    volume_tags = json.loads(series.deployment.planner_environment["OPS_VOLUME_TAGS"])
    for snapshot in _managed(outcome).values():
        volume = snapshot["VolumeId"]
        slot = _tags(snapshot)[SLOT]
        expected = {
            MANAGED_BY: "terraform-aws-ops-automation",
            POLICY: policy,
            SOURCE_VOLUME: volume,
            SLOT: slot,
            # copy_volume_tags (default true): the volume's own tags.
            "Name": series.volumes.names[volume],
            **volume_tags,
        }
        if volume == series.volumes.db_data:
            expected[SOURCE_INSTANCE] = series.volumes.instance
        assert _tags(snapshot) == expected
        assert snapshot["Description"] == f"ops-automation {policy} snapshot of {volume} at {slot}"


def test_retired_and_failed_snapshots_are_gone(outcome: Outcome) -> None:
    series = outcome.series
    gone = {snapshot.snapshot_id for snapshot in (*series.purged, *series.failed)}
    assert set(_managed(outcome)) == set(series.snapshots) - gone
    assert not gone & set(outcome.state.snapshots)


def test_ledger_records_every_snapshot_and_every_request_and_their_fate(outcome: Outcome) -> None:
    series = outcome.series
    ledger = _ledger(outcome)
    assert {item["pk"] for item in ledger.values()} == {
        f"ebs-snapshot#{series.deployment.policy_name}#local#{outcome.region}"
    }
    # Keyed by the snapshot: an EBS event, which names nothing else, finds its item with one GetItem.
    snapshot_items = {sk: item for sk, item in ledger.items() if sk.startswith("snap-")}
    assert set(snapshot_items) == set(series.snapshots)
    purged = {snapshot.snapshot_id for snapshot in series.purged}
    failed = {snapshot.snapshot_id for snapshot in series.failed}
    for snapshot_id, snapshot in series.snapshots.items():
        item = snapshot_items[snapshot_id]
        assert (item["source_id"], item["slot"]) == (snapshot.volume_id, snapshot.slot)
        expected = "deleted" if snapshot_id in purged else "failed" if snapshot_id in failed else "available"
        assert item["state"] == expected, snapshot_id
        assert int(item["expires_at"]) > time.time()
    # One request per (volume, slot) planned, standing in for the client token CreateSnapshot does not take.
    requests = {sk: item for sk, item in ledger.items() if sk.startswith("request#")}
    made = {(snapshot.volume_id, snapshot.slot): snapshot.snapshot_id for snapshot in series.snapshots.values()}
    deleted_volume = (series.volumes.scratch, _slot(outcome, ebs.VOLUME_DELETED_SLOT).slot)
    assert set(requests) == {f"request#{volume}#{slot}" for volume, slot in {*made, deleted_volume}}
    for (volume, slot), snapshot_id in made.items():
        item = requests[f"request#{volume}#{slot}"]
        assert item["state"] == "available"
        assert [ref["S"] for ref in item["refs"]] == [snapshot_id]
    refused = requests["request#{}#{}".format(*deleted_volume)]
    assert (refused["state"], refused["reason"]) == ("failed", "InvalidVolume.NotFound")


# ---------------------------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------------------------


def test_snapshot_events_reach_the_worker_through_the_deployed_rule_and_copy_events_do_not(outcome: Outcome) -> None:
    published = outcome.series.published
    assert published["createSnapshot failed"] == 1
    assert published["copySnapshot succeeded"] == 1
    for run in outcome.series.slots:
        creates = run.published["createSnapshot succeeded"] + run.published["createSnapshot failed"]
        # Every createSnapshot event is routed to the work queue once, the copySnapshot event is not (a message the
        # worker handed back is delivered again: distinct messages, not deliveries).
        assert len(run.message_ids[ebs.SNAPSHOT_NOTIFICATION]) == creates, run.slot
        handed_back = [record for record in run.failed_records if ebs.SNAPSHOT_NOTIFICATION in record]
        assert run.messages[ebs.SNAPSHOT_NOTIFICATION] - creates <= len(handed_back), run.slot


def test_the_event_of_a_snapshot_made_by_someone_else_is_ignored(outcome: Outcome) -> None:
    manual = [sid for sid, what in outcome.series.foreign.items() if what.startswith("manual")]
    ignored = [
        line for line in outcome.series.log.lines if line.get("message") == "not this policy's resource; ignored"
    ]
    assert [line["resource_id"] for line in ignored] == manual


def test_a_lost_event_is_made_good_by_the_delayed_check(outcome: Outcome) -> None:
    run = _slot(outcome, ebs.LOST_EVENT_SLOT)
    [lost] = run.lost_events
    assert outcome.series.snapshots[lost].volume_id == outcome.series.volumes.db_data
    assert run.messages["check"] and _ledger(outcome)[lost]["state"] == "available"
    completed = [line for line in outcome.series.log.lines if line.get("message") == "backup available"]
    assert [line["resource_id"] for line in completed].count(lost) == 1
    assert lost in _managed(outcome)


# ---------------------------------------------------------------------------------------------------------------
# Bad paths
# ---------------------------------------------------------------------------------------------------------------


def test_a_volume_deleted_between_plan_and_work_is_alerted_once_and_not_retried(outcome: Outcome) -> None:
    run = _slot(outcome, ebs.VOLUME_DELETED_SLOT)
    [alert] = _alerts(outcome, CANNOT_BACK_UP)
    assert alert in run.alerts
    assert (alert["source_id"], alert["slot"], alert["error_code"]) == (
        outcome.series.volumes.scratch,
        run.slot,
        "InvalidVolume.NotFound",
    )
    assert run.failed_records == []
    assert run.messages["create_snapshot"] == 3  # each planned volume once: nothing handed back for scratch
    assert outcome.series.volumes.scratch not in outcome.state.volumes


def test_a_snapshot_in_error_alerts_once_purges_nothing_of_its_volume_and_is_discarded(outcome: Outcome) -> None:
    run = _slot(outcome, ebs.ERROR_SLOT)
    [failed] = run.failed
    assert failed.volume_id == outcome.series.volumes.logs
    [alert] = _alerts(outcome, BACKUP_FAILED)
    assert alert in run.alerts
    assert (alert["resource_id"], alert["source_id"]) == (failed.snapshot_id, failed.volume_id)
    assert ebs.ERROR_MESSAGE in alert["reason"]
    assert [snapshot.volume_id for snapshot in run.purged] == [outcome.series.volumes.db_data]
    assert run.kept[failed.volume_id] == _slots(outcome)[: ebs.ERROR_SLOT - 1]
    # In `error` it is no backup and counts against the volume's 5 concurrent snapshots: discarded.
    assert failed.snapshot_id not in outcome.state.snapshots


def test_the_per_volume_rate_limit_backs_off_through_sqs_and_the_slot_is_still_made(outcome: Outcome) -> None:
    run = _slot(outcome, ebs.RATE_LIMITED_SLOT)
    [deferred] = run.failed_records
    assert '"kind": "create_snapshot"' in deferred and outcome.series.volumes.db_data in deferred
    assert run.messages["create_snapshot"] == 4  # three planned, one of them received again
    assert outcome.series.volumes.db_data in {snapshot.volume_id for snapshot in run.created}
    assert run.alerts == []


def test_nothing_else_failed_and_no_message_is_left(outcome: Outcome) -> None:
    series = outcome.series
    assert [record for run in series.slots for record in run.failed_records] == _slot(
        outcome, ebs.RATE_LIMITED_SLOT
    ).failed_records
    # The two alerts are logged at ERROR; nothing else is.
    assert sorted(line["message"] for line in series.log.at("ERROR", "CRITICAL")) == [BACKUP_FAILED, CANNOT_BACK_UP]
    assert sorted(alert["alert"] for alert in series.alerts) == [BACKUP_FAILED, CANNOT_BACK_UP]
    assert outcome.state.dlq_messages == 0
    assert outcome.state.work_queue_messages == 0


def test_the_untagged_volume_and_snapshots_made_by_others_are_untouched(outcome: Outcome) -> None:
    series = outcome.series
    assert all(snapshot.volume_id != series.volumes.untagged for snapshot in series.snapshots.values())
    assert len(series.foreign) == 2
    for snapshot_id in series.foreign:
        assert _tags(outcome.state.snapshots[snapshot_id]) == {}


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    applied.wait_destroyed(EXAMPLE)
    assert outcome.run.destroyed
    print(
        f"\ntier 3 ebs-snapshot: apply {outcome.run.apply_seconds:.0f}s, destroy {outcome.run.destroy_seconds:.0f}s, "
        f"series {outcome.seconds:.0f}s; {len(outcome.series.snapshots)} snapshots created, "
        f"{len(outcome.series.purged)} purged, {len(outcome.state.ledger)} ledger items"
    )


# ---------------------------------------------------------------------------------------------------------------
# IAM as deployed
# ---------------------------------------------------------------------------------------------------------------


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _granting(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [statement for statement in statements if action in _listed(statement["Action"])]


def _equals(statement: dict[str, Any], prefix: str, keys: Any) -> dict[str, list[str]]:
    equals = statement["Condition"]["StringEquals"]
    return {key: _listed(equals[f"{prefix}{key}"]) for key in keys}


def _create_action(statement: dict[str, Any]) -> list[str]:
    value = statement.get("Condition", {}).get("StringEquals", {}).get("ec2:CreateAction")
    return [] if value is None else _listed(value)


def test_deployed_policies_bind_snapshot_creation_and_deletion_to_ownership_tags(outcome: Outcome) -> None:
    """The documents as the real provider rendered and deployed them."""
    deployment = outcome.series.deployment
    ownership = {MANAGED_BY: ["terraform-aws-ops-automation"], POLICY: [deployment.policy_name]}
    worker = _statements(outcome.business_policies["worker"])

    deleting = _granting(worker, "ec2:DeleteSnapshot")
    assert deleting
    for statement in deleting:
        assert all(arn.startswith(SNAPSHOT_ARN_PREFIX) for arn in _listed(statement["Resource"]))
        assert _equals(statement, "aws:ResourceTag/", ownership) == ownership

    creating = _granting(worker, "ec2:CreateSnapshot")
    on_snapshots = [s for s in creating if all(":snapshot/" in arn for arn in _listed(s["Resource"]))]
    on_volumes = [s for s in creating if all(":volume/" in arn for arn in _listed(s["Resource"]))]
    assert on_snapshots and on_volumes and len(on_snapshots) + len(on_volumes) == len(creating)
    for statement in on_snapshots:
        assert _equals(statement, "aws:RequestTag/", ownership) == ownership
    # The source volumes: only those carrying the policy's volume tags (volume_tags of the example).
    volume_tags = {key: [value] for key, value in json.loads(deployment.worker_environment["OPS_VOLUME_TAGS"]).items()}
    for statement in on_volumes:
        assert _equals(statement, "aws:ResourceTag/", volume_tags) == volume_tags

    # Tags at creation of the policy's snapshots, at creation of restored volumes, and the restore result on the
    # policy's snapshots (the two restore keys only): nothing else.
    tagging = _granting(worker, "ec2:CreateTags")
    at_creation = {
        action: [s for s in tagging if _create_action(s) == [action]] for action in ("CreateSnapshot", "CreateVolume")
    }
    results = [s for s in tagging if "ForAllValues:StringEquals" in s["Condition"]]
    assert at_creation["CreateSnapshot"] and at_creation["CreateVolume"] and results
    assert len(at_creation["CreateSnapshot"]) + len(at_creation["CreateVolume"]) + len(results) == len(tagging)
    for statement in at_creation["CreateSnapshot"]:
        assert all(arn.startswith(SNAPSHOT_ARN_PREFIX) for arn in _listed(statement["Resource"]))
        assert _equals(statement, "aws:RequestTag/", ownership) == ownership
    for statement in at_creation["CreateVolume"]:
        assert all(":volume/" in arn for arn in _listed(statement["Resource"]))
        assert _equals(statement, "aws:RequestTag/", ownership) == ownership
        assert _listed(statement["Condition"]["Null"][f"aws:RequestTag/{RESTORE_TEST}"]) == ["false"]
    for statement in results:
        assert all(":snapshot/" in arn for arn in _listed(statement["Resource"]))
        assert sorted(_listed(statement["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])) == [
            RESTORE_RESULT,
            RESTORE_TESTED,
        ]
        assert _equals(statement, "aws:ResourceTag/", ownership) == ownership

    # Restored volumes: only from the policy's snapshots, tagged at creation, deleted only when restored.
    creating_volumes = _granting(worker, "ec2:CreateVolume")
    from_snapshots = [s for s in creating_volumes if all(":snapshot/" in a for a in _listed(s["Resource"]))]
    volumes = [s for s in creating_volumes if all(":volume/" in a for a in _listed(s["Resource"]))]
    assert from_snapshots and volumes and len(from_snapshots) + len(volumes) == len(creating_volumes)
    for statement in from_snapshots:
        assert _equals(statement, "aws:ResourceTag/", ownership) == ownership
    for statement in volumes:
        assert _equals(statement, "aws:RequestTag/", ownership) == ownership
        assert _listed(statement["Condition"]["Null"][f"aws:RequestTag/{RESTORE_TEST}"]) == ["false"]
    [deleting_volumes] = _granting(worker, "ec2:DeleteVolume")
    assert all(":volume/" in arn for arn in _listed(deleting_volumes["Resource"]))
    assert _equals(deleting_volumes, "aws:ResourceTag/", ownership) == ownership
    assert _listed(deleting_volumes["Condition"]["Null"][f"aws:ResourceTag/{RESTORE_TEST}"]) == ["false"]


def test_deployed_policies_allow_every_resource_only_to_describe_and_assume_nothing(outcome: Outcome) -> None:
    for function, document in outcome.business_policies.items():
        for statement in _statements(document):
            actions = _listed(statement["Action"])
            assert "sts:AssumeRole" not in actions, function  # the example has no target roles
            assert "ec2:CreateSnapshots" not in actions, function  # volume mode only
            if "*" in _listed(statement["Resource"]):
                assert all(action.startswith("ec2:Describe") for action in actions), (function, actions)
    planner_actions = {a for s in _statements(outcome.business_policies["planner"]) for a in _listed(s["Action"])}
    assert planner_actions == {"ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"}
    restore_actions = {a for s in _statements(outcome.business_policies["restore"]) for a in _listed(s["Action"])}
    assert restore_actions <= {"ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"}


# ---------------------------------------------------------------------------------------------------------------
# The restore tests (restore_test of the example), fired once after the series
# ---------------------------------------------------------------------------------------------------------------


def _volume_requests(outcome: Outcome) -> dict[str, dict[str, Any]]:
    """The accepted CreateVolume requests of the restore run, by the volume they made."""
    return {str(call.response["VolumeId"]): dict(call.params) for call in outcome.restore.calls_of("CreateVolume")}


def test_a_restore_test_creates_each_sources_newest_snapshot_in_the_subnets_zone_and_deletes_it(
    outcome: Outcome,
) -> None:
    restore = outcome.restore
    assert restore.deployment is not None
    assert restore.deployment.planner_handler == "ops_automation.ebs_snapshot.handlers.restore_handler"
    # Every source volume with a completed snapshot left: scratch (deleted on slot 3) too.
    assert set(restore.newest) == set(outcome.series.volumes.tagged)
    requests = _volume_requests(outcome)
    assert set(requests) == set(restore.restored)
    assert sorted(str(r["SnapshotId"]) for r in requests.values()) == sorted(restore.newest.values())
    subnet = outcome.run.outputs["restore_subnet_id"]
    assert json.loads(restore.deployment.worker_environment["OPS_RESTORE_TEST"])["subnet_id"] == subnet
    for volume_id, restored in restore.restored.items():
        assert restored.first_seen["AvailabilityZone"] == restore.subnet_zone
        assert requests[volume_id]["AvailabilityZone"] == restore.subnet_zone
        assert volume_id in restore.available  # it became available before it was judged
        assert volume_id not in restore.volumes  # and is deleted
    assert {c.params["VolumeId"] for c in restore.calls_of("DeleteVolume")} == set(restore.restored)


def test_restored_volumes_are_tagged_at_creation(outcome: Outcome) -> None:
    restore = outcome.restore
    policy = outcome.series.deployment.policy_name
    for volume_id, request in _volume_requests(outcome).items():
        restored = restore.restored[volume_id]
        expected = {
            MANAGED_BY: "terraform-aws-ops-automation",
            POLICY: policy,
            SLOT: restore.slot,
            RESTORE_TEST: restored.test_id,
            SOURCE_SNAPSHOT: str(request["SnapshotId"]),
        }
        [specification] = request["TagSpecifications"]
        assert specification["ResourceType"] == "volume"
        assert {key: _tags(specification).get(key) for key in expected} == expected
        assert {key: _tags(restored.first_seen).get(key) for key in expected} == expected
    tagged_later = {r for call in restore.calls_of("CreateTags") for r in call.params["Resources"]}
    assert tagged_later == set(restore.newest.values())  # the backups' results only


def test_volume_events_reach_the_worker_through_the_deployed_rule_and_deletions_do_not(outcome: Outcome) -> None:
    restore = outcome.restore
    assert len(restore.restored) == len(restore.newest)
    assert restore.published["createVolume available"] == len(restore.restored)
    assert restore.published["deleteVolume deleted"] == len(restore.restored)
    assert restore.messages[ebs.VOLUME_NOTIFICATION] == restore.published["createVolume available"]


def test_a_passed_restore_test_tags_its_snapshot_and_is_recorded_with_its_duration(outcome: Outcome) -> None:
    restore = outcome.restore
    by_snapshot = {restored.snapshot_id: restored for restored in restore.restored.values()}
    for source, snapshot_id in restore.newest.items():
        tags = _tags(restore.snapshots[snapshot_id])
        assert (tags[RESTORE_RESULT], tags[RESTORE_TESTED]) == ("passed", restore.slot)
        restored = by_snapshot[snapshot_id]
        record = restore.records[restored.test_id]
        details = ebs.details_of(record)
        assert (record["state"], record["source_id"]) == ("available", source)
        assert (details["result"], details["backup_ids"], details["resource_ids"]) == (
            "passed",
            snapshot_id,
            restored.volume_id,
        )
        # Created, then `creating` until EBS made it available: the test cannot pass sooner.
        assert ebs.VOLUME_CREATION_TIME.total_seconds() <= int(details["duration_seconds"]) < 30 * 60
    # Older snapshots keep no result: only the newest of each source is tested.
    untested = set(restore.snapshots) - set(restore.newest.values())
    assert untested and all(RESTORE_RESULT not in _tags(restore.snapshots[s]) for s in untested)


def test_the_restore_run_leaves_no_volume_lease_message_or_alert(outcome: Outcome) -> None:
    restore = outcome.restore
    assert not any(RESTORE_TEST in _tags(volume) for volume in restore.volumes.values())
    # Every slot taken was released (a released lease is kept as `deleted` until its TTL).
    assert restore.leases and {lease["state"] for lease in restore.leases} == {"deleted"}
    assert restore.failed_records == []
    assert restore.alerts == []
    assert restore.log.at("ERROR", "CRITICAL") == []
    assert (restore.work_queue_messages, restore.dlq_messages) == (0, 0)
