"""Tier 3: `terraform apply` examples/ami-backup against a local AWS, run a simulated week through the deployed
resources with the real handlers, fire the example's restore tests once, check what is left, then `terraform destroy`.

Everything runs once (session-scoped fixture, shared with the other examples' tier 3 through tests/e2e/conftest.py:
one local AWS, the applies at once); each test checks one property of the outcome.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.e2e import ami_backup_scenario as ami
from tests.e2e import ebs_snapshot_scenario as ebs
from tests.e2e import scenario

EXAMPLE = ami.EXAMPLE
MANAGED_BY = "ops-automation:managed-by"
POLICY = "ops-automation:policy"
SOURCE_INSTANCE = "ops-automation:source-instance"
SLOT = "ops-automation:slot"
OWNERSHIP_TAGS = (MANAGED_BY, POLICY)


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    week: ami.WeekReport
    state: ami.FinalState
    terraform_environments: dict[str, dict[str, str]]
    business_policies: dict[str, dict[str, Any]]  # IAM documents as deployed, keyed planner/worker
    region: str
    seconds: float  # the week and the reads after it
    restore: ami.AmiRestoreReport  # the restore schedule fired once after the week


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(EXAMPLE)
    ebs.wait_for_network_applies(applied)
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    deployment = scenario.deployment_from_terraform(aws, run.outputs, EXAMPLE)
    week = ami.run_week(aws, deployment)
    state = ami.final_state(aws, deployment)
    seconds = time.monotonic() - started
    restoring = ebs.restore_deployment(aws, run, deployment, ami.MODULE)
    restore = ami.run_restore(aws, week, restoring)
    business_policies = scenario.business_policies(aws, deployment)
    business_policies["restore"] = scenario.business_policies(aws, restoring)["planner"]
    applied.start_destroy(EXAMPLE)
    print(f"\ntier 3 ami-backup: week {seconds:.1f}s, restore run {restore.seconds:.1f}s")
    print("\n".join(ebs.restore_diagnostics(restore)))
    return Outcome(
        run=run,
        week=week,
        state=state,
        terraform_environments=run.outputs["function_environments"],
        business_policies=business_policies,
        region=aws.region,
        seconds=seconds,
        restore=restore,
    )


def _tags(resource: dict[str, object]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}  # type: ignore[attr-defined]


def _managed_by_instance(outcome: Outcome) -> dict[str, list[dict[str, object]]]:
    by_instance: dict[str, list[dict[str, object]]] = {}
    for image in outcome.state.images.values():
        tags = _tags(image)
        if tags.get(POLICY) == outcome.week.deployment.policy_name:
            by_instance.setdefault(tags[SOURCE_INSTANCE], []).append(image)
    return by_instance


def test_deployed_functions_run_with_the_environment_terraform_reports(outcome: Outcome) -> None:
    deployment = outcome.week.deployment
    restore = outcome.restore.deployment
    assert restore is not None
    assert deployment.planner_environment == outcome.terraform_environments["planner"]
    assert deployment.worker_environment == outcome.terraform_environments["worker"]
    assert restore.planner_environment == outcome.terraform_environments["restore"]
    for environment in (deployment.planner_environment, deployment.worker_environment, restore.planner_environment):
        assert environment["OPS_WORK_QUEUE_URL"] == deployment.work_queue_url
        assert environment["OPS_LEDGER_TABLE"] == deployment.ledger_table
        assert environment["OPS_POLICY_NAME"] == outcome.run.outputs["policy_name"]


def test_scenario_purges_within_the_week(outcome: Outcome) -> None:
    # Otherwise the retention assertions below would pass without retention ever running.
    assert outcome.week.deployment.generations < ami.DAYS - 1
    assert outcome.week.purged


def test_every_live_tagged_instance_is_backed_up_once_per_day(outcome: Outcome) -> None:
    fleet = outcome.week.fleet
    for number, day in enumerate(outcome.week.days, start=1):
        expected = set(fleet.backed_up) | ({fleet.terminated} if number < ami.TERMINATION_DAY else set())
        assert Counter(backup.instance_id for backup in day.created) == Counter(expected), day.slot
        assert {backup.slot for backup in day.created} == {day.slot}


def test_each_instance_keeps_exactly_its_generations(outcome: Outcome) -> None:
    generations = outcome.week.deployment.generations
    by_instance = _managed_by_instance(outcome)
    slots = [day.slot for day in outcome.week.days]
    for instance_id in outcome.week.fleet.backed_up:
        kept = sorted(_tags(image)[SLOT] for image in by_instance[instance_id])
        assert kept == slots[-generations:], instance_id
    # The terminated instance is no longer planned; its last backups stay (never below N good ones).
    terminated_slots = slots[: ami.TERMINATION_DAY - 1]
    kept = sorted(_tags(image)[SLOT] for image in by_instance[outcome.week.fleet.terminated])
    assert kept == terminated_slots[-generations:]


def test_backups_and_their_snapshots_carry_the_ownership_tags(outcome: Outcome) -> None:
    policy = outcome.week.deployment.policy_name
    for instance_id, images in _managed_by_instance(outcome).items():
        for image in images:
            tags = _tags(image)
            assert tags[MANAGED_BY] == "terraform-aws-ops-automation"
            assert tags[SOURCE_INSTANCE] == instance_id
            assert tags[SLOT] in {day.slot for day in outcome.week.days}
            for snapshot_id in outcome.week.backups[str(image["ImageId"])].snapshots:
                snapshot_tags = _tags(outcome.state.snapshots[snapshot_id])
                assert snapshot_tags[MANAGED_BY] == "terraform-aws-ops-automation"
                assert snapshot_tags[POLICY] == policy
                assert snapshot_tags[SOURCE_INSTANCE] == instance_id


def test_purged_backups_lose_their_snapshots(outcome: Outcome) -> None:
    purged = outcome.week.purged
    assert all(backup.snapshots for backup in purged)
    for backup in purged:
        assert backup.image_id not in outcome.state.images
        assert not set(backup.snapshots) & set(outcome.state.snapshots), backup.image_id


def test_ledger_records_every_backup_and_its_fate(outcome: Outcome) -> None:
    deployment = outcome.week.deployment
    region = outcome.region
    # Keyed by the image: an AMI event, which names nothing else, finds its item with one GetItem.
    by_image = {item["sk"]: item for item in outcome.state.ledger}
    assert set(by_image) == set(outcome.week.backups)
    purged = {backup.image_id for backup in outcome.week.purged}
    for image_id, backup in outcome.week.backups.items():
        item = by_image[image_id]
        assert item["pk"] == f"ami-backup#{deployment.policy_name}#local#{region}"
        assert (item["source_id"], item["slot"]) == (backup.instance_id, backup.slot)
        assert item["state"] == ("deleted" if image_id in purged else "available"), image_id
        assert int(item["expires_at"]) > time.time()


def test_ami_state_events_reach_the_worker_through_the_deployed_rule(outcome: Outcome) -> None:
    routed = sum(day.messages[ami.STATE_CHANGE] for day in outcome.week.days)
    # One event per image that became available: every backup, plus the unmanaged AMI of the fleet.
    assert routed == len(outcome.week.backups) + 1


def test_nothing_failed_and_no_message_is_left(outcome: Outcome) -> None:
    assert [record for day in outcome.week.days for record in day.failed_records] == []
    assert outcome.week.log.at("ERROR", "CRITICAL") == []
    assert outcome.state.dlq_messages == 0
    assert outcome.state.work_queue_messages == 0


def test_untagged_instance_is_never_backed_up(outcome: Outcome) -> None:
    untagged = outcome.week.fleet.untagged
    assert all(backup.instance_id != untagged for backup in outcome.week.backups.values())
    assert untagged not in _managed_by_instance(outcome)


def test_unmanaged_ami_is_untouched(outcome: Outcome) -> None:
    fleet = outcome.week.fleet
    image = outcome.state.images[fleet.unmanaged_image]
    assert _tags(image) == {}
    assert set(fleet.unmanaged_snapshots) <= set(outcome.state.snapshots)


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    applied.wait_destroyed(EXAMPLE)
    assert outcome.run.destroyed
    print(
        f"\ntier 3 ami-backup: apply {outcome.run.apply_seconds:.0f}s, destroy {outcome.run.destroy_seconds:.0f}s, "
        f"week {outcome.seconds:.0f}s; {len(outcome.week.backups)} backups created, "
        f"{len(outcome.week.purged)} purged, {len(outcome.state.ledger)} ledger items"
    )


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_deployed_policies_keep_destruction_and_creation_bound_to_ownership_tags(outcome: Outcome) -> None:
    """The documents as the real provider rendered and deployed them (composed with source_policy_documents,
    which the mock-provider tests of tier 2 cannot render)."""
    policy = outcome.week.deployment.policy_name
    ownership = {MANAGED_BY: "terraform-aws-ops-automation", POLICY: policy}
    worker = _statements(outcome.business_policies["worker"])
    for action, condition_key in (
        ("ec2:DeregisterImage", "aws:ResourceTag"),
        ("ec2:DeleteSnapshot", "aws:ResourceTag"),
    ):
        granting = [statement for statement in worker if action in _listed(statement["Action"])]
        assert granting, action
        for statement in granting:
            assert "*" not in _listed(statement["Resource"]), action
            equals = statement["Condition"]["StringEquals"]
            assert {key: _listed(equals[f"{condition_key}/{key}"]) for key in ownership} == {
                key: [value] for key, value in ownership.items()
            }, action
    creating_backups = [
        statement
        for statement in worker
        if "ec2:CreateImage" in _listed(statement["Action"])
        and any(":image/" in arn or ":snapshot/" in arn for arn in _listed(statement["Resource"]))
    ]
    assert creating_backups
    for statement in creating_backups:
        equals = statement["Condition"]["StringEquals"]
        assert {key: _listed(equals[f"aws:RequestTag/{key}"]) for key in ownership} == {
            key: [value] for key, value in ownership.items()
        }


def test_deployed_policies_allow_every_resource_only_to_describe_and_assume_nothing(outcome: Outcome) -> None:
    for function, document in outcome.business_policies.items():
        for statement in _statements(document):
            actions = _listed(statement["Action"])
            assert "sts:AssumeRole" not in actions, function  # the example has no target roles
            if "*" in _listed(statement["Resource"]):
                # Reads with no resource-level permissions; ListImagesInRecycleBin since the purge keeps the
                # snapshots of AMIs in the Recycle Bin.
                reads = [a for a in actions if a.startswith("ec2:Describe") or a == "ec2:ListImagesInRecycleBin"]
                assert reads == actions, (function, actions)
    planner_actions = {a for s in _statements(outcome.business_policies["planner"]) for a in _listed(s["Action"])}
    assert planner_actions == {"ec2:DescribeInstances", "ec2:DescribeImages"}
    restore_actions = {a for s in _statements(outcome.business_policies["restore"]) for a in _listed(s["Action"])}
    assert restore_actions == {"ec2:DescribeImages"}


def test_deployed_policies_bind_restore_launches_and_terminations_to_the_subnet_and_the_restore_tag(
    outcome: Outcome,
) -> None:
    """The restore statements as the real provider rendered them: launches only into the example's subnet and
    security group, only of the policy's images, everything launched tagged; terminations only of restored
    instances of the policy; the images' tags writable only for the two restore-result keys."""
    policy = outcome.week.deployment.policy_name
    ownership = {MANAGED_BY: ["terraform-aws-ops-automation"], POLICY: [policy]}
    worker = _statements(outcome.business_policies["worker"])
    subnet, group = outcome.run.outputs["restore_subnet_id"], outcome.run.outputs["restore_security_group_id"]
    launching = [s for s in worker if "ec2:RunInstances" in _listed(s["Action"])]
    into = [s for s in launching if any(":subnet/" in arn for arn in _listed(s["Resource"]))]
    assert [sorted(arn.rsplit(":", 1)[-1] for arn in _listed(s["Resource"])) for s in into] == [
        sorted([f"subnet/{subnet}", f"security-group/{group}"])
    ]
    created = [s for s in launching if any(":instance/" in arn for arn in _listed(s["Resource"]))]
    assert created
    for statement in created:
        equals = statement["Condition"]["StringEquals"]
        assert {key: _listed(equals[f"aws:RequestTag/{key}"]) for key in ownership} == ownership
        assert _listed(statement["Condition"]["Null"][f"aws:RequestTag/{ami.RESTORE_TEST}"]) == ["false"]
    [terminating] = [s for s in worker if "ec2:TerminateInstances" in _listed(s["Action"])]
    assert all(":instance/" in arn for arn in _listed(terminating["Resource"]))
    equals = terminating["Condition"]["StringEquals"]
    assert {key: _listed(equals[f"aws:ResourceTag/{key}"]) for key in ownership} == ownership
    assert _listed(terminating["Condition"]["Null"][f"aws:ResourceTag/{ami.RESTORE_TEST}"]) == ["false"]
    tagging_images = [
        s
        for s in worker
        if "ec2:CreateTags" in _listed(s["Action"]) and any(":image/" in arn for arn in _listed(s["Resource"]))
    ]
    marking = [s for s in tagging_images if "ForAllValues:StringEquals" in s.get("Condition", {})]
    assert [sorted(_listed(s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])) for s in marking] == [
        sorted([ami.RESTORE_RESULT, ami.RESTORE_TESTED])
    ]
    # Any other tagging of images is tagging at creation (CreateImage's TagSpecifications).
    for statement in tagging_images:
        if statement not in marking:
            assert _listed(statement["Condition"]["StringEquals"]["ec2:CreateAction"]) == ["CreateImage"]


