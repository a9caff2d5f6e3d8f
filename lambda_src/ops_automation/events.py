"""Typed records for every payload the functions receive, and the work-queue message bodies they send."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

AMI_STATE_CHANGE = "EC2 AMI State Change"
SLOT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class MalformedEventError(ValueError):
    """A payload that no handler can act on; the reason says which field is wrong."""


@dataclass(frozen=True)
class ScheduleTrigger:
    scheduled_time: datetime

    @property
    def slot(self) -> str:
        return format_time(self.scheduled_time)


@dataclass(frozen=True)
class CreateImageMessage:
    policy: str
    instance_id: str
    region: str
    role_arn: str | None
    slot: str
    # Tags the worker copies onto the AMI, taken from the planner's own listing so the worker never describes
    # the instance. None: not carried (copying is off, or the message predates this field).
    instance_tags: dict[str, str] | None = None
    kind: Literal["create_image"] = "create_image"


@dataclass(frozen=True)
class CheckImageMessage:
    policy: str
    image_id: str
    instance_id: str
    region: str
    role_arn: str | None
    slot: str
    deadline: str
    kind: Literal["check_image"] = "check_image"

    @property
    def deadline_time(self) -> datetime:
        return parse_time(self.deadline, "deadline")


@dataclass(frozen=True)
class AmiStateChange:
    image_id: str
    state: str
    region: str
    account: str
    error_message: str


WorkItem = CreateImageMessage | CheckImageMessage | AmiStateChange


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


def parse_work_body(body: object) -> WorkItem:
    """Decode one SQS record body: our create/check message or a forwarded `EC2 AMI State Change` event."""
    if not isinstance(body, str):
        raise MalformedEventError(f"message body must be a string, got {type(body).__name__}")
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as error:
        raise MalformedEventError(f"message body is not JSON: {error.msg}") from error
    if not isinstance(payload, dict):
        raise MalformedEventError("message body must be a JSON object")
    kind = payload.get("kind")
    if kind == "create_image":
        return CreateImageMessage(
            policy=_text(payload, "policy"),
            instance_id=_text(payload, "instance_id"),
            region=_text(payload, "region"),
            role_arn=_optional_text(payload, "role_arn"),
            slot=format_time(parse_time(payload.get("slot"), "slot")),
            instance_tags=_optional_tags(payload, "instance_tags"),
        )
    if kind == "check_image":
        return CheckImageMessage(
            policy=_text(payload, "policy"),
            image_id=_text(payload, "image_id"),
            instance_id=_text(payload, "instance_id"),
            region=_text(payload, "region"),
            role_arn=_optional_text(payload, "role_arn"),
            slot=format_time(parse_time(payload.get("slot"), "slot")),
            deadline=format_time(parse_time(payload.get("deadline"), "deadline")),
        )
    if payload.get("detail-type") == AMI_STATE_CHANGE:
        return _ami_state_change(payload)
    if kind is not None:
        raise MalformedEventError(f"unknown message kind {kind!r}")
    raise MalformedEventError(
        f"not a work message nor an {AMI_STATE_CHANGE} event (detail-type={payload.get('detail-type')!r})"
    )


def to_body(message: CreateImageMessage | CheckImageMessage) -> str:
    """JSON body; `instance_tags` only when carried, so a message without tags keeps the original format.

    Non-ASCII stays unescaped: SQS counts UTF-8 bytes, and `\\uXXXX` escapes would make tags in other scripts
    up to three times larger. Tags come from EC2's XML responses, so they only hold characters SQS also accepts."""
    body = asdict(message)
    if body.get("instance_tags") is None:
        body.pop("instance_tags", None)
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
        state=_text(detail, "State", where="detail"),
        region=_text(event, "region"),
        account=_text(event, "account"),
        error_message=str(detail.get("ErrorMessage") or ""),
    )


def _image_id_from_resources(resources: object) -> str | None:
    if isinstance(resources, list) and resources and isinstance(resources[0], str) and "image/" in resources[0]:
        return resources[0].rsplit("image/", 1)[1]
    return None


def _text(payload: Mapping[str, Any], key: str, where: str = "message") -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"{where} field {key!r} must be a non-empty string, got {value!r}")
    return value


def _optional_tags(payload: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MalformedEventError(f"message field {key!r} must be an object of string tag values")
    return dict(value)


def _optional_text(payload: Mapping[str, Any], key: str) -> str | None:
    if key not in payload:
        raise MalformedEventError(f"message field {key!r} is missing (use null for none)")
    value = payload[key]
    if value is None:
        return None
    return _text(payload, key)
