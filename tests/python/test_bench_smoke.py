"""A fast run of every `make bench` measurement on a tiny fleet, so the benchmark never rots. No wall-clock asserts."""

from __future__ import annotations

from typing import Any

import bench  # noqa: F401 - puts the paths the benchmark needs in place
import pytest
from bench import (
    calls,
    cleanup,
    copy,
    ebs,
    footprint,
    model,
    organization,
    planner,
    readme,
    restore,
    runcommand,
    scheduler,
    throttle,
)
from bench.cost import LatencyModel, cycle_duration_s, project

pytestmark = pytest.mark.tier1


@pytest.fixture(scope="module")
def cycle() -> tuple[calls.OursCycle, calls.CycleCalls]:
    return calls.measure(3)


def test_ours_makes_fewer_ec2_calls_per_instance_than_the_baseline(
    cycle: tuple[calls.OursCycle, calls.CycleCalls],
) -> None:
    ours, baseline = cycle
    assert ours.calls.per_instance_ec2 == 2
    assert ours.calls.per_instance_all == 7
    assert ours.calls.per_instance_ec2 < baseline.per_instance_ec2
    assert ours.calls.retired_per_instance == 1
    assert ours.calls.leaked_snapshots == 0


def test_the_committed_cost_inputs_match_a_fresh_measurement(cycle: tuple[calls.OursCycle, calls.CycleCalls]) -> None:
    fresh = model.ours_usage(cycle[0])
    committed, _origin = model.load_inputs()
    assert fresh.ec2_calls_each == committed.ec2_calls_each
    assert fresh.other_calls_each.keys() == committed.other_calls_each.keys()
    assert fresh.metric_names == committed.metric_names


def test_the_readme_cost_section_is_what_the_cost_model_computes() -> None:
    ours, origin = model.load_inputs()
    assert readme.current(readme.README.read_text(encoding="utf-8")) == readme.section(ours, origin)


def test_monitoring_cost_does_not_grow_with_the_fleet() -> None:
    ours, _origin = model.load_inputs()
    small, large = project(ours, 20), project(ours, 2000)
    line = {p.item: p for p in small.lines}, {p.item: p for p in large.lines}
    for item in ("CloudWatch custom metrics (EMF)", "CloudWatch alarms"):
        assert line[0][item].usd == line[1][item].usd


def test_planner_calls_grow_with_pages_not_instances() -> None:
    small, large = planner.run_stand_in(1000), planner.run_stand_in(2500)
    assert small.calls["ec2.DescribeInstances"] == 1
    assert large.calls["ec2.DescribeInstances"] == 3
    assert large.calls["sqs.SendMessageBatch"] == 250
    assert large.enqueued == 2500
    assert large.peak_bytes > 0


def test_the_stand_in_ec2_answers_like_moto() -> None:
    check = planner.check_against_moto(12)
    assert check["same_calls"] and check["same_messages"]


def test_each_module_ships_the_core_and_its_own_package_only() -> None:
    shipped = {
        path.relative_to(footprint.ROOT / "lambda_src").parts[:2] for path in footprint.package_files("ami_backup")
    }
    assert ("ops_automation", "core") in shipped and ("ops_automation", "ami_backup") in shipped
    assert not [parts for parts in shipped if len(parts) == 2 and parts[1] in ("instance_scheduler", "snapshot_copy")]
    # The bound (under 100 KB), kept by leaving out the core modules a package never imports.
    assert 0 < footprint.largest_zip_bytes() < 100 * 1024


@pytest.fixture(scope="module")
def storm() -> dict[str, object]:
    """A small batch under heavy throttling, so the worker's deferral path runs (seeded: deterministic)."""
    return throttle.worker(n=4, share=0.7)


def test_throttled_worker_loses_nothing_and_finishes_every_record(storm: dict[str, object]) -> None:
    for state in ("unthrottled", "throttled"):
        for phase in storm["ours"][state].values():  # type: ignore[index]
            assert phase["lost"] == 0 and phase["dead_lettered"] == 0
            assert phase["done"] == phase["records"] == 4
            assert phase["timed_out"] == 0


