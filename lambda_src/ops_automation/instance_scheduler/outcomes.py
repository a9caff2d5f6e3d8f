"""The verified outcome of every scheduled action, whatever the service (EC2 instances, Auto Scaling groups, RDS
instances and Aurora clusters): one ledger item per resource naming the newest (action, slot), a delayed check at the
deadline, and one alert and metric per resource and slot that did not get there.

Ledger resource ids: an EC2 instance id (`i-...`), `group:<name>`, `db:<id>` and `cluster:<id>`, so the services
never share an item and a check finds its service by the id alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from ..core.completion import CompletionNames, Observation, complete, first_failure, ledger_key
from ..core.errors import MalformedEventError
from ..core.events import CheckMessage, WorkMessage, format_time, optional_text, parse_time, text, time_field
from ..core.fanout import backoff_seconds, send_delayed
from ..core.ledger import LedgerEntry
from ..core.observability import count
from ..core.runtime import Runtime
from ..core.scope import Target
from .decisions import ACTIONS, Action, InstanceSchedulerConfig

SchedulerRuntime = Runtime[InstanceSchedulerConfig]
NOT_IN_STATE_ALERT = "instance not in its scheduled state"
IN_DESIRED_STATE = CompletionNames(
    NOT_IN_STATE_ALERT, "InstancesInDesiredState", "InstancesNotInDesiredState", "in its scheduled state"
)


@dataclass(frozen=True, kw_only=True)
class ScheduledAct(WorkMessage):
    """What every service's act message carries: one action of one slot on resources of one target. A subclass adds
    its ids, in the field IDS_FIELD names."""

    IDS_FIELD: ClassVar[str]

    policy: str
    action: Action
    slot: str
    region: str
    role_arn: str | None
    # Times the ids were sent back to wait (a resource on its way to the other state, a throttled call).
    waits: int = 0
    # Set when first sent back to wait: past it the ids still waiting fail (a late first act gets its full time).
    deadline: str | None = None

    @property
    def source_id(self) -> str:
        """What the core's planner names an item by when it could not be enqueued: its ids."""
        return ", ".join(getattr(self, self.IDS_FIELD))


class Sink(Protocol):
    """Where a planner puts act messages: the work queue's BatchSender, or a list (a scope worker's work items)."""

    def add(self, message: ScheduledAct) -> None: ...


def act_of(rt: SchedulerRuntime, action: Action, slot: str, target: Target) -> dict[str, Any]:
    """The shared fields of a new act message of this policy."""
    return {"policy": rt.policy, "action": action, "slot": slot, "region": target.region, "role_arn": target.role_arn}


