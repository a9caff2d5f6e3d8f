"""`make security`: the security gate over what Terraform renders, as it would be deployed.

Four checks, one table (check, items checked, findings, result); exit 1 on any finding.

1. checkov over `modules/` and `examples/` (its own virtualenv: it pins an old boto3), run alongside the applies:
   zero failed checks, and every `#checkov:skip=CKV_...:reason` in the HCL carries its reason.
2. Every IAM policy Terraform renders, linted with parliament: no finding at MEDIUM or above, none of its INVALID
   group (unknown action, prefix, condition key for the action, operator, principal, malformed document). The
   policies name ARNs of resources that only exist once applied, so a plan from nothing leaves them unknown: each
   example is applied to the local AWS tier 3 uses (`scripts/local_aws.py`, `tests/e2e/scenario.py`'s
   `AppliedExamples` with its staging and packaging stand-in), then `terraform plan -out` and `terraform show -json`
   give every policy with its values (prior state and planned values).
3. No mutating action (Service Authorization Reference access level Write, Permissions management or Tagging, as
   parliament's machine-readable copy has it) on a `*` resource in an identity policy, except actions that support
   no resource type at all, each listed once in `NO_RESOURCE_TYPE` with that reason.
4. The spoke roles (modules/target-account-role, as examples/landing-zone deploys them into its workload accounts)
   cannot act without the ownership tags. By the policy evaluator below, on the rendered policies: every Allow
   statement granting a mutating action is evaluated with the request it was written for (a context its conditions
   hold for) plus the ownership tags - allowed - and the same request without them; an action passes when no
   statement lets it through without them, or when a resource type every request of it needs (the new snapshot of
   CreateSnapshot) is granted only with them, so that what stays open is a source the call reads (the volume), or
   when it is tagging on creation inside such an action. And by real calls through the deployed roles where the
   emulator's fidelity patch I2 decides (tests/support/moto_fidelity.py: DeleteSnapshot, DeregisterImage,
   CreateTags, CreateSnapshot, CreateImage), each with and without the ownership tags.

Usage: `python scripts/security_gate.py [--checkov PATH] [--no-apply] [--keep-plans DIR]` (`make security` passes
the checkov of its virtualenv). A full run writes the README's "Performance and reliability" security block
(bench/performance.py)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "lambda_src"), str(REPO_ROOT)]

# ---------------------------------------------------------------------------------------------------------------
# Policies as Terraform renders them
# ---------------------------------------------------------------------------------------------------------------

IDENTITY: Literal["identity"] = "identity"
RESOURCE: Literal["resource"] = "resource"
PolicyKind = Literal["identity", "resource"]

# (resource type, attribute) -> kind. A resource policy's `Resource: "*"` (or none, in a trust policy) means the
# resource it is attached to.
POLICY_ATTRIBUTES: dict[tuple[str, str], PolicyKind] = {
    ("aws_iam_role_policy", "policy"): IDENTITY,
    ("aws_iam_policy", "policy"): IDENTITY,
    ("aws_iam_user_policy", "policy"): IDENTITY,
    ("aws_iam_group_policy", "policy"): IDENTITY,
    ("aws_iam_role", "assume_role_policy"): RESOURCE,
    ("aws_sqs_queue", "policy"): RESOURCE,
    ("aws_sqs_queue_policy", "policy"): RESOURCE,
    ("aws_sns_topic", "policy"): RESOURCE,
    ("aws_sns_topic_policy", "policy"): RESOURCE,
    ("aws_cloudwatch_event_bus_policy", "policy"): RESOURCE,
    ("aws_kms_key", "policy"): RESOURCE,
    ("aws_kms_key_policy", "policy"): RESOURCE,
    ("aws_s3_bucket_policy", "policy"): RESOURCE,
    ("aws_lambda_function", "policy"): RESOURCE,
}
POLICY_DOCUMENT_DATA = "aws_iam_policy_document"


@dataclass(frozen=True)
class RenderedPolicy:
    """One policy document as Terraform rendered it: where (example, resource address, attribute), which kind,
    and for a resource policy the ARN of the resource it is attached to (None when not known)."""

    example: str
    address: str
    attribute: str
    kind: PolicyKind
    document: Mapping[str, Any]
    resource_arn: str | None = None

    @property
    def where(self) -> str:
        return f"{self.example}: {self.address}.{self.attribute}"


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, (str, dict)) else list(value)


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(statement) for statement in _listed(document.get("Statement"))]


def _document(value: Any) -> dict[str, Any] | None:
    """A policy attribute's value as a document; None when empty or not (yet) known."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    parsed = json.loads(value)
    return parsed if isinstance(parsed, dict) else None


def kind_of(document: Mapping[str, Any]) -> PolicyKind:
    """A document with a Principal in any statement is a resource policy; else an identity policy."""
    return RESOURCE if any("Principal" in s or "NotPrincipal" in s for s in statements(document)) else IDENTITY


def _resource_arn(resource_type: str, values: Mapping[str, Any]) -> str | None:
    """The ARN of the resource a resource policy is attached to, from its attributes."""
    if resource_type == "aws_sqs_queue_policy":
        match = re.match(r"https?://[^/]+/(\d{12})/([^/]+)$", str(values.get("queue_url", "")))
        region = re.search(r"sqs\.([a-z0-9-]+)\.", str(values.get("queue_url", "")))
        if match:
            return f"arn:aws:sqs:{region.group(1) if region else '*'}:{match.group(1)}:{match.group(2)}"
        return None
    if resource_type == "aws_s3_bucket_policy":
        return f"arn:aws:s3:::{values['bucket']}" if values.get("bucket") else None
    if resource_type == "aws_cloudwatch_event_bus_policy":
        bus = str(values.get("event_bus_name") or "default")
        return bus if bus.startswith("arn:") else None
    if resource_type in ("aws_kms_key_policy",):
        key = str(values.get("key_id", ""))
        return key if key.startswith("arn:") else None
    arn = values.get("arn")
    return str(arn) if arn else None


