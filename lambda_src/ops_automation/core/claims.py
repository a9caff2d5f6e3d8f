"""One request per (policy, source, slot) for AWS calls that take no client token (CreateSnapshot, CreateSnapshots):
a repeated delivery of the same work item must not create a second resource.

A claim is a ledger item keyed `request#<source>#<slot>` beside the resources' own items:

* absent or released (`failed`): the caller may make the request (`NEW`);
* `available`: the request was made and `refs` holds what it created (`MADE`): nothing to call;
* `pending`, updated less than `IN_FLIGHT` ago: another delivery is making it now (`IN_FLIGHT`): try later;
* `pending` and older: an invocation died between the call and recording its result (`STALE`): the caller looks
  for the resources by their tags, adopts them if found, and otherwise takes the claim over and calls again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from .events import parse_time
from .ledger import LedgerKey
from .runtime import Runtime
from .scope import Target

# Longer than any invocation (the worker's timeout is 5 minutes), so a claim this old has no caller left.
IN_FLIGHT = timedelta(minutes=15)

ClaimStatus = Literal["new", "made", "in_flight", "stale"]


@dataclass(frozen=True)
class Claim:
    key: LedgerKey
    status: ClaimStatus
    refs: tuple[str, ...] = ()
    # When the claim was last written: taking a stale claim over is conditional on it, so of two deliveries that
    # both find it stale only one calls again.
    updated_at: str = ""


def claim_key(rt: Runtime[Any], target: Target, source_id: str, slot: str) -> LedgerKey:
    return LedgerKey(rt.service, rt.policy, target.account, target.region, f"request#{source_id}#{slot}")


def claim(rt: Runtime[Any], target: Target, source_id: str, slot: str, ttl_days: int) -> Claim:
    key = claim_key(rt, target, source_id, slot)
    now = rt.clock()
    if rt.ledger.transition(key, "pending", now, ttl_days, from_states={"failed"}, source_id=source_id, slot=slot):
        return Claim(key, "new")
    entry = rt.ledger.get(key)
    if entry is None or entry.state == "failed":
        # Released between the two calls: whoever released it will be redelivered; this delivery waits its turn.
        return Claim(key, "in_flight")
    if entry.state in ("available", "deleted"):
        return Claim(key, "made", entry.refs, updated_at=entry.updated_at)
    if now - parse_time(entry.updated_at, "updated_at") < IN_FLIGHT:
        return Claim(key, "in_flight")
    return Claim(key, "stale", updated_at=entry.updated_at)


def take_over(rt: Runtime[Any], stale: Claim, ttl_days: int) -> bool:
    """Restart the in-flight window of a stale claim before calling again; False if another delivery took it."""
    return rt.ledger.transition(
        stale.key, "pending", rt.clock(), ttl_days, from_states={"pending"}, expected_updated_at=stale.updated_at
    )


def reopen(rt: Runtime[Any], made: Claim, ttl_days: int) -> bool:
    """Claim again a request whose resources are gone (a copy that failed and was discarded, or was deleted): False
    if another delivery reopened it first."""
    return rt.ledger.transition(
        made.key, "pending", rt.clock(), ttl_days, from_states={"available"}, expected_updated_at=made.updated_at
    )


def record_made(rt: Runtime[Any], held: Claim, refs: Sequence[str], ttl_days: int) -> None:
    rt.ledger.transition(held.key, "available", rt.clock(), ttl_days, refs=refs, reason="")


def release(rt: Runtime[Any], held: Claim, reason: str, ttl_days: int) -> None:
    """The call failed without creating anything: the next delivery may call again."""
    rt.ledger.transition(held.key, "failed", rt.clock(), ttl_days, from_states={"pending"}, reason=reason)
