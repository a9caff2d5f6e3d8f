"""Generation management as one pure function (rules in docs/DESIGN.md, "Retention rules")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

State = Literal["pending", "available", "failed"]

# Reasons, one per decision, so logs and dry-run plans say why.
NEWEST_NOT_AVAILABLE = "newest managed backup is not available yet"
WITHIN_GENERATIONS = "within the newest generations"
BEYOND_GENERATIONS = "older than the newest generations"
WITHIN_MAX_AGE = "younger than max_age_days"
OLDER_THAN_MAX_AGE = "older than max_age_days and beyond the generation floor"
PENDING = "pending backups are never deleted"
FAILED_SUPERSEDED = "failed, with enough good backups newer than it"
FAILED_NOT_SUPERSEDED = "failed, but fewer good backups newer than it than generations"
RESTORE_FAILED_SUPERSEDED = "failed its restore test, with enough good backups newer than it"
RESTORE_FAILED_NOT_SUPERSEDED = "failed its restore test, but fewer good backups newer than it than generations"
NEWEST_PASSED = "newest backup that passed a restore test"


@dataclass(frozen=True)
class RetentionItem:
    id: str
    created_at: datetime
    state: State
    managed: bool
    # The last restore test's result (core.restore), None when never tested. A backup that failed one is no
    # backup: it counts as failed. The newest that passed is the one copy proven to restore: always kept.
    restore: Literal["passed", "failed"] | None = None

    @property
    def effective_state(self) -> State:
        return "failed" if self.state == "available" and self.restore == "failed" else self.state


@dataclass(frozen=True)
class Decision:
    item: RetentionItem
    reason: str


@dataclass(frozen=True)
class RetentionPlan:
    delete: tuple[Decision, ...]
    keep: tuple[Decision, ...]

    @property
    def delete_ids(self) -> tuple[str, ...]:
        return tuple(decision.item.id for decision in self.delete)

    @property
    def keep_ids(self) -> tuple[str, ...]:
        return tuple(decision.item.id for decision in self.keep)


def plan_retention(
    items: Iterable[RetentionItem],
    generations: int,
    max_age_days: int | None,
    now: datetime,
) -> RetentionPlan:
    """Split the managed items of one source into delete and keep; unmanaged items appear in neither."""
    if generations < 1:
        raise ValueError(f"generations must be >= 1, got {generations}")
    managed = sorted(
        (item for item in items if item.managed), key=lambda item: (item.created_at, item.id), reverse=True
    )
    if not managed:
        return RetentionPlan(delete=(), keep=())
    if managed[0].effective_state != "available":
        return RetentionPlan(delete=(), keep=tuple(Decision(item, NEWEST_NOT_AVAILABLE) for item in managed))

    cutoff = now - timedelta(days=max_age_days) if max_age_days is not None else None
    newest_passed = next((item for item in managed if item.state == "available" and item.restore == "passed"), None)
    delete: list[Decision] = []
    keep: list[Decision] = []
    good_newer = 0  # good items strictly ahead of the current one in newest-first order
    for item in managed:
        state = item.effective_state
        if state == "pending":
            keep.append(Decision(item, PENDING))
        elif state == "failed":
            superseded = good_newer >= generations
            if item.state == "failed":
                reason = FAILED_SUPERSEDED if superseded else FAILED_NOT_SUPERSEDED
            else:
                reason = RESTORE_FAILED_SUPERSEDED if superseded else RESTORE_FAILED_NOT_SUPERSEDED
            (delete if superseded else keep).append(Decision(item, reason))
        elif item is newest_passed and good_newer >= generations:
            keep.append(Decision(item, NEWEST_PASSED))
            good_newer += 1
        elif good_newer < generations:
            keep.append(Decision(item, WITHIN_GENERATIONS))
            good_newer += 1
        elif cutoff is not None and item.created_at >= cutoff:
            keep.append(Decision(item, WITHIN_MAX_AGE))
            good_newer += 1
        else:
            delete.append(Decision(item, BEYOND_GENERATIONS if cutoff is None else OLDER_THAN_MAX_AGE))
            good_newer += 1
    return RetentionPlan(delete=tuple(delete), keep=tuple(keep))