def _walk_modules(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _walk_modules(child)


def policies_from_plan(plan: Mapping[str, Any], example: str) -> tuple[list[RenderedPolicy], list[str]]:
    """Every policy document of a `terraform show -json` plan (prior state and planned values, deduplicated), and
    the addresses whose policy Terraform did not know (after an apply there should be none)."""
    roots = [
        plan.get("prior_state", {}).get("values", {}).get("root_module", {}),
        plan.get("planned_values", {}).get("root_module", {}),
    ]
    found: dict[tuple[str, str, str], RenderedPolicy] = {}
    for root in roots:
        for resource in _walk_modules(root):
            for policy in _resource_policies(resource, example):
                found.setdefault((policy.address, policy.attribute, _canonical(policy.document)), policy)
    # An attribute the next plan would recompute (a data source read again) still has its applied value in the
    # prior state; only one Terraform never knew is a policy the gate could not see.
    known = {policy.address for policy in found.values()}
    unknown = sorted(
        change["address"]
        for change in plan.get("resource_changes", [])
        for attribute in ("policy", "assume_role_policy", "json")
        if (change.get("change", {}).get("after_unknown") or {}).get(attribute) is True
        and change.get("mode") == "managed"
        and change["address"] not in known
    )
    return list(found.values()), unknown


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)


def _resource_policies(resource: Mapping[str, Any], example: str) -> Iterator[RenderedPolicy]:
    values = resource.get("values") or {}
    resource_type, address = str(resource.get("type")), str(resource.get("address"))
    if resource.get("mode") == "data":
        if resource_type == POLICY_DOCUMENT_DATA and (document := _document(values.get("json"))):
            yield RenderedPolicy(example, address, "json", kind_of(document), document)
        return
    for (typed, attribute), kind in POLICY_ATTRIBUTES.items():
        if typed == resource_type and (document := _document(values.get(attribute))):
            arn = _resource_arn(resource_type, values) if kind == RESOURCE else None
            yield RenderedPolicy(example, address, attribute, kind, document, arn)
    if resource_type == "aws_iam_role":
        for index, inline in enumerate(values.get("inline_policy") or []):
            if document := _document(inline.get("policy")):
                yield RenderedPolicy(example, address, f"inline_policy[{index}]", IDENTITY, document)


# ---------------------------------------------------------------------------------------------------------------
# The Service Authorization Reference, as parliament ships it
# ---------------------------------------------------------------------------------------------------------------

MUTATING_ACCESS_LEVELS = frozenset({"Write", "Permissions management", "Tagging"})


@functools.cache
def _services() -> dict[str, dict[str, Any]]:
    import parliament

    return {service["prefix"]: service for service in parliament.iam_definition}


@functools.cache
def _iam_wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run, `?` one character, everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def expand_actions(patterns: Iterable[str]) -> list[str]:
    """The actions of the Service Authorization Reference that the Action patterns cover (`service:Name`)."""
    expanded: dict[str, None] = {}
    for pattern in patterns:
        if pattern == "*":
            for prefix, service in _services().items():
                expanded.update((f"{prefix}:{p['privilege']}", None) for p in service["privileges"])
            continue
        prefix, _, name = pattern.partition(":")
        for service_prefix, service in _services().items():
            if not _iam_wildcard(prefix, False).match(service_prefix):
                continue
            regex = _iam_wildcard(name, False)
            expanded.update(
                (f"{service_prefix}:{p['privilege']}", None)
                for p in service["privileges"]
                if regex.match(p["privilege"])
            )
    return list(expanded)


def privilege(action: str) -> dict[str, Any] | None:
    prefix, _, name = action.partition(":")
    service = _services().get(prefix.lower())
    if service is None:
        return None
    return next((p for p in service["privileges"] if p["privilege"].lower() == name.lower()), None)


def access_level(action: str) -> str | None:
    found = privilege(action)
    return str(found["access_level"]) if found else None


def is_mutating(action: str) -> bool:
    return access_level(action) in MUTATING_ACCESS_LEVELS


def resource_types(action: str) -> list[str]:
    """The resource types the action can be scoped to (`*` marks a required one); [] when it supports none."""
    found = privilege(action) or {}
    return [str(r["resource_type"]) for r in found.get("resource_types", []) if r.get("resource_type")]


# ---------------------------------------------------------------------------------------------------------------
# Check 2: parliament
# ---------------------------------------------------------------------------------------------------------------

FAILING_SEVERITIES = frozenset({"MEDIUM", "HIGH", "CRITICAL"})
# Parliament's INVALID group (config.yaml) holds UNKNOWN_ACTION and UNKNOWN_PREFIX at LOW severity: an action IAM
# does not know is a typo that grants nothing, so any of them fails too. MALFORMED* and EXCEPTION likewise.
FAILING_GROUPS = frozenset({"INVALID", "MALFORMED", "EXCEPTION"})
# Identity-policy rules parliament applies to every document:
# - INVALID_SID: IAM allows only [A-Za-z0-9] in an identity policy's Sid; resource policies of SNS, SQS and others
#   take any string (AWS itself writes "__default_statement_ID" into a topic's default policy);
# - RESOURCE_MISMATCH: a resource policy governs its own resource only ("*" there is the resource itself), so an
#   action's other required resource types (a key policy's kms:CreateAlias needs the alias too) are authorised by
#   the caller's identity policy on those resources, never by this document.
IDENTITY_ONLY_ISSUES = frozenset({"INVALID_SID", "RESOURCE_MISMATCH"})


@dataclass(frozen=True)
class Finding:
    check: str
    where: str
    detail: str


def lintable(policy: RenderedPolicy) -> dict[str, Any]:
    """The document parliament is given. In a resource policy a missing Resource (a trust policy) or `*` means the
    resource the policy is attached to; parliament 1.6 knows identity policies only (it wants a Resource and reads
    `*` as "every resource"), so the resource's own ARN is written in where it is known."""
    document = json.loads(json.dumps(policy.document))
    if policy.kind != RESOURCE:
        return dict(document)
    for statement in _listed(document.get("Statement")):
        if "NotResource" in statement:
            continue
        if policy.resource_arn is not None and statement.get("Resource") in (None, "*", ["*"]):
            statement["Resource"] = policy.resource_arn
        elif "Resource" not in statement:
            # The document as a data source, before it is attached: the resource is not known yet, and "*"
            # stands for it (parliament checks actions, conditions and principals all the same).
            statement["Resource"] = "*"
    return dict(document)


