"""AMI backups: a scheduled planner that fans out work, and an SQS worker that creates, completes and purges.

Flow: schedule → `plan_handler` enqueues one `create_image` per instance → `work_handler` creates the AMI
(idempotent per policy, instance and slot) and sends a delayed `check_image` → the `EC2 AMI State Change` event
(or the check, as a safety net) completes it → retention purges older managed AMIs of that instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from . import tagging
from .clients import ClientFactory, account_of_role
from .config import AmiBackupConfig
from .events import (
    AmiStateChange,
    CheckImageMessage,
    CreateImageMessage,
    MalformedEventError,
    format_time,
    parse_schedule_event,
    parse_time,
    parse_work_body,
    to_body,
)
from .ledger import LOCAL_ACCOUNT, DynamoLedger, Ledger, LedgerKey
from .retention import RetentionItem, RetentionPlan, State, plan_retention
from .targeting import MAX_FILTER_VALUES, PAGE_SIZE, Resolution, chunked, resolve_instances

SERVICE = "ami-backup"
SQS_BATCH_SIZE = 10
# Bytes of bodies per SendMessageBatch: SQS's long-standing batch limit, and our queue's default MaximumMessageSize.
SQS_MAX_BATCH_BYTES = 256 * 1024
SQS_MAX_DELAY_SECONDS = 900
SEND_ATTEMPTS = 3
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

# The instance is gone or cannot be imaged: retrying the message cannot help.
PERMANENT_CREATE_ERRORS = frozenset(
    {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "IncorrectInstanceState"}
)
IMAGE_GONE_ERRORS = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})
SNAPSHOT_SKIP_ERRORS = frozenset({"InvalidSnapshot.InUse", "InvalidSnapshot.NotFound"})
IMAGE_STATES: Mapping[str, State] = {
    "available": "available",
    "pending": "pending",
    "transient": "pending",
    "failed": "failed",
    "error": "failed",
    "invalid": "failed",
}

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


class PartialFailure(RuntimeError):
    """Some targets could not be planned or enqueued; the rest were. Raised last so the invocation alarms."""

    def __init__(self, failures: Sequence[str]) -> None:
        super().__init__(f"{len(failures)} target(s) failed: " + "; ".join(failures))
        self.failures = tuple(failures)


class RetentionError(RuntimeError):
    """Some purges failed after the others were attempted; raising retries the message."""


class ForeignImageError(RuntimeError):
    """The deterministic name is taken by an image this policy does not own; never adopt or delete it."""


@dataclass(frozen=True)
class Target:
    region: str
    role_arn: str | None

    @property
    def account(self) -> str:
        return account_of_role(self.role_arn) if self.role_arn else LOCAL_ACCOUNT


@dataclass
class Runtime:
    """Everything built from the environment, once per container."""

    config: AmiBackupConfig
    clients: ClientFactory
    ledger: Ledger
    clock: Callable[[], datetime]
    idempotency: IdempotencyConfig
    create_once: Callable[..., dict[str, Any]]


_runtime: Runtime | None = None


def build_runtime(
    config: AmiBackupConfig | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ledger: Ledger | None = None,
) -> Runtime:
    config = config or AmiBackupConfig.from_env()
    clients = ClientFactory(session_name=f"ops-automation-{config.policy_name}", clock=clock)
    dynamodb = clients.client("dynamodb")
    # The carried instance tags are deliberately not part of the key: one AMI per instance and slot, whatever
    # its tags were when each delivery was planned.
    idempotency = IdempotencyConfig(
        event_key_jmespath="[policy, instance_id, slot]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    )
    persistence = DynamoDBPersistenceLayer(table_name=config.common.idempotency_table, boto3_client=dynamodb)
    create_once = idempotent_function(
        data_keyword_argument="message", persistence_store=persistence, config=idempotency
    )(_create_from_payload)
    metrics.set_default_dimensions(policy=config.policy_name)
    logger.append_keys(policy=config.policy_name)
    return Runtime(
        config=config,
        clients=clients,
        ledger=ledger or DynamoLedger(dynamodb, config.common.ledger_table),
        clock=clock,
        idempotency=idempotency,
        create_once=create_once,
    )


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = build_runtime()
    return _runtime


# ---------------------------------------------------------------------------------------------------------------
# Pure decisions
# ---------------------------------------------------------------------------------------------------------------


def targets_of(config: AmiBackupConfig, default_region: str) -> list[Target]:
    regions = config.target_regions or (default_region,)
    roles: Sequence[str | None] = config.target_role_arns or (None,)
    return [Target(region=region, role_arn=role) for role in roles for region in regions]


def ami_name(policy: str, instance_id: str, slot: str) -> str:
    """Deterministic per (policy, instance, slot): a second CreateImage for the same slot collides by name."""
    compact = parse_time(slot, "slot").strftime("%Y%m%dT%H%M%SZ")
    return f"{policy}-{instance_id}-{compact}"


def carried_tags(instance_tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a `create_image` message carries: only the copyable ones (no `aws:` or ownership keys), at most
    EC2's 50 per resource. Even 50 tags of maximal length (128 + 256 characters, 4 UTF-8 bytes each) stay
    under 80 KB, far below SQS's 256 KiB per message."""
    return tagging.with_copied_tags({}, instance_tags)