def test_throttled_worker_defers_to_sqs_instead_of_sleeping(storm: dict[str, object]) -> None:
    hot = storm["ours"]["throttled"]  # type: ignore[index]
    baseline = storm["baseline"]["throttled"]  # type: ignore[index]
    assert sum(phase["deferred_first"] for phase in hot.values()) > 0
    assert sum(phase["invocations"] for phase in hot.values()) > 2  # the deferred records came back
    # Simulated seconds: ours hands throttled records back, the baseline sleeps through its retries.
    assert max(phase["max_invocation_s"] for phase in hot.values()) < baseline["seconds"]
    assert hot["create_image"]["first_invocation_s"] < baseline["seconds"]


def test_throttled_planner_stays_well_within_its_timeout() -> None:
    run = throttle.planner(fleet=100, share=0.5)
    assert run["ours"]["under_budget"]
    assert run["ours"]["throttled"]["seconds"] < run["baseline"]["throttled"]["seconds"]
    assert run["baseline"]["ratio"] > 1


# ---------------------------------------------------------------------------------------------------------------
# ebs-snapshot (issue 6): both modes, both designs, on 2 instances of 2 data volumes (4 volumes, 2 sets)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ebs_run() -> tuple[dict[str, dict[str, ebs.EbsCycle]], dict[str, model.ModeInputs]]:
    return ebs.measure(instances=2)


def test_ebs_steady_state_cycle_snapshots_each_volume_once_retires_one_generation_and_leaks_nothing(
    ebs_run: tuple[dict[str, dict[str, ebs.EbsCycle]], dict[str, model.ModeInputs]],
) -> None:
    cycles, _inputs = ebs_run
    volume, instance = cycles["volume"]["ours"], cycles["instance"]["ours"]
    assert (volume.units, instance.units) == (4, 2)
    assert volume.worker["ec2.CreateSnapshot"] == 4 and "ec2.CreateSnapshots" not in volume.worker
    assert instance.worker["ec2.CreateSnapshots"] == 2 and "ec2.CreateSnapshot" not in instance.worker
    for design in ("ours", "baseline"):
        for mode in ebs.MODES:
            cycle = cycles[mode][design]
            assert cycle.retired_each == 1, (mode, design)
            assert cycle.leaked_snapshots == 0, (mode, design)
    assert volume.unfinished == instance.unfinished == 0
    # Tagged at creation: no CreateTags afterwards (the origin tags each snapshot in a second call).
    assert "ec2.CreateTags" not in volume.worker and "ec2.CreateTags" not in instance.worker
    assert cycles["volume"]["baseline"].worker["ec2.CreateTags"] == 4


def test_ebs_calls_per_volume_and_per_set_stay_within_bounds(
    ebs_run: tuple[dict[str, dict[str, ebs.EbsCycle]], dict[str, model.ModeInputs]],
) -> None:
    cycles, _inputs = ebs_run
    volume, instance = cycles["volume"]["ours"], cycles["instance"]["ours"]
    # The planner lists by pages, not per target: one DescribeVolumes (and DescribeInstances) per 1,000.
    assert sum(n for call, n in volume.planner.items() if call.startswith("ec2.")) == 1
    assert sum(n for call, n in instance.planner.items() if call.startswith("ec2.")) <= 2
    worker_ec2 = {
        mode: sum(n for call, n in c.worker.items() if call.startswith("ec2.")) / c.units
        for mode, c in (("volume", volume), ("instance", instance))
    }
    assert worker_ec2["volume"] <= 6
    assert worker_ec2["instance"] <= 8
    # A set of 2 volumes costs fewer EC2 calls than 2 volumes snapshotted one by one.
    assert worker_ec2["instance"] < 2 * worker_ec2["volume"]
    assert volume.other_each <= 12 and instance.other_each <= 16


def test_the_committed_ebs_cost_inputs_match_a_fresh_measurement(
    ebs_run: tuple[dict[str, dict[str, ebs.EbsCycle]], dict[str, model.ModeInputs]],
) -> None:
    _cycles, fresh = ebs_run
    committed = model.load_ebs_inputs()
    assert committed.keys() == fresh.keys() == set(ebs.MODES)
    for mode, inputs in fresh.items():
        assert inputs.ours.ec2_calls_each == committed[mode].ours.ec2_calls_each, mode
        assert inputs.ours.other_calls_each.keys() == committed[mode].ours.other_calls_each.keys(), mode
        assert inputs.ours.metric_names == committed[mode].ours.metric_names, mode
        assert inputs.volumes_per_unit == committed[mode].volumes_per_unit, mode


