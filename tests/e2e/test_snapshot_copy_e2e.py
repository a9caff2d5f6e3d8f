"""Tier 3: `terraform apply` examples/snapshot-copy (Tokyo, and Osaka through its aliased provider) against the local
AWS the other examples share, run simulated days of its ebs-snapshot policy and its copy policy with the real
handlers (tests/e2e/snapshot_copy_scenario.py says what happens when), check what is left in both regions, then
destroy.

Everything runs once (session-scoped fixture); each test checks one property of the outcome.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from tests.e2e import scenario
from tests.e2e import snapshot_copy_scenario as sc

EXAMPLE = sc.EXAMPLE
MANAGED_BY = "terraform-aws-ops-automation"


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    report: sc.CopyReport
    state: sc.FinalState
    seconds: float


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(EXAMPLE)
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    bystanders = [
        url
        for example in applied.live()
        if example != EXAMPLE and applied.region_of(example) == aws.region
        for url in scenario.work_queue_urls(applied.run(example))
    ]
    report = sc.run_days(aws, run, bystanders)
    state = sc.final_state(aws, report)
    applied.start_destroy(EXAMPLE)
    return Outcome(run, report, state, time.monotonic() - started)


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}


def _day(outcome: Outcome, number: int) -> sc.DayLog:
    return outcome.report.day(number)


def _copies_of(outcome: Outcome, source_id: str) -> list[sc.Copy]:
    return [copy for copy in outcome.report.copies.values() if copy.source_id == source_id]


def _source_of_day(outcome: Outcome, number: int, volume: str) -> str:
    [source] = [s.snapshot_id for s in outcome.report.sources.values() if s.day == number and s.volume_id == volume]
    return source


def _log(outcome: Outcome, message: str) -> list[dict[str, Any]]:
    return [line for line in outcome.report.copy_log.lines if line.get("message") == message]


# ---------------------------------------------------------------------------------------------------------------
# Deployment
# ---------------------------------------------------------------------------------------------------------------


def test_both_providers_deployed_to_the_local_aws(outcome: Outcome) -> None:
    report = outcome.report
    assert (report.source_region, report.destination_region) == ("ap-northeast-1", "ap-northeast-3")
    # The key and the forwarding rule were made through the aliased provider: in Osaka.
    assert report.kms_key_arn.split(":")[3] == report.destination_region
    [rule] = outcome.run.outputs["destination_rule_arns"].values()
    assert rule.split(":")[3] == report.destination_region
    assert all(arn.split(":")[3] == report.source_region for arn in outcome.run.outputs["event_rule_arns"].values())


def test_the_copy_policy_copies_the_source_policy_to_osaka_with_the_examples_key(outcome: Outcome) -> None:
    report = outcome.report
    environment = report.copy.worker_environment
    assert report.copy.worker_environment == outcome.run.outputs["function_environments"]["worker"]
    assert json.loads(environment["OPS_SOURCE_POLICIES"]) == [report.source.policy_name]
    destinations = json.loads(environment["OPS_COPY_DESTINATIONS"])
    assert list(destinations) == [report.destination_region]
    assert destinations[report.destination_region]["kms_key_arn"] == report.kms_key_arn
    assert (report.copy.generations, report.source.generations) == (7, 3)


# ---------------------------------------------------------------------------------------------------------------
# Where the copies are
# ---------------------------------------------------------------------------------------------------------------


def test_copies_are_made_in_osaka_never_in_tokyo(outcome: Outcome) -> None:
    """The origin's bug (its DR copies stayed in the source region), as a regression test."""
    report, state = outcome.report, outcome.state
    copy_policy = report.copy.policy_name
    assert report.copies
    assert not [s for s in state.tokyo_snapshots.values() if _tags(s).get(sc.POLICY_TAG) == copy_policy]
    assert not report.tokyo_copies  # none, at any moment of the days
    assert not set(report.copies) & set(state.tokyo_snapshots)
    # Tokyo holds the source policy's three generations per volume and the snapshot made by hand, nothing else.
    expected = {s for s in report.sources if s in state.tokyo_snapshots} | set(_day(outcome, sc.MANUAL_DAY).manual)
    assert set(state.tokyo_snapshots) == expected
    kept = Counter(report.sources[s].volume_id for s in state.tokyo_snapshots if s in report.sources)
    assert kept == {volume: report.source.generations for volume in report.volumes.tagged}