def batch_ranges(sizes: Sequence[int]) -> list[range]:
    """Consecutive message indices per SendMessageBatch: at most 10 entries and 256 KiB of bodies each."""
    batches: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and (index - start == SQS_BATCH_SIZE or total + size > SQS_MAX_BATCH_BYTES):
            batches.append(range(start, index))
            start, total = index, 0
        total += size
    if sizes:
        batches.append(range(start, len(sizes)))
    return batches


def role_for_account(role_arns: Iterable[str], account: str) -> str | None:
    """Events carry an account id; images in a spoke account are reached through its role, others directly."""
    return next((arn for arn in role_arns if account_of_role(arn) == account), None)


CompletionAction = Literal["available", "failed", "wait", "timed_out"]


def completion_action(image_state: str, now: datetime, deadline: datetime | None) -> CompletionAction:
    state = IMAGE_STATES.get(image_state, "pending")
    if state != "pending":
        return state
    if deadline is None or now < deadline:
        return "wait"
    return "timed_out"


def retention_item(image: Mapping[str, Any], policy: str) -> RetentionItem:
    return RetentionItem(
        id=image["ImageId"],
        created_at=parse_time(image["CreationDate"], "CreationDate"),
        state=IMAGE_STATES.get(image.get("State", ""), "pending"),
        managed=tagging.is_owned(image.get("Tags"), policy),
    )


def snapshot_ids(images: Iterable[Mapping[str, Any]]) -> list[str]:
    ids = {
        mapping["Ebs"]["SnapshotId"]
        for image in images
        for mapping in image.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    }
    return sorted(ids)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# ---------------------------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    slot = parse_schedule_event(event).slot
    config = rt.config
    failures: list[str] = []
    resolutions: dict[Target, Resolution] = {}
    for target in targets_of(config, rt.clients.default_region):
        try:
            ec2 = rt.clients.client("ec2", target.region, target.role_arn)
            resolutions[target] = resolve_instances(ec2, config.instance_ids, config.target_tag_map)
        except (ClientError, BotoCoreError) as error:
            logger.exception("target resolution failed", extra={"region": target.region, "role_arn": target.role_arn})
            _count("BackupsFailed")
            failures.append(f"{target.region}/{target.role_arn or 'own account'}: {error}")

    found = {instance.instance_id for resolution in resolutions.values() for instance in resolution.instances}
    for instance_id in sorted(set(config.instance_ids) - found):
        logger.error("instance not found in any target region", extra={"instance_id": instance_id})
        _count("BackupsFailed")
        failures.append(f"{instance_id}: not found (unknown, terminated, or outside the target regions)")

    messages = [
        CreateImageMessage(
            config.policy_name,
            instance.instance_id,
            target.region,
            target.role_arn,
            slot,
            instance_tags=carried_tags(instance.tags) if config.copy_instance_tags else None,
        )
        for target, resolution in resolutions.items()
        for instance in resolution.instances
    ]
    _count("TargetsPlanned", len(messages))
    summary: dict[str, Any] = {"slot": slot, "dry_run": config.dry_run, "planned": len(messages)}
    if config.dry_run:
        summary["plan"] = _dry_run_plan(rt, resolutions, slot)
        logger.info("dry run: nothing enqueued", extra={"plan": summary["plan"], "slot": slot})
    else:
        sqs = rt.clients.client("sqs")
        unsent = enqueue(sqs, config.common.work_queue_url, messages)
        for message in unsent:
            logger.error("work item could not be enqueued", extra={"instance_id": message.instance_id})
            _count("BackupsFailed")
            failures.append(f"{message.instance_id}: not enqueued")
        summary["enqueued"] = len(messages) - len(unsent)
        logger.info("backups planned", extra={"slot": slot, "enqueued": summary["enqueued"]})
    if failures:
        raise PartialFailure(failures)
    return summary


