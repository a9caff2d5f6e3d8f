"""Disaster-recovery copies: a source's completion event (or the scheduled catch-up) enqueues one copy per
destination; the worker copies it in the destination region, once; the copy's completion event (forwarded from the
destination region) or the delayed check completes it; retention keeps the destination's generations per lineage.

source completes → `copy` work item per destination → claim (source, destination) in the ledger, adopt a copy
found by its tags, else CopySnapshot/CopyImage in the destination region with SourceRegion (tagged at creation) →
pending → `copySnapshot` / `EC2 AMI State Change` event, or the delayed check → retention of that lineage there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from ..core import tagging
from ..core.claims import IN_FLIGHT, Claim, claim, claim_key, record_made, release, reopen, take_over
from ..core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
from ..core.completion import Observation, complete, request_completion
from ..core.config import CommonConfig
from ..core.errors import (
    IMAGE_GONE_ERRORS,
    SNAPSHOT_GONE_ERRORS,
    THROTTLING_ERRORS,
    ConfigError,
    MalformedEventError,
    PartialFailure,
    error_code,
    is_throttling,
    made_nothing,
)
from ..core.events import (
    AmiStateChange,
    CheckMessage,
    PurgeSnapshotsMessage,
    SnapshotEvent,
    format_time,
    parse_schedule_event,
    parse_time,
)
from ..core.fanout import BatchSender, backoff_seconds, send_delayed
from ..core.image_links import image_pages, image_state, list_images, list_images_by_id, snapshot_ids
from ..core.ledger import LOCAL_ACCOUNT, LedgerEntry
from ..core.observability import count, logger, metrics
from ..core.planner import plan_slot
from ..core.purge import (
    FIRST_PURGE_DELAY_SECONDS,
    discard_failed,
    handle_purge,
    retire_images,
    retire_snapshot_sets,
    schedule_purge,
)
from ..core.retention import RetentionItem, RetentionPlan, State, plan_retention
from ..core.runtime import Lazy, Runtime, build_runtime
from ..core.scope import Target
from ..core.snapshots import (
    SnapshotSet,
    is_archived,
    list_snapshots,
    list_snapshots_by_id,
    snapshot_pages,
    snapshot_state,
)
from ..core.worker import RetryLater, consume_work
from .decisions import (
    MAX_WAITS,
    MISSED_COMPLETION_DURATION,
    CopyMessage,
    Destination,
    MissedCompletionDuration,
    SnapshotCopyConfig,
    Source,
    copied_source_id,
    copy_created_at,
    copy_image_request,
    copy_snapshot_request,
    decode_copy,
    decode_missed_duration,
    image_source,
    snapshot_source,
    sources_to_hold,
)

SERVICE = "snapshot-copy"
DECODERS = {"copy": decode_copy, MISSED_COMPLETION_DURATION: decode_missed_duration}
# One claim per (source, destination region and account): the ledger key holds the destination.
CLAIM_SLOT = "copy"
# The source-side events this module copies after; copySnapshot results are its own copies completing.
SOURCE_EVENTS = frozenset({"createSnapshot", "createSnapshots"})
COPY_EVENT = "copySnapshot"
# The destination's limit of concurrent copies (20, once 5: not hard-coded); a slot frees when one of them
# completes (minutes to hours), so the item waits at least 5 minutes.
COPY_LIMIT = "ResourceLimitExceeded"
COPY_SLOT_WAIT_SECONDS = 300
# Refusals that pass by themselves: the copy limit, throttling, the region's pending-snapshot limit, a source not
# completed yet. They wait, they never alert.
BACK_PRESSURE_ERRORS = frozenset(
    {COPY_LIMIT, "PendingSnapshotLimitExceeded", "IncorrectState", "InvalidState", *THROTTLING_ERRORS}
)
SOURCE_GONE_ERRORS = SNAPSHOT_GONE_ERRORS | IMAGE_GONE_ERRORS
# Refusals the same request can never get past (an undocumented code of a time-based copy is not among them).
PERMANENT_ERRORS = frozenset(
    {
        "UnauthorizedOperation",
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "InvalidRegion",
        "SnapshotLimitExceeded",
        "SnapshotCopyUnsupported.InterRegion",
        "IdempotentParameterMismatch",
        "CustomerKeyHasBeenRevoked",
        "InvalidAMIName.Duplicate",
        "InvalidSnapshotID.Malformed",
        "InvalidAMIID.Malformed",
    }
)
# The reason a claim released for back-pressure carries: its item waits in the queue, and a new item for the same
# source and destination (an event, the next catch-up) is dropped while the waiting one is alive (its next try is
# at most 15 minutes away).
WAITING = "waiting: "
WAIT_CHAIN_ALIVE = timedelta(minutes=30)
# The catch-up hands copies out at most this fast; the destination's concurrent-copy limit does the rest.
COPIES_PER_SECOND = 1.0
AWS_MANAGED_EBS_KEY = "alias/aws/ebs"
LIVE_STATES: frozenset[State] = frozenset({"pending", "available"})

CopyRuntime = Runtime[SnapshotCopyConfig]


def _build(max_attempts: int) -> CopyRuntime:
    rt = build_runtime(SERVICE, SnapshotCopyConfig.from_env(), CommonConfig.from_env(), max_attempts=max_attempts)
    own = rt.clients.default_region
    for destination in rt.config.destinations:
        if destination.region == own and not destination.cross_account:
            # The origin's bug: a "DR copy" that never left the source region.
            raise ConfigError("OPS_COPY_DESTINATIONS", destination.region, "is the source region itself")
    return rt


planner_runtime: Lazy[CopyRuntime] = Lazy(partial(_build, PLANNER_ATTEMPTS))
worker_runtime: Lazy[CopyRuntime] = Lazy(partial(_build, WORKER_ATTEMPTS))


# ---------------------------------------------------------------------------------------------------------------
# Sources and copies, for snapshots and for AMIs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """What differs between copying snapshots (CopySnapshot) and AMIs (CopyImage)."""

    source_tag: str
    lineage_tag: str
    list_resources: Callable[[Any, list[dict[str, Any]]], list[dict[str, Any]]]
    # The same listing page by page: the planner keeps what it needs of each, never every full description.
    pages: Callable[[Any, list[dict[str, Any]]], Iterator[list[dict[str, Any]]]]
    by_ids: Callable[[Any, Iterable[str]], list[dict[str, Any]]]
    to_source: Callable[[Mapping[str, Any], str], Source]
    id_key: str
    state: Callable[[Mapping[str, Any]], State | None]
    reason: Callable[[Mapping[str, Any]], str]
    request: Callable[[str, Source, Destination, bool, str], dict[str, Any]]
    call: str
    # Whether the copy call takes a client token (then the SDK may retry it).
    idempotent: bool

    def sources(self, ec2: Any, filters: list[dict[str, Any]], region: str) -> list[Source]:
        return [self.to_source(resource, region) for page in self.pages(ec2, filters) for resource in page]

    def copies(
        self, ec2: Any, policy: str, source_region: str, tags: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """This policy's copies in a destination, of one source region (and carrying `tags`)."""
        return self.list_resources(ec2, _copy_filters(policy, source_region, tags))

    def copied_source_ids(self, ec2: Any, policy: str, source_region: str) -> set[str | None]:
        """The sources this policy's live copies in a destination were made of (one source region), page by page."""
        return {
            copied_source_id(tagging.tag_dict(copy.get("Tags")))
            for page in self.pages(ec2, _copy_filters(policy, source_region, None))
            for copy in page
            if self.state(copy) in LIVE_STATES
        }

    def copy(
        self, ec2: Any, policy: str, source: Source, destination: Destination, encrypted: bool, attempt: str
    ) -> str:
        response = getattr(ec2, self.call)(**self.request(policy, source, destination, encrypted, attempt))
        return str(response[self.id_key])