# ---------------------------------------------------------------------------------------------------------------
# The restore tests (restore_test of the example), fired once after the week
# ---------------------------------------------------------------------------------------------------------------


def _launches(outcome: Outcome) -> dict[str, dict[str, Any]]:
    """The accepted RunInstances requests of the restore run, by the instance they launched."""
    return {
        str(instance["InstanceId"]): dict(call.params)
        for call in outcome.restore.calls_of("RunInstances")
        for instance in call.response["Instances"]
    }


def _passed(outcome: Outcome) -> list[ami.RestoredInstance]:
    return [restored for restored in outcome.restore.restored.values() if not restored.impaired]


def _impaired(outcome: Outcome) -> ami.RestoredInstance:
    [impaired] = [restored for restored in outcome.restore.restored.values() if restored.impaired]
    return impaired


def test_the_restore_schedule_tests_the_newest_backup_of_every_source_once(outcome: Outcome) -> None:
    restore = outcome.restore
    assert restore.deployment is not None
    assert restore.deployment.planner_handler == "ops_automation.ami_backup.handlers.restore_handler"
    # Every source of the week, the instance terminated on day 4 too (its last backups are still there).
    assert set(restore.newest) == set(outcome.week.fleet.tagged)
    assert sorted(r.image_id for r in restore.restored.values()) == sorted(restore.newest.values())
    assert sorted(str(p["ImageId"]) for p in _launches(outcome).values()) == sorted(restore.newest.values())
    records = restore.records
    assert {record["source_id"] for record in records.values()} == set(restore.newest)
    assert {record["slot"] for record in records.values()} == {restore.slot}


