"""Tier 3: `terraform apply` examples/landing-zone against a local AWS with three accounts (the hub, moto's default
account, and two workload accounts reached through OrganizationAccountAccessRole), run the hub's AMI backups into
the workload accounts through the deployed roles, check what the hub may not do there, then `terraform destroy`.

One shared apply (tests/e2e/conftest.py); each test checks one property of the outcome.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from scripts.local_aws import ACCOUNT_ID as HUB_ACCOUNT
from tests.e2e import landing_zone_scenario as lz
from tests.e2e import scenario

EXAMPLE = lz.EXAMPLE
AMI_BACKUP = "ami-backup"
EBS_SNAPSHOT = "ebs-snapshot"
# The example's defaults (examples/landing-zone/variables.tf), read back below from what Terraform deployed.
EXTERNAL_ID = "landing-zone-example-7f3a"


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    series: lz.Series
    refusals: lz.Refusals
    workload_roles: dict[str, dict[str, Any]]  # account -> role name -> {trust, policies}
    module_outputs: dict[str, dict[str, Any]]  # module block -> its outputs
    hub_images: dict[str, dict[str, Any]]
    workload_images: dict[str, dict[str, Any]]  # every image left in the workload accounts, by id
    workload_snapshots: set[str]
    ledger: list[dict[str, Any]]
    seconds: float


def _roles_in(aws: Any, account: str) -> dict[str, dict[str, Any]]:
    iam = lz.client(aws, "iam", lz.administrator(aws, account))
    roles = {}
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        policies = {
            policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        }
        roles[name] = {"trust": role["AssumeRolePolicyDocument"], "policies": policies, "arn": role["Arn"]}
    return roles


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(EXAMPLE)
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    modules = {name: scenario.module_outputs(run, name) for name in ("ami_backup", "ebs_snapshot")}
    deployment = scenario.deployment_from_terraform(aws, modules["ami_backup"], EXAMPLE)
    series = lz.run_series(aws, deployment, lz.function_roles(aws, deployment), deployment.generations + 1)
    workload_a_roles = run.outputs["workload_role_arns"]["workload_a"]
    refusals = lz.refusals(
        aws,
        series.fleet,
        ami_worker_role=modules["ami_backup"]["worker_role_arn"],
        ebs_worker_role=modules["ebs_snapshot"]["worker_role_arn"],
        workload_roles=workload_a_roles,
        ami_session=f"ops-automation-{run.outputs['ami_backup_policy_name']}",
        ebs_session=f"ops-automation-{run.outputs['ebs_snapshot_policy_name']}",
        external_id=EXTERNAL_ID,
    )
    workloads = lz.workload_clients(aws)
    images = {i: image for ec2 in workloads.values() for i, image in lz.registered(ec2).items()}
    snapshots = {
        snapshot["SnapshotId"]
        for ec2 in workloads.values()
        for snapshot in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }
    outcome = Outcome(
        run=run,
        series=series,
        refusals=refusals,
        workload_roles={account: _roles_in(aws, account) for account in (lz.WORKLOAD_A, lz.WORKLOAD_B)},
        module_outputs=modules,
        hub_images=lz.registered(aws.client("ec2")),
        workload_images=images,
        workload_snapshots=snapshots,
        ledger=scenario.ledger_items(aws, deployment.ledger_table),
        seconds=time.monotonic() - started,
    )
    applied.start_destroy(EXAMPLE)
    return outcome


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def _policy_images(outcome: Outcome) -> dict[str, dict[str, Any]]:
    policy = outcome.series.deployment.policy_name
    return {
        i: image for i, image in outcome.workload_images.items() if _tags(image).get(lz.OWNERSHIP_KEYS[1]) == policy
    }


def _hub_role_arns(outcome: Outcome) -> list[str]:
    return [
        outputs[f"{function}_role_arn"]
        for outputs in outcome.module_outputs.values()
        for function in ("planner", "worker")
    ]


def test_workload_roles_grant_each_hub_module_its_own_policy_trusted_by_its_functions_only(outcome: Outcome) -> None:
    for account, roles in outcome.workload_roles.items():
        for module, block in ((AMI_BACKUP, "ami_backup"), (EBS_SNAPSHOT, "ebs_snapshot")):
            role = roles[f"ops-automation-{module}"]
            outputs = outcome.module_outputs[block]
            assert role["arn"] == f"arn:aws:iam::{account}:role/ops-automation-{module}"
            assert list(role["policies"].values()) == [json.loads(outputs["target_role_policy_json"])]
            (statement,) = role["trust"]["Statement"]
            assert sorted(statement["Principal"]["AWS"]) == sorted(
                [outputs["planner_role_arn"], outputs["worker_role_arn"]]
            )
            assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == EXTERNAL_ID
            assert len(json.dumps(role["trust"], separators=(",", ":"))) <= 2048


def test_backups_are_made_in_the_workload_accounts_and_none_in_the_hub(outcome: Outcome) -> None:
    fleet = outcome.series.fleet
    for day in outcome.series.days:
        assert sorted(day.created.values()) == sorted(fleet.tagged), day.slot
    created = {i for day in outcome.series.days for i in day.created}
    assert created <= set(outcome.series.snapshots_of)
    assert {i: image for i, image in outcome.hub_images.items() if _tags(image)} == {}
    owners = {image["OwnerId"] for image in _policy_images(outcome).values()}
    assert owners == {lz.WORKLOAD_A, lz.WORKLOAD_B}


def test_backups_are_retired_through_the_role_after_generations_plus_one_slots(outcome: Outcome) -> None:
    generations = outcome.series.deployment.generations
    days = outcome.series.days
    assert len(days) == generations + 1
    retired = {i: s for day in days for i, s in day.retired.items()}
    assert retired == days[0].created
    for image_id in retired:
        assert not set(outcome.series.snapshots_of[image_id]) & outcome.workload_snapshots, image_id
    kept = {image_id for day in days[1:] for image_id in day.created}
    assert set(_policy_images(outcome)) == kept


def test_retirement_calls_were_made_by_the_workload_role_sessions(outcome: Outcome) -> None:
    session = f"ops-automation-{outcome.series.deployment.policy_name}"
    expected = {
        account: f"arn:aws:sts::{account}:assumed-role/ops-automation-{AMI_BACKUP}/{session}"
        for account in (lz.WORKLOAD_A, lz.WORKLOAD_B)
    }
    retired = {i: s for day in outcome.series.days for i, s in day.retired.items()}
    deregistrations = {
        d.resource.rsplit("/", 1)[-1]: d for d in outcome.series.decisions if d.action == "ec2:DeregisterImage"
    }
    assert set(deregistrations) == set(retired)
    for decision in deregistrations.values():
        assert decision.allowed
        assert decision.principal == expected[decision.account]
    deletions = [d for d in outcome.series.decisions if d.action == "ec2:DeleteSnapshot"]
    assert {d.resource.rsplit("/", 1)[-1] for d in deletions} == {
        snapshot for image_id in retired for snapshot in outcome.series.snapshots_of[image_id]
    }
    assert all(d.allowed and d.principal == expected[d.account] for d in deletions)


def test_handlers_reach_the_workload_accounts_as_their_function_roles(outcome: Outcome) -> None:
    """The handlers ran with their execution roles' credentials, so each AssumeRole into a workload account was
    the deployed hub role's, decided by the workload role's trust policy (I1) - not the emulator's dummy key."""
    outputs = outcome.module_outputs["ami_backup"]
    deployment = outcome.series.deployment
    function_roles = {
        deployment.planner_function: outputs["planner_role_arn"],
        deployment.worker_function: outputs["worker_role_arn"],
    }
    expected_callers = {
        f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/{arn.rsplit('/', 1)[-1]}/{function}"
        for function, arn in function_roles.items()
    }
    assumed = [d for d in outcome.series.decisions if d.action == "sts:AssumeRole"]
    assert {d.principal for d in assumed} == expected_callers
    assert {d.resource for d in assumed} == {
        f"arn:aws:iam::{account}:role/ops-automation-{AMI_BACKUP}" for account in (lz.WORKLOAD_A, lz.WORKLOAD_B)
    }
    assert all(d.allowed for d in assumed)