def _copy_filters(policy: str, source_region: str, tags: Mapping[str, str] | None) -> list[dict[str, Any]]:
    wanted = {
        tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
        tagging.POLICY: policy,
        tagging.SOURCE_REGION: source_region,
        **(tags or {}),
    }
    return [{"Name": f"tag:{key}", "Values": [value]} for key, value in wanted.items()]


SNAPSHOTS = _Kind(
    source_tag=tagging.SOURCE_SNAPSHOT,
    lineage_tag=tagging.SOURCE_VOLUME,
    list_resources=list_snapshots,
    pages=snapshot_pages,
    by_ids=list_snapshots_by_id,
    to_source=snapshot_source,
    id_key="SnapshotId",
    state=snapshot_state,
    reason=lambda copy: str(copy.get("StateMessage") or ""),
    request=lambda policy, source, destination, encrypted, _attempt: copy_snapshot_request(
        policy, source, destination, encrypted
    ),
    call="copy_snapshot",
    idempotent=False,
)
IMAGES = _Kind(
    source_tag=tagging.SOURCE_IMAGE,
    lineage_tag=tagging.SOURCE_INSTANCE,
    list_resources=list_images,
    pages=image_pages,
    by_ids=list_images_by_id,
    to_source=image_source,
    id_key="ImageId",
    state=image_state,
    reason=lambda copy: str((copy.get("StateReason") or {}).get("Message") or ""),
    request=copy_image_request,
    call="copy_image",
    idempotent=True,
)


