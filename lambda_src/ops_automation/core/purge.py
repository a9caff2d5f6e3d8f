"""Applying a retention plan: deregister images, then delete their snapshots — only what this policy owns, never a
snapshot another AMI still uses, and never silently leaving one behind.

Right after DeregisterImage, DeleteSnapshot often fails with `InvalidSnapshot.InUse` (eventual consistency), and
DescribeImages may still list the deregistered image for a while. So snapshots are not deleted inline: a delayed
`purge_snapshots` message deletes them later and is re-sent with back-off until each snapshot is deleted, proven
to be used by another registered AMI (disabled AMIs included), or found not to be ours; a snapshot still failing
at the deadline is named in an alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from . import tagging
from .errors import IMAGE_GONE_ERRORS, SNAPSHOT_GONE_ERRORS, SNAPSHOT_IN_USE, THROTTLING_ERRORS, error_code
from .events import PurgeSnapshotsMessage, format_time
from .fanout import backoff_seconds, send_delayed
from .image_links import image_of, list_images, recycle_bin_image_ids, snapshot_ids
from .ledger import LedgerKey
from .observability import count, logger
from .retention import RetentionPlan
from .runtime import Runtime
from .scope import Target
from .snapshots import SnapshotSet, archive_minimum_passed, is_archived, list_snapshots_by_id, locked_snapshot_ids
from .targeting import MAX_FILTER_VALUES, chunked

# The first purge waits for DescribeImages/DeleteSnapshot to catch up with the deregistration.
FIRST_PURGE_DELAY_SECONDS = 300
PURGE_DEADLINE = timedelta(hours=24)
RETRIED_DELETE_ERRORS = frozenset({SNAPSHOT_IN_USE, *THROTTLING_ERRORS})


ArchivedRule = Literal["keep", "after_minimum", "always"]


@dataclass(frozen=True)
class DeletionRule:
    """Which snapshots a caller may delete. `policy`: only that policy's (both ownership tags match); None: any
    snapshot carrying this project's managed-by tag; `any_owner`: any snapshot of the account. A snapshot carrying
    `keep_tag_key` is kept whatever the rule. Archived snapshots are kept (`keep`), deleted once their archive
    tier's minimum period has passed (`after_minimum`), or deleted early at a charge for the rest of it (`always`)."""

    policy: str | None
    any_owner: bool = False
    keep_tag_key: str | None = None
    archived: ArchivedRule = "keep"

    @classmethod
    def of_policy(cls, policy: str) -> DeletionRule:
        return cls(policy=policy)

    def owns(self, tags: Mapping[str, str]) -> bool:
        if self.any_owner:
            return True
        if self.policy is None:
            return tagging.is_managed(tags)
        return tagging.is_owned(tags, self.policy)

    def excludes(self, tags: Mapping[str, str]) -> bool:
        """IAM matches condition keys, tag keys included, without regard to case: so does the code, or a tag the
        Deny protects would be attempted (and refused) again and again."""
        return tagging.carries_key(tags, self.keep_tag_key)


@dataclass(frozen=True)
class Retirement:
    deregistered: tuple[str, ...]
    snapshot_ids: tuple[str, ...]
    errors: tuple[str, ...]


@dataclass
class SnapshotPurge:
    deleted: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    used_by_other_images: dict[str, list[str]] = field(default_factory=dict)
    not_owned: list[str] = field(default_factory=list)
    # Kept on purpose by their owner (snapshot lock), or in the archive tier: reported, never retried.
    locked: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    # Carrying the rule's keep tag, or made for an AMI now in the Recycle Bin (restoring it needs them).
    excluded: list[str] = field(default_factory=list)
    in_recycle_bin: list[str] = field(default_factory=list)
    # Checked and free to delete (not deleted yet when only classified).
    deletable: list[str] = field(default_factory=list)
    # Snapshot id -> error code: to try again later.
    retry: dict[str, str] = field(default_factory=dict)

    def kept(self) -> dict[str, list[str]]:
        """Every snapshot kept on purpose, by reason (for reports)."""
        return {
            "kept_in_use": sorted(self.used_by_other_images),
            "not_owned": self.not_owned,
            "locked": self.locked,
            "archived": self.archived,
            "excluded": self.excluded,
            "in_recycle_bin": self.in_recycle_bin,
        }