def test_ledger_is_kept_in_the_hub_and_names_the_workload_accounts(outcome: Outcome) -> None:
    policy = outcome.series.deployment.policy_name
    accounts = {item["pk"].split("#")[2] for item in outcome.ledger}
    assert accounts == {lz.WORKLOAD_A, lz.WORKLOAD_B}
    assert all(item["pk"].startswith(f"{AMI_BACKUP}#{policy}#") for item in outcome.ledger)
    assert {item["sk"] for item in outcome.ledger} == set(outcome.series.snapshots_of)


def test_untargeted_and_hub_instances_are_never_backed_up(outcome: Outcome) -> None:
    fleet = outcome.series.fleet
    sources = {s for day in outcome.series.days for s in day.created.values()}
    assert fleet.untagged not in sources
    assert fleet.hub_tagged not in sources


def test_the_hub_cannot_touch_unowned_resources_in_a_workload_account(outcome: Outcome) -> None:
    refusals = outcome.refusals
    assert refusals.worker_deregisters_unowned_image == "UnauthorizedOperation"
    assert refusals.worker_deletes_unowned_snapshot == "UnauthorizedOperation"
    assert refusals.worker_deletes_other_policys_snapshot == "UnauthorizedOperation"
    assert refusals.worker_forges_ownership_tags == "UnauthorizedOperation"
    fleet = outcome.series.fleet
    assert fleet.unowned_image in outcome.workload_images
    assert _tags(outcome.workload_images[fleet.unowned_image]) == {}
    assert set(fleet.unowned_snapshots) | {fleet.foreign_snapshot} <= outcome.workload_snapshots