def _kind(rt: CopyRuntime) -> _Kind:
    return IMAGES if rt.config.copy_images else SNAPSHOTS


def _copy_id(kind: _Kind, copy: Mapping[str, Any]) -> str:
    return str(copy[kind.id_key])


# ---------------------------------------------------------------------------------------------------------------
# Planner: the scheduled catch-up
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Found:
    unmatched: set[str]
    sources: int = 0
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@logger.inject_lambda_context
@metrics.log_metrics
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Every source the destinations should hold and do not (a lost event, a copy that failed, a new destination)
    gets a copy work item; sources already copied cost one listing per destination, nothing more."""
    rt = planner_runtime()
    slot = parse_schedule_event(event).slot
    logger.append_keys(policy=rt.policy)
    return plan(rt, slot)


def plan(rt: CopyRuntime, slot: str) -> dict[str, Any]:
    """One slot's plan (the operator CLI calls it in a dry run, without the handler's Powertools decorators)."""
    selection = rt.config.sources
    found = _Found(set(selection.ids))

    def not_found() -> list[str]:
        # Destinations that could not be listed are named in plan_slot's one alert, then raised below (retried).
        missing = [f"{source_id}: not found (unknown, deleted, or in another region)" for source_id in found.unmatched]
        if not found.sources:
            # A tag typo or a renamed source policy must not go quiet: a DR policy that copies nothing is a failure.
            missing.append(
                f"no source matched source_policies={list(selection.policies)} source_ids={list(selection.ids)} "
                f"source_tags={dict(selection.tags)}"
            )
        return [*found.failures, *missing]

    summary = plan_slot(
        rt,
        slot,
        lambda ec2, target: _plan_target(rt, ec2, target, found),
        not_found=not_found,
        nothing_matched=None,
        nothing_matched_retryable=False,
        dry_run_report=_dry_run_plan,
        pace_per_second=COPIES_PER_SECOND,
    )
    if found.failures:
        raise PartialFailure(found.failures)
    return {**summary, "sources": found.sources, "skipped": found.skipped}


def _plan_target(rt: CopyRuntime, ec2: Any, target: Target, found: _Found) -> Iterable[CopyMessage]:
    kind = _kind(rt)
    sources: dict[str, Source] = {}
    for filters in rt.config.sources.filter_sets(rt.config.kind):
        for source in kind.sources(ec2, filters, target.region):
            if tagging.is_owned(source.tags, rt.policy):
                continue  # a copy of ours is never a source again
            sources[source.resource_id] = source
    found.unmatched -= set(sources)
    found.sources += len(sources)
    retention = rt.config.retention
    held = sources_to_hold(sources.values(), retention.generations, retention.max_age_days, rt.clock())
    found.skipped.extend(
        f"{s.resource_id}: in the archive tier, cannot be copied" for s in sources.values() if s.archived
    )
    for destination in rt.config.destinations:
        try:
            dest_ec2 = rt.clients.client("ec2", destination.region, destination.role_arn)
            copied = kind.copied_source_ids(dest_ec2, rt.policy, target.region)
        except (ClientError, BotoCoreError) as error:
            # One destination (a DR role not deployed yet, a throttle) must not stop the others' catch-up.
            logger.exception("destination not listed", extra={"destination_region": destination.region})
            found.failures.append(f"{destination.region}/{destination.role_arn or 'own account'}: {error}")
            continue
        for source in held:
            if source.resource_id not in copied:
                yield CopyMessage(
                    rt.policy, source.resource_id, target.region, destination.region, destination.role_arn
                )


def _dry_run_plan(collected: Mapping[Target, list[CopyMessage]]) -> list[dict[str, Any]]:
    return [
        {"source_id": message.source_id, "destination_region": message.destination_region}
        for messages in collected.values()
        for message in messages
    ]


# ---------------------------------------------------------------------------------------------------------------
# Worker
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def work_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = worker_runtime()
    own_account = context.invoked_function_arn.split(":")[4]
    return consume_work(rt, event, context, DECODERS, partial(handle_item, rt, own_account))


def handle_item(rt: CopyRuntime, own_account: str, item: Any) -> dict[str, Any]:
    if isinstance(item, (CopyMessage, CheckMessage, PurgeSnapshotsMessage)) and item.policy != rt.policy:
        raise MalformedEventError(f"message for policy {item.policy!r} reached policy {rt.policy!r}")
    if isinstance(item, CopyMessage):
        return copy_source(rt, item)
    if isinstance(item, CheckMessage):
        return complete_copy(rt, Target(item.region, item.role_arn), item.resource_id, item)
    if isinstance(item, PurgeSnapshotsMessage):
        return handle_purge(rt, item)
    if isinstance(item, SnapshotEvent):
        if item.event in SOURCE_EVENTS and item.succeeded and not rt.config.copy_images:
            return source_completed(rt, own_account, item.region, item.account, item.snapshot_ids)
        if item.event == COPY_EVENT and not rt.config.copy_images:
            return _copy_event(rt, own_account, item.region, item.account, item.snapshot_ids[0])
        return {"snapshot_ids": list(item.snapshot_ids), "outcome": "ignored"}
    if isinstance(item, AmiStateChange):
        if not rt.config.copy_images:
            return {"image_id": item.image_id, "outcome": "ignored"}
        if item.region == rt.clients.default_region and item.account == own_account:
            if item.state != "available":
                return {"image_id": item.image_id, "outcome": "ignored"}
            return source_completed(rt, own_account, item.region, item.account, (item.image_id,))
        return _copy_event(rt, own_account, item.region, item.account, item.image_id)
    if isinstance(item, MissedCompletionDuration):
        return missed_duration(rt, own_account, item)
    raise MalformedEventError(f"no handler for {type(item).__name__}")


def _destination_of(rt: CopyRuntime, own_account: str, region: str, account: str) -> Destination | None:
    return rt.config.destination(region, LOCAL_ACCOUNT if account == own_account else account)


def _copy_event(rt: CopyRuntime, own_account: str, region: str, account: str, copy_id: str) -> dict[str, Any]:
    destination = _destination_of(rt, own_account, region, account)
    if destination is None:
        return {"resource_id": copy_id, "outcome": "ignored"}
    return complete_copy(rt, destination.target, copy_id, None)


def source_completed(
    rt: CopyRuntime, own_account: str, region: str, account: str, resource_ids: Sequence[str]
) -> dict[str, Any]:
    """A source-region backup completed: one copy work item per destination, if it is a source of this policy.
    The event says nothing of tags: the resources are described (one call)."""
    if region != rt.clients.default_region or account != own_account:
        return {"resource_ids": list(resource_ids), "outcome": "ignored"}
    kind = _kind(rt)
    ec2 = rt.clients.client("ec2", region)
    sources = [kind.to_source(resource, region) for resource in kind.by_ids(ec2, resource_ids)]
    # Not filtered on `completed`: DescribeSnapshots may lag the event; the copy item waits for the source instead.
    selected = [
        s
        for s in sources
        if rt.config.sources.selects(s.resource_id, s.tags) and not tagging.is_owned(s.tags, rt.policy)
    ]
    if not selected:
        return {"resource_ids": list(resource_ids), "outcome": "not_a_source"}
    sender: BatchSender[CopyMessage] = BatchSender(rt.clients.client("sqs"), rt.common.work_queue_url)
    for source in selected:
        for destination in rt.config.destinations:
            sender.add(CopyMessage(rt.policy, source.resource_id, region, destination.region, destination.role_arn))
    sender.flush()
    if sender.unsent:
        # The event is retried whole; copies already enqueued are deduplicated by their claims.
        raise RuntimeError(f"{len(sender.unsent)} copy work item(s) not enqueued")
    return {"source_ids": [s.resource_id for s in selected], "outcome": "enqueued", "enqueued": sender.sent}


def copy_source(rt: CopyRuntime, message: CopyMessage) -> dict[str, Any]:
    """At most one copy per (source, destination region and account), whatever the deliveries: CopySnapshot takes
    no client token, so a claim in the ledger and the copies' tags stand in for one."""
    destination = rt.config.destination_of(message.destination_region, message.destination_role_arn)
    log_keys = {"source_id": message.source_id, "destination_region": message.destination_region}
    if destination is None:
        raise MalformedEventError(f"{message.destination_region} is not a destination of policy {rt.policy}")
    kind = _kind(rt)
    target = destination.target
    ttl = rt.config.completion.ledger_ttl_days
    if message.waits == 0 and _already_waiting(rt, target, message.source_id):
        # A new item (an event, the next catch-up) for a source whose earlier item waits for a free copy slot.
        return {**log_keys, "outcome": "already_waiting"}
    dest_ec2 = rt.clients.client("ec2", destination.region, destination.role_arn)
    held = claim(rt, target, message.source_id, CLAIM_SLOT, ttl)
    if held.status == "in_flight":
        raise RetryLater(f"a copy of {message.source_id} to {destination.region} is being requested")
    live = [c for c in kind.copies(dest_ec2, rt.policy, message.source_region, {kind.source_tag: message.source_id})
            if kind.state(c) in LIVE_STATES]  # fmt: skip
    if live:
        return _adopt(rt, held, target, message, live, ttl)
    if held.status == "made" and rt.clock() - parse_time(held.updated_at, "updated_at") < IN_FLIGHT:
        # Just made: DescribeSnapshots may not list it yet (eventual consistency).
        return {**log_keys, "copy_ids": list(held.refs), "outcome": "reused"}
    if held.status == "made" and not reopen(rt, held, ttl):
        raise RetryLater(f"another delivery is copying {message.source_id} to {destination.region} again")
    if held.status == "stale" and not take_over(rt, held, ttl):
        raise RetryLater(f"another delivery took over the copy of {message.source_id} to {destination.region}")
    # The attempt's identity: CopyImage's client token, stable over the SDK's retries of this one request.
    attempt = format_time(rt.clock())
    source = _ready_source(rt, kind, message)
    if source is None:
        release(rt, held, "source gone", ttl)
        return _cannot_copy(rt, log_keys, "SourceNotFound", "the source no longer exists")
    if source.archived:
        # "You can't copy an archived snapshot" (EBS user guide, "Archive Amazon EBS snapshots"): the owner's call.
        release(rt, held, "source archived", ttl)
        return _cannot_copy(rt, log_keys, "SourceArchived", "the source is in the archive tier: restore it to copy it")
    if not source.ready:
        release(rt, held, f"{WAITING}source not completed", ttl)
        return _wait(rt, message, "source not completed yet", quiet=True)
    if destination.cross_account:
        refused = _share(rt, source, destination)
        if refused:
            release(rt, held, refused, ttl)
            return _cannot_copy(rt, log_keys, "SourceNotShareable", refused)
    return _copy_once(rt, kind, held, message, source, destination, attempt, log_keys)


