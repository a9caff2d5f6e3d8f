"""Tier 1: each function's role allows what its handler was observed calling, and nothing else; the ownership
rule holds in every public module.

Evidence, not guessing: the moto tests record the AWS operations each Lambda handler really calls (a botocore
event hook) into tests/contracts/observed_api_calls.json, keyed by handler string. This test reads every public
module built on modules/internal (none is named here), maps its functions' handler strings (from the HCL) to
those observations and checks them against the business statements the module hands internal and the
plumbing statements internal adds for that kind of function (queue consumer or not, scheduled or not).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from tests.support.hcl_tree import (
    ModuleFunction,
    automation_modules,
    business_statements,
    internal_call,
    load_module,
    module_functions,
    resolve_locals,
)
from tests.support.python_scan import iam_action
from tests.support.terraform_env import repo_root

ROOT = repo_root()
INTERNAL = ROOT / "modules" / "internal"
OBSERVED = ROOT / "tests" / "contracts" / "observed_api_calls.json"
MODULES = automation_modules()
FUNCTIONS = [fn for module_dir in MODULES for fn in module_functions(module_dir)]

# Allowed for a call the code makes without being an API call of its own: tags given in a create call's
# TagSpecifications are authorized as ec2:CreateTags (EC2 user guide, "Grant permission to tag resources during
# creation"), which the statement must bind to that call with the ec2:CreateAction condition. Action -> (the
# condition key, the prefixes of the calls it serves): creations and copies (CopySnapshot, CopyImage).
IMPLIED_BY = {
    "ec2:CreateTags": ("ec2:CreateAction", ("ec2:Create", "ec2:Copy", "ec2:RunInstances")),
    # SendCommand with a ServiceRoleArn (SNS notifications) passes the role to SSM; RunInstances with an instance
    # profile passes its role to EC2 ("To launch an instance with a role, the developer must have permission to launch
    # EC2 instances and permission to pass IAM roles", EC2 user guide, permission-to-pass-iam-roles): authorized,
    # never called.
    "iam:PassRole": ("iam:PassedToService", ("ssm:SendCommand", "ec2:RunInstances")),
}
# Allowed for AWS to use with the function's permissions while it serves one of our calls, so never observed: EBS
# uses the customer managed key of an encrypted volume as the principal that snapshots it (EBS user guide,
# "Requirements for Amazon EBS encryption"), and the keys of an encrypted copy's source and destination as the
# principal that copies it (EBS user guide, "Copy an Amazon EBS snapshot": kms:DescribeKey, kms:CreateGrant,
# kms:GenerateDataKey, kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt, kms:Decrypt). Action -> the calls
# (prefixes) it serves.
# Restore tests launch from encrypted AMIs (RunInstances) and create volumes from encrypted snapshots (CreateVolume):
# EBS needs the same key permissions of the caller ("Requirements for Amazon EBS encryption", Permissions for users).
_EBS_WITH_KEYS = ("ec2:CreateSnapshot", "ec2:CopySnapshot", "ec2:CopyImage", "ec2:RunInstances", "ec2:CreateVolume")
# Starting an instance whose EBS volumes use a customer managed key: "The IAM principal that calls the
# StartInstances API action must have kms:CreateGrant permissions to create a grant for Amazon EC2" (AWS Knowledge
# Center, "Why did my EC2 instance go from Pending to Stopped", kms-iam-ec2-permission); EC2 makes the grant, our
# code never calls KMS.
USED_BY_AWS_FOR = {
    "kms:CreateGrant": (*_EBS_WITH_KEYS, "ec2:StartInstances"),
    "kms:Decrypt": _EBS_WITH_KEYS,
    "kms:DescribeKey": _EBS_WITH_KEYS,
    "kms:GenerateDataKey": ("ec2:CopySnapshot", "ec2:CopyImage"),
    "kms:GenerateDataKeyWithoutPlaintext": _EBS_WITH_KEYS,
    "kms:ReEncryptFrom": _EBS_WITH_KEYS,
    "kms:ReEncryptTo": _EBS_WITH_KEYS,
}
# Made with the function's role by the platform, not by our code, so never observed.
CALLED_BY_THE_PLATFORM = {
    "logs:CreateLogStream": "the Lambda runtime writes the function's logs",
    "logs:PutLogEvents": "the Lambda runtime writes the function's logs",
    "sqs:ReceiveMessage": "the SQS event source mapping polls the work queue",
    "sqs:DeleteMessage": "the SQS event source mapping deletes processed messages",
    "sqs:GetQueueAttributes": "the SQS event source mapping reads the queue",
    "sqs:SendMessage": "Lambda sends failed asynchronous invocations to the on-failure destination",
    "xray:PutTraceSegments": "active tracing",
    "xray:PutTelemetryRecords": "active tracing",
    "kms:Decrypt": "SSE-KMS on the queues, table and log group",
    "kms:GenerateDataKey": "SSE-KMS on the queues, table and log group",
}
MUTATING_EC2 = re.compile(r"^ec2:(Create|Copy|Delete|Deregister|Register|Modify|Reset|Enable|Disable|Restore)")
DESTROYING_EC2 = re.compile(r"^ec2:(Delete|Deregister)")
# The one destroying statement without the ownership condition: deregister-cleanup with scope = "any", the user's
# explicit choice to clean up after every AMI of the account (its README says what IAM it then holds). An
# exclusion-tag Deny still binds it.
UNOWNED_ALLOWED = {("deregister-cleanup", "worker", "DeleteAnySnapshot")}
# The second exception (docs/DESIGN.md): the sources of a copy are another policy's or the user's, so their copy and
# share statements carry ownership "source" instead of "request". modules/internal accepts it only for these actions
# and only with an aws:ResourceTag condition or resources without * (a validation its terraform test exercises).
SOURCE_ACTIONS = {"ec2:CopySnapshot", "ec2:CopyImage", "ec2:ModifySnapshotAttribute"}
# Restore tests (issue 13, docs/DESIGN.md): two uses of the policy's OWN backups that are neither creation nor
# destruction, so they take ownership "resource" (the backup must carry this policy's tags): a volume created FROM a
# snapshot (CreateVolume authorises the source snapshot with aws:ResourceTag), and the restore result written onto an
# image or snapshot by CreateTags, whose aws:TagKeys condition admits the two restore keys only (so the ownership
# tags can never be written this way).
RESTORE_FROM_OWN_BACKUPS = {"ec2:CreateVolume"}
RESTORE_RESULT_KEYS = {"ops-automation:restore-result", "ops-automation:restore-tested"}


def restore_exception(statement: Any) -> bool:
    """A statement the restore tests need on the policy's own backups (see RESTORE_FROM_OWN_BACKUPS)."""
    if statement.ownership != "resource":
        return False
    if set(statement.actions) <= RESTORE_FROM_OWN_BACKUPS and set(statement.resource_kinds) == {"snapshot"}:
        return True
    return set(statement.actions) == {"ec2:CreateTags"} and "aws:TagKeys" in statement.condition_variables