def test_restored_instances_run_in_the_example_subnet_and_group_without_a_public_address(outcome: Outcome) -> None:
    subnet, group = outcome.run.outputs["restore_subnet_id"], outcome.run.outputs["restore_security_group_id"]
    launches = _launches(outcome)
    assert set(launches) == set(outcome.restore.restored)
    for instance_id, restored in outcome.restore.restored.items():
        seen = restored.first_seen
        assert seen["SubnetId"] == subnet, instance_id
        [interface] = seen["NetworkInterfaces"]
        assert (interface["SubnetId"], [g["GroupId"] for g in interface["Groups"]]) == (subnet, [group]), instance_id
        # moto lists the groups on the network interface only; AWS also on the instance (the same ones).
        assert [g["GroupId"] for g in seen["SecurityGroups"]] in ([], [group]), instance_id
        assert "PublicIpAddress" not in seen and not interface.get("Association", {}).get("PublicIp"), instance_id
        request = launches[instance_id]
        [asked] = request["NetworkInterfaces"]
        assert (asked["SubnetId"], asked["Groups"]) == (subnet, [group])
        assert asked["AssociatePublicIpAddress"] is False
        assert "KeyName" not in request and "UserData" not in request
        assert request["MetadataOptions"]["HttpTokens"] == "required"
        assert request["InstanceInitiatedShutdownBehavior"] == "terminate"


