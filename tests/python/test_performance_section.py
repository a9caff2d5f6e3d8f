"""The README's "Performance and reliability" blocks (bench/performance.py) and the verdicts `make bench` writes in
its block (bench/__main__.py `targets`): a missed target must read as missed."""

from __future__ import annotations

from typing import Any

import bench  # noqa: F401 - puts the paths the benchmark needs in place
import pytest
from bench import performance
from bench.__main__ import targets

README = "# x\n\n## Verification tiers\ntext\n\n## Other targets\nmore\n"


def test_a_block_is_added_once_under_the_section_and_replaced_in_place() -> None:
    first = performance.replace_block(README, "soak", ["| a |"])
    assert first.count(performance.SECTION_TITLE) == 1
    assert first.index(performance.SECTION_TITLE) < first.index("<!-- BEGIN_PERFORMANCE_SOAK -->")
    assert first.index("<!-- END_PERFORMANCE_SOAK -->") < first.index("## Other targets")
    both = performance.replace_block(first, "bench", ["| b |"])
    again = performance.replace_block(both, "soak", ["| c |"])
    assert "| a |" not in again and "| c |" in again and "| b |" in again
    assert again.count("<!-- BEGIN_PERFORMANCE_SOAK -->") == 1 and again.count(performance.SECTION_TITLE) == 1


def test_an_unknown_block_or_a_broken_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="block must be one of"):
        performance.markers("speed")
    broken = performance.replace_block(README, "soak", ["x"]).replace("<!-- END_PERFORMANCE_SOAK -->", "")
    with pytest.raises(ValueError, match="without"):
        performance.replace_block(broken, "soak", ["y"])


def _pieces(zip_bytes: int, lost: int, ratio: float, share: float, import_ratio: float, fits: bool) -> dict[str, Any]:
    function = {"module": "ami-backup", "key": "planner", "ratio": import_ratio}
    cycle = {"fleet": 100, "ratio": ratio, "lost": lost, "longest_run_share": share}
    return {
        "footprint": {"functions": [function], "zip_bytes": {"ami-backup": zip_bytes}},
        "scale": {
            "functions": [{"module": "ami-backup", "function": "planner", "total_mb": 90.0, "fits": fits}],
            "memory_fleet": 10_000,
            "lambda_mb": 256,
            "cycles": [
                {"module": "ami-backup", "sources": 10, "design": "ours", "each": {"ec2": 2.0, "other": 5.0}},
                {"module": "ami-backup", "sources": 10, "design": "baseline", "each": {"ec2": 4.0, "other": 2.0}},
            ],
        },
        "bucket": {"modules": {"ami-backup": {"cycles": [cycle]}}, "not_run": {"ssm-runcommand": "SSM calls"}},
    }


def test_every_target_met_reads_met() -> None:
    rows = targets(_pieces(50 * 1024, 0, 1.2, 0.1, 1.4, True))
    assert not [row for row in rows if "**missed**" in row]
    assert any("ssm-runcommand" in row and "not measured: SSM calls" in row for row in rows)


@pytest.mark.parametrize(
    ("pieces", "figure"),
    [
        (_pieces(101 * 1024, 0, 1.2, 0.1, 1.4, True), "largest function zip"),
        (_pieces(50 * 1024, 1, 1.2, 0.1, 1.4, True), "items lost"),
        (_pieces(50 * 1024, 0, 1.31, 0.1, 1.4, True), "token-bucket minimum"),
        (_pieces(50 * 1024, 0, 1.2, 0.8, 1.4, True), "longest function run"),
        (_pieces(50 * 1024, 0, 1.2, 0.1, 1.51, True), "cold import"),
        (_pieces(50 * 1024, 0, 1.2, 0.1, 1.4, False), "peak memory"),
    ],
)
def test_each_missed_target_reads_missed(pieces: dict[str, Any], figure: str) -> None:
    missed = [row for row in targets(pieces) if "**missed**" in row]
    assert len(missed) == 1 and figure in missed[0]


def test_a_function_whose_memory_was_not_measured_is_named_not_counted_as_fitting() -> None:
    pieces = _pieces(50 * 1024, 0, 1.2, 0.1, 1.4, True)
    pieces["scale"]["functions"].append(
        {"module": "ami-backup", "function": "restore", "total_mb": 70.0, "fits": False, "peak_bytes": 0}
    )
    [row] = [row for row in targets(pieces) if row.startswith("| peak memory")]
    assert "1 functions" in row and "not measured: ami-backup restore" in row and row.endswith("| met |")
