"""Tier 1: the function roles allow exactly what the code calls, and destructive EC2 actions are tag-bound.

The called actions come from an AST scan of the code the module's Lambda handlers reach in
`lambda_src/ops_automation`: their handler module plus the shared-core definitions it uses, transitively (see
tests/support/python_scan.py), so a core function only another module uses demands nothing of this policy.
The allowed ones come from the `aws_iam_policy_document` statements attached to the function roles.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from tests.support.hcl_tree import Module, calls_to, load_module, resolve_locals
from tests.support.python_scan import ApiCall, boto_calls
from tests.support.terraform_env import repo_root

from ops_automation import tagging

ROOT = repo_root()
PACKAGE = ROOT / "lambda_src" / "ops_automation"
INTERNAL = ROOT / "modules" / "internal"
AMI_BACKUP = ROOT / "modules" / "ami-backup"

# Called with the function's role by something other than our code, so absent from the AST scan.
CALLED_FOR_THE_CODE = {
    # Powertools idempotency persistence (DynamoDBPersistenceLayer) on the idempotency table.
    "dynamodb:GetItem": "Powertools idempotency",
    "dynamodb:PutItem": "Powertools idempotency",
    "dynamodb:UpdateItem": "Powertools idempotency",
    "dynamodb:DeleteItem": "Powertools idempotency",
    # The Lambda service itself, acting with the execution role.
    "logs:CreateLogStream": "the Lambda runtime writes the function's logs",
    "logs:PutLogEvents": "the Lambda runtime writes the function's logs",
    "sqs:ReceiveMessage": "the SQS event source mapping polls the work queue",
    "sqs:DeleteMessage": "the SQS event source mapping deletes processed messages",
    "sqs:GetQueueAttributes": "the SQS event source mapping reads the queue",
    "sqs:SendMessage": "Lambda sends failed asynchronous invocations to the on-failure destination",
    "xray:PutTraceSegments": "active tracing",
    "xray:PutTelemetryRecords": "active tracing",
    "kms:Decrypt": "SSE-KMS on the queue, tables and log group",
    "kms:GenerateDataKey": "SSE-KMS on the queue, tables and log group",
}
# Allowed for a call the code makes, without being an API call of its own: tags given in a create
# call's TagSpecifications are authorized as ec2:CreateTags (EC2 user guide, "Grant permission to tag
# resources during creation"), which the policy must restrict with the ec2:CreateAction condition.
AUTHORIZES_PART_OF = {"ec2:CreateTags": "ec2:CreateAction"}
# Services whose every allowed action must be called by the code (issue #2: policy ⊆ code).
STRICT_SERVICES = ("ec2", "sts")
MUTATING_EC2 = re.compile(r"^ec2:(Create|Delete|Deregister|Copy|Start|Stop|Modify)")
_DOC_REFERENCE = re.compile(r"data\.aws_iam_policy_document\.([A-Za-z0-9_\-]+)")


@dataclass(frozen=True)
class Statement:
    origin: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[dict[str, Any], ...]
    # The for_each of a `dynamic "statement"`: its values replace `${statement.value}` at plan time.
    for_each: str | None = None

    def allows(self, action: str) -> bool:
        return self.effect == "Allow" and any(fnmatch.fnmatchcase(action, pattern) for pattern in self.actions)

    def has_wildcard_resource(self) -> bool:
        for resource in self.resources:
            if resource == "*":
                return True
            if "${statement.value}" in resource and self.for_each and '"*"' in self.for_each:
                return True
        return False

    def condition_values(self, variable: str) -> list[str]:
        return [
            str(value)
            for condition in self.conditions
            if condition.get("variable") == variable
            for value in _as_list(condition.get("values"))
        ]


def _as_list(value: Any) -> list[Any]:
    """A block or attribute value as a flat list (resolved locals can nest lists)."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [value]
    return [item for element in value for item in _as_list(element)]


