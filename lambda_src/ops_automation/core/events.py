"""Typed records for every payload the functions receive, and the work-queue messages every module shares.

A module adds its own message kinds by passing decoders to `parse_work_body`; the delayed `check`, the
`purge_snapshots` and the fan-out's `plan_scope` messages and the EC2 state events are the core's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from .errors import MalformedEventError

AMI_STATE_CHANGE = "EC2 AMI State Change"
EBS_SNAPSHOT_NOTIFICATION = "EBS Snapshot Notification"
EBS_MULTI_VOLUME_SNAPSHOTS = "EBS Multi-Volume Snapshots Completion Status"
CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
# Restore tests (core.restore): the restored instance's and volume's state events. Modules that run restore tests
# pass `decode_instance_state_change` / `decode_volume_notification` in their decoders; the others reject them.
INSTANCE_STATE_CHANGE = "EC2 Instance State-change Notification"
EBS_VOLUME_NOTIFICATION = "EBS Volume Notification"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
SLOT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class ScheduleTrigger:
    scheduled_time: datetime

    @property
    def slot(self) -> str:
        return format_time(self.scheduled_time)


@dataclass(frozen=True)
class WorkMessage:
    """Base of every message the functions put on their work queue."""

    # Fields left out of the body when None, so that older readers see the format they know.
    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class CheckMessage(WorkMessage):
    """Delayed safety net: complete `resource_id` if its state event never came, alert past `deadline`."""

    policy: str
    resource_id: str
    source_id: str
    region: str
    role_arn: str | None
    slot: str
    deadline: str
    kind: Literal["check"] = "check"

    @property
    def deadline_time(self) -> datetime:
        return parse_time(self.deadline, "deadline")


@dataclass(frozen=True)
class PurgeSnapshotsMessage(WorkMessage):
    """Snapshots of images this policy deregistered, deleted later (and retried) until `deadline`."""

    policy: str
    region: str
    role_arn: str | None
    snapshot_ids: tuple[str, ...]
    # Images already deregistered: DescribeImages may still list them for a while; they do not keep a snapshot.
    released_image_ids: tuple[str, ...]
    deadline: str
    attempt: int = 1
    kind: Literal["purge_snapshots"] = "purge_snapshots"

    @property
    def deadline_time(self) -> datetime:
        return parse_time(self.deadline, "deadline")


@dataclass(frozen=True)
class ScopeMessage(WorkMessage):
    """Fan-out: one (account, region) of a slot, for a worker to list and enqueue its work items (core.planner
    `plan_scope`). `region` None: the account's enabled regions ("all-enabled"), one ScopeMessage each. `action`
    names what the slot does where a module has several (the instance scheduler's start and stop)."""

    policy: str
    slot: str
    account: str
    role_arn: str
    region: str | None
    action: str = ""
    kind: Literal["plan_scope"] = "plan_scope"

    @property
    def source_id(self) -> str:
        return f"{self.account}/{self.region or 'all-enabled'}"


@dataclass(frozen=True)
class SlotAuditMessage(WorkMessage):
    """Fan-out: a fanned-out slot's "nothing matched" guard, delayed (core.planner `audit_slot`): once every scope
    reported its planned count to the slot's tally, alert when none planned anything. `regions` 0: "all-enabled"."""

    policy: str
    slot: str
    accounts: int
    regions: int
    action: str = ""
    attempt: int = 1
    kind: Literal["slot_audit"] = "slot_audit"

    @property
    def source_id(self) -> str:
        return f"slot-audit/{self.slot}"


@dataclass(frozen=True)
class AmiStateChange:
    image_id: str
    state: str
    region: str
    account: str
    error_message: str


@dataclass(frozen=True)
class ApiCallEvent:
    """A CloudTrail management event delivered by EventBridge (needs a trail in the account). A call that failed
    carries `errorCode`/`errorMessage`; it changed nothing and must never be acted on."""

    event_source: str
    event_name: str
    region: str
    account: str
    request_parameters: Mapping[str, Any]
    error_code: str
    error_message: str

    @property
    def failed(self) -> bool:
        return bool(self.error_code or self.error_message)


@dataclass(frozen=True)
class SnapshotEvent:
    """`EBS Snapshot Notification` (one snapshot) or `EBS Multi-Volume Snapshots Completion Status` (a set).

    The events carry snapshot and source ARNs and a result, never tags: whether a snapshot is ours is for the
    ledger to say."""

    event: str  # createSnapshot, createSnapshots, copySnapshot, ...
    result: str  # succeeded or failed
    cause: str
    snapshot_ids: tuple[str, ...]
    # Volume ids (createSnapshot(s)) or source snapshot ids (copySnapshot), in the order of snapshot_ids.
    source_ids: tuple[str, ...]
    region: str
    account: str

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"


@dataclass(frozen=True)
class InstanceStateChange:
    """`EC2 Instance State-change Notification`: `detail` holds only `instance-id` and `state` (pending, running,
    stopping, stopped, shutting-down, terminated); no tags, so whether the instance is ours is for the ledger to say.
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html"""

    instance_id: str
    state: str
    region: str
    account: str


@dataclass(frozen=True)
class VolumeNotification:
    """`EBS Volume Notification`: `detail` holds `event` (createVolume, deleteVolume, attachVolume, ...), `result`
    (createVolume: available or failed), `cause` and `request-id`; the volume is only in `resources`, as an ARN.
    https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html"""

    volume_id: str
    event: str
    result: str
    cause: str
    region: str
    account: str


Decoder = Callable[[Mapping[str, Any]], Any]


def format_time(moment: datetime) -> str:
    """UTC, seconds precision: the form of slots, deadlines and the `slot` tag."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: all times here are UTC-aware")
    return moment.astimezone(UTC).strftime(SLOT_FORMAT)


def parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"{field} must be an ISO-8601 UTC timestamp, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise MalformedEventError(f"{field} is not an ISO-8601 timestamp: {value!r}") from error
    if moment.tzinfo is None:
        raise MalformedEventError(f"{field} has no time zone: {value!r}")
    return moment.astimezone(UTC).replace(microsecond=0)


def parse_schedule_event(event: object) -> ScheduleTrigger:
    """Accept our Scheduler input (`scheduled_time`), Scheduler's camelCase context attributes, and the
    EventBridge envelope of a Scheduler default notification or a scheduled rule (`time`)."""
    if not isinstance(event, Mapping):
        raise MalformedEventError(f"schedule payload must be a JSON object, got {type(event).__name__}")
    for key in ("scheduled_time", "scheduledTime"):
        if key in event:
            return ScheduleTrigger(parse_time(event[key], key))
    if event.get("detail-type") == "Scheduled Event" and "time" in event:
        return ScheduleTrigger(parse_time(event["time"], "time"))
    raise MalformedEventError("schedule payload has none of scheduled_time, scheduledTime, or a Scheduled Event time")


def _check(payload: Mapping[str, Any]) -> CheckMessage:
    return CheckMessage(
        policy=text(payload, "policy"),
        resource_id=text(payload, "resource_id"),
        source_id=text(payload, "source_id"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        slot=time_field(payload, "slot"),
        deadline=time_field(payload, "deadline"),
    )


def _purge(payload: Mapping[str, Any]) -> PurgeSnapshotsMessage:
    attempt = payload.get("attempt", 1)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise MalformedEventError(f"message field 'attempt' must be a positive integer, got {attempt!r}")
    return PurgeSnapshotsMessage(
        policy=text(payload, "policy"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        snapshot_ids=text_list(payload, "snapshot_ids", prefix="snap-"),
        released_image_ids=text_list(payload, "released_image_ids", prefix="ami-"),
        deadline=time_field(payload, "deadline"),
        attempt=attempt,
    )


def _scope(payload: Mapping[str, Any]) -> ScopeMessage:
    account = text(payload, "account")
    if not re.fullmatch(r"[0-9]{12}", account):
        raise MalformedEventError(f"message field 'account' must be a 12-digit account id, got {account!r}")
    region = optional_text(payload, "region")
    if region is not None and not _REGION.match(region):
        raise MalformedEventError(f"message field 'region' is not a region name: {region!r}")
    return ScopeMessage(
        policy=text(payload, "policy"),
        slot=time_field(payload, "slot"),
        account=account,
        role_arn=text(payload, "role_arn"),
        region=region,
        action=_action(payload),
    )


def _action(payload: Mapping[str, Any]) -> str:
    """A fan-out message's scheduler action (start|stop), empty for the backup modules."""
    action = payload.get("action", "")
    if not isinstance(action, str):
        raise MalformedEventError(f"message field 'action' must be a string, got {action!r}")
    return action


def _count(payload: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = payload.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedEventError(f"message field {key!r} must be a non-negative integer, got {value!r}")
    return value


def _slot_audit(payload: Mapping[str, Any]) -> SlotAuditMessage:
    return SlotAuditMessage(
        policy=text(payload, "policy"),
        slot=time_field(payload, "slot"),
        accounts=_count(payload, "accounts"),
        regions=_count(payload, "regions"),
        action=_action(payload),
        attempt=_count(payload, "attempt", 1),
    )


CORE_DECODERS: Mapping[str, Decoder] = {
    "check": _check,
    "purge_snapshots": _purge,
    "plan_scope": _scope,
    "slot_audit": _slot_audit,
}
EVENT_DECODERS: Mapping[str, Decoder] = {
    AMI_STATE_CHANGE: lambda event: _ami_state_change(event),
    EBS_SNAPSHOT_NOTIFICATION: lambda event: _snapshot_event(event),
    EBS_MULTI_VOLUME_SNAPSHOTS: lambda event: _snapshot_event(event),
}


def parse_work_body(body: object, module_decoders: Mapping[str, Decoder]) -> Any:
    """Decode one SQS record body: a message of the core's or the module's kinds (keyed by `kind`), or a forwarded
    event (keyed by `detail-type`: the EC2 state events, and the module's own)."""
    if not isinstance(body, str):
        raise MalformedEventError(f"message body must be a string, got {type(body).__name__}")
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as error:
        raise MalformedEventError(f"message body is not JSON: {error.msg}") from error
    if not isinstance(payload, dict):
        raise MalformedEventError("message body must be a JSON object")
    kind = payload.get("kind")
    decoders = {**CORE_DECODERS, **module_decoders}
    if isinstance(kind, str) and kind in decoders:
        return decoders[kind](payload)
    detail_type = payload.get("detail-type")
    event_decoders = {**EVENT_DECODERS, **module_decoders}
    if isinstance(detail_type, str) and detail_type in event_decoders:
        return event_decoders[detail_type](payload)
    if kind is not None:
        raise MalformedEventError(f"unknown message kind {kind!r}")
    raise MalformedEventError(f"not a work message nor a known state event (detail-type={detail_type!r})")


def to_body(message: WorkMessage) -> str:
    """JSON body. Non-ASCII stays unescaped: SQS counts UTF-8 bytes, and `\\uXXXX` escapes would make tags in other
    scripts up to three times larger. Tags come from EC2's XML responses, so they only hold characters SQS accepts."""
    body = asdict(message)
    for key in message.OMIT_WHEN_NONE:
        if body.get(key) is None:
            body.pop(key, None)
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def _ami_state_change(event: Mapping[str, Any]) -> AmiStateChange:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("AMI state change event has no detail object")
    image_id = detail.get("ImageId") or _image_id_from_resources(event.get("resources"))
    if not isinstance(image_id, str) or not image_id.startswith("ami-"):
        raise MalformedEventError(f"AMI state change event has no image id (detail.ImageId={detail.get('ImageId')!r})")
    return AmiStateChange(
        image_id=image_id,
        state=text(detail, "State", where="detail"),
        region=text(event, "region"),
        account=text(event, "account"),
        error_message=str(detail.get("ErrorMessage") or ""),
    )


def _snapshot_event(event: Mapping[str, Any]) -> SnapshotEvent:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("EBS snapshot event has no detail object")
    entries = detail.get("snapshots") if "snapshots" in detail else [detail]
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, Mapping) for entry in entries):
        raise MalformedEventError(f"EBS snapshot event has no snapshots (detail.snapshots={entries!r})")
    arns = [text(entry, "snapshot_id", where="detail") for entry in entries]
    envelope_region = text(event, "region")
    return SnapshotEvent(
        event=text(detail, "event", where="detail"),
        result=text(detail, "result", where="detail"),
        cause=str(detail.get("cause") or ""),
        snapshot_ids=tuple(resource_id(arn, "snapshot/", "snap-") for arn in arns),
        source_ids=tuple(_source_id(entry.get("source")) for entry in entries),
        # The snapshot's own region; the envelope's where an ARN layout carries none.
        region=arn_region(arns[0]) or envelope_region,
        account=text(event, "account"),
    )