def enqueue(sqs: Any, queue_url: str, messages: Sequence[CreateImageMessage]) -> list[CreateImageMessage]:
    """Send in batches (see `batch_ranges`); retry the entries a batch reports as failed. Returns what never got
    through."""
    unsent: list[CreateImageMessage] = []
    bodies = [to_body(message) for message in messages]
    for batch in batch_ranges([len(body.encode()) for body in bodies]):
        pending = {str(entry): index for entry, index in enumerate(batch)}
        for _attempt in range(SEND_ATTEMPTS):
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": entry_id, "MessageBody": bodies[index]} for entry_id, index in pending.items()],
            )
            retry: dict[str, int] = {}
            for failed in response.get("Failed", []):
                index = pending[failed["Id"]]
                logger.warning(
                    "batch entry rejected",
                    extra={
                        "instance_id": messages[index].instance_id,
                        "error_code": failed.get("Code"),
                        "sender_fault": failed.get("SenderFault"),
                    },
                )
                # A sender fault (bad request) fails the same way every time; only service faults are retried.
                if failed.get("SenderFault"):
                    unsent.append(messages[index])
                else:
                    retry[failed["Id"]] = index
            pending = retry
            if not pending:
                break
        unsent.extend(messages[index] for index in pending.values())
    return unsent


def _dry_run_plan(rt: Runtime, resolutions: Mapping[Target, Resolution], slot: str) -> list[dict[str, Any]]:
    """What each instance's next successful backup would purge, from one listing of the policy's AMIs per target."""
    policy = rt.config.policy_name
    new_backup_time = parse_time(slot, "slot")
    plan: list[dict[str, Any]] = []
    for target, resolution in resolutions.items():
        if not resolution.instances:
            continue
        ec2 = rt.clients.client("ec2", target.region, target.role_arn)
        by_instance: dict[str, list[RetentionItem]] = {}
        for image in _list_images(ec2, [{"Name": f"tag:{tagging.POLICY}", "Values": [policy]}]):
            source = tagging.tag_dict(image.get("Tags")).get(tagging.SOURCE_INSTANCE, "")
            by_instance.setdefault(source, []).append(retention_item(image, policy))
        for instance in resolution.instances:
            upcoming = RetentionItem(id="(next backup)", created_at=new_backup_time, state="available", managed=True)
            retention = _plan(rt, [*by_instance.get(instance.instance_id, []), upcoming])
            plan.append(
                {
                    "region": target.region,
                    "role_arn": target.role_arn,
                    "instance_id": instance.instance_id,
                    "would_delete": [
                        {"image_id": decision.item.id, "reason": decision.reason} for decision in retention.delete
                    ],
                }
            )
    return plan


# ---------------------------------------------------------------------------------------------------------------
# Worker
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def work_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = runtime()
    rt.idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)


