"""Tier 3: make an organization on the local AWS (the hub, moto's default account, is its management account; two
workload accounts under the `Workloads` OU, one of them in a child OU, and a suspended one), `terraform apply`
examples/landing-zone with those ids (the deploy roles of the workload accounts, the OU, the organization id), run
the hub's AMI backups into the accounts of the OU through the deployed roles - the planner enqueues one scope item
per account x Region, the worker turns each into that account's work items, the state events are forwarded from
the workload accounts to the hub's bus - check what the hub may not do there, then `terraform destroy`.

The example's inputs are ids moto generates when the organization is made, which only exist once the local AWS
runs. So this module names no `EXAMPLE` but a `PREPARE` hook (tests/e2e/conftest.py): it makes the organization on
the session's local AWS before the shared applies start, and returns a variant of the example (scenario.Variant: the
ids as its variables' defaults), applied alongside every other example and destroyed in the background once its
scenario is done.

One apply (session-scoped fixtures); each test checks one property of the outcome.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scripts.local_aws import ACCOUNT_ID as HUB_ACCOUNT
from scripts.local_aws import LocalAws
from tests.e2e import landing_zone_scenario as lz
from tests.e2e import scenario

AMI_BACKUP = "ami-backup"
EBS_SNAPSHOT = "ebs-snapshot"
# The example's defaults (examples/landing-zone/variables.tf), read back below from what Terraform deployed.
EXTERNAL_ID = "landing-zone-example-7f3a"
REGIONS = ("ap-northeast-1", lz.OSAKA)
FORWARDING_RULE = "ops-automation-forward"  # modules/event-forwarding's default name


@dataclass(frozen=True)
class LandingZone:
    aws: LocalAws
    organization: lz.Organization
    examples: scenario.AppliedExamples  # the session's applies, this module's variant among them
    path: Path  # the variant's path in the staged tree


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
    hub_bus_policy: dict[str, Any]
    spoke_rules: dict[tuple[str, str], dict[str, Any]]  # (account, region) -> {rule, targets}
    business: dict[str, dict[str, Any]]  # ami-backup's planner/worker business policies
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


def _spoke_rules(aws: LocalAws, accounts: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    rules = {}
    for (account, region), events in lz.workload_clients(aws, accounts, "events").items():
        found = events.list_rules(NamePrefix=FORWARDING_RULE)["Rules"]
        for rule in found:
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            rules[(account, region)] = {"rule": rule, "targets": targets}
    return rules


def _hub_bus_policy(aws: LocalAws) -> dict[str, Any]:
    policy = aws.client("events").describe_event_bus(Name="default").get("Policy")
    return dict(json.loads(policy)) if policy else {}


# The organization PREPARE made, for the fixtures (PREPARE runs once per session, before them).
_prepared: dict[str, lz.Organization] = {}


def PREPARE(aws: LocalAws) -> scenario.Variant:
    """The organization, made on the session's local AWS, and the example's variant with its ids."""
    organization = lz.create_organization(dataclasses.replace(aws, region=scenario.example_region(lz.EXAMPLE)))
    _prepared["organization"] = organization
    return lz.variant(organization)


@pytest.fixture(scope="session")
def landing_zone(applied: scenario.AppliedExamples) -> LandingZone:
    organization = _prepared["organization"]
    aws = dataclasses.replace(applied.aws, region=scenario.example_region(lz.EXAMPLE))
    return LandingZone(aws, organization, applied, lz.variant(organization).path)


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples, landing_zone: LandingZone) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = landing_zone.examples.run(landing_zone.path)
    started = time.monotonic()
    aws = landing_zone.examples.aws_for(landing_zone.path)
    organization = landing_zone.organization
    # Applied with the other examples, its rules on the shared default bus received their scenarios' events.
    scenario.purge_work_queues(aws.client("sqs"), scenario.work_queue_urls(run))
    modules = {name: scenario.module_outputs(run, name) for name in ("ami_backup", "ebs_snapshot")}
    deployment = scenario.deployment_from_terraform(aws, modules["ami_backup"], lz.EXAMPLE)
    series = lz.run_series(
        aws, deployment, lz.function_roles(aws, deployment), organization, deployment.generations + 1
    )
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
    workloads = lz.workload_clients(aws, organization.workloads)
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
        workload_roles={account: _roles_in(aws, account) for account in organization.workloads},
        module_outputs=modules,
        hub_images=lz.registered(aws.client("ec2")),
        workload_images=images,
        workload_snapshots=snapshots,
        ledger=scenario.ledger_items(aws, deployment.ledger_table),
        hub_bus_policy=_hub_bus_policy(aws),
        spoke_rules=_spoke_rules(aws, organization.workloads),
        business=scenario.business_policies(aws, deployment),
        seconds=time.monotonic() - started,
    )
    landing_zone.examples.start_destroy(landing_zone.path)
    # The forwarded events reached every rule of the hub's default bus, the other examples' too: cleared before
    # their scenarios.
    others = [
        url
        for example in applied.live()
        if applied.region_of(example) == aws.region
        for url in scenario.work_queue_urls(applied.run(example))
    ]
    scenario.purge_work_queues(aws.client("sqs"), others)
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


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


# ---------------------------------------------------------------------------------------------------------------
# What was deployed
# ---------------------------------------------------------------------------------------------------------------


def test_the_hub_targets_the_ou_by_role_name_within_the_organization(outcome: Outcome) -> None:
    organization = outcome.series.organization
    for environment in (outcome.series.deployment.planner_environment, outcome.series.deployment.worker_environment):
        assert json.loads(environment["OPS_TARGET_ORGANIZATIONAL_UNITS"]) == [
            {"id": organization.workloads_ou, "recursive": True}
        ]
        assert environment["OPS_TARGET_ROLE_NAME"] == f"ops-automation-{AMI_BACKUP}"
        assert json.loads(environment["OPS_TARGET_ACCOUNTS"]) == []
        assert json.loads(environment["OPS_TARGET_ROLE_ARNS"]) == []
        assert json.loads(environment["OPS_TARGET_REGIONS"]) == list(REGIONS)
    # The worker may assume the role by its name in any account of the organization, and in no other.
    (assume,) = [s for s in _statements(outcome.business["worker"]) if "sts:AssumeRole" in s["Action"]]
    assert assume["Resource"] in (
        f"arn:aws:iam::*:role/ops-automation-{AMI_BACKUP}",
        [f"arn:aws:iam::*:role/ops-automation-{AMI_BACKUP}"],
    )
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": organization.id}}


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
            assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == outcome.series.organization.id
            assert len(json.dumps(role["trust"], separators=(",", ":"))) <= 2048


def test_the_hub_bus_accepts_events_from_the_organization_only(outcome: Outcome) -> None:
    statements = _statements(outcome.hub_bus_policy)
    (organization,) = [s for s in statements if s.get("Sid") == "landing-zone-organization-events"]
    assert organization["Effect"] == "Allow"
    assert organization["Action"] == "events:PutEvents"
    # AWS shows Principal "*" for PutPermission's Principal "*"; moto writes it in the account form.
    assert organization["Principal"] in ("*", {"AWS": "*"}, {"AWS": "arn:aws:iam::*:root"})
    assert organization["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": outcome.series.organization.id}}
    assert organization["Resource"].endswith(f":{HUB_ACCOUNT}:event-bus/default")


def test_each_workload_account_forwards_its_own_state_events_to_the_hub_bus_in_each_region(
    outcome: Outcome,
) -> None:
    organization = outcome.series.organization
    hub_bus = outcome.run.outputs["hub_event_bus_arn"]
    assert hub_bus == f"arn:aws:events:ap-northeast-1:{HUB_ACCOUNT}:event-bus/default"
    assert set(outcome.spoke_rules) == {(account, region) for account in organization.workloads for region in REGIONS}
    for (account, _region), spoke in outcome.spoke_rules.items():
        pattern = json.loads(spoke["rule"]["EventPattern"])
        assert pattern["account"] == [account]  # its own events only: a forwarded event is never sent on
        assert lz.STATE_CHANGE in pattern["detail-type"]
        (target,) = spoke["targets"]
        assert target["Arn"] == hub_bus
        # The hub grants an organization: the spoke must deliver through a role of its own (PutPermission docs).
        assert target["RoleArn"].startswith(f"arn:aws:iam::{account}:role/")


# ---------------------------------------------------------------------------------------------------------------
# The fan-out
# ---------------------------------------------------------------------------------------------------------------


def test_the_planner_enqueues_one_scope_item_per_active_account_and_region(outcome: Outcome) -> None:
    organization = outcome.series.organization
    for day in outcome.series.days:
        assert day.planned["dry_run"] is False, day.slot
        assert day.planned["scopes"] == day.planned["enqueued"] == 2 * len(REGIONS), day.slot
        assert day.planned["skipped_accounts"] == [f"{organization.suspended}: SUSPENDED"], day.slot
        assert day.messages["plan_scope"] == 2 * len(REGIONS), day.slot
        assert day.messages["create_image"] == len(outcome.series.fleet.tagged), day.slot


def test_nothing_reaches_the_suspended_account(outcome: Outcome) -> None:
    suspended = outcome.series.organization.suspended
    assert not [d for d in outcome.series.decisions if d.account == suspended]


def test_backups_are_made_in_the_workload_accounts_and_none_in_the_hub(outcome: Outcome) -> None:
    fleet = outcome.series.fleet
    for day in outcome.series.days:
        assert sorted(day.created.values()) == sorted(fleet.tagged), day.slot
    created = {i for day in outcome.series.days for i in day.created}
    assert created <= set(outcome.series.snapshots_of)
    assert {i: image for i, image in outcome.hub_images.items() if _tags(image)} == {}
    owners = {image["OwnerId"] for image in _policy_images(outcome).values()}
    assert owners == set(outcome.series.organization.workloads)


def test_forwarded_events_complete_each_backup_before_its_delayed_check(outcome: Outcome) -> None:
    """Each day's images were put on their workload account's own bus only (Tokyo and Osaka), and were complete in
    the hub's ledger once those events were handled, while their delayed checks still waited in the queue."""
    organization = outcome.series.organization
    emitted = {(event["account"], event["region"]) for event in outcome.series.events}
    assert emitted == {(organization.workload_a, REGIONS[0]), (organization.workload_a, REGIONS[1]),
                       (organization.workload_b, REGIONS[0])}  # fmt: skip
    for day in outcome.series.days:
        assert day.completed_by_events == dict.fromkeys(day.created, "available"), day.slot
        assert day.checks_waiting >= len(day.created), day.slot
        assert day.messages[lz.STATE_CHANGE] == len(day.created), day.slot
    done = [line for line in outcome.series.log.lines if line.get("message") == "backup available"]
    assert Counter((line["account"], line["region"]) for line in done) == Counter(
        {key: len(outcome.series.days) for key in emitted}
    )


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
        for account in outcome.series.organization.workloads
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


