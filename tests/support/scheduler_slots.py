"""The tests' name for `ops_automation.cli.slots`: the operator report expects the same slots the handler tests
(tier 1) and the scenarios (tier 3) drive, so there is one implementation of Scheduler's DST rules."""

from ops_automation.cli.slots import scheduler_slots

__all__ = ["scheduler_slots"]