def handle_record(record: SQSRecord) -> dict[str, Any]:
    rt = runtime()
    try:
        item = parse_work_body(record.body)
        if not isinstance(item, AmiStateChange) and item.policy != rt.config.policy_name:
            raise MalformedEventError(f"message for policy {item.policy!r} reached policy {rt.config.policy_name!r}")
    except MalformedEventError as error:
        logger.error("malformed work item", extra={"message_id": record.message_id, "reason": str(error)})
        raise
    if isinstance(item, CreateImageMessage):
        return rt.create_once(message=asdict(item))
    if isinstance(item, CheckImageMessage):
        target = Target(item.region, item.role_arn)
        return complete_image(rt, target, item.image_id, check=item)
    if item.state not in ("available", "failed"):
        logger.info("AMI state change ignored", extra={"image_id": item.image_id, "state": item.state})
        return {"image_id": item.image_id, "outcome": "ignored"}
    target = Target(item.region, role_for_account(rt.config.target_role_arns, item.account))
    return complete_image(rt, target, item.image_id, check=None)


def _create_from_payload(message: dict[str, Any]) -> dict[str, Any]:
    return create_backup(runtime(), CreateImageMessage(**message))


def create_backup(rt: Runtime, message: CreateImageMessage) -> dict[str, Any]:
    config = rt.config
    target = Target(message.region, message.role_arn)
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    name = ami_name(config.policy_name, message.instance_id, message.slot)
    log_keys = {"instance_id": message.instance_id, "region": target.region, "slot": message.slot}
    try:
        image_id, outcome = _existing_or_new_image(rt, ec2, name, message)
    except (ClientError, ForeignImageError) as error:
        code = error_code(error) if isinstance(error, ClientError) else "ForeignImage"
        if isinstance(error, ClientError) and code not in PERMANENT_CREATE_ERRORS:
            raise
        logger.error("instance cannot be backed up", extra={**log_keys, "error_code": code, "reason": str(error)})
        _count("BackupsFailed")
        return {"instance_id": message.instance_id, "outcome": "failed", "error_code": code}

    now = rt.clock()
    key = LedgerKey(
        SERVICE, config.policy_name, target.account, target.region, message.instance_id, message.slot, image_id
    )
    rt.ledger.transition(key, "pending", now, config.ledger_ttl_days, from_states={"pending"})
    deadline = now + timedelta(minutes=config.completion_timeout_minutes)
    check = CheckImageMessage(
        config.policy_name,
        image_id,
        message.instance_id,
        target.region,
        target.role_arn,
        message.slot,
        format_time(deadline),
    )
    _send_check(rt, check, now)
    logger.info("image requested", extra={**log_keys, "image_id": image_id, "ami_name": name, "outcome": outcome})
    return {"instance_id": message.instance_id, "image_id": image_id, "outcome": outcome}


