"""plan_retention: each DESIGN.md rule as a property over arbitrary backup histories, plus worked examples."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_automation.core import retention
from ops_automation.core.retention import RetentionItem, RetentionPlan, plan_retention

NOW = datetime(2024, 6, 1, tzinfo=UTC)
STATES = ("pending", "available", "failed")


@st.composite
def histories(draw: st.DrawFn) -> list[RetentionItem]:
    # Distinct ages so that "newer" is unambiguous; ties are covered by an example below.
    ages = draw(st.lists(st.integers(min_value=0, max_value=400 * 24), min_size=0, max_size=25, unique=True))
    return [
        RetentionItem(
            id=f"ami-{index:04x}",
            created_at=NOW - timedelta(hours=age),
            state=draw(st.sampled_from(STATES)),
            managed=draw(st.booleans()),
        )
        for index, age in enumerate(ages)
    ]


generations_st = st.integers(min_value=1, max_value=8)
max_age_st = st.none() | st.integers(min_value=1, max_value=60)


def _good(items: list[RetentionItem]) -> list[RetentionItem]:
    return [item for item in items if item.managed and item.state == "available"]


def _deleted(plan: RetentionPlan) -> list[RetentionItem]:
    return [decision.item for decision in plan.delete]


@given(histories(), generations_st, max_age_st)
def test_every_managed_item_gets_exactly_one_decision_and_unmanaged_none(
    items: list[RetentionItem], generations: int, max_age: int | None
) -> None:
    plan = plan_retention(items, generations, max_age, NOW)
    decided = [*plan.delete_ids, *plan.keep_ids]
    assert sorted(decided) == sorted(item.id for item in items if item.managed)
    assert all(decision.reason for decision in (*plan.delete, *plan.keep))


@given(histories(), generations_st, max_age_st)
def test_only_managed_items_are_deleted(items: list[RetentionItem], generations: int, max_age: int | None) -> None:
    assert all(item.managed for item in _deleted(plan_retention(items, generations, max_age, NOW)))


@given(histories(), generations_st, max_age_st)
def test_nothing_is_deleted_while_the_newest_managed_item_is_not_good(
    items: list[RetentionItem], generations: int, max_age: int | None
) -> None:
    managed = [item for item in items if item.managed]
    if managed and max(managed, key=lambda item: item.created_at).state != "available":
        assert plan_retention(items, generations, max_age, NOW).delete == ()


@given(histories(), generations_st, max_age_st)
def test_never_fewer_than_min_generations_good_remain(
    items: list[RetentionItem], generations: int, max_age: int | None
) -> None:
    plan = plan_retention(items, generations, max_age, NOW)
    good = _good(items)
    remaining_good = [item for item in good if item.id not in plan.delete_ids]
    assert len(remaining_good) >= min(generations, len(good))


@given(histories(), generations_st, max_age_st)
def test_pending_items_are_never_deleted(items: list[RetentionItem], generations: int, max_age: int | None) -> None:
    assert all(item.state != "pending" for item in _deleted(plan_retention(items, generations, max_age, NOW)))


@given(histories(), generations_st)
def test_without_max_age_exactly_the_newest_generations_good_are_kept(
    items: list[RetentionItem], generations: int
) -> None:
    plan = plan_retention(items, generations, None, NOW)
    good = _good(items)
    if plan.delete == ():
        return  # rule 2 held everything back; covered by its own property
    kept_good = [item for item in good if item.id in plan.keep_ids]
    deleted_good = [item for item in good if item.id in plan.delete_ids]
    assert len(kept_good) == min(generations, len(good))
    assert all(kept.created_at > gone.created_at for kept in kept_good for gone in deleted_good)


@given(histories(), generations_st, max_age_st)
def test_failed_items_are_deleted_only_when_enough_good_items_are_newer(
    items: list[RetentionItem], generations: int, max_age: int | None
) -> None:
    plan = plan_retention(items, generations, max_age, NOW)
    good = _good(items)
    for item in _deleted(plan):
        if item.state == "failed":
            assert sum(1 for other in good if other.created_at > item.created_at) >= generations


@given(histories(), generations_st, st.integers(min_value=1, max_value=60))
def test_with_max_age_good_items_are_deleted_only_when_old_and_beyond_the_floor(
    items: list[RetentionItem], generations: int, max_age: int
) -> None:
    plan = plan_retention(items, generations, max_age, NOW)
    cutoff = NOW - timedelta(days=max_age)
    good = _good(items)
    for item in _deleted(plan):
        if item.state == "available":
            assert item.created_at < cutoff
            assert sum(1 for other in good if other.created_at > item.created_at) >= generations
    if plan.delete != ():
        # Everything old and beyond the floor goes: age is a limit, not a suggestion.
        newest_first = sorted(good, key=lambda item: item.created_at, reverse=True)
        expected = {item.id for item in newest_first[generations:] if item.created_at < cutoff}
        assert {item.id for item in _deleted(plan) if item.state == "available"} == expected


def _item(item_id: str, days_old: float, state: str = "available", managed: bool = True) -> RetentionItem:
    return RetentionItem(item_id, NOW - timedelta(days=days_old), state, managed)  # type: ignore[arg-type]


def test_example_keeps_three_newest_and_drops_older_and_superseded_failures() -> None:
    items = [
        _item("ami-new", 0),
        _item("ami-1", 1),
        _item("ami-failed-recent", 1.5, "failed"),
        _item("ami-2", 2),
        _item("ami-3", 3),
        _item("ami-failed-old", 3.5, "failed"),
        _item("ami-4", 4),
        _item("ami-foreign", 9, managed=False),
    ]
    plan = plan_retention(items, 3, None, NOW)
    assert set(plan.delete_ids) == {"ami-3", "ami-4", "ami-failed-old"}
    assert set(plan.keep_ids) == {"ami-new", "ami-1", "ami-2", "ami-failed-recent"}


def test_example_pending_newest_blocks_every_deletion() -> None:
    items = [_item("ami-pending", 0, "pending"), *(_item(f"ami-{n}", n) for n in range(1, 6))]
    plan = plan_retention(items, 1, None, NOW)
    assert plan.delete == ()
    assert len(plan.keep) == 6


def test_example_max_age_keeps_young_backups_beyond_generations() -> None:
    items = [_item(f"ami-{n}", n) for n in range(10)]
    plan = plan_retention(items, 2, 5, NOW)
    assert set(plan.delete_ids) == {"ami-6", "ami-7", "ami-8", "ami-9"}


def test_example_max_age_never_breaks_the_generation_floor() -> None:
    items = [_item(f"ami-{n}", 100 + n) for n in range(5)]
    plan = plan_retention(items, 3, 7, NOW)
    assert set(plan.delete_ids) == {"ami-3", "ami-4"}


def test_example_equal_creation_times_still_keep_exactly_generations() -> None:
    items = [_item(f"ami-{n}", 1) for n in range(4)]
    plan = plan_retention(items, 2, None, NOW)
    assert len(plan.keep) == 2
    assert len(plan.delete) == 2


def test_generations_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="generations"):
        plan_retention([], 0, None, NOW)


# ---------------------------------------------------------------------------------------------------------------
# Restore test results (core.restore tags the backups; retention reads them)
# ---------------------------------------------------------------------------------------------------------------

RESTORE_RESULTS = (None, None, "passed", "failed")


@st.composite
def restore_histories(draw: st.DrawFn) -> list[RetentionItem]:
    return [
        replace(item, restore=draw(st.sampled_from(RESTORE_RESULTS)) if item.state == "available" else None)
        for item in draw(histories())
    ]


def _proven_good(items: list[RetentionItem]) -> list[RetentionItem]:
    return [item for item in items if item.managed and item.state == "available" and item.restore != "failed"]


@given(restore_histories(), generations_st, max_age_st)
def test_the_newest_backup_that_passed_a_restore_test_is_never_deleted(
    items: list[RetentionItem], generations: int, max_age: int | None
) -> None:
    passed = [item for item in _proven_good(items) if item.restore == "passed"]
    if passed:
        newest = max(passed, key=lambda item: (item.created_at, item.id))
        assert newest.id not in plan_retention(items, generations, max_age, NOW).delete_ids


@given(restore_histories(), generations_st, max_age_st)
def test_a_backup_that_failed_its_restore_test_goes_only_once_superseded(
    items: list[RetentionItem], generations: int, max_age: int | None
) -> None:
    plan = plan_retention(items, generations, max_age, NOW)
    good = _proven_good(items)
    for item in _deleted(plan):
        if item.restore == "failed":
            assert sum(1 for other in good if other.created_at > item.created_at) >= generations
    remaining_good = [item for item in good if item.id not in plan.delete_ids]
    assert len(remaining_good) >= min(generations, len(good))


def _tested(item_id: str, days_old: float, restore: str | None) -> RetentionItem:
    return replace(_item(item_id, days_old), restore=restore)  # type: ignore[arg-type]


def test_example_a_failed_restore_is_retired_and_the_last_passed_backup_kept() -> None:
    """generations = 1: B1 passed its test, B2 failed its test, B3 is new (untested)."""
    items = [_tested("B1", 2, "passed"), _tested("B2", 1, "failed"), _tested("B3", 0, None)]
    plan = plan_retention(items, 1, None, NOW)
    assert plan.delete_ids == ("B2",)
    reasons = {decision.item.id: decision.reason for decision in plan.keep}
    assert reasons == {"B3": retention.WITHIN_GENERATIONS, "B1": retention.NEWEST_PASSED}
    assert plan.delete[0].reason == retention.RESTORE_FAILED_SUPERSEDED


def test_example_only_the_newest_passed_backup_is_kept_beyond_generations() -> None:
    items = [_tested("B1", 3, "passed"), _tested("B2", 2, "passed"), _tested("B3", 1, None), _tested("B4", 0, None)]
    plan = plan_retention(items, 2, None, NOW)
    assert set(plan.delete_ids) == {"B1"}
    assert {d.item.id: d.reason for d in plan.keep}["B2"] == retention.NEWEST_PASSED


def test_example_a_newest_backup_that_failed_its_restore_test_holds_every_deletion() -> None:
    items = [_tested("B1", 2, None), _tested("B2", 1, None), _tested("B3", 0, "failed")]
    plan = plan_retention(items, 1, None, NOW)
    assert plan.delete == ()
    assert {d.reason for d in plan.keep} == {retention.NEWEST_NOT_AVAILABLE}


def test_example_a_failed_restore_is_kept_while_not_superseded() -> None:
    items = [_tested("B1", 1, "failed"), _tested("B2", 0, None)]
    plan = plan_retention(items, 2, None, NOW)
    assert plan.delete == ()
    assert {d.item.id: d.reason for d in plan.keep}["B1"] == retention.RESTORE_FAILED_NOT_SUPERSEDED


def test_without_restore_tags_plans_are_unchanged() -> None:
    items = [_item(f"ami-{n}", n) for n in range(6)]
    assert plan_retention(items, 2, None, NOW) == plan_retention(
        [replace(item, restore=None) for item in items], 2, None, NOW
    )


def test_an_image_and_a_snapshot_set_carry_their_restore_result_into_retention() -> None:
    from ops_automation.ami_backup.decisions import retention_item as image_item
    from ops_automation.core import tagging
    from ops_automation.core.snapshots import SnapshotSet
    from ops_automation.core.snapshots import retention_item as set_item

    owned = [{"Key": tagging.MANAGED_BY, "Value": tagging.MANAGED_BY_VALUE}, {"Key": tagging.POLICY, "Value": "p"}]

    def result(value: str) -> list[dict[str, str]]:
        return [*owned, {"Key": tagging.RESTORE_RESULT, "Value": value}]

    image = {"ImageId": "ami-1", "CreationDate": "2024-05-01T01:00:00.000Z", "State": "available", "Tags": owned}
    assert image_item(image, "p").restore is None  # type: ignore[union-attr]
    assert image_item({**image, "Tags": result("failed")}, "p").restore == "failed"  # type: ignore[union-attr]

    def snapshot(snapshot_id: str, tags: list[dict[str, str]]) -> dict[str, object]:
        return {"SnapshotId": snapshot_id, "State": "completed", "StartTime": NOW, "Tags": tags}

    both_passed = SnapshotSet("s", (snapshot("snap-1", result("passed")), snapshot("snap-2", result("passed"))))
    one_tagged = SnapshotSet("s", (snapshot("snap-1", result("passed")), snapshot("snap-2", owned)))
    one_failed = SnapshotSet("s", (snapshot("snap-1", result("failed")), snapshot("snap-2", result("passed"))))
    assert [set_item(s, "p").restore for s in (both_passed, one_tagged, one_failed)] == [  # type: ignore[union-attr]
        "passed",
        None,
        "failed",
    ]
