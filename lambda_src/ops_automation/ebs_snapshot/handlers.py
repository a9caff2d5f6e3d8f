"""EBS snapshots: a scheduled planner that fans out work, and an SQS worker that creates, completes and retires.

schedule → `plan_handler` streams the volumes (volume mode) or instances (instance mode) and enqueues one work item
each → `work_handler` claims (policy, source, slot) in the ledger, makes one CreateSnapshot or one crash-consistent
CreateSnapshots set (tagged at creation) and records it as pending → the EBS snapshot event, or the delayed check as
the safety net, completes the set once → retention deletes older sets of that source, whole sets only.

Restore tests (off unless OPS_RESTORE_TEST is set): `restore_handler`, on its own schedule, plans them → the worker
restores each chosen set as new volumes in the restore subnet's Availability Zone, and the `createVolume` event or
the delayed check decides (core.restore; what is particular to EBS: ebs_snapshot.restore).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from ..core import tagging
from ..core.claims import Claim, claim, claim_key, record_made, release, take_over
from ..core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
from ..core.completion import Observation, complete, request_completion
from ..core.config import CommonConfig
from ..core.errors import (
    INSTANCE_GONE_ERRORS,
    SNAPSHOT_QUOTA_ERRORS,
    SNAPSHOT_RATE_ERRORS,
    VOLUME_GONE_ERRORS,
    ConfigError,
    InvalidInputError,
    MalformedEventError,
    error_code,
    made_nothing,
)
from ..core.events import (
    EBS_VOLUME_NOTIFICATION,
    CheckMessage,
    PurgeSnapshotsMessage,
    ScopeMessage,
    SlotAuditMessage,
    SnapshotEvent,
    decode_volume_notification,
    parse_schedule_event,
    parse_time,
)
from ..core.ledger import LedgerEntry
from ..core.observability import count, logger, metrics
from ..core.planner import audit_slot, plan_scope, plan_slot
from ..core.purge import discard_failed, handle_purge, retire_snapshot_sets
from ..core.restore import RESTORE_DECODERS, handle_if_on, is_restore_item, plan_if_on
from ..core.retention import RetentionItem, RetentionPlan, plan_retention
from ..core.runtime import Lazy, Runtime, build_runtime
from ..core.scope import LazyClient, Target, target_of_event
from ..core.snapshots import SnapshotSet, group_sets, list_snapshots, list_snapshots_by_id, retention_item
from ..core.targeting import Instance, stream_instances, stream_volumes, volumes_attached_to
from ..core.worker import RetryLater, consume_work
from .decisions import (
    CreateSnapshotMessage,
    CreateSnapshotsMessage,
    EbsSnapshotConfig,
    copies_tags_safely,
    create_snapshot_request,
    create_snapshots_request,
    decode_create_snapshot,
    decode_create_snapshots,
    instance_set_plan,
    instance_volumes,
    source_filters,
    source_of,
)
from .restore import EbsRestore

SERVICE = "ebs-snapshot"
DECODERS = {
    "create_snapshot": decode_create_snapshot,
    "create_snapshots": decode_create_snapshots,
    **RESTORE_DECODERS,
    # Restore tests: the test volume's creation ended (result available or failed).
    EBS_VOLUME_NOTIFICATION: decode_volume_notification,
}
# CreateSnapshot(s) draw on an EC2 bucket of 100 requests refilled at 5 per second per account and region, shared
# with AWS Backup, Data Lifecycle Manager and every other tool: work items are handed out at 2 per second (per-message
# SQS delays, up to 15 minutes: 1,800 items), so a large fleet never drains the bucket.
CREATES_PER_SECOND = 2.0
# The events of the calls this module makes; copySnapshot results (snapshot-copy's) are not this module's.
OWN_EVENTS = frozenset({"createSnapshot", "createSnapshots"})

EbsRuntime = Runtime[EbsSnapshotConfig]
SnapshotRequest = CreateSnapshotMessage | CreateSnapshotsMessage


def _build(max_attempts: int) -> EbsRuntime:
    return build_runtime(SERVICE, EbsSnapshotConfig.from_env(), CommonConfig.from_env(), max_attempts=max_attempts)


planner_runtime: Lazy[EbsRuntime] = Lazy(partial(_build, PLANNER_ATTEMPTS))
worker_runtime: Lazy[EbsRuntime] = Lazy(partial(_build, WORKER_ATTEMPTS))


# ---------------------------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Unmatched:
    """Explicit ids that no target region or account has found yet."""

    volumes: set[str]
    instances: set[str]
    skipped: list[str] = field(default_factory=list)


@logger.inject_lambda_context
@metrics.log_metrics
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = planner_runtime()
    slot = parse_schedule_event(event).slot
    logger.append_keys(policy=rt.policy)
    return plan(rt, slot)


def plan(rt: EbsRuntime, slot: str) -> dict[str, Any]:
    """One slot's plan (the operator CLI calls it in a dry run, without the handler's Powertools decorators)."""
    targets = rt.config.targets
    unmatched = Unmatched(set(targets.volume_ids), set(targets.instances.instance_ids))
    summary = plan_slot(
        rt,
        slot,
        lambda ec2, target: plan_target(rt, ec2, target, slot, unmatched),
        not_found=lambda: [
            f"{resource_id}: not found (unknown, deleted, or outside the target regions)"
            for resource_id in sorted(unmatched.volumes | unmatched.instances)
        ],
        nothing_matched=(
            f"nothing matched volume_ids={list(targets.volume_ids)} volume_tags={targets.volume_tag_map} "
            f"instance_ids={list(targets.instances.instance_ids)} instance_tags={targets.instances.tag_map}"
        ),
        # Retrying cannot help a tag typo or an emptied fleet: alerted, not raised.
        nothing_matched_retryable=False,
        dry_run_report=partial(_dry_run_plan, rt, slot=slot),
        pace_per_second=CREATES_PER_SECOND,
    )
    return {**summary, "mode": rt.config.mode, "skipped": unmatched.skipped}


def plan_target(rt: EbsRuntime, ec2: Any, target: Target, slot: str, unmatched: Unmatched) -> Iterator[SnapshotRequest]:
    """The work items of one (region, account), page by page."""
    targets = rt.config.targets
    volume_mode = rt.config.mode == "volume"
    planned_volumes: set[str] = set()
    if volume_mode and targets.targets_volumes:
        volumes = stream_volumes(ec2, targets.volume_ids, targets.volume_tag_map)
        for volume_page in volumes.pages():
            for volume in volume_page:
                planned_volumes.add(volume.volume_id)
                if targets.excludes(volume.tags):
                    unmatched.skipped.append(f"{volume.volume_id}: carries an exclusion tag")
                    continue
                attached = volume.instance_ids[0] if volume.instance_ids else None
                yield _snapshot_message(rt, target, slot, volume.volume_id, attached, volume.tags)
        unmatched.volumes &= set(volumes.missing)
    if not targets.targets_instances:
        return
    instances = stream_instances(ec2, targets.instances.instance_ids, targets.instances.tag_map)
    needs_tags = bool(targets.exclude_volume_tags) or rt.config.copy_volume_tags
    for instance_page in instances.pages():
        tags_by_volume = _volume_tags(ec2, instance_page) if needs_tags else {}
        for instance in instance_page:
            if volume_mode:
                for volume_id in instance_volumes(instance, targets.exclude_root_volume):
                    if volume_id in planned_volumes:
                        continue
                    planned_volumes.add(volume_id)
                    tags = tags_by_volume.get(volume_id, {})
                    if targets.excludes(tags):
                        unmatched.skipped.append(f"{volume_id}: carries an exclusion tag")
                        continue
                    yield _snapshot_message(rt, target, slot, volume_id, instance.instance_id, tags)
            else:
                try:
                    message = _set_message(rt, target, slot, instance, tags_by_volume)
                except InvalidInputError as error:
                    unmatched.skipped.append(str(error))
                    continue
                if message is None:
                    unmatched.skipped.append(f"{instance.instance_id}: every EBS volume is excluded")
                else:
                    yield message
    unmatched.instances &= set(instances.missing)


def plan_one_scope(rt: EbsRuntime, message: ScopeMessage) -> dict[str, Any]:
    """A fanned-out scope, listed by the worker with the planner's own `plan_target`, its creates paced per scope."""
    unmatched = Unmatched(set(), set())
    result = plan_scope(
        rt,
        message,
        lambda ec2, target: plan_target(rt, ec2, target, message.slot, unmatched),
        ttl_days=rt.config.completion.ledger_ttl_days,
        pace_per_second=CREATES_PER_SECOND,
    )
    if unmatched.skipped:
        logger.info("sources skipped", extra={"account": message.account, "skipped": unmatched.skipped})
    return {**result, "skipped": unmatched.skipped}