def _existing_or_new_image(rt: Runtime, ec2: Any, name: str, message: CreateImageMessage) -> tuple[str, str]:
    existing = _find_image_by_name(ec2, name, rt.config.policy_name)
    if existing:
        return existing, "reused"
    tags = tagging.ownership_tags(rt.config.policy_name, source_instance=message.instance_id, slot=message.slot)
    if rt.config.copy_instance_tags:
        # The planner carries the tags it listed. A message from an older planner has none: it gets the ownership
        # tags only, on purpose without a DescribeInstances fallback (one call per target, and the worker's role
        # no longer has the permission).
        tags = tagging.with_copied_tags(tags, message.instance_tags or {})
    try:
        response = ec2.create_image(
            InstanceId=message.instance_id,
            Name=name,
            Description=f"ops-automation {rt.config.policy_name} backup of {message.instance_id} at {message.slot}",
            NoReboot=rt.config.no_reboot,
            TagSpecifications=[
                {"ResourceType": "image", "Tags": tagging.tag_list(tags)},
                {"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)},
            ],
        )
    except ClientError as error:
        # A concurrent delivery won the race for this slot's name: adopt its image.
        if error_code(error) == "InvalidAMIName.Duplicate":
            existing = _find_image_by_name(ec2, name, rt.config.policy_name)
            if existing:
                return existing, "reused"
        raise
    return str(response["ImageId"]), "created"


def _find_image_by_name(ec2: Any, name: str, policy: str) -> str | None:
    for image in _list_images(ec2, [{"Name": "name", "Values": [name]}]):
        if tagging.is_owned(image.get("Tags"), policy):
            return str(image["ImageId"])
        raise ForeignImageError(
            f"an AMI named {name!r} exists but is not owned by policy {policy!r}: {image['ImageId']}"
        )
    return None


def _send_check(rt: Runtime, check: CheckImageMessage, now: datetime) -> None:
    remaining = (check.deadline_time - now).total_seconds()
    delay = int(min(SQS_MAX_DELAY_SECONDS, max(0, remaining)))
    sqs = rt.clients.client("sqs")
    sqs.send_message(QueueUrl=rt.config.common.work_queue_url, MessageBody=to_body(check), DelaySeconds=delay)


def complete_image(rt: Runtime, target: Target, image_id: str, check: CheckImageMessage | None) -> dict[str, Any]:
    """Shared by the state-change event and the delayed check: act on the image's current state, once."""
    config = rt.config
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    image = _describe_image(ec2, image_id)
    log_keys: dict[str, Any] = {"image_id": image_id, "region": target.region}
    if image is None:
        if check is not None:
            logger.error(
                "backup image disappeared before completion", extra={**log_keys, "instance_id": check.instance_id}
            )
            _count("BackupsFailed")
            return {"image_id": image_id, "outcome": "missing"}
        logger.info("image not found; not ours to complete", extra=log_keys)
        return {"image_id": image_id, "outcome": "ignored"}

    tags = tagging.tag_dict(image.get("Tags"))
    if not tagging.is_owned(tags, config.policy_name) or not tags.get(tagging.SOURCE_INSTANCE):
        logger.info("image not managed by this policy; ignored", extra=log_keys)
        return {"image_id": image_id, "outcome": "ignored"}
    instance_id = tags[tagging.SOURCE_INSTANCE]
    log_keys["instance_id"] = instance_id
    now = rt.clock()
    key = LedgerKey(
        SERVICE, config.policy_name, target.account, target.region, instance_id, tags.get(tagging.SLOT, ""), image_id
    )
    action = completion_action(image.get("State", ""), now, check.deadline_time if check else None)

    if action == "wait":
        if check is not None:
            _send_check(rt, check, now)
        return {"image_id": image_id, "outcome": "pending"}
    if action == "timed_out":
        logger.error(
            "backup still pending past its deadline; nothing purged",
            extra={**log_keys, "deadline": check.deadline if check else None},
        )
        _count("BackupsFailed")
        return {"image_id": image_id, "outcome": "timed_out"}
    if action == "failed":
        if rt.ledger.transition(key, "failed", now, config.ledger_ttl_days, from_states={"pending"}):
            _count("BackupsFailed")
        logger.error(
            "backup failed; nothing purged", extra={**log_keys, "reason": image.get("StateReason", {}).get("Message")}
        )
        return {"image_id": image_id, "outcome": "failed"}

    if rt.ledger.transition(key, "available", now, config.ledger_ttl_days, from_states={"pending"}):
        _count("BackupsCreated")
        logger.info("backup available", extra=log_keys)
    purged = apply_retention(rt, ec2, target, instance_id)
    return {"image_id": image_id, "outcome": "available", "deleted": purged}


def _describe_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    try:
        images = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
    except ClientError as error:
        if error_code(error) in IMAGE_GONE_ERRORS:
            return None
        raise
    return images[0] if images else None


def _plan(rt: Runtime, items: Sequence[RetentionItem]) -> RetentionPlan:
    return plan_retention(items, rt.config.generations, rt.config.max_age_days, rt.clock())


def apply_retention(rt: Runtime, ec2: Any, target: Target, instance_id: str) -> list[str]:
    """Deregister the AMIs of one instance that the plan drops, then their unshared, owned snapshots."""
    policy = rt.config.policy_name
    images = _list_images(
        ec2,
        [
            {"Name": f"tag:{tagging.POLICY}", "Values": [policy]},
            {"Name": f"tag:{tagging.SOURCE_INSTANCE}", "Values": [instance_id]},
        ],
    )
    by_id = {image["ImageId"]: image for image in images}
    plan = _plan(rt, [retention_item(image, policy) for image in images])
    errors: list[str] = []
    deregistered: list[dict[str, Any]] = []
    for decision in plan.delete:
        image = by_id[decision.item.id]
        log_keys = {"image_id": decision.item.id, "instance_id": instance_id, "region": target.region}
        if not tagging.is_owned(image.get("Tags"), policy):
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
        slot = tagging.tag_dict(image.get("Tags")).get(tagging.SLOT, "")
        key = LedgerKey(SERVICE, policy, target.account, target.region, instance_id, slot, decision.item.id)
        rt.ledger.transition(key, "deleted", rt.clock(), rt.config.ledger_ttl_days)
    _count("BackupsDeleted", len(deregistered))
    errors.extend(delete_snapshots(ec2, policy, deregistered))
    if errors:
        raise RetentionError(f"retention for {instance_id} incomplete: " + "; ".join(errors))
    return [str(image["ImageId"]) for image in deregistered]


def delete_snapshots(ec2: Any, policy: str, deregistered: Sequence[Mapping[str, Any]]) -> list[str]:
    """Delete the snapshots of deregistered images unless another AMI still uses them or they are not ours.

    Returns the errors; one failing snapshot does not stop the others."""
    candidates = snapshot_ids(deregistered)
    if not candidates:
        return []
    gone = {image["ImageId"] for image in deregistered}
    in_use: set[str] = set()
    for chunk in chunked(candidates, MAX_FILTER_VALUES):
        for image in _list_images(ec2, [{"Name": "block-device-mapping.snapshot-id", "Values": chunk}]):
            # DescribeImages is eventually consistent: an image deregistered a moment ago may still be listed.
            if image["ImageId"] not in gone:
                in_use.update(set(snapshot_ids([image])) & set(chunk))
    owned = _owned_snapshots(ec2, [snapshot for snapshot in candidates if snapshot not in in_use], policy)
    errors: list[str] = []
    deleted = 0
    for snapshot_id in candidates:
        log_keys = {"snapshot_id": snapshot_id}
        if snapshot_id in in_use:
            logger.info("snapshot kept: another AMI uses it", extra=log_keys)
            continue
        if snapshot_id not in owned:
            logger.warning("snapshot kept: no ownership tags", extra=log_keys)
            continue
        try:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
        except ClientError as error:
            if error_code(error) in SNAPSHOT_SKIP_ERRORS:
                logger.info("snapshot skipped", extra={**log_keys, "error_code": error_code(error)})
            else:
                logger.error("snapshot deletion failed", extra={**log_keys, "error_code": error_code(error)})
                errors.append(f"{snapshot_id}: {error_code(error)}")
            continue
        deleted += 1
        logger.info("snapshot deleted", extra=log_keys)
    _count("SnapshotsDeleted", deleted)
    return errors


def _owned_snapshots(ec2: Any, snapshot_ids_: Sequence[str], policy: str) -> set[str]:
    owned: set[str] = set()
    paginator = ec2.get_paginator("describe_snapshots")
    # Filter rather than SnapshotIds: one id deleted meanwhile would otherwise fail the whole call.
    for chunk in chunked(snapshot_ids_, MAX_FILTER_VALUES):
        pages = paginator.paginate(
            OwnerIds=["self"],
            Filters=[{"Name": "snapshot-id", "Values": chunk}],
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        for page in pages:
            owned.update(
                snap["SnapshotId"] for snap in page.get("Snapshots", []) if tagging.is_owned(snap.get("Tags"), policy)
            )
    return owned


def _list_images(ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    paginator = ec2.get_paginator("describe_images")
    pages = paginator.paginate(Owners=["self"], Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE})
    return [image for page in pages for image in page.get("Images", [])]


def _count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