def _already_waiting(rt: CopyRuntime, target: Target, source_id: str) -> bool:
    entry = rt.ledger.get(claim_key(rt, target, source_id, CLAIM_SLOT))
    if entry is None or entry.state != "failed" or not entry.reason.startswith(WAITING):
        return False
    return rt.clock() - parse_time(entry.updated_at, "updated_at") < WAIT_CHAIN_ALIVE


def _adopt(
    rt: CopyRuntime, held: Claim, target: Target, message: CopyMessage, live: list[dict[str, Any]], ttl: int
) -> dict[str, Any]:
    """A copy exists already (an earlier delivery, or a claim that expired): it is completed, never made again."""
    kind = _kind(rt)
    copy = min(live, key=lambda c: _copy_id(kind, c))
    copy_id = _copy_id(kind, copy)
    slot = format_time(copy_created_at(copy))
    requested = request_completion(
        rt, target, copy_id, message.source_id, slot, rt.config.completion.timeout_minutes, ttl
    )
    if held.status in ("new", "stale"):
        record_made(rt, held, [copy_id], ttl)
    return {"source_id": message.source_id, "copy_ids": [copy_id], "outcome": "reused", "check_scheduled": requested}


def _ready_source(rt: CopyRuntime, kind: _Kind, message: CopyMessage) -> Source | None:
    ec2 = rt.clients.client("ec2", message.source_region)
    found = kind.by_ids(ec2, [message.source_id])
    return kind.to_source(found[0], message.source_region) if found else None