def _parliament_config() -> dict[str, Any]:
    import parliament

    return dict(parliament.config)


def _unmatched_in_policy(document: Mapping[str, Any], mismatches: list[dict[str, str]]) -> list[dict[str, str]]:
    """RESOURCE_MISMATCH entries no Allow statement of the whole policy answers. Parliament checks each statement
    on its own, so an action with two required resource types (ec2:CreateSnapshot: volume* and snapshot*) granted
    in two statements - the source volume unconditioned, the new snapshot only with the ownership tags in the
    request - is reported twice; IAM evaluates the policy as a whole, and the request is allowed when some
    statement allows each resource ("Policy evaluation logic"). An entry no statement answers stays: that action
    could never be allowed."""
    import parliament

    def answered(entry: Mapping[str, str]) -> bool:
        return any(
            statement.get("Effect") == "Allow"
            and _covers(statement, "Action", entry["action"], case_sensitive=False)
            and any(
                str(resource) == "*"
                or parliament.is_arn_match("", entry["required_format"], str(resource))
                # parliament wants an account in every ARN; AWS-owned SSM documents have none
                # (arn:aws:ssm:<region>::document/AWS-RunShellScript), which `*` matches in IAM.
                or bool(_iam_wildcard(entry["required_format"], True).match(_instantiate(str(resource))))
                for resource in _listed(statement.get("Resource"))
            )
            for statement in statements(document)
        )

    return [entry for entry in mismatches if not (isinstance(entry, dict) and answered(entry))]


def parliament_findings(policy: RenderedPolicy) -> list[Finding]:
    """Parliament's findings on one policy that fail the gate (MEDIUM and above, or of a failing group). A document
    without statements (a data source rendering nothing, e.g. no Organizations scope) grants nothing: not linted."""
    import parliament

    if not statements(policy.document):
        return []
    document = lintable(policy)
    analysed = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=False)
    config = _parliament_config()
    failing = []
    for finding in analysed.findings:
        if policy.kind == RESOURCE and finding.issue in IDENTITY_ONLY_ISSUES:
            continue
        if finding.issue == "RESOURCE_MISMATCH":
            finding.detail = _unmatched_in_policy(document, finding.detail)
            if not finding.detail:
                continue
        settings = config.get(finding.issue, {})
        severity, group = str(settings.get("severity", "HIGH")), str(settings.get("group", finding.issue))
        if severity in FAILING_SEVERITIES or group in FAILING_GROUPS or finding.issue in FAILING_GROUPS:
            detail = f"{finding.issue} ({severity}): {finding.detail}"
            failing.append(Finding("parliament", policy.where, detail))
    return failing


# ---------------------------------------------------------------------------------------------------------------
# Check 3: no mutating action on `*` in an identity policy
# ---------------------------------------------------------------------------------------------------------------

# Mutating actions that support no resource type at all (their row in the Service Authorization Reference has an
# empty "Resource types" column), so IAM only ever authorises them on "*". Each one is here once, with the reason;
# `star_findings` checks that the copy of the reference agrees (an action that gained a resource type fails).
NO_RESOURCE_TYPE: dict[str, str] = {
    # modules/internal/iam.tf, statement XRay (var.tracing_enabled): trace submission has no resource type.
    "xray:PutTraceSegments": "AWS X-Ray: the Service Authorization Reference lists no resource type",
    "xray:PutTelemetryRecords": "AWS X-Ray: the Service Authorization Reference lists no resource type",
}


def _effectively_star(statement: Mapping[str, Any]) -> bool:
    if "NotResource" in statement:
        return True
    return any(str(resource) == "*" for resource in _listed(statement.get("Resource")))


def star_findings(policy: RenderedPolicy, allowed_without_type: Mapping[str, str] = NO_RESOURCE_TYPE) -> list[Finding]:
    """Allow statements of an identity policy granting a mutating action on `*` (or through NotResource)."""
    if policy.kind != IDENTITY:
        return []
    findings = []
    for statement in statements(policy.document):
        if statement.get("Effect") != "Allow" or not _effectively_star(statement):
            continue
        actions = _allowed_actions(statement)
        for action in actions:
            if not is_mutating(action):
                continue
            types = resource_types(action)
            if action in allowed_without_type and not types:
                continue
            why = (
                f"listed in NO_RESOURCE_TYPE, but the reference gives it resource types {types}"
                if action in allowed_without_type
                else f"{access_level(action)} action on '*' (resource types: {', '.join(types) or 'none'})"
            )
            findings.append(
                Finding("mutating on *", f"{policy.where} [{statement.get('Sid', '')}]", f"{action}: {why}")
            )
    return findings


def _allowed_actions(statement: Mapping[str, Any]) -> list[str]:
    if "NotAction" in statement:
        excluded = set(expand_actions(str(a) for a in _listed(statement["NotAction"])))
        return [action for action in expand_actions(["*"]) if action not in excluded]
    return expand_actions(str(a) for a in _listed(statement.get("Action")))


# ---------------------------------------------------------------------------------------------------------------
# Check 4: a small IAM policy evaluator
# ---------------------------------------------------------------------------------------------------------------


class UnmodelledCondition(ValueError):
    """A condition operator the evaluator does not know: the gate reports it instead of guessing."""