def test_restored_instances_are_tagged_at_launch(outcome: Outcome) -> None:
    restore = outcome.restore
    policy = outcome.week.deployment.policy_name
    for instance_id, request in _launches(outcome).items():
        restored = restore.restored[instance_id]
        expected = {
            MANAGED_BY: "terraform-aws-ops-automation",
            POLICY: policy,
            SLOT: restore.slot,
            ami.RESTORE_TEST: restored.test_id,
            ami.SOURCE_IMAGE: str(request["ImageId"]),
        }
        specifications = {spec["ResourceType"]: _tags(spec) for spec in request["TagSpecifications"]}
        assert set(specifications) == {"instance", "volume", "network-interface"}
        for resource_type, tags in specifications.items():
            assert {key: tags.get(key) for key in expected} == expected, resource_type
        assert {key: _tags(restored.first_seen).get(key) for key in expected} == expected
    # Nothing is tagged after the fact but the backups (their result).
    tagged_later = {r for call in restore.calls_of("CreateTags") for r in call.params["Resources"]}
    assert tagged_later and all(resource.startswith("ami-") for resource in tagged_later)


def test_instance_state_events_reach_the_worker_through_the_deployed_rule(outcome: Outcome) -> None:
    restore = outcome.restore
    restored = len(restore.restored)
    assert restored == len(restore.newest)
    # moto emits none: the scenario published each launch's pending and running, each termination's end (the
    # restored instances' and the swept leftover's, launched before the run).
    assert restore.published["pending"] == restore.published["running"] == restored
    assert restore.published["terminated"] == restored + 1
    routed = sum(count for state, count in restore.published.items() if state in ami.ROUTED_STATES)
    assert restore.messages[ami.INSTANCE_STATE] == routed