def test_copies_are_encrypted_with_the_examples_osaka_key_and_tagged(outcome: Outcome) -> None:
    report, state = outcome.report, outcome.state
    copies = [s for s in state.osaka_snapshots.values() if s["SnapshotId"] in report.copies]
    assert copies and len(copies) == len(state.osaka_snapshots)
    for snapshot in copies:
        tags = _tags(snapshot)
        source = report.sources[tags[sc.SOURCE_SNAPSHOT_TAG]]
        assert snapshot["State"] == "completed"
        assert snapshot["Encrypted"] is True and snapshot["KmsKeyId"] == report.kms_key_arn
        assert tags[sc.MANAGED_BY_TAG] == MANAGED_BY and tags[sc.POLICY_TAG] == report.copy.policy_name
        assert tags[sc.SOURCE_VOLUME_TAG] == source.volume_id
        assert tags[sc.SOURCE_REGION_TAG] == report.source_region
        assert tags[sc.SOURCE_POLICY_TAG] == report.source.policy_name
        assert tags[sc.SLOT_TAG] and tags[sc.SOURCE_CREATED_TAG]


def test_every_source_is_copied_once(outcome: Outcome) -> None:
    report = outcome.report
    failed = set(_day(outcome, sc.ERROR_DAY).failed_copies)
    for source_id, source in report.sources.items():
        good = [copy for copy in _copies_of(outcome, source_id) if copy.copy_id not in failed]
        assert len(good) == 1, (source_id, source)
        assert good[0].day == source.day and good[0].volume_id == source.volume_id
    # The catch-ups found nothing to copy except on the days an event was lost or a copy failed.
    for day in report.days:
        enqueued = sum(summary.get("enqueued", 0) for summary in day.catch_ups)
        assert enqueued == (1 if day.number in (sc.LOST_EVENT_DAY, sc.ERROR_DAY) else 0), day.number
        assert all(not summary.get("not_found") for summary in day.catch_ups), day.number


def test_retention_keeps_generations_copies_per_volume_in_osaka(outcome: Outcome) -> None:
    report, state = outcome.report, outcome.state
    generations = report.copy.generations
    assert generations < sc.DAYS
    by_volume: dict[str, list[str]] = {}
    for snapshot in state.osaka_snapshots.values():
        by_volume.setdefault(_tags(snapshot)[sc.SOURCE_VOLUME_TAG], []).append(_tags(snapshot)[sc.SLOT_TAG])
    assert {volume: len(slots) for volume, slots in by_volume.items()} == dict.fromkeys(
        report.volumes.tagged, generations
    )
    newest = sorted(day.slot for day in report.days)[-generations:]
    for volume, slots in by_volume.items():
        assert sorted(slots) == newest, volume
    # One copy per volume retired on each day past the seventh; the day before, seven per volume and none retired.
    for day in report.days:
        expected = len(report.volumes.tagged) if day.number > generations else 0
        assert len(day.retired) == expected, day.number
        assert all(len(slots) == min(day.number, generations) for slots in day.kept.values()), day.number


# ---------------------------------------------------------------------------------------------------------------
# The event flow through the deployed rules
# ---------------------------------------------------------------------------------------------------------------


def test_copy_results_emitted_in_osaka_reach_the_work_queue_through_tokyo(outcome: Outcome) -> None:
    report = outcome.report
    source, destination = report.source_region, report.destination_region
    for day in report.days:
        published_copies = (
            day.published[f"{sc.COPY} succeeded {destination}"] + day.published[f"{sc.COPY} failed {destination}"]
        )
        assert published_copies >= len(report.volumes.tagged), day.number
        # Every copySnapshot put on Osaka's bus reached the work queue in Tokyo, still naming Osaka as its region.
        assert day.messages[f"{sc.COPY} {destination}"] == published_copies, day.number
        assert day.messages[f"{sc.COPY} {source}"] == 0, day.number
        # Every createSnapshot of Tokyo reached both policies; the source policy's rule never routes copy results.
        created = day.published[f"{sc.CREATE} succeeded {source}"]
        assert day.messages[f"{sc.CREATE} {source}"] == created, day.number
        assert day.source_messages[sc.SNAPSHOT_NOTIFICATION] == created, day.number


def test_a_snapshot_made_by_hand_is_not_copied(outcome: Outcome) -> None:
    [manual] = _day(outcome, sc.MANUAL_DAY).manual
    assert manual in outcome.state.tokyo_snapshots
    assert not _copies_of(outcome, manual)
    # Its createSnapshot event was routed like the others (3 that day: two sources and it).
    assert _day(outcome, sc.MANUAL_DAY).messages[f"{sc.CREATE} {outcome.report.source_region}"] == 3


