"""Tier 3: `terraform apply` examples/deregister-cleanup (and a dry-run variant with the CloudTrail rule) against the
local AWS the other examples share, run simulated days beside the deployed examples/ami-backup with the real
handlers (tests/e2e/deregister_cleanup_scenario.py says what happens when), check what is left, then destroy.

Everything runs once (session-scoped fixture); each test checks one property of the outcome.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from tests.e2e import ami_backup_scenario as ami
from tests.e2e import deregister_cleanup_scenario as dereg
from tests.e2e import scenario

EXAMPLE = dereg.EXAMPLE
USES = (ami.EXAMPLE,)
VARIANTS = (dereg.DRY_RUN,)
STATE_CHANGE = dereg.STATE_CHANGE
LEFT_BEHIND = "snapshots left behind after their AMI was deregistered"


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    dry_run: scenario.TerraformRun
    report: dereg.CleanupReport
    state: dereg.FinalState
    business_policies: dict[str, dict[str, Any]]
    seconds: float


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(EXAMPLE)
    dry_run = applied.run(dereg.DRY_RUN.path)
    backup_run = applied.run(ami.EXAMPLE)
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    assert applied.region_of(ami.EXAMPLE) == aws.region  # one region: the rules see the same AMIs
    main = scenario.deployment_from_terraform(aws, run.outputs, EXAMPLE, scheduled="sweeper")
    dry = scenario.deployment_from_terraform(aws, dry_run.outputs, dereg.DRY_RUN.path, scheduled="sweeper")
    backup = scenario.deployment_from_terraform(aws, backup_run.outputs, ami.EXAMPLE)
    mine = {EXAMPLE, dereg.DRY_RUN.path, ami.EXAMPLE}
    bystanders = [
        url
        for example in applied.live()
        if example not in mine and applied.region_of(example) == aws.region
        for url in scenario.work_queue_urls(applied.run(example))
    ]
    report = dereg.run_days(aws, main, dry, backup, bystanders)
    state = dereg.final_state(aws, main, dry)
    business = scenario.business_policies(aws, main)
    for example in mine:
        applied.start_destroy(example)
    return Outcome(run, dry_run, report, state, business, time.monotonic() - started)


def _day(outcome: Outcome, number: int) -> dereg.DayLog:
    return outcome.report.days[number - 1]


def _snapshot(outcome: Outcome, role: str) -> str:
    return outcome.report.amis.snapshots[role]


def _refs(item: dict[str, Any]) -> list[str]:
    return [ref["S"] if isinstance(ref, dict) else ref for ref in item["refs"]]


def _present_after(outcome: Outcome, role_or_snapshot: str) -> list[bool]:
    snapshot = outcome.report.amis.snapshots.get(role_or_snapshot, role_or_snapshot)
    return [snapshot in day.remaining for day in outcome.report.days]


# ---------------------------------------------------------------------------------------------------------------
# Deployment
# ---------------------------------------------------------------------------------------------------------------


def test_deployed_functions_run_with_the_environment_terraform_reports(outcome: Outcome) -> None:
    for deployment, run in ((outcome.report.main, outcome.run), (outcome.report.dry, outcome.dry_run)):
        environments = run.outputs["function_environments"]
        assert deployment.planner_environment == environments["sweeper"]
        assert deployment.worker_environment == environments["worker"]
        assert deployment.worker_environment["OPS_WORK_QUEUE_URL"] == deployment.work_queue_url
        assert deployment.worker_environment["OPS_POLICY_NAME"] == run.outputs["policy_name"]
    assert outcome.report.main.worker_environment["OPS_CLEANUP_DRY_RUN"] == "false"
    assert outcome.report.main.worker_environment["OPS_CLEANUP_SCOPE"] == "managed"
    assert outcome.report.dry.worker_environment["OPS_CLEANUP_DRY_RUN"] == "true"
    assert json.loads(outcome.report.main.worker_environment["OPS_CLEANUP_PRICES"]) == {
        "standard": 0.05,
        "archive": 0.0125,
    }


def test_worker_may_delete_only_managed_snapshots_and_never_excluded_ones(outcome: Outcome) -> None:
    statements = outcome.business_policies["worker"]["Statement"]
    statements = [statements] if isinstance(statements, dict) else statements

    def actions(statement: dict[str, Any]) -> list[str]:
        return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]

    allows = [s for s in statements if s["Effect"] == "Allow" and "ec2:DeleteSnapshot" in actions(s)]
    denies = [s for s in statements if s["Effect"] == "Deny" and "ec2:DeleteSnapshot" in actions(s)]
    assert allows and denies
    for statement in allows:
        condition = statement["Condition"]["StringEquals"]["aws:ResourceTag/ops-automation:managed-by"]
        assert condition in ("terraform-aws-ops-automation", ["terraform-aws-ops-automation"])
    assert any("aws:ResourceTag/ops-automation:keep" in s["Condition"]["Null"] for s in denies)


# ---------------------------------------------------------------------------------------------------------------
# The published events through the deployed rules
# ---------------------------------------------------------------------------------------------------------------


def test_every_published_event_variant_was_put_on_the_bus(outcome: Outcome) -> None:
    names = {sample.name.split("#")[0] for sample in outcome.report.samples}
    for required in (
        "ami-state-available.json",
        "ami-state-deregistered.json",
        "ami-state-failed.json",
        "normalized/ami-state-available.json",
        "normalized/ami-state-deregistered.json",
        "normalized/ami-state-failed.json",
        "cloudtrail-deregisterimage-success.json",
        "cloudtrail-deregisterimage-error-unauthorized.json",
        "cloudtrail-ec2-detachvolume-doc-example.json",
        "sqs-event-wrapping-eventbridge-ami-available.json",
    ):
        assert required in names, required
    # Only Lambda inputs (SQS batches, Scheduler's input) are not events on a bus.
    assert all(name.startswith(("sqs-event", "scheduler-")) for name in outcome.report.skipped_samples)


def test_only_deregistered_ami_events_reach_the_work_queue(outcome: Outcome) -> None:
    # The published deregistered sample and its normalized copy; nothing else of ~30 events.
    assert outcome.report.sample_routing["main"] == Counter({STATE_CHANGE: 2})


def test_the_cloudtrail_rule_routes_the_successful_call_never_the_failed_one(outcome: Outcome) -> None:
    assert outcome.report.sample_routing["dry"] == Counter({STATE_CHANGE: 2, dereg.CLOUDTRAIL_CALL: 1})
    fed, registered = outcome.report.amis.images["fed"], outcome.report.amis.images["registered"]
    dry_lines = [line for line in outcome.report.dry_log.lines if line.get("message") == "dry run: nothing deleted"]
    assert fed in {line.get("image_id") for line in dry_lines}
    assert registered not in {line.get("image_id") for line in dry_lines}
    # The AMI the failed call names is still registered, and so is its snapshot.
    assert registered in outcome.state.images
    assert _snapshot(outcome, "registered") in outcome.state.snapshots


def test_the_deregistered_event_deletes_the_snapshots_once(outcome: Outcome) -> None:
    fed = outcome.report.amis.images["fed"]
    assert _snapshot(outcome, "fed") in _day(outcome, 1).deleted
    ledger = {item["sk"]: item for item in outcome.state.ledger}
    assert ledger[fed]["state"] == "deleted" and _refs(ledger[fed]) == [_snapshot(outcome, "fed")]
    deleted = [
        line
        for line in outcome.report.log.lines
        if line.get("message") == "snapshot deleted" and line.get("snapshot_id") == _snapshot(outcome, "fed")
    ]
    assert len(deleted) == 1  # the normalized copy of the event found the ledger item


# ---------------------------------------------------------------------------------------------------------------
# The days
# ---------------------------------------------------------------------------------------------------------------


def test_the_inuse_race_right_after_deregistration_is_retried_and_deletes(outcome: Outcome) -> None:
    race = _snapshot(outcome, "race")
    deferred = [
        line
        for line in outcome.report.log.lines
        if line.get("message") == "snapshot deletion deferred" and line.get("snapshot_id") == race
    ]
    assert deferred and deferred[0]["error_code"] == "InvalidSnapshot.InUse"
    assert _day(outcome, 1).messages["purge_snapshots"] >= 1
    assert race in _day(outcome, 1).deleted


def test_a_snapshot_shared_by_two_amis_stays_until_both_are_gone_then_the_sweep_takes_it(outcome: Outcome) -> None:
    first = _snapshot(outcome, "shared-first")
    # Kept on day 1 (the second AMI uses it); on day 2 the second AMI's event deletes only its own snapshot, and
    # that day's sweep (after it) takes the first one's.
    assert first in _day(outcome, 1).remaining
    second_day = _day(outcome, dereg.SHARED_SECOND_DAY)
    assert {_snapshot(outcome, "shared-second"), first} <= set(second_day.deleted)
    assert second_day.sweep["orphans"] >= 1
    assert first not in outcome.state.snapshots


def test_a_disabled_amis_snapshot_is_kept(outcome: Outcome) -> None:
    assert all(_present_after(outcome, "disabled-user"))
    assert outcome.state.images[outcome.report.amis.images["disabled"]] == "disabled"
    assert _snapshot(outcome, "disabled") in outcome.state.snapshots


def test_an_ami_in_the_recycle_bin_keeps_its_snapshot_until_it_leaves_the_bin(outcome: Outcome) -> None:
    present = _present_after(outcome, "recycled")
    assert present[: dereg.RECYCLE_PURGE_DAY] == [True] * dereg.RECYCLE_PURGE_DAY
    assert _snapshot(outcome, "recycled") in _day(outcome, dereg.RECYCLE_PURGE_DAY + 1).deleted
    assert _day(outcome, 2).sweep["verdicts"].get("image in recycle bin") == 1


def test_a_lost_event_is_swept_after_the_grace_period(outcome: Outcome) -> None:
    lost = _snapshot(outcome, "lost")
    # Made on day 1 at 10:00 and deregistered at 12:00 (local): 15.5 hours old at the sweep of day 2.
    assert _day(outcome, 2).sweep["verdicts"].get("in grace period", 0) >= 1
    assert lost in _day(outcome, 2).remaining
    assert lost in _day(outcome, 3).deleted


def test_an_unmanaged_ami_is_kept_and_reported_with_its_cost(outcome: Outcome) -> None:
    unmanaged = _snapshot(outcome, "unmanaged")
    assert unmanaged in outcome.state.snapshots
    reports = [alert for day in outcome.report.days for alert in day.alerts if alert["alert"] == dereg.OUT_OF_SCOPE]
    assert len(reports) == dereg.DAYS - 1  # every sweep once the snapshot is past the grace period
    for report in reports:
        assert report["orphans"] == 1 and report["sample_snapshot_ids"] == [unmanaged]
        assert report["monthly_cost_usd_at_most"] == pytest.approx(round(report["gib"] * 0.05, 2))
        assert report["gib"] > 0 and report["scope"] == "managed"


def test_the_exclusion_tag_keeps_a_snapshot(outcome: Outcome) -> None:
    assert all(_present_after(outcome, "excluded"))


def test_the_snapshot_ami_backup_could_not_delete_is_taken_by_deregister_cleanup(outcome: Outcome) -> None:
    denied = outcome.report.denied_snapshot
    assert denied
    # ami-backup gave up at its purge deadline and said so; the snapshot was still there then.
    backup_alerts = [a for day in outcome.report.days for a in day.backup_alerts if a["alert"] == LEFT_BEHIND]
    assert any(denied in alert["snapshots"] for alert in backup_alerts)
    assert outcome.report.denied_left_at_lift
    assert denied in _day(outcome, dereg.LIFT_DAY).deleted
    assert denied not in outcome.state.snapshots


def test_ami_backups_retired_in_the_days_lose_their_snapshots(outcome: Outcome) -> None:
    backups = outcome.report.amis
    retired = [image for image in backups.backups if image not in outcome.state.images]
    assert len(retired) == dereg.DAYS - 3  # generations 3
    for image in retired:
        assert backups.backups[image] not in outcome.state.snapshots


def test_dry_run_deletes_nothing_and_reports_what_the_real_sweep_then_deletes(outcome: Outcome) -> None:
    assert outcome.report.dry_deletions == []
    assert outcome.report.dry_failed == []
    assert outcome.state.dry_ledger == []
    for day in outcome.report.days:
        assert day.dry_messages["purge_snapshots"] == 0
        assert day.dry_sweep["dry_run"] is True and "purges_enqueued" not in day.dry_sweep
        would = {entry["snapshot_id"] for entry in day.dry_sweep["would_delete"]}
        assert len(would) == day.sweep["orphans"], day.slot
        assert day.dry_sweep["verdicts"] == day.sweep["verdicts"], day.slot


def test_ledger_records_every_ami_whose_event_was_handled(outcome: Outcome) -> None:
    images = outcome.report.amis.images
    by_image = {item["sk"]: item for item in outcome.state.ledger}
    for role in ("fed", "unmanaged", "excluded", "shared-first", "shared-second", "disabled-user", "race", "recycled"):
        item = by_image[images[role]]
        assert item["state"] == "deleted" and _refs(item) == [_snapshot(outcome, role)], role
        assert int(item["expires_at"]) > time.time()
    # Lost events leave no record: the sweep works from the snapshots.
    assert images["lost"] not in by_image


def test_nothing_failed_and_no_message_is_left(outcome: Outcome) -> None:
    assert outcome.report.failed_records == []
    assert outcome.state.dlq_messages == 0 and outcome.state.dry_dlq_messages == 0
    assert outcome.state.work_queue_messages == 0 and outcome.state.dry_work_queue_messages == 0


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    applied.wait_destroyed(EXAMPLE)
    applied.wait_destroyed(dereg.DRY_RUN.path)
    assert outcome.run.destroyed and outcome.dry_run.destroyed
    print(
        f"\ntier 3 deregister-cleanup: apply {outcome.run.apply_seconds:.0f}s (dry-run variant "
        f"{outcome.dry_run.apply_seconds:.0f}s), destroy {outcome.run.destroy_seconds:.0f}s, "
        f"days {outcome.seconds:.0f}s"
        f" ({outcome.report.clock_rounds} clock steps); {len(outcome.report.samples)} sample events, "
        f"{sum(len(day.deleted) for day in outcome.report.days)} snapshots deleted, {len(outcome.state.ledger)} "
        "ledger items"
    )