PURGE_NOT_QUEUED = "snapshots of retired AMIs could not be queued for deletion"


def retire_images(
    rt: Runtime[Any],
    ec2: Any,
    target: Target,
    plan: RetentionPlan,
    images_by_id: Mapping[str, Mapping[str, Any]],
    ttl_days: int,
) -> Retirement:
    """Deregister the plan's images that carry this policy's ownership tags, record them as deleted, and schedule the
    deletion of their snapshots. One failing image does not stop the others."""
    deregistered: list[Mapping[str, Any]] = []
    errors: list[str] = []
    for decision in plan.delete:
        image = images_by_id[decision.item.id]
        log_keys = {"image_id": decision.item.id, "region": target.region}
        if not tagging.is_owned(image.get("Tags"), rt.policy):
            logger.warning("retention skipped an image without ownership tags", extra=log_keys)
            continue
        try:
            ec2.deregister_image(ImageId=decision.item.id)
        except ClientError as error:
            if error_code(error) not in IMAGE_GONE_ERRORS:
                logger.error("deregister failed", extra={**log_keys, "error_code": error_code(error)})
                errors.append(f"{decision.item.id}: {error_code(error)}")
                continue
        logger.info("image deregistered", extra={**log_keys, "reason": decision.reason})
        deregistered.append(image)
        key = LedgerKey(rt.service, rt.policy, target.account, target.region, decision.item.id)
        rt.ledger.transition(key, "deleted", rt.clock(), ttl_days, reason=decision.reason)
    if deregistered:
        # A count in the log, not a metric: every metric name is billed for each hour it receives data.
        logger.info("retention applied", extra={"region": target.region, "deregistered": len(deregistered)})
    snapshots = snapshot_ids(deregistered)
    if snapshots:
        released = [str(image["ImageId"]) for image in deregistered]
        try:
            schedule_purge(rt, target, snapshots, released, FIRST_PURGE_DELAY_SECONDS)
        except (ClientError, BotoCoreError) as error:
            # A deregistered AMI is never listed again, so a retry could not find these snapshots: they are named
            # now instead of being left behind silently (make soak, ami_backup seed 14). The purge stays after the
            # deregistration on purpose: queued before it, a deregistration that then failed would leave a purge
            # that no longer counts that still-registered AMI as holding its data-volume snapshots.
            rt.alerts.send(
                PURGE_NOT_QUEUED,
                {
                    "region": target.region,
                    "role_arn": target.role_arn,
                    "snapshots": snapshots,
                    "deregistered_image_ids": released,
                    "error": str(error),
                },
            )
            count("SnapshotsLeaked", len(snapshots))
    return Retirement(tuple(str(image["ImageId"]) for image in deregistered), tuple(snapshots), tuple(errors))