def _volume_tags(ec2: Any, instances: tuple[Instance, ...]) -> dict[str, Mapping[str, str]]:
    return {volume.volume_id: volume.tags for volume in volumes_attached_to(ec2, [i.instance_id for i in instances])}


def _snapshot_message(
    rt: EbsRuntime, target: Target, slot: str, volume_id: str, instance_id: str | None, tags: Mapping[str, str]
) -> CreateSnapshotMessage:
    carried = tagging.with_copied_tags({}, tags) if rt.config.copy_volume_tags else None
    return CreateSnapshotMessage(rt.policy, volume_id, instance_id, target.region, target.role_arn, slot, carried)


def _set_message(
    rt: EbsRuntime, target: Target, slot: str, instance: Instance, tags_by_volume: Mapping[str, Mapping[str, str]]
) -> CreateSnapshotsMessage | None:
    targets = rt.config.targets
    excluded = [volume for _, volume in instance.ebs_volumes if targets.excludes(tags_by_volume.get(volume, {}))]
    plan = instance_set_plan(instance, targets.exclude_root_volume, excluded)
    if plan is None:
        return None
    exclude_boot, exclude_ids = plan
    copy_tags = rt.config.copy_volume_tags and copies_tags_safely(
        [tags_by_volume.get(volume, {}) for _, volume in instance.ebs_volumes if volume not in exclude_ids]
    )
    return CreateSnapshotsMessage(
        rt.policy, instance.instance_id, target.region, target.role_arn, slot, exclude_boot, exclude_ids, copy_tags
    )