def test_only_the_modules_functions_with_the_external_id_may_assume_the_workload_roles(outcome: Outcome) -> None:
    refusals = outcome.refusals
    assert refusals.worker_without_external_id == "AccessDenied"
    assert refusals.intruder_with_external_id == "AccessDenied"
    assert refusals.ebs_worker_into_ami_backup_role == "AccessDenied"
    assert refusals.ebs_worker_into_its_own_role == "allowed"
    refused = {d.principal.split("/")[1] for d in refusals.decisions if not d.allowed and d.action == "sts:AssumeRole"}
    assert refused == {
        outcome.module_outputs["ami_backup"]["worker_role_arn"].rsplit("/", 1)[-1],
        "landing-zone-intruder",
        outcome.module_outputs["ebs_snapshot"]["worker_role_arn"].rsplit("/", 1)[-1],
    }
    assert {d.account for d in refusals.decisions} == {lz.WORKLOAD_A}
    assert HUB_ACCOUNT not in {d.account for d in refusals.decisions}


def test_nothing_failed_and_no_message_is_left(outcome: Outcome) -> None:
    assert [record for day in outcome.series.days for record in day.failed_records] == []
    assert outcome.series.log.at("ERROR", "CRITICAL") == []


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    applied.wait_destroyed(EXAMPLE)
    assert outcome.run.destroyed
    aws = applied.aws_for(EXAMPLE)
    for account in (lz.WORKLOAD_A, lz.WORKLOAD_B):
        assert not [name for name in _roles_in(aws, account) if name.startswith("ops-automation-")], account
    hub_roles = {role["RoleName"] for role in aws.client("iam").list_roles()["Roles"]}
    assert not {arn.rsplit("/", 1)[-1] for arn in _hub_role_arns(outcome)} & hub_roles
    print(
        f"\ntier 3 landing-zone: apply_seconds {outcome.run.apply_seconds:.0f}s, destroy "
        f"{outcome.run.destroy_seconds:.0f}s, scenario {outcome.seconds:.0f}s; "
        f"{sum(len(day.created) for day in outcome.series.days)} backups in 2 workload accounts, "
        f"{sum(len(day.retired) for day in outcome.series.days)} retired through their roles"
    )
