"""A short seeded soak of snapshot-copy, instance-scheduler and ssm-runcommand (`make soak`, bench/soak/) with the
fault rates raised: the real handlers meet every injected fault without breaking an invariant; then a violation is
made by hand for each invariant, and the soak's checks must flag it (so the soak can fail). No wall-clock asserts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import bench  # noqa: F401 - puts the paths the soak needs in place
import boto3
import pytest
from aws_harness import REGION
from bench.soak import instance_scheduler, snapshot_copy, ssm_runcommand
from bench.soak.report import ModuleReport

from ops_automation.core.events import format_time
from ops_automation.snapshot_copy import handlers as copy_handlers
from ops_automation.snapshot_copy.decisions import Destination
from ops_automation.ssm_runcommand.decisions import comment

pytestmark = pytest.mark.tier1

SEED = 14
# Small: the three soaks together stay within tier 1's budget (each soak's year is `make soak`).
DAYS = 1
SOURCES = 4


def _publish(what: str, details: dict[str, Any]) -> None:
    """An alert on the policy's topic, as the handlers send one (the planted duplicate)."""
    sns = boto3.client("sns", region_name=REGION)
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("-alerts"))
    sns.publish(TopicArn=topic, Message=json.dumps({"alert": what, **details}))


def _run(
    soak_class: Callable[..., Any], rates: dict[str, float], days: int, sources: int, plant: Callable[[Any], None]
) -> tuple[ModuleReport, int]:
    """The soak, then `plant`; returns the report and how many violations there were before the plant."""
    before: list[int] = []

    def planted(soak: Any) -> None:
        before.append(len(soak.report.violations))
        plant(soak)

    report = soak_class(SEED, days, sources, None, rates).run(planted)
    return report, before[0]


def _flagged(report: ModuleReport, clean: int) -> set[str]:
    return {v.invariant for v in report.violations[clean:]}


# ---------------------------------------------------------------------------------------------------------------
# instance-scheduler
# ---------------------------------------------------------------------------------------------------------------


def _plant_scheduler(soak: instance_scheduler.SchedulerSoak) -> None:
    """Against the start slot: an instance outside the policy stopped, a managed one stopped and alerted twice,
    another stopped and not alerted at all."""
    fleet, slot = soak.fleet, soak.current
    assert slot is not None and slot.action == "start"
    outsider = sorted(fleet.outsiders)[0]
    alerted_twice, silent = sorted(fleet.managed - fleet.terminated)[:2]
    fleet.ec2.stop_instances(InstanceIds=[outsider, alerted_twice, silent])
    for _ in range(2):
        _publish(instance_scheduler.NOT_IN_STATE, {"resource_id": alerted_twice, "slot": slot.slot})
    soak.clock.now += timedelta(minutes=5)  # the stops complete


def test_instance_scheduler_soak_holds_its_invariants_and_flags_planted_violations() -> None:
    report, clean = _run(instance_scheduler.SchedulerSoak, instance_scheduler.RAISED, DAYS, SOURCES, _plant_scheduler)

    assert report.violations[:clean] == []
    assert report.steps > 5 and report.checks > report.steps
    assert len(report.faults) >= 4, report.faults
    assert _flagged(report, clean) == {
        "unmanaged instances never touched",
        "no duplicate or contrary action per slot",
        "every failure alerted exactly once",
        "every managed instance ends its slot in the desired state, or alerted",
    }


# ---------------------------------------------------------------------------------------------------------------
# ssm-runcommand
# ---------------------------------------------------------------------------------------------------------------


def _plant_runcommand(soak: ssm_runcommand.RunCommandSoak) -> None:
    night = soak.night
    assert night is not None
    ssm = boto3.client("ssm", region_name=REGION)
    succeeded = sorted(night.expected - soak.terminated)[0]
    outsider = sorted(soak.outsiders)[0]
    label = comment("nightly-db", "tags", night.slot)  # tonight's command's Comment, sent again
    ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[outsider, succeeded],
        Parameters={"commands": ["true"]},
        Comment=label,
    )
    for _ in range(2):
        _publish(ssm_runcommand.FAILED_ALERT, {"instance_id": succeeded, "slot": night.slot})
    soak.clock.now += timedelta(minutes=5)


def test_ssm_runcommand_soak_holds_its_invariants_and_flags_planted_violations() -> None:
    report, clean = _run(ssm_runcommand.RunCommandSoak, ssm_runcommand.RAISED, 2 * DAYS, SOURCES, _plant_runcommand)

    assert report.violations[:clean] == []
    assert report.steps > 5 and report.checks > report.steps
    assert len(report.faults) >= 4, report.faults
    assert _flagged(report, clean) == {
        "one command per chunk and slot",
        "one command per target per slot",
        "never on an instance outside the policy",
        "every failed command alerted exactly once",
        "no failure alert for a command that succeeded",
    }


# ---------------------------------------------------------------------------------------------------------------
# snapshot-copy
# ---------------------------------------------------------------------------------------------------------------


def _plant_copy(soak: snapshot_copy.CopySoak) -> None:
    """Eight more copies of one source (a duplicate, and past the retention once completed), a hand-made snapshot
    deleted, a failed copy nobody alerted, a copy alerted twice."""
    source_id, (volume, _completed) = next(iter(soak.seen.sources.items()))
    resource = soak.ec2.describe_snapshots(SnapshotIds=[source_id])["Snapshots"][0]
    source = copy_handlers.SNAPSHOTS.to_source(resource, REGION)
    destination = Destination(snapshot_copy.DESTINATION, None, None, None)
    made = [
        copy_handlers.SNAPSHOTS.copy(
            soak.dest, snapshot_copy.POLICY, source, destination, True, format_time(soak.clock.now)
        )
        for _ in range(snapshot_copy.GENERATIONS + 1)
    ]
    soak.dest.delete_snapshot(SnapshotId=soak.foreign[0])
    soak.clock.now += timedelta(hours=1)  # the copies complete
    soak.seen.failed_copies[made[0]] = ("ended in error", soak.clock.now - timedelta(days=2))
    for _ in range(2):
        _publish(snapshot_copy.FAILED_ALERT, {"resource_id": made[1]})
    del volume


def test_snapshot_copy_soak_holds_its_invariants_and_flags_planted_violations() -> None:
    report, clean = _run(snapshot_copy.CopySoak, snapshot_copy.RAISED, DAYS, SOURCES, _plant_copy)

    assert report.violations[:clean] == []
    assert report.steps > 5 and report.checks > report.steps
    assert len(report.faults) >= 4, report.faults
    assert _flagged(report, clean) == {
        "no duplicate copy per source and destination",
        "nothing without ownership tags deleted",
        "every failure alerted exactly once",
        "every source has exactly one copy per destination",
        "copies retained per the retention",
    }