def _dry_run_plan(rt: EbsRuntime, sources: Mapping[Target, list[SnapshotRequest]], slot: str) -> list[dict[str, Any]]:
    """What each source's next successful set would retire, from one listing of the policy's snapshots per target."""
    new_set_time = parse_time(slot, "slot")
    plan: list[dict[str, Any]] = []
    for target, messages in sources.items():
        ec2 = rt.clients.client("ec2", target.region, target.role_arn)
        by_source: dict[str, list[Mapping[str, Any]]] = {}
        for snapshot in list_snapshots(ec2, [{"Name": f"tag:{tagging.POLICY}", "Values": [rt.policy]}]):
            by_source.setdefault(source_of(snapshot, rt.config.mode), []).append(snapshot)
        for source_id in (message.source_id for message in messages):
            sets = [s for s in _source_sets(rt, target, source_id, by_source.get(source_id, [])) if not s.archived]
            items = [item for item in (retention_item(s, rt.policy) for s in sets) if item is not None]
            upcoming = RetentionItem(id="(next snapshot)", created_at=new_set_time, state="available", managed=True)
            retention = _plan(rt, [*items, upcoming])
            by_key = {s.key: s for s in sets}
            plan.append(
                {
                    "region": target.region,
                    "role_arn": target.role_arn,
                    "source_id": source_id,
                    "would_keep": [
                        {"snapshot_ids": list(by_key[k.item.id].ids) if k.item.id in by_key else [], "reason": k.reason}
                        for k in retention.keep
                    ],
                    "would_delete": [
                        {"snapshot_ids": list(by_key[d.item.id].ids), "reason": d.reason} for d in retention.delete
                    ],
                }
            )
    return plan


