"""Tier bookkeeping for the whole suite.

Every test is marked with the verification tier its folder belongs to, and the run ends with one line per tier
saying how many tests ran, passed, failed and were skipped. A tier whose tests were all skipped is reported as
NOT RUN with the reasons, so a skipped tier can never be mistaken for a passing one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
TIER_OF_FOLDER = {"python": "tier1", "hcl": "tier1", "terraform": "tier2", "e2e": "tier3"}
TIER_TITLES = {
    "tier1": "tier 1 (unit, moto handlers, HCL)",
    "tier2": "tier 2 (terraform fmt/validate/test)",
    "tier3": "tier 3 (terraform apply + handlers end to end)",
}

_outcomes: dict[str, Counter[str]] = defaultdict(Counter)
_skip_reasons: dict[str, set[str]] = defaultdict(set)


def tier_of(path: Path) -> str | None:
    try:
        folder = path.relative_to(TESTS_DIR).parts[0]
    except (ValueError, IndexError):
        return None
    return TIER_OF_FOLDER.get(folder)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(Path(str(item.path)))
        if tier:
            item.add_marker(getattr(pytest.mark, tier))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = tier_of(Path(report.fspath).resolve()) if report.fspath else None
    if tier is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped:
            _outcomes[tier]["skipped"] += 1
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            _skip_reasons[tier].add(reason.removeprefix("Skipped: "))
        else:
            _outcomes[tier][report.outcome] += 1


def selected_tiers(config: pytest.Config) -> list[str]:
    """The tiers this run was asked for: all of them, unless the arguments name only some tier folders."""
    selected: set[str] = set()
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        tier = tier_of(path)
        if tier is None:
            return list(TIER_TITLES)
        selected.add(tier)
    return [tier for tier in TIER_TITLES if tier in selected]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    terminalreporter.section("verification tiers")
    for tier in selected_tiers(config):
        title = TIER_TITLES[tier]
        counts = _outcomes.get(tier, Counter())
        ran = counts["passed"] + counts["failed"]
        line = f"{title}: {ran} ran, {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        if ran == 0:
            terminalreporter.write_line(f"!!! {title}: NOT RUN !!!", red=True, bold=True)
            for reason in sorted(_skip_reasons.get(tier, set())) or ["no tests were collected for this tier"]:
                terminalreporter.write_line(f"    reason: {reason}", red=True)
        elif counts["skipped"]:
            terminalreporter.write_line(line, yellow=True)
            for reason in sorted(_skip_reasons[tier]):
                terminalreporter.write_line(f"    skipped: {reason}", yellow=True)
        else:
            terminalreporter.write_line(line, green=not counts["failed"], red=bool(counts["failed"]))
