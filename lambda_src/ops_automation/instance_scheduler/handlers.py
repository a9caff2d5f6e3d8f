"""Scheduled start/stop of EC2 instances, verified (Auto Scaling groups and RDS: `groups.py`, `rds.py`).

schedule (start or stop, in the schedule's time zone) → `plan_handler` skips excluded dates, lists the targets and
enqueues batches of the instances to act on → `work_handler` re-reads them, claims (instance, action, slot) once,
calls StartInstances/StopInstances per batch (split around the ids that refuse a whole request) and records each
instance as pending with a delayed check at the deadline → the `EC2 Instance State-change Notification` event (a
trigger to re-read: it carries no reason), or the check, verifies the state: one alert per instance that did not
get there, with its state reason.

Over target accounts / OUs (`scope.fans_out`) the planner enqueues one scope item per account x region
(`core.planner.fan_out`) after the excluded-date check, and the worker plans each (`plan_scope_item`): the same
per-target bodies as the classic loop (`plan_target` and each adapter's), acts paced per scope. State events then come
from any account of the organization; only a resource the ledger holds for this policy is read at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar, Literal

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from ..core.claims import Claim, claim, record_made, release, take_over
from ..core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
from ..core.completion import Observation
from ..core.config import CommonConfig
from ..core.errors import MalformedEventError, PartialFailure, error_code, scope_failure
from ..core.events import (
    CheckMessage,
    ScopeMessage,
    WorkMessage,
    format_time,
    parse_schedule_event,
    parse_time,
    text,
    text_list,
)
from ..core.fanout import BatchSender
from ..core.ledger import LedgerEntry
from ..core.observability import logger, metrics
from ..core.planner import ScopeAlerts, fan_out, plan_scope, scope_failed
from ..core.runtime import Lazy, build_runtime
from ..core.scope import Target, event_target, targets_of
from ..core.tagging import carries_all
from ..core.targeting import Instance, resolve_instances, stream_instances
from ..core.worker import consume_work
from . import groups, rds
from .decisions import (
    ACTIONS,
    INSTANCE_REFUSALS,
    UNDER_WAY,
    Action,
    CallResult,
    InstanceSchedulerConfig,
    call_in_batches,
    excluded,
    scheduling_decision,
    verification,
)
from .outcomes import (
    IN_DESIRED_STATE,
    ScheduledAct,
    SchedulerRuntime,
    Sink,
    act_fields,
    act_of,
    action_of_entry,
    expect,
    fail_once,
    report_once,
    send_back,
    superseded,
    verify,
)

SERVICE = "instance-scheduler"
STATE_CHANGE = "EC2 Instance State-change Notification"
# Ids per StartInstances/StopInstances call: AWS documents no maximum; AWS's own scheduler uses batches too.
BATCH_SIZE = 50
# Start/StopInstances draw on a per-account bucket that refills at about 2 instances a second (third-party figure,
# AWS publishes none): one batch of 50 every 10 seconds keeps a large slot from starving the account's other tools.
BATCHES_PER_SECOND = 0.1
# Every instance state the scheduler reads (terminated ones are reported once, never acted on).
ALL_STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
# A fanned-out slot's failures in the scheduler's words, counted as resources not brought to their state.
SCOPE_ALERTS = ScopeAlerts("account cannot be scheduled", "schedule not planned", IN_DESIRED_STATE.failed_metric)


def _build(max_attempts: int) -> SchedulerRuntime:
    return build_runtime(
        SERVICE, InstanceSchedulerConfig.from_env(), CommonConfig.from_env(), max_attempts=max_attempts
    )


planner_runtime: Lazy[SchedulerRuntime] = Lazy(partial(_build, PLANNER_ATTEMPTS))
worker_runtime: Lazy[SchedulerRuntime] = Lazy(partial(_build, WORKER_ATTEMPTS))


@dataclass(frozen=True)
class ActMessage(ScheduledAct):
    """Start or stop a batch of instances of one target for one slot."""

    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()
    IDS_FIELD: ClassVar[str] = "instance_ids"

    instance_ids: tuple[str, ...]
    kind: Literal["act"] = "act"


@dataclass(frozen=True)
class InstanceStateChange:
    instance_id: str
    state: str
    region: str
    account: str
    # When EC2 saw the change: a failure it reveals counts only if it happened after our act.
    time: datetime


ScopeWork = Callable[[Any, Target], Iterator[ScheduledAct]]


def decode_act(payload: Mapping[str, Any]) -> ActMessage:
    return ActMessage(**act_fields(payload), instance_ids=text_list(payload, "instance_ids", prefix="i-"))


def decode_state_change(event: Mapping[str, Any]) -> InstanceStateChange:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("instance state-change event has no detail object")
    return InstanceStateChange(
        instance_id=text(detail, "instance-id", where="detail"),
        state=text(detail, "state", where="detail"),
        region=text(event, "region"),
        account=text(event, "account"),
        time=parse_time(event.get("time"), "time"),
    )


# Auto Scaling groups (capacity mode) and RDS: each adapter plans its resources, decodes its messages and events,
# and handles those and the delayed checks of its ledger ids.
ADAPTERS = (groups, rds)
DECODERS = {"act": decode_act, STATE_CHANGE: decode_state_change}
for _adapter in ADAPTERS:
    DECODERS.update(_adapter.DECODERS)


def action_of(event: Mapping[str, Any]) -> Action:
    """The action the schedule's input names (one schedule per action)."""
    action = event.get("action") if isinstance(event, Mapping) else None
    if action not in ACTIONS:
        raise MalformedEventError(f"schedule input must name action start or stop, got {action!r}")
    return action


