"""Resolve backup targets with server-side filters: API calls grow with result pages, never with targets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INSTANCE_ID_PATTERN = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
MAX_TAG_KEY_LENGTH = 128
# EC2 accepts up to 200 values per filter; one below keeps a margin against that documented ceiling.
MAX_FILTER_VALUES = 199
PAGE_SIZE = 1000
DEFAULT_STATES: tuple[str, ...] = ("running", "stopping", "stopped")


class InvalidInputError(ValueError):
    """A user-supplied identifier or filter is malformed."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class Resolution:
    """Instances found, and explicit ids that matched nothing (unknown, terminated, or in another region)."""

    instances: tuple[Instance, ...]
    missing: tuple[str, ...]


def validate_instance_id(value: str) -> str:
    if not isinstance(value, str) or not INSTANCE_ID_PATTERN.match(value):
        raise InvalidInputError("instance_id", value, "must be 'i-' followed by 8 or 17 lowercase hex digits")
    return value


def validate_tag_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError("tag_key", key, "must be a non-empty string")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise InvalidInputError("tag_key", key, f"must be at most {MAX_TAG_KEY_LENGTH} characters")
    if key.lower().startswith("aws:"):
        raise InvalidInputError("tag_key", key, "the 'aws:' prefix is reserved")
    return key


def validate_target_tags(tags: Mapping[str, str]) -> Mapping[str, str]:
    for key, value in tags.items():
        validate_tag_key(key)
        if not isinstance(value, str):
            raise InvalidInputError("tag_value", value, f"value of tag {key!r} must be a string")
    return tags


def chunked(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def tag_filters(target_tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """One `tag:Key` filter per key (EC2 ANDs them); `tag-key`+`tag-value` pairs would match across tags."""
    return [{"Name": f"tag:{key}", "Values": [value]} for key, value in sorted(target_tags.items())]


def resolve_instances(
    ec2: Any,
    instance_ids: Sequence[str],
    target_tags: Mapping[str, str],
    states: Sequence[str] = DEFAULT_STATES,
) -> Resolution:
    """Union of the explicit ids and the instances carrying every target tag, in the given states.

    Explicit ids go into an `instance-id` filter rather than `InstanceIds`, so one unknown id cannot fail the
    whole call; ids that matched nothing come back in `missing` for the caller to report.
    """
    state_filter = {"Name": "instance-state-name", "Values": list(states)}
    found: dict[str, Instance] = {}
    for ids in chunked(sorted(set(instance_ids)), MAX_FILTER_VALUES):
        found.update(_describe(ec2, [{"Name": "instance-id", "Values": ids}, state_filter]))
    missing = tuple(sorted(set(instance_ids) - set(found)))
    if target_tags:
        found.update(_describe(ec2, [*tag_filters(target_tags), state_filter]))
    return Resolution(instances=tuple(found[key] for key in sorted(found)), missing=missing)


def _describe(ec2: Any, filters: list[dict[str, Any]]) -> dict[str, Instance]:
    result: dict[str, Instance] = {}
    paginator = ec2.get_paginator("describe_instances")
    for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}):
        for instance in _instances(page):
            result[instance.instance_id] = instance
    return result


def _instances(page: Mapping[str, Any]) -> Iterable[Instance]:
    for reservation in page.get("Reservations", []):
        for raw in reservation.get("Instances", []):
            yield Instance(
                instance_id=raw["InstanceId"],
                state=raw.get("State", {}).get("Name", "unknown"),
                tags={tag["Key"]: tag["Value"] for tag in raw.get("Tags", [])},
            )
