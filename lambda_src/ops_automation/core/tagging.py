"""Ownership tags: the proof that a resource was created by this project for one policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "ops-automation:"
MANAGED_BY = f"{PREFIX}managed-by"
MANAGED_BY_VALUE = "terraform-aws-ops-automation"
POLICY = f"{PREFIX}policy"
SOURCE_INSTANCE = f"{PREFIX}source-instance"
SOURCE_VOLUME = f"{PREFIX}source-volume"
SOURCE_SNAPSHOT = f"{PREFIX}source-snapshot"
# A copy's origin (snapshot-copy): the source image and region, the source's own creation time (retention orders
# copies by it, not by when the copy was made) and the policy that made the source.
SOURCE_IMAGE = f"{PREFIX}source-image"
SOURCE_REGION = f"{PREFIX}source-region"
SOURCE_CREATED = f"{PREFIX}source-created"
SOURCE_POLICY = f"{PREFIX}source-policy"
SLOT = f"{PREFIX}slot"
# The crash-consistent set one CreateSnapshots call made: its snapshots are kept or retired together.
SNAPSHOT_SET = f"{PREFIX}snapshot-set"
# Restore tests (core.restore). On a backup (the AMI; every snapshot of an EBS set): the last test's result
# (passed|failed, read by retention) and its slot. On every resource a test restores: the test's id, which is
# what the sweep looks for and what IAM requires on RunInstances / CreateVolume / TerminateInstances / DeleteVolume.
RESTORE_RESULT = f"{PREFIX}restore-result"
RESTORE_TESTED = f"{PREFIX}restore-tested"
RESTORE_TEST = f"{PREFIX}restore-test"

MAX_TAGS_PER_RESOURCE = 50
_SOURCE_KEYS = {
    "source_instance": SOURCE_INSTANCE,
    "source_volume": SOURCE_VOLUME,
    "source_snapshot": SOURCE_SNAPSHOT,
    "source_image": SOURCE_IMAGE,
    "source_region": SOURCE_REGION,
    "source_created": SOURCE_CREATED,
    "source_policy": SOURCE_POLICY,
    "slot": SLOT,
    "snapshot_set": SNAPSHOT_SET,
}


def ownership_tags(policy: str, **sources: str | None) -> dict[str, str]:
    """Tags for a new resource; `sources` takes the keys of `_SOURCE_KEYS` (source_instance, source_volume, ...)."""
    unknown = set(sources) - set(_SOURCE_KEYS)
    if unknown:
        raise TypeError(f"unknown ownership source(s): {sorted(unknown)}")
    tags = {MANAGED_BY: MANAGED_BY_VALUE, POLICY: policy}
    tags.update({_SOURCE_KEYS[name]: value for name, value in sources.items() if value})
    return tags


def tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """EC2's `[{"Key": .., "Value": ..}]` as a dict."""
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in tags or ()}


def carries_all(tags: Mapping[str, str], wanted: Iterable[tuple[str, str]]) -> bool:
    """Whether `tags` hold every (key, value) of `wanted`; False when nothing is wanted (no tag selects everything)."""
    pairs = tuple(wanted)
    return bool(pairs) and all(tags.get(key) == value for key, value in pairs)


def carries_key(tags: Mapping[str, str], key: str | None) -> bool:
    """Whether `tags` hold `key` whatever its value, compared without regard to case as IAM compares tag keys in
    condition keys; False when there is no key."""
    return key is not None and any(tag_key.lower() == key.lower() for tag_key in tags)


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def is_owned(tags: Mapping[str, str] | Iterable[Mapping[str, Any]] | None, policy: str) -> bool:
    """True only when both managed-by and policy match: the precondition of every destructive call."""
    as_dict = tags if isinstance(tags, Mapping) else tag_dict(tags)
    return as_dict.get(MANAGED_BY) == MANAGED_BY_VALUE and as_dict.get(POLICY) == policy


def is_managed(tags: Mapping[str, str] | Iterable[Mapping[str, Any]] | None) -> bool:
    """Created by this project, whichever policy: the precondition of a clean-up that serves every module."""
    as_dict = tags if isinstance(tags, Mapping) else tag_dict(tags)
    return as_dict.get(MANAGED_BY) == MANAGED_BY_VALUE


def with_copied_tags(ownership: Mapping[str, str], copied: Mapping[str, str]) -> dict[str, str]:
    """Ownership tags plus copied tags, within EC2's 50-tag limit.

    `aws:` keys cannot be set by callers, and keys under our prefix come only from `ownership`, so a copied tag
    can never forge or override ownership. Ownership tags always fit; copied tags fill the rest in key order.
    """
    merged = dict(ownership)
    for key in sorted(copied):
        if len(merged) >= MAX_TAGS_PER_RESOURCE:
            break
        if key.lower().startswith("aws:") or key.startswith(PREFIX):
            continue
        merged[key] = copied[key]
    return merged