Decision = Literal["allow", "deny", "implicit"]
Context = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Request:
    """One authorisation of a request: an action on one resource ARN, with its condition context (keys as AWS
    names them; matched case-insensitively, values case-sensitively)."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)

    def values(self, key: str) -> list[str] | None:
        for name, values in self.context.items():
            if name.lower() == key.lower():
                return list(values)
        return None


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_OPERATOR = re.compile(r"^(?:(?P<set>ForAllValues|ForAnyValue):)?(?P<name>[A-Za-z]+?)(?P<if_exists>IfExists)?$")


def _arn_like(value: str, pattern: str) -> bool:
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(values) == len(patterns) == 6 and all(
        _iam_wildcard(p, True).match(v) for v, p in zip(values, patterns, strict=True)
    )


_TESTS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda value, pattern: value == pattern,
    "StringEqualsIgnoreCase": lambda value, pattern: value.lower() == pattern.lower(),
    "StringLike": lambda value, pattern: bool(_iam_wildcard(pattern, True).match(value)),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda value, pattern: value.lower() == pattern.lower(),
}


def condition_holds(operator: str, key: str, patterns: Sequence[Any], request: Request) -> bool:
    """One operator/key pair (IAM User Guide, "Condition operators", "Set operators for multivalued context keys"):
    a key missing from the request fails a positive operator and passes a negated one; `...IfExists` passes on a
    missing key; ForAllValues passes on a missing or empty key, ForAnyValue fails; Null tests presence."""
    parsed = _OPERATOR.match(operator)
    if parsed is None:
        raise UnmodelledCondition(operator)
    name, set_operator, if_exists = parsed["name"], parsed["set"], parsed["if_exists"]
    texts = [str(p).lower() if isinstance(p, bool) else str(p) for p in patterns]
    values = request.values(key)
    if name == "Null":
        if set_operator or if_exists:
            raise UnmodelledCondition(operator)
        return any((values is None) == (text.lower() == "true") for text in texts)
    negated = name in _NEGATED
    test = _TESTS.get(_NEGATED.get(name, name))
    if test is None:
        raise UnmodelledCondition(operator)

    def matches(value: str) -> bool:
        hit = any(test(value, pattern) for pattern in texts)
        return not hit if negated else hit

    if set_operator == "ForAllValues":
        return all(matches(value) for value in values or [])
    if set_operator == "ForAnyValue":
        return any(matches(value) for value in values or [])
    if values is None:
        return bool(if_exists) or negated
    return all(matches(value) for value in values) if negated else any(matches(value) for value in values)


def _covers(statement: Mapping[str, Any], element: str, value: str, case_sensitive: bool) -> bool:
    if element in statement:
        return any(_iam_wildcard(str(p), case_sensitive).match(value) for p in _listed(statement[element]))
    if f"Not{element}" in statement:
        return not any(_iam_wildcard(str(p), case_sensitive).match(value) for p in _listed(statement[f"Not{element}"]))
    return False


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    return (
        _covers(statement, "Action", request.action, case_sensitive=False)
        and _covers(statement, "Resource", request.resource, case_sensitive=True)
        and all(
            condition_holds(operator, key, _listed(patterns), request)
            for operator, keys in (statement.get("Condition") or {}).items()
            for key, patterns in keys.items()
        )
    )


def evaluate(documents: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    """Identity-policy evaluation ("Policy evaluation logic"): an explicit Deny wins, then any Allow, else the
    implicit deny."""
    decision: Decision = "implicit"
    for document in documents:
        for statement in statements(document):
            if not statement_applies(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return "deny"
            decision = "allow"
    return decision


def evaluate_all(documents: Sequence[Mapping[str, Any]], requests: Sequence[Request]) -> Decision:
    """A request AWS authorises on several resources (CreateSnapshot: the volume and the new snapshot) is allowed
    only when every one of them is."""
    decisions = [evaluate(documents, request) for request in requests]
    if "deny" in decisions:
        return "deny"
    return "allow" if decisions and all(d == "allow" for d in decisions) else "implicit"


# Ownership tags (docs/DESIGN.md): nothing without both is changed by the hub.
MANAGED_BY = "ops-automation:managed-by"
POLICY_TAG = "ops-automation:policy"
MANAGED_BY_VALUE = "terraform-aws-ops-automation"
TAG_CONDITION_KEYS = re.compile(r"^(aws:ResourceTag|ec2:ResourceTag|aws:RequestTag)/", re.IGNORECASE)


def ownership_tags(documents: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The ownership tags a role's policy asks for: managed-by, and the policy name its conditions name (the first
    StringEquals value on `<...>Tag/ops-automation:policy`; a role serving every policy asks for none)."""
    tags = {MANAGED_BY: MANAGED_BY_VALUE}
    for document in documents:
        for statement in statements(document):
            for operator, keys in (statement.get("Condition") or {}).items():
                for key, values in keys.items():
                    if operator == "StringEquals" and key.lower().endswith("tag/" + POLICY_TAG):
                        tags.setdefault(POLICY_TAG, str(_listed(values)[0]))
    return tags


def _instantiate(resource_pattern: str) -> str:
    """A concrete ARN the pattern matches (each wildcard replaced by a plausible token)."""
    return resource_pattern.replace("*", "example0123").replace("?", "x")


def _arn_pattern(arn_format: str) -> str:
    """A Service Authorization Reference ARN format as an IAM wildcard pattern (`${Region}` -> `*`)."""
    return re.sub(r"\$\{[^}]*\}", "*", arn_format)


def types_of(action: str, resource_pattern: str) -> set[str]:
    """The resource types of `action` a statement's Resource pattern can name ("*": all of them)."""
    prefix = action.split(":", 1)[0].lower()
    formats = {str(r["resource"]): str(r["arn"]) for r in _services().get(prefix, {}).get("resources", [])}
    names = {name.rstrip("*") for name in resource_types(action)}
    if resource_pattern == "*":
        return names
    sample = _instantiate(resource_pattern)
    return {n for n in names if n in formats and _iam_wildcard(_arn_pattern(formats[n]), True).match(sample)}


def required_types(action: str) -> set[str]:
    """The resource types every request of `action` is authorised on (marked `*` in the reference)."""
    return {name.rstrip("*") for name in resource_types(action) if name.endswith("*")}


_SATISFIED_BY_ABSENCE = ("StringNot", "ArnNot")


def satisfying_context(statement: Mapping[str, Any]) -> dict[str, list[str]]:
    """A request context the statement's Condition block holds for: the request it was written for. Negated
    operators and `Null: true` hold on an absent key, so those keys stay out."""
    context: dict[str, list[str]] = {}
    for operator, keys in (statement.get("Condition") or {}).items():
        parsed = _OPERATOR.match(operator)
        if parsed is None:
            raise UnmodelledCondition(operator)
        name = parsed["name"]
        for key, raw in keys.items():
            values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(raw)]
            if name == "Null":
                if values[0].lower() == "false":
                    context.setdefault(key, ["example0123"])
                continue
            if name.startswith(_SATISFIED_BY_ABSENCE):
                continue
            if name not in _TESTS:
                raise UnmodelledCondition(operator)
            chosen = values if parsed["set"] == "ForAllValues" else values[:1]
            context[key] = [_instantiate(value) for value in chosen]
    return context