def test_the_worker_reaches_the_workload_accounts_as_its_function_role(outcome: Outcome) -> None:
    """The handlers ran with their execution roles' credentials, so each AssumeRole into a workload account was
    the deployed hub role's, decided by the workload role's trust policy (I1) - not the emulator's dummy key. The
    planner only read the organization: every AssumeRole into a workload account is the worker's, resolving its
    scope items and doing the work."""
    outputs = outcome.module_outputs["ami_backup"]
    deployment = outcome.series.deployment
    worker = f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/{deployment.worker_role}/{deployment.worker_function}"
    assert outputs["worker_role_arn"].endswith(f"/{deployment.worker_role}")
    assumed = [d for d in outcome.series.decisions if d.action == "sts:AssumeRole"]
    assert {d.principal for d in assumed} == {worker}
    assert {d.resource for d in assumed} == {
        f"arn:aws:iam::{account}:role/ops-automation-{AMI_BACKUP}" for account in outcome.series.organization.workloads
    }
    assert all(d.allowed for d in assumed)


def test_ledger_is_kept_in_the_hub_and_names_the_workload_accounts(outcome: Outcome) -> None:
    policy = outcome.series.deployment.policy_name
    images = [item for item in outcome.ledger if str(item["sk"]).startswith("ami-")]
    accounts = {item["pk"].split("#")[2] for item in images}
    assert accounts == set(outcome.series.organization.workloads)
    assert all(item["pk"].startswith(f"{AMI_BACKUP}#{policy}#") for item in outcome.ledger)
    assert {item["sk"] for item in images} == set(outcome.series.snapshots_of)