def _share(rt: CopyRuntime, source: Source, destination: Destination) -> str | None:
    """Share the source with the DR account, which then copies it; the reason it cannot be shared, if so.

    A snapshot encrypted with the AWS managed key cannot be shared ("You can't share snapshots that are encrypted
    with the default AWS managed key", EBS user guide): its key is described (by its own ARN: describing the alias
    `aws/ebs` would create that key where none exists) and an AWS managed key is refused before asking."""
    try:
        if source.kms_key_id is not None:
            kms = rt.clients.client("kms", source.region)
            if kms.describe_key(KeyId=source.kms_key_id)["KeyMetadata"].get("KeyManager") == "AWS":
                return (
                    f"{source.resource_id} is encrypted with an AWS managed key (aws/ebs), which cannot be shared "
                    f"with account {destination.account}: back it up with a customer managed key"
                )
        rt.clients.client("ec2", source.region).modify_snapshot_attribute(
            SnapshotId=source.resource_id,
            Attribute="createVolumePermission",
            OperationType="add",
            UserIds=[destination.account],
        )
    except ClientError as error:
        if is_throttling(error):
            raise
        return f"{source.resource_id} could not be shared with account {destination.account}: {error_code(error)}"
    return None


def _copy_once(
    rt: CopyRuntime,
    kind: _Kind,
    held: Claim,
    message: CopyMessage,
    source: Source,
    destination: Destination,
    attempt: str,
    log_keys: Mapping[str, Any],
) -> dict[str, Any]:
    """One request. CopySnapshot takes no client token, so it gets no SDK retries: a refusal that made nothing
    releases the claim; an unknown outcome (5xx, timeout) keeps it, so the redelivery finds the copy by its tags.
    CopyImage takes this attempt's token and is retried by the SDK."""
    ttl = rt.config.completion.ledger_ttl_days
    ec2 = rt.clients.client("ec2", destination.region, destination.role_arn, retries=kind.idempotent)
    try:
        copy_id = kind.copy(ec2, rt.policy, source, destination, rt.config.encrypted, attempt)
    except ClientError as error:
        code = error_code(error)
        if not made_nothing(error):
            raise
        if code in BACK_PRESSURE_ERRORS:
            release(rt, held, f"{WAITING}{code}", ttl)
            return _wait(rt, message, code, quiet=True)
        if code in SOURCE_GONE_ERRORS and destination.cross_account and _ready_source(rt, kind, message):
            # The source is there: the DR account does not see the share yet (eventual consistency).
            release(rt, held, f"{WAITING}{code}", ttl)
            return _wait(rt, message, f"{code}: the share is not visible yet", quiet=False)
        if destination.completion_duration_minutes is not None and code not in PERMANENT_ERRORS | SOURCE_GONE_ERRORS:
            # A time-based copy is refused while the region pair's throughput quota is used up; AWS names no code.
            release(rt, held, f"{WAITING}{code}", ttl)
            return _wait(rt, message, code, quiet=False)
        release(rt, held, code, ttl)
        # The source is gone, UnauthorizedOperation, an invalid key or parameter: the same request cannot succeed.
        return _cannot_copy(rt, log_keys, code, str(error))
    # The completion is requested before the claim records the copy: if this invocation dies in between, the claim
    # goes stale and the next delivery adopts the copy by its tags (and requests its completion again).
    requested = request_completion(
        rt,
        destination.target,
        copy_id,
        source.resource_id,
        format_time(source.created_at),
        rt.config.completion.timeout_minutes,
        ttl,
    )
    record_made(rt, held, [copy_id], ttl)
    logger.info("copy requested", extra={**log_keys, "copy_id": copy_id, "check_scheduled": requested})
    return {"source_id": source.resource_id, "copy_ids": [copy_id], "outcome": "copying"}


