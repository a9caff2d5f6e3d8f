"""Resolve backup targets with server-side filters: API calls grow with result pages, never with targets.

Instances and volumes go through the same resolution; a `ResourceKind` holds the little that differs (the
describe call, its filter names, page size, id shape and how a page is read).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import InvalidInputError

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


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    tags: Mapping[str, str]
    root_device_name: str | None = None
    # (device name, volume id) of every attached EBS volume, from the same DescribeInstances page.
    ebs_volumes: tuple[tuple[str, str], ...] = ()
    # Why the instance is in its state (Code, Message), e.g. a start that fell back to `stopped`.
    state_reason: Mapping[str, str] | None = None
    # `ebs` or `instance-store` (which cannot be stopped).
    root_device_type: str | None = None
    # InstanceLifecycle: `spot`, `scheduled`, `capacity-block`; None for On-Demand.
    lifecycle: str | None = None
    # HibernationOptions.Configured: enabled for hibernation at launch (it cannot be enabled later).
    hibernation_configured: bool = False

    @property
    def root_volume_id(self) -> str | None:
        return next((volume for device, volume in self.ebs_volumes if device == self.root_device_name), None)


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
                root_device_name=raw.get("RootDeviceName"),
                ebs_volumes=tuple(
                    (mapping.get("DeviceName", ""), mapping["Ebs"]["VolumeId"])
                    for mapping in raw.get("BlockDeviceMappings", [])
                    if mapping.get("Ebs", {}).get("VolumeId")
                ),
                state_reason={str(k): str(v) for k, v in raw["StateReason"].items()}
                if raw.get("StateReason")
                else None,
                root_device_type=raw.get("RootDeviceType"),
                lifecycle=raw.get("InstanceLifecycle"),
                hibernation_configured=bool(raw.get("HibernationOptions", {}).get("Configured", False)),
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


class Stream(Generic[T]):
    """Targets page by page, each target once: memory is bounded by a page, not by the fleet.

    Explicit ids go into an id filter rather than `InstanceIds`/`VolumeIds`, so one unknown id cannot fail the whole
    call; once the id pages are consumed, `missing` holds the ids that matched nothing, for the caller to report."""

    def __init__(
        self,
        ec2: Any,
        kind: ResourceKind[T],
        ids: Sequence[str],
        target_tags: Mapping[str, str],
        states: Sequence[str],
    ) -> None:
        self._ec2 = ec2
        self._kind = kind
        self._ids = sorted(set(ids))
        self._tags = dict(target_tags)
        self._states = list(states)
        self.missing: tuple[str, ...] = ()

    def pages(self) -> Iterator[tuple[T, ...]]:
        kind = self._kind
        state_filter = {"Name": kind.state_filter, "Values": self._states}
        seen: set[str] = set()
        filter_sets = [
            [{"Name": kind.id_filter, "Values": chunk}, state_filter] for chunk in chunked(self._ids, MAX_FILTER_VALUES)
        ]
        for filters in filter_sets:
            yield from self._new_pages(filters, seen)
        self.missing = tuple(sorted(set(self._ids) - seen))
        if self._tags:
            yield from self._new_pages([*tag_filters(self._tags), state_filter], seen)

    def _new_pages(self, filters: list[dict[str, Any]], seen: set[str]) -> Iterator[tuple[T, ...]]:
        paginator = self._ec2.get_paginator(self._kind.paginator)
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": self._kind.page_size}):
            fresh = []
            for item in self._kind.read_page(page):
                key = self._kind.key(item)
                if key not in seen:
                    seen.add(key)
                    fresh.append(item)
            if fresh:
                yield tuple(fresh)


def stream_instances(
    ec2: Any, instance_ids: Sequence[str], target_tags: Mapping[str, str], states: Sequence[str] = DEFAULT_STATES
) -> Stream[Instance]:
    return Stream(ec2, INSTANCES, instance_ids, target_tags, states)


def stream_volumes(
    ec2: Any, volume_ids: Sequence[str], target_tags: Mapping[str, str], states: Sequence[str] = DEFAULT_VOLUME_STATES
) -> Stream[Volume]:
    return Stream(ec2, VOLUMES, volume_ids, target_tags, states)


def volumes_attached_to(ec2: Any, instance_ids: Sequence[str]) -> Iterator[Volume]:
    """The volumes attached to the given instances (one page of them at a time), for their tags."""
    paginator = ec2.get_paginator(VOLUMES.paginator)
    for chunk in chunked(sorted(set(instance_ids)), MAX_FILTER_VALUES):
        pages = paginator.paginate(
            Filters=[{"Name": "attachment.instance-id", "Values": chunk}],
            PaginationConfig={"PageSize": VOLUMES.page_size},
        )
        for page in pages:
            yield from _volumes(page)


def _resolve(
    ec2: Any,
    kind: ResourceKind[T],
    ids: Sequence[str],
    target_tags: Mapping[str, str],
    states: Sequence[str],
) -> tuple[tuple[T, ...], tuple[str, ...]]:
    stream = Stream(ec2, kind, ids, target_tags, states)
    found = {kind.key(item): item for page in stream.pages() for item in page}
    return tuple(found[key] for key in sorted(found)), stream.missing