def _statements_of(document: dict[str, Any], origin: str, locals_: dict[str, Any]) -> list[Statement]:
    raw: list[tuple[dict[str, Any], str | None]] = [(s, None) for s in _as_list(document.get("statement"))]
    for dynamic in _as_list(document.get("dynamic")):
        block = dynamic.get("statement")
        if block:
            raw += [(content, str(block.get("for_each"))) for content in _as_list(block.get("content"))]
    statements = []
    for body, for_each in raw:
        if body.get("principals") or body.get("not_principals"):
            continue  # a trust/resource policy, not a permission of the role
        body = resolve_locals(body, locals_)
        statements.append(
            Statement(
                origin=f"{origin}[{body.get('sid', '?')}]",
                effect=str(body.get("effect", "Allow")),
                actions=tuple(str(a) for a in _as_list(body.get("actions"))),
                resources=tuple(str(r) for r in _as_list(body.get("resources"))),
                conditions=tuple(_as_list(body.get("condition"))),
                for_each=for_each,
            )
        )
    return statements


def _documents(module: Module, names: set[str]) -> dict[str, dict[str, Any]]:
    """The named policy documents plus those they compose (source/override_policy_documents)."""
    found: dict[str, dict[str, Any]] = {}
    pending = set(names)
    while pending:
        name = pending.pop()
        body = module.data.get(("aws_iam_policy_document", name))
        assert body is not None, f"{module.path.name}: data.aws_iam_policy_document.{name} is referenced but missing"
        found[name] = body
        composed = str([body.get("source_policy_documents"), body.get("override_policy_documents")])
        pending |= set(_DOC_REFERENCE.findall(composed)) - set(found)
    return found


@cache
def function_statements() -> tuple[list[Statement], list[Statement]]:
    """(statements of ami-backup's business policies, statements of internal's own function policies)."""
    internal = load_module(INTERNAL)
    role_policies = [
        body
        for (kind, _), body in internal.resources.items()
        if kind == "aws_iam_role_policy" and "aws_iam_role.this" in str(body.get("role"))
    ]
    assert role_policies, "modules/internal attaches no policy to the function roles (aws_iam_role.this)"
    internal_names = {name for body in role_policies for name in _DOC_REFERENCE.findall(str(body.get("policy")))}
    plumbing = [
        statement
        for name, document in _documents(internal, internal_names).items()
        for statement in _statements_of(document, f"internal:{name}", internal.locals)
    ]
    caller = load_module(AMI_BACKUP)
    calls = calls_to(caller, "internal")
    assert calls, "modules/ami-backup does not call modules/internal"
    business_names = {name for call in calls for name in _DOC_REFERENCE.findall(str(call))}
    assert business_names, "modules/ami-backup passes no aws_iam_policy_document to modules/internal"
    business = [
        statement
        for name, document in _documents(caller, business_names).items()
        for statement in _statements_of(document, f"ami-backup:{name}", caller.locals)
    ]
    return business, plumbing


def all_statements() -> list[Statement]:
    business, plumbing = function_statements()
    return business + plumbing


