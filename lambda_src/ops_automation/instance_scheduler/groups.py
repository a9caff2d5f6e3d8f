"""Auto Scaling groups in capacity mode (OPS_ASG_MODE=capacity, groups carrying every target tag).

stop saves the group's min/desired/max in the tag `ops-automation:saved-capacity` FIRST, then sets 0/0/0; start
restores the saved values, THEN deletes the tag. A group is stopped when its desired capacity is 0, whatever its min
and max say (a scheduled action may set one size alone, predictive scaling may raise max). The group terminates its
members on stop and launches new ones on start (AWS Instance Scheduler's own model for groups): members are cattle,
never stopped, and their instance store and root volumes (unless the launch template keeps them) go with them.
Verified by the delayed check, with the group's launch/terminate events as triggers to re-read: stop when no
instance is left, start when the InService instances' capacity units (their WeightedCapacity, 1 without weights)
reach the desired capacity. Groups with a warm pool are reported, never acted on. Facts and sources: the module
README, "Auto Scaling groups".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal

from botocore.exceptions import ClientError

from ..core.claims import claim, record_made, release
from ..core.completion import Observation
from ..core.errors import THROTTLING_ERRORS, MalformedEventError, error_code
from ..core.events import CheckMessage, text
from ..core.ledger import LedgerEntry
from ..core.observability import logger
from ..core.scope import Target, event_target, targets_of
from ..core.tagging import carries_all, carries_key, tag_dict
from .decisions import Action
from .outcomes import (
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

SAVED_CAPACITY_TAG = "ops-automation:saved-capacity"
PREFIX = "group:"
KIND = "group-act"
LAUNCH_SUCCESSFUL = "EC2 Instance Launch Successful"
LAUNCH_UNSUCCESSFUL = "EC2 Instance Launch Unsuccessful"
TERMINATE_SUCCESSFUL = "EC2 Instance Terminate Successful"
# Names per DescribeAutoScalingGroups call and per message (MaxRecords is at most 100).
BATCH_SIZE = 50
# Pass by themselves: another update or scaling activity on the group, a throttle, a 5xx.
WAIT_ERRORS = THROTTLING_ERRORS | {"ScalingActivityInProgress", "ResourceContention", "InternalFailure"}
# UpdateAutoScalingGroup answers ValidationError with this text for a group that does not exist.
GONE_TEXT = "not found"
# CreateOrUpdateTags answers LimitExceeded when the group has its 50 tags already ("The maximum number of tags per
# resource is 50", EC2 Auto Scaling user guide, Tag Auto Scaling groups and instances).
TAG_LIMIT_REASON = f"{SAVED_CAPACITY_TAG} not written: the group has 50 tags, the most Auto Scaling allows; not stopped"
# Instance ids named in an alert, at most (a big group would make it unreadable).
NAMED_MEMBERS = 10
_CAPACITY = re.compile(r"^(\d+)/(\d+)/(\d+)$")

Verdict = Literal["act", "already", "skip", "report"]


@dataclass(frozen=True)
class GroupActMessage(ScheduledAct):
    """Stop or start a batch of Auto Scaling groups of one target for one slot."""

    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()
    IDS_FIELD: ClassVar[str] = "group_names"

    group_names: tuple[str, ...]
    kind: Literal["group-act"] = "group-act"


@dataclass(frozen=True)
class GroupEvent:
    """An instance of the group was launched or terminated (or failed to launch): a trigger to re-read the group."""

    group_name: str
    region: str
    account: str


@dataclass(frozen=True)
class Capacity:
    min_size: int
    desired: int
    max_size: int

    def __str__(self) -> str:
        return f"{self.min_size}/{self.desired}/{self.max_size}"


@dataclass(frozen=True)
class Member:
    instance_id: str
    state: str
    # Capacity units it counts for: with weights or a vCPU/memory desired capacity type, sizes are units, not
    # instances ("The size of the Auto Scaling group is measured in capacity units", instance weighting guide).
    weight: int
    protected: bool


@dataclass(frozen=True)
class Group:
    name: str
    capacity: Capacity
    tags: Mapping[str, str]
    members: tuple[Member, ...]
    warm_pool: Mapping[str, Any] | None = None

    @property
    def in_service(self) -> tuple[Member, ...]:
        return tuple(member for member in self.members if member.state == "InService")


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    # start: the capacity to restore (None: the group already runs, only our stale tag is removed).
    restore: Capacity | None = None


def parse_capacity(value: str) -> Capacity | None:
    """`<min>/<desired>/<max>` with min <= desired <= max, or None (never guessed)."""
    match = _CAPACITY.match(value)
    if match is None:
        return None
    capacity = Capacity(*(int(part) for part in match.groups()))
    return capacity if capacity.min_size <= capacity.desired <= capacity.max_size else None


def group_decision(group: Group, action: Action, opt_out_tag_key: str | None) -> Decision:
    """What to do with one group for one action, from its DescribeAutoScalingGroups record alone."""
    if carries_key(group.tags, opt_out_tag_key):
        return Decision("skip", f"carries the opt-out tag {opt_out_tag_key}")
    if group.warm_pool is not None:
        # A stop would leave the pool's prepared instances, or grow them to MaxGroupPreparedCapacity, and this
        # record does not list them (DescribeWarmPool does): neither a stop nor its verification would be true.
        config = ", ".join(
            f"{key} {group.warm_pool[key]}"
            for key in ("PoolState", "MinSize", "MaxGroupPreparedCapacity")
            if key in group.warm_pool
        )
        return Decision("report", f"has a warm pool ({config}): not scheduled")
    saved = group.tags.get(SAVED_CAPACITY_TAG)
    stopped = group.capacity.desired == 0
    if action == "stop":
        # At desired 0 it runs nothing: its owner stopped it, or something moved min or max of a group we stopped
        # (saving those sizes would overwrite the real ones). A tag left on a running group (half-done start or
        # stop, an owner who scaled up) is overwritten with the current values.
        return Decision("already", str(group.capacity)) if stopped else Decision("act")
    if saved is None:
        if stopped:
            return Decision("report", f"no saved capacity: left at {group.capacity}")
        return Decision("already", str(group.capacity))
    capacity = parse_capacity(saved)
    if capacity is None:
        return Decision("report", f"malformed tag {SAVED_CAPACITY_TAG}={saved!r}: expected <min>/<desired>/<max>")
    if capacity.desired == 0:
        return Decision("report", f"tag {SAVED_CAPACITY_TAG}={saved!r} saves desired capacity 0: nothing to start")
    # Running already (a start that restored but could not delete the tag, or an owner who scaled up): the
    # current capacity wins, and the stale tag goes so that a later start never undoes an owner's own stop.
    return Decision("act", restore=capacity if stopped else None)


def reached(group: Group, action: Action) -> bool:
    if action == "stop":
        return not group.members
    # Every start aims at a desired capacity above 0: back at 0, something scaled the group in again. AWS may
    # overshoot the desired units ("at the desired capacity or above it").
    return group.capacity.desired > 0 and sum(member.weight for member in group.in_service) >= group.capacity.desired


def resource_id(name: str) -> str:
    return PREFIX + name


# ---------------------------------------------------------------------------------------------------------------
# Decoders
# ---------------------------------------------------------------------------------------------------------------


def decode_act(payload: Mapping[str, Any]) -> GroupActMessage:
    names = payload.get("group_names")
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise MalformedEventError(f"message field 'group_names' must be a list of group names, got {names!r}")
    return GroupActMessage(**act_fields(payload), group_names=tuple(names))


def decode_event(event: Mapping[str, Any]) -> GroupEvent:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("Auto Scaling event has no detail object")
    return GroupEvent(
        group_name=text(detail, "AutoScalingGroupName", where="detail"),
        region=text(event, "region"),
        account=text(event, "account"),
    )


DECODERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    KIND: decode_act,
    LAUNCH_SUCCESSFUL: decode_event,
    LAUNCH_UNSUCCESSFUL: decode_event,
    TERMINATE_SUCCESSFUL: decode_event,
}


# ---------------------------------------------------------------------------------------------------------------
# Reading groups
# ---------------------------------------------------------------------------------------------------------------


def _member(record: Mapping[str, Any]) -> Member:
    return Member(
        instance_id=str(record.get("InstanceId", "")),
        state=str(record.get("LifecycleState", "")),
        weight=int(record.get("WeightedCapacity") or 1),
        protected=bool(record.get("ProtectedFromScaleIn")),
    )


def _group(record: Mapping[str, Any]) -> Group:
    return Group(
        name=str(record["AutoScalingGroupName"]),
        capacity=Capacity(int(record["MinSize"]), int(record["DesiredCapacity"]), int(record["MaxSize"])),
        tags=tag_dict(record.get("Tags")),
        members=tuple(_member(instance) for instance in record.get("Instances", [])),
        warm_pool=record.get("WarmPoolConfiguration"),
    )


def _describe(asg: Any, **request: Any) -> Iterable[Group]:
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate(**request):
        yield from (_group(record) for record in page.get("AutoScalingGroups", []))


def tagged_groups(asg: Any, tags: Iterable[tuple[str, str]]) -> Iterable[Group]:
    """Groups carrying every tag (filters are ANDed; `tag:<key>` matches the key and value, case-sensitive)."""
    return _describe(asg, Filters=[{"Name": f"tag:{key}", "Values": [value]} for key, value in tags])


def groups_by_name(asg: Any, names: Iterable[str]) -> dict[str, Group]:
    return {group.name: group for group in _describe(asg, AutoScalingGroupNames=list(names))}


def _still_targeted(rt: SchedulerRuntime, group: Group) -> bool:
    return carries_all(group.tags, rt.config.targets.tags)


# ---------------------------------------------------------------------------------------------------------------
# Adapter interface
# ---------------------------------------------------------------------------------------------------------------


def enabled(rt: SchedulerRuntime) -> bool:
    # Only groups carrying the target tags: an id list names instances, never groups.
    return rt.config.asg_mode == "capacity" and bool(rt.config.targets.tags)


def plan(rt: SchedulerRuntime, action: Action, slot: str, sender: Sink, summary: dict[str, Any]) -> list[str]:
    failures: list[str] = []
    for target in targets_of(rt.config.scope, rt.clients.default_region):
        try:
            plan_target(rt, action, slot, target, sender, summary)
        except ClientError as error:
            logger.exception("groups not listed", extra={"target": target.describe()})
            failures.append(f"{target.describe()} (Auto Scaling groups): {error_code(error)}")
    return failures


def plan_target(
    rt: SchedulerRuntime, action: Action, slot: str, target: Target, sender: Sink, summary: dict[str, Any]
) -> None:
    """The tagged groups of one target: their act batches onto `sender` once all are listed (a listing error,
    raised, sends none of them)."""
    asg = rt.clients.client("autoscaling", target.region, target.role_arn)
    to_act: list[str] = []
    for group in tagged_groups(asg, rt.config.targets.tags):
        decision = group_decision(group, action, rt.config.opt_out_tag_key)
        if decision.verdict == "already":
            summary["already"] += 1
        elif decision.verdict == "skip":
            summary["skipped"].append(f"{resource_id(group.name)}: {decision.reason}")
        else:
            # A `report` too: the planners keep no ledger, the worker re-reads and reports it once.
            to_act.append(group.name)
            if decision.verdict == "report":
                summary["reported"].append(f"{resource_id(group.name)}: {decision.reason}")
    for start in range(0, len(to_act), BATCH_SIZE):
        batch = tuple(to_act[start : start + BATCH_SIZE])
        sender.add(GroupActMessage(**act_of(rt, action, slot, target), group_names=batch))


def handles(item: Any) -> bool:
    if isinstance(item, CheckMessage):
        return item.resource_id.startswith(PREFIX)
    return isinstance(item, GroupActMessage | GroupEvent)


def handle(rt: SchedulerRuntime, own_account: str, item: Any) -> dict[str, Any]:
    if isinstance(item, GroupActMessage):
        return act(rt, item)
    if isinstance(item, CheckMessage):
        return verify_group(rt, Target(item.region, item.role_arn), item.resource_id.removeprefix(PREFIX), item)
    if isinstance(item, GroupEvent):
        target = event_target(rt.config.scope, item.region, item.account, own_account, rt.clients.default_region)
        if target is None:
            return {"resource_id": resource_id(item.group_name), "outcome": "ignored"}
        return verify_group(rt, target, item.group_name, None)
    raise MalformedEventError(f"no Auto Scaling group handler for {type(item).__name__}")


# ---------------------------------------------------------------------------------------------------------------
# Worker
# ---------------------------------------------------------------------------------------------------------------


def act(rt: SchedulerRuntime, message: GroupActMessage) -> dict[str, Any]:
    """One change per (group, action, slot), whatever the deliveries; the groups are read again first (the
    planner's listing may be minutes old)."""
    target = Target(message.region, message.role_arn)
    asg = rt.clients.client("autoscaling", target.region, target.role_arn)
    result: dict[str, list[str]] = {key: [] for key in ("acted", "already", "reported", "superseded", "left")}
    waiting: list[str] = []
    try:
        current = groups_by_name(asg, message.group_names)
    except ClientError as error:
        if error_code(error) not in WAIT_ERRORS:
            raise
        waiting.extend(message.group_names)
    else:
        for name in message.group_names:
            outcome = _act_on(rt, asg, target, message, name, current.get(name))
            (waiting if outcome == "waiting" else result[outcome]).append(name)
    send_back(rt, target, message, waiting, [resource_id(n) for n in waiting])
    return {"action": message.action, "slot": message.slot, **result, "waiting": waiting}


def _act_on(
    rt: SchedulerRuntime, asg: Any, target: Target, message: GroupActMessage, name: str, group: Group | None
) -> str:
    """Act on one group; returns the result list it belongs to."""
    rid = resource_id(name)
    ttl = rt.config.completion.ledger_ttl_days
    if group is None:
        report_once(rt, target, rid, "Auto Scaling group no longer exists")
        return "reported"
    if superseded(rt, target, rid, message.slot):
        return "superseded"
    if not _still_targeted(rt, group):
        return "left"
    decision = group_decision(group, message.action, rt.config.opt_out_tag_key)
    if decision.verdict == "already":
        if not reached(group, message.action):
            # On its way already (a delivery that died after its call, the owner's own change): verified too.
            expect(rt, target, rid, message.action, message.slot)
        return "already"
    if decision.verdict != "act":
        report_once(rt, target, rid, decision.reason)
        return "reported"
    held = claim(rt, target, rid, f"{message.action}@{message.slot}", ttl)
    if held.status == "in_flight":
        return "waiting"  # another delivery is acting on it now, or died doing so
    if held.status == "made":
        return "already"
    try:
        done, tag_refused = _call(asg, message.action, group, decision)
    except ClientError as error:
        code = error_code(error)
        release(rt, held, code, ttl)
        if code in WAIT_ERRORS:
            return "waiting"
        if code == "LimitExceeded" and error.operation_name == "CreateOrUpdateTags":
            report_once(rt, target, rid, TAG_LIMIT_REASON)
        elif code == "ValidationError" and GONE_TEXT in str(error):
            report_once(rt, target, rid, f"Auto Scaling group no longer exists ({code})")
        else:
            fail_once(rt, target, rid, message.action, message.slot, f"refused: {code}")
        return "reported"
    record_made(rt, held, [done], ttl)
    expect(rt, target, rid, message.action, message.slot)
    if tag_refused is not None:
        # The start is made and verified as one; only our tag is left, overwritten by the next stop.
        code = error_code(tag_refused)
        logger.warning("saved-capacity tag not removed", extra={"resource_id": rid, "error_code": code})
        report_once(rt, target, rid, f"{done}, but the tag {SAVED_CAPACITY_TAG} was not removed: {code}")
    return "acted"


def _call(asg: Any, action: Action, group: Group, decision: Decision) -> tuple[str, ClientError | None]:
    """The group's calls, in the order that never loses the saved capacity; returns what was done and, at start,
    the refusal of the tag removal that followed it."""
    name = group.name
    tag = {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": SAVED_CAPACITY_TAG}
    if action == "stop":
        # Saved before zeroing: a failure between the two calls leaves the capacity untouched and the tag current.
        asg.create_or_update_tags(Tags=[{**tag, "Value": str(group.capacity), "PropagateAtLaunch": False}])
        asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, DesiredCapacity=0, MaxSize=0)
        return f"saved {group.capacity}, set 0/0/0", None
    restore = decision.restore
    if restore is not None:
        # Restored before the tag goes: a failure between the two calls leaves the tag for the next attempt.
        asg.update_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=restore.min_size,
            DesiredCapacity=restore.desired,
            MaxSize=restore.max_size,
        )
    done = f"restored {restore}" if restore is not None else f"kept {group.capacity}"
    try:
        asg.delete_tags(Tags=[tag])
    except ClientError as error:
        if error_code(error) in WAIT_ERRORS:
            raise  # sent back: the retry re-reads a running group and only removes the tag
        return done, error
    return done + ", removed the saved tag", None