def purge_snapshots(
    ec2: Any,
    rule: DeletionRule,
    candidates: Sequence[str],
    released_image_ids: Iterable[str],
    listed: Iterable[Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> SnapshotPurge:
    """Delete the candidates the rule owns and no registered AMI (disabled ones included) maps; keep (and report)
    locked ones, those in the archive tier (unless the rule says otherwise) and those of AMIs in the Recycle Bin."""
    result = classify_snapshots(ec2, rule, candidates, released_image_ids, check_locks=False, listed=listed, now=now)
    for index, snapshot_id in enumerate(result.deletable):
        _delete(ec2, snapshot_id, result)
        if result.retry.get(snapshot_id) in THROTTLING_ERRORS:
            # The account's DeleteSnapshot bucket is empty: the rest waits for the retry instead of draining it.
            result.retry.update(dict.fromkeys(result.deletable[index + 1 :], result.retry[snapshot_id]))
            break
    return result


def classify_snapshots(
    ec2: Any,
    rule: DeletionRule,
    candidates: Sequence[str],
    released_image_ids: Iterable[str],
    check_locks: bool = True,
    listed: Iterable[Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> SnapshotPurge:
    """Which candidates may be deleted, and why each other one is kept; deletes nothing. Without `check_locks` a
    lock is found only when a deletion is refused (one call fewer when nothing is locked, as is usual). `listed`:
    the candidates as the caller listed them moments ago (tags and descriptions included), instead of describing
    them again. `now` is needed when the rule deletes archived snapshots after their minimum period."""
    result = SnapshotPurge()
    released = set(released_image_ids)
    # A deregistered AMI kept by a Recycle Bin retention rule can be restored only with its snapshots.
    recycled = recycle_bin_image_ids(ec2, released) if released else set()
    in_use: dict[str, list[str]] = {}
    for chunk in chunked(sorted(candidates), MAX_FILTER_VALUES):
        # IncludeDisabled: a disabled AMI is omitted by default but still needs its snapshots.
        for image in list_images(
            ec2, [{"Name": "block-device-mapping.snapshot-id", "Values": chunk}], include_disabled=True
        ):
            if image["ImageId"] in released or image.get("State") == "deregistered":
                continue
            for snapshot in set(snapshot_ids([image])) & set(chunk):
                in_use.setdefault(snapshot, []).append(str(image["ImageId"]))
    result.used_by_other_images = in_use
    unused = [s for s in candidates if s not in in_use]
    snapshots = list(listed) if listed is not None else list_snapshots_by_id(ec2, unused)
    listing = _Listing.of(snapshots, unused, rule, recycled)
    owned, existing, archived = listing.owned, listing.existing, listing.archived
    if rule.archived == "always":
        archived = set()
    elif rule.archived == "after_minimum" and archived:
        if now is None:
            raise ValueError("classify_snapshots needs `now` to apply the archive tier's minimum period")
        archived = archived - archive_minimum_passed(ec2, archived, now)
    locked = locked_snapshot_ids(ec2, owned - archived) if check_locks and owned - archived else set()
    for snapshot_id in candidates:
        log_keys = {"snapshot_id": snapshot_id}
        if snapshot_id in in_use:
            logger.info("snapshot kept: another AMI uses it", extra={**log_keys, "image_ids": in_use[snapshot_id]})
        elif snapshot_id not in existing:
            result.gone.append(snapshot_id)
        elif snapshot_id in listing.recycled:
            logger.info("snapshot kept: its AMI is in the Recycle Bin", extra=log_keys)
            result.in_recycle_bin.append(snapshot_id)
        elif snapshot_id in listing.excluded:
            logger.info("snapshot kept: exclusion tag", extra={**log_keys, "tag_key": rule.keep_tag_key})
            result.excluded.append(snapshot_id)
        elif snapshot_id not in owned:
            logger.warning("snapshot kept: no ownership tags", extra=log_keys)
            result.not_owned.append(snapshot_id)
        elif snapshot_id in archived:
            # Deleting it early is billed for the rest of the archive tier's minimum period: the owner's call.
            logger.warning("snapshot kept: in the archive tier", extra=log_keys)
            result.archived.append(snapshot_id)
        elif snapshot_id in locked:
            logger.warning("snapshot kept: locked", extra=log_keys)
            result.locked.append(snapshot_id)
        else:
            result.deletable.append(snapshot_id)
    return result


def _delete(ec2: Any, snapshot_id: str, result: SnapshotPurge) -> None:
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except ClientError as error:
        code = error_code(error)
        if code in SNAPSHOT_GONE_ERRORS:
            result.gone.append(snapshot_id)
        elif code not in RETRIED_DELETE_ERRORS and snapshot_id in locked_snapshot_ids(ec2, [snapshot_id]):
            # Refused with a code AWS does not document for locks: the lock is asked for, and a locked snapshot is
            # kept on purpose by its owner, never retried.
            logger.warning("snapshot kept: locked", extra={"snapshot_id": snapshot_id, "error_code": code})
            result.locked.append(snapshot_id)
        else:
            # InvalidSnapshot.InUse here is the deregistration not yet visible: transient, retried.
            logger.warning("snapshot deletion deferred", extra={"snapshot_id": snapshot_id, "error_code": code})
            result.retry[snapshot_id] = code
        return
    result.deleted.append(snapshot_id)
    logger.info("snapshot deleted", extra={"snapshot_id": snapshot_id})


@dataclass(frozen=True)
class _Listing:
    existing: set[str]
    owned: set[str]
    archived: set[str]
    excluded: set[str]
    recycled: set[str]

    @classmethod
    def of(
        cls, snapshots: Iterable[Mapping[str, Any]], candidates: Sequence[str], rule: DeletionRule, recycled: set[str]
    ) -> _Listing:
        listing = cls(set(), set(), set(), set(), set())
        wanted = set(candidates)
        for snapshot in snapshots:
            snapshot_id = str(snapshot["SnapshotId"])
            if snapshot_id not in wanted:
                continue
            tags = tagging.tag_dict(snapshot.get("Tags"))
            listing.existing.add(snapshot_id)
            if rule.owns(tags):
                listing.owned.add(snapshot_id)
            if rule.excludes(tags):
                listing.excluded.add(snapshot_id)
            if is_archived(snapshot):
                listing.archived.add(snapshot_id)
            if recycled and image_of(snapshot) in recycled:
                listing.recycled.add(snapshot_id)
        return listing


def handle_purge(rt: Runtime[Any], message: PurgeSnapshotsMessage, rule: DeletionRule | None = None) -> dict[str, Any]:
    """One attempt; what must be retried goes back on the queue with back-off, or is alerted past the deadline.
    `rule`: what may be deleted (default: this policy's own snapshots)."""
    ec2 = rt.clients.client("ec2", message.region, message.role_arn)
    rule = rule or DeletionRule.of_policy(rt.policy)
    now = rt.clock()
    result = purge_snapshots(ec2, rule, message.snapshot_ids, message.released_image_ids, now=now)
    summary: dict[str, Any] = {"deleted": result.deleted, **result.kept()}
    if not result.retry:
        return {**summary, "outcome": "purged"}
    if now >= message.deadline_time:
        rt.alerts.send(
            "snapshots left behind after their AMI was deregistered"
            if message.released_image_ids
            else "snapshots left behind: their deletion kept failing",
            {
                "region": message.region,
                "role_arn": message.role_arn,
                "snapshots": result.retry,
                "deregistered_image_ids": list(message.released_image_ids),
                "attempts": message.attempt,
            },
        )
        count("SnapshotsLeaked", len(result.retry))
        return {**summary, "outcome": "leaked", "leaked": sorted(result.retry)}
    retry = PurgeSnapshotsMessage(
        message.policy,
        message.region,
        message.role_arn,
        tuple(sorted(result.retry)),
        message.released_image_ids,
        message.deadline,
        message.attempt + 1,
    )
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, retry, backoff_seconds(message.attempt + 1))
    return {**summary, "outcome": "retrying", "retry": sorted(result.retry)}


def retire_snapshot_sets(
    rt: Runtime[Any],
    ec2: Any,
    target: Target,
    plan: RetentionPlan,
    sets_by_key: Mapping[str, SnapshotSet],
    ttl_days: int,
) -> dict[str, Any]:
    """Delete the plan's sets whole: a set one of whose snapshots must stay (used by an AMI, locked, in the archive
    tier, not owned) is kept entirely, the others are deleted entirely. What must be retried goes to a delayed
    `purge_snapshots` message (the same retries and final alert as an AMI's snapshots)."""
    retired = [sets_by_key[decision.item.id] for decision in plan.delete]
    candidates = [snapshot_id for snapshot_set in retired for snapshot_id in snapshot_set.ids]
    if not candidates:
        return {"deleted": [], "kept": {}}
    # Locks are asked for up front only where one locked snapshot must keep others (multi-volume sets).
    check_locks = any(len(snapshot_set.ids) > 1 for snapshot_set in retired)
    # The sets come from the completion's listing of moments ago: the snapshots are not described again.
    listed = [snapshot for snapshot_set in retired for snapshot in snapshot_set.snapshots]
    checked = classify_snapshots(
        ec2, DeletionRule.of_policy(rt.policy), candidates, (), check_locks=check_locks, listed=listed
    )
    reasons = {
        **{snapshot_id: "used by " + ", ".join(images) for snapshot_id, images in checked.used_by_other_images.items()},
        **{snapshot_id: "not owned by this policy" for snapshot_id in checked.not_owned},
        **{snapshot_id: "locked" for snapshot_id in checked.locked},
        **{snapshot_id: "archive tier" for snapshot_id in checked.archived},
        **{snapshot_id: "exclusion tag" for snapshot_id in checked.excluded},
    }
    result = SnapshotPurge(gone=list(checked.gone))
    kept: dict[str, dict[str, str]] = {}
    for snapshot_set in retired:
        holding = {snapshot_id: reasons[snapshot_id] for snapshot_id in snapshot_set.ids if snapshot_id in reasons}
        if holding:
            kept[snapshot_set.key] = holding
            continue
        for snapshot_id in snapshot_set.ids:
            if snapshot_id in checked.deletable:
                _delete(ec2, snapshot_id, result)
        locked_now = {snapshot_id: "locked" for snapshot_id in snapshot_set.ids if snapshot_id in result.locked}
        if locked_now:
            # A lock found only when the deletion was refused (single-snapshot sets are not asked for up front).
            kept[snapshot_set.key] = locked_now
            continue
        # Retired once deletion started; the purge message's retries and final alert account for the rest.
        rt.ledger.transition(
            LedgerKey(rt.service, rt.policy, target.account, target.region, snapshot_set.key),
            "deleted",
            rt.clock(),
            ttl_days,
            reason="retention",
        )
    retry_later(rt, target, result.retry)
    if kept:
        logger.info("retention kept whole sets", extra={"region": target.region, "kept": kept})
    return {"deleted": result.deleted, "kept": kept, "retrying": sorted(result.retry)}


def discard_failed(rt: Runtime[Any], ec2: Any, target: Target, snapshot_set: SnapshotSet) -> dict[str, Any]:
    """Delete the set's own snapshots in `error`: they are no backup, and they count against the volume's limit of
    concurrent snapshots until deleted (5 per volume, 1 for st1/sc1), so keeping them would stop its backups."""
    failed = list(snapshot_set.failed_ids)
    if not failed:
        return {}
    result = purge_snapshots(ec2, DeletionRule.of_policy(rt.policy), failed, ())
    retry_later(rt, target, result.retry)
    return {"discarded": result.deleted, "discard_retrying": sorted(result.retry)}


def retry_later(
    rt: Runtime[Any], target: Target, retry: Mapping[str, str], released_image_ids: Sequence[str] = ()
) -> None:
    """Deletions refused for a passing reason go to a delayed `purge_snapshots` message, retried until 24 hours."""
    if retry:
        schedule_purge(rt, target, sorted(retry), released_image_ids, backoff_seconds(1))


def new_purge(
    rt: Runtime[Any], target: Target, snapshot_ids: Sequence[str], released_image_ids: Sequence[str]
) -> PurgeSnapshotsMessage:
    """A first `purge_snapshots` message, due to be done within `PURGE_DEADLINE` from now."""
    return PurgeSnapshotsMessage(
        rt.policy,
        target.region,
        target.role_arn,
        tuple(snapshot_ids),
        tuple(released_image_ids),
        format_time(rt.clock() + PURGE_DEADLINE),
    )


def schedule_purge(
    rt: Runtime[Any],
    target: Target,
    snapshot_ids: Sequence[str],
    released_image_ids: Sequence[str],
    delay_seconds: float,
) -> None:
    message = new_purge(rt, target, snapshot_ids, released_image_ids)
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, message, delay_seconds)