def _values_of(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        return [v for k, item in value.items() for v in ([item] if k == key else _values_of(item, key))]
    if isinstance(value, list):
        return [v for item in value for v in _values_of(item, key)]
    return []


@cache
def handler_modules() -> tuple[str, ...]:
    """The Python modules of the `handler`s ami-backup gives modules/internal (`package.module.function`)."""
    handlers = {str(h) for call in calls_to(load_module(AMI_BACKUP), "internal") for h in _values_of(call, "handler")}
    modules = tuple(sorted({handler.rpartition(".")[0] for handler in handlers}))
    assert modules and all(m.startswith(f"{PACKAGE.name}.") for m in modules), (
        f"modules/ami-backup passes no handler of the {PACKAGE.name} package to modules/internal: {handlers}"
    )
    return modules


@cache
def code_calls() -> list[ApiCall]:
    calls, unattributed = boto_calls(PACKAGE, handler_modules=handler_modules())
    assert not unattributed, (
        "calls whose AWS service or operation cannot be told from the code (name the client variable after its "
        "service, e.g. `ec2`, or assign it from `factory.client('ec2', ...)`; name paginators and waiters with "
        f"a string literal or a constant): {unattributed}"
    )
    assert calls, "the AST scan found no AWS call at all: the scan or the package is broken"
    return calls


def called_actions() -> dict[str, list[str]]:
    actions: dict[str, list[str]] = {}
    for call in code_calls():
        actions.setdefault(call.action, []).append(call.location)
    return actions


def test_every_called_action_is_allowed() -> None:
    statements = all_statements()
    missing = {
        action: where
        for action, where in called_actions().items()
        if not any(statement.allows(action) for statement in statements)
    }
    assert not missing, f"called by the code but allowed by no function policy: {missing}"


def test_actions_powertools_calls_are_allowed() -> None:
    statements = all_statements()
    powertools = [action for action, why in CALLED_FOR_THE_CODE.items() if why == "Powertools idempotency"]
    missing = [action for action in powertools if not any(s.allows(action) for s in statements)]
    assert not missing, f"Powertools idempotency needs {missing} on the idempotency table"


def test_no_wildcard_actions() -> None:
    wildcards = [(s.origin, a) for s in all_statements() for a in s.actions if "*" in a or "?" in a]
    assert not wildcards, f"wildcard actions hide what the role can do: {wildcards}"


@pytest.mark.parametrize("service", STRICT_SERVICES)
def test_every_allowed_action_is_called(service: str) -> None:
    called = set(called_actions())
    unused = sorted(
        {
            (statement.origin, action)
            for statement in all_statements()
            for action in statement.actions
            if action.startswith(f"{service}:")
            and action not in called
            and action not in AUTHORIZES_PART_OF
            and statement.effect == "Allow"
        }
    )
    assert not unused, f"allowed but never called by the code: {unused}"


@pytest.mark.parametrize("action", sorted(AUTHORIZES_PART_OF))
def test_implied_actions_are_bound_to_called_create_actions(action: str) -> None:
    """ec2:CreateTags only as part of a create call the code makes, never to re-tag existing resources."""
    condition_key = AUTHORIZES_PART_OF[action]
    called = set(called_actions())
    service = action.split(":")[0]
    problems = []
    for statement in all_statements():
        if not statement.allows(action):
            continue
        create_actions = statement.condition_values(condition_key)
        if not create_actions:
            problems.append(f"{statement.origin}: {action} without a {condition_key} condition")
        problems += [
            f"{statement.origin}: {condition_key} = {name}, which the code never calls"
            for name in create_actions
            if f"{service}:{name}" not in called
        ]
    assert not problems, "\n".join(problems)


def test_plumbing_allows_only_what_code_or_platform_calls() -> None:
    _, plumbing = function_statements()
    called = set(called_actions())
    unexplained = sorted(
        {
            (statement.origin, action)
            for statement in plumbing
            for action in statement.actions
            if action not in called and action not in CALLED_FOR_THE_CODE
        }
    )
    assert not unexplained, f"internal function policy allows actions nobody calls: {unexplained}"


def test_no_mutating_ec2_action_on_every_resource() -> None:
    offenders = [
        (statement.origin, action)
        for statement in all_statements()
        for action in statement.actions
        if MUTATING_EC2.match(action) and statement.has_wildcard_resource()
    ]
    assert not offenders, f'mutating EC2 actions with resource "*": {offenders}'


def _tag_condition_problems(statement: Statement, kind: str) -> list[str]:
    """Problems with the `aws:<kind>/<ownership key>` conditions of one statement."""
    expected = {
        tagging.MANAGED_BY: lambda values: values == [tagging.MANAGED_BY_VALUE],
        tagging.POLICY: lambda values: values == ["${var.name}"],
    }
    problems = []
    for key, check in expected.items():
        variable = f"aws:{kind}/{key}"
        values = statement.condition_values(variable)
        if not check(values):
            problems.append(f"{statement.origin}: condition {variable} = {values or 'missing'}")
    return problems


@pytest.mark.parametrize("action", ["ec2:DeregisterImage", "ec2:DeleteSnapshot"])
def test_destructive_actions_require_ownership_tags(action: str) -> None:
    statements = [s for s in all_statements() if s.allows(action)]
    assert statements, f"{action} is allowed nowhere (the code calls it: {action in called_actions()})"
    problems = [problem for s in statements for problem in _tag_condition_problems(s, "ResourceTag")]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("resource_type", ["image", "snapshot"])
def test_create_image_requires_ownership_request_tags(resource_type: str) -> None:
    statements = [s for s in all_statements() if s.allows("ec2:CreateImage")]
    covering = [s for s in statements if any(f":{resource_type}/" in r or r == "*" for r in s.resources)]
    assert covering, f"no statement allows ec2:CreateImage on {resource_type} resources"
    problems = [problem for s in covering for problem in _tag_condition_problems(s, "RequestTag")]
    assert not problems, "\n".join(problems)