# ---------------------------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------------------------


def verify_group(rt: SchedulerRuntime, target: Target, name: str, check: CheckMessage | None) -> dict[str, Any]:
    # A client only for a group of the ledger (see handlers.verify_instance): no AssumeRole for another's.
    client = partial(rt.clients.client, "autoscaling", target.region, target.role_arn)
    return verify(rt, target, resource_id(name), check, partial(_observe, client, name))


def _observe(client: Callable[[], Any], name: str, entry: LedgerEntry, at_deadline: bool) -> Observation:
    """The group now. Launches and terminations are retried by the group itself, so before the deadline only
    reaching the desired state counts; at the deadline it fails with its counts and the newest activity's message."""
    action = action_of_entry(entry)
    asg = client()
    group = groups_by_name(asg, [name]).get(name)
    if group is None:
        return Observation(state=None, reason=f"Auto Scaling group {name} no longer exists")
    if reached(group, action):
        return Observation(state="available")
    if action == "stop":
        counts = f"{len(group.members)} instance(s) left (capacity {group.capacity})"
    elif group.capacity.desired == 0:
        counts = f"desired capacity back at 0 (capacity {group.capacity})"
    else:
        units = sum(member.weight for member in group.in_service)
        counts = (
            f"{units} of {group.capacity.desired} desired capacity unit(s) InService"
            f" ({len(group.in_service)} instance(s))"
        )
    if not at_deadline:
        return Observation(state="pending", reason=counts)
    held = _held(group) if action == "stop" else ""
    return Observation(state="failed", reason=counts + held + _newest_activity(asg, name))


def _held(group: Group) -> str:
    """Members a stop cannot terminate until their owner acts: protected from scale in, or in Standby."""
    reasons = []
    for label, ids in (
        ("protected from scale-in", [m.instance_id for m in group.members if m.protected]),
        ("in Standby", [m.instance_id for m in group.members if m.state.startswith("Standby")]),
    ):
        if ids:
            more = f" and {len(ids) - NAMED_MEMBERS} more" if len(ids) > NAMED_MEMBERS else ""
            reasons.append(f"; {label}: {', '.join(ids[:NAMED_MEMBERS])}{more}")
    return "".join(reasons)


def _newest_activity(asg: Any, name: str) -> str:
    """In-progress activities come first, then by start time: the first with a message says what went wrong."""
    try:
        activities = asg.describe_scaling_activities(AutoScalingGroupName=name, MaxRecords=5).get("Activities", [])
    except ClientError as error:
        return f"; scaling activities not read: {error_code(error)}"
    message = next((str(a["StatusMessage"]) for a in activities if a.get("StatusMessage")), "")
    return f"; newest scaling activity: {message}" if message else ""