def test_a_restore_test_passes_once_the_status_checks_pass_then_the_instance_goes_and_the_backup_is_tagged(
    outcome: Outcome,
) -> None:
    restore = outcome.restore
    passed = _passed(outcome)
    assert len(passed) == len(restore.newest) - 1
    # The checks were still initializing at the first check: the worker polled again before passing.
    assert restore.messages["restore_check"] > len(restore.restored)
    for restored in passed:
        assert restore.instances[restored.instance_id]["State"]["Name"] == "terminated"
        image_tags = _tags(restore.images[restored.image_id])
        assert (image_tags[ami.RESTORE_RESULT], image_tags[ami.RESTORE_TESTED]) == ("passed", restore.slot)
        record = restore.records[restored.test_id]
        details = ebs.details_of(record)
        assert record["state"] == "available"
        assert (details["result"], details["backup_ids"], details["resource_ids"]) == (
            "passed",
            restored.image_id,
            restored.instance_id,
        )
        # Launch, pending, then the status checks initializing: the test cannot pass sooner.
        duration = int(details["duration_seconds"])
        assert (ami.LAUNCH_TIME + ami.STATUS_CHECK_TIME).total_seconds() <= duration < 30 * 60
        assert details["started_at"] < details["finished_at"]


def test_an_impaired_restore_alerts_once_terminates_the_instance_and_tags_the_backup_failed(outcome: Outcome) -> None:
    restore = outcome.restore
    impaired = _impaired(outcome)
    source = outcome.week.backups[impaired.image_id].instance_id
    assert outcome.week.fleet.names[source] == ami.IMPAIRED_NAME
    [alert] = [alert for alert in restore.alerts if alert["alert"] == ami.TEST_FAILED]
    assert (alert["source_id"], alert["backup_ids"], alert["resource_ids"]) == (
        source,
        [impaired.image_id],
        [impaired.instance_id],
    )
    assert "impaired" in alert["reason"]
    assert alert["policy"] == outcome.week.deployment.policy_name
    assert restore.instances[impaired.instance_id]["State"]["Name"] == "terminated"
    image_tags = _tags(restore.images[impaired.image_id])
    assert (image_tags[ami.RESTORE_RESULT], image_tags[ami.RESTORE_TESTED]) == ("failed", restore.slot)
    record = restore.records[impaired.test_id]
    assert record["state"] == "failed"
    assert ebs.details_of(record)["result"] == "failed"


