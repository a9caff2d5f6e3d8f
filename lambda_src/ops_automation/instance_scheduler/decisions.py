"""What is particular to scheduled start/stop, as pure functions: settings, what to do with each instance, whether
a slot falls on an excluded date, how a batch refused as a whole is split, and what a verified state means.

Facts and sources: the module README (modules/instance-scheduler/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import ClientError

from ..core import config
from ..core.config import CompletionConfig, InstanceTargetConfig, ScopeConfig
from ..core.errors import THROTTLING_ERRORS, ConfigError, error_code
from ..core.tagging import carries_key
from ..core.targeting import Instance

Action = Literal["start", "stop"]
ACTIONS: tuple[Action, ...] = ("start", "stop")
AsgMode = Literal["skip", "capacity"]
ASG_MODES: tuple[AsgMode, ...] = ("skip", "capacity")
Verdict = Literal["act", "already", "wait", "skip", "report"]
# EC2 tags every member of an Auto Scaling group with its group's name (aws: keys cannot be set by callers).
ASG_TAG = "aws:autoscaling:groupName"
DESIRED: Mapping[Action, str] = {"start": "running", "stop": "stopped"}
# On its way to the desired state already: left alone, verified like the others.
UNDER_WAY: Mapping[Action, str] = {"start": "pending", "stop": "stopping"}
# On its way to the other state: the action must wait until it gets there.
OPPOSITE_UNDER_WAY: Mapping[Action, str] = {"start": "stopping", "stop": "pending"}
GONE_STATES = frozenset({"shutting-down", "terminated"})
# A start that falls back to `stopped` with this reason: an encrypted volume's KMS key the caller may not use
# ("Client.InternalError: Client error on launch"; the role calling StartInstances needs kms:CreateGrant).
LAUNCH_ERROR = "Client.InternalError"
# The StateReason of a Spot Instance that EC2 stopped for price or capacity.
SPOT_INTERRUPTED = "Server.SpotInstanceShutdown"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class InstanceSchedulerConfig:
    """Settings of the instance-scheduler planners and worker (all get the same set). The verification deadline is
    the completion group's timeout, counted from the slot."""

    scope: ScopeConfig
    targets: InstanceTargetConfig
    completion: CompletionConfig
    timezone: str
    excluded_dates: frozenset[date]
    opt_out_tag_key: str | None
    asg_mode: AsgMode
    hibernate: bool
    # RDS DB instances and Aurora clusters carrying the target tags are scheduled too.
    rds: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InstanceSchedulerConfig:
        env = config.environ_of(environ)
        timezone = env.get("OPS_SCHEDULE_TIMEZONE", "")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ConfigError("OPS_SCHEDULE_TIMEZONE", timezone, "is not an IANA time zone") from error
        raw_dates = config.json_value(env, "OPS_EXCLUDED_DATES")
        if not isinstance(raw_dates, list) or not all(isinstance(d, str) and _DATE.match(d) for d in raw_dates):
            raise ConfigError("OPS_EXCLUDED_DATES", env.get("OPS_EXCLUDED_DATES"), "must be a JSON list of YYYY-MM-DD")
        try:
            dates = frozenset(date.fromisoformat(d) for d in raw_dates)
        except ValueError as error:
            raise ConfigError("OPS_EXCLUDED_DATES", env.get("OPS_EXCLUDED_DATES"), str(error)) from error
        asg_mode = env.get("OPS_ASG_MODE", "")
        if asg_mode not in ASG_MODES:
            raise ConfigError("OPS_ASG_MODE", asg_mode, "must be skip or capacity")
        opt_out = env.get("OPS_OPT_OUT_TAG_KEY", "").strip() or None
        targets = InstanceTargetConfig.from_env(env)
        rds = config.boolean(env, "OPS_SCHEDULE_RDS")
        # Groups and databases are found by their tags only: without target tags nothing would ever match.
        if asg_mode == "capacity" and not targets.tags:
            raise ConfigError("OPS_ASG_MODE", asg_mode, "needs target tags (OPS_TARGET_TAGS) to find the groups")
        if rds and not targets.tags:
            raise ConfigError("OPS_SCHEDULE_RDS", "true", "needs target tags (OPS_TARGET_TAGS) to find the databases")
        scope = ScopeConfig.from_env(env)
        # Instance ids name one account's instances: target accounts and OUs are targeted by tags.
        config.explicit_ids_in_one_account(env, scope, "OPS_INSTANCE_IDS", targets.instance_ids)
        return cls(
            scope=scope,
            targets=targets,
            completion=CompletionConfig.from_env(env),
            timezone=timezone,
            excluded_dates=dates,
            opt_out_tag_key=opt_out,
            asg_mode=asg_mode,
            hibernate=config.boolean(env, "OPS_HIBERNATE"),
            rds=rds,
        )


def excluded(scheduled_time: datetime, timezone: str, dates: frozenset[date]) -> bool:
    """Whether the slot falls on an excluded date, as a calendar date in the schedule's time zone (a 00:30 Tokyo
    slot is the previous day in UTC)."""
    return scheduled_time.astimezone(ZoneInfo(timezone)).date() in dates


@dataclass(frozen=True)
class Decision:
    instance_id: str
    verdict: Verdict
    reason: str = ""


def _reason_code(instance: Instance) -> str:
    return (instance.state_reason or {}).get("Code", "")


