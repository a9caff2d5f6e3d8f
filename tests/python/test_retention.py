"""plan_retention: each DESIGN.md rule as a property over arbitrary backup histories, plus worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
