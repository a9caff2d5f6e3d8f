"""What is particular to EBS snapshots, as pure functions: which volumes, the two request kinds, their messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..core import config, tagging
from ..core.config import CompletionConfig, RetentionConfig, ScopeConfig, VolumeTargetConfig
from ..core.errors import ConfigError, InvalidInputError, MalformedEventError
from ..core.events import WorkMessage, optional_tags, optional_text, parse_time, text, text_list, time_field
from ..core.restore import RestoreTestConfig, restore_config
from ..core.targeting import Instance

SnapshotMode = Literal["volume", "instance"]
# InstanceSpecification.ExcludeDataVolumeIds takes up to 40 volume ids.
MAX_EXCLUDED_VOLUMES = 40
# managed-by, policy, source-instance, slot, snapshot-set.
OWNERSHIP_TAGS_PER_SET = 5
MODES: tuple[SnapshotMode, ...] = ("volume", "instance")


@dataclass(frozen=True)
class EbsSnapshotConfig:
    """Settings of the ebs-snapshot planner and worker (both get the same set)."""

    scope: ScopeConfig
    targets: VolumeTargetConfig
    retention: RetentionConfig
    completion: CompletionConfig
    mode: SnapshotMode
    copy_volume_tags: bool
    # Restore tests (OPS_RESTORE_TEST; None: off): one new volume per snapshot of a set, `available`, then deleted.
    restore: RestoreTestConfig | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EbsSnapshotConfig:
        env = config.environ_of(environ)
        mode = env.get("OPS_SNAPSHOT_MODE", "")
        if mode not in MODES:
            raise ConfigError("OPS_SNAPSHOT_MODE", env.get("OPS_SNAPSHOT_MODE"), "must be volume or instance")
        targets = VolumeTargetConfig.from_env(env)
        if mode == "instance" and (targets.targets_volumes or not targets.targets_instances):
            # A crash-consistent set is all of an instance's volumes at one instant: it is chosen by instance.
            raise ConfigError(
                "OPS_VOLUME_IDS",
                env.get("OPS_VOLUME_IDS"),
                "snapshot mode instance takes instance ids or instance tags, and no volume ids or volume tags",
            )
        scope = ScopeConfig.from_env(env)
        config.explicit_ids_in_one_account(env, scope, "OPS_VOLUME_IDS", targets.volume_ids)
        config.explicit_ids_in_one_account(env, scope, "OPS_INSTANCE_IDS", targets.instances.instance_ids)
        return cls(
            scope=scope,
            targets=targets,
            retention=RetentionConfig.from_env(env),
            completion=CompletionConfig.from_env(env),
            mode=mode,
            copy_volume_tags=config.boolean(env, "OPS_COPY_VOLUME_TAGS"),
            restore=restore_config(env, scope),
        )


@dataclass(frozen=True)
class CreateSnapshotMessage(WorkMessage):
    """Volume mode: one CreateSnapshot of one volume for one slot."""

    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"volume_tags"})

    policy: str
    volume_id: str
    # The instance the volume was attached to when planned (a tag on the snapshot, for people), if any.
    instance_id: str | None
    region: str
    role_arn: str | None
    slot: str
    # Tags to copy, from the planner's listing. None: not carried (copying is off).
    volume_tags: dict[str, str] | None = None
    kind: Literal["create_snapshot"] = "create_snapshot"

    @property
    def source_id(self) -> str:
        return self.volume_id


@dataclass(frozen=True)
class CreateSnapshotsMessage(WorkMessage):
    """Instance mode: one crash-consistent CreateSnapshots set of one instance for one slot."""

    policy: str
    instance_id: str
    region: str
    role_arn: str | None
    slot: str
    exclude_boot_volume: bool
    exclude_volume_ids: tuple[str, ...]
    # CopyTagsFromSource=volume, decided by the planner from the volumes' tags (see `copies_tags_safely`).
    copy_volume_tags: bool
    kind: Literal["create_snapshots"] = "create_snapshots"

    @property
    def source_id(self) -> str:
        return self.instance_id


def decode_create_snapshot(payload: Mapping[str, Any]) -> CreateSnapshotMessage:
    return CreateSnapshotMessage(
        policy=text(payload, "policy"),
        volume_id=text(payload, "volume_id"),
        instance_id=optional_text(payload, "instance_id"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        slot=time_field(payload, "slot"),
        volume_tags=optional_tags(payload, "volume_tags"),
    )


def _flag(payload: Mapping[str, Any], key: str) -> bool:
    value = payload.get(key)
    if not isinstance(value, bool):
        raise MalformedEventError(f"message field {key!r} must be true or false, got {value!r}")
    return value


def decode_create_snapshots(payload: Mapping[str, Any]) -> CreateSnapshotsMessage:
    return CreateSnapshotsMessage(
        policy=text(payload, "policy"),
        instance_id=text(payload, "instance_id"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        slot=time_field(payload, "slot"),
        exclude_boot_volume=_flag(payload, "exclude_boot_volume"),
        exclude_volume_ids=text_list(payload, "exclude_volume_ids", prefix="vol-"),
        copy_volume_tags=_flag(payload, "copy_volume_tags"),
    )


def set_id(policy: str, instance_id: str, slot: str) -> str:
    """Deterministic per (policy, instance, slot), known before the call so the set is tagged at creation."""
    compact = parse_time(slot, "slot").strftime("%Y%m%dT%H%M%SZ")
    return f"{policy}-{instance_id}-{compact}"


def description(policy: str, source_id: str, slot: str) -> str:
    return f"ops-automation {policy} snapshot of {source_id} at {slot}"


def create_snapshot_request(policy: str, message: CreateSnapshotMessage) -> dict[str, Any]:
    """CreateSnapshot arguments, the snapshot tagged at creation (IAM requires the ownership tags)."""
    tags = tagging.ownership_tags(
        policy, source_volume=message.volume_id, source_instance=message.instance_id, slot=message.slot
    )
    tags = tagging.with_copied_tags(tags, message.volume_tags or {})
    return {
        "VolumeId": message.volume_id,
        "Description": description(policy, message.volume_id, message.slot),
        "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)}],
    }


def copies_tags_safely(volume_tags: Iterable[Mapping[str, str]]) -> bool:
    """Whether CreateSnapshots may copy the volumes' tags (CopyTagsFromSource) next to the ownership tags. AWS does
    not document how copied tags merge with TagSpecifications or count against the 50-tag limit, so tags are copied
    only when no volume carries a key of ours and every volume's tags fit beside the ownership tags."""
    room = tagging.MAX_TAGS_PER_RESOURCE - OWNERSHIP_TAGS_PER_SET
    return all(len(tags) <= room and not any(key.startswith(tagging.PREFIX) for key in tags) for tags in volume_tags)


