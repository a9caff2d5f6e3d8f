"""Resolve backup targets with server-side filters: API calls grow with result pages, never with targets.

Instances and volumes go through the same resolution; a `ResourceKind` holds the little that differs (the
describe call, its filter names, page size, id shape and how a page is read).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

MAX_TAG_KEY_LENGTH = 128
# EC2 accepts up to 200 values per filter; one below keeps a margin against that documented ceiling.
MAX_FILTER_VALUES = 199
# DescribeInstances (and DescribeImages/DescribeSnapshots) accept MaxResults up to 1000.
PAGE_SIZE = 1000
# DescribeVolumes documents MaxResults "between 5 and 500"; a larger value is silently capped at 500.
VOLUME_PAGE_SIZE = 500
DEFAULT_STATES: tuple[str, ...] = ("running", "stopping", "stopped")
# A volume that is `creating` has no data yet; `deleting`/`deleted`/`error` ones cannot be snapshotted.
DEFAULT_VOLUME_STATES: tuple[str, ...] = ("in-use", "available")

T = TypeVar("T")


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
class Volume:
    volume_id: str
    state: str
    tags: Mapping[str, str]
    # Empty for an `available` volume; several with EBS Multi-Attach.
    instance_ids: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    """Instances found, and explicit ids that matched nothing (unknown, terminated, or in another region)."""

    instances: tuple[Instance, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class VolumeResolution:
    """Volumes found, and explicit ids that matched nothing (unknown, deleted, or in another region)."""

    volumes: tuple[Volume, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class ResourceKind(Generic[T]):
    """What differs between describing instances and volumes; everything else is shared."""

    id_field: str
    id_pattern: re.Pattern[str]
    id_prefix: str
    paginator: str
    id_filter: str
    state_filter: str
    page_size: int
    read_page: Callable[[Mapping[str, Any]], Iterable[T]]
    key: Callable[[T], str]


def _instances(page: Mapping[str, Any]) -> Iterable[Instance]:
    for reservation in page.get("Reservations", []):
        for raw in reservation.get("Instances", []):
            yield Instance(
                instance_id=raw["InstanceId"],
                state=raw.get("State", {}).get("Name", "unknown"),
                tags=_tags(raw),
            )


def _volumes(page: Mapping[str, Any]) -> Iterable[Volume]:
    for raw in page.get("Volumes", []):
        yield Volume(
            volume_id=raw["VolumeId"],
            state=raw.get("State", "unknown"),
            tags=_tags(raw),
            instance_ids=tuple(sorted({a["InstanceId"] for a in raw.get("Attachments", []) if "InstanceId" in a})),
        )


def _tags(raw: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in raw.get("Tags", [])}


INSTANCES = ResourceKind[Instance](
    id_field="instance_id",
    id_pattern=re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$"),
    id_prefix="i-",
    paginator="describe_instances",
    id_filter="instance-id",
    state_filter="instance-state-name",
    page_size=PAGE_SIZE,
    read_page=_instances,
    key=lambda instance: instance.instance_id,
)
VOLUMES = ResourceKind[Volume](
    id_field="volume_id",
    id_pattern=re.compile(r"^vol-(?:[0-9a-f]{8}|[0-9a-f]{17})$"),
    id_prefix="vol-",
    paginator="describe_volumes",
    id_filter="volume-id",
    state_filter="status",
    page_size=VOLUME_PAGE_SIZE,
    read_page=_volumes,
    key=lambda volume: volume.volume_id,
)


def _validate_id(kind: ResourceKind[Any], value: str) -> str:
    if not isinstance(value, str) or not kind.id_pattern.match(value):
        raise InvalidInputError(
            kind.id_field, value, f"must be {kind.id_prefix!r} followed by 8 or 17 lowercase hex digits"
        )
    return value


def validate_instance_id(value: str) -> str:
    return _validate_id(INSTANCES, value)


def validate_volume_id(value: str) -> str:
    return _validate_id(VOLUMES, value)


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
    """Union of the explicit ids and the instances carrying every target tag, in the given states."""
    instances, missing = _resolve(ec2, INSTANCES, instance_ids, target_tags, states)
    return Resolution(instances=instances, missing=missing)


def resolve_volumes(
    ec2: Any,
    volume_ids: Sequence[str],
    target_tags: Mapping[str, str],
    states: Sequence[str] = DEFAULT_VOLUME_STATES,
) -> VolumeResolution:
    """Union of the explicit ids and the volumes carrying every target tag, in the given states."""
    volumes, missing = _resolve(ec2, VOLUMES, volume_ids, target_tags, states)
    return VolumeResolution(volumes=volumes, missing=missing)


def _resolve(
    ec2: Any,
    kind: ResourceKind[T],
    ids: Sequence[str],
    target_tags: Mapping[str, str],
    states: Sequence[str],
) -> tuple[tuple[T, ...], tuple[str, ...]]:
    """Explicit ids go into an id filter rather than `InstanceIds`/`VolumeIds`, so one unknown id cannot fail
    the whole call; ids that matched nothing come back as missing for the caller to report."""
    state_filter = {"Name": kind.state_filter, "Values": list(states)}
    found: dict[str, T] = {}
    for chunk in chunked(sorted(set(ids)), MAX_FILTER_VALUES):
        found.update(_describe(ec2, kind, [{"Name": kind.id_filter, "Values": chunk}, state_filter]))
    missing = tuple(sorted(set(ids) - set(found)))
    if target_tags:
        found.update(_describe(ec2, kind, [*tag_filters(target_tags), state_filter]))
    return tuple(found[key] for key in sorted(found)), missing


def _describe(ec2: Any, kind: ResourceKind[T], filters: list[dict[str, Any]]) -> dict[str, T]:
    result: dict[str, T] = {}
    paginator = ec2.get_paginator(kind.paginator)
    for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": kind.page_size}):
        for item in kind.read_page(page):
            result[kind.key(item)] = item
    return result
