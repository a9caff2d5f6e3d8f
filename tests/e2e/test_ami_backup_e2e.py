"""Tier 3: `terraform apply` examples/ami-backup against a local AWS, run a simulated week through the deployed
resources with the real handlers, check what is left, then `terraform destroy`.

Everything runs once (session-scoped fixture, shared with the other examples' tier 3 through tests/e2e/conftest.py:
one local AWS, the applies at once); each test checks one property of the outcome.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from tests.e2e import ami_backup_scenario as ami
from tests.e2e import scenario

EXAMPLE = ami.EXAMPLE
MANAGED_BY = "ops-automation:managed-by"
POLICY = "ops-automation:policy"
SOURCE_INSTANCE = "ops-automation:source-instance"
SLOT = "ops-automation:slot"


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    week: ami.WeekReport
    state: ami.FinalState
    terraform_environments: dict[str, dict[str, str]]
    business_policies: dict[str, dict[str, Any]]  # IAM documents as deployed, keyed planner/worker
    region: str
    seconds: float  # the week and the reads after it


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(EXAMPLE)
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    deployment = scenario.deployment_from_terraform(aws, run.outputs, EXAMPLE)
    week = ami.run_week(aws, deployment)
    state = ami.final_state(aws, deployment)
    business_policies = scenario.business_policies(aws, deployment)
    applied.start_destroy(EXAMPLE)
    return Outcome(
        run=run,
        week=week,
        state=state,
        terraform_environments=run.outputs["function_environments"],
        business_policies=business_policies,
        region=aws.region,
        seconds=time.monotonic() - started,
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
    assert deployment.planner_environment == outcome.terraform_environments["planner"]
    assert deployment.worker_environment == outcome.terraform_environments["worker"]
    for environment in (deployment.planner_environment, deployment.worker_environment):
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
