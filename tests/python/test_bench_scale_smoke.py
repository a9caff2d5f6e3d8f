"""A fast run of bench/scale.py (`smoke`): one module's full cycle on moto at 10 sources next to its baseline, the
stand-in checked against moto, the functions' memory measured. Behaviour only, never timing."""

from __future__ import annotations

from typing import Any

import bench  # noqa: F401 - puts the paths the benchmark needs in place
import pytest
from bench import scale
from bench.standins import Catalogue, matches

pytestmark = pytest.mark.tier1


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return scale.smoke()


def _cycle(results: dict[str, Any], module: str, design: str, sources: int) -> dict[str, Any]:
    (found,) = [c for c in results["cycles"] if (c["module"], c["design"], c["sources"]) == (module, design, sources)]
    return found


def test_the_baseline_makes_more_ec2_calls_per_source_than_ours_at_10(results: dict[str, Any]) -> None:
    for module in scale.SMOKE_MODULES:
        ours, baseline = _cycle(results, module, "ours", 10), _cycle(results, module, "baseline", 10)
        assert ours["backend"] == baseline["backend"] == "moto"
        assert baseline["each"]["ec2"] > ours["each"]["ec2"] > 0


def test_ours_lists_the_fleet_in_pages_where_the_baseline_describes_each_target(results: dict[str, Any]) -> None:
    for module in scale.SMOKE_MODULES:
        ours, baseline = _cycle(results, module, "ours", 10), _cycle(results, module, "baseline", 10)
        listed = sum(n for call, n in ours["listing"].items() if call.startswith("ec2.Describe"))
        per_target = sum(n for call, n in baseline["rest"].items() if call == "ec2.DescribeInstances")
        assert listed < per_target


def test_the_stand_in_agrees_with_moto(results: dict[str, Any]) -> None:
    assert results["stand_in_checks"]
    for check in results["stand_in_checks"]:
        assert check["same_calls"], check
        assert check["same_messages"], check
        assert check["messages"] > 0


def test_peak_memory_is_measured_for_every_function_of_the_modules_measured(results: dict[str, Any]) -> None:
    rows = results["functions"]
    assert {row["module"] for row in rows} == set(scale.SMOKE_MODULES)
    for row in rows:
        assert row["peak_bytes"] > 0, row
        assert row["rss_after_import_bytes"] > 0, row
        assert row["fits"], row


def test_the_markdown_says_which_fleets_ran_on_which_backend(results: dict[str, Any]) -> None:
    text = "\n".join(scale.markdown(results))
    assert "| moto |" in text
    assert "same calls True" in text


def test_the_catalogue_pages_and_filters_as_ec2_documents() -> None:
    tagged = {"InstanceId": "i-0123456789abcdef0", "State": {"Name": "running"}, "Tags": [{"Key": "A", "Value": "b"}]}
    other = {"InstanceId": "i-0123456789abcdef1", "State": {"Name": "stopped"}, "Tags": []}
    catalogue = Catalogue({"describe_instances": [tagged, other]}, copies=1500)
    pages = list(
        catalogue.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag:A", "Values": ["b"]}], PaginationConfig={"PageSize": 1000}
        )
    )
    found = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    assert len(found) == 1500
    assert len({i["InstanceId"] for i in found}) == 1500  # clones get fresh ids
    assert len(pages) == 2
    assert catalogue.calls["ec2.DescribeInstances"] == 2
    assert matches([{"Name": "instance-state-name", "Values": ["stop*"]}], other)
    with pytest.raises(KeyError):
        matches([{"Name": "an-unknown-filter", "Values": ["x"]}], other)