def test_the_ebs_readme_cost_section_is_what_the_cost_model_computes() -> None:
    inputs = model.load_ebs_inputs()
    assert readme.current(readme.EBS_README.read_text(encoding="utf-8")) == readme.ebs_section(inputs)


def test_ebs_cost_grows_with_volumes_and_excludes_snapshot_storage() -> None:
    inputs = model.load_ebs_inputs()
    for mode, m in inputs.items():
        totals = [readme.ebs_projection(m, "ours", n).total for n in readme.EBS_SIZES]
        assert totals == sorted(totals) and totals[0] < totals[-1], mode
        small, large = readme.ebs_projection(m, "ours", 20), readme.ebs_projection(m, "ours", 2000)
        assert large.instances == 2000 // m.volumes_per_unit
        line = {p.item: p for p in small.lines}, {p.item: p for p in large.lines}
        for item in ("CloudWatch custom metrics (EMF)", "CloudWatch alarms"):
            assert line[0][item].usd == line[1][item].usd
        assert not any("storage" in item.lower() for item in line[0])
    # The origin's single invocation cannot snapshot 2,000 volumes within Lambda's 15 minutes.
    origin = inputs["volume"].origin
    assert cycle_duration_s(origin, 2000, LatencyModel()) > readme.LAMBDA_MAX_TIMEOUT_S


# ---------------------------------------------------------------------------------------------------------------
# deregister-cleanup (issue 7): sweeps at 20 and 1,020 snapshots (1 and 2 pages), 3 AMIs on the event path
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cleanup_run() -> cleanup.CleanupResults:
    return cleanup.measure(sizes=(20, 1_020), amis=3)