def _ids(functions: list[ModuleFunction]) -> list[str]:
    return [f"{fn.module}/{fn.key}" for fn in functions]


@cache
def observed() -> dict[str, set[str]]:
    assert OBSERVED.is_file(), (
        f"{OBSERVED.relative_to(ROOT)} is missing: run the moto tests (tests/python) to record it"
    )
    data = json.loads(OBSERVED.read_text(encoding="utf-8"))
    return {handler: {iam_action(op) for op in operations} for handler, operations in data.items()}


# --- plumbing: what modules/internal adds to each kind of function ----------------------------------------------


@dataclass(frozen=True)
class PlumbingStatement:
    sid: str
    actions: tuple[str, ...]
    applies_when: str  # "always", "consumer", "scheduled", "optional" (a key, topic or tracing is set)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@cache
def plumbing() -> tuple[PlumbingStatement, ...]:
    internal = load_module(INTERNAL)
    document = internal.data.get(("aws_iam_policy_document", "plumbing"))
    assert document, "modules/internal has no data.aws_iam_policy_document.plumbing"
    found = [
        PlumbingStatement(str(s.get("sid")), tuple(_as_list(s.get("actions"))), "always")
        for s in _as_list(document.get("statement"))
    ]
    for dynamic in _as_list(document.get("dynamic")):
        block = dynamic.get("statement")
        if not block:
            continue
        for_each = str(block.get("for_each"))
        applies = (
            "ledger_reader"
            if "reads_ledger" in for_each
            else "consumer"
            if "consumes_queue" in for_each
            else "scheduled"
            if "schedule" in for_each
            else "optional"
        )
        for content in _as_list(block.get("content")):
            content = resolve_locals(content, internal.locals)
            found.append(PlumbingStatement(str(content.get("sid")), tuple(_as_list(content.get("actions"))), applies))
    return tuple(found)


def plumbing_actions(fn: ModuleFunction) -> set[str]:
    applies = (
        {"always", "optional"}
        | ({"consumer"} if fn.consumes_queue else set())
        | ({"scheduled"} if fn.scheduled else set())
        | ({"ledger_reader"} if fn.reads_ledger and not fn.consumes_queue else set())
    )
    return {action for s in plumbing() if s.applies_when in applies for action in s.actions}


def internal_scope_actions(*local_names: str) -> set[str]:
    """The actions of the statements internal adds for the scope group (locals of modules/internal/iam.tf)."""
    internal = load_module(INTERNAL)
    return {
        action
        for name in local_names
        for statement in business_statements(resolve_locals(internal.locals[name], internal.locals))
        for action in statement.actions
    }