def selection_tags(documents: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The tags besides the ownership tags that the role's Allow statements ask of existing resources (the sources'
    selection tags, Backup = daily), with a value they accept."""
    ownership = {MANAGED_BY.lower(), POLICY_TAG.lower()}
    found: dict[str, str] = {}
    for document in documents:
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            for key, values in satisfying_context(statement).items():
                tag = _tag_of(key)
                if (
                    tag
                    and tag.lower() not in ownership
                    and key.lower().startswith(("aws:resourcetag", "ec2:resourcetag"))
                ):
                    found.setdefault(tag, values[0])
    return found


def _tag_of(key: str) -> str | None:
    return key.split("/", 1)[1] if TAG_CONDITION_KEYS.match(key) else None


def with_ownership(context: Mapping[str, list[str]], tags: Mapping[str, str]) -> dict[str, list[str]]:
    """The context on resources carrying the ownership tags (and creating with them), besides what it holds."""
    owned = dict(context)
    for key, value in tags.items():
        for prefix in ("aws:ResourceTag", "ec2:ResourceTag", "aws:RequestTag"):
            owned.setdefault(f"{prefix}/{key}", [value])
    return owned


def without_ownership(context: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The same context on resources without the ownership tags, creating without them (every other tag kept)."""
    ownership = {MANAGED_BY.lower(), POLICY_TAG.lower()}
    stripped = {key: values for key, values in context.items() if (_tag_of(key) or "").lower() not in ownership}
    for key, values in context.items():
        if key.lower() == "aws:tagkeys":
            remaining = [value for value in values if value.lower() not in ownership]
            stripped.pop(key)
            if remaining:
                stripped[key] = remaining
    return stripped


@dataclass(frozen=True)
class OwnershipCase:
    """One Allow statement of a role granting a mutating action: its own request (a context its conditions hold
    for) on each resource it names, with the ownership tags and without them."""

    role: str
    action: str
    sid: str
    resources: tuple[str, ...]
    types: frozenset[str]
    create_action: str | None
    with_tags: Decision
    without_tags: Decision

    @property
    def protected(self) -> bool:
        return self.without_tags != "allow"


def ownership_cases(role: str, documents: Sequence[Mapping[str, Any]]) -> list[OwnershipCase]:
    """Every (Allow statement, mutating action) of the role, decided over all its documents (Deny included)."""
    tags = ownership_tags(documents)
    cases = []
    for document in documents:
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            context = with_ownership(satisfying_context(statement), tags)
            creating = (context.get("ec2:CreateAction") or [None])[0]
            patterns = [str(p) for p in _listed(statement.get("Resource"))] or ["*"]
            for action in _allowed_actions(statement):
                if not is_mutating(action):
                    continue
                owned = [Request(action, _instantiate(p), context) for p in patterns]
                unowned = [Request(action, r.resource, without_ownership(context)) for r in owned]
                types = frozenset(t for p in patterns for t in types_of(action, p))
                cases.append(
                    OwnershipCase(
                        role,
                        action,
                        str(statement.get("Sid", "")),
                        tuple(r.resource for r in owned),
                        types,
                        creating,
                        _most_permissive(documents, owned),
                        _most_permissive(documents, unowned),
                    )
                )
    return cases


def _most_permissive(documents: Sequence[Mapping[str, Any]], requests: Sequence[Request]) -> Decision:
    """Allowed when the statement lets any one of its resources through."""
    decisions = [evaluate(documents, request) for request in requests]
    return "allow" if "allow" in decisions else "deny" if "deny" in decisions else "implicit"


def action_needs_ownership(cases: Sequence[OwnershipCase], action: str, seen: frozenset[str] = frozenset()) -> bool:
    """A request of `action` cannot succeed without the ownership tags when every statement granting it is
    protected; or when some resource type every request of it is authorised on (`*` in the reference: the new
    snapshot of CreateSnapshot, the instance of RunInstances) is granted by protected statements only - the
    unprotected ones then name sources the call reads, not changes (the volume, the subnet); or, for tagging on
    creation (ec2:CreateAction), when the creating action needs them (EC2 authorises both in one call)."""
    granting = [case for case in cases if case.action == action]
    unprotected = [case for case in granting if not case.protected]
    if not unprotected:
        return True
    if any(all(c.protected for c in granting if t in c.types) for t in required_types(action)):
        return True
    prefix = action.split(":", 1)[0]
    return all(
        case.create_action is not None
        and f"{prefix}:{case.create_action}" not in seen
        and action_needs_ownership(cases, f"{prefix}:{case.create_action}", seen | {action})
        for case in unprotected
    )


def _case_text(case: OwnershipCase) -> str:
    return f"{case.action} [{case.sid}] on {', '.join(case.resources)}"


def ownership_findings(cases: Sequence[OwnershipCase]) -> list[Finding]:
    """An action a request without the ownership tags can get through fails; so does a statement whose own
    request is refused even with them (the request modelled would not be the statement's: it proves nothing)."""
    findings = []
    for role in dict.fromkeys(case.role for case in cases):
        of_role = [case for case in cases if case.role == role]
        for case in of_role:
            if case.with_tags != "allow":
                detail = f"{_case_text(case)}: its own request is {case.with_tags} even with the ownership tags"
                findings.append(Finding("ownership (evaluator)", role, detail))
        for action in dict.fromkeys(case.action for case in of_role):
            if not action_needs_ownership(of_role, action):
                open_cases = [_case_text(c) for c in of_role if c.action == action and not c.protected]
                detail = f"allowed without the ownership tags: {'; '.join(open_cases)}"
                findings.append(Finding("ownership (evaluator)", role, detail))
    return findings


# ---------------------------------------------------------------------------------------------------------------
# Check 1: checkov
# ---------------------------------------------------------------------------------------------------------------

CHECKOV_SKIP = re.compile(r"#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?")


