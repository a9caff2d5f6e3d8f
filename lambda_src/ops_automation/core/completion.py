"""The completion state machine every backup module shares: a resource was requested (ledger `pending`); its
state event or the delayed check (the safety net) observes it and completes it once.

Driven by either path, the ledger decides what still needs doing, so a duplicate event or a check that arrives
after the event touches no EC2 at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .events import CheckMessage, format_time
from .fanout import send_delayed
from .ledger import LedgerEntry, LedgerKey, LedgerState
from .observability import count, logger
from .retention import State
from .runtime import Runtime
from .scope import Target

Action = Literal["ignore", "done", "wait", "complete", "fail", "time_out"]


@dataclass(frozen=True)
class Observation:
    """What EC2 says of the resource now (state None: it does not exist), plus whatever the module listed to find
    out (retention reuses it instead of listing again)."""

    state: State | None
    reason: str = ""
    listing: Any = None
    # Named in the failure alert beside the reason (Run Command: the instance, its status, exit code and output).
    details: Mapping[str, Any] = field(default_factory=dict)


def completion_action(
    ledger_state: LedgerState | None, observed: State | None, now: datetime, deadline: datetime | None
) -> Action:
    """Pure decision. `deadline` is None on the event path (no deadline: a pending resource just waits)."""
    if ledger_state is None:
        return "ignore"
    if ledger_state in ("available", "deleted"):
        return "done"
    if observed == "available":
        return "complete"  # also after a timeout: a late success is still a good backup
    if ledger_state == "failed":
        return "done"
    if observed is None or observed == "failed":
        return "fail"
    if deadline is None or now < deadline:
        return "wait"
    return "time_out"


def needs_observation(entry: LedgerEntry | None, check: CheckMessage | None) -> bool:
    """Whether EC2 must be asked at all: not for resources that are not ours or already final."""
    if entry is None or entry.state in ("available", "deleted"):
        return False
    return not (entry.state == "failed" and check is not None)


def ledger_key(rt: Runtime[Any], target: Target, resource_id: str) -> LedgerKey:
    return LedgerKey(rt.service, rt.policy, target.account, target.region, resource_id)


def first_failure(
    rt: Runtime[Any],
    target: Target,
    resource_id: str,
    ttl_days: int,
    source_id: str | None = None,
    slot: str | None = None,
    reason: str | None = None,
) -> bool:
    """Whether this call is the first to write `resource_id` (a conditional put of a `failed` ledger item): what makes
    an alert once per marker, whatever the deliveries."""
    key = ledger_key(rt, target, resource_id)
    return rt.ledger.transition(
        key, "failed", rt.clock(), ttl_days, from_states=(), source_id=source_id, slot=slot, reason=reason
    )


def request_completion(
    rt: Runtime[Any], target: Target, resource_id: str, source_id: str, slot: str, timeout_minutes: int, ttl_days: int
) -> bool:
    """Record a new request as pending and schedule its delayed check. Returns False (and schedules nothing) when
    the ledger shows the resource already past pending: a repeated delivery of a completed request."""
    now = rt.clock()
    key = ledger_key(rt, target, resource_id)
    if not rt.ledger.transition(key, "pending", now, ttl_days, from_states={"pending"}, source_id=source_id, slot=slot):
        return False
    deadline = now + timedelta(minutes=timeout_minutes)
    check = CheckMessage(rt.policy, resource_id, source_id, target.region, target.role_arn, slot, format_time(deadline))
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, check, (deadline - now).total_seconds())
    return True


@dataclass(frozen=True)
class CompletionNames:
    """What a completion is called: the alert of a failure, the metrics of a success and a failure, the log line of a
    success."""

    failure_alert: str
    done_metric: str
    failed_metric: str
    done_log: str


BACKUP = CompletionNames("backup failed; nothing purged", "BackupsCreated", "BackupsFailed", "backup available")


def complete(
    rt: Runtime[Any],
    target: Target,
    resource_id: str,
    check: CheckMessage | None,
    observe: Callable[[LedgerEntry], Observation],
    finish: Callable[[LedgerEntry, Observation], dict[str, Any]],
    ttl_days: int,
    discard: Callable[[LedgerEntry, Observation], dict[str, Any]] | None = None,
    names: CompletionNames = BACKUP,
) -> dict[str, Any]:
    """Shared by the state event (check None) and the delayed check: act on the resource's state, once.
    `discard` removes what a failure left behind (EBS snapshots in `error` count against the volume's limit of
    concurrent snapshots), and nothing else. `names` say what completes: a backup by default."""
    key = ledger_key(rt, target, resource_id)
    entry = rt.ledger.get(key)
    result: dict[str, Any] = {"resource_id": resource_id}
    log_keys = {"resource_id": resource_id, "region": target.region, "account": target.account}
    if entry is None:
        # Not in this policy's ledger: an AMI of Image Builder, a CI bake, another policy... answered without EC2.
        logger.info("not this policy's resource; ignored", extra=log_keys)
        return {**result, "outcome": "ignored"}
    log_keys.update(source_id=entry.source_id, slot=entry.slot)
    if not needs_observation(entry, check):
        return {**result, "outcome": "already_" + entry.state}

    observation = observe(entry)
    now = rt.clock()
    deadline = check.deadline_time if check else None
    action = completion_action(entry.state, observation.state, now, deadline)
    if action == "wait":
        if check is not None:
            remaining = (check.deadline_time - now).total_seconds()
            send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, check, remaining)
        return {**result, "outcome": "pending"}
    if action in ("fail", "time_out"):
        reason = (
            f"still pending past its deadline {check.deadline}"
            if action == "time_out" and check
            else observation.reason
        ) or ("disappeared before completion" if observation.state is None else "failed")
        outcome = "timed_out" if action == "time_out" else "failed"
        # The conditional write first: of two deliveries observing the same failure at once (a state event and the
        # check, two events), only the one that wins it alerts. A failed publish or discard undoes it, so the
        # retried item alerts again: at least once, and once on the normal path.
        if not rt.ledger.transition(key, "failed", now, ttl_days, from_states={"pending"}, reason=reason):
            return {**result, "outcome": outcome, "reason": reason, "alerted_by": "another delivery"}
        try:
            rt.alerts.send(names.failure_alert, {**log_keys, **observation.details, "reason": reason})
            discarded = discard(entry, observation) if discard is not None and action == "fail" else {}
        except Exception:
            rt.ledger.transition(key, "pending", rt.clock(), ttl_days, from_states={"failed"})
            raise
        count(names.failed_metric)
        return {**result, "outcome": outcome, "reason": reason, **discarded}
    if action != "complete":
        return {**result, "outcome": action}

    finished = finish(entry, observation)
    if rt.ledger.transition(key, "available", rt.clock(), ttl_days, from_states={"pending", "failed"}, reason=""):
        count(names.done_metric)
        logger.info(names.done_log, extra=log_keys)
    return {**result, "outcome": "available", **finished}
