"""Tier 1: the checkers of the security gate (scripts/security_gate.py) can fail - each flags a planted bad policy
and passes a good one - and the policy evaluator decides as IAM's policy evaluation logic does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scripts import security_gate as gate

OWNER = {"aws:ResourceTag/ops-automation:managed-by": "terraform-aws-ops-automation"}
OWNED_POLICY = {"aws:ResourceTag/ops-automation:policy": "nightly"}


def identity(*statements: dict[str, Any]) -> gate.RenderedPolicy:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return gate.RenderedPolicy("examples/x", "aws_iam_role_policy.business", "policy", gate.IDENTITY, document)


def allow(
    actions: str | list[str], resources: str | list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


SNAPSHOTS = "arn:aws:ec2:*::snapshot/*"
VOLUMES = "arn:aws:ec2:*:*:volume/*"
OWNERSHIP_ON_RESOURCE = {"StringEquals": {**OWNER, **OWNED_POLICY}}
OWNERSHIP_IN_REQUEST = {
    "StringEquals": {
        "aws:RequestTag/ops-automation:managed-by": "terraform-aws-ops-automation",
        "aws:RequestTag/ops-automation:policy": "nightly",
    }
}
# A spoke role as the hub modules write them: delete only what carries both ownership tags; create only with them
# in the request (the volume is the source, not changed); tag only while creating.
GOOD_ROLE = [
    {
        "Version": "2012-10-17",
        "Statement": [
            allow("ec2:DescribeSnapshots", "*"),
            allow("ec2:DeleteSnapshot", SNAPSHOTS, OWNERSHIP_ON_RESOURCE),
            allow("ec2:CreateSnapshot", VOLUMES),
            allow("ec2:CreateSnapshot", SNAPSHOTS, OWNERSHIP_IN_REQUEST),
            allow("ec2:CreateTags", SNAPSHOTS, {"StringEquals": {"ec2:CreateAction": "CreateSnapshot"}}),
        ],
    }
]


# --- check 2: parliament ----------------------------------------------------------------------------------------


def test_parliament_passes_a_scoped_policy() -> None:
    assert gate.parliament_findings(identity(*GOOD_ROLE[0]["Statement"])) == []


def test_parliament_flags_an_unknown_action() -> None:
    findings = gate.parliament_findings(identity(allow("ec2:DeleteSnapshots", SNAPSHOTS)))
    assert [f.detail.split(" ")[0] for f in findings] == ["UNKNOWN_ACTION"]


def test_parliament_flags_a_medium_finding() -> None:
    # A condition key DeleteSnapshot does not support: an ownership rule that would protect nothing.
    policy = identity(allow("ec2:DeleteSnapshot", SNAPSHOTS, {"StringEquals": {"s3:prefix": "x"}}))
    details = [f.detail for f in gate.parliament_findings(policy)]
    assert details and all("(MEDIUM)" in d or "(HIGH)" in d for d in details)
    assert any(d.startswith("UNKNOWN_CONDITION_FOR_ACTION") for d in details)


def test_resource_mismatch_is_read_over_the_whole_policy() -> None:
    # The source volume alone: the new snapshot, a required resource of CreateSnapshot, is granted nowhere.
    alone = identity(allow("ec2:CreateSnapshot", VOLUMES))
    assert [f.detail.split(" ")[0] for f in gate.parliament_findings(alone)] == ["RESOURCE_MISMATCH"]
    # Granted in a second statement (as the modules do, with the tags in the request): answered.
    both = identity(allow("ec2:CreateSnapshot", VOLUMES), allow("ec2:CreateSnapshot", SNAPSHOTS, OWNERSHIP_IN_REQUEST))
    assert gate.parliament_findings(both) == []


def test_resource_policy_specifics() -> None:
    # AWS writes "__default_statement_ID" into a topic's default policy: a Sid IAM refuses only in identity policies.
    topic_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "SNS:Publish"}
        ],
    }
    topic = gate.RenderedPolicy("e", "aws_sns_topic.t", "policy", gate.RESOURCE, topic_policy, "arn:aws:sns:r:1:t")
    assert gate.parliament_findings(topic) == []
    as_identity = dict(topic_policy, Statement=[{**topic_policy["Statement"][0], "Resource": "arn:aws:sns:r:1:t"}])
    as_identity["Statement"][0].pop("Principal")
    assert any("INVALID_SID" in f.detail for f in gate.parliament_findings(identity(*as_identity["Statement"])))
    # A data source's document before it is attached: its resource is not known, "*" stands for it.
    unattached = gate.RenderedPolicy("e", "data.aws_iam_policy_document.t", "json", gate.RESOURCE, topic_policy)
    assert gate.lintable(unattached)["Statement"][0]["Resource"] == "*"
    # An empty document (a data source rendering nothing) grants nothing: nothing to lint.
    assert gate.parliament_findings(identity()) == []


def test_a_trust_policy_is_linted_with_its_role_as_the_resource() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = "arn:aws:iam::123456789012:role/worker"
    policy = gate.RenderedPolicy("e", "aws_iam_role.worker", "assume_role_policy", gate.RESOURCE, trust, role)
    assert gate.lintable(policy)["Statement"][0]["Resource"] == role
    assert gate.parliament_findings(policy) == []
    # Linted as an identity policy, parliament would call it malformed (no Resource).
    bare = gate.RenderedPolicy("e", "aws_iam_role.worker", "assume_role_policy", gate.IDENTITY, trust)
    assert any(f.detail.startswith("MALFORMED") for f in gate.parliament_findings(bare))


# --- check 3: no mutating action on * ---------------------------------------------------------------------------


def test_a_mutating_action_on_star_is_flagged() -> None:
    findings = gate.star_findings(identity(allow("ec2:DeleteSnapshot", "*", OWNERSHIP_ON_RESOURCE)))
    assert [f.detail.split(":")[0:2] for f in findings] == [["ec2", "DeleteSnapshot"]]


def test_wildcard_actions_and_not_resource_are_expanded() -> None:
    findings = gate.star_findings(identity({"Effect": "Allow", "Action": "ec2:Delete*Snapshot", "NotResource": "x"}))
    assert "ec2:DeleteSnapshot: Write action on '*' (resource types: snapshot*)" in [f.detail for f in findings]


def test_reads_and_listed_actions_without_resource_types_may_be_star() -> None:
    policy = identity(allow(["ec2:DescribeSnapshots", "xray:PutTraceSegments"], "*"))
    assert gate.resource_types("xray:PutTraceSegments") == []
    assert gate.star_findings(policy) == []
    # Unlisted, the same Write action fails.
    assert len(gate.star_findings(policy, allowed_without_type={})) == 1


def test_the_list_cannot_excuse_an_action_that_has_resource_types() -> None:
    policy = identity(allow("ec2:DeleteSnapshot", "*"))
    findings = gate.star_findings(policy, allowed_without_type={"ec2:DeleteSnapshot": "wrong"})
    assert len(findings) == 1 and "listed in NO_RESOURCE_TYPE" in findings[0].detail


def test_every_listed_action_is_mutating_and_has_no_resource_type() -> None:
    for action in gate.NO_RESOURCE_TYPE:
        assert gate.is_mutating(action), action
        assert gate.resource_types(action) == [], action


def test_a_resource_policy_star_is_the_resource_itself() -> None:
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}
        ],
    }
    policy = gate.RenderedPolicy("e", "aws_kms_key.k", "policy", gate.RESOURCE, key_policy, "arn:aws:kms:r:1:key/k")
    assert gate.star_findings(policy) == []


# --- the evaluator ----------------------------------------------------------------------------------------------


def req(action: str, resource: str = "arn:aws:ec2:r::snapshot/snap-1", **context: list[str]) -> gate.Request:
    return gate.Request(action, resource, {key.replace("__", ":").replace("_", "/"): v for key, v in context.items()})


def test_explicit_deny_wins_and_nothing_allowed_is_implicit() -> None:
    documents = [
        {"Statement": [allow("ec2:*", "*"), {"Effect": "Deny", "Action": "ec2:DeleteSnapshot", "Resource": "*"}]}
    ]
    assert gate.evaluate(documents, gate.Request("ec2:DeleteSnapshot", "x")) == "deny"
    assert gate.evaluate(documents, gate.Request("ec2:CreateSnapshot", "x")) == "allow"
    assert gate.evaluate(documents, gate.Request("s3:GetObject", "x")) == "implicit"


def test_not_action_and_wildcards() -> None:
    documents = [
        {"Statement": [{"Effect": "Allow", "NotAction": "ec2:Delete*", "Resource": "arn:aws:ec2:*::snapshot/snap-?"}]}
    ]
    assert gate.evaluate(documents, gate.Request("EC2:createsnapshot", "arn:aws:ec2:r::snapshot/snap-1")) == "allow"
    assert gate.evaluate(documents, gate.Request("ec2:DeleteSnapshot", "arn:aws:ec2:r::snapshot/snap-1")) == "implicit"
    assert gate.evaluate(documents, gate.Request("ec2:CreateSnapshot", "arn:aws:ec2:r::snapshot/snap-12")) == "implicit"


@pytest.mark.parametrize(
    ("operator", "patterns", "values", "expected"),
    [
        ("StringEquals", ["a"], ["a"], True),
        ("StringEquals", ["a"], ["A"], False),
        ("StringEquals", ["a"], None, False),
        ("StringNotEquals", ["a"], None, True),
        ("StringEqualsIfExists", ["a"], None, True),
        ("StringLike", ["ops-*"], ["ops-nightly"], True),
        ("StringLike", ["ops-?"], ["ops-ab"], False),
        ("StringNotLike", ["ops-*"], ["x"], True),
        ("Null", ["true"], None, True),
        ("Null", ["false"], None, False),
        ("Null", ["false"], ["v"], True),
        ("ForAnyValue:StringEquals", ["a", "b"], ["c", "b"], True),
        ("ForAnyValue:StringEquals", ["a"], None, False),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "c"], False),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
        ("ForAllValues:StringEquals", ["a"], None, True),
        ("ArnLike", ["arn:aws:iam::*:role/ops-*"], ["arn:aws:iam::1:role/ops-x"], True),
    ],
)
def test_condition_operators(operator: str, patterns: list[str], values: list[str] | None, expected: bool) -> None:
    context = {} if values is None else {"aws:TagKeys": values}
    assert gate.condition_holds(operator, "aws:tagkeys", patterns, gate.Request("a:b", "*", context)) is expected


def test_an_unknown_operator_is_not_guessed() -> None:
    with pytest.raises(gate.UnmodelledCondition):
        gate.condition_holds("NumericLessThan", "k", ["1"], gate.Request("a:b", "*", {"k": ["0"]}))


# --- check 4: ownership -----------------------------------------------------------------------------------------


def test_a_role_that_needs_the_ownership_tags_passes() -> None:
    cases = gate.ownership_cases("good", GOOD_ROLE)
    assert {case.action for case in cases} == {"ec2:DeleteSnapshot", "ec2:CreateSnapshot", "ec2:CreateTags"}
    assert gate.ownership_findings(cases) == []
    # The source volume alone is reachable without the tags; every CreateSnapshot also needs the new snapshot
    # (a required resource type), which only the ownership tags in the request allow.
    by_sid = {(case.action, case.resources): case for case in cases}
    volume = by_sid[("ec2:CreateSnapshot", (gate._instantiate(VOLUMES),))]
    snapshot = by_sid[("ec2:CreateSnapshot", (gate._instantiate(SNAPSHOTS),))]
    assert (volume.protected, snapshot.protected) == (False, True)
    assert gate.required_types("ec2:CreateSnapshot") == {"volume", "snapshot"}
    assert gate.action_needs_ownership(cases, "ec2:CreateSnapshot")
    # Tagging on creation is allowed without the tags' condition on the resource, but only inside CreateSnapshot.
    tagging = next(case for case in cases if case.action == "ec2:CreateTags")
    assert tagging.create_action == "CreateSnapshot" and gate.action_needs_ownership(cases, "ec2:CreateTags")


@pytest.mark.parametrize(
    "bad",
    [
        allow("ec2:DeregisterImage", "arn:aws:ec2:*::image/*"),  # no condition at all
        allow("ec2:DeleteSnapshot", SNAPSHOTS, {"StringLike": {"aws:ResourceTag/Name": "*"}}),  # not the ownership
        allow("ec2:DeleteSnapshot", SNAPSHOTS, {"StringEquals": {"aws:ResourceTag/Backup": "daily"}}),  # the selection
        allow("ec2:CreateTags", SNAPSHOTS),  # could forge ownership tags on anything
        allow("ec2:CreateSnapshot", SNAPSHOTS),  # the new snapshot untagged
    ],
)
def test_a_statement_without_the_tag_condition_is_flagged(bad: dict[str, Any]) -> None:
    documents = [{"Version": "2012-10-17", "Statement": [*GOOD_ROLE[0]["Statement"], bad]}]
    findings = gate.ownership_findings(gate.ownership_cases("bad", documents))
    assert findings and all(f.where == "bad" and "without the ownership tags" in f.detail for f in findings)


def test_the_statements_own_request_carries_what_its_conditions_ask() -> None:
    statement = allow(
        "ec2:RunInstances",
        "arn:aws:ec2:*:*:network-interface/*",
        {
            "Bool": {"ec2:AssociatePublicIpAddress": "false"},
            "Null": {"aws:RequestTag/ops-automation:restore-test": "false", "aws:ResourceTag/x": "true"},
            "StringNotEquals": {"aws:ResourceTag/keep": "yes"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]},
            **OWNERSHIP_IN_REQUEST,
        },
    )
    context = gate.satisfying_context(statement)
    assert context == {
        "ec2:AssociatePublicIpAddress": ["false"],
        "aws:RequestTag/ops-automation:restore-test": ["example0123"],
        "aws:TagKeys": ["a", "b"],
        "aws:RequestTag/ops-automation:managed-by": ["terraform-aws-ops-automation"],
        "aws:RequestTag/ops-automation:policy": ["nightly"],
    }
    assert gate.statement_applies(
        statement, gate.Request("ec2:RunInstances", "arn:aws:ec2:r:1:network-interface/e", context)
    )
    stripped = gate.without_ownership({**context, "aws:TagKeys": ["ops-automation:policy", "Name"]})
    assert stripped == {
        "ec2:AssociatePublicIpAddress": ["false"],
        "aws:RequestTag/ops-automation:restore-test": ["example0123"],
        "aws:TagKeys": ["Name"],
    }


def test_sources_selected_by_their_own_tags_are_no_ownership() -> None:
    # The source volumes are the user's, selected by Backup = daily: both requests carry that tag, so only the
    # ownership tags decide - and the new snapshot needs them in the request.
    selected = allow("ec2:CreateSnapshot", VOLUMES, {"StringEquals": {"aws:ResourceTag/Backup": "daily"}})
    documents = [{"Statement": [selected, allow("ec2:CreateSnapshot", SNAPSHOTS, OWNERSHIP_IN_REQUEST)]}]
    assert gate.selection_tags(documents) == {"Backup": "daily"}
    cases = gate.ownership_cases("selected", documents)
    assert [(c.with_tags, c.without_tags) for c in cases] == [("allow", "allow"), ("allow", "implicit")]
    assert gate.ownership_findings(cases) == []


def test_a_statement_refused_even_with_the_tags_is_reported() -> None:
    # The request modelled would not be the statement's: a denial without the tags would then prove nothing.
    refused = {"Effect": "Deny", "Action": "ec2:DeleteSnapshot", "Resource": "*"}
    documents = [{"Statement": [allow("ec2:DeleteSnapshot", SNAPSHOTS, OWNERSHIP_ON_RESOURCE), refused]}]
    findings = gate.ownership_findings(gate.ownership_cases("odd", documents))
    assert [f.detail.split(": ", 1)[1] for f in findings] == ["its own request is deny even with the ownership tags"]


def test_a_deny_on_the_exclusion_tag_keeps_its_resources_out() -> None:
    exclusion = {
        "Effect": "Deny",
        "Action": "ec2:DeleteSnapshot",
        "Resource": "*",
        "Condition": {"Null": {"aws:ResourceTag/ops-automation:keep": "false"}},
    }
    documents = [{"Statement": [*GOOD_ROLE[0]["Statement"], exclusion]}]
    owned = gate.with_ownership(
        {}, {"ops-automation:managed-by": "terraform-aws-ops-automation", "ops-automation:policy": "nightly"}
    )
    request = gate.Request("ec2:DeleteSnapshot", "arn:aws:ec2:r::snapshot/snap-1", owned)
    assert gate.evaluate(documents, request) == "allow"
    kept = gate.Request(request.action, request.resource, {**owned, "aws:ResourceTag/ops-automation:keep": ["yes"]})
    assert gate.evaluate(documents, kept) == "deny"


def test_emulator_pairs_fail_when_the_untagged_call_goes_through() -> None:
    cases = [
        gate.EmulatorCase("r", "DeleteSnapshot", "allowed", "UnauthorizedOperation"),
        gate.EmulatorCase(
            "r", "CreateTags (on an existing snapshot)", "UnauthorizedOperation", "UnauthorizedOperation"
        ),
        gate.EmulatorCase("r", "DeregisterImage", "allowed", "allowed"),
        gate.EmulatorCase("r", "CreateImage", "UnauthorizedOperation", "UnauthorizedOperation"),
    ]
    findings = gate.emulator_findings(cases, {"r": {"ec2:DeleteSnapshot", "ec2:DeregisterImage", "ec2:CreateImage"}})
    assert [f.detail.split(":")[0] for f in findings] == ["DeregisterImage", "CreateImage"]
    # A call the role may not make at all is refused both ways: that pair holds.
    assert gate.emulator_findings(cases[3:], {"r": set()}) == []


# --- rendered policies from plan JSON, and checkov --------------------------------------------------------------


def test_policies_come_from_prior_state_and_planned_values_with_their_kind() -> None:
    trust = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "x"}, "Action": "sts:AssumeRole"}]})
    business = json.dumps({"Statement": [allow("ec2:DescribeImages", "*")]})
    role = {
        "address": "module.m.aws_iam_role.worker",
        "mode": "managed",
        "type": "aws_iam_role",
        "values": {
            "arn": "arn:aws:iam::1:role/w",
            "assume_role_policy": trust,
            "inline_policy": [{"policy": business}],
        },
    }
    queue_policy = {
        "address": "aws_sqs_queue_policy.q",
        "mode": "managed",
        "type": "aws_sqs_queue_policy",
        "values": {"queue_url": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/work", "policy": trust},
    }
    document = {
        "address": "data.aws_iam_policy_document.d",
        "mode": "data",
        "type": "aws_iam_policy_document",
        "values": {"json": business},
    }
    plan = {
        "prior_state": {"values": {"root_module": {"child_modules": [{"resources": [role]}]}}},
        "planned_values": {"root_module": {"resources": [role, queue_policy, document]}},
        "resource_changes": [
            {"address": "aws_iam_policy.p", "mode": "managed", "change": {"after_unknown": {"policy": True}}},
            # Re-read at the next plan, but applied as the role's policy: known where it matters.
            {"address": "data.aws_iam_policy_document.d", "mode": "data", "change": {"after_unknown": {"json": True}}},
            {"address": "aws_sqs_queue_policy.q", "mode": "managed", "change": {"after_unknown": {"policy": True}}},
        ],
    }
    policies, unknown = gate.policies_from_plan(plan, "examples/x")
    found = {(p.address, p.attribute): (p.kind, p.resource_arn) for p in policies}
    assert found == {
        ("module.m.aws_iam_role.worker", "assume_role_policy"): (gate.RESOURCE, "arn:aws:iam::1:role/w"),
        ("module.m.aws_iam_role.worker", "inline_policy[0]"): (gate.IDENTITY, None),
        ("aws_sqs_queue_policy.q", "policy"): (gate.RESOURCE, "arn:aws:sqs:ap-northeast-1:123456789012:work"),
        ("data.aws_iam_policy_document.d", "json"): (gate.IDENTITY, None),
    }
    assert unknown == ["aws_iam_policy.p"]


def test_spoke_roles_are_those_of_the_target_account_role_module() -> None:
    policy = json.dumps({"Statement": [allow("ec2:DescribeImages", "*")]})
    resources = [
        {
            "address": 'module.workload_a_roles.aws_iam_role_policy.this["ami-backup"]',
            "type": "aws_iam_role_policy",
            "values": {"policy": policy},
        },
        {
            "address": "module.ami_backup.aws_iam_role_policy.business",
            "type": "aws_iam_role_policy",
            "values": {"policy": policy},
        },
    ]
    plan = {
        "configuration": {
            "root_module": {
                "module_calls": {
                    "workload_a_roles": {"source": "../../modules/target-account-role"},
                    "ami_backup": {"source": "../../modules/ami-backup"},
                }
            }
        },
        "prior_state": {"values": {"root_module": {"child_modules": [{"resources": resources}]}}},
    }
    assert list(gate.spoke_role_policies(plan, "lz")) == [
        'lz: module.workload_a_roles.aws_iam_role_policy.this["ami-backup"]'
    ]


def test_a_checkov_skip_needs_a_reason(tmp_path: Path) -> None:
    tf = tmp_path / "main.tf"
    tf.write_text(
        'resource "x" "y" {\n  #checkov:skip=CKV_AWS_1:Encrypted with the caller\'s key when given.\n'
        "  #checkov:skip=CKV_AWS_2\n  #checkov:skip=CKV_AWS_3:  \n}\n",
        encoding="utf-8",
    )
    assert [f.detail for f in gate.skips_without_reason([tf])] == [
        "skip of CKV_AWS_2 without a reason",
        "skip of CKV_AWS_3 without a reason",
    ]


def test_checkov_counts_add_up_every_framework_report() -> None:
    report = [
        {
            "summary": {"passed": 3, "failed": 1, "skipped": 2},
            "results": {"failed_checks": [{"check_id": "CKV_AWS_1", "resource": "r", "file_path": "/m.tf"}]},
        },
        {"summary": {"passed": 4, "failed": 0, "skipped": 1}, "results": {}},
    ]
    counts = gate.checkov_counts(report)
    assert (counts.passed, counts.failed, counts.skipped, counts.failures) == (7, 1, 3, ("CKV_AWS_1 r (/m.tf)",))


def test_checkov_prints_one_json_report_per_folder() -> None:
    one = {"summary": {"passed": 1, "failed": 0, "skipped": 0}, "results": {}}
    text = json.dumps(one, indent=4) + "\n" + json.dumps(one, indent=4) + "\n"
    assert gate.checkov_counts(gate.json_documents(text)).passed == 2
    assert gate.json_documents("  \n") == []


def test_the_current_skips_all_have_reasons() -> None:
    root = Path(gate.REPO_ROOT)
    assert gate.skips_without_reason(sorted(root.glob("modules/**/*.tf")) + sorted(root.glob("examples/**/*.tf"))) == []


def test_a_lint_that_found_nothing_to_check_fails_instead_of_passing() -> None:
    rows, findings = gate._lint_rows([], [])
    assert [row.result for row in rows] == ["FAIL", "FAIL"]
    assert {finding.check for finding in findings} == {"parliament", "no mutating action on *"}
