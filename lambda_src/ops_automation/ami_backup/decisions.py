"""What is particular to AMI backups, as pure functions: names, requests, messages, how an image counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..core import config, tagging
from ..core.config import CompletionConfig, InstanceTargetConfig, RetentionConfig, ScopeConfig
from ..core.events import WorkMessage, optional_tags, optional_text, parse_time, text, time_field
from ..core.image_links import image_state
from ..core.restore import RestoreConfigError, RestoreTestConfig, restore_config, restore_result_of
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
    # Restore tests (OPS_RESTORE_TEST); None: off.
    restore: RestoreTestConfig | None = None

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
            restore=restore_config(env, scope),
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
    tags = tagging.tag_dict(image.get("Tags"))
    return RetentionItem(
        id=image["ImageId"],
        created_at=parse_time(image["CreationDate"], "CreationDate"),
        state=state,
        managed=tagging.is_owned(tags, policy),
        restore=restore_result_of(tags),
    )


def source_filters(policy: str, instance_id: str) -> list[dict[str, Any]]:
    return [
        {"Name": f"tag:{tagging.POLICY}", "Values": [policy]},
        {"Name": f"tag:{tagging.SOURCE_INSTANCE}", "Values": [instance_id]},
    ]


# The smallest instance type a restore test launches an AMI on, by what the AMI needs (DescribeImages
# Architecture, EnaSupport, Platform). Checked against DescribeInstanceTypes (ProcessorInfo.SupportedArchitectures,
# NetworkInfo.EnaSupport: unsupported | supported | required,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NetworkInfo.html), as moto's copy of its answers shows:
# - t4g.nano: arm64 only, ENA required (Graviton, Nitro), 0.5 GiB.
# - t3.nano: x86_64 only, ENA required (Nitro), 0.5 GiB: an AMI without ENA support cannot launch on it
#   (InvalidParameterCombination "Enhanced networking with the Elastic Network Adapter (ENA) is required").
# - t2.nano: i386 and x86_64, ENA unsupported (Xen), 0.5 GiB: the one small type for 32-bit and non-ENA AMIs.
# - Windows: Microsoft's minimum memory is 512 MB for Server Core but 2 GB for the Desktop Experience
#   (https://learn.microsoft.com/en-us/windows-server/get-started/hardware-requirements), and an AMI does not say
#   which it holds: t3.small / t2.small (2 GiB). AWS documents no minimum of its own (none found).
# - An AMI with BootMode `uefi` cannot boot on t2 (Xen, legacy BIOS only): "If the operating system is not configured
#   to support UEFI, the instance launch will be unsuccessful", and Intel/AMD types default to legacy-bios
#   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-boot.html): x86 uefi AMIs go to t3 / t3.small (Nitro;
#   without ENA support the launch is refused: "restore test cannot run", not a failed backup).
# Mac AMIs need a Dedicated Host (mac1/mac2 .metal), which a restore test does not allocate.
DEFAULT_RESTORE_TYPES = {
    ("arm64", True): "t4g.nano",
    ("arm64", False): "t4g.nano",
    ("x86_64", True): "t3.nano",
    ("x86_64", False): "t2.nano",
    ("i386", True): "t2.nano",
    ("i386", False): "t2.nano",
}
WINDOWS_RESTORE_TYPES = {True: "t3.small", False: "t2.small"}
INSTANCE_TYPE_FIELD = "restore_test.instance_type"


def restore_instance_type(
    architecture: str,
    ena_support: bool,
    platform: str,
    override: str | None,
    override_architectures: tuple[str, ...] | list[str] = (),
    boot_mode: str = "",
) -> str:
    """The instance type a restore test launches an AMI on: the configured one if it can run the AMI's
    architecture (`override_architectures`: its DescribeInstanceTypes SupportedArchitectures), else the smallest
    type that can (DEFAULT_RESTORE_TYPES). Raises RestoreConfigError naming the field and the value."""
    if override:
        if architecture not in override_architectures:
            supported = ", ".join(override_architectures) or "none (unknown instance type in this region)"
            raise RestoreConfigError(
                f"{INSTANCE_TYPE_FIELD}={override!r} cannot run the AMI's architecture {architecture} "
                f"(it supports: {supported})"
            )
        return override
    if architecture.endswith("_mac"):
        raise RestoreConfigError(
            f"the AMI's architecture {architecture} needs a Mac Dedicated Host; restore tests do not allocate one"
        )
    if boot_mode == "uefi" and architecture == "x86_64":
        # Nitro even without ENA support: t2 cannot boot it at all, and a t3 refusal names the missing ENA.
        ena_support = True
    if "windows" in platform.lower() and architecture == "x86_64":
        return WINDOWS_RESTORE_TYPES[ena_support]
    chosen = DEFAULT_RESTORE_TYPES.get((architecture, ena_support))
    if chosen is None:
        raise RestoreConfigError(
            f"no default restore instance type for the AMI's architecture {architecture!r}; set {INSTANCE_TYPE_FIELD}"
        )
    return chosen