# ---------------------------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = planner_runtime()
    action = action_of(event)
    scheduled = parse_schedule_event(event).scheduled_time
    slot = format_time(scheduled)
    logger.append_keys(policy=rt.policy, action=action, slot=slot)
    if excluded(scheduled, rt.config.timezone, rt.config.excluded_dates):
        logger.info("excluded date: nothing done", extra={"timezone": rt.config.timezone})
        return {"slot": slot, "action": action, "outcome": "excluded_date"}
    # A repeated delivery of the schedule (Lambda "may receive the same event multiple times") plans again: the
    # planners have no ledger access, and the worker's claims make it one action per instance and slot.
    if rt.config.scope.fans_out:
        # Target accounts / OUs: one scope item per account x region, each listed by a worker (`plan_scope_item`),
        # so this run does not grow with the organization. The excluded dates were applied above, once.
        return {**fan_out(rt, slot, action, alerts=SCOPE_ALERTS), "action": action}
    targets = rt.config.targets
    sender: BatchSender[WorkMessage] = BatchSender(
        rt.clients.client("sqs"), rt.common.work_queue_url, pace_per_second=BATCHES_PER_SECOND
    )
    summary: dict[str, Any] = {"slot": slot, "action": action, "skipped": [], "reported": [], "already": 0}
    failures: list[str] = []
    unmatched = set(targets.instance_ids)
    for target in targets_of(rt.config.scope, rt.clients.default_region):
        try:
            unmatched &= plan_target(rt, action, slot, target, sender, summary)
        except ClientError as error:
            logger.exception("targets not listed", extra={"target": target.describe()})
            failures.append(f"{target.describe()}: {error_code(error)}")
    for adapter in ADAPTERS:
        if adapter.enabled(rt):
            failures.extend(adapter.plan(rt, action, slot, sender, summary))
    sender.flush()
    failures.extend(f"{type(m).__name__} for {getattr(m, 'region', '?')}: not enqueued" for m in sender.unsent)
    default = Target(rt.clients.default_region, None)
    for instance_id in sorted(unmatched):
        report_once(rt, default, instance_id, "not found (unknown, or terminated long ago)")
    reported = summary["reported"]
    if failures:
        rt.alerts.send(f"{action} not planned for some targets", {"slot": slot, "failures": failures})
        raise PartialFailure(failures)
    return {**summary, "reported": reported, "enqueued": sender.sent}


class Collected(list[ScheduledAct]):
    """A Sink that keeps the messages (a scope worker hands them to the core's paced sender)."""

    def add(self, message: ScheduledAct) -> None:
        self.append(message)


