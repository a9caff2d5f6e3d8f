"""Tier 1: every IAM statement means on AWS what the module says it means.

moto's IAM checks actions only; resource types and condition keys are where a policy silently fails on AWS (a
condition key the action does not support never matches: an Allow that never allows, or an ownership rule that
protects nothing). The judge here is the Service Authorization Reference, as the machine-readable copy the
`parliament` package ships (`iam_definition.json`): for every business statement of every public module,
- each action exists for its service;
- each resource kind the statement names is a resource type of the action, and `*` is used only for actions
  that have no resource type (Describe* and the like);
- each condition key (those written, and those internal adds for the ownership) is supported by a resource type
  of the action that the statement names, or by the action itself, or is a global `aws:` key.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from tests.support.hcl_tree import (
    BusinessStatement,
    ModuleFunction,
    automation_modules,
    business_statements,
    load_module,
    module_functions,
    resolve_locals,
)
from tests.support.terraform_env import repo_root

FUNCTIONS = [fn for module_dir in automation_modules() for fn in module_functions(module_dir)]
STATEMENTS = [(fn, statement) for fn in FUNCTIONS for statement in fn.statements]
OWNERSHIP_KEYS = {
    "request": ("aws:RequestTag/ops-automation:managed-by", "aws:RequestTag/ops-automation:policy"),
    "resource": ("aws:ResourceTag/ops-automation:managed-by", "aws:ResourceTag/ops-automation:policy"),
    "none": (),
    "unowned": (),
    "source": (),
}
# Condition keys AWS supports where the machine-readable copy (parliament 1.6.4) predates the change: the source of
# a copy became part of the request's resources, with its tags. EBS user guide, "Example IAM policies for Amazon
# EBS": "Resource-level permissions specified for the CopySnapshot action apply to both the new snapshot and the
# source snapshot" (AWS Storage Blog, "Enhancing resource-level permissions for copying Amazon EBS snapshots");
# EC2 user guide, "Grant permissions to copy Amazon EC2 AMIs": "Starting October 28, 2024, you can specify
# resource-level permissions for the CopyImage action on the source AMI." (action, resource type) -> keys.
NEWER_THAN_THE_COPY = {
    ("ec2:CopySnapshot", "snapshot"): ["aws:ResourceTag/${TagKey}"],
    ("ec2:CopyImage", "image"): ["aws:ResourceTag/${TagKey}"],
}
# Services whose Service Authorization Reference names a resource type's tag keys only in its Resource types table,
# not in the action rows: "Resource condition keys are listed in the Resource types table" (SAR, Amazon RDS). The
# keys of RDS's db (aws:ResourceTag/${TagKey}, rds:db-tag/${TagKey}) and cluster (aws:ResourceTag/${TagKey},
# rds:cluster-tag/${TagKey}) hold for every action on that resource type.
RESOURCE_TABLE_KEYS = {"rds"}
# Global keys AWS evaluates for every request, whatever the action (IAM user guide, "AWS global condition context
# keys"); the tag keys are not among them: they depend on the resource type.
# aws:ResourceOrgID / aws:ResourceAccount: "the identifier of the organization in AWS Organizations to which the
# requested resource belongs", present when the resource's account is in an organization (same page,
# condition-keys-resourceorgid); AWS introduced them to keep principals from "assuming any IAM roles outside of your
# own AWS account" (https://aws.amazon.com/about-aws/whats-new/2022/04/iam-access-resource-organization/).
GLOBAL_KEYS = re.compile(
    r"^aws:(SourceArn|SourceAccount|SourceOrgID|PrincipalOrgID|PrincipalArn|PrincipalAccount|"
    r"ResourceOrgID|ResourceAccount|"
    r"CalledVia|ViaAWSService|SecureTransport|RequestedRegion|SourceIp|SourceVpc|SourceVpce)$"
)


def resource_table_keys(action: str, kind: str) -> list[str]:
    """The Resource types table's condition keys of `kind`, for the services listed in RESOURCE_TABLE_KEYS."""
    service = action.split(":", 1)[0]
    if service not in RESOURCE_TABLE_KEYS:
        return []
    return [key for r in definitions()[service]["resources"] if r["resource"] == kind for key in r["condition_keys"]]