# ---------------------------------------------------------------------------------------------------------------
# Restore tests
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def restore_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The `restore` function (scheduled by restore_test.schedule_expression): plans the slot's restore tests. It
    only reads; the worker restores."""
    rt = planner_runtime()
    slot = parse_schedule_event(event).slot
    logger.append_keys(policy=rt.policy)
    return plan_restore(rt, slot)


def plan_restore(rt: EbsRuntime, slot: str) -> dict[str, Any]:
    """Restore tests act in one target: `restore_test.region` / `role_arn` (the module's own when null), checked
    against the scope when the config is read (core.restore.restore_config)."""
    return plan_if_on(rt, rt.config.restore, partial(restore_adapter, rt), slot)


def restore_adapter(rt: EbsRuntime) -> EbsRestore:
    """The sets of a source are the module's own (`_source_sets`: instance-mode sets are what the request claim
    recorded), so a restore test restores exactly what retention keeps or retires."""
    restore = rt.config.restore
    if restore is None:  # pragma: no cover - callers check first
        raise ConfigError("OPS_RESTORE_TEST", "", "restore tests are off")
    return EbsRestore(restore, rt.policy, rt.config.mode, partial(_source_sets, rt))


# ---------------------------------------------------------------------------------------------------------------
# Worker
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def work_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = worker_runtime()
    return consume_work(rt, event, context, DECODERS, partial(handle_item, rt))


def handle_item(rt: EbsRuntime, item: Any) -> dict[str, Any]:
    if not isinstance(item, SnapshotEvent) and getattr(item, "policy", rt.policy) != rt.policy:
        raise MalformedEventError(f"message for policy {item.policy!r} reached policy {rt.policy!r}")
    if is_restore_item(item):
        return handle_if_on(rt, rt.config.restore, partial(restore_adapter, rt), item)
    if isinstance(item, CreateSnapshotMessage):
        return create_backup(rt, item, partial(_create_snapshot, rt, item))
    if isinstance(item, CreateSnapshotsMessage):
        return create_backup(rt, item, partial(_create_snapshots, rt, item))
    if isinstance(item, CheckMessage):
        return complete_set(rt, Target(item.region, item.role_arn), item.resource_id, item)
    if isinstance(item, PurgeSnapshotsMessage):
        return handle_purge(rt, item)
    if isinstance(item, ScopeMessage):
        return plan_one_scope(rt, item)
    if isinstance(item, SlotAuditMessage):
        targets = rt.config.targets
        return audit_slot(
            rt,
            item,
            ttl_days=rt.config.completion.ledger_ttl_days,
            nothing_matched=f"volume_tags={targets.volume_tag_map} instance_tags={targets.instances.tag_map}",
        )
    if isinstance(item, SnapshotEvent):
        if item.event not in OWN_EVENTS:
            return {"snapshot_ids": list(item.snapshot_ids), "outcome": "ignored"}
        # The set's ledger id is its lowest snapshot id; a set's event lists every snapshot of the set.
        target = target_of_event(rt.config.scope, item.region, item.account, rt.clients.default_region)
        if target is None:  # outside the fanned-out scope, or an excluded account: never targeted
            return {"snapshot_ids": list(item.snapshot_ids), "outcome": "ignored"}
        return complete_set(rt, target, min(item.snapshot_ids), None)
    raise MalformedEventError(f"no handler for {type(item).__name__}")


def _create_snapshot(rt: EbsRuntime, message: CreateSnapshotMessage, ec2: Any) -> list[str]:
    return [str(ec2.create_snapshot(**create_snapshot_request(rt.policy, message))["SnapshotId"])]


def _create_snapshots(rt: EbsRuntime, message: CreateSnapshotsMessage, ec2: Any) -> list[str]:
    request = create_snapshots_request(rt.policy, message)
    return [str(snapshot["SnapshotId"]) for snapshot in ec2.create_snapshots(**request).get("Snapshots", [])]


def create_backup(rt: EbsRuntime, message: SnapshotRequest, create: Callable[[Any], list[str]]) -> dict[str, Any]:
    """At most one request per (policy, source, slot), whatever the deliveries: CreateSnapshot(s) take no client
    token, so the claim in the ledger stands in for one."""
    target = Target(message.region, message.role_arn)
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    ttl = rt.config.completion.ledger_ttl_days
    log_keys = {"source_id": message.source_id, "region": target.region, "slot": message.slot}
    held = claim(rt, target, message.source_id, message.slot, ttl)
    if held.status == "in_flight":
        raise RetryLater(f"a request for {message.source_id} at {message.slot} is in flight")
    snapshot_ids = list(held.refs)
    outcome = "reused"
    if held.status == "stale":
        snapshot_ids = _made_for_slot(rt, ec2, message)
        if snapshot_ids:
            record_made(rt, held, snapshot_ids, ttl)
        elif not take_over(rt, held, ttl):
            raise RetryLater(f"another delivery took over the request for {message.source_id} at {message.slot}")
    if held.status in ("new", "stale") and not snapshot_ids:
        outcome = "created"
        snapshot_ids = _create_once(rt, held, message, create, log_keys)
        if not snapshot_ids:
            return {"source_id": message.source_id, "outcome": "failed"}
    requested = request_completion(
        rt,
        target,
        min(snapshot_ids),
        message.source_id,
        message.slot,
        rt.config.completion.timeout_minutes,
        ttl,
    )
    logger.info(
        "snapshots requested",
        extra={**log_keys, "snapshot_ids": snapshot_ids, "outcome": outcome, "check_scheduled": requested},
    )
    return {"source_id": message.source_id, "snapshot_ids": snapshot_ids, "outcome": outcome}


def _create_once(
    rt: EbsRuntime, held: Claim, message: SnapshotRequest, create: Callable[[Any], list[str]], log_keys: Any
) -> list[str]:
    """One attempt, no SDK retries (the calls take no client token). A refusal that certainly made nothing releases
    the claim; an unknown outcome (5xx, timeout) keeps it, so the redelivery finds the snapshots by their tags once
    the claim is stale instead of making them twice."""
    ttl = rt.config.completion.ledger_ttl_days
    ec2 = rt.clients.client("ec2", message.region, message.role_arn, retries=False)
    try:
        snapshot_ids = create(ec2)
    except ClientError as error:
        code = error_code(error)
        if not made_nothing(error):
            raise
        release(rt, held, code, ttl)
        if code in SNAPSHOT_RATE_ERRORS:
            raise RetryLater(f"{message.source_id}: {code}") from error
        if code in VOLUME_GONE_ERRORS | INSTANCE_GONE_ERRORS | SNAPSHOT_QUOTA_ERRORS:
            _cannot_back_up(rt, log_keys, code, str(error))
            return []
        raise
    if snapshot_ids:
        record_made(rt, held, snapshot_ids, ttl)
    else:
        release(rt, held, "no volumes", ttl)
        _cannot_back_up(rt, log_keys, "NoVolumes", "the request made no snapshot: no EBS volume left")
    return snapshot_ids


def _made_for_slot(rt: EbsRuntime, ec2: Any, message: SnapshotRequest) -> list[str]:
    """Snapshots an earlier, interrupted delivery made for this slot, found by the tags they were created with."""
    filters = [
        *source_filters(rt.policy, rt.config.mode, message.source_id),
        {"Name": f"tag:{tagging.SLOT}", "Values": [message.slot]},
    ]
    made = list_snapshots(ec2, filters)
    if isinstance(message, CreateSnapshotMessage):
        made = [snapshot for snapshot in made if snapshot.get("VolumeId") == message.volume_id]
    return sorted(str(snapshot["SnapshotId"]) for snapshot in made)


def _cannot_back_up(rt: EbsRuntime, log_keys: Mapping[str, Any], code: str, reason: str) -> dict[str, Any]:
    """Permanent for this slot: alert once and drop the item (retrying cannot help)."""
    rt.alerts.send("source cannot be backed up", {**log_keys, "error_code": code, "reason": reason})
    count("BackupsFailed")
    return {"source_id": log_keys["source_id"], "outcome": "failed", "error_code": code}


def complete_set(rt: EbsRuntime, target: Target, set_key: str, check: CheckMessage | None) -> dict[str, Any]:
    ec2 = LazyClient(lambda: rt.clients.client("ec2", target.region, target.role_arn))
    return complete(
        rt,
        target,
        set_key,
        check,
        observe=partial(_observe, rt, ec2, target, set_key),
        finish=partial(_retain, rt, ec2, target),
        ttl_days=rt.config.completion.ledger_ttl_days,
        discard=lambda _entry, observation: discard_failed(rt, ec2, target, _set_of(observation, set_key)),
    )


def _set_of(observation: Observation, set_key: str) -> SnapshotSet:
    sets: list[SnapshotSet] = observation.listing
    return next(s for s in sets if s.contains(set_key))


def _observe(rt: EbsRuntime, ec2: Any, target: Target, set_key: str, entry: LedgerEntry) -> Observation:
    """One listing of the source's managed snapshots: it tells the set's state and is what retention needs next.
    Snapshots of the set that the listing misses (eventual consistency) are described by id."""
    listing = list_snapshots(ec2, source_filters(rt.policy, rt.config.mode, entry.source_id))
    held = rt.ledger.get(claim_key(rt, target, entry.source_id, entry.slot))
    expected = set(held.refs if held is not None and held.refs else (set_key,))
    unlisted = expected - {str(snapshot["SnapshotId"]) for snapshot in listing}
    if unlisted:
        listing.extend(list_snapshots_by_id(ec2, unlisted))
    sets = _source_sets(rt, target, entry.source_id, listing, known={entry.slot: held})
    this = next((s for s in sets if s.contains(set_key)), None)
    if this is None:
        sets.append(SnapshotSet(entry.slot, (), tuple(sorted(expected))))
        return Observation(
            state=None, reason=f"snapshot(s) {', '.join(sorted(expected))} no longer exist", listing=sets
        )
    return Observation(state=this.state, reason=this.reason, listing=sets)


def _source_sets(
    rt: EbsRuntime,
    target: Target,
    source_id: str,
    listing: Sequence[Mapping[str, Any]],
    known: Mapping[str, LedgerEntry | None] | None = None,
) -> list[SnapshotSet]:
    """The source's sets, with only what this policy made in them. Tags can be copied onto other snapshots (a copy
    of ours carries VolumeId vol-ffffffff), so a volume-mode snapshot must also be of the volume, and an
    instance-mode set is what its request recorded: a member not recorded is left out, a recorded one that is gone
    makes the set incomplete (not a good backup). A set whose record expired is taken as listed. `known`: records
    the caller already read, by slot."""
    if rt.config.mode == "volume":
        return group_sets(snapshot for snapshot in listing if snapshot.get("VolumeId") == source_id)
    sets: list[SnapshotSet] = []
    for listed in group_sets(listing):
        if known is not None and listed.slot in known:
            record = known[listed.slot]
        else:
            record = rt.ledger.get(claim_key(rt, target, source_id, listed.slot))
        if record is None or not record.refs:
            sets.append(listed)
            continue
        made = set(record.refs)
        members = tuple(snapshot for snapshot in listed.snapshots if snapshot["SnapshotId"] in made)
        missing = tuple(sorted(made - {str(snapshot["SnapshotId"]) for snapshot in members}))
        if members:
            sets.append(SnapshotSet(listed.slot, members, missing))
    return sets


def _plan(rt: EbsRuntime, items: list[RetentionItem]) -> RetentionPlan:
    retention = rt.config.retention
    return plan_retention(items, retention.generations, retention.max_age_days, rt.clock())


def _retain(rt: EbsRuntime, ec2: Any, target: Target, entry: LedgerEntry, observation: Observation) -> dict[str, Any]:
    """Retention for the source, now that its newest set completed. Sets in the archive tier are the owner's:
    neither counted nor deleted."""
    sets: list[SnapshotSet] = observation.listing
    archived = [s.key for s in sets if s.archived]
    eligible = {s.key: s for s in sets if not s.archived}
    items = [item for item in (retention_item(s, rt.policy) for s in eligible.values()) if item is not None]
    plan = _plan(rt, items)
    if rt.config.retention.dry_run:
        would_delete = [list(eligible[key].ids) for key in plan.delete_ids]
        logger.info("dry run: nothing retired", extra={"would_delete": would_delete})
        return {"deleted": [], "would_delete": would_delete, "archived_sets": archived}
    retired = retire_snapshot_sets(rt, ec2, target, plan, eligible, rt.config.completion.ledger_ttl_days)
    return {**retired, "archived_sets": archived}
