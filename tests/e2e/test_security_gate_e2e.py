"""Tier 3 smoke of the security gate (scripts/security_gate.py, `make security`): its checkers on the policies
examples/ami-backup deployed to the session's local AWS - the roles' trust and business policies as IAM holds
them, and the module's target-account role policy (`target_role_policy_json`) as Terraform rendered it. The full
gate applies every example; this keeps the checkers honest against what the tier-3 session already deployed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from scripts import security_gate as gate
from tests.e2e import ami_backup_scenario as ami
from tests.e2e import scenario

USES = (ami.EXAMPLE,)
MODULE = "ami_backup"


@dataclass(frozen=True)
class Deployed:
    policies: list[gate.RenderedPolicy]
    target_role: dict[str, Any]


def _deployed_policies(aws: Any, deployment: scenario.Deployment) -> list[gate.RenderedPolicy]:
    iam = aws.client("iam")
    policies = []
    for role_name in (deployment.planner_role, deployment.worker_role):
        role = iam.get_role(RoleName=role_name)["Role"]
        trust = role["AssumeRolePolicyDocument"]
        policies.append(gate.RenderedPolicy("ami-backup", role_name, "trust", gate.RESOURCE, trust, role["Arn"]))
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            policies.append(gate.RenderedPolicy("ami-backup", role_name, name, gate.IDENTITY, document))
    return policies


@pytest.fixture(scope="module")
def deployed(applied: scenario.AppliedExamples) -> Deployed:
    run = applied.run(ami.EXAMPLE)
    aws = applied.aws_for(ami.EXAMPLE)
    try:
        deployment = scenario.deployment_from_terraform(aws, run.outputs, ami.EXAMPLE)
        policies = _deployed_policies(aws, deployment)
        target_role = json.loads(scenario.module_outputs(run, MODULE)["target_role_policy_json"])
    finally:
        applied.start_destroy(ami.EXAMPLE)
    return Deployed(policies, target_role)


def test_deployed_policies_pass_parliament_and_the_star_check(deployed: Deployed) -> None:
    assert {policy.attribute for policy in deployed.policies} >= {"trust", "business"}
    findings = [
        f for policy in deployed.policies for f in gate.parliament_findings(policy) + gate.star_findings(policy)
    ]
    assert findings == []


def test_the_target_role_policy_needs_the_ownership_tags(deployed: Deployed) -> None:
    cases = gate.ownership_cases("ami-backup target role", [deployed.target_role])
    assert {"ec2:CreateImage", "ec2:DeregisterImage", "ec2:DeleteSnapshot"} <= {case.action for case in cases}
    assert gate.ownership_findings(cases) == []