@cache
def definitions() -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("parliament")
    assert spec is not None and spec.origin, "parliament (requirements-dev) is not installed"
    data = json.loads((Path(spec.origin).parent / "iam_definition.json").read_text(encoding="utf-8"))
    return {service["prefix"]: service for service in data}


def privilege(action: str) -> dict[str, Any]:
    service, name = action.split(":", 1)
    assert service in definitions(), f"{action}: no service {service!r} in the Service Authorization Reference"
    found = [p for p in definitions()[service]["privileges"] if p["privilege"] == name]
    assert found, f"{action}: no such action in the Service Authorization Reference"
    return found[0]


def resource_types(action: str) -> dict[str, list[str]]:
    """Resource type (without the required-marker *) -> its condition keys; '' holds the action's own keys."""
    return {r["resource_type"].rstrip("*"): r["condition_keys"] for r in privilege(action)["resource_types"]}


def key_matches(key: str, supported: list[str]) -> bool:
    for pattern in supported:
        regex = "^" + re.escape(pattern).replace(re.escape("${TagKey}"), ".+") + "$"
        if re.match(regex, key, flags=re.IGNORECASE):
            return True
    return False


def _id(item: tuple[ModuleFunction, BusinessStatement]) -> str:
    fn, statement = item
    return f"{fn.module}/{fn.key}/{statement.sid}"


def test_the_reference_knows_the_actions_this_project_relies_on() -> None:
    # A guard against a stale or broken data file making every other check here vacuous.
    assert "instance" in resource_types("ec2:CreateImage")
    assert key_matches("aws:ResourceTag/Backup", resource_types("ec2:DeleteSnapshot")["snapshot"])
    assert not key_matches("aws:ResourceTag/Backup", resource_types("ec2:CreateImage")["image"])


@pytest.mark.parametrize("item", STATEMENTS, ids=[_id(item) for item in STATEMENTS])
def test_actions_and_resource_types_exist(item: tuple[ModuleFunction, BusinessStatement]) -> None:
    _, statement = item
    for action in statement.actions:
        types = resource_types(action)
        named = [kind for kind in statement.resource_kinds if kind != "*"]
        for kind in named:
            assert kind in types, f"{action} has no resource type {kind!r} (it has {sorted(t for t in types if t)})"
        if "*" in statement.resource_kinds:
            assert set(types) <= {""}, f"{action} supports resource types {sorted(types)}: name them, not *"


@pytest.mark.parametrize("item", STATEMENTS, ids=[_id(item) for item in STATEMENTS])
def test_condition_keys_are_supported_where_they_are_used(item: tuple[ModuleFunction, BusinessStatement]) -> None:
    _, statement = item
    keys = {*statement.condition_variables, *OWNERSHIP_KEYS[statement.ownership]}
    for action in statement.actions:
        types = resource_types(action)
        for key in keys:
            if GLOBAL_KEYS.match(key):
                continue
            supported = [
                k
                for kind in (*statement.resource_kinds, "")
                for k in [
                    *types.get(kind, []),
                    *NEWER_THAN_THE_COPY.get((action, kind), []),
                    *(resource_table_keys(action, kind) if kind in types else []),
                ]
            ]
            assert key_matches(key, supported), (
                f"{action} on {statement.resource_kinds}: condition key {key} is not supported there; "
                "the statement would never match on AWS"
            )


def test_ownership_bound_statements_actually_bind() -> None:
    """Each destroying action's ownership condition is on a resource type that carries tags."""
    destroying = [(fn, s) for fn, s in STATEMENTS if s.ownership == "resource"]
    assert destroying, "no statement with ownership = resource: the ownership rule is not exercised"
    for _fn, statement in destroying:
        for action in statement.actions:
            for kind in statement.resource_kinds:
                # Some services list the tag keys on the action row, not the resource type's (ssm:SendCommand:
                # aws:ResourceTag/${TagKey}, evaluated against the instance it is sent to).
                supported = [*resource_types(action)[kind], *resource_types(action).get("", [])]
                assert key_matches("aws:ResourceTag/ops-automation:policy", supported), (statement.sid, action, kind)


