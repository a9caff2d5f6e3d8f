"""What is particular to disaster-recovery copies, as pure functions: settings, which sources are ours to copy,
each source's lineage, which sources the destination should hold, and the copy requests themselves."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..core import config, tagging
from ..core.clients import account_of_role
from ..core.config import CompletionConfig, RetentionConfig, ScopeConfig
from ..core.errors import ConfigError, InvalidInputError, MalformedEventError
from ..core.events import (
    WorkMessage,
    format_time,
    optional_text,
    parse_time,
    resource_id,
    text,
)
from ..core.ledger import LOCAL_ACCOUNT
from ..core.retention import RetentionItem, plan_retention
from ..core.scope import Target
from ..core.snapshots import is_archived, start_time
from ..core.targeting import validate_target_tags

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z]{2}(-[a-z]+)+-[0-9]):[0-9]{12}:(key|alias)/.+$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$")
SNAPSHOT_ID = re.compile(r"^snap-([0-9a-f]{8}|[0-9a-f]{17})$")
IMAGE_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
# Time-based copies: a completion duration in 15-minute increments from 15 minutes to 48 hours (EBS user guide,
# "Time-based copies for Amazon EBS snapshots and EBS-backed AMIs").
DURATION_STEP_MINUTES = 15
MAX_DURATION_MINUTES = 2880
# EBS gives a copy an arbitrary volume id ("vol-ffff" or "vol-ffffffff"): never a lineage.
ARBITRARY_VOLUME_IDS = frozenset({"vol-ffff", "vol-ffffffff"})
# A CopyImage client token is at most 64 ASCII characters.
CLIENT_TOKEN_LENGTH = 64
DESTINATION_KEYS = frozenset({"kms_key_arn", "role_arn", "completion_duration_minutes"})
MISSED_COMPLETION_DURATION = "EBS Copy Snapshot Missed Completion Duration"
# How often a copy refused for back-pressure (the destination's concurrent-copy limit, throttling) is tried
# again before it is alerted: 96 waits of at most 15 minutes is a day.
MAX_WAITS = 96

SourceKind = Literal["snapshot", "image"]


@dataclass(frozen=True)
class Destination:
    region: str
    kms_key_arn: str | None
    # The disaster-recovery account's role; None: the copy stays in this account.
    role_arn: str | None
    completion_duration_minutes: int | None

    @property
    def target(self) -> Target:
        return Target(self.region, self.role_arn)

    @property
    def account(self) -> str:
        return account_of_role(self.role_arn) if self.role_arn else LOCAL_ACCOUNT

    @property
    def cross_account(self) -> bool:
        return self.role_arn is not None


@dataclass(frozen=True)
class SourceSelection:
    """Which resources of the source region are copied: those of the listed policies (both ownership tags), the
    listed ids, and those carrying every listed tag. Never empty."""

    policies: tuple[str, ...]
    ids: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]

    def selects(self, resource_id: str, tags: Mapping[str, str]) -> bool:
        if resource_id in self.ids:
            return True
        if tags.get(tagging.MANAGED_BY) == tagging.MANAGED_BY_VALUE and tags.get(tagging.POLICY) in self.policies:
            return True
        return tagging.carries_all(tags, self.tags)

    def filter_sets(self, kind: SourceKind) -> list[list[dict[str, Any]]]:
        """One Describe call's filters per kind of selection (EC2 ANDs the filters of one call)."""
        sets: list[list[dict[str, Any]]] = []
        if self.policies:
            sets.append(
                [
                    {"Name": f"tag:{tagging.MANAGED_BY}", "Values": [tagging.MANAGED_BY_VALUE]},
                    {"Name": f"tag:{tagging.POLICY}", "Values": list(self.policies)},
                ]
            )
        if self.tags:
            sets.append([{"Name": f"tag:{key}", "Values": [value]} for key, value in self.tags])
        if self.ids:
            sets.append([{"Name": f"{kind}-id", "Values": list(self.ids)}])
        return sets