def skips_without_reason(paths: Iterable[Path]) -> list[Finding]:
    """Every inline checkov skip must say why (`#checkov:skip=CKV_...:reason`)."""
    findings = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = CHECKOV_SKIP.search(line)
            if match and len((match["reason"] or "").strip()) < 10:
                findings.append(Finding("checkov", f"{path}:{number}", f"skip of {match['check']} without a reason"))
    return findings


@dataclass(frozen=True)
class CheckovResult:
    passed: int
    failed: int
    skipped: int
    failures: tuple[str, ...]
    exit_code: int


def checkov_counts(report: Any) -> CheckovResult:
    """Counts from checkov's `-o json` report (one object, or a list of them per framework)."""
    reports = report if isinstance(report, list) else [report]
    passed = failed = skipped = 0
    failures = []
    for item in reports:
        summary = item.get("summary", {})
        passed += int(summary.get("passed", 0))
        failed += int(summary.get("failed", 0))
        skipped += int(summary.get("skipped", 0))
        for check in item.get("results", {}).get("failed_checks", []):
            failures.append(f"{check['check_id']} {check['resource']} ({check['file_path']})")
    return CheckovResult(passed, failed, skipped, tuple(failures), 0)


def start_checkov(checkov: str) -> subprocess.Popen[str]:
    command = [checkov, "--quiet", "--compact", "--skip-download", "-o", "json", "--framework", "terraform"]
    command += ["-d", "modules", "-d", "examples"]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def json_documents(text: str) -> list[Any]:
    """Every JSON document of `text`: checkov prints one report per `-d` folder, one after the other."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while (index := _skip_space(text, index)) < len(text):
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def finish_checkov(process: subprocess.Popen[str]) -> CheckovResult:
    out, err = process.communicate()
    try:
        reports = [item for document in json_documents(out) for item in _listed(document)]
        if not reports:
            raise json.JSONDecodeError("no report", out, 0)
        counts = checkov_counts(reports)
    except json.JSONDecodeError:
        return CheckovResult(0, 0, 0, (f"checkov output unreadable: {err.strip()[-500:]}",), process.returncode or 1)
    return dataclasses.replace(counts, exit_code=process.returncode)


# ---------------------------------------------------------------------------------------------------------------
# The applies: every example on one local AWS, each planned again and shown as JSON
# ---------------------------------------------------------------------------------------------------------------

LANDING_ZONE = Path("examples/landing-zone")
TARGET_ROLE_SOURCE = "modules/target-account-role"


@dataclass
class Rendered:
    """What the applies rendered: the policies, the addresses left unknown, the spoke roles' policies by role
    address, and the emulator's I2 cases."""

    policies: list[RenderedPolicy] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    spoke_roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    emulator: list[EmulatorCase] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def spoke_role_policies(plan: Mapping[str, Any], example: str) -> dict[str, list[dict[str, Any]]]:
    """The inline policies of the roles modules/target-account-role made, by their address."""
    calls = plan.get("configuration", {}).get("root_module", {}).get("module_calls", {})
    spoke_modules = {f"module.{name}" for name, call in calls.items() if TARGET_ROLE_SOURCE in str(call.get("source"))}
    roles: dict[str, list[dict[str, Any]]] = {}
    for resource in _walk_modules(plan.get("prior_state", {}).get("values", {}).get("root_module", {})):
        address = str(resource.get("address"))
        module = address.split(".aws_iam_role_policy", 1)[0].split("[")[0]
        document = _document((resource.get("values") or {}).get("policy"))
        if resource.get("type") == "aws_iam_role_policy" and module in spoke_modules and document:
            roles[f"{example}: {address}"] = [document]
    return roles