def scope_work(rt: SchedulerRuntime, message: ScopeMessage, summary: dict[str, Any]) -> ScopeWork:
    """The scope worker's `work_of(ec2, target)`: the act messages of one account x region for the scope item's
    slot and action, EC2 instances and then each enabled adapter's resources (the classic planner's per-target
    bodies). The EC2 listing failing fails the scope (the core alerts a permanent error once, SQS retries a
    transient one). An adapter's listing failing for good (an SCP denying rds: or autoscaling:, common in per-OU
    service allow-lists) skips that adapter for this scope, alerted once under its own marker: the EC2 acts are
    still enqueued. Each adapter's resources are listed whole before they are handed over."""
    action = action_of({"action": message.action})

    def work_of(_ec2: Any, target: Target) -> Iterator[ScheduledAct]:
        collected = Collected()
        plan_target(rt, action, message.slot, target, collected, summary)
        for adapter in ADAPTERS:
            if not adapter.enabled(rt):
                continue
            listed = Collected()
            try:
                adapter.plan_target(rt, action, message.slot, target, listed, summary)
            except ClientError as error:
                failure = scope_failure(error, message.role_arn)
                if failure is None or failure.whole_account:
                    raise
                scope_failed(
                    rt,
                    message,
                    failure,
                    ttl_days=rt.config.completion.ledger_ttl_days,
                    alerts=SCOPE_ALERTS,
                    part=adapter.__name__.rsplit(".", 1)[-1],
                )
                summary.setdefault("adapters_failed", []).append(failure.describe())
                continue
            collected.extend(listed)
        yield from collected

    return work_of


def plan_scope_item(rt: SchedulerRuntime, message: ScopeMessage) -> dict[str, Any]:
    """A fanned-out slot's scope item: plan that one account x region like the classic planner plans each target,
    its acts paced on their own, so the accounts proceed in parallel ("Amazon EC2 throttles EC2 API requests for
    each AWS account on a per-Region basis", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
    """
    summary: dict[str, Any] = {"skipped": [], "reported": [], "already": 0}
    outcome = plan_scope(
        rt,
        message,
        scope_work(rt, message, summary),
        ttl_days=rt.config.completion.ledger_ttl_days,
        pace_per_second=BATCHES_PER_SECOND,
        alerts=SCOPE_ALERTS,
    )
    return {**outcome, "action": message.action, **summary}


def plan_target(
    rt: SchedulerRuntime, action: Action, slot: str, target: Target, sender: Sink, summary: dict[str, Any]
) -> set[str]:
    """The EC2 instances of one target (region and account): their act batches onto `sender`, the others counted in
    `summary`; returns the explicit ids not found there. A listing error is raised (the caller says whose)."""
    targets = rt.config.targets
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    stream = stream_instances(ec2, targets.instance_ids, targets.tag_map, ALL_STATES)
    for page in stream.pages():
        to_act = _decide(rt, action, page, summary)
        for start in range(0, len(to_act), BATCH_SIZE):
            batch = tuple(to_act[start : start + BATCH_SIZE])
            sender.add(ActMessage(**act_of(rt, action, slot, target), instance_ids=batch))
    return set(stream.missing)


def _decide(rt: SchedulerRuntime, action: Action, page: Sequence[Instance], summary: dict[str, Any]) -> list[str]:
    to_act: list[str] = []
    for instance in page:
        decision = scheduling_decision(instance, action, rt.config.opt_out_tag_key, rt.config.asg_mode)
        if decision.verdict in ("act", "wait"):
            to_act.append(instance.instance_id)  # a `wait` is re-read, and waited for, by the worker
        elif decision.verdict == "already":
            summary["already"] += 1
        elif decision.verdict == "skip":
            summary["skipped"].append(f"{instance.instance_id}: {decision.reason}")
        else:
            # Shutting down or terminated: it left the fleet (tag-targeted ones are listed for up to an hour).
            logger.info("instance left the fleet", extra={"instance_id": instance.instance_id, "why": decision.reason})
            summary["reported"].append(f"{instance.instance_id}: {decision.reason}")
    return to_act


# ---------------------------------------------------------------------------------------------------------------
# Worker
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def work_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = worker_runtime()
    own_account = context.invoked_function_arn.split(":")[4]
    return consume_work(rt, event, context, DECODERS, partial(handle_item, rt, own_account))


