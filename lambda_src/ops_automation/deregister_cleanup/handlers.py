"""Clean-up after deregistration: the snapshots EC2 made for an AMI are deleted once the AMI is gone.

`EC2 AMI State Change` (deregistered) or the CloudTrail `DeregisterImage` call → `work_handler` finds the snapshots
EC2 created for that AMI (by the description EC2 writes) and deletes those the scope allows, unless another
registered AMI uses them, the AMI is in the Recycle Bin, or they are locked, archived or excluded; what AWS refuses
for a passing reason (`InvalidSnapshot.InUse` right after the deregistration) is retried through the queue.
`sweep_handler`, on a schedule, catches what the events missed: snapshots whose AMI is gone, past a grace period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from ..core import image_links
from ..core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
from ..core.config import CommonConfig
from ..core.errors import MalformedEventError
from ..core.events import (
    CLOUDTRAIL_API_CALL,
    AmiStateChange,
    ApiCallEvent,
    PurgeSnapshotsMessage,
    ScheduleTrigger,
    decode_api_call_event,
    parse_schedule_event,
)
from ..core.fanout import SQS_MAX_DELAY_SECONDS, BatchSender
from ..core.ledger import LedgerKey
from ..core.observability import count, log_keys, logger, metrics
from ..core.purge import FIRST_PURGE_DELAY_SECONDS, classify_snapshots, handle_purge, new_purge, schedule_purge
from ..core.runtime import Lazy, Runtime, build_runtime
from ..core.scope import Target, event_target, targets_of
from ..core.snapshots import list_snapshots, snapshot_pages
from ..core.worker import RetryLater, consume_work
from .decisions import LEDGER_TTL_DAYS, DeregisterCleanupConfig, OutOfScope, deregistered_image, sweep_verdict

SERVICE = "deregister-cleanup"
# The optional CloudTrail rule forwards `DeregisterImage` calls; only this module reads CloudTrail events.
DECODERS = {CLOUDTRAIL_API_CALL: decode_api_call_event}
# DeleteSnapshot has its own token bucket per account and region: 100 requests, refilled at 5 per second (EC2 API
# request throttling), shared with every other tool of the account. The sweep hands out 20 snapshots per message
# and one message every 10 s: 2 deletions per second, well below the refill. A deletion throttled anyway is retried
# through the queue.
SNAPSHOTS_PER_MESSAGE = 20
PURGES_PER_SECOND = 0.1
# SQS delays a message 15 minutes at most: at that pace 90 messages (1,800 snapshots) fill one sweep's window, and
# the orphans past them wait for the next sweep instead of arriving all at once.
MAX_PURGES_PER_SWEEP = int(SQS_MAX_DELAY_SECONDS * PURGES_PER_SECOND)
# Stop reading new pages once this share of the sweeper's time is used.
TIME_BUDGET_SHARE = 0.7
MAX_LISTED_FAILURES = 50
REPORT_SAMPLE = 200

CleanupRuntime = Runtime[DeregisterCleanupConfig]


def _build(max_attempts: int) -> CleanupRuntime:
    return build_runtime(
        SERVICE, DeregisterCleanupConfig.from_env(), CommonConfig.from_env(), max_attempts=max_attempts
    )


sweeper_runtime: Lazy[CleanupRuntime] = Lazy(partial(_build, PLANNER_ATTEMPTS))
worker_runtime: Lazy[CleanupRuntime] = Lazy(partial(_build, WORKER_ATTEMPTS))


# ---------------------------------------------------------------------------------------------------------------
# Worker: deregistration events and purge retries
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def work_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = worker_runtime()
    own_account = context.invoked_function_arn.split(":")[4]
    return consume_work(rt, event, context, DECODERS, partial(handle_item, rt, own_account))


def handle_item(rt: CleanupRuntime, own_account: str, item: Any) -> dict[str, Any]:
    if isinstance(item, PurgeSnapshotsMessage):
        if item.policy != rt.policy:
            raise MalformedEventError(f"message for policy {item.policy!r} reached policy {rt.policy!r}")
        with log_keys(image_ids=list(item.released_image_ids), region=item.region):
            if rt.config.dry_run:
                # Switching dry_run on stops deletions already queued too.
                return _dry_run(rt, Target(item.region, item.role_arn), item.snapshot_ids, item.released_image_ids)
            result = handle_purge(rt, item, rt.config.rule)
            count("SnapshotsDeleted", len(result["deleted"]))
            return result
    if isinstance(item, (AmiStateChange, ApiCallEvent)):
        image_id = deregistered_image(item)
        if image_id is None:
            # A failed DeregisterImage call changed nothing; other states are not ours to act on.
            reason = "failed call" if isinstance(item, ApiCallEvent) and item.failed else "not a deregistration"
            logger.info("event ignored", extra={"reason": reason, "error_code": getattr(item, "error_code", "")})
            return {"outcome": "ignored", "reason": reason}
        target = event_target(rt.config.scope, item.region, item.account, own_account, rt.clients.default_region)
        if target is None:
            logger.info("event outside the policy's regions and accounts", extra={"event_region": item.region})
            return {"outcome": "ignored", "reason": "outside the scope"}
        with log_keys(image_id=image_id, region=target.region):
            return clean_image(rt, target, image_id)
    raise MalformedEventError(f"no handler for {type(item).__name__}")


def clean_image(rt: CleanupRuntime, target: Target, image_id: str) -> dict[str, Any]:
    """Schedule the deletion of what EC2 created for a deregistered AMI, once: both event paths and redeliveries end
    here, and the ledger answers the repeats. The deletion waits a few minutes, as ami-backup's purge does:
    right after DeregisterImage, reads may not show the AMI in the Recycle Bin yet, and DeleteSnapshot answers
    `InvalidSnapshot.InUse`."""
    key = LedgerKey(SERVICE, rt.policy, target.account, target.region, image_id)
    entry = rt.ledger.get(key)
    if entry is not None and entry.state == "deleted":
        return {"image_id": image_id, "outcome": "duplicate"}
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    if image_links.holding_image_ids(ec2, [image_id]):
        # EC2's reads lag its events: ask again later (a real deregistration is listed as such soon).
        raise RetryLater(f"{image_id} is deregistered by its event but still listed as registered")
    snapshots = [
        snapshot
        for snapshot in list_snapshots(ec2, [image_links.image_snapshot_filter(image_id)])
        if image_links.image_of(snapshot) == image_id
    ]
    ids = [str(snapshot["SnapshotId"]) for snapshot in snapshots]
    if rt.config.dry_run:
        return _dry_run(rt, target, ids, (image_id,), listed=snapshots)
    if ids:
        schedule_purge(rt, target, ids, [image_id], FIRST_PURGE_DELAY_SECONDS)
    reason = f"{len(ids)} snapshot(s) made for the AMI scheduled for deletion"
    rt.ledger.transition(key, "deleted", rt.clock(), LEDGER_TTL_DAYS, source_id=image_id, refs=ids, reason=reason)
    logger.info("image clean-up scheduled", extra={"snapshot_ids": ids})
    return {"image_id": image_id, "outcome": "scheduled", "snapshot_ids": ids}


def _dry_run(
    rt: CleanupRuntime,
    target: Target,
    snapshot_ids: Sequence[str],
    image_ids: Sequence[str],
    listed: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    checked = classify_snapshots(ec2, rt.config.rule, snapshot_ids, image_ids, listed=listed, now=rt.clock())
    report = {"image_ids": list(image_ids), "outcome": "dry run", "would_delete": checked.deletable, **checked.kept()}
    logger.info("dry run: nothing deleted", extra={"report": report})
    return report


# ---------------------------------------------------------------------------------------------------------------
# Sweeper: what the events missed
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = sweeper_runtime()
    trigger = parse_schedule_event(event)
    logger.append_keys(policy=rt.policy)
    return sweep_all(rt, trigger, context)


def sweep_all(rt: CleanupRuntime, trigger: ScheduleTrigger, context: LambdaContext) -> dict[str, Any]:
    """One sweep of every target (the operator CLI calls it in a dry run, without the handler's decorators);
    `context` gives the time budget."""
    slot = trigger.slot
    sweep = _Sweep(rt, context)
    failures: list[str] = []
    targets = targets_of(rt.config.scope, rt.clients.default_region)
    # Each day starts at another target, so a sweep cut short by its time budget leaves out different ones.
    start = trigger.scheduled_time.toordinal() % len(targets)
    for target in [*targets[start:], *targets[:start]]:
        if sweep.out_of_time():
            failures.append(f"{target.describe()}: not swept, the invocation's time budget was used")
            continue
        try:
            sweep.target(target)
        except (ClientError, BotoCoreError, SweepCutShort) as error:
            logger.exception("sweep of a target failed", extra={"target": target.describe()})
            failures.append(f"{target.describe()}: {error}")
    failures.extend(sweep.finish())
    summary = {"slot": slot, "dry_run": rt.config.dry_run, **sweep.summary()}
    logger.info("sweep finished", extra={"summary": summary})
    if sweep.out_of_scope.count:
        count("OrphansOutOfScope", sweep.out_of_scope.count)
        rt.alerts.report(
            "orphan snapshots this policy's scope does not let it delete",
            {
                "scope": rt.config.cleanup_scope,
                "orphans": sweep.out_of_scope.count,
                "gib": round(sweep.out_of_scope.gib, 1),
                "monthly_cost_usd_at_most": round(sweep.out_of_scope.monthly_cost, 2),
                "by_region": sweep.out_of_scope.by_region,
                "sample_snapshot_ids": sweep.out_of_scope.sample,
            },
        )
    if failures:
        # Alerted, not raised: Lambda's retries of a scheduled invocation would sweep (and enqueue, and report)
        # every target again; the next sweep retries the failed ones.
        rt.alerts.send(
            "orphan sweep incomplete",
            {"slot": slot, "failed": len(failures), "failures": failures[:MAX_LISTED_FAILURES]},
        )
        summary["failures"] = failures
    return summary


class SweepCutShort(Exception):
    """The invocation's time budget ran out while a target was being listed."""


class _Sweep:
    """One sweep over every target: per target, one listing of the AMIs that hold snapshots and of the Recycle
    Bin, then the snapshots EC2 made for AMIs, page by page. API calls grow with pages, not snapshots."""

    def __init__(self, rt: CleanupRuntime, context: LambdaContext) -> None:
        self.rt = rt
        self.context = context
        self.start_ms = context.get_remaining_time_in_millis()
        self.now = rt.clock()
        self.cutoff = self.now - rt.config.grace
        self.sender: BatchSender[PurgeSnapshotsMessage] | None = None
        if not rt.config.dry_run:
            self.sender = BatchSender(
                rt.clients.client("sqs"), rt.common.work_queue_url, pace_per_second=PURGES_PER_SECOND
            )
        self.verdicts: dict[str, int] = {}
        self.orphans = 0
        self.enqueued = 0
        self.left_for_next_sweep = 0
        self.would_delete: list[dict[str, Any]] = []
        self.out_of_scope = OutOfScope()

    def out_of_time(self) -> bool:
        """Past this share of the invocation's time, no new page is read: the rest flushes and reports."""
        used = self.start_ms - self.context.get_remaining_time_in_millis()
        return used > TIME_BUDGET_SHARE * self.start_ms

    def target(self, target: Target) -> None:
        ec2 = self.rt.clients.client("ec2", target.region, target.role_arn)
        # Listed before the snapshots: an AMI registered after this listing has snapshots younger than the grace
        # period, so it is never taken for gone.
        holds = image_links.account_holds(ec2)
        recycled = image_links.recycle_bin_image_ids(ec2)
        for page in snapshot_pages(ec2, [image_links.ANY_IMAGE_SNAPSHOT_FILTER]):
            orphans: list[tuple[str, str]] = []
            for snapshot in page:
                image_id = image_links.image_of(snapshot)
                if image_id is None:
                    continue
                verdict = sweep_verdict(snapshot, image_id, holds, recycled, self.cutoff, self.rt.config.rule)
                self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
                if verdict == "out of scope":
                    self.out_of_scope.add(target.region, snapshot, self.rt.config.prices)
                elif verdict == "orphan":
                    orphans.append((str(snapshot["SnapshotId"]), image_id))
            self._hand_over(target, orphans)
            if self.out_of_time():
                raise SweepCutShort(f"{target.describe()}: listing cut short, the invocation's time budget was used")

    def _hand_over(self, target: Target, orphans: list[tuple[str, str]]) -> None:
        self.orphans += len(orphans)
        if self.sender is None:
            room = REPORT_SAMPLE - len(self.would_delete)
            self.would_delete.extend(
                {"region": target.region, "snapshot_id": snapshot_id, "image_id": image_id}
                for snapshot_id, image_id in orphans[: max(0, room)]
            )
            return
        for start in range(0, len(orphans), SNAPSHOTS_PER_MESSAGE):
            chunk = orphans[start : start + SNAPSHOTS_PER_MESSAGE]
            if self.enqueued >= MAX_PURGES_PER_SWEEP:
                # Beyond this the pace would collapse into SQS's 15-minute maximum delay: the next sweep goes on.
                self.left_for_next_sweep += len(chunk)
                continue
            self.enqueued += 1
            self.sender.add(
                new_purge(
                    self.rt,
                    target,
                    [snapshot_id for snapshot_id, _ in chunk],
                    sorted({image_id for _, image_id in chunk}),
                )
            )

    def finish(self) -> list[str]:
        if self.sender is None:
            return []
        self.sender.flush()
        return [f"{unsent.region}: {len(unsent.snapshot_ids)} orphan(s) not enqueued" for unsent in self.sender.unsent]

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"orphans": self.orphans, "verdicts": self.verdicts}
        if self.sender is None:
            summary["would_delete"] = self.would_delete
        else:
            summary["purges_enqueued"] = self.sender.sent
            summary["left_for_next_sweep"] = self.left_for_next_sweep
        return summary