def test_every_plumbing_action_exists() -> None:
    from tests.hcl.test_iam_contract import plumbing

    actions = {action for statement in plumbing() for action in statement.actions}
    assert {"sqs:ReceiveMessage", "dynamodb:UpdateItem"} <= actions
    for action in sorted(actions):
        privilege(action)


# --- the statements modules/internal adds for the scope group (target roles, Organizations, enabled regions) -----

INTERNAL = repo_root() / "modules" / "internal"
SCOPE_LOCALS = (
    "assume_role_statements",
    "organization_read_statements",
    "planner_scope_statements",
    "region_read_statements",
)
# A resource's ARN path segment where it differs from the Service Authorization Reference's resource type name:
# Organizations OUs are `arn:<p>:organizations::<account>:ou/o-<id>/ou-<id>`, resource type `organizationalunit`.
RESOURCE_TYPE_OF_SEGMENT = {("organizations", "ou"): "organizationalunit"}
ORGANIZATION_CODE = repo_root() / "lambda_src" / "ops_automation" / "core" / "organization.py"


def internal_scope_statements(*names: str) -> list[BusinessStatement]:
    internal = load_module(INTERNAL)
    return [
        statement
        for name in names
        for statement in business_statements(resolve_locals(internal.locals[name], internal.locals))
    ]


SCOPE_STATEMENTS = internal_scope_statements(*SCOPE_LOCALS)


def test_internal_scope_statements_are_found() -> None:
    assert {s.sid for s in SCOPE_STATEMENTS} >= {
        "AssumeTargetRoles",
        "AssumeOrganizationTargetRoles",
        "ReadOrganizationUnits",
        "AssumeOrganizationsRole",
        "DescribeEnabledRegions",
    }, SCOPE_STATEMENTS


@pytest.mark.parametrize("statement", SCOPE_STATEMENTS, ids=[s.sid for s in SCOPE_STATEMENTS])
def test_internal_scope_statement_means_what_it_says(statement: BusinessStatement) -> None:
    for action in statement.actions:
        service = action.split(":", 1)[0]
        types = resource_types(action)
        named = [
            RESOURCE_TYPE_OF_SEGMENT.get((service, kind), kind) for kind in statement.resource_kinds if kind != "*"
        ]
        for kind in named:
            assert kind in types, (
                f"{statement.sid}: {action} has no resource type {kind!r} ({sorted(t for t in types if t)})"
            )
        if "*" in statement.resource_kinds:
            assert set(types) <= {""}, f"{statement.sid}: {action} supports resource types {sorted(types)}: name them"
        for key in statement.condition_variables:
            supported = [k for kind in (*named, "") for k in types.get(kind, [])]
            assert GLOBAL_KEYS.match(key) or key_matches(key, supported), (
                f"{statement.sid}: condition key {key} is not supported by {action}"
            )


def test_organizations_reads_are_exactly_what_the_core_calls() -> None:
    """The planners may call the Organizations operations core/organization.py makes, and no other; an operation
    added there without IAM would fail on AWS only (moto does not enforce resource ARNs)."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model("organizations")
    code = ORGANIZATION_CODE.read_text(encoding="utf-8")
    called = {
        f"organizations:{operation}"
        for operation in model.operation_names
        if re.search(rf"[\".]{xform_name(operation)}\b", code)
    }
    granted = {a for s in internal_scope_statements("organization_read_statements") for a in s.actions}
    assert called, f"{ORGANIZATION_CODE.name} calls no Organizations operation: the scan is broken"
    assert granted == called, f"internal grants {sorted(granted)}, {ORGANIZATION_CODE.name} calls {sorted(called)}"


def test_enabled_regions_are_readable_through_the_target_role() -> None:
    code = ORGANIZATION_CODE.read_text(encoding="utf-8")
    assert "describe_regions" in code, "core/organization.py no longer lists the enabled regions"
    granted = {a for s in internal_scope_statements("region_read_statements") for a in s.actions}
    assert granted == {"ec2:DescribeRegions"}
    document = load_module(INTERNAL).data.get(("aws_iam_policy_document", "target_role"))
    assert document and "region_read_statements" in json.dumps(document), (
        "the target role policy must carry DescribeRegions (all-enabled regions are listed through the target role)"
    )