def test_untargeted_and_hub_instances_are_never_backed_up(outcome: Outcome) -> None:
    fleet = outcome.series.fleet
    sources = {s for day in outcome.series.days for s in day.created.values()}
    assert fleet.untagged not in sources
    assert fleet.hub_tagged not in sources


# ---------------------------------------------------------------------------------------------------------------
# What the hub may not do
# ---------------------------------------------------------------------------------------------------------------


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
    assert {d.account for d in refusals.decisions} == {outcome.series.organization.workload_a}
    assert HUB_ACCOUNT not in {d.account for d in refusals.decisions}


def test_nothing_failed_and_no_message_is_left(outcome: Outcome) -> None:
    assert [record for day in outcome.series.days for record in day.failed_records] == []
    assert outcome.series.log.at("ERROR", "CRITICAL") == []


def test_terraform_destroy_succeeds(outcome: Outcome, landing_zone: LandingZone) -> None:
    landing_zone.examples.wait_destroyed(landing_zone.path)
    assert outcome.run.destroyed
    aws = landing_zone.aws
    organization = landing_zone.organization
    for account in organization.workloads:
        assert not [name for name in _roles_in(aws, account) if name.startswith("ops-automation-")], account
    assert _spoke_rules(aws, organization.workloads) == {}
    hub_roles = {role["RoleName"] for role in aws.client("iam").list_roles()["Roles"]}
    assert not {arn.rsplit("/", 1)[-1] for arn in _hub_role_arns(outcome)} & hub_roles
    assert not [s for s in _statements(_hub_bus_policy(aws)) if s.get("Sid") == "landing-zone-organization-events"]
    print(
        f"\ntier 3 landing-zone: apply_seconds {outcome.run.apply_seconds:.0f}s, destroy "
        f"{outcome.run.destroy_seconds:.0f}s, scenario {outcome.seconds:.0f}s; "
        f"{sum(len(day.created) for day in outcome.series.days)} backups in 2 workload accounts of the OU, "
        f"{sum(len(day.retired) for day in outcome.series.days)} retired through their roles, "
        f"{len(outcome.series.events)} state events forwarded to the hub"
    )