def scheduling_decision(instance: Instance, action: Action, opt_out_tag_key: str | None, asg_mode: AsgMode) -> Decision:
    """What to do with one instance for one action, from its DescribeInstances state and tags alone."""
    decide = lambda verdict, reason="": Decision(instance.instance_id, verdict, reason)  # noqa: E731
    if instance.state in GONE_STATES:
        return decide("report", f"{instance.state}: nothing to {action}")
    if carries_key(instance.tags, opt_out_tag_key):
        return decide("skip", f"carries the opt-out tag {opt_out_tag_key}")
    group = instance.tags.get(ASG_TAG)
    if group is not None:
        # Stopping a member makes its group replace it; with the capacity option the group itself is scheduled.
        why = "scheduled through its group" if asg_mode == "capacity" else "stopping it makes the group replace it"
        return decide("skip", f"member of Auto Scaling group {group}: {why}")
    if instance.state in (DESIRED[action], UNDER_WAY[action]):
        return decide("already", instance.state)
    if action == "stop" and instance.root_device_type == "instance-store":
        # "You can't stop or hibernate instance store-backed instances" (StopInstances).
        return decide("report", "instance-store root device: cannot be stopped")
    if action == "start" and instance.lifecycle == "spot" and _reason_code(instance) == SPOT_INTERRUPTED:
        # "Only Amazon EC2 can restart an interrupted stopped Spot Instance" (Spot interruption behavior).
        return decide("skip", "Spot Instance stopped by a Spot interruption: only EC2 restarts it")
    if instance.state == OPPOSITE_UNDER_WAY[action]:
        return decide("wait", f"{instance.state}: {action} once it settles")
    return decide("act")


Outcome = Literal["done", "refused", "retry", "throttled"]


@dataclass(frozen=True)
class CallResult:
    """What one Start/StopInstances call did to an instance: its state right after (`done`), or why it was
    refused for good (`refused`) or for now (`retry`)."""

    instance_id: str
    outcome: Outcome
    detail: str
    code: str = ""


# Refusals of one instance that retrying cannot change (reported once); the others pass (retried).
PERMANENT_CALL_ERRORS = frozenset(
    {
        "InvalidInstanceID.NotFound",
        "InvalidInstanceID.Malformed",
        "IncorrectSpotRequestState",
        "UnsupportedOperation",
        "UnsupportedHibernationConfiguration",
        "OperationNotPermitted",
        "UnauthorizedOperation",
    }
)


# Refusals that are a property of the instance itself (a one-time Spot Instance cannot be stopped, only EC2 restarts
# an interrupted one, the id does not exist): reported once per instance, not alerted again every slot.
INSTANCE_REFUSALS = frozenset(
    {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "IncorrectSpotRequestState", "UnsupportedOperation"}
)


# Errors of the service itself, not of any id: the whole batch is tried again later, not split. Everything else is
# split, because one id can cause it for all: a refused id, and also a capacity shortage or quota of one instance
# type (InsufficientInstanceCapacity, VcpuLimitExceeded) in a batch of many types - "Error codes for the Amazon EC2
# API", https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html ("Server errors ... caused by an AWS
# server-side issue").
SERVICE_ERRORS = frozenset({"InternalError", "InternalFailure", "Unavailable", "ServiceUnavailable"})


def call_in_batches(
    instance_ids: Sequence[str], call: Callable[[list[str]], Mapping[str, str]], batch_size: int
) -> list[CallResult]:
    """Call for batches of ids. One refused id refuses the whole request (EC2 gives no per-id errors), so a refused
    batch is split in halves until the ids that cause it stand alone and the others still act; only an error of
    the service itself is retried whole. Throttling is not
    split: after the first throttled call every id not called yet is `throttled`, for the caller to try later,
    and what was done before still counts."""
    results: list[CallResult] = []
    throttled: list[str] = []

    def attempt(ids: list[str]) -> None:
        if throttled:
            results.extend(CallResult(instance_id, "throttled", throttled[0]) for instance_id in ids)
            return
        try:
            states = call(ids)
        except ClientError as error:
            code = error_code(error)
            if code in THROTTLING_ERRORS:
                throttled.append(code)
                results.extend(CallResult(instance_id, "throttled", code) for instance_id in ids)
                return
            if len(ids) > 1 and code in SERVICE_ERRORS:
                results.extend(CallResult(instance_id, "retry", code) for instance_id in ids)
                return
            if len(ids) > 1:
                middle = len(ids) // 2
                attempt(ids[:middle])
                attempt(ids[middle:])
                return
            outcome: Outcome = "refused" if code in PERMANENT_CALL_ERRORS else "retry"
            message = str(error.response.get("Error", {}).get("Message", ""))
            results.append(CallResult(ids[0], outcome, f"{code}: {message}" if message else code, code))
            return
        results.extend(CallResult(instance_id, "done", states.get(instance_id, "")) for instance_id in ids)

    for start in range(0, len(instance_ids), batch_size):
        attempt(list(instance_ids[start : start + batch_size]))
    return results


VerifiedState = Literal["ok", "pending", "failed"]


@dataclass(frozen=True)
class Verification:
    state: VerifiedState
    reason: str = ""


def verification(action: Action, state: str, state_reason: Mapping[str, str] | None) -> Verification:
    """What the instance's state after the action means: reached, still on its way, or failed (with why)."""
    if state == DESIRED[action]:
        return Verification("ok")
    if state == UNDER_WAY[action]:
        return Verification("pending", state)
    reason = (state_reason or {}).get("Message") or (state_reason or {}).get("Code") or ""
    if action == "start" and state == "stopped" and (state_reason or {}).get("Code") == LAUNCH_ERROR:
        return Verification(
            "failed",
            f"fell back to stopped: {reason} (an encrypted volume's KMS key: the role calling StartInstances needs "
            "kms:CreateGrant on it)",
        )
    return Verification("failed", f"{state}{': ' + reason if reason else ''}")
