"""Tier 3: `terraform apply` examples/instance-scheduler (and two variants: a stop-only policy, a policy in
America/New_York) against a local AWS, run a simulated Tokyo office week and the days around both 2027 clock
changes through the deployed resources with the real handlers, check what they did, then `terraform destroy`.

Everything runs once (session-scoped fixture, one local AWS and the applies shared with the other examples' tier 3,
tests/e2e/conftest.py); each test checks one property of the outcome. The story is in
tests/e2e/instance_scheduler_scenario.py.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from tests.e2e import instance_scheduler_scenario as isched
from tests.e2e import scenario

EXAMPLE = isched.EXAMPLE
VARIANTS = isched.VARIANTS
LAUNCH_ERROR = "Client.InternalError"


@dataclass(frozen=True)
class Outcome:
    runs: dict[str, scenario.TerraformRun]
    week: isched.WeekReport
    dst: isched.DstReport
    state: isched.FinalState
    seconds: float


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    paths = {"office": EXAMPLE, "stop-only": isched.STOP_ONLY.path, "new-york": isched.NEW_YORK.path}
    runs = {key: applied.run(path) for key, path in paths.items()}
    started = time.monotonic()
    aws = applied.aws_for(EXAMPLE)
    deployed = {key: isched.deployment_from_terraform(aws, run.outputs, paths[key]) for key, run in runs.items()}
    week = isched.run_week(aws, deployed["office"], deployed["stop-only"], [deployed["new-york"]])
    dst = isched.run_dst(aws, deployed["new-york"], [deployed["office"], deployed["stop-only"]])
    state = isched.final_state(aws, list(deployed.values()))
    for path in paths.values():
        applied.start_destroy(path)
    return Outcome(runs, week, dst, state, time.monotonic() - started)


def _ids(outcome: Outcome, *names: str) -> list[str]:
    return [outcome.week.fleet.id_of(name) for name in names]


def _one(outcome: Outcome, day: date, action: str, policy: str = "office-hours") -> isched.SlotRun:
    (run,) = outcome.week.slot(policy, day, action)
    return run


WEEKDAYS = [date(2027, 1, 11) + timedelta(days=offset) for offset in range(5)]
WORKDAYS = WEEKDAYS[1:]  # Monday is the holiday


def test_deployed_policies_are_what_terraform_reports(outcome: Outcome) -> None:
    office, nightly, new_york = outcome.week.office, outcome.week.stop_only, outcome.dst.deployment
    assert {a: (s.expression, s.timezone) for a, s in office.schedules.items()} == {
        "start": ("cron(0 8 ? * MON-FRI *)", "Asia/Tokyo"),
        "stop": ("cron(0 20 ? * MON-FRI *)", "Asia/Tokyo"),
    }
    # Stop-only: no start schedule and no starter function were deployed at all.
    assert nightly.starter_function is None and set(nightly.schedules) == {"stop"}
    assert {a: s.timezone for a, s in new_york.schedules.items()} == {
        "start": "America/New_York",
        "stop": "America/New_York",
    }
    for deployed in (office, nightly, new_york):
        terraform = deployed.outputs["function_environments"]["worker"]
        assert deployed.deployment.worker_environment == terraform
        for environment in deployed.planner_environments.values():
            assert environment == terraform
            assert environment["OPS_SCHEDULE_TIMEZONE"] == deployed.schedules["stop"].timezone


def test_the_week_invokes_each_schedule_at_its_local_times(outcome: Outcome) -> None:
    office = [run for run in outcome.week.slots if run.policy == "office-hours"]
    assert [(run.local[:14], run.local[15:20], run.action) for run in office] == [
        (f"{day.isoformat()} {day.strftime('%a')}", hour, action)
        for day in WEEKDAYS
        for hour, action in (("08:00", "start"), ("20:00", "stop"))
    ]
    # 08:00 in Tokyo is 23:00 UTC the day before.
    assert office[0].slot == "2027-01-10T23:00:00Z"
    nightly = [run for run in outcome.week.slots if run.policy == "nightly-stop"]
    assert [run.local[:10] for run in nightly] == [
        (date(2027, 1, 11) + timedelta(days=d)).isoformat() for d in range(7)
    ]
    assert {run.action for run in nightly} == {"stop"}


def test_every_slot_has_a_verification_report_for_each_instance_of_its_policy(outcome: Outcome) -> None:
    office = {"web-1", "web-2", "slow-1", "batch-1", "kms-db", "asg-web"}
    for run in outcome.week.slots:
        expected = {
            "office-hours": office,
            "nightly-stop": {"dev-1"},
            "new-york-nights": {f"group:{isched.NY_GROUP}", f"db:{isched.NY_DATABASE}"},
        }[run.policy]
        assert set(run.verification) == expected, run.local


def test_the_holiday_is_skipped_and_logged(outcome: Outcome) -> None:
    for action in ("start", "stop"):
        run = _one(outcome, isched.HOLIDAY, action)
        assert run.summaries == [{"slot": run.slot, "action": action, "outcome": "excluded_date"}]
        assert run.calls == [] and "act" not in run.messages
        assert {verdict for _state, verdict in run.verification.values()} == {"excluded date: not planned"}
        logged = [line for line in outcome.week.log.lines[run.log_from :] if line.get("slot") == run.slot]
        assert any(line["message"] == "excluded date: nothing done" for line in logged)
    # Nothing was started on the holiday: the fleet stayed as Friday left it until Tuesday 08:00.
    assert _one(outcome, isched.HOLIDAY, "stop").verification["web-1"][0] == "stopped"


def test_workday_slots_start_and_stop_the_fleet_and_verify_it(outcome: Outcome) -> None:
    web = _ids(outcome, "web-1", "web-2")
    for day in WORKDAYS:
        for action, desired in (("start", "running"), ("stop", "stopped")):
            run = _one(outcome, day, action)
            for name in ("web-1", "web-2"):
                assert run.verification[name] == (desired, "verified"), (run.local, name)
            assert all(run.acted[instance] == 1 for instance in web), run.local
            assert run.messages[f"state event {desired}"] >= len(web)  # the rule routed the end states


def test_a_stop_only_policy_only_ever_stops(outcome: Outcome) -> None:
    dev = outcome.week.fleet.id_of("dev-1")
    nightly = [run for run in outcome.week.slots if run.policy == "nightly-stop"]
    assert all(operation == "StopInstances" for run in nightly for operation, _policy, _ids in run.calls)
    hand_days = {moment.date().isoformat() for moment in isched.HAND_STARTS}
    for run in nightly:
        stopped_tonight = run.local[:10] in hand_days
        assert run.acted[dev] == (1 if stopped_tonight else 0), run.local
        assert run.verification["dev-1"] == (
            "stopped",
            "verified" if stopped_tonight else "already there: not acted on",
        ), run.local
    # It never acted on the office fleet (other tag), and nothing of it ever started anything.
    assert not any(
        policy == "nightly-stop" and operation == "StartInstances"
        for run in outcome.week.slots
        for operation, policy, _ids in run.calls
    )
    assert {instance for run in nightly for instance in run.acted} == {dev}


def test_auto_scaling_group_members_are_skipped_and_reported(outcome: Outcome) -> None:
    member = outcome.week.fleet.asg_member
    for day in WORKDAYS:
        for action in ("start", "stop"):
            run = _one(outcome, day, action)
            assert (
                f"{member}: member of Auto Scaling group {isched.ASG_NAME}: stopping it makes the group replace it"
                in (run.summaries[0]["skipped"])
            )
            assert run.verification["asg-web"][1].startswith("skipped (member of Auto Scaling group web-asg")
            assert member not in run.acted
    assert all(
        run.verification["asg-web"][0] == "running" for run in outcome.week.slots if run.policy == "office-hours"
    )


def test_a_capacity_group_and_a_database_are_stopped_and_started_in_the_week(outcome: Outcome) -> None:
    """The New York policy (auto_scaling_groups = capacity, schedule_rds = true): its stop and the next start."""
    runs = [run for run in outcome.week.slots if run.policy == "new-york-nights"]
    assert [(run.action, run.local) for run in runs] == [
        ("stop", "2027-01-13 Wed 16:30 JST"),
        ("start", "2027-01-14 Thu 15:30 JST"),
    ]
    stop, start = runs
    group, database = f"group:{isched.NY_GROUP}", f"db:{isched.NY_DATABASE}"
    assert stop.verification == {group: ("0/0/0 (0 instances)", "verified"), database: ("stopped", "verified")}
    assert start.verification == {group: ("1/2/3 (2 instances)", "verified"), database: ("available", "verified")}
    # One call per resource and action; the group's members are never stopped as instances (the group terminates
    # and relaunches them).
    assert Counter((operation, ids) for operation, _policy, ids in stop.calls) == Counter(
        {("UpdateAutoScalingGroup", (isched.NY_GROUP,)): 1, ("StopDBInstance", (isched.NY_DATABASE,)): 1}
    )
    assert Counter((operation, ids) for operation, _policy, ids in start.calls) == Counter(
        {("UpdateAutoScalingGroup", (isched.NY_GROUP,)): 1, ("StartDBInstance", (isched.NY_DATABASE,)): 1}
    )


def test_a_start_refused_by_the_volume_key_is_reported_with_its_reason(outcome: Outcome) -> None:
    day, action = isched.KMS_DENIED
    run = _one(outcome, day, action)
    state, verdict = run.verification["kms-db"]
    assert state == "stopped" and verdict.startswith("FAILED") and LAUNCH_ERROR in verdict
    kms_db = outcome.week.fleet.id_of("kms-db")
    (alert,) = [alert for alert in run.alerts if alert.get("resource_id") == kms_db]
    assert alert["alert"] == isched.NOT_IN_STATE
    assert "Client error on launch" in alert["reason"] and "kms:CreateGrant" in alert["reason"]
    # The others of the batch started; the next day, with the key usable again, kms-db starts too.
    assert run.verification["web-1"] == ("running", "verified")
    assert _one(outcome, day + timedelta(days=1), "start").verification["kms-db"] == ("running", "verified")


def test_an_instance_still_stopping_at_the_deadline_is_reported_once(outcome: Outcome) -> None:
    day, action = isched.SLOW
    run = _one(outcome, day, action)
    slow = outcome.week.fleet.id_of("slow-1")
    (alert,) = [alert for alert in run.alerts if alert.get("resource_id") == slow]
    assert alert["alert"] == isched.NOT_IN_STATE
    assert "past its deadline" in alert["reason"]
    # It did stop, after the deadline: the report keeps the failure and says so.
    assert run.verification["slow-1"] == (
        "stopped",
        f"FAILED: {alert['reason']}; got there after the deadline",
    )
    assert run.verification["web-1"] == ("stopped", "verified")
    # Reported at the deadline, not when it finally stopped: one alert in the whole week.
    week_alerts = [alert for r in outcome.week.slots for alert in r.alerts if alert.get("resource_id") == slow]
    assert week_alerts == [alert]


def test_a_duplicate_schedule_delivery_acts_once(outcome: Outcome) -> None:
    day, action = isched.DUPLICATE
    run = _one(outcome, day, action)
    assert len(run.summaries) == 2 and all(summary["enqueued"] == 1 for summary in run.summaries)
    assert run.messages["act"] == 2  # both deliveries' batches reached the worker
    # kms-db did not start that morning (its key was denied): nothing to stop.
    acted = _ids(outcome, "web-1", "web-2", "slow-1")
    assert run.acted == Counter(dict.fromkeys(acted, 1))
    assert run.verification["kms-db"] == ("stopped", "already there: not acted on")
    assert [operation for operation, _policy, _ids in run.calls] == ["StopInstances"]


def test_a_terminated_instance_does_not_hold_up_its_batch(outcome: Outcome) -> None:
    day, action = isched.TERMINATION
    run = _one(outcome, day, action)
    batch = outcome.week.fleet.id_of("batch-1")
    assert batch not in run.acted
    for name in ("web-1", "web-2", "slow-1", "kms-db"):
        assert run.verification[name] == ("running", "verified"), name
    (alert,) = [alert for alert in run.alerts if alert.get("resource_id") == batch]
    assert "terminated" in alert["reason"]
    # Reported once: later slots list it as terminated (planner report) without alerting again.
    later = [alert for r in outcome.week.slots if r.slot > run.slot for alert in r.alerts]
    assert all(alert.get("resource_id") != batch for alert in later)


def test_the_untagged_instance_is_never_touched(outcome: Outcome) -> None:
    bastion = outcome.week.fleet.id_of("bastion")
    assert all(bastion not in run.acted for run in outcome.week.slots)
    assert all("bastion" not in run.verification for run in outcome.week.slots)


def test_published_state_samples_reach_the_worker_only_for_end_states(outcome: Outcome) -> None:
    # The deployed rule forwards `running` and `stopped`; the published `pending` sample is filtered out.
    assert outcome.week.sample_routing == {
        policy: {
            "reached": ["ec2-instance-state-running.json", "ec2-instance-state-stopped.json"],
            "filtered": ["ec2-instance-state-pending.json"],
        }
        for policy in ("office-hours", "nightly-stop", "new-york-nights")
    }


def test_no_invocation_in_the_spring_forward_gap(outcome: Outcome) -> None:
    invocations = outcome.dst.invocations
    # 02:30 does not exist in New York on 2027-03-14: Scheduler skips the stop that day, nothing makes it up.
    assert invocations["2027-03-14"] == Counter({"start": 1, "stop": 0})
    assert invocations["2027-03-13"] == invocations["2027-03-15"] == Counter({"start": 1, "stop": 1})
    stops = [run.slot for run in outcome.dst.slots if run.action == "stop" and run.local.startswith("2027-03")]
    assert stops == ["2027-03-13T07:30:00Z", "2027-03-15T06:30:00Z"]
    # What was started at 01:30 ran through the night the stop was skipped, until the next day's stop.
    assert set(outcome.dst.end_of_day["2027-03-14"].values()) == {"running"}
    assert set(outcome.dst.end_of_day["2027-03-15"].values()) == {"stopped"}


def test_the_repeated_fall_back_hour_runs_once(outcome: Outcome) -> None:
    invocations = outcome.dst.invocations
    assert invocations["2027-11-07"] == Counter({"start": 1, "stop": 1})
    (start,) = [run for run in outcome.dst.slots if run.action == "start" and run.local.startswith("2027-11-07")]
    # 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST): invoked at the first only.
    assert start.slot == "2027-11-07T05:30:00Z"
    verdicts = {(run.local[:10], run.action): set(run.verification.values()) for run in outcome.dst.slots}
    # Started on the 14th and never stopped that day: already running at the 15th's start.
    assert verdicts.pop(("2027-03-15", "start")) == {("running", "already there: not acted on")}
    assert all(found in ({("running", "verified")}, {("stopped", "verified")}) for found in verdicts.values())
    planned = Counter(
        (datetime.strptime(run.slot, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC), run.action) for run in outcome.dst.slots
    )
    assert max(planned.values()) == 1


def test_every_alert_is_one_the_scenario_caused_and_nothing_is_left(outcome: Outcome) -> None:
    fleet = outcome.week.fleet
    alerted = Counter(fleet.names.get(str(alert["resource_id"])) for run in outcome.week.slots for alert in run.alerts)
    assert alerted == Counter({"kms-db": 1, "slow-1": 1, "batch-1": 1})
    assert [run.slot for run in [*outcome.week.slots, *outcome.dst.slots] if run.failed_records] == []
    assert outcome.state.work_queue_messages == 0
    assert outcome.state.dlq_messages == 0
    assert isched.problems(outcome.week, outcome.dst, outcome.state) == []


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    for path in (EXAMPLE, isched.STOP_ONLY.path, isched.NEW_YORK.path):
        applied.wait_destroyed(path)
    assert all(run.destroyed for run in outcome.runs.values())
    applies = ", ".join(f"{key} {run.apply_seconds:.0f}s" for key, run in outcome.runs.items())
    print(
        f"\ntier 3 instance-scheduler: apply {applies}; week and DST days {outcome.seconds:.0f}s; "
        f"{len(outcome.week.slots)} + {len(outcome.dst.slots)} slots"
    )