def handle_item(rt: SchedulerRuntime, own_account: str, item: Any) -> dict[str, Any]:
    policy = getattr(item, "policy", rt.policy)  # messages name their policy; events do not
    if policy != rt.policy:
        raise MalformedEventError(f"message for policy {policy!r} reached policy {rt.policy!r}")
    if isinstance(item, ScopeMessage):
        return plan_scope_item(rt, item)
    for adapter in ADAPTERS:
        if adapter.handles(item):
            return adapter.handle(rt, own_account, item)
    if isinstance(item, ActMessage):
        return act(rt, item)
    if isinstance(item, CheckMessage):
        return verify_instance(rt, Target(item.region, item.role_arn), item.resource_id, item)
    if isinstance(item, InstanceStateChange):
        target = event_target(rt.config.scope, item.region, item.account, own_account, rt.clients.default_region)
        if target is None:
            return {"instance_id": item.instance_id, "outcome": "ignored"}
        return verify_instance(rt, target, item.instance_id, None, item.time)
    raise MalformedEventError(f"no handler for {type(item).__name__}")


def act(rt: SchedulerRuntime, message: ActMessage) -> dict[str, Any]:
    """One action per (instance, action, slot), whatever the deliveries; the states are read again first (the
    planner's listing may be minutes old)."""
    target = Target(message.region, message.role_arn)
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    ttl = rt.config.completion.ledger_ttl_days
    request = f"{message.action}@{message.slot}"
    current = {i.instance_id: i for i in resolve_instances(ec2, message.instance_ids, {}, ALL_STATES).instances}
    to_act: list[str] = []
    held_by_id: dict[str, Claim] = {}
    waiting: list[str] = []
    result: dict[str, Any] = {
        "action": message.action,
        "slot": message.slot,
        "already": [],
        "reported": [],
        "superseded": [],
        "left": [],
    }
    for instance_id in message.instance_ids:
        instance = current.get(instance_id)
        if instance is None:
            report_once(rt, target, instance_id, "not found (unknown, or terminated long ago)")
            result["reported"].append(instance_id)
            continue
        if superseded(rt, target, instance_id, message.slot):
            result["superseded"].append(instance_id)
            continue
        if not _still_targeted(rt, instance):
            result["left"].append(instance_id)
            continue
        decision = scheduling_decision(instance, message.action, rt.config.opt_out_tag_key, rt.config.asg_mode)
        if decision.verdict == "wait":
            waiting.append(instance_id)
        elif decision.verdict == "already":
            result["already"].append(instance_id)
            if instance.state == UNDER_WAY[message.action]:
                # On its way already (another caller, or a delivery that died after its call): verified like ours.
                expect(rt, target, instance_id, message.action, message.slot)
        elif decision.verdict == "act":
            held = claim(rt, target, instance_id, request, ttl)
            if held.status == "stale" and not take_over(rt, held, ttl):
                waiting.append(instance_id)  # another delivery took it over first
            elif held.status in ("new", "stale"):
                held_by_id[instance_id] = held
                to_act.append(instance_id)
            elif held.status == "in_flight":
                waiting.append(instance_id)  # another delivery is acting on it now, or died doing so
            else:
                result["already"].append(instance_id)
        else:
            report_once(rt, target, instance_id, decision.reason)
            result["reported"].append(instance_id)
    calls: list[CallResult] = []
    for (_spot, hibernate), ids in _call_groups(rt, message.action, [current[i] for i in to_act]).items():
        calls += call_in_batches(ids, partial(_call, ec2, message.action, hibernate), BATCH_SIZE)
    done = [c.instance_id for c in calls if c.outcome == "done"]
    for call in calls:
        held = held_by_id[call.instance_id]
        if call.outcome == "done":
            record_made(rt, held, [call.detail], ttl)
            expect(rt, target, call.instance_id, message.action, message.slot)
            continue
        release(rt, held, call.detail, ttl)
        if call.outcome in ("retry", "throttled"):
            waiting.append(call.instance_id)
        elif call.code in INSTANCE_REFUSALS:
            report_once(rt, target, call.instance_id, f"{message.action} refused: {call.detail}")
            result["reported"].append(call.instance_id)
        else:
            fail_once(rt, target, call.instance_id, message.action, message.slot, f"refused: {call.detail}")
            result["reported"].append(call.instance_id)
    send_back(rt, target, message, waiting, waiting)
    return {**result, "acted": done, "waiting": waiting}


