"""Tier 3: `terraform apply` examples/complete (all six modules, one alert topic, one KMS key) against a local AWS,
run three simulated days (from a Sunday) of every schedule at once on one fleet, check what each module did and that
none of them got in another's way, then `terraform destroy`.

Everything runs once (session-scoped fixture, one local AWS and the applies shared with the other examples' tier 3,
tests/e2e/conftest.py); each test checks one property of the outcome. The month driver is
tests/e2e/complete_scenario.py (`make demo` runs it for 30 days).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.e2e import complete_scenario as complete
from tests.e2e import scenario

EXAMPLE = Path("examples/complete")
# Sunday to Tuesday: the weekly snapshots (Sunday 03:30) and their copies to Osaka, two office days, three nights.
DAYS = 3
SUNDAY = 6
# The hourly snapshots on the last two days only (each hour costs about a second of handler time here): 48 slots,
# past the 24 generations, so retention retires.
HOURLY_DAYS = 2


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    report: complete.MonthReport
    summaries: dict[str, complete.ModuleSummary]  # by module block
    seconds: float


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(EXAMPLE)
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    sqs = aws.client("sqs")
    # Its rules take every kind of event the module scenarios put on the shared bus: theirs, not its own. And its
    # month's events reach the other examples' rules in turn: cleared before their scenarios.
    scenario.purge_work_queues(sqs, scenario.work_queue_urls(run))
    start, end = complete.month_window(DAYS, datetime.now(UTC), weekday=SUNDAY)
    report = complete.run_month(aws, run, start, end, sub_daily_days=HOURLY_DAYS)
    complete.empty_output_bucket(aws, report.deployed)
    applied.start_destroy(EXAMPLE)
    others = [
        url
        for example in applied.live()
        if example != EXAMPLE and applied.region_of(example) == aws.region
        for url in scenario.work_queue_urls(applied.run(example))
    ]
    scenario.purge_work_queues(sqs, others)
    seconds = time.monotonic() - started
    print(f"\ntier 3 complete: apply_seconds {run.apply_seconds:.0f}, scenario seconds {seconds:.0f}")
    return Outcome(run, report, {summary.block: summary for summary in complete.summaries(report)}, seconds)


def _counts(outcome: Outcome, block: str) -> dict[str, int]:
    return outcome.summaries[block].counts


def _rows(outcome: Outcome, block: str) -> dict[object, tuple[object, ...]]:
    """The summary table's rows by their first column (the source's or instance's Name), without the id."""
    return {row[0]: row[2:] for row in outcome.summaries[block].rows}


def test_every_schedule_fired_at_its_slots(outcome: Outcome) -> None:
    slots = outcome.report.account.reports.slots
    assert slots["ami_backup"] == slots["deregister_cleanup"] == slots["ssm_runcommand"] == DAYS
    assert slots["snapshot_copy"] == 1  # Sundays, after the weekly snapshots
    assert slots["ebs_snapshot"] == 24 * HOURLY_DAYS
    assert slots["ebs_snapshot_weekly"] == 1
    assert _counts(outcome, "instance_scheduler")["start slots"] == 2  # Monday and Tuesday
    assert _counts(outcome, "instance_scheduler")["stop slots"] == 2


def test_ami_backup_images_its_instances_each_night_stopped_or_not(outcome: Outcome) -> None:
    # app-1 and app-2 are stopped by the scheduler at 20:00 (and all weekend), before the 01:00 backup.
    assert _rows(outcome, "ami_backup") == {name: (DAYS, DAYS, 0, 0) for name in ("app-1", "app-2", "db-1")}
    assert _counts(outcome, "ami_backup")["AMIs created"] == _counts(outcome, "ami_backup")["kept"] == 3 * DAYS


def test_ebs_snapshot_takes_the_data_volumes_every_hour_and_keeps_a_day(outcome: Outcome) -> None:
    """Only the non-root volumes of the instance carrying the policy's tag (the root volumes and `tmp` never); the
    oldest retired past 24 generations."""
    slots = 24 * HOURLY_DAYS
    kept = outcome.report.deployed.policies["ebs_snapshot"].generations
    assert slots > kept
    assert _rows(outcome, "ebs_snapshot") == {name: (slots, kept, slots - kept, 0) for name in ("db-data", "db-wal")}
    assert _counts(outcome, "ebs_snapshot")["retired"] == 2 * (slots - kept)


def test_the_weekly_snapshots_are_copied_to_the_dr_region_and_nowhere_else(outcome: Outcome) -> None:
    assert _rows(outcome, "ebs_snapshot_weekly") == {name: (1, 1, 0, 0) for name in ("db-data", "db-wal")}
    counts = _counts(outcome, "snapshot_copy")
    region = outcome.report.account.tokyo.region
    destination = outcome.report.deployed.destination_region
    assert (counts[f"copies made in {destination}"], counts[f"in {region}"], counts["kept"]) == (2, 0, 2)
    assert _rows(outcome, "snapshot_copy") == {name: (1, 1, 0, 0) for name in ("db-data", "db-wal")}


def test_deregister_cleanup_deletes_nothing_while_every_ami_is_registered(outcome: Outcome) -> None:
    """Its rule gets every AMI state change of the account (the nightly backups' `available` ones included); with
    ami-backup keeping 7, nothing is retired in three days, so nothing is an orphan."""
    counts = _counts(outcome, "deregister_cleanup")
    assert counts["sweeps"] == DAYS
    assert counts["snapshots it deleted"] == counts["orphans found by the sweeps"] == 0


def test_instance_scheduler_starts_and_stops_only_the_office_instances(outcome: Outcome) -> None:
    rows = _rows(outcome, "instance_scheduler")
    assert rows["app-1"] == rows["app-2"] == (2, 2, "stopped")
    assert all(rows[name] == (0, 0, "running") for name in ("db-1", "db-2", "bastion"))
    assert _counts(outcome, "instance_scheduler")["not in state"] == 0


def test_ssm_runcommand_runs_nightly_on_the_always_on_instances_only(outcome: Outcome) -> None:
    assert _rows(outcome, "ssm_runcommand") == {"db-1": (DAYS, 0, 0), "db-2": (DAYS, 0, 0)}
    assert _counts(outcome, "ssm_runcommand")["commands sent"] == DAYS


def test_no_alert_no_dead_letter_no_error_nothing_unowned_touched(outcome: Outcome) -> None:
    assert complete.problems(outcome.report) == []


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    applied.wait_destroyed(EXAMPLE)
    assert outcome.run.destroyed
    print(
        f"\ntier 3 complete: apply {outcome.run.apply_seconds:.0f}s, destroy {outcome.run.destroy_seconds:.0f}s, "
        f"{DAYS} days {outcome.seconds:.0f}s"
    )