def act_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The fields every act message shares, checked."""
    action = text(payload, "action")
    if action not in ACTIONS:
        raise MalformedEventError(f"message field 'action' must be start or stop, got {action!r}")
    waits = payload.get("waits", 0)
    if type(waits) is not int or waits < 0:
        raise MalformedEventError(f"message field 'waits' must be a non-negative integer, got {waits!r}")
    return {
        "policy": text(payload, "policy"),
        "action": action,
        "slot": time_field(payload, "slot"),
        "region": text(payload, "region"),
        "role_arn": optional_text(payload, "role_arn"),
        "waits": waits,
        "deadline": time_field(payload, "deadline") if payload.get("deadline") is not None else None,
    }


def slot_deadline(rt: SchedulerRuntime, slot: str) -> datetime:
    return parse_time(slot, "slot") + timedelta(minutes=rt.config.completion.timeout_minutes)


def _first(
    rt: SchedulerRuntime,
    target: Target,
    marker: str,
    source_id: str | None = None,
    slot: str | None = None,
    reason: str | None = None,
) -> bool:
    return first_failure(
        rt, target, marker, rt.config.completion.ledger_ttl_days, source_id=source_id, slot=slot, reason=reason
    )


def report_once(rt: SchedulerRuntime, target: Target, resource_id: str, reason: str) -> None:
    """A resource that will never act (unknown, terminated, unsupported): one alert, not one per slot, while the
    ledger keeps the record (ledger_ttl_days)."""
    if _first(rt, target, f"reported#{resource_id}", reason=reason):
        rt.alerts.send(
            "instance cannot be scheduled", {"resource_id": resource_id, "region": target.region, "reason": reason}
        )


def fail_once(rt: SchedulerRuntime, target: Target, resource_id: str, action: Action, slot: str, reason: str) -> None:
    """One alert and one metric per resource and slot, whatever the deliveries."""
    if _first(rt, target, f"failed#{action}@{slot}#{resource_id}", source_id=action, slot=slot, reason=reason):
        rt.alerts.send(
            NOT_IN_STATE_ALERT,
            {"resource_id": resource_id, "region": target.region, "action": action, "slot": slot, "reason": reason},
        )
        count(IN_DESIRED_STATE.failed_metric)


def superseded(rt: SchedulerRuntime, target: Target, resource_id: str, slot: str) -> bool:
    """Whether a later slot already acted on the resource: an older slot's item (late, redelivered, or waiting)
    must not undo it. Slots are UTC timestamps of one format, so they compare as text."""
    entry = rt.ledger.get(ledger_key(rt, target, resource_id))
    return entry is not None and entry.slot > slot


def expect(
    rt: SchedulerRuntime,
    target: Target,
    resource_id: str,
    action: Action,
    slot: str,
    timeout_minutes: int | None = None,
) -> None:
    """The resource's verification item: one per resource, rewritten by every newer action (a state event names
    only the resource), with a delayed check at the slot's deadline. `timeout_minutes` replaces the configured
    verification time for a service whose stops and starts take longer (RDS)."""
    if superseded(rt, target, resource_id, slot):
        return
    key = ledger_key(rt, target, resource_id)
    rt.ledger.transition(
        key, "pending", rt.clock(), rt.config.completion.ledger_ttl_days, source_id=action, slot=slot, reason=""
    )
    if timeout_minutes is None:
        deadline = act_deadline(rt, slot)
    else:
        timeout = timedelta(minutes=timeout_minutes)
        deadline = max(parse_time(slot, "slot") + timeout, rt.clock() + timeout)
    check = CheckMessage(rt.policy, resource_id, action, target.region, target.role_arn, slot, format_time(deadline))
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, check, (deadline - rt.clock()).total_seconds())


def send_back(
    rt: SchedulerRuntime, target: Target, message: ScheduledAct, waiting: list[str], ledger_ids: list[str]
) -> None:
    """Send the ids still `waiting` back as the same message (backing off by its waits) while its deadline is ahead
    (the slot's, or the full verification time from the first act when that was late); past it, each fails once
    (`ledger_ids`: the same resources as the ledger names them)."""
    if not waiting:
        return
    existing: str | None = message.deadline
    deadline = parse_time(existing, "deadline") if existing else act_deadline(rt, message.slot)
    if rt.clock() >= deadline:
        for resource_id in ledger_ids:
            fail_once(rt, target, resource_id, message.action, message.slot, "not acted on by the deadline")
        return
    changes: dict[str, Any] = {message.IDS_FIELD: tuple(waiting), "waits": message.waits + 1}
    retry = replace(message, **changes, deadline=format_time(deadline))
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, retry, backoff_seconds(retry.waits))


def act_deadline(rt: SchedulerRuntime, slot: str) -> datetime:
    """The deadline of an action first handled now: the slot's, or the full verification time from now when the act
    is late (Scheduler retries for up to an hour, the planner paces batches over up to 15 minutes)."""
    return max(slot_deadline(rt, slot), rt.clock() + timedelta(minutes=rt.config.completion.timeout_minutes))


def verify(
    rt: SchedulerRuntime,
    target: Target,
    resource_id: str,
    check: CheckMessage | None,
    observe: Callable[[LedgerEntry, bool], Observation],
) -> dict[str, Any]:
    """Complete the resource's newest action from its state event (check None) or its delayed check. `observe`
    gets the ledger item and whether the deadline has passed; before it, only a definite outcome should count."""
    if check is not None:
        entry = rt.ledger.get(ledger_key(rt, target, resource_id))
        if entry is not None and (entry.slot, entry.source_id) != (check.slot, check.source_id):
            # The check of an older slot: the item now verifies a newer action, which has its own check.
            return {"resource_id": resource_id, "outcome": "superseded"}
    at_deadline = check is not None and rt.clock() >= check.deadline_time
    return complete(
        rt,
        target,
        resource_id,
        check,
        observe=lambda entry: observe(entry, at_deadline),
        finish=lambda _entry, _observation: {},
        ttl_days=rt.config.completion.ledger_ttl_days,
        names=IN_DESIRED_STATE,
    )


def action_of_entry(entry: LedgerEntry) -> Action:
    return "start" if entry.source_id == "start" else "stop"