def _wait(rt: CopyRuntime, message: CopyMessage, why: str, quiet: bool) -> dict[str, Any]:
    """Back-pressure, not failure: the item comes back later as a new message (SQS receives are not spent on it,
    so a long queue of copies never reaches the dead-letter queue). After `MAX_WAITS` the item ends: quietly for
    the documented back-pressure (a large first copy of a fleet takes days; the catch-up plans what is still not
    copied again), with an alert otherwise (an undocumented refusal that may not pass)."""
    if message.waits >= MAX_WAITS:
        if quiet:
            logger.warning("copy item ended after its waits", extra={"source_id": message.source_id, "why": why})
            return {"source_id": message.source_id, "outcome": "waited_out", "why": why}
        return _cannot_copy(
            rt,
            {"source_id": message.source_id, "destination_region": message.destination_region},
            "StillWaiting",
            f"{why}, for {message.waits} attempts",
        )
    waited = replace(message, waits=message.waits + 1)
    delay = backoff_seconds(waited.waits)
    if why == COPY_LIMIT:
        # A slot frees when one of the destination's copies completes, which takes minutes to hours.
        delay = max(delay, COPY_SLOT_WAIT_SECONDS)
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, waited, delay)
    logger.info("copy waits", extra={"source_id": message.source_id, "why": why, "retry_in_seconds": delay})
    return {"source_id": message.source_id, "outcome": "waiting", "why": why}