def business_actions(fn: ModuleFunction) -> set[str]:
    actions = {action for statement in fn.statements for action in statement.actions}
    if "scope" in internal_call(ROOT / "modules" / fn.module):
        # internal adds sts:AssumeRole on the target roles (role_arns, accounts, OUs) to every function; the planners
        # (scheduled) get the Organizations reads, or sts:AssumeRole on organizations_role_arn; ec2:DescribeRegions
        # (all-enabled regions) is in the target role's policy: the calls are made through that role, which the
        # observations cannot tell from the function's own.
        actions |= internal_scope_actions("assume_role_statements", "region_read_statements")
        if fn.scheduled:
            actions |= internal_scope_actions("planner_scope_statements", "organization_read_statements")
    return actions


# --- the tests -------------------------------------------------------------------------------------------------


def test_public_modules_are_discovered() -> None:
    assert MODULES, "no public module (modules/<name>/README.md) calls modules/internal"
    assert FUNCTIONS, "the public modules hand modules/internal no functions"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_handler_calls_were_observed(fn: ModuleFunction) -> None:
    assert fn.handler in observed(), (
        f"no observed API calls for {fn.handler} ({fn.module}/{fn.key}) in {OBSERVED.relative_to(ROOT)}: "
        "the moto tests must exercise every handler a module deploys"
    )


def planner_actions_run_by_the_worker(fn: ModuleFunction) -> set[str]:
    """Landing-zone scopes: the queue consumer runs the planners' listing for each account x region scope
    (core/planner.py plan_scope) through that account's target role, whose policy (target_role_policy_json) holds
    every function's statements; the observations cannot tell those calls from the worker's own."""
    if not fn.consumes_queue or "scope" not in internal_call(ROOT / "modules" / fn.module):
        return set()
    return {
        action
        for planner in FUNCTIONS
        if planner.module == fn.module and planner.scheduled
        for statement in planner.statements
        for action in statement.actions
    }


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_every_observed_call_is_allowed(fn: ModuleFunction) -> None:
    allowed = business_actions(fn) | plumbing_actions(fn) | planner_actions_run_by_the_worker(fn)
    missing = sorted(observed().get(fn.handler, set()) - allowed)
    assert not missing, f"{fn.module}/{fn.key} ({fn.handler}) calls {missing}, which its role does not allow"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_every_allowed_business_action_is_observed_or_implied(fn: ModuleFunction) -> None:
    calls = observed().get(fn.handler, set())
    unused = []
    for statement in fn.statements:
        for action in statement.actions:
            if action in calls:
                continue
            implied = IMPLIED_BY.get(action)
            if implied and implied[0] in statement.condition_variables and any(c.startswith(implied[1]) for c in calls):
                continue
            served = USED_BY_AWS_FOR.get(action)
            if served and any(c.startswith(served) for c in calls):
                continue
            unused.append(f"{statement.sid}: {action}")
    assert not unused, f"{fn.module}/{fn.key} allows what {fn.handler} was never observed calling: {unused}"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_plumbing_is_explained(fn: ModuleFunction) -> None:
    calls = observed().get(fn.handler, set())
    unexplained = sorted(a for a in plumbing_actions(fn) if a not in calls and a not in CALLED_BY_THE_PLATFORM)
    assert not unexplained, f"internal gives {fn.module}/{fn.key} actions nobody calls: {unexplained}"


@pytest.mark.parametrize(
    "fn", [f for f in FUNCTIONS if not f.consumes_queue], ids=_ids([f for f in FUNCTIONS if not f.consumes_queue])
)
def test_only_the_queue_consumer_receives_and_touches_the_ledger(fn: ModuleFunction) -> None:
    """A scheduled function may read the ledger (`reads_ledger`: GetItem), never write it."""
    granted = plumbing_actions(fn) - ({"dynamodb:GetItem"} if fn.reads_ledger else set())
    assert not {a for a in granted if a.startswith("dynamodb:") or a in {"sqs:ReceiveMessage", "sqs:DeleteMessage"}}, (
        f"{fn.module}/{fn.key} does not consume the queue but gets {sorted(granted)}"
    )


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_no_wildcards(fn: ModuleFunction) -> None:
    problems = [
        f"{s.sid}: {a}"
        for s in fn.statements
        for a in s.actions
        if "*" in a or ("*" in s.resource_kinds and not re.match(r"^[a-z0-9-]+:(Describe|Get|List)", a))
    ]
    assert not problems, f"{fn.module}/{fn.key}: wildcard action, or * resource on a non-read action: {problems}"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_ownership_of_image_and_snapshot_changes(fn: ModuleFunction) -> None:
    """Creation must carry the ownership tags (request), destruction requires them (resource)."""
    problems = []
    for s in fn.statements:
        if not ({"image", "snapshot"} & set(s.resource_kinds)):
            continue
        if s.ownership == "unowned" and (fn.module, fn.key, s.sid) in UNOWNED_ALLOWED:
            continue
        if restore_exception(s):
            continue
        if s.ownership == "source":
            if not set(s.actions) <= SOURCE_ACTIONS:
                problems.append(f"{s.sid}: ownership 'source' with {sorted(set(s.actions) - SOURCE_ACTIONS)}")
            continue
        for action in s.actions:
            if DESTROYING_EC2.match(action) and s.ownership != "resource":
                problems.append(f"{s.sid}: {action} with ownership {s.ownership!r} (needs 'resource')")
            elif MUTATING_EC2.match(action) and not DESTROYING_EC2.match(action) and s.ownership != "request":
                problems.append(f"{s.sid}: {action} with ownership {s.ownership!r} (needs 'request')")
    assert not problems, f"{fn.module}/{fn.key}: " + "; ".join(problems)