def create_snapshots_request(policy: str, message: CreateSnapshotsMessage) -> dict[str, Any]:
    """CreateSnapshots arguments: every snapshot of the set gets the same tags at creation. Each snapshot's source
    volume is its `VolumeId`, which EC2 records itself."""
    tags = tagging.ownership_tags(
        policy,
        source_instance=message.instance_id,
        slot=message.slot,
        snapshot_set=set_id(policy, message.instance_id, message.slot),
    )
    specification: dict[str, Any] = {"InstanceId": message.instance_id}
    if message.exclude_boot_volume:
        specification["ExcludeBootVolume"] = True
    if message.exclude_volume_ids:
        specification["ExcludeDataVolumeIds"] = list(message.exclude_volume_ids)
    request: dict[str, Any] = {
        "InstanceSpecification": specification,
        "Description": description(policy, message.instance_id, message.slot),
        "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)}],
    }
    if message.copy_volume_tags:
        request["CopyTagsFromSource"] = "volume"
    return request


def volume_source_filters(policy: str, volume_id: str) -> list[dict[str, Any]]:
    """The volume-mode snapshots of one volume (instance-mode sets carry no source-volume tag)."""
    return [
        {"Name": f"tag:{tagging.POLICY}", "Values": [policy]},
        {"Name": f"tag:{tagging.SOURCE_VOLUME}", "Values": [volume_id]},
    ]


def instance_source_filters(policy: str, instance_id: str) -> list[dict[str, Any]]:
    """The instance-mode sets of one instance (volume-mode snapshots of its volumes carry no set tag)."""
    return [
        {"Name": f"tag:{tagging.POLICY}", "Values": [policy]},
        {"Name": f"tag:{tagging.SOURCE_INSTANCE}", "Values": [instance_id]},
        {"Name": "tag-key", "Values": [tagging.SNAPSHOT_SET]},
    ]


def source_filters(policy: str, mode: SnapshotMode, source_id: str) -> list[dict[str, Any]]:
    return (
        instance_source_filters(policy, source_id) if mode == "instance" else volume_source_filters(policy, source_id)
    )


def source_of(snapshot: Mapping[str, Any], mode: SnapshotMode) -> str:
    tags = tagging.tag_dict(snapshot.get("Tags"))
    return tags.get(tagging.SOURCE_INSTANCE if mode == "instance" else tagging.SOURCE_VOLUME, "")


def instance_volumes(instance: Instance, exclude_root: bool) -> list[str]:
    """The instance's EBS volumes to snapshot in volume mode, root first unless excluded."""
    root = instance.root_volume_id
    volumes = [volume for _, volume in instance.ebs_volumes]
    return [volume for volume in volumes if not (exclude_root and volume == root)]


def instance_set_plan(
    instance: Instance, exclude_root: bool, excluded_volume_ids: Iterable[str]
) -> tuple[bool, tuple[str, ...]] | None:
    """Instance mode: (ExcludeBootVolume, ExcludeDataVolumeIds) for the instance, or None when nothing is left to
    snapshot. The root volume goes through ExcludeBootVolume only: CreateSnapshots fails when ExcludeDataVolumeIds
    names it."""
    root = instance.root_volume_id
    excluded = set(excluded_volume_ids)
    data = [volume for _, volume in instance.ebs_volumes if volume != root]
    exclude_boot = exclude_root or (root is not None and root in excluded)
    included = [volume for volume in data if volume not in excluded]
    if not included and (exclude_boot or root is None):
        return None
    excluded_data = tuple(sorted(volume for volume in data if volume in excluded))
    if len(excluded_data) > MAX_EXCLUDED_VOLUMES:
        raise InvalidInputError(
            "exclude_volume_tags",
            f"{instance.instance_id}: {len(excluded_data)} volumes",
            f"CreateSnapshots excludes at most {MAX_EXCLUDED_VOLUMES} data volumes per instance",
        )
    return exclude_boot, excluded_data
