"""The planner every module shares: for each (region, account) of the scope, stream the module's work items onto
the work queue — or, in a dry run, collect them for the module's report — then name every failure once.

Fanned out (target accounts / OUs), the work is split in two levels, on SQS and Lambda's own concurrency: the
planner resolves the accounts and enqueues one `ScopeMessage` per account x region (its run time grows with the
number of accounts by one queue entry each, never by their listings), and the module's worker runs `plan_scope` for
each: it lists that one account x region and enqueues its work items, paced on their own (EC2 throttles per account
and region), so the accounts proceed in parallel. An account that cannot be listed for good is alerted once per
slot by account id and reason (role missing: per account; region disabled or a read denied: per account and region);
the others proceed. A delayed slot audit then says when no scope planned anything (a tag typo across the landing
zone)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from .errors import PartialFailure, ScopeFailure, scope_failure
from .events import ScopeMessage, SlotAuditMessage, WorkMessage
from .fanout import SQS_MAX_DELAY_SECONDS, BatchSender, send_delayed
from .ledger import LedgerKey
from .observability import count, logger
from .organization import (
    enabled_regions,
    home_region,
    partition_of,
    resolve_accounts,
    resolve_targets,
    role_arn_for,
)
from .runtime import Runtime
from .scope import Target, targets_of

M = TypeVar("M", bound=WorkMessage)
# The ledger "region" of a scope failure that concerns the whole account (AssumeRole): once per (account, slot).
SCOPE_REGION = "-"
# The fan-out's "nothing matched" guard: SQS's longest delay, re-delayed while scopes are outstanding, ~1 hour at most.
SLOT_AUDIT_DELAY_SECONDS = SQS_MAX_DELAY_SECONDS
SLOT_AUDIT_ATTEMPTS = 4
TALLY_ACCOUNT = "fan-out"  # the ledger "account" of a slot's tally (no AWS account id looks like it)


def plan_slot(
    rt: Runtime[Any],
    slot: str,
    work_of: Callable[[Any, Target], Iterable[M]],
    *,
    not_found: Callable[[], list[str]],
    nothing_matched: str | None,
    nothing_matched_retryable: bool,
    dry_run_report: Callable[[Mapping[Target, list[M]]], list[dict[str, Any]]],
    pace_per_second: float | None = None,
    action: str = "",
) -> dict[str, Any]:
    """`work_of(ec2, target)` yields one target's work items; `not_found()` (called once every target was listed)
    names the explicit ids none of them found. A fanned-out scope enqueues scope items only (`fan_out`), with
    `action` in each; its dry run lists every resolved target here, like an explicit scope. A target that could not
    be listed and work that could not be enqueued are retryable: alerted, then raised so the invocation is retried
    (its duplicates are idempotent).
    Ids not found are alerted only. When nothing matched at all, `nothing_matched` is alerted, and raised too when
    `nothing_matched_retryable`; None: the module judges what it found itself (in `not_found`)."""
    dry_run: bool = rt.config.retention.dry_run
    scope = rt.config.scope
    if scope.fans_out and not dry_run:
        return fan_out(rt, slot, action, audit=nothing_matched is not None)
    failures: list[str] = []
    sender: BatchSender[M] | None = None
    if not dry_run:
        sender = BatchSender(rt.clients.client("sqs"), rt.common.work_queue_url, pace_per_second=pace_per_second)
    planned = 0
    collected: dict[Target, list[M]] = {}
    for target in _targets(rt, failures):
        try:
            ec2 = rt.clients.client("ec2", target.region, target.role_arn)
            for message in work_of(ec2, target):
                planned += 1
                if sender is None:
                    collected.setdefault(target, []).append(message)
                else:
                    sender.add(message)
        except (ClientError, BotoCoreError) as error:
            logger.exception("target resolution failed", extra={"target": target.describe()})
            failures.append(f"{target.describe()}: {error}")
    if sender is not None:
        sender.flush()
        failures.extend(f"{_source_of(message)}: not enqueued" for message in sender.unsent)

    missing = not_found()
    if nothing_matched is not None and not planned and not failures:
        # A tag typo or an emptied fleet must not go quiet: a policy that backs up nothing is a failure.
        if nothing_matched_retryable:
            failures.append(nothing_matched)
        else:
            missing.append(nothing_matched)
            logger.warning("backups stopped: no target matched", extra={"slot": slot})
    summary: dict[str, Any] = {"slot": slot, "dry_run": dry_run, "planned": planned}
    if sender is None:
        summary["plan"] = dry_run_report(collected)
        logger.info("dry run: nothing enqueued", extra={"plan": summary["plan"], "slot": slot})
    else:
        summary["enqueued"] = sender.sent
        logger.info("backups planned", extra={"slot": slot, "enqueued": sender.sent})
    if failures or missing:
        count("BackupsFailed", len(failures) + len(missing))
        rt.alerts.send("backups not planned", {"slot": slot, "failures": [*failures, *missing]})
    if failures:
        raise PartialFailure(failures)
    summary["not_found"] = missing
    return summary


def _targets(rt: Runtime[Any], failures: list[str]) -> list[Target]:
    scope = rt.config.scope
    if not scope.fans_out:
        return targets_of(scope, rt.clients.default_region)
    try:
        return resolve_targets(rt.clients, scope, rt.clients.default_region, failures)
    except (ClientError, BotoCoreError) as error:
        logger.exception("accounts not resolved")
        failures.append(f"organizations: {error}")
        return []


@dataclass(frozen=True)
class ScopeAlerts:
    """The module's words for a fanned-out slot's failures: the alert of an account x region that cannot be
    listed, the alert of a slot not (fully) planned, and the metric counting both."""

    account_failed: str = "account cannot be backed up"
    not_planned: str = "backups not planned"
    failed_metric: str = "BackupsFailed"


BACKUP_ALERTS = ScopeAlerts()


def fan_out(
    rt: Runtime[Any], slot: str, action: str = "", *, alerts: ScopeAlerts = BACKUP_ALERTS, audit: bool = False
) -> dict[str, Any]:
    """The planner of a fanned-out scope: one ScopeMessage per account x region (per account with "all-enabled": the
    worker expands it), no EC2 call. Accounts an OU holds in a known non-ACTIVE state are skipped and named, not
    alerted. Each OU resolves on its own (explicit accounts need no Organizations call): every account that
    resolved is enqueued, then the OUs that failed (missing, access, throttled after retries) and items not
    enqueued are alerted and raised (the retry's duplicates are idempotent)."""
    scope = rt.config.scope
    default_region = rt.clients.default_region
    resolution = resolve_accounts(rt.clients, scope, tolerate=True)
    failures = [f"organizations: OU {unit}" for unit in resolution.failed_units]
    accounts = resolution.accounts
    skipped = [account.describe() for account in resolution.skipped]
    partition = partition_of(default_region)
    regions: tuple[str | None, ...] = (None,) if scope.all_regions else (scope.regions or (default_region,))
    # No pace here: a scope item costs its worker one listing; each scope paces its own work items.
    sender: BatchSender[ScopeMessage] = BatchSender(rt.clients.client("sqs"), rt.common.work_queue_url)
    for account in accounts:
        role_arn = role_arn_for(scope, account, partition)
        for region in regions:
            sender.add(ScopeMessage(rt.policy, slot, account, role_arn, region, action))
    sender.flush()
    failures.extend(f"{message.source_id}: not enqueued" for message in sender.unsent)
    if audit and sender.sent:
        regions_count = 0 if scope.all_regions else len(regions)
        audit_message = SlotAuditMessage(rt.policy, slot, len(accounts), regions_count, action)
        send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, audit_message, SLOT_AUDIT_DELAY_SECONDS)
    if not accounts and not failures:
        # An emptied OU or a typo must not go quiet, but retrying cannot help: alerted, not raised.
        count(alerts.failed_metric)
        rt.alerts.send(alerts.not_planned, {"slot": slot, "failures": ["no ACTIVE account in the scope"]})
    summary: dict[str, Any] = {
        "slot": slot,
        "dry_run": False,
        "scopes": len(accounts) * len(regions),
        "enqueued": sender.sent,
        "skipped_accounts": skipped,
    }
    logger.info("scopes planned", extra={**summary, "accounts": len(accounts)})
    if failures:
        count(alerts.failed_metric, len(failures))
        rt.alerts.send(alerts.not_planned, {"slot": slot, "failures": failures})
        raise PartialFailure(failures)
    return summary


