"""Issue 14: the cost summary (every module at 20 / 200 / 2,000 sources, ours next to the origin) and the cold-import
probe of every deployed function, on the committed inputs and two functions. Behaviour only, no wall-clock asserts."""

from __future__ import annotations

import math
import subprocess
from typing import Any

import bench  # noqa: F401 - puts the paths the benchmark needs in place
import pytest
from bench import copy, cost_summary, footprint, scheduler
from bench.cost import money
from tests.support.hcl_tree import automation_modules

pytestmark = pytest.mark.tier1


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return cost_summary.measure()


def _by_module(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for cost in results["costs"]:
        grouped.setdefault(cost["module"], []).append(cost)
    return grouped


def test_every_module_that_deploys_functions_has_all_three_sizes(results: dict[str, Any]) -> None:
    grouped = _by_module(results)
    covered = {name.split(" (")[0] for name in grouped}
    assert covered == {path.name for path in automation_modules()}
    for module, costs in grouped.items():
        assert [c["sources"] for c in costs] == list(cost_summary.SIZES), module


def test_each_table_total_is_the_sum_of_its_lines(results: dict[str, Any]) -> None:
    for cost in results["costs"]:
        for side in ("ours", "origin"):
            projection = cost[side]
            if projection is None:
                continue
            lines = projection["lines"]
            assert lines, (cost["module"], side)
            assert math.isclose(projection["total"], math.fsum(line["usd"] for line in lines), abs_tol=1e-12)
            assert math.isclose(
                projection["total_after_free_tier"],
                math.fsum(line["usd_after_free_tier"] for line in lines),
                abs_tol=1e-12,
            )
        table = cost_summary.line_table(cost)
        total_row = next(row for row in table if row.startswith("| **total**"))
        assert f"**{money(cost['ours']['total'])}**" in total_row
        # the apart lines are shown, after the total, and in no total
        assert len([row for row in table if "(apart: not in the total)" in row]) == len(cost["apart"])


def test_cost_grows_with_sources(results: dict[str, Any]) -> None:
    for module, costs in _by_module(results).items():
        ours = [c["ours"]["total"] for c in costs]
        assert ours == sorted(ours) and len(set(ours)) == len(ours), module
        origin = [c["origin"]["total"] for c in costs if c["origin"]]
        assert origin == sorted(origin) and len(set(origin)) == len(origin), module


def test_the_summary_has_a_row_per_module_and_size_and_says_what_is_extrapolated(results: dict[str, Any]) -> None:
    text = "\n".join(cost_summary.markdown(results))
    rows = cost_summary.summary_table(results["costs"])[2:]
    assert len(rows) == len(results["costs"])
    copies = {c["sources"]: c for c in _by_module(results)["snapshot-copy"]}
    assert copies[2_000]["lower_bound"] and not copies[200]["lower_bound"]
    assert "extrapolated" in copies[2_000]["basis"] and copies[200]["basis"] == "measured at this size"
    assert f"| snapshot-copy | 2,000 | ≥ {money(copies[2_000]['ours']['total'])}" in text
    for cost in results["costs"]:
        assert f"### {cost['module']}, {cost['sources']:,} sources" in text


def test_the_extrapolations_re_page_the_listings_as_the_measurements_did() -> None:
    """The catch-up's listing pages at each measured configuration, and the scheduler planners' listing from the
    20-instance weekday to the 200-instance one, come out of the same paging rule the 2,000 sizes use."""
    for inputs in copy.load_inputs():
        listings = sum(n for call, n in inputs.catch_up.items() if call in copy.LISTINGS)
        assert cost_summary.copy_catch_up_listings(inputs.sources, inputs.destinations) == listings, inputs.label
    small, large = sorted(scheduler.load_inputs()[0], key=lambda i: i.instances)[:2]
    assert cost_summary.repaged(small.usage.fixed_calls, small.instances, large.instances) == large.usage.fixed_calls
    assert cost_summary.repaged({"ec2.DescribeInstances": 2.0}, 200, 2_000) == {"ec2.DescribeInstances": 4.0}


def test_every_deployed_function_is_found_with_its_environment() -> None:
    functions = footprint.deployed_functions()
    handler_files = {
        f"ops_automation.{path.parent.name}.handlers"
        for path in (footprint.ROOT / "lambda_src" / "ops_automation").glob("*/handlers.py")
    }
    assert {f.handler_module for f in functions} == handler_files
    assert {f.module for f in functions} == {path.name for path in automation_modules()}
    for function in functions:
        env = footprint.function_environment(function)
        assert env["POWERTOOLS_SERVICE_NAME"] == function.module
        assert env["OPS_POLICY_NAME"] and env["OPS_LEDGER_TABLE"]
    assert set(footprint.zip_bytes_by_module(functions)) == {f.module for f in functions}


def test_the_import_probe_measures_each_handler_next_to_boto3() -> None:
    functions = footprint.deployed_functions()
    two = [functions[0], next(f for f in functions if f.module != functions[0].module)]
    imports = footprint.function_imports(runs=1, functions=two)
    assert [(i.module, i.key, i.handler) for i in imports] == [(f.module, f.key, f.handler) for f in two]
    for measured in imports:
        assert measured.seconds > 0 and measured.boto3_seconds > 0
        assert math.isclose(measured.ratio, measured.seconds / measured.boto3_seconds)  # one run: its own pair
    figures = footprint.import_figures(imports)
    assert figures[f"{two[0].handler_module}_ratio"] == imports[0].ratio  # the keys bench/__main__.py reads
    assert {f"{f.module}/{f.key}_ratio" for f in two} <= set(figures)
    table = "\n".join(footprint.markdown({"runs": 1, "functions": [vars(i) for i in imports], "zip_bytes": {}}))
    assert all(f"`{f.handler}`" in table for f in two)


def test_the_probe_fails_for_a_handler_its_module_lacks() -> None:
    function = footprint.deployed_functions()[0]
    with footprint.unpacked([function.package]) as roots, pytest.raises(subprocess.CalledProcessError):
        env = footprint.function_environment(function)
        footprint.probe_seconds(function.handler_module, "no_such_handler", env, roots[function.package])
