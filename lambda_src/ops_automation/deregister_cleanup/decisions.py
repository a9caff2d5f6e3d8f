"""What is particular to the clean-up after deregistration, as pure functions: its settings, which deletions the
scope allows, and what the sweep makes of one snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ..core import config, tagging
from ..core.config import ScopeConfig
from ..core.errors import ConfigError
from ..core.events import AmiStateChange, ApiCallEvent
from ..core.image_links import DEREGISTERED, Holds
from ..core.purge import DeletionRule
from ..core.snapshots import is_archived, start_time

CleanupScope = Literal["managed", "any"]
SCOPES: tuple[CleanupScope, ...] = ("managed", "any")
MAX_TAG_KEY_LENGTH = 128
MAX_GRACE_HOURS = 8760
# Records of handled AMIs only answer repeated events (both event paths, redeliveries): a month is plenty.
LEDGER_TTL_DAYS = 30
# What the sweep reads of a snapshot: `pending` ones are still being made (their AMI is pending too);
# `recoverable`/`recovering` ones are in the Recycle Bin, already deleted.
SWEPT_STATES = frozenset({"completed", "error"})

Verdict = Literal["orphan", "image holds it", "used by another image", "image in recycle bin", "not completed",
                  "in grace period", "exclusion tag", "out of scope"]  # fmt: skip


@dataclass(frozen=True)
class SnapshotPrices:
    """List prices per GiB-month, to put a monthly cost on orphans the scope does not let us delete."""

    standard: float
    archive: float

    def monthly_cost(self, snapshot: Mapping[str, Any]) -> float:
        """An upper bound: the snapshot's full size at its tier's price. A standard-tier snapshot is billed for the
        blocks it stores alone, which for an incremental snapshot is less; an archived one for its full size."""
        return size_gib(snapshot) * (self.archive if is_archived(snapshot) else self.standard)


def size_gib(snapshot: Mapping[str, Any]) -> float:
    """`FullSnapshotSizeInBytes` where DescribeSnapshots reports it, else the volume's size."""
    full = snapshot.get("FullSnapshotSizeInBytes")
    if isinstance(full, int) and full > 0:
        return full / 2**30
    return float(snapshot.get("VolumeSize") or 0)


@dataclass(frozen=True)
class DeregisterCleanupConfig:
    """Settings of the deregister-cleanup sweeper and worker (both get the same set)."""

    scope: ScopeConfig
    cleanup_scope: CleanupScope
    exclusion_tag_key: str
    grace: timedelta
    delete_archived_early: bool
    dry_run: bool
    prices: SnapshotPrices

    @property
    def rule(self) -> DeletionRule:
        return DeletionRule(
            policy=None,
            any_owner=self.cleanup_scope == "any",
            keep_tag_key=self.exclusion_tag_key,
            archived="always" if self.delete_archived_early else "after_minimum",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeregisterCleanupConfig:
        env = config.environ_of(environ)
        scope = env.get("OPS_CLEANUP_SCOPE", "")
        if scope not in SCOPES:
            raise ConfigError("OPS_CLEANUP_SCOPE", env.get("OPS_CLEANUP_SCOPE"), "must be managed or any")
        key = env.get("OPS_CLEANUP_EXCLUSION_TAG_KEY", "")
        if not key.strip() or len(key) > MAX_TAG_KEY_LENGTH or key.lower().startswith("aws:"):
            raise ConfigError(
                "OPS_CLEANUP_EXCLUSION_TAG_KEY",
                env.get("OPS_CLEANUP_EXCLUSION_TAG_KEY"),
                f"must be a tag key of 1..{MAX_TAG_KEY_LENGTH} characters not starting with aws:",
            )
        grace_hours = config.integer(env, "OPS_CLEANUP_GRACE_HOURS", minimum=1, maximum=MAX_GRACE_HOURS)
        return cls(
            scope=ScopeConfig.from_env(env),
            cleanup_scope=scope,
            exclusion_tag_key=key,
            grace=timedelta(hours=grace_hours),
            delete_archived_early=config.boolean(env, "OPS_CLEANUP_DELETE_ARCHIVED_EARLY"),
            dry_run=config.boolean(env, "OPS_CLEANUP_DRY_RUN"),
            prices=_prices(env),
        )


def _prices(env: Mapping[str, str]) -> SnapshotPrices:
    name = "OPS_CLEANUP_PRICES"
    raw = env.get(name)
    value = config.json_value(env, name)
    if not isinstance(value, dict) or set(value) != {"standard", "archive"}:
        raise ConfigError(name, raw, 'must be a JSON object {"standard": <USD per GiB-month>, "archive": <...>}')
    prices = {tier: value[tier] for tier in ("standard", "archive")}
    if not all(
        isinstance(price, (int, float)) and not isinstance(price, bool) and price >= 0 for price in prices.values()
    ):
        raise ConfigError(name, raw, "prices must be non-negative numbers")
    return SnapshotPrices(standard=float(prices["standard"]), archive=float(prices["archive"]))


def deregistered_image(item: AmiStateChange | ApiCallEvent) -> str | None:
    """The AMI a deregistration event is about; None when the event must not delete anything (another state, a
    failed call, another API)."""
    if isinstance(item, AmiStateChange):
        return item.image_id if item.state == DEREGISTERED else None
    if item.failed or item.event_source != "ec2.amazonaws.com" or item.event_name != "DeregisterImage":
        return None
    image_id = item.request_parameters.get("imageId")
    return image_id if isinstance(image_id, str) and image_id.startswith("ami-") else None


def sweep_verdict(
    snapshot: Mapping[str, Any],
    image_id: str,
    holds: Holds,
    recycled: set[str],
    cutoff: datetime,
    rule: DeletionRule,
) -> Verdict:
    """What the sweep makes of a snapshot EC2 created for `image_id`. Only an `orphan` is handed to the worker,
    which checks again (in use by any registered AMI, lock, archive tier) right before deleting."""
    if image_id in holds.image_ids:
        return "image holds it"
    if snapshot.get("SnapshotId") in holds.snapshot_ids:
        return "used by another image"
    if image_id in recycled:
        return "image in recycle bin"
    if snapshot.get("State") not in SWEPT_STATES:
        return "not completed"
    if start_time(snapshot) > cutoff:
        # Also covers an AMI registered after the sweep listed the images: its snapshots are newer than that.
        return "in grace period"
    tags = tagging.tag_dict(snapshot.get("Tags"))
    if rule.excludes(tags):
        return "exclusion tag"
    if not rule.owns(tags):
        return "out of scope"
    return "orphan"


@dataclass
class OutOfScope:
    """Orphans the scope does not let this policy delete: what the user needs to decide to widen it."""

    count: int = 0
    gib: float = 0.0
    monthly_cost: float = 0.0
    by_region: dict[str, int] = field(default_factory=dict)
    sample: list[str] = field(default_factory=list)
    SAMPLE_SIZE = 50

    def add(self, region: str, snapshot: Mapping[str, Any], prices: SnapshotPrices) -> None:
        self.count += 1
        self.gib += size_gib(snapshot)
        self.monthly_cost += prices.monthly_cost(snapshot)
        self.by_region[region] = self.by_region.get(region, 0) + 1
        if len(self.sample) < self.SAMPLE_SIZE:
            self.sample.append(str(snapshot["SnapshotId"]))