def plan_scope(
    rt: Runtime[Any],
    message: ScopeMessage,
    work_of: Callable[[Any, Target], Iterable[M]],
    *,
    ttl_days: int,
    pace_per_second: float | None = None,
    alerts: ScopeAlerts = BACKUP_ALERTS,
) -> dict[str, Any]:
    """Run by the WORKER for one ScopeMessage: the work items of that account x region (`work_of(ec2, target)`,
    the same function the module's planner uses), enqueued with the module's pace counted from this scope alone.
    A ScopeMessage without a region is first expanded into one per enabled region of the account.

    A scope that can never be listed (`scope_failure`: AssumeRole or a target-side read refused for good) is
    alerted once — per (account, slot) when AssumeRole failed, per (account, region, slot) when a read did; a
    conditional ledger write decides which delivery alerts — and dropped. Anything else, the hub's own calls
    (SQS, DynamoDB, SNS) included, raises, so SQS retries the item (its duplicates are idempotent) and the
    dead-letter alert names it on give-up."""
    log_keys = {"slot": message.slot, "account": message.account, "region": message.region or "all-enabled"}
    sender: BatchSender[Any] = BatchSender(
        rt.clients.client("sqs"),
        rt.common.work_queue_url,
        pace_per_second=None if message.region is None else pace_per_second,
    )
    planned = 0
    regions: list[str] = []
    try:
        if message.region is None:
            # Asked in the partition's default region (enabled in every account), not the hub's: a hub in an opt-in
            # region the account has not enabled would get AuthFailure there, for the whole account.
            home = home_region(rt.clients.default_region)
            regions = enabled_regions(rt.clients.client("ec2", home, message.role_arn))
            for region in regions:
                sender.add(replace(message, region=region))
        else:
            target = Target(message.region, message.role_arn)
            for item in work_of(rt.clients.client("ec2", target.region, target.role_arn), target):
                sender.add(item)
                planned += 1
    except ClientError as error:
        failure = scope_failure(error, message.role_arn)
        if failure is None:
            raise
        outcome = scope_failed(rt, message, failure, ttl_days=ttl_days, alerts=alerts)
        _report(rt, message, ttl_days, done=1, failed=1)
        return outcome
    # Sends also happen inside the classifying block (BatchSender sends every 10 items): a hub-side SQS error is
    # not a target-side read (errors.is_target_read), so it is re-raised there, never taken for the target's.
    sender.flush()
    if sender.unsent:
        raise PartialFailure([f"{_source_of(item)}: not enqueued" for item in sender.unsent])
    counted = {"expanded": len(regions)} if message.region is None else {"planned": planned}
    _report(rt, message, ttl_days, done=1, **counted)
    if message.region is None:
        logger.info("scope expanded to the enabled regions", extra={**log_keys, "regions": regions})
        return {**log_keys, "outcome": "expanded", "regions": regions, "enqueued": sender.sent}
    logger.info("scope planned", extra={**log_keys, "planned": planned, "enqueued": sender.sent})
    return {**log_keys, "outcome": "planned", "planned": planned, "enqueued": sender.sent}