def decode_api_call_event(event: Mapping[str, Any]) -> ApiCallEvent:
    """A module that subscribes to CloudTrail events passes this as its decoder for `CLOUDTRAIL_API_CALL`; the
    other modules reject such events as unknown."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("CloudTrail event has no detail object")
    parameters = detail.get("requestParameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise MalformedEventError(f"CloudTrail event detail.requestParameters is not an object: {parameters!r}")
    region = detail.get("awsRegion") or event.get("region")
    return ApiCallEvent(
        event_source=text(detail, "eventSource", where="detail"),
        event_name=text(detail, "eventName", where="detail"),
        region=region if isinstance(region, str) and region else text(event, "region"),
        account=str(detail.get("recipientAccountId") or text(event, "account")),
        request_parameters=dict(parameters or {}),
        error_code=str(detail.get("errorCode") or ""),
        error_message=str(detail.get("errorMessage") or ""),
    )


def decode_instance_state_change(event: Mapping[str, Any]) -> InstanceStateChange:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("instance state-change event has no detail object")
    instance_id = text(detail, "instance-id", where="detail")
    if not re.fullmatch(r"i-[0-9a-f]{8,17}", instance_id):
        raise MalformedEventError(f"instance state-change event detail.instance-id is not an id: {instance_id!r}")
    return InstanceStateChange(
        instance_id=instance_id,
        state=text(detail, "state", where="detail"),
        region=text(event, "region"),
        account=text(event, "account"),
    )


def decode_volume_notification(event: Mapping[str, Any]) -> VolumeNotification:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("EBS volume event has no detail object")
    resources = event.get("resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], str):
        raise MalformedEventError(f"EBS volume event has no volume in resources: {resources!r}")
    return VolumeNotification(
        volume_id=resource_id(resources[0], "volume/", "vol-"),
        event=text(detail, "event", where="detail"),
        # Events other than createVolume may carry no result; only createVolume's is acted on.
        result=str(detail.get("result") or ""),
        cause=str(detail.get("cause") or ""),
        region=arn_region(resources[0]) or text(event, "region"),
        account=text(event, "account"),
    )


def resource_id(arn_or_id: str, marker: str, prefix: str) -> str:
    """The id after `snapshot/` (or `volume/`...) whatever the ARN layout: AWS documents three for EBS events
    (`arn:aws:ec2::REGION:snapshot/..`, `arn:aws:ec2:REGION::snapshot/..`, `arn:aws:ec2:REGION:ACCOUNT:snapshot/..`)."""
    candidate = arn_or_id.rsplit(marker, 1)[-1]
    if not candidate.startswith(prefix) or not re.fullmatch(r"[a-z]+-[0-9a-f]+", candidate):
        raise MalformedEventError(f"not a {prefix}... id or ARN: {arn_or_id!r}")
    return candidate


def arn_region(arn: str) -> str | None:
    """The region field of an ARN in any of the documented EBS layouts (4th or 5th field), if it has one."""
    fields = arn.split(":")
    return next((field for field in fields[3:5] if _REGION.match(field)), None) if len(fields) >= 6 else None


def _source_id(source: object) -> str:
    if not isinstance(source, str) or not source:
        return ""
    return source.rsplit("/", 1)[-1]


def _image_id_from_resources(resources: object) -> str | None:
    if isinstance(resources, list) and resources and isinstance(resources[0], str) and "image/" in resources[0]:
        return resources[0].rsplit("image/", 1)[1]
    return None


# ---------------------------------------------------------------------------------------------------------------
# Field readers for message decoders (modules use them for their own kinds)
# ---------------------------------------------------------------------------------------------------------------


def text(payload: Mapping[str, Any], key: str, where: str = "message") -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"{where} field {key!r} must be a non-empty string, got {value!r}")
    return value


def optional_text(payload: Mapping[str, Any], key: str) -> str | None:
    if key not in payload:
        raise MalformedEventError(f"message field {key!r} is missing (use null for none)")
    if payload[key] is None:
        return None
    return text(payload, key)


def time_field(payload: Mapping[str, Any], key: str) -> str:
    return format_time(parse_time(payload.get(key), key))


def text_list(payload: Mapping[str, Any], key: str, prefix: str = "") -> tuple[str, ...]:
    value = payload.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) and item.startswith(prefix) for item in value):
        raise MalformedEventError(f"message field {key!r} must be a list of {prefix or ''}... strings, got {value!r}")
    return tuple(value)


def optional_tags(payload: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MalformedEventError(f"message field {key!r} must be an object of string tag values")
    return dict(value)
