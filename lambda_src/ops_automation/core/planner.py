"""The planner every module shares: for each (region, account) of the scope, stream the module's work items onto
the work queue — or, in a dry run, collect them for the module's report — then name every failure once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from .errors import PartialFailure
from .events import WorkMessage
from .fanout import BatchSender
from .observability import count, logger
from .runtime import Runtime
from .scope import Target, targets_of

M = TypeVar("M", bound=WorkMessage)


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
) -> dict[str, Any]:
    """`work_of(ec2, target)` yields one target's work items; `not_found()` (called once every target was listed)
    names the explicit ids none of them found. A target that could not be listed and work that could not be
    enqueued are retryable: alerted, then raised so the invocation is retried (its duplicates are idempotent).
    Ids not found are alerted only. When nothing matched at all, `nothing_matched` is alerted, and raised too when
    `nothing_matched_retryable`; None: the module judges what it found itself (in `not_found`)."""
    dry_run: bool = rt.config.retention.dry_run
    failures: list[str] = []
    sender: BatchSender[M] | None = None
    if not dry_run:
        sender = BatchSender(rt.clients.client("sqs"), rt.common.work_queue_url, pace_per_second=pace_per_second)
    planned = 0
    collected: dict[Target, list[M]] = {}
    for target in targets_of(rt.config.scope, rt.clients.default_region):
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


def _source_of(message: Any) -> str:
    """Every module's create message names its source (instance or volume) as `source_id`."""
    return str(message.source_id)
