"""A fast run of every `make bench` measurement on a tiny fleet, so the benchmark never rots. No wall-clock asserts."""

from __future__ import annotations

import bench  # noqa: F401 - puts the paths the benchmark needs in place
import pytest
from bench import calls, footprint, model, planner, readme, throttle
from bench.cost import project

pytestmark = pytest.mark.tier1


@pytest.fixture(scope="module")
def cycle() -> tuple[calls.OursCycle, calls.CycleCalls]:
    return calls.measure(3)


def test_ours_makes_fewer_ec2_calls_per_instance_than_the_baseline(
    cycle: tuple[calls.OursCycle, calls.CycleCalls],
) -> None:
    ours, baseline = cycle
    assert ours.calls.per_instance_ec2 == 2
    assert ours.calls.per_instance_all == 7
    assert ours.calls.per_instance_ec2 < baseline.per_instance_ec2
    assert ours.calls.retired_per_instance == 1
    assert ours.calls.leaked_snapshots == 0


def test_the_committed_cost_inputs_match_a_fresh_measurement(cycle: tuple[calls.OursCycle, calls.CycleCalls]) -> None:
    fresh = model.ours_usage(cycle[0])
    committed, _origin = model.load_inputs()
    assert fresh.ec2_calls_each == committed.ec2_calls_each
    assert fresh.other_calls_each.keys() == committed.other_calls_each.keys()
    assert fresh.metric_names == committed.metric_names


def test_the_readme_cost_section_is_what_the_cost_model_computes() -> None:
    ours, origin = model.load_inputs()
    assert readme.current(readme.README.read_text(encoding="utf-8")) == readme.section(ours, origin)


def test_monitoring_cost_does_not_grow_with_the_fleet() -> None:
    ours, _origin = model.load_inputs()
    small, large = project(ours, 20), project(ours, 2000)
    line = {p.item: p for p in small.lines}, {p.item: p for p in large.lines}
    for item in ("CloudWatch custom metrics (EMF)", "CloudWatch alarms"):
        assert line[0][item].usd == line[1][item].usd


def test_planner_calls_grow_with_pages_not_instances() -> None:
    small, large = planner.run_stand_in(1000), planner.run_stand_in(2500)
    assert small.calls["ec2.DescribeInstances"] == 1
    assert large.calls["ec2.DescribeInstances"] == 3
    assert large.calls["sqs.SendMessageBatch"] == 250
    assert large.enqueued == 2500
    assert large.peak_bytes > 0


def test_the_stand_in_ec2_answers_like_moto() -> None:
    check = planner.check_against_moto(12)
    assert check["same_calls"] and check["same_messages"]


def test_the_zip_is_small() -> None:
    assert 0 < footprint.zip_bytes() < 100 * 1024


@pytest.fixture(scope="module")
def storm() -> dict[str, object]:
    """A small batch under heavy throttling, so the worker's deferral path runs (seeded: deterministic)."""
    return throttle.worker(n=4, share=0.7)


def test_throttled_worker_loses_nothing_and_finishes_every_record(storm: dict[str, object]) -> None:
    for state in ("unthrottled", "throttled"):
        for phase in storm["ours"][state].values():  # type: ignore[index]
            assert phase["lost"] == 0 and phase["dead_lettered"] == 0
            assert phase["done"] == phase["records"] == 4
            assert phase["timed_out"] == 0


def test_throttled_worker_defers_to_sqs_instead_of_sleeping(storm: dict[str, object]) -> None:
    hot = storm["ours"]["throttled"]  # type: ignore[index]
    baseline = storm["baseline"]["throttled"]  # type: ignore[index]
    assert sum(phase["deferred_first"] for phase in hot.values()) > 0
    assert sum(phase["invocations"] for phase in hot.values()) > 2  # the deferred records came back
    # Simulated seconds: ours hands throttled records back, the baseline sleeps through its retries.
    assert max(phase["max_invocation_s"] for phase in hot.values()) < baseline["seconds"]
    assert hot["create_image"]["first_invocation_s"] < baseline["seconds"]


def test_throttled_planner_stays_well_within_its_timeout() -> None:
    run = throttle.planner(fleet=100, share=0.5)
    assert run["ours"]["under_budget"]
    assert run["ours"]["throttled"]["seconds"] < run["baseline"]["throttled"]["seconds"]
    assert run["baseline"]["ratio"] > 1
