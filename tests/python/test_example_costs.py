"""The examples' README cost sections (issue 11): generated from each example's Terraform and the cost model, kept in
sync, and priced as the module READMEs price the same settings."""

from __future__ import annotations

import bench  # noqa: F401 - puts the paths the benchmark needs in place
import pytest
from bench import cleanup, copy, crossaccount, examples, model, readme, runcommand, scheduler
from bench.cost import HOURS_PER_MONTH, project

pytestmark = pytest.mark.tier1


@pytest.mark.parametrize("name", examples.PUBLISHED)
def test_a_published_example_readme_carries_the_cost_section_the_model_computes(name: str) -> None:
    path = examples.readme_of(name)
    assert path.is_file(), f"examples/{name}/README.md is missing"
    section = readme.current(path.read_text(encoding="utf-8"))
    assert section is not None, f"examples/{name}/README.md has no {readme.BEGIN}/{readme.END} markers"
    assert section == examples.expected(name), f"examples/{name}: run `.venv/bin/python -m bench examples`"


@pytest.mark.parametrize("name", examples.COMPOSED)
def test_a_composed_example_readme_is_in_sync_once_the_example_exists(name: str) -> None:
    if not (examples.EXAMPLES / name).is_dir():
        pytest.skip(f"examples/{name} does not exist yet")
    path = examples.readme_of(name)
    assert path.is_file(), f"examples/{name}/README.md is missing"
    section = readme.current(path.read_text(encoding="utf-8"))
    assert section is not None, f"examples/{name}/README.md has no {readme.BEGIN}/{readme.END} markers"
    assert section == examples.expected(name), f"examples/{name}: run `.venv/bin/python -m bench examples`"


def test_the_check_reports_every_stale_section(monkeypatch: pytest.MonkeyPatch) -> None:
    assert examples.stale() == []
    monkeypatch.setattr(examples, "expected", lambda name: "not what the README says")
    existing = [name for name in (*examples.PUBLISHED, *examples.COMPOSED) if (examples.EXAMPLES / name).is_dir()]
    assert [problem.split("/")[1] for problem in examples.stale()] == existing


@pytest.mark.parametrize(
    ("expression", "runs", "interval"),
    [
        ("cron(0 1 * * ? *)", 30, 24),
        ("cron(0 * * * ? *)", 720, 24),  # modules/internal/alarms.tf reads any every-day cron as daily
        ("cron(0 8 ? * MON-FRI *)", 22, 168),
        ("cron(30 3 ? * SUN *)", 4.4, 168),
        ("cron(0 9,18 ? * MON,WED,FRI *)", 2 * 3 * 4.4, 168),
        ("cron(0 3 1 * ? *)", 1, 168),
        ("rate(6 hours)", 120, 6),
        ("rate(30 minutes)", 1440, 1),
        ("rate(2 days)", 15, 48),
    ],
)
def test_a_schedule_gives_its_runs_a_month_and_the_interval_its_alarm_watches(
    expression: str, runs: float, interval: float
) -> None:
    every = examples.schedule(expression)
    assert every.cycles == pytest.approx(runs)
    assert every.interval_hours == interval


def _call(module: str, **settings: object) -> examples.Call:
    return examples.Call("x", module, dict(settings))


def test_alarms_follow_the_internal_module() -> None:
    daily, weekdays = examples.schedule("cron(0 1 * * ? *)"), examples.schedule("cron(0 8 ? * MON-FRI *)")
    # The module READMEs' figures at defaults: the dead-letter alarm and a derived missed-run alarm.
    assert examples.alarms(_call("ami-backup"), [daily]) == model.ALARMS_OURS
    assert examples.alarms(_call("instance-scheduler"), [weekdays, weekdays]) == scheduler.ALARMS
    assert examples.alarms(_call("instance-scheduler", missed_run_alarm_hours=73), [weekdays, weekdays]) == 3
    with_key = _call("snapshot-copy", kms_key_arn="arn:key", copy_images=False)
    assert examples.alarms(with_key, [examples.schedule("rate(6 hours)")]) == 1 + 1 + 3


def test_an_example_at_the_module_defaults_costs_what_the_module_readme_says() -> None:
    ours = model.load_inputs()[0]
    volume = model.load_ebs_inputs()["volume"].ours
    dereg = cleanup.load_inputs()
    for n in examples.SIZES:
        assert examples.cost(examples.EXAMPLES / "ami-backup", n).total == pytest.approx(project(ours, n).total)
        assert examples.cost(examples.EXAMPLES / "ebs-snapshot", n).total == pytest.approx(project(volume, n).total)
        assert examples.cost(examples.EXAMPLES / "deregister-cleanup", n).total == pytest.approx(
            project(dereg.usage("ours", n), n).total
        )
        # The example adds the missed-run alarms (missed_run_alarm_hours = 73) to the module's dead-letter one.
        module = scheduler.projection(next(i for i in scheduler.load_inputs()[0] if i.instances == n))
        alarm = next(line for line in module.lines if line.item == "CloudWatch alarms")
        extra = 2 * alarm.usd / alarm.quantity
        assert examples.cost(examples.EXAMPLES / "instance-scheduler", n).total == pytest.approx(module.total + extra)