def scope_marker(rt: Runtime[Any], message: ScopeMessage, failure: ScopeFailure, part: str = "") -> LedgerKey:
    """The once-only marker of a scope failure: per (account, slot) when the role cannot be assumed (every region
    fails alike; region "-"), per (account, region, slot) when a read in that region failed, so a real failure in
    another region is not swallowed by the first. `part` names a piece of the scope failing on its own (the
    scheduler's adapters)."""
    region = SCOPE_REGION if failure.whole_account or message.region is None else message.region
    suffix = f"#{part}" if part else ""
    return LedgerKey(rt.service, rt.policy, message.account, region, f"scope#{message.slot}{suffix}")


def scope_failed(
    rt: Runtime[Any],
    message: ScopeMessage,
    failure: ScopeFailure,
    *,
    ttl_days: int,
    alerts: ScopeAlerts = BACKUP_ALERTS,
    part: str = "",
) -> dict[str, Any]:
    """Alert a permanent scope failure once (its `scope_marker`) and drop it."""
    key = scope_marker(rt, message, failure, part)
    reason = failure.describe()
    log_keys = {"slot": message.slot, "account": message.account, "region": message.region or "all-enabled"}
    details = {**log_keys, **({"part": part} if part else {})}
    logger.warning("scope cannot be listed", extra={**details, "reason": reason})
    # The conditional write first: of the deliveries and regions failing alike, only the one that wins it alerts. A
    # failed publish undoes it ("deleted" may be taken again), so the retried item alerts: at least once.
    if not rt.ledger.transition(
        key,
        "failed",
        rt.clock(),
        ttl_days,
        from_states={"deleted"},
        source_id=message.account,
        slot=message.slot,
        reason=reason,
    ):
        return {**details, "outcome": "failed", "reason": reason, "alerted_by": "another delivery"}
    try:
        rt.alerts.send(alerts.account_failed, {**details, "role_arn": message.role_arn, "reason": reason})
    except Exception:
        rt.ledger.transition(key, "deleted", rt.clock(), ttl_days, from_states={"failed"})
        raise
    count(alerts.failed_metric)
    return {**details, "outcome": "failed", "reason": reason}