def _call_groups(rt: SchedulerRuntime, action: Action, instances: list[Instance]) -> dict[tuple[bool, bool], list[str]]:
    """The ids to call together: Spot Instances apart (a one-time one refuses the whole request it is in), and at a
    stop with hibernation on, the instances enabled for it apart from the others (Hibernate=true refuses the
    whole request for one that is not)."""
    groups: dict[tuple[bool, bool], list[str]] = {}
    for instance in instances:
        hibernate = action == "stop" and rt.config.hibernate and instance.hibernation_configured
        groups.setdefault((instance.lifecycle == "spot", hibernate), []).append(instance.instance_id)
    return groups


def _call(ec2: Any, action: Action, hibernate: bool, ids: list[str]) -> dict[str, str]:
    if action == "start":
        response = ec2.start_instances(InstanceIds=ids)
        changes = response.get("StartingInstances", [])
    elif hibernate:
        try:
            response = ec2.stop_instances(InstanceIds=ids, Hibernate=True)
        except ClientError as error:
            if len(ids) > 1 or error_code(error) != "UnsupportedHibernationConfiguration":
                raise  # a batch is split first, so only the instance that cannot hibernate is stopped plainly
            # Its hibernation prerequisites are not met any more: a plain stop, as AWS's own scheduler does.
            logger.warning("hibernation not supported: plain stop", extra={"instance_ids": ids})
            response = ec2.stop_instances(InstanceIds=ids)
        changes = response.get("StoppingInstances", [])
    else:
        changes = ec2.stop_instances(InstanceIds=ids).get("StoppingInstances", [])
    return {str(c["InstanceId"]): str(c.get("CurrentState", {}).get("Name", "")) for c in changes}


def _still_targeted(rt: SchedulerRuntime, instance: Instance) -> bool:
    """Listed by id, or still carrying every target tag (an instance untagged since the plan left the schedule)."""
    targets = rt.config.targets
    if instance.instance_id in targets.instance_ids:
        return True
    return carries_all(instance.tags, targets.tags)


def verify_instance(
    rt: SchedulerRuntime,
    target: Target,
    instance_id: str,
    check: CheckMessage | None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """Verify the instance's newest action of this policy. The ledger is read first and EC2 only for an instance
    the ledger has an item of: with Organizations targeting any account's state event reaches here (and any
    account's instances change state all day), and one this policy never acted on touches nothing, not even an
    AssumeRole into its account."""
    ec2 = partial(rt.clients.client, "ec2", target.region, target.role_arn)
    return verify(rt, target, instance_id, check, partial(_observe, ec2, instance_id, event_time))


def _observe(
    ec2: Callable[[], Any], instance_id: str, event_time: datetime | None, entry: LedgerEntry, at_deadline: bool
) -> Observation:
    """The instance now. Before the deadline only a definite outcome counts: the desired state, or a start that fell
    back to `stopped` with a launch error told by an event newer than the act (right after StartInstances a read
    may still show the previous start's `stopped` and reason: EC2 is eventually consistent); anything else (a stale
    event, a state on its way) waits for the check."""
    action = action_of_entry(entry)
    found = resolve_instances(ec2(), [instance_id], {}, ALL_STATES).instances
    if not found:
        return Observation(state=None, reason=f"{instance_id} no longer exists")
    instance = found[0]
    verified = verification(action, instance.state, instance.state_reason)
    if verified.state == "ok":
        return Observation(state="available")
    fresh = event_time is not None and event_time >= parse_time(entry.updated_at, "updated_at")
    definite = (fresh and "kms:CreateGrant" in verified.reason) or instance.state in ("shutting-down", "terminated")
    if verified.state == "failed" and (at_deadline or definite):
        return Observation(state="failed", reason=verified.reason)
    return Observation(state="pending", reason=verified.reason)
