"""What is particular to AMI backups, as pure functions: names, requests, messages, how an image counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..core import config, tagging
from ..core.config import CompletionConfig, InstanceTargetConfig, RetentionConfig, ScopeConfig
from ..core.events import WorkMessage, optional_tags, optional_text, parse_time, text, time_field
from ..core.image_links import image_state
from ..core.retention import RetentionItem

# CreateImage accepts running or stopped instances; these two pass on their own, so the item is retried.
TRANSIENT_INSTANCE_STATES = frozenset({"pending", "stopping"})


@dataclass(frozen=True)
class AmiBackupConfig:
    """Settings of the ami-backup planner and worker (both get the same set)."""

    scope: ScopeConfig
    targets: InstanceTargetConfig
    retention: RetentionConfig
    completion: CompletionConfig
    no_reboot: bool
    copy_instance_tags: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AmiBackupConfig:
        env = config.environ_of(environ)
        scope = ScopeConfig.from_env(env)
        targets = InstanceTargetConfig.from_env(env)
        config.explicit_ids_in_one_account(env, scope, "OPS_INSTANCE_IDS", targets.instance_ids)
        return cls(
            scope=scope,
            targets=targets,
            retention=RetentionConfig.from_env(env),
            completion=CompletionConfig.from_env(env),
            no_reboot=config.boolean(env, "OPS_NO_REBOOT"),
            copy_instance_tags=config.boolean(env, "OPS_COPY_INSTANCE_TAGS"),
        )


@dataclass(frozen=True)
class CreateImageMessage(WorkMessage):
    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"instance_tags"})

    policy: str
    instance_id: str
    region: str
    role_arn: str | None
    slot: str
    # Tags the worker copies onto the AMI, taken from the planner's own listing so the worker never describes
    # the instance. None: not carried (copying is off).
    instance_tags: dict[str, str] | None = None
    kind: Literal["create_image"] = "create_image"

    @property
    def source_id(self) -> str:
        return self.instance_id


def decode_create_image(payload: Mapping[str, Any]) -> CreateImageMessage:
    return CreateImageMessage(
        policy=text(payload, "policy"),
        instance_id=text(payload, "instance_id"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        slot=time_field(payload, "slot"),
        instance_tags=optional_tags(payload, "instance_tags"),
    )


def ami_name(policy: str, instance_id: str, slot: str) -> str:
    """Deterministic per (policy, instance, slot): a second CreateImage for the same slot collides by name."""
    compact = parse_time(slot, "slot").strftime("%Y%m%dT%H%M%SZ")
    return f"{policy}-{instance_id}-{compact}"


def carried_tags(instance_tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a `create_image` message carries: only the copyable ones (no `aws:` or ownership keys), at most
    EC2's 50 per resource. Even 50 tags of maximal length (128 + 256 characters, 4 UTF-8 bytes each) stay
    under 80 KB, far below SQS's 256 KiB per message."""
    return tagging.with_copied_tags({}, instance_tags)


def create_image_request(policy: str, message: CreateImageMessage, no_reboot: bool) -> dict[str, Any]:
    """CreateImage arguments: the image *and* its snapshots tagged at creation (IAM requires the ownership tags)."""
    tags = tagging.ownership_tags(policy, source_instance=message.instance_id, slot=message.slot)
    tags = tagging.with_copied_tags(tags, message.instance_tags or {})
    return {
        "InstanceId": message.instance_id,
        "Name": ami_name(policy, message.instance_id, message.slot),
        "Description": f"ops-automation {policy} backup of {message.instance_id} at {message.slot}",
        "NoReboot": no_reboot,
        "TagSpecifications": [
            {"ResourceType": "image", "Tags": tagging.tag_list(tags)},
            {"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)},
        ],
    }


def retention_item(image: Mapping[str, Any], policy: str) -> RetentionItem | None:
    state = image_state(image)
    if state is None:
        return None
    return RetentionItem(
        id=image["ImageId"],
        created_at=parse_time(image["CreationDate"], "CreationDate"),
        state=state,
        managed=tagging.is_owned(image.get("Tags"), policy),
    )


def source_filters(policy: str, instance_id: str) -> list[dict[str, Any]]:
    return [
        {"Name": f"tag:{tagging.POLICY}", "Values": [policy]},
        {"Name": f"tag:{tagging.SOURCE_INSTANCE}", "Values": [instance_id]},
    ]