def test_cleanup_sweep_calls_grow_with_pages_not_snapshots(cleanup_run: cleanup.CleanupResults) -> None:
    small, large = cleanup_run.sweeps
    listing = {"ec2.DescribeImages": 1, "ec2.ListImagesInRecycleBin": 1}
    assert {k: v for k, v in small.calls.items() if k.startswith("ec2.")} == {**listing, "ec2.DescribeSnapshots": 1}
    assert {k: v for k, v in large.calls.items() if k.startswith("ec2.")} == {**listing, "ec2.DescribeSnapshots": 2}
    assert large.verdicts == {"orphan": large.orphans, "image holds it": large.registered,
                              "image in recycle bin": large.recycled}  # fmt: skip
    assert large.purges_enqueued == min(-(-large.orphans // 20), cleanup.MAX_PURGES_PER_SWEEP)
    assert small.tags_checked and large.tags_checked


def test_cleanup_worker_purges_every_orphan_and_nothing_else(cleanup_run: cleanup.CleanupResults) -> None:
    purge = cleanup_run.purge
    assert purge.deleted == min(purge.orphans, 20 * purge.messages)
    assert purge.orphans_left == purge.orphans - purge.deleted
    assert purge.others_kept == purge.others > 0
    assert purge.calls["ec2.DeleteSnapshot"] == purge.deleted
    for call in ("ec2.DescribeImages", "ec2.DescribeSnapshots", "ec2.ListImagesInRecycleBin"):
        assert purge.calls[call] == purge.messages, call


def test_cleanup_event_path_deletes_once_and_the_origin_leaks_when_handled_at_once(
    cleanup_run: cleanup.CleanupResults,
) -> None:
    days = {(d.design, d.timing): d for d in cleanup_run.days}
    for timing in cleanup.TIMINGS:
        ours = days[("ours", timing)]
        assert (ours.deleted, ours.left, ours.sweep_orphans) == (ours.amis, 0, 0), timing
        assert ours.repeat_calls == {"dynamodb.GetItem": ours.amis}  # the ledger answers a repeated event
        assert ours.calls["ec2.DeleteSnapshot"] >= ours.amis
    assert days[("origin", cleanup.TIMINGS[0])].left == days[("origin", cleanup.TIMINGS[0])].amis
    assert days[("origin", cleanup.TIMINGS[1])].left == 0
    other_form = next(d for d in cleanup_run.days if d.design.startswith("origin, "))
    assert other_form.deleted == 0


def test_the_committed_cleanup_cost_inputs_match_a_fresh_measurement(cleanup_run: cleanup.CleanupResults) -> None:
    fresh, committed = cleanup_run.inputs, cleanup.load_inputs()
    assert fresh.ours.ec2_calls_each == committed.ours.ec2_calls_each
    assert fresh.ours.other_calls_each == committed.ours.other_calls_each
    assert fresh.ours.metric_names == committed.ours.metric_names
    assert fresh.origin.ec2_calls_each == committed.origin.ec2_calls_each
    assert fresh.sweep_calls_fixed == committed.sweep_calls_fixed
    assert fresh.repeat_each == committed.repeat_each


def test_the_cleanup_readme_cost_section_is_what_the_cost_model_computes() -> None:
    inputs = cleanup.load_inputs()
    text = readme.CLEANUP_README.read_text(encoding="utf-8")
    assert readme.current(text) == readme.cleanup_section(inputs)


def test_cleanup_cost_grows_with_sources_and_monitoring_does_not() -> None:
    inputs = cleanup.load_inputs()
    totals = [project(inputs.usage("ours", n), n).total for n in readme.CLEANUP_SIZES]
    assert totals == sorted(totals) and totals[0] < totals[-1]
    assert inputs.pages(20) == 1 and inputs.pages(2000) == 40
    small, large = ({line.item: line for line in project(inputs.usage("ours", n), n).lines} for n in (20, 2000))
    for item in ("CloudWatch custom metrics (EMF)", "CloudWatch alarms", "EventBridge Scheduler"):
        assert small[item].usd == large[item].usd


# ---------------------------------------------------------------------------------------------------------------
# snapshot-copy (issue 8): 3 sources to 1 and 2 destinations, the AMI path, and back-pressure with a limit of 2
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copy_run() -> copy.CopyResults:
    return copy.measure(
        configurations=(("snapshots", 3, 1), ("snapshots", 3, 2), ("images", 3, 1)), derived=(("snapshots", 3, 2),)
    )


def test_each_copy_is_made_once_completed_and_retires_one_generation(copy_run: copy.CopyResults) -> None:
    for day in copy_run.days:
        verb, retire = ("ec2.CopyImage", "ec2.DeregisterImage") if day.kind == "images" else (
            "ec2.CopySnapshot", "ec2.DeleteSnapshot")  # fmt: skip
        assert day.calls[verb] == day.copy_requests == day.copies, day.kind
        assert day.calls[retire] == day.retired == day.copies, day.kind
        assert day.generations_kept and day.unfinished == 0 and day.alerts == 0, day.kind
        assert day.redelivered_waits == 0
        # The source's completion event is described once and enqueues every destination's copy in one batch.
        assert day.calls["sqs.SendMessageBatch"] == day.sources
        assert day.filters_checked


def test_the_catch_up_lists_sources_once_and_each_destination_and_enqueues_only_what_is_missing(
    copy_run: copy.CopyResults,
) -> None:
    one, two, images = copy_run.days
    assert one.catch_up == {"ec2.DescribeSnapshots": 2}
    assert two.catch_up == {"ec2.DescribeSnapshots": 3}
    assert images.catch_up == {"ec2.DescribeImages": 2}
    for day in copy_run.days:
        assert day.catch_up_enqueued == 1
        assert day.catch_up_missing == {**day.catch_up, "sqs.SendMessageBatch": 1}
        assert day.recopy["ec2.CopyImage" if day.kind == "images" else "ec2.CopySnapshot"] == 1


def test_two_destinations_derived_from_one_make_the_measured_calls(copy_run: copy.CopyResults) -> None:
    check = copy_run.derivation_check
    assert check["same_calls"] and check["same_catch_up"]
    assert check["invocations_each"]["derived"] >= check["invocations_each"]["measured"]


def test_the_copy_limit_makes_work_items_wait_and_every_copy_still_completes() -> None:
    day = copy.measure_day(images=False, sources=3, destinations=1, concurrent_copies=2)
    assert day.redelivered_waits > 0
    assert day.copy_requests > day.copies == day.retired
    assert day.generations_kept and day.unfinished == 0 and day.alerts == 0


def test_the_committed_copy_cost_inputs_match_a_fresh_measurement() -> None:
    fresh = copy.inputs_of(copy.measure_day(images=False, sources=20, destinations=1))
    committed = {(i.kind, i.sources, i.destinations, i.derived): i for i in copy.load_inputs()}
    assert committed[("snapshots", 20, 1, False)].calls_each == fresh.calls_each
    assert committed[("snapshots", 20, 1, False)].catch_up == fresh.catch_up
    assert set(committed) >= {("snapshots", n, d, n == 200 and d == 2) for n in (20, 200) for d in (1, 2)}


def test_the_copy_readme_cost_section_is_what_the_cost_model_computes() -> None:
    text = readme.COPY_README.read_text(encoding="utf-8")
    assert readme.current(text) == readme.copy_section(copy.load_inputs())


def test_copy_cost_prices_forwarded_events_as_custom_events_and_excludes_storage() -> None:
    runs = [i for i in copy.load_inputs() if i.kind == "snapshots"]
    by = {(i.sources, i.destinations): copy.projection(i) for i in runs}
    assert by[(20, 1)].total < by[(200, 1)].total and by[(20, 1)].total < by[(20, 2)].total
    for p in by.values():
        lines = {line.item: line for line in p.lines}
        forwarded = lines["EventBridge copy results forwarded across regions (custom events)"]
        assert forwarded.usd == pytest.approx(forwarded.quantity * 1.00 / 1e6) and forwarded.usd > 0
        assert not any("storage" in item.lower() or "transfer" in item.lower() for item in lines)
        assert lines["CloudWatch alarms"].usd == by[(20, 1)].lines[[x.item for x in p.lines].index(
            "CloudWatch alarms")].usd  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# instance-scheduler (issue 9): a start and a stop slot of 3 instances, cold and warm
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scheduler_run() -> scheduler.SchedulerResults:
    return scheduler.measure(sizes=(20,), calls_fleet=20)


def test_every_scheduled_instance_is_acted_on_and_verified_without_alerts(
    scheduler_run: scheduler.SchedulerResults,
) -> None:
    assert sorted(s.action for s in scheduler_run.slots) == ["start", "stop"]
    for slot in scheduler_run.slots:
        assert slot.acted == slot.verified == slot.instances == 20 and slot.alerts == 0
    assert scheduler_run.warm_equals_cold


def test_the_scheduler_readme_cost_section_is_what_the_cost_model_computes() -> None:
    text = readme.SCHEDULER_README.read_text(encoding="utf-8")
    assert readme.current(text) == readme.scheduler_section(*scheduler.load_inputs())


def test_the_committed_scheduler_cost_inputs_match_a_fresh_measurement(
    scheduler_run: scheduler.SchedulerResults,
) -> None:
    committed = {i.instances: i for i in scheduler.load_inputs()[0]}
    (fresh,) = scheduler_run.inputs
    assert fresh.usage.ec2_calls_each == committed[20].usage.ec2_calls_each
    assert fresh.usage.other_calls_each == committed[20].usage.other_calls_each
    assert fresh.usage.sqs_messages_each == committed[20].usage.sqs_messages_each


# ---------------------------------------------------------------------------------------------------------------
# ssm-runcommand (issue 10): one nightly slot of 3 and 60 instances by tags and by ids, and the cost size 20 warm
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runcommand_run() -> runcommand.RunCommandResults:
    return runcommand.measure(sizes=(20,), calls_sizes=(3, 60))


def test_every_instance_succeeds_once_and_each_event_is_forwarded(runcommand_run: runcommand.RunCommandResults) -> None:
    assert sorted((s.mode, s.instances) for s in runcommand_run.slots) == [("ids", 3), ("ids", 60), ("tags", 3),
                                                                            ("tags", 60)]  # fmt: skip
    for slot in runcommand_run.slots:
        n = slot.instances
        assert slot.succeeded == slot.output_objects == n and slot.alerts == 0, (slot.mode, n)
        assert slot.events == {"command_event": -(-n // 50) if slot.mode == "ids" else 1, "invocation_event": n}
        assert slot.messages["send"] == (1 if slot.mode == "tags" else -(-n // 50))
        assert slot.planner == {"sqs.SendMessageBatch": 1}
    assert runcommand_run.warm_equals_cold


def test_the_rule_forwards_the_final_statuses_only_and_the_calls_do_not_change(
    runcommand_run: runcommand.RunCommandResults,
) -> None:
    skipped = set(runcommand.rule_skips())  # modules/ssm-runcommand/main.tf, as the bench's driver applies it
    assert {"Pending", "InProgress", "Delayed"} <= skipped
    assert not {"Success", "Failed", "TimedOut", "Cancelled"} & skipped
    every = runcommand_run.every_status
    assert sum(every["emitted"].values()) > sum(every["forwarded"].values()) == every["instances"] + 1
    assert every["same_calls"]


def test_send_command_is_one_call_for_tags_whatever_the_fleet_and_one_per_50_listed_ids(
    runcommand_run: runcommand.RunCommandResults,
) -> None:
    for n in (3, 60):
        assert runcommand_run.slot("tags", n).calls()["ssm.SendCommand"] == 1
        assert runcommand_run.slot("ids", n).calls()["ssm.SendCommand"] == -(-n // 50)
        for mode in runcommand.MODES:
            calls = runcommand_run.slot(mode, n).calls()
            assert calls["ssm.DescribeInstanceInformation"] == -(-n // 50), (mode, n)
            # One read per invocation event, and the command's invocations in pages of 50 for each command event
            # and the check.
            assert calls["ssm.ListCommandInvocations"] >= n + 2 * -(-n // 50), (mode, n)


def test_the_runcommand_readme_cost_section_is_what_the_cost_model_computes() -> None:
    text = readme.RUNCOMMAND_README.read_text(encoding="utf-8")
    committed = runcommand.load_inputs()
    assert readme.current(text) == readme.runcommand_section(committed.inputs, committed.slots, committed.every_status)


def test_the_committed_runcommand_cost_inputs_match_a_fresh_measurement(
    runcommand_run: runcommand.RunCommandResults,
) -> None:
    committed = {i.instances: i for i in runcommand.load_inputs().inputs}
    for fresh in runcommand_run.inputs:
        kept = committed[fresh.instances]
        assert fresh.usage.ec2_calls_each == kept.usage.ec2_calls_each
        assert fresh.usage.other_calls_each == kept.usage.other_calls_each
        assert fresh.usage.sqs_messages_each == kept.usage.sqs_messages_each
        assert fresh.usage.eventbridge_deliveries_each == kept.usage.eventbridge_deliveries_each
    assert set(committed) == set(runcommand.SIZES)


def test_runcommand_cost_grows_with_the_fleet_and_prices_the_output_apart() -> None:
    small, large = (runcommand.projection(i) for i in runcommand.load_inputs().inputs)
    assert small.total < large.total
    lines = {line.item: line for line in small.lines}, {line.item: line for line in large.lines}
    for item in ("CloudWatch custom metrics (EMF)", "CloudWatch alarms", "EventBridge Scheduler"):
        assert lines[0][item].usd == lines[1][item].usd
    # The instances' S3 output is priced apart; Run Command itself is free on EC2 instances.
    assert not any("S3" in item or item.startswith("Run Command") for item in lines[0])
    puts, storage = runcommand.output_lines(20, 1.0)
    assert puts.quantity == 20 * runcommand.SLOTS_PER_MONTH and puts.usd == pytest.approx(puts.quantity * 0.005 / 1000)
    assert storage.quantity == pytest.approx(20 * 30 * runcommand.ASSUMED_OUTPUT_KB / 1024**2)


# ---------------------------------------------------------------------------------------------------------------
# Landing-zone scale (issue 12): the two-level fan-out next to the in-process planner, 2 and 8 accounts
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def organization_run() -> dict[str, Any]:
    return organization.measure(sizes=(2, 8), instances=3, landing_zone=(8, 10), moto_accounts=2).as_dict()


def test_the_two_level_planner_lists_the_organization_and_the_in_process_one_every_account(
    organization_run: dict[str, Any],
) -> None:
    regions = len(organization.REGIONS)
    for point in organization_run["planner"]:
        n = point["accounts"]
        assert not any(api.startswith(("ec2.", "sts.")) for api in point["two_level_calls"])
        assert point["two_level_calls"]["sqs.SendMessageBatch"] == -(-n * regions // 10)
        assert point["in_process_calls"]["sts.AssumeRole"] == n
        assert point["in_process_calls"]["ec2.DescribeInstances"] == n * regions
    # Flatness direction (simulated seconds): the in-process planner grows faster with the accounts.
    small, large = organization_run["planner"]
    assert large["two_level_s"] - small["two_level_s"] < large["in_process_s"] - small["in_process_s"]
    assert large["ratio"] > small["ratio"]
    crossing = organization_run["crossing"]
    assert crossing["two-level"] > crossing["in-process"] > 0


def test_every_fan_out_cycle_backs_up_every_instance_and_stays_within_the_consumers(
    organization_run: dict[str, Any],
) -> None:
    regions = len(organization.REGIONS)
    assert {c["design"] for c in organization_run["cycles"]} == {"two-level", "in-process"}
    for c in organization_run["cycles"]:
        # Two-level: a record per scope, and the planner's slot audit.
        scopes = c["accounts"] * regions + 1 if c["design"] == "two-level" else 0
        # Per instance: create, the AMI's event, the delayed check, the purge.
        assert c["records"] == c["accounts"] * regions * c["instances_each"] * 4 + scopes
        assert c["calls_per_account"]["ec2.CreateImage"] == regions * c["instances_each"]
        # The planner runs beside the consumers in the in-process design: one more in flight at most.
        assert 1 <= c["peak_in_flight_account"] <= c["concurrency"] + 1
        assert c["peak_ec2_account_region"] <= c["peak_in_flight_account"]
        if c["design"] == "two-level":
            assert c["max_delay_hits"] == 0
            assert "organizations.ListAccountsForParent" in c["calls_per_account"]


def test_the_organization_stand_ins_answer_like_moto_and_the_table_renders(organization_run: dict[str, Any]) -> None:
    check = organization_run["moto_check"]
    assert check["same_calls"] and check["same_messages"], check
    assert check["moto_calls"]["organizations.ListAccountsForParent"] >= 1
    rows = organization.table(organization_run)
    assert any(row.startswith("| two-level, unpaced |") for row in rows)
    assert organization.notes(organization_run)


# ---------------------------------------------------------------------------------------------------------------
# Restore tests (issue 13): one test and a month, priced per second with the 60-second minimum (no emulator run)
# ---------------------------------------------------------------------------------------------------------------


def _test_usd(scenario: restore.Scenario) -> float:
    return sum(line.usd for line in restore.test_lines(scenario))


def test_ec2_and_ebs_are_billed_per_second_with_a_60_second_minimum() -> None:
    table = restore.prices()
    assert [restore.billed_seconds(s) for s in (0, 1, 59.2, 60, 61, 61.2)] == [60, 60, 60, 60, 61, 62]
    assert restore.instance_usd("t3.nano", 5, table) == restore.instance_usd("t3.nano", 60, table)
    assert restore.instance_usd("t3.nano", 120, table) == pytest.approx(0.0052 * 120 / 3600)
    assert restore.volume_usd(100, 10, table) == restore.volume_usd(100, 60, table)
    # The EBS pricing example: GB-month x GB x seconds / seconds of a 30-day month.
    assert restore.volume_usd(2000, 43_200, table) == pytest.approx(0.08 * 2000 * 43_200 / (86_400 * 30))
    # An instance that runs 0 s or 30 s in a test is billed the 60 seconds of one that runs a minute.
    instance = [
        next(line for line in restore.test_lines(restore.ami_scenario("t3.nano", 8, m)) if line.item.startswith("EC2"))
        for m in (0.5, 1, 1.5)
    ]
    assert [line.quantity for line in instance] == [60, 60, 60]
    assert instance[0].usd == instance[2].usd == pytest.approx(0.0052 / 60)


def test_a_restore_test_costs_more_the_longer_and_the_larger_it_is() -> None:
    ami = [_test_usd(restore.ami_scenario("t3.nano", 8, m)) for m in (4, 10, 30)]
    assert ami == sorted(ami) and len(set(ami)) == 3
    ebs = [_test_usd(restore.ebs_scenario(100, m)) for m in (1, 5, 30)]
    assert ebs == sorted(ebs) and len(set(ebs)) == 3
    assert _test_usd(restore.ebs_scenario(1000, 1)) > _test_usd(restore.ebs_scenario(100, 1))
    assert _test_usd(restore.ami_scenario("t3.nano", 30, 4)) > _test_usd(restore.ami_scenario("t3.nano", 8, 4))
    by_type = [_test_usd(restore.ami_scenario(t, 8, 4)) for t in ("t4g.nano", "t3.nano", "t2.nano", "t3.micro")]
    assert by_type == sorted(by_type)
    # Longer tests poll more: the functions' share grows with the polls, the resources' share dominates.
    short, long = (restore.test_lines(restore.ami_scenario("t3.nano", 8, m)) for m in (4, 10))
    by_item = {line.item: line for line in short}, {line.item: line for line in long}
    assert by_item[0]["Lambda requests"].quantity < by_item[1]["Lambda requests"].quantity
    resources = sum(line.usd for line in short if line.item.startswith(("EC2", "EBS")))
    assert resources > 0.8 * sum(line.usd for line in short)


def test_a_month_is_the_cost_of_one_test_times_the_tests_plus_the_runs() -> None:
    scenario = restore.DEFAULT_AMI
    one = {line.item: line for line in restore.test_lines(scenario)}
    for sources, sample in ((20, None), (200, None), (200, 2)):
        m = restore.month(scenario, sources, sample)
        assert m.tests == pytest.approx((sources if sample is None else sample) * 30 / 7)
        lines = {line.item: line for line in m.lines}
        for item, line in one.items():
            if item.startswith(("EC2", "EBS")):  # nothing but the tests' own
                assert lines[item].usd == pytest.approx(line.usd * m.tests), (sources, item)
            else:  # plus the planner, the sweeps and the lease waits
                assert lines[item].usd >= line.usd * m.tests - 1e-12, (sources, item)
    every, sample = restore.month(scenario, 200, None), restore.month(scenario, 200, 2)
    assert sample.total < every.total
    assert restore.month(scenario, 20, 2).total == pytest.approx(sample.total)


def test_tests_beyond_max_concurrent_wait_for_a_lease_and_all_run_within_a_day() -> None:
    none = restore.lease_waits(2, hold_s=245)
    assert (none.attempts_failed, none.invocations, none.over_a_day) == (0, 0, 0)
    twenty = restore.lease_waits(20, hold_s=245)
    assert twenty.attempts_failed == 2 * sum(range(10))  # two tests per 300-second round
    assert twenty.lease_writes == 10 + 2 * 10  # slot 0 costs one write, slot 1 two
    slow = restore.lease_waits(20, hold_s=400)  # a test longer than the retry: every other round is idle
    assert slow.attempts_failed > twenty.attempts_failed and slow.hours > twenty.hours
    assert restore.lease_waits(200, hold_s=245).over_a_day == 0


def test_the_restore_prices_have_their_sources_and_the_committed_calls_what_the_model_uses() -> None:
    inputs = restore.load_inputs()
    for key, price in restore.prices(inputs).items():
        assert price.usd > 0 and price.source.startswith("https://aws.amazon.com/"), key
    committed = inputs["calls"]
    assert set(committed) == set(restore.MODULES)
    for module, test_calls in committed.items():
        if test_calls["source"] == restore.DOCUMENTED:
            assert test_calls == restore.documented_calls(module).as_dict()
        else:
            assert test_calls["calls"]["dynamodb.UpdateItem"] >= 4, module  # lease, record, transition, release


def test_the_restore_section_of_the_results_is_what_the_cost_model_computes() -> None:
    section = "\n".join(restore.report_section(restore.committed_calls()))
    assert section in (restore.INPUTS_FILE.parent / "RESULTS.md").read_text(encoding="utf-8")
    snippet = restore.readme_snippet("ami-backup", restore.committed_calls())
    assert "60-second minimum" in snippet and "| 20 sources | 200 sources |" in snippet
    # The module READMEs carry the same figures: `python -m bench restore` writes them between their markers.
    for module in restore.MODULES:
        assert restore.readme_block(module) == restore.readme_snippet(module, restore.committed_calls()), module


def test_the_committed_restore_calls_match_a_fresh_measurement_on_the_emulator() -> None:
    fresh = restore.measure()
    committed = restore.committed_calls()
    assert fresh and committed, "python -m bench restore has not committed measured calls"
    for module in restore.MODULES:
        mine, kept = fresh[module], committed[module]
        assert mine.calls == kept.calls, module
        assert (mine.invocations, mine.messages, mine.deliveries, mine.checks) == (
            kept.invocations, kept.messages, kept.deliveries, kept.checks), module  # fmt: skip
        # A test that passes launches once, cleans up once and tags its backup once; polls until the checks pass.
        launch, clean = {"ami-backup": ("ec2.RunInstances", "ec2.TerminateInstances"),
                         "ebs-snapshot": ("ec2.CreateVolume", "ec2.DeleteVolume")}[module]  # fmt: skip
        assert mine.calls[launch] == mine.calls[clean] == mine.calls["ec2.CreateTags"] == 1, module
        assert "sns.Publish" not in mine.calls
    assert fresh["ami-backup"].checks == 3 and fresh["ami-backup"].poll_calls  # 120 s, 180 s, then ok at 240 s