def test_a_run_command_slot_is_the_module_readme_s_at_its_settings_and_measured_again_at_others() -> None:
    (call,) = [c for c in examples.module_calls(examples.EXAMPLES / "ssm-runcommand") if c.module == "ssm-runcommand"]
    settings = examples.runcommand_settings(call)
    # modules/ssm-runcommand/main.tf: the deadline is the delivery and execution timeouts plus 15 minutes.
    assert settings["OPS_COMPLETION_TIMEOUT_MINUTES"] == str((600 + 3600) // 60 + 15)
    assert settings["OPS_MAX_CONCURRENCY"] == "10"
    measured = {**call.settings, "max_concurrency": "50", "execution_timeout_seconds": 1800, "timeout_seconds": 600}
    measured["verify_deadline_minutes"] = 60
    at_module = examples.Call(call.block, call.module, measured)
    module_slots = runcommand.load_inputs().inputs
    (run,) = [run for run in examples.load_runs() if run["settings"] == settings]
    for n in examples.SIZES:
        assert examples.runcommand_inputs(at_module, n) in module_slots
        assert examples.runcommand_inputs(call, n).as_dict() in run["inputs"]
    # At 200 instances, 10 at a time outlast the first check: more checks than at 50 at a time.
    slower = examples.runcommand_inputs(call, 200).usage.other_calls_each["dynamodb.GetItem"]
    assert slower > examples.runcommand_inputs(at_module, 200).usage.other_calls_each["dynamodb.GetItem"]
    with pytest.raises(LookupError, match="examples --measure"):
        examples.runcommand_inputs(examples.Call("x", call.module, {**measured, "max_concurrency": "7"}), 20)


def test_copies_of_a_daily_source_cost_what_the_snapshot_copy_readme_says() -> None:
    (call,) = [c for c in examples.module_calls(examples.EXAMPLES / "snapshot-copy") if c.module == "snapshot-copy"]
    for n in examples.SIZES:
        part = examples.snapshot_copy_part(call, n, 30.0)
        module = copy.projection(examples._copy_inputs("snapshots", n, 1))
        assert {line.item: pytest.approx(line.quantity) for line in part.lines} == {
            line.item: line.quantity for line in module.lines
        }


def test_weekly_copies_keep_the_daily_catch_up_and_make_fewer_copies() -> None:
    (call,) = [c for c in examples.module_calls(examples.EXAMPLES / "snapshot-copy") if c.module == "snapshot-copy"]
    daily = {line.item: line for line in examples.snapshot_copy_part(call, 20, 30.0).lines}
    weekly = {line.item: line for line in examples.snapshot_copy_part(call, 20, 4.4).lines}
    forwarded = "EventBridge copy results forwarded across regions (custom events)"
    assert weekly[forwarded].quantity == pytest.approx(daily[forwarded].quantity * 4.4 / 30)
    assert weekly["EventBridge Scheduler"].quantity == daily["EventBridge Scheduler"].quantity
    assert weekly["CloudWatch alarms"].quantity == daily["CloudWatch alarms"].quantity


def test_an_hourly_policy_pays_each_metric_for_the_month_at_most() -> None:
    ours = model.load_inputs()[0]
    hourly = examples.at_cycles(ours, 720, ours.alarms)
    metrics = next(line for line in project(hourly, 20, days=720).lines if line.item.startswith("CloudWatch custom"))
    assert metrics.quantity == pytest.approx(ours.metric_names)
    assert hourly.metric_hours_per_day * 720 == pytest.approx(HOURS_PER_MONTH)


def test_the_free_tier_is_counted_once_for_the_whole_example() -> None:
    half = examples.priced("SQS requests (incl. idle long polls)", "sqs_requests", 600_000)
    (both,) = examples.summed([[half], [half]])
    assert half.usd_after_free_tier == 0
    assert both.quantity == 1_200_000 and both.usd_after_free_tier == pytest.approx(200_000 * 0.40 / 1e6)


def test_the_landing_zone_hub_lists_every_account_and_region_and_assumes_each_role() -> None:
    hub = [
        examples.Call("ami_backup", "ami-backup", {
            "schedule_expression": "cron(0 1 * * ? *)", "generations": 3,
            "target_role_arns": "${local.roles}", "regions": ["ap-northeast-1", "ap-northeast-3"],
        }),
        examples.Call("spoke_a", "target-account-role", {"grants": {"ami-backup": {}}}),
        examples.Call("spoke_b", "target-account-role", {"grants": {"ami-backup": {}}}),
    ]  # fmt: skip
    parts, notes = examples.landing_zone_parts(hub, 20)
    checked = crossaccount.load_inputs().ami_backup
    alone = examples.ami_backup_part(hub[0], 20, checked)
    lines = {line.item: line for line in parts[0].lines}
    same = {line.item: line for line in alone.lines}
    # 2 accounts x 2 regions: 4 listings a run instead of 1 (150 ms each), AssumeRole at 20 ms; no event delivered.
    listings = 3 * 30 * 0.150
    assume = (2 + checked.invocations_each * 20 * 2) * 30 * 0.020
    extra_gb_s = (listings + assume) * 0.25
    assert lines["Lambda duration (256 MB, arm64)"].quantity == pytest.approx(
        same["Lambda duration (256 MB, arm64)"].quantity + extra_gb_s
    )
    assert lines["EventBridge AMI state events"].quantity == 0
    assert [p.lines for p in parts[1:]] == [[], []]
    assert "120 planner listings (2 accounts x 2 regions a run)" in notes[0]


def test_the_cross_account_cycle_completes_by_the_check_without_events() -> None:
    measured = crossaccount.measure(units=2)
    assert measured.leftovers == 0
    for usage in (measured.ami_backup, measured.ebs_snapshot):
        assert usage.eventbridge_deliveries_each == 0
        assert usage.other_calls_each["dynamodb.UpdateItem"] >= 3  # created, completed, retired
    committed = crossaccount.load_inputs()
    assert measured.ami_backup.ec2_calls_each == committed.ami_backup.ec2_calls_each
    assert measured.ebs_snapshot.ec2_calls_each == committed.ebs_snapshot.ec2_calls_each


def test_priced_lines_keep_their_price_through_the_sum() -> None:
    lines = project(model.load_inputs()[0], 20).lines
    assert examples.summed([lines]) == lines