def _cannot_copy(rt: CopyRuntime, log_keys: Mapping[str, Any], code: str, reason: str) -> dict[str, Any]:
    """Permanent for this item: alerted once, the item dropped (the catch-up tries again on its next run)."""
    rt.alerts.send("source cannot be copied", {**log_keys, "error_code": code, "reason": reason})
    count("BackupsFailed")
    return {"source_id": log_keys["source_id"], "outcome": "failed", "error_code": code}


def missed_duration(rt: CopyRuntime, own_account: str, event: MissedCompletionDuration) -> dict[str, Any]:
    """The copy goes on and completes (billed at the rate of its actual duration): a warning, not a failure."""
    if _destination_of(rt, own_account, event.region, event.account) is None:
        return {"resource_id": event.copy_id, "outcome": "ignored"}
    count("CopiesMissedDuration")
    rt.alerts.report(
        "time-based copy missed its completion duration",
        {"copy_id": event.copy_id, "source_id": event.source_id, "region": event.region, "cause": event.cause},
    )
    return {"resource_id": event.copy_id, "outcome": "warned"}


# ---------------------------------------------------------------------------------------------------------------
# Completion and retention, in the destination
# ---------------------------------------------------------------------------------------------------------------


def complete_copy(rt: CopyRuntime, target: Target, copy_id: str, check: CheckMessage | None) -> dict[str, Any]:
    kind = _kind(rt)
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    return complete(
        rt,
        target,
        copy_id,
        check,
        observe=partial(_observe, rt, kind, ec2, copy_id),
        finish=partial(_retain, rt, kind, ec2, target),
        ttl_days=rt.config.completion.ledger_ttl_days,
        discard=partial(_discard, rt, kind, ec2, target),
    )


