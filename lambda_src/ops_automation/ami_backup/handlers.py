"""AMI backups: a scheduled planner that fans out work, and an SQS worker that creates, completes and retires.

schedule → `plan_handler` streams the targets and enqueues one `create_image` per instance → `work_handler`
creates the AMI (tagged at creation; the deterministic name makes a repeated delivery adopt it) and records it
as pending → the `EC2 AMI State Change` event, or the delayed check as the safety net, completes it once →
retention deregisters older managed AMIs of that instance → their snapshots are purged later, with retries.

Restore tests (optional, `restore_test`): a third schedule → `restore_handler` plans tests of the newest good AMI
per instance → the worker launches each in the isolated test subnet, judges it on its `EC2 Instance State-change
Notification` events and delayed checks, terminates it and tags the AMI passed / failed (core.restore, with
ami_backup.restore's adapter).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from ..core import tagging
from ..core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
from ..core.completion import Observation, complete, request_completion
from ..core.config import CommonConfig
from ..core.errors import (
    DUPLICATE_AMI_NAME,
    IMAGE_GONE_ERRORS,
    INCORRECT_INSTANCE_STATE,
    INSTANCE_GONE_ERRORS,
    MalformedEventError,
    error_code,
)
from ..core.events import (
    INSTANCE_STATE_CHANGE,
    AmiStateChange,
    CheckMessage,
    PurgeSnapshotsMessage,
    ScopeMessage,
    SlotAuditMessage,
    decode_instance_state_change,
    parse_schedule_event,
    parse_time,
)
from ..core.image_links import image_state, list_images
from ..core.ledger import LedgerEntry
from ..core.observability import count, logger, metrics
from ..core.planner import audit_slot, plan_scope, plan_slot
from ..core.purge import handle_purge, retire_images
from ..core.restore import RESTORE_DECODERS, handle_if_on, is_restore_item, plan_if_on
from ..core.retention import RetentionItem, plan_retention
from ..core.runtime import Lazy, Runtime, build_runtime
from ..core.scope import LazyClient, Target, target_of_event
from ..core.targeting import Instance, stream_instances
from ..core.worker import RetryLater, consume_work
from .decisions import (
    TRANSIENT_INSTANCE_STATES,
    AmiBackupConfig,
    CreateImageMessage,
    carried_tags,
    create_image_request,
    decode_create_image,
    retention_item,
    source_filters,
)
from .restore import AmiRestore

SERVICE = "ami-backup"
DECODERS = {
    "create_image": decode_create_image,
    **RESTORE_DECODERS,
    INSTANCE_STATE_CHANGE: decode_instance_state_change,
}
# A fanned-out scope hands out its CreateImage items at ebs-snapshot's pace, 2 per second per account and region
# (per-message SQS delays, up to 15 minutes: 1,800 items): CreateImage draws on the same per-account-and-region EC2
# mutating bucket, shared with every other tool of the account. Unpaced, the landing-zone bench had its 5 consumers
# all in one account x region at 27 EC2 calls per second; paced, 6, at the same total time (bench/organization.py).
SCOPE_CREATES_PER_SECOND = 2.0

AmiRuntime = Runtime[AmiBackupConfig]


class RetentionError(RuntimeError):
    """Some deregistrations failed after the others were attempted; raising retries the item."""


def _build(max_attempts: int) -> AmiRuntime:
    return build_runtime(SERVICE, AmiBackupConfig.from_env(), CommonConfig.from_env(), max_attempts=max_attempts)


# One per function (each Lambda function runs one of the two handlers): the planner retries a throttled listing
# a few more times in process, the worker backs off through SQS.
planner_runtime: Lazy[AmiRuntime] = Lazy(partial(_build, PLANNER_ATTEMPTS))
worker_runtime: Lazy[AmiRuntime] = Lazy(partial(_build, WORKER_ATTEMPTS))


# ---------------------------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = planner_runtime()
    slot = parse_schedule_event(event).slot
    logger.append_keys(policy=rt.policy)
    return plan(rt, slot)


def plan(rt: AmiRuntime, slot: str) -> dict[str, Any]:
    """One slot's plan (the operator CLI calls it in a dry run, without the handler's Powertools decorators).
    Fanned out (target accounts / OUs), it enqueues one scope item per account x region; the worker lists each with
    the same `plan_target`."""
    targets = rt.config.targets
    # Explicit ids no target has found yet; the streams keep the only per-instance set (their seen ids).
    unmatched = set(targets.instance_ids)
    return plan_slot(
        rt,
        slot,
        lambda ec2, target: plan_target(rt, ec2, target, slot, unmatched),
        not_found=lambda: [
            f"{instance_id}: not found (unknown, terminated, or outside the target regions)"
            for instance_id in sorted(unmatched)
        ],
        nothing_matched=f"no instance matched instance_ids={list(targets.instance_ids)} tags={targets.tag_map}",
        # A retry re-lists every target (the duplicates it enqueues collide on the AMI name).
        nothing_matched_retryable=True,
        dry_run_report=partial(_dry_run_plan, rt, slot=slot),
    )


def plan_target(
    rt: AmiRuntime, ec2: Any, target: Target, slot: str, unmatched: set[str]
) -> Iterator[CreateImageMessage]:
    """The work items of one (region, account), page by page: the planner's, and a fanned-out scope worker's.
    `unmatched` keeps only the explicit ids this target did not find either."""
    targets = rt.config.targets
    stream = stream_instances(ec2, targets.instance_ids, targets.tag_map)
    for page in stream.pages():
        for instance in page:
            yield _create_message(rt, target, instance, slot)
    unmatched.intersection_update(stream.missing)


def _create_message(rt: AmiRuntime, target: Target, instance: Instance, slot: str) -> CreateImageMessage:
    tags = carried_tags(instance.tags) if rt.config.copy_instance_tags else None
    return CreateImageMessage(rt.policy, instance.instance_id, target.region, target.role_arn, slot, tags)


def _dry_run_plan(
    rt: AmiRuntime, targets: Mapping[Target, list[CreateImageMessage]], slot: str
) -> list[dict[str, Any]]:
    """What each instance's next successful backup would purge, from one listing of the policy's AMIs per target."""
    new_backup_time = parse_time(slot, "slot")
    plan: list[dict[str, Any]] = []
    for target, messages in targets.items():
        ec2 = rt.clients.client("ec2", target.region, target.role_arn)
        by_instance: dict[str, list[RetentionItem]] = {}
        for image in list_images(ec2, [{"Name": f"tag:{tagging.POLICY}", "Values": [rt.policy]}]):
            item = retention_item(image, rt.policy)
            if item is not None:
                source = tagging.tag_dict(image.get("Tags")).get(tagging.SOURCE_INSTANCE, "")
                by_instance.setdefault(source, []).append(item)
        for message in messages:
            upcoming = RetentionItem(id="(next backup)", created_at=new_backup_time, state="available", managed=True)
            retention = _plan(rt, [*by_instance.get(message.instance_id, []), upcoming])
            plan.append(
                {
                    "region": target.region,
                    "role_arn": target.role_arn,
                    "instance_id": message.instance_id,
                    "would_keep": [{"image_id": k.item.id, "reason": k.reason} for k in retention.keep],
                    "would_delete": [{"image_id": d.item.id, "reason": d.reason} for d in retention.delete],
                }
            )
    return plan


# ---------------------------------------------------------------------------------------------------------------
# Worker
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def work_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = worker_runtime()
    return consume_work(rt, event, context, DECODERS, partial(handle_item, rt))


def handle_item(rt: AmiRuntime, item: Any) -> dict[str, Any]:
    if is_restore_item(item):
        return handle_restore(rt, item)
    if not isinstance(item, AmiStateChange) and item.policy != rt.policy:
        raise MalformedEventError(f"message for policy {item.policy!r} reached policy {rt.policy!r}")
    if isinstance(item, CreateImageMessage):
        return create_backup(rt, item)
    if isinstance(item, CheckMessage):
        return complete_image(rt, Target(item.region, item.role_arn), item.resource_id, item)
    if isinstance(item, PurgeSnapshotsMessage):
        return handle_purge(rt, item)
    if isinstance(item, ScopeMessage):
        return plan_scope(
            rt,
            item,
            lambda ec2, target: plan_target(rt, ec2, target, item.slot, set()),
            ttl_days=rt.config.completion.ledger_ttl_days,
            pace_per_second=SCOPE_CREATES_PER_SECOND,
        )
    if isinstance(item, SlotAuditMessage):
        return audit_slot(
            rt,
            item,
            ttl_days=rt.config.completion.ledger_ttl_days,
            nothing_matched=f"tags={rt.config.targets.tag_map}",
        )
    if isinstance(item, AmiStateChange):
        if item.state not in ("available", "failed"):
            return {"image_id": item.image_id, "outcome": "ignored"}
        target = target_of_event(rt.config.scope, item.region, item.account, rt.clients.default_region)
        if target is None:  # outside the fanned-out scope, or an excluded account: never targeted
            return {"image_id": item.image_id, "outcome": "ignored"}
        return complete_image(rt, target, item.image_id, None)
    raise MalformedEventError(f"no handler for {type(item).__name__}")


def create_backup(rt: AmiRuntime, message: CreateImageMessage) -> dict[str, Any]:
    """One CreateImage (no lookup first): a repeated delivery collides on the deterministic name and adopts the
    image, so the slot gets one AMI whatever happens."""
    target = Target(message.region, message.role_arn)
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    log_keys = {"instance_id": message.instance_id, "region": target.region, "slot": message.slot}
    request = create_image_request(rt.policy, message, rt.config.no_reboot)
    try:
        image_id, outcome = str(ec2.create_image(**request)["ImageId"]), "created"
    except ClientError as error:
        code = error_code(error)
        if code == DUPLICATE_AMI_NAME:
            adopted = _adopt_by_name(rt, ec2, request["Name"])
            if adopted is None:
                return _cannot_back_up(
                    rt,
                    log_keys,
                    "ForeignImage",
                    f"the AMI name {request['Name']} is taken by an AMI this policy does not own",
                )
            image_id, outcome = adopted, "reused"
        elif code == INCORRECT_INSTANCE_STATE:
            state = _instance_state(ec2, message.instance_id)
            if state in TRANSIENT_INSTANCE_STATES:
                raise RetryLater(
                    f"instance {message.instance_id} is {state}; CreateImage needs running or stopped"
                ) from error
            return _cannot_back_up(rt, log_keys, code, f"instance is {state or 'gone'}")
        elif code in INSTANCE_GONE_ERRORS:
            return _cannot_back_up(rt, log_keys, code, str(error))
        else:
            raise
    requested = request_completion(
        rt,
        target,
        image_id,
        message.instance_id,
        message.slot,
        rt.config.completion.timeout_minutes,
        rt.config.completion.ledger_ttl_days,
    )
    logger.info(
        "image requested", extra={**log_keys, "image_id": image_id, "outcome": outcome, "check_scheduled": requested}
    )
    return {"instance_id": message.instance_id, "image_id": image_id, "outcome": outcome}


def _cannot_back_up(rt: AmiRuntime, log_keys: Mapping[str, Any], code: str, reason: str) -> dict[str, Any]:
    """Permanent for this slot: alert once and drop the item (retrying cannot help)."""
    rt.alerts.send("instance cannot be backed up", {**log_keys, "error_code": code, "reason": reason})
    count("BackupsFailed")
    return {"instance_id": log_keys["instance_id"], "outcome": "failed", "error_code": code}


def _adopt_by_name(rt: AmiRuntime, ec2: Any, name: str) -> str | None:
    for image in list_images(ec2, [{"Name": "name", "Values": [name]}]):
        return str(image["ImageId"]) if tagging.is_owned(image.get("Tags"), rt.policy) else None
    # The name is taken but the image is not listed yet (eventual consistency): try again later.
    raise RetryLater(f"AMI name {name} is taken but not listed yet")


def _instance_state(ec2: Any, instance_id: str) -> str | None:
    """A filter, not `InstanceIds`: filtered calls draw on EC2's standard describe bucket rather than the smaller
    one for unfiltered, unpaginated calls, and an unknown id answers empty instead of failing."""
    response = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [instance_id]}], MaxResults=5)
    instances = [instance for reservation in response["Reservations"] for instance in reservation["Instances"]]
    return str(instances[0]["State"]["Name"]) if instances else None


def complete_image(rt: AmiRuntime, target: Target, image_id: str, check: CheckMessage | None) -> dict[str, Any]:
    ec2 = LazyClient(lambda: rt.clients.client("ec2", target.region, target.role_arn))
    return complete(
        rt,
        target,
        image_id,
        check,
        observe=partial(_observe, rt, ec2, image_id),
        finish=partial(_retain, rt, ec2, target),
        ttl_days=rt.config.completion.ledger_ttl_days,
    )


def _observe(rt: AmiRuntime, ec2: Any, image_id: str, entry: LedgerEntry) -> Observation:
    """One listing of the source instance's managed AMIs: it tells the new image's state and is what retention
    needs next. Only if the new image is not listed yet (eventual consistency) is it described by id."""
    listing = list_images(ec2, source_filters(rt.policy, entry.source_id))
    image = next((image for image in listing if image["ImageId"] == image_id), None)
    if image is None:
        image = _describe_image(ec2, image_id)
        if image is not None:
            listing.append(image)
    if image is None:
        return Observation(state=None, reason="the AMI no longer exists", listing=listing)
    reason = str(image.get("StateReason", {}).get("Message") or "")
    return Observation(state=image_state(image), reason=reason, listing=listing)


def _describe_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    try:
        images = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
    except ClientError as error:
        if error_code(error) in IMAGE_GONE_ERRORS:
            return None
        raise
    return images[0] if images else None


def _plan(rt: AmiRuntime, items: list[RetentionItem]) -> Any:
    retention = rt.config.retention
    return plan_retention(items, retention.generations, retention.max_age_days, rt.clock())


def _retain(rt: AmiRuntime, ec2: Any, target: Target, entry: LedgerEntry, observation: Observation) -> dict[str, Any]:
    """Retention for the source instance, now that its newest backup is available."""
    images = {image["ImageId"]: image for image in observation.listing}
    items = [item for item in (retention_item(image, rt.policy) for image in images.values()) if item is not None]
    plan = _plan(rt, items)
    if rt.config.retention.dry_run:
        logger.info("dry run: nothing retired", extra={"would_delete": list(plan.delete_ids)})
        return {"deleted": [], "would_delete": list(plan.delete_ids)}
    retirement = retire_images(rt, ec2, target, plan, images, rt.config.completion.ledger_ttl_days)
    if retirement.errors:
        raise RetentionError(f"retention for {entry.source_id} incomplete: " + "; ".join(retirement.errors))
    return {"deleted": list(retirement.deregistered), "snapshots_scheduled": list(retirement.snapshot_ids)}


# ---------------------------------------------------------------------------------------------------------------
# Restore tests
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def restore_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The `restore` function's schedule: plans restore tests (reads only; the worker runs them). Its runtime is
    the planner's kind (a scheduled reader): each function has its own container."""
    rt = planner_runtime()
    slot = parse_schedule_event(event).slot
    logger.append_keys(policy=rt.policy)
    return plan_restore(rt, slot)


def plan_restore(rt: AmiRuntime, slot: str) -> dict[str, Any]:
    return plan_if_on(rt, rt.config.restore, partial(restore_adapter, rt), slot)


def restore_adapter(rt: AmiRuntime) -> AmiRestore:
    """The adapter for the policy's one restore target; its SSM client (validation only) is made on first use."""
    config = rt.config.restore
    assert config is not None
    target = config.target(rt.clients.default_region)
    ssm = LazyClient(lambda: rt.clients.client("ssm", target.region, target.role_arn))
    return AmiRestore(config, rt.policy, ssm)


def handle_restore(rt: AmiRuntime, item: Any) -> dict[str, Any]:
    """A restore test's message or an instance state event (the state-event rule exists only with tests on)."""
    policy = getattr(item, "policy", rt.policy)
    if policy != rt.policy:
        raise MalformedEventError(f"message for policy {policy!r} reached policy {rt.policy!r}")
    return handle_if_on(rt, rt.config.restore, partial(restore_adapter, rt), item)