def _plan_json(run_workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    from tests.support import terraform_env

    # The state is the one the apply just read back from the local AWS: a refresh would read the same again.
    plan = ["plan", "-out=security-gate.tfplan", "-input=false", "-no-color", "-lock=false", "-refresh=false"]
    terraform_env.run_terraform(plan, run_workdir, env)
    shown = terraform_env.run_terraform(["show", "-json", "security-gate.tfplan"], run_workdir, env)
    return dict(json.loads(shown.stdout))


def render_examples(examples: Sequence[Path], workdir: Path, keep_plans: Path | None = None) -> Rendered:
    """Apply every example (the landing zone with an organization made on the local AWS) at once, then plan and
    show each; the emulator cases run on the landing zone's workload account while it is applied."""
    from concurrent.futures import ThreadPoolExecutor

    from scripts.local_aws import local_aws
    from tests.e2e import landing_zone_scenario as lz
    from tests.e2e import scenario
    from tests.support import terraform_env

    rendered = Rendered()
    started = time.monotonic()
    with local_aws(scenario.example_region(examples[0])) as aws:
        variants = []
        organization = None
        plain = [example for example in examples if example != LANDING_ZONE]
        if LANDING_ZONE in examples:
            organization = lz.create_organization(
                dataclasses.replace(aws, region=scenario.example_region(LANDING_ZONE))
            )
            variants.append(lz.variant(organization))
        # AppliedExamples, not applied_together: the local AWS is thrown away whole at the end, so the destroys
        # applied_together waits for would only cost time.
        applied = scenario.AppliedExamples(aws, workdir, plain, variants)
        env = terraform_env.terraform_env(workdir / "cli" / "terraform.rc")
        applied.start_applies()
        runs = {example: applied.run(example) for example in applied.examples}
        rendered.seconds["apply"] = time.monotonic() - started
        planned = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            plans = dict(zip(runs, pool.map(lambda run: _plan_json(run.workdir, env), runs.values()), strict=True))
        rendered.seconds["plan"] = time.monotonic() - planned
        for example, plan in plans.items():
            name = example.as_posix()
            if keep_plans is not None:
                keep_plans.mkdir(parents=True, exist_ok=True)
                (keep_plans / f"{example.name}.json").write_text(json.dumps(plan), encoding="utf-8")
            policies, unknown = policies_from_plan(plan, name)
            rendered.policies.extend(policies)
            rendered.unknown.extend(f"{name}: {address}" for address in unknown)
            rendered.spoke_roles.update(spoke_role_policies(plan, name))
        if organization is not None:
            run = runs[variants[0].path]
            rendered.emulator = emulator_cases(
                dataclasses.replace(aws, region=applied.region_of(run.example)), run, organization
            )
    rendered.seconds["total"] = time.monotonic() - started
    return rendered


# ---------------------------------------------------------------------------------------------------------------
# Check 4 on the emulator: fidelity patch I2 decides the EC2 calls of the deployed spoke roles
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatorCase:
    role: str
    call: str
    with_tags: str  # "allowed" or the error code
    without_tags: str

    @property
    def holds(self) -> bool:
        return self.with_tags == "allowed" and self.without_tags != "allowed"


def _outcome(call: Callable[[], Any]) -> str:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "allowed"


def emulator_cases(aws: Any, run: Any, organization: Any) -> list[EmulatorCase]:
    """Through each spoke role of workload account A (assumed as the hub's worker does: from its function role,
    with the external id and session name), each I2-decided EC2 call on a resource with the ownership tags and on
    the same kind of resource without them (creations: with and without the tags in TagSpecifications)."""
    from tests.e2e import landing_zone_scenario as lz
    from tests.e2e import scenario

    cases: list[EmulatorCase] = []
    external_id = str(run.outputs.get("external_id") or "landing-zone-example-7f3a")
    administrator = lz.administrator(aws, organization.workload_a)
    admin, iam = lz.client(aws, "ec2", administrator), lz.client(aws, "iam", administrator)
    for module, key in (("ami_backup", "ami-backup"), ("ebs_snapshot", "ebs-snapshot")):
        outputs = scenario.module_outputs(run, module)
        policy_name = str(outputs.get("policy_name") or run.outputs.get(f"{module}_policy_name"))
        worker = lz.assume(aws, str(outputs["worker_role_arn"]), "security-gate-worker")
        role_arn = str(run.outputs["workload_role_arns"]["workload_a"][key])
        session = lz.assume(aws, role_arn, f"ops-automation-{policy_name}", worker, ExternalId=external_id)
        ec2 = lz.client(aws, "ec2", session)
        owned = {MANAGED_BY: MANAGED_BY_VALUE, POLICY_TAG: policy_name}
        role_name = role_arn.rsplit("/", 1)[-1]
        deployed = [
            iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        ]
        cases.extend(_ec2_pairs(f"{key} role in workload A", admin, ec2, owned, selection_tags(deployed)))
    return cases


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


# Image names are unique per account and region: one sequence for every pair of every role.
IMAGE_NAMES = itertools.count()


def _ec2_pairs(
    role: str, admin: Any, ec2: Any, owned: Mapping[str, str], selection: Mapping[str, str]
) -> list[EmulatorCase]:
    """Each call as a pair: on a resource with the ownership tags / creating with them in TagSpecifications, and the
    same without them. Sources (volume, instance) carry the selection tags the role asks for (`selection_tags`) in both:
    the ownership tags are the only difference. Each snapshot comes from a volume of its own (EC2 limits snapshots
    per volume and time: fidelity patch SnapshotCreationPerVolumeRateExceeded)."""
    zone = f"{admin.meta.region_name}a"

    def spec(kind: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": _tags(tags)}] if tags else []

    def volume() -> str:
        return str(
            admin.create_volume(AvailabilityZone=zone, Size=8, TagSpecifications=spec("volume", selection))["VolumeId"]
        )

    instance = admin.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=spec("instance", selection),
    )["Instances"][0]["InstanceId"]

    def snapshot(tags: Mapping[str, str]) -> str:
        return str(admin.create_snapshot(VolumeId=volume(), TagSpecifications=spec("snapshot", tags))["SnapshotId"])

    def image(tags: Mapping[str, str]) -> str:
        name = f"security-gate-{next(IMAGE_NAMES)}"
        return str(admin.create_image(InstanceId=instance, Name=name, TagSpecifications=spec("image", tags))["ImageId"])

    def create_snapshot(tags: Mapping[str, str]) -> None:
        ec2.create_snapshot(VolumeId=volume(), TagSpecifications=spec("snapshot", tags))

    def create_image(tags: Mapping[str, str]) -> None:
        # As the worker asks (ami_backup/decisions.py): the image and the snapshots EC2 makes for it, both tagged.
        specs = spec("image", tags) + spec("snapshot", tags)
        ec2.create_image(InstanceId=instance, Name=f"security-gate-{next(IMAGE_NAMES)}", TagSpecifications=specs)

    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "DeleteSnapshot": (
            lambda: ec2.delete_snapshot(SnapshotId=snapshot(owned)),
            lambda: ec2.delete_snapshot(SnapshotId=snapshot({})),
        ),
        "DeregisterImage": (
            lambda: ec2.deregister_image(ImageId=image(owned)),
            lambda: ec2.deregister_image(ImageId=image({})),
        ),
        "CreateTags (ownership tags on an existing snapshot)": (
            lambda: ec2.create_tags(Resources=[snapshot(owned)], Tags=_tags(owned)),
            lambda: ec2.create_tags(Resources=[snapshot({})], Tags=_tags(owned)),
        ),
        "CreateSnapshot": (lambda: create_snapshot(owned), lambda: create_snapshot({})),
        "CreateImage": (lambda: create_image(owned), lambda: create_image({})),
    }
    return [
        EmulatorCase(role, call, _outcome(with_tags), _outcome(without_tags))
        for call, (with_tags, without_tags) in pairs.items()
    ]


def emulator_findings(cases: Iterable[EmulatorCase], allowed_calls: Mapping[str, set[str]]) -> list[Finding]:
    """A pair fails when the call without the tags went through; a call the role may make at all (its policy allows
    the action) must also go through with the tags, else the pair proves nothing."""
    findings = []
    for case in cases:
        action = "ec2:" + case.call.split(" ")[0]
        allowed = action in allowed_calls.get(case.role, set())
        if case.without_tags == "allowed" or (allowed and case.with_tags != "allowed"):
            findings.append(
                Finding(
                    "ownership (emulator I2)",
                    case.role,
                    f"{case.call}: with {case.with_tags}, without {case.without_tags}",
                )
            )
    return findings


# ---------------------------------------------------------------------------------------------------------------
# The gate
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRow:
    check: str
    items: str
    findings: int
    note: str = ""

    @property
    def result(self) -> str:
        return "PASS" if self.findings == 0 else "FAIL"