def test_a_lost_source_event_is_copied_by_the_catch_up(outcome: Outcome) -> None:
    day = _day(outcome, sc.LOST_EVENT_DAY)
    lost = _source_of_day(outcome, sc.LOST_EVENT_DAY, outcome.report.volumes.db_data)
    assert day.lost_events == [lost]
    assert day.catch_ups[0]["enqueued"] == 1
    [copy] = _copies_of(outcome, lost)
    assert copy.copy_id in outcome.state.osaka_snapshots
    assert day.messages[f"{sc.CREATE} {outcome.report.source_region}"] == 1  # logs' only
    assert not day.alerts


def test_a_duplicate_copy_event_changes_nothing(outcome: Outcome) -> None:
    day = _day(outcome, sc.DUPLICATE_DAY)
    destination = outcome.report.destination_region
    assert day.published[f"{sc.COPY} succeeded {destination}"] == len(outcome.report.volumes.tagged) + 1
    assert day.messages[f"{sc.COPY} {destination}"] == len(outcome.report.volumes.tagged) + 1
    # Each copy was completed (and its lineage retained) once, whatever the deliveries.
    completed = Counter(line.get("resource_id") for line in _log(outcome, "backup available"))
    assert set(completed.values()) == {1}
    assert set(completed) == set(outcome.report.copies) - set(_day(outcome, sc.ERROR_DAY).failed_copies)
    assert not day.alerts and not day.failed_records


def test_the_concurrent_copy_limit_waits_without_alert_and_copies_later(outcome: Outcome) -> None:
    day = _day(outcome, sc.LIMIT_DAY)
    waits = [line for line in _log(outcome, "copy waits") if line.get("why") == "ResourceLimitExceeded"]
    assert waits
    assert day.messages["copy"] > len(outcome.report.volumes.tagged)  # the waits came back through the queue
    for volume in outcome.report.volumes.tagged:
        [copy] = _copies_of(outcome, _source_of_day(outcome, sc.LIMIT_DAY, volume))
        assert copy.day == sc.LIMIT_DAY
    assert not day.alerts and not day.failed_records


def test_a_failed_copy_alerts_once_and_is_copied_again(outcome: Outcome) -> None:
    day = _day(outcome, sc.ERROR_DAY)
    [failed] = day.failed_copies
    source = outcome.report.copies[failed].source_id
    assert outcome.report.sources[source].volume_id == outcome.report.volumes.logs
    assert failed not in outcome.state.osaka_snapshots  # the copy in error was deleted
    [alert] = day.alerts
    assert alert["alert"] == sc.COPY_FAILED and alert["resource_id"] == failed
    assert alert["policy"] == outcome.report.copy.policy_name and sc.ERROR_MESSAGE in alert["reason"]
    [again] = [copy for copy in _copies_of(outcome, source) if copy.copy_id != failed]
    assert again.day == sc.ERROR_DAY


def test_no_alert_but_the_failed_copy(outcome: Outcome) -> None:
    for day in outcome.report.days:
        expected = [sc.COPY_FAILED] if day.number == sc.ERROR_DAY else []
        assert [alert["alert"] for alert in day.alerts] == expected, (day.number, day.alerts)


def test_nothing_failed_and_no_message_is_left(outcome: Outcome) -> None:
    assert outcome.report.failed_records == []
    assert outcome.state.dlq_messages == 0
    assert outcome.state.work_queue_messages == 0
    errors = [line.get("message") for line in outcome.report.copy_log.at("ERROR", "CRITICAL")]
    assert errors == [sc.COPY_FAILED]
    assert outcome.report.source_log.at("ERROR", "CRITICAL") == []


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    applied.wait_destroyed(EXAMPLE)
    assert outcome.run.destroyed
    report = outcome.report
    print(
        f"\ntier 3 snapshot-copy: apply {outcome.run.apply_seconds:.0f}s, destroy {outcome.run.destroy_seconds:.0f}s, "
        f"days {outcome.seconds:.0f}s ({report.clock_rounds} clock steps); {len(report.sources)} sources in "
        f"{report.source_region}, {len(report.copies)} copies made in {report.destination_region}, "
        f"{len(outcome.state.osaka_snapshots)} kept; {report.stray_cleared} stray and {report.bystanders_cleared} "
        "bystander messages cleared"
    )
