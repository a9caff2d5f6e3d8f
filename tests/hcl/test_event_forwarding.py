"""Tier 1: modules/event-forwarding forwards what the landing-zone hub modules react to, with the right source.

The spoke rule and the hub modules' rules are written apart; a detail type a hub module starts to react to (or a
source it is matched with) must reach the hub from the workload accounts too, or work there completes only at the
delayed check. Read from the HCL: every `detail-type` of the event patterns in the hub modules' locals.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.support.hcl_tree import load_module
from tests.support.terraform_env import repo_root

ROOT = repo_root()
FORWARDING = ROOT / "modules" / "event-forwarding"
# The modules with landing-zone targeting (target_organizational_units): their spoke events are forwarded by default.
LANDING_ZONE_MODULES = ("ami-backup", "ebs-snapshot", "instance-scheduler")
# instance-scheduler's optional modes: forwarded when the user adds them to detail_types (not by default).
# ebs-snapshot's restore tests react to EBS Volume Notification (createVolume) only as an accelerator (the delayed
# restore_check decides without it), and every volume creation of a spoke would cross to the hub: opt-in too.
OPT_IN_PATTERNS = {
    ("instance-scheduler", "auto_scaling_pattern"),
    ("instance-scheduler", "rds_pattern"),
    ("ebs-snapshot", "volume_state_pattern"),
}
# Run Command events: ssm-runcommand has no landing-zone targeting yet, but its events are forwarded by default so
# that a spoke applies one module for every hub module.
ALSO_FORWARDED = ("ssm-runcommand",)


def patterns(module: str) -> dict[str, dict[str, Any]]:
    """The event patterns written as locals of a module (objects with a detail-type)."""
    found = load_module(ROOT / "modules" / module).locals
    return {name: value for name, value in found.items() if isinstance(value, dict) and "detail-type" in value}


def forwarding_default() -> list[str]:
    return list(load_module(FORWARDING).variables["detail_types"]["default"])


def source_of() -> dict[str, str]:
    value = load_module(FORWARDING).locals["detail_type_sources"]
    assert isinstance(value, dict), value
    return {str(key): str(source) for key, source in value.items()}


MODULE_PATTERNS = [
    (module, name, pattern)
    for module in (*LANDING_ZONE_MODULES, *ALSO_FORWARDED)
    for name, pattern in patterns(module).items()
]


def test_hub_patterns_are_found() -> None:
    assert {module for module, _, _ in MODULE_PATTERNS} == {*LANDING_ZONE_MODULES, *ALSO_FORWARDED}


@pytest.mark.parametrize(
    ("module", "name", "pattern"), MODULE_PATTERNS, ids=[f"{module}/{name}" for module, name, _ in MODULE_PATTERNS]
)
def test_each_hub_pattern_is_forwarded_with_its_source(module: str, name: str, pattern: dict[str, Any]) -> None:
    sources = source_of()
    default = forwarding_default()
    for detail_type in pattern["detail-type"]:
        assert detail_type in sources, f"{module} reacts to {detail_type!r}, which event-forwarding cannot forward"
        assert [sources[detail_type]] == list(pattern["source"]), (
            f"{module}/{name}: {detail_type!r} comes from {pattern['source']}, "
            f"event-forwarding says {sources[detail_type]}"
        )
        if (module, name) not in OPT_IN_PATTERNS:
            assert detail_type in default, f"{module} reacts to {detail_type!r}, not forwarded by default"


def test_validation_accepts_exactly_the_known_detail_types() -> None:
    validation = load_module(FORWARDING).variables["detail_types"]["validation"]
    validations = validation if isinstance(validation, list) else [validation]
    conditions = " ".join(str(v["condition"]) for v in validations)
    # The list inside `contains([...], type)`, not the error message (which names every type as well).
    accepted = re.search(r"contains\(\[(.*?)\]", conditions, re.S)
    assert accepted is not None, conditions
    assert set(re.findall(r'"([^"]+)"', accepted.group(1))) == set(source_of())