def table(rows: Sequence[CheckRow]) -> list[str]:
    lines = ["| check | items checked | findings | result |", "|---|---|---|---|"]
    lines += [f"| {row.check} | {row.items} | {row.findings} | {row.result} |" for row in rows]
    return lines


def all_examples() -> list[Path]:
    return sorted(p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "examples").iterdir() if any(p.glob("*.tf")))


def _lint_rows(policies: Sequence[RenderedPolicy], unknown: Sequence[str]) -> tuple[list[CheckRow], list[Finding]]:
    linted = [finding for policy in policies for finding in parliament_findings(policy)]
    linted += [Finding("parliament", address, "policy unknown after apply") for address in unknown]
    star = [finding for policy in policies for finding in star_findings(policy)]
    empty = sum(1 for p in policies if not statements(p.document))
    identity = [p for p in policies if p.kind == IDENTITY and statements(p.document)]
    mutating_statements = sum(
        1
        for policy in identity
        for statement in statements(policy.document)
        if statement.get("Effect") == "Allow" and any(is_mutating(a) for a in _allowed_actions(statement))
    )
    resource_count = len(policies) - empty - len(identity)
    # A check that found nothing to check must not read as passed.
    if len(policies) - empty == 0:
        linted.append(Finding("parliament", "examples", "no IAM policy was rendered: nothing was linted"))
    if mutating_statements == 0:
        star.append(Finding("no mutating action on *", "examples", "no Allow statement with a mutating action found"))
    rows = [
        CheckRow(
            "parliament (MEDIUM+, unknown actions)",
            f"{len(policies) - empty} policies ({len(identity)} identity, {resource_count} resource; "
            f"{len({_canonical(p.document) for p in policies})} distinct documents; {empty} empty)",
            len(linted),
        ),
        CheckRow(
            "no mutating action on `*`", f"{mutating_statements} Allow statements with mutating actions", len(star)
        ),
    ]
    return rows, linted + star


def run_gate(checkov: str | None, apply: bool, keep_plans: Path | None = None) -> int:
    started = time.monotonic()
    rows: list[CheckRow] = []
    findings: list[Finding] = []
    process = start_checkov(checkov) if checkov else None
    rendered = Rendered()
    if apply:
        with tempfile.TemporaryDirectory(prefix="security-gate-") as workdir:
            rendered = render_examples(all_examples(), Path(workdir), keep_plans)
    if process is not None:
        result = finish_checkov(process)
        tf_files = sorted((REPO_ROOT / "modules").rglob("*.tf")) + sorted((REPO_ROOT / "examples").rglob("*.tf"))
        unreasoned = skips_without_reason(tf_files)
        checkov_findings = [Finding("checkov", "modules, examples", failure) for failure in result.failures]
        if result.exit_code != 0 and not result.failures:
            checkov_findings.append(Finding("checkov", "checkov", f"exit status {result.exit_code}"))
        if result.passed + result.failed == 0:
            checkov_findings.append(Finding("checkov", "modules, examples", "checkov checked nothing"))
        findings += checkov_findings + unreasoned
        rows.append(
            CheckRow(
                "checkov (modules + examples)",
                f"{result.passed} passed, {result.skipped} skipped inline with reasons (modules/ and examples/, "
                "which scan the modules they call again)",
                result.failed
                + len(unreasoned)
                + (1 if result.exit_code and not result.failed else 0)
                + (1 if result.passed + result.failed == 0 else 0),
            )
        )
    lint_rows, lint_findings = _lint_rows(rendered.policies, rendered.unknown)
    if apply:
        rows += lint_rows
        findings += lint_findings
        cases = [case for role, documents in rendered.spoke_roles.items() for case in ownership_cases(role, documents)]
        owned = ownership_findings(cases)
        errors = [Finding("ownership (evaluator)", "-", "no spoke role found")] if not rendered.spoke_roles else []
        findings += owned + errors
        rows.append(
            CheckRow(
                "ownership tags (evaluator)",
                f"{len(rendered.spoke_roles)} spoke roles, {len(cases)} (Allow statement, mutating action) pairs "
                "x with/without tags",
                len(owned) + len(errors),
            )
        )
        allowed = {
            f"{key} role in workload A": {
                case.action
                for case in cases
                if case.role.endswith(f'this["{key}"]') and case.with_tags == "allow" and case.create_action is None
            }
            for key in ("ami-backup", "ebs-snapshot")
        }
        emulated = emulator_findings(rendered.emulator, allowed)
        granted = sum(1 for case in rendered.emulator if case.with_tags == "allowed")
        missing = [Finding("ownership (emulator I2)", "-", "no case ran")] if not rendered.emulator else []
        findings += emulated + missing
        rows.append(
            CheckRow(
                "ownership tags (emulator, I2)",
                f"{len(rendered.emulator)} EC2 calls x with/without tags ({granted} the roles may make: allowed "
                f"with, refused without; {len(rendered.emulator) - granted} refused both ways)",
                len(emulated) + len(missing),
            )
        )
    elapsed = time.monotonic() - started
    lines = table(rows)
    print("\n".join(lines))
    for finding in findings:
        print(f"FINDING [{finding.check}] {finding.where}: {finding.detail}")
    for case in rendered.emulator:
        print(f"  emulator: {case.role}: {case.call}: with the tags {case.with_tags}, without {case.without_tags}")
    timing = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in rendered.seconds.items())
    print(f"security gate: {len(findings)} finding(s) in {elapsed:.0f} s ({timing})")
    if checkov and apply:
        from bench.performance import write_block

        note = (
            f"{len(findings)} findings; the gate took {elapsed:.0f} s (applies and plans of every example on the "
            f"local AWS: {timing}; checkov alongside)."
        )
        write_block("security", "make security", [*lines, "", note])
    return 1 if findings else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", help="the checkov of the security virtualenv (omit to skip check 1)")
    parser.add_argument("--no-apply", action="store_true", help="checkov only (no terraform apply)")
    parser.add_argument("--keep-plans", type=Path, help="write each example's plan JSON into this folder")
    arguments = parser.parse_args(argv)
    return run_gate(arguments.checkov, apply=not arguments.no_apply, keep_plans=arguments.keep_plans)


if __name__ == "__main__":
    sys.exit(main())