def _observe(rt: CopyRuntime, kind: _Kind, ec2: Any, copy_id: str, _entry: LedgerEntry) -> Observation:
    """The copy, and its lineage's copies (what retention needs next)."""
    found = kind.by_ids(ec2, [copy_id])
    if not found:
        return Observation(state=None, reason=f"{copy_id} no longer exists", listing=[])
    copy = found[0]
    tags = tagging.tag_dict(copy.get("Tags"))
    lineage = tags.get(kind.lineage_tag)
    listing = [copy]
    # The lineage is listed only for retention, which runs once the copy completed (a pending copy is checked
    # every 15 minutes, for hours).
    if kind.state(copy) == "available" and lineage and tags.get(tagging.SOURCE_REGION):
        listing = kind.copies(ec2, rt.policy, tags[tagging.SOURCE_REGION], {kind.lineage_tag: lineage})
        if copy_id not in {_copy_id(kind, c) for c in listing}:
            listing.append(copy)
    return Observation(state=kind.state(copy), reason=kind.reason(copy) or "copy failed", listing=listing)


def _retain(
    rt: CopyRuntime, kind: _Kind, ec2: Any, target: Target, _entry: LedgerEntry, observation: Observation
) -> dict[str, Any]:
    """Retention of the lineage's copies, now that its newest completed; ordered by when their sources were made.
    The newest copy is always kept (the next copy is incremental only while it exists); copies in the archive tier
    are the owner's."""
    copies: list[dict[str, Any]] = observation.listing
    eligible = {_copy_id(kind, c): c for c in copies if not is_archived(c)}
    items = [
        RetentionItem(copy_id, copy_created_at(c), state, tagging.is_owned(c.get("Tags"), rt.policy))
        for copy_id, c in eligible.items()
        if (state := kind.state(c)) is not None
    ]
    retention = rt.config.retention
    plan = plan_retention(items, retention.generations, retention.max_age_days, rt.clock())
    if retention.dry_run:
        logger.info("dry run: nothing retired", extra={"would_delete": list(plan.delete_ids)})
        return {"deleted": [], "would_delete": list(plan.delete_ids)}
    return _apply(rt, kind, ec2, target, plan, eligible)


def _apply(
    rt: CopyRuntime, kind: _Kind, ec2: Any, target: Target, plan: RetentionPlan, copies: Mapping[str, Any]
) -> dict[str, Any]:
    ttl = rt.config.completion.ledger_ttl_days
    if kind is IMAGES:
        retired = retire_images(rt, ec2, target, plan, copies, ttl)
        return {"deregistered": list(retired.deregistered), "errors": list(retired.errors)}
    sets = {copy_id: SnapshotSet(copy_id, (copy,)) for copy_id, copy in copies.items()}
    return retire_snapshot_sets(rt, ec2, target, plan, sets, ttl)


def _discard(
    rt: CopyRuntime, kind: _Kind, ec2: Any, target: Target, entry: LedgerEntry, observation: Observation
) -> dict[str, Any]:
    """A failed copy is no backup: a snapshot in `error` counts against the destination's pending snapshots, a
    `failed` AMI keeps its name. It is removed (ours by tag); the catch-up copies its source again."""
    failed = [c for c in observation.listing if _copy_id(kind, c) == entry.key.resource_id]
    if not failed:
        return {}
    if kind is SNAPSHOTS:
        return discard_failed(rt, ec2, target, SnapshotSet(entry.key.resource_id, tuple(failed)))
    image = failed[0]
    if not tagging.is_owned(image.get("Tags"), rt.policy):
        return {}
    try:
        ec2.deregister_image(ImageId=entry.key.resource_id)
    except ClientError as error:
        if error_code(error) not in IMAGE_GONE_ERRORS:
            raise
    snapshots = snapshot_ids([image])
    if snapshots:
        schedule_purge(rt, target, snapshots, [entry.key.resource_id], FIRST_PURGE_DELAY_SECONDS)
    return {"discarded": [entry.key.resource_id]}