def test_the_restore_run_leaves_no_instance_lease_message_or_other_alert(outcome: Outcome) -> None:
    restore = outcome.restore
    assert {i["State"]["Name"] for i in restore.instances.values()} == {"terminated"}
    # Every slot taken was released (a released lease is kept as `deleted` until its TTL).
    assert restore.leases and {lease["state"] for lease in restore.leases} == {"deleted"}
    assert restore.failed_records == []
    # The impaired copy's alert, and the sweep's report of the planted leftover (a finding, logged at WARNING).
    assert sorted(alert["alert"] for alert in restore.alerts) == sorted([ami.TEST_FAILED, ami.LEFTOVERS_CLEANED])
    assert [line["message"] for line in restore.log.at("ERROR", "CRITICAL")] == [ami.TEST_FAILED]
    assert (restore.work_queue_messages, restore.dlq_messages) == (0, 0)
    # The week's backups are all still there: a restore test takes nothing away.
    assert set(outcome.state.images) == set(restore.images) | {outcome.week.fleet.unmanaged_image}


def _time(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_a_launch_refused_for_capacity_is_retried_with_back_off_then_passes_without_an_alert(outcome: Outcome) -> None:
    restore = outcome.restore
    image_id = restore.capacity_image
    assert image_id is not None and image_id in restore.newest.values()
    source = outcome.week.backups[image_id].instance_id
    assert outcome.week.fleet.names[source] == ami.CAPACITY_NAME
    [restored] = restore.restored_from(image_id)
    # The first launch refused (and nothing launched), the second - attempt 2, a new ClientToken - accepted.
    [refused] = restore.refused
    assert (refused.operation, refused.code, refused.params["ImageId"]) == (
        "RunInstances",
        ami.CAPACITY_ERROR,
        image_id,
    )
    [accepted] = [request for request in _launches(outcome).values() if request["ImageId"] == image_id]
    # A new request (its token names the attempt), not a redelivery of the refused one.
    assert accepted["ClientToken"] != refused.params["ClientToken"]
    [warning] = [line for line in restore.log.at("WARNING") if line.get("test_id") == restored.test_id]
    assert "refused for capacity" in warning["message"]
    assert (warning["error_code"], warning["attempt"], warning["retry_in_seconds"]) == (ami.CAPACITY_ERROR, 1, 60)
    record = restore.records[restored.test_id]
    details = ebs.details_of(record)
    assert (record["state"], details["result"], details["attempt"]) == ("available", "passed", "2")
    # Back-off: the second attempt started a minute after the schedule fired.
    assert _time(details["started_at"]) >= _time(restore.slot) + timedelta(seconds=60)
    assert restore.instances[restored.instance_id]["State"]["Name"] == "terminated"
    image_tags = _tags(restore.images[image_id])
    assert (image_tags[ami.RESTORE_RESULT], image_tags[ami.RESTORE_TESTED]) == ("passed", restore.slot)
    assert not [a for a in restore.alerts if a.get("source_id") == source or image_id in a.get("backup_ids", [])]


def test_the_sweep_terminates_only_the_abandoned_restore_instance_and_reports_it(outcome: Outcome) -> None:
    restore = outcome.restore
    leftover, bystander = restore.leftover, restore.bystander
    assert leftover is not None and bystander is not None
    planted = restore.planted
    policy = outcome.week.deployment.policy_name
    for instance_id in (leftover, bystander):
        tags = _tags(planted[instance_id])
        assert (tags[MANAGED_BY], tags[POLICY]) == ("terraform-aws-ops-automation", policy)
    assert _tags(planted[leftover])[ami.RESTORE_TEST] == ami.LEFTOVER_TEST_ID
    assert ami.RESTORE_TEST not in _tags(planted[bystander])
    [report] = [alert for alert in restore.alerts if alert["alert"] == ami.LEFTOVERS_CLEANED]
    assert report["resource_ids"] == [leftover]
    assert report["test_ids"] == []  # no test record of the run names it
    assert report["policy"] == policy
    # Launched before the deadline and grace that end at the sweep (the planner's, when the schedule fired).
    assert _time(planted[leftover]["LaunchTime"]) < _time(report["created_before"]) <= _time(restore.slot)
    assert planted[leftover]["State"]["Name"] == "terminated"
    assert planted[bystander]["State"]["Name"] == "running"
    terminated = [i for call in restore.calls_of("TerminateInstances") for i in call.params["InstanceIds"]]
    assert terminated.count(leftover) == 1 and bystander not in terminated
    # Neither is taken for one of the run's restored instances.
    assert not {leftover, bystander} & set(restore.restored)