@dataclass(frozen=True)
class SnapshotCopyConfig:
    """Settings of the snapshot-copy planner and worker (both get the same set)."""

    scope: ScopeConfig
    destinations: tuple[Destination, ...]
    sources: SourceSelection
    copy_images: bool
    encrypted: bool
    retention: RetentionConfig
    completion: CompletionConfig

    @property
    def kind(self) -> SourceKind:
        return "image" if self.copy_images else "snapshot"

    def destination(self, region: str, account: str) -> Destination | None:
        """The destination an event's (region, account) is, if any."""
        return next((d for d in self.destinations if d.region == region and d.account == account), None)

    def destination_of(self, region: str, role_arn: str | None) -> Destination | None:
        """The destination a work item names, if it still is one."""
        return next((d for d in self.destinations if d.region == region and d.role_arn == role_arn), None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SnapshotCopyConfig:
        env = config.environ_of(environ)
        copy_images = config.boolean(env, "OPS_COPY_IMAGES")
        encrypted = config.boolean(env, "OPS_ENCRYPTED")
        destinations = _destinations(env, copy_images, encrypted)
        policies = config.string_list(env, "OPS_SOURCE_POLICIES")
        own = env.get("OPS_POLICY_NAME", "")
        if own in policies:
            raise ConfigError("OPS_SOURCE_POLICIES", env.get("OPS_SOURCE_POLICIES"), f"lists this policy {own!r}")
        ids = config.string_list(env, "OPS_SOURCE_IDS")
        pattern, what = (IMAGE_ID, "ami-") if copy_images else (SNAPSHOT_ID, "snap-")
        for source_id in ids:
            if not pattern.match(source_id):
                raise ConfigError(
                    "OPS_SOURCE_IDS", env.get("OPS_SOURCE_IDS"), f"{source_id!r} is not an {what}... id (copy_images)"
                )
        tags = config.json_value(env, "OPS_SOURCE_TAGS")
        if not isinstance(tags, dict) or not all(isinstance(value, str) for value in tags.values()):
            raise ConfigError("OPS_SOURCE_TAGS", env.get("OPS_SOURCE_TAGS"), "must be a JSON object of string values")
        try:
            validate_target_tags(tags)
        except InvalidInputError as error:
            raise ConfigError("OPS_SOURCE_TAGS", env.get("OPS_SOURCE_TAGS"), str(error)) from error
        if not policies and not ids and not tags:
            # An empty selection must never widen into "every snapshot of the account".
            raise ConfigError(
                "OPS_SOURCE_POLICIES", env.get("OPS_SOURCE_POLICIES"), "no source policies, source ids or source tags"
            )
        return cls(
            scope=ScopeConfig.from_env(env),
            destinations=destinations,
            sources=SourceSelection(policies, ids, tuple(sorted(tags.items()))),
            copy_images=copy_images,
            encrypted=encrypted,
            retention=RetentionConfig.from_env(env),
            completion=CompletionConfig.from_env(env),
        )


def _destinations(env: Mapping[str, str], copy_images: bool, encrypted: bool) -> tuple[Destination, ...]:
    name = "OPS_COPY_DESTINATIONS"
    raw = config.json_value(env, name)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(name, env.get(name), "must be a non-empty JSON object keyed by destination region")
    destinations: list[Destination] = []
    for region, settings in sorted(raw.items()):
        field = f"{name}[{region!r}]"
        if not REGION.match(region):
            raise ConfigError(name, region, "is not an AWS region name such as ap-northeast-3")
        if not isinstance(settings, dict) or set(settings) != DESTINATION_KEYS:
            raise ConfigError(field, settings, f"must hold exactly {sorted(DESTINATION_KEYS)}")
        key, role, duration = settings["kms_key_arn"], settings["role_arn"], settings["completion_duration_minutes"]
        if role is not None and not (isinstance(role, str) and ROLE_ARN.match(role)):
            raise ConfigError(f"{field}.role_arn", role, "must be an IAM role ARN")
        if key is not None:
            match = KMS_KEY_ARN.match(key) if isinstance(key, str) else None
            if match is None or match.group("region") != region:
                raise ConfigError(f"{field}.kms_key_arn", key, f"must be a KMS key or alias ARN in {region}")
            if not encrypted:
                raise ConfigError("OPS_ENCRYPTED", "false", f"a KMS key is set for {region}: copies must be encrypted")
        if role is not None and key is not None and key.split(":")[4] != account_of_role(role):
            # The copy is made, and encrypted, in the DR account: a key of another account would need a grant there.
            raise ConfigError(f"{field}.kms_key_arn", key, f"must be a key of the DR account of {role}")
        if role is not None and copy_images:
            raise ConfigError(f"{field}.role_arn", role, "cross-account AMI copies are not supported")
        if duration is not None and not (
            isinstance(duration, int)
            and not isinstance(duration, bool)
            and DURATION_STEP_MINUTES <= duration <= MAX_DURATION_MINUTES
            and duration % DURATION_STEP_MINUTES == 0
        ):
            raise ConfigError(f"{field}.completion_duration_minutes", duration, "must be a multiple of 15 in 15..2880")
        destinations.append(Destination(region, key, role, duration))
    return tuple(destinations)


# ---------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A snapshot or AMI of the source region that may be copied."""

    resource_id: str
    kind: SourceKind
    region: str
    created_at: datetime
    # The volume (snapshots) or instance (AMIs) it was made of: copies are retained per lineage.
    lineage: str
    tags: Mapping[str, str]
    ready: bool
    name: str = ""
    kms_key_id: str | None = None
    # In the archive tier (or restored from it for a while): "You can't copy an archived snapshot".
    archived: bool = False


def snapshot_source(snapshot: Mapping[str, Any], region: str) -> Source:
    tags = tagging.tag_dict(snapshot.get("Tags"))
    volume = str(snapshot.get("VolumeId") or "")
    lineage = tags.get(tagging.SOURCE_VOLUME) or (volume if volume and volume not in ARBITRARY_VOLUME_IDS else "")
    return Source(
        resource_id=str(snapshot["SnapshotId"]),
        kind="snapshot",
        region=region,
        created_at=start_time(snapshot),
        lineage=lineage or str(snapshot["SnapshotId"]),
        tags=tags,
        ready=snapshot.get("State") == "completed",
        kms_key_id=str(snapshot["KmsKeyId"]) if snapshot.get("Encrypted") and snapshot.get("KmsKeyId") else None,
        archived=is_archived(snapshot),
    )


def image_source(image: Mapping[str, Any], region: str) -> Source:
    tags = tagging.tag_dict(image.get("Tags"))
    created = parse_time(image["CreationDate"], "CreationDate")
    instance = tags.get(tagging.SOURCE_INSTANCE) or str(image.get("SourceInstanceId") or "")
    return Source(
        resource_id=str(image["ImageId"]),
        kind="image",
        region=region,
        created_at=created,
        lineage=instance or str(image["ImageId"]),
        tags=tags,
        ready=image.get("State") == "available",
        name=str(image.get("Name") or image["ImageId"]),
    )


def sources_to_hold(
    sources: Iterable[Source], generations: int, max_age_days: int | None, now: datetime
) -> list[Source]:
    """The sources a destination should hold a copy of: per lineage, the ready ones its retention would keep if
    every one were copied (the newest generations, and those younger than max_age_days); older ones are not copied,
    their copies would be deleted at once. Ordered newest restore points first: every lineage's newest, then every
    lineage's second newest, and so on, so a backlog makes the copies that matter for recovery first."""
    by_lineage: dict[str, list[Source]] = {}
    for source in sources:
        if source.ready and not source.archived:
            by_lineage.setdefault(source.lineage, []).append(source)
    ranked: list[tuple[int, Source]] = []
    for members in by_lineage.values():
        by_id = {source.resource_id: source for source in members}
        items = [RetentionItem(s.resource_id, s.created_at, "available", True) for s in members]
        kept = plan_retention(items, generations, max_age_days, now).keep_ids  # newest first
        ranked.extend((rank, by_id[item_id]) for rank, item_id in enumerate(kept))
    ranked.sort(key=lambda entry: (entry[0], -entry[1].created_at.timestamp(), entry[1].resource_id))
    return [source for _, source in ranked]


# ---------------------------------------------------------------------------------------------------------------
# Copies
# ---------------------------------------------------------------------------------------------------------------


def copy_tags(policy: str, source: Source) -> dict[str, str]:
    """Ownership, and everything retention and idempotency need in the destination, where DescribeSnapshots says
    nothing of a copy's source and its VolumeId is arbitrary."""
    lineage_key = "source_volume" if source.kind == "snapshot" else "source_instance"
    return tagging.ownership_tags(
        policy,
        **{
            "source_snapshot" if source.kind == "snapshot" else "source_image": source.resource_id,
            lineage_key: source.lineage,
            "source_region": source.region,
            "source_created": format_time(source.created_at),
            "source_policy": source.tags.get(tagging.POLICY) if tagging.is_managed(source.tags) else None,
            "slot": source.tags.get(tagging.SLOT),
        },
    )


def copied_source_id(tags: Mapping[str, str]) -> str | None:
    return tags.get(tagging.SOURCE_SNAPSHOT) or tags.get(tagging.SOURCE_IMAGE)


def copy_created_at(copy: Mapping[str, Any]) -> datetime:
    """When the copy's source was made (its tag), which orders copies; the copy's own start time if untagged."""
    tagged = tagging.tag_dict(copy.get("Tags")).get(tagging.SOURCE_CREATED)
    if tagged:
        try:
            return parse_time(tagged, tagging.SOURCE_CREATED)
        except MalformedEventError:
            pass
    if "CreationDate" in copy:
        return parse_time(copy["CreationDate"], "CreationDate")
    return start_time(copy)


def description(policy: str, source: Source) -> str:
    return f"Copy of {source.resource_id} from {source.region} (ops-automation policy {policy})"


def _encryption(destination: Destination, encrypted: bool) -> dict[str, Any]:
    """An explicit key per region: without one, the copy's key depends on the destination's encryption-by-default
    setting and can be aws/ebs (EBS user guide, "Encryption outcomes")."""
    if not encrypted:
        return {}
    return {"Encrypted": True, **({"KmsKeyId": destination.kms_key_arn} if destination.kms_key_arn else {})}


def copy_snapshot_request(policy: str, source: Source, destination: Destination, encrypted: bool) -> dict[str, Any]:
    """Sent to the destination region's endpoint with SourceRegion: never PresignedUrl or DestinationRegion
    (deprecated; botocore fills them from the client's region)."""
    request: dict[str, Any] = {
        "SourceRegion": source.region,
        "SourceSnapshotId": source.resource_id,
        "Description": description(policy, source),
        "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tagging.tag_list(copy_tags(policy, source))}],
        **_encryption(destination, encrypted),
    }
    if destination.completion_duration_minutes is not None:
        request["CompletionDurationMinutes"] = destination.completion_duration_minutes
    return request


def client_token(policy: str, source_id: str, destination: Destination, attempt: str) -> str:
    """One token per attempt: after a copy failed, the next attempt must not be answered with the failed AMI
    ("If you retry a request that completed successfully using the same client token and the same parameters, the
    retry succeeds without performing any further actions", EC2 idempotency)."""
    key = f"{policy}|{source_id}|{destination.region}|{destination.account}|{attempt}"
    return hashlib.sha256(key.encode()).hexdigest()[:CLIENT_TOKEN_LENGTH]


def copy_image_request(
    policy: str, source: Source, destination: Destination, encrypted: bool, attempt: str
) -> dict[str, Any]:
    tags = tagging.tag_list(copy_tags(policy, source))
    request: dict[str, Any] = {
        "SourceRegion": source.region,
        "SourceImageId": source.resource_id,
        # AMI names are unique per account and region only: the source's name is free in the destination.
        "Name": source.name,
        "Description": description(policy, source),
        "ClientToken": client_token(policy, source.resource_id, destination, attempt),
        "TagSpecifications": [{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}],
        **_encryption(destination, encrypted),
    }
    if destination.completion_duration_minutes is not None:
        request["SnapshotCopyCompletionDurationMinutes"] = destination.completion_duration_minutes
    return request


# ---------------------------------------------------------------------------------------------------------------
# Messages and events
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyMessage(WorkMessage):
    """Copy one source into one destination region (and account)."""

    policy: str
    source_id: str
    source_region: str
    destination_region: str
    destination_role_arn: str | None
    # Back-pressure waits so far (the destination's concurrent-copy limit, throttling).
    waits: int = 0
    kind: Literal["copy"] = "copy"


def decode_copy(payload: Mapping[str, Any]) -> CopyMessage:
    waits = payload.get("waits", 0)
    if not isinstance(waits, int) or isinstance(waits, bool) or waits < 0:
        raise MalformedEventError(f"message field 'waits' must be a non-negative integer, got {waits!r}")
    source_id = text(payload, "source_id")
    if not (SNAPSHOT_ID.match(source_id) or IMAGE_ID.match(source_id)):
        raise MalformedEventError(f"message field 'source_id' is not a snap-... or ami-... id: {source_id!r}")
    return CopyMessage(
        policy=text(payload, "policy"),
        source_id=source_id,
        source_region=text(payload, "source_region"),
        destination_region=text(payload, "destination_region"),
        destination_role_arn=optional_text(payload, "destination_role_arn"),
        waits=waits,
    )


@dataclass(frozen=True)
class MissedCompletionDuration:
    """A time-based copy will finish later than asked (sent while it may still be in progress): a warning."""

    copy_id: str
    source_id: str
    region: str
    account: str
    cause: str


def decode_missed_duration(event: Mapping[str, Any]) -> MissedCompletionDuration:
    """Its ARNs carry region and account, its startTime is not ISO-8601 (not read), and it has no result."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("missed completion duration event has no detail object")
    source = detail.get("source")
    return MissedCompletionDuration(
        copy_id=resource_id(text(detail, "snapshot_id", where="detail"), "snapshot/", "snap-"),
        source_id=resource_id(source, "snapshot/", "snap-") if isinstance(source, str) and source else "",
        region=text(event, "region"),
        account=text(event, "account"),
        cause=str(detail.get("missedCompletionDurationCause") or ""),
    )