def tally_key(rt: Runtime[Any], slot: str, action: str = "") -> LedgerKey:
    """The counters of a fanned-out slot: scopes done (listed, failed or expanded), failed, expanded (the regions an
    "all-enabled" scope added) and work items planned, each scope adding its share."""
    return LedgerKey(
        rt.service, rt.policy, TALLY_ACCOUNT, SCOPE_REGION, f"tally#{slot}" + (f"#{action}" if action else "")
    )


def _report(rt: Runtime[Any], message: ScopeMessage, ttl_days: int, **increments: int) -> None:
    rt.ledger.add_counts(tally_key(rt, message.slot, message.action), increments, rt.clock(), ttl_days)


def audit_slot(
    rt: Runtime[Any],
    message: SlotAuditMessage,
    *,
    ttl_days: int,
    nothing_matched: str,
    alerts: ScopeAlerts = BACKUP_ALERTS,
) -> dict[str, Any]:
    """A fanned-out slot's "nothing matched" guard (a tag typo across the landing zone must not back up nothing
    silently), run by the worker SLOT_AUDIT_DELAY_SECONDS after the planner. While scopes are outstanding it waits
    again, up to SLOT_AUDIT_ATTEMPTS times (about an hour); then, if no scope planned anything but some were
    listed, `nothing_matched` is alerted once (a ledger marker), naming the scopes that never reported (retried, or
    dead-lettered and alerted there) and those that could not be listed (each alerted already). A duplicate delivery
    of a scope item counts twice (SQS is at least once): the guard may then judge a little early, never silence a
    planned slot."""
    key = tally_key(rt, message.slot, message.action)
    tally = rt.ledger.counts(key)
    scopes = message.accounts * (message.regions or 1) + tally.get("expanded", 0)
    done, failed, planned = tally.get("done", 0), tally.get("failed", 0), tally.get("planned", 0)
    outstanding = max(0, scopes - done)
    summary: dict[str, Any] = {"slot": message.slot, "scopes": scopes, "done": done, "failed": failed}
    summary["planned"] = planned
    if planned:
        return {**summary, "outcome": "planned"}
    if outstanding and message.attempt < SLOT_AUDIT_ATTEMPTS:
        later = replace(message, attempt=message.attempt + 1)
        send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, later, SLOT_AUDIT_DELAY_SECONDS)
        return {**summary, "outcome": "waiting"}
    if done - failed <= 0:
        return {**summary, "outcome": "nothing listed"}  # every scope failed (alerted) or never reported (DLQ)
    regions = message.regions or "all enabled"
    failure = f"no target matched in {message.accounts} accounts x {regions} regions ({nothing_matched})"
    if outstanding:
        failure += f"; {outstanding} scope(s) never reported"
    if failed:
        failure += f"; {failed} scope(s) could not be listed (alerted)"
    marker = replace(key, resource_id=f"{key.resource_id}#nothing-matched")
    if not rt.ledger.transition(marker, "failed", rt.clock(), ttl_days, from_states={"deleted"}, reason=failure):
        return {**summary, "outcome": "nothing matched", "alerted_by": "another delivery"}
    try:
        rt.alerts.send(alerts.not_planned, {"slot": message.slot, "failures": [failure]})
    except Exception:
        rt.ledger.transition(marker, "deleted", rt.clock(), ttl_days, from_states={"failed"})
        raise
    count(alerts.failed_metric)
    logger.warning("nothing matched in any scope", extra=summary)
    return {**summary, "outcome": "nothing matched"}


def _source_of(message: Any) -> str:
    """Every module's create message names its source (instance or volume) as `source_id`."""
    return str(message.source_id)