def test_internal_limits_source_ownership() -> None:
    """The "source" exception exists only with internal's validation that bounds it (actions, tags or ids)."""
    text = (INTERNAL / "variables.tf").read_text(encoding="utf-8")
    assert 's.ownership != "source"' in text and "aws:ResourceTag/" in text, (
        "modules/internal must validate ownership = source statements (copy/share actions, a tag condition or ids)"
    )
    for action in SOURCE_ACTIONS:
        assert f'"{action}"' in text, f"modules/internal's source validation does not name {action}"


def _tagging_module() -> Any:
    try:
        from ops_automation.core import tagging  # type: ignore[attr-defined]
    except ImportError:  # before the core/ split
        from ops_automation import tagging  # type: ignore[no-redef]
    return tagging


def test_internal_ownership_tags_are_the_codes() -> None:
    """The IAM conditions internal adds name the same tags the code writes and checks."""
    tagging = _tagging_module()
    tags = load_module(INTERNAL).locals.get("ownership_tags")
    assert isinstance(tags, dict), "modules/internal has no local.ownership_tags"
    assert set(tags) == {tagging.MANAGED_BY, tagging.POLICY}, tags
    assert tags[tagging.MANAGED_BY] == tagging.MANAGED_BY_VALUE
    assert tags[tagging.POLICY] == "${var.name}"


def test_observed_file_names_only_deployed_handlers() -> None:
    """A recorded handler no module deploys means a renamed handler string somewhere."""
    deployed = {fn.handler for fn in FUNCTIONS}
    stale = sorted(set(observed()) - deployed)
    assert not stale, f"{OBSERVED.relative_to(ROOT)} records handlers no module deploys: {stale}"


def test_restore_exception_is_narrow() -> None:
    from tests.support.hcl_tree import BusinessStatement

    def statement(actions: tuple[str, ...], kinds: tuple[str, ...], keys: tuple[str, ...] = ()) -> BusinessStatement:
        return BusinessStatement("S", actions, "resource", keys, kinds)

    assert restore_exception(statement(("ec2:CreateVolume",), ("snapshot",)))
    assert restore_exception(statement(("ec2:CreateTags",), ("image",), ("aws:TagKeys",)))
    assert not restore_exception(statement(("ec2:CreateTags",), ("image",)))
    assert not restore_exception(statement(("ec2:CreateVolume",), ("snapshot", "volume")))
    assert not restore_exception(statement(("ec2:CopySnapshot",), ("snapshot",)))


def test_restore_result_keys_are_the_codes() -> None:
    """The aws:TagKeys the modules allow on their backups are the restore tags core/tagging.py writes."""
    tagging = _tagging_module()
    written = {tagging.RESTORE_RESULT, tagging.RESTORE_TESTED}
    assert written == RESTORE_RESULT_KEYS
    for module in ("ami-backup", "ebs-snapshot"):
        text = (ROOT / "modules" / module / "iam.tf").read_text(encoding="utf-8")
        assert all(f'"{key}"' in text for key in RESTORE_RESULT_KEYS), module


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_kms_calls_of_our_code_are_allowed_without_via_service(fn: ModuleFunction) -> None:
    """`kms:ViaService` "only applies for Forward access sessions (FAS)" (KMS condition keys): a KMS call the
    function itself makes never carries it, so a statement limited by it cannot allow that call."""
    direct = sorted(call for call in observed().get(fn.handler, set()) if call.startswith("kms:"))
    unmet = [
        call
        for call in direct
        if not any(
            call in statement.actions and "kms:ViaService" not in statement.condition_variables
            for statement in fn.statements
        )
    ]
    assert not unmet, f"{fn.module}/{fn.key} calls {unmet} itself, but only statements with kms:ViaService allow them"
