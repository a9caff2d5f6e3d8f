"""`make demo`: a simulated week of AMI backups, a series of daily EBS snapshots, simulated days of clean-up after
deregistration, simulated days of disaster-recovery copies from Tokyo to Osaka, a simulated office week of
scheduled start/stop (with the days the clock changes in New York) and simulated nights of a scheduled Run Command
backup with an outcome per instance against one local AWS, as a readable report with one section per module.

examples/ami-backup, examples/ebs-snapshot, examples/deregister-cleanup (plus a dry-run variant of it),
examples/snapshot-copy (both of its regions), examples/instance-scheduler (plus its stop-only and New York variants)
and examples/ssm-runcommand (with its output bucket emptied by destroy) are applied with terraform (at once) to a
local AWS (moto on 127.0.0.1) and the handlers run with the configuration Terraform deployed (the tier-3 path,
tests/e2e). Everything is removed afterwards: `terraform destroy`, the local AWS, the temporary folder.

terraform and a hashicorp/aws provider mirror are required. There is no fallback without them: the former
in-process path built the module's resources and environment from a hand-written Python copy of the Terraform,
which could drift from the HCL unnoticed, so a demo on it could show a deployment that does not exist. Without
terraform the demo says what is missing and exits with status 2.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
# The import roots pytest uses (pyproject.toml `pythonpath`): the Lambda package and the repository.
sys.path[:0] = [str(REPO_ROOT / "lambda_src"), str(REPO_ROOT)]

from scripts.local_aws import local_aws  # noqa: E402
from tests.e2e import ami_backup_scenario as ami  # noqa: E402
from tests.e2e import deregister_cleanup_scenario as dereg  # noqa: E402
from tests.e2e import ebs_snapshot_scenario as ebs  # noqa: E402
from tests.e2e import instance_scheduler_scenario as isched  # noqa: E402
from tests.e2e import scenario  # noqa: E402
from tests.e2e import snapshot_copy_scenario as sc  # noqa: E402
from tests.e2e import ssm_runcommand_scenario as ssm  # noqa: E402
from tests.support.terraform_env import TerraformUnavailable, require_terraform  # noqa: E402

RULE = "-" * 96
# Exit status when the demo cannot run at all (terraform or the provider mirror missing); 1 = it ran and went wrong.
CANNOT_RUN = 2


def _local(week: ami.WeekReport, slot: str, layout: str = "%m-%d") -> str:
    """A slot (UTC) in the schedule's own time zone, as the policy's owner reads it."""
    moment = datetime.strptime(slot, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(week.deployment.schedule_timezone)).strftime(layout)


def _name(week: ami.WeekReport, instance_id: str) -> str:
    return week.fleet.names.get(instance_id, instance_id)


def _fleet_order(week: ami.WeekReport, instance_id: str) -> int:
    order = list(week.fleet.names)
    return order.index(instance_id) if instance_id in order else len(order)


def _backups(week: ami.WeekReport, backups: list[ami.Backup]) -> str:
    if not backups:
        return "-"
    ordered = sorted(backups, key=lambda b: _fleet_order(week, b.instance_id))
    return ", ".join(f"{_name(week, b.instance_id)} {b.image_id} ({_local(week, b.slot)})" for b in ordered)


def print_week(week: ami.WeekReport, state: ami.FinalState) -> None:
    deployment = week.deployment
    fleet = week.fleet
    print(RULE)
    print(
        f"policy {deployment.policy_name!r}: back up instances tagged Backup=daily, keep {deployment.generations}, "
        f"schedule {deployment.schedule_expression} {deployment.schedule_timezone}"
    )
    print(f"fleet: {', '.join(f'{_name(week, i)} ({i})' for i in fleet.backed_up)} tagged Backup=daily;")
    terminated = f"{_name(week, fleet.terminated)} ({fleet.terminated})"
    print(f"       {terminated} tagged, terminated on day {ami.TERMINATION_DAY};")
    print(f"       {_name(week, fleet.untagged)} ({fleet.untagged}) untagged;")
    print(f"       {fleet.unmanaged_image}: a hand-made AMI of {_name(week, fleet.backed_up[0])}, not managed")
    print(RULE)
    for number, day in enumerate(week.days, start=1):
        messages = ", ".join(f"{count} {kind}" for kind, count in sorted(day.messages.items()))
        local = _local(week, day.slot, "%Y-%m-%d %H:%M %Z")
        print(f"day {number}: slot {day.slot} ({local})   messages handled: {messages}")
        if number == ami.TERMINATION_DAY:
            print(f"  terminated: {_name(week, fleet.terminated)} (before this slot)")
        print(f"  created ({len(day.created)}): {_backups(week, day.created)}")
        print(f"  purged  ({len(day.purged)}): {_backups(week, day.purged)}")
        kept = ", ".join(
            f"{_name(week, instance)} {len(day.kept[instance])}"
            for instance in sorted(day.kept, key=lambda instance: _fleet_order(week, instance))
        )
        print(f"  kept after the run: {kept}")
        if day.failed_records:
            print(f"  FAILED records: {[record[:200] for record in day.failed_records]}")
    print(RULE)
    print_final_table(week, state)


def print_final_table(week: ami.WeekReport, state: ami.FinalState) -> None:
    fleet = week.fleet
    policy = week.deployment.policy_name
    kept: dict[str, list[str]] = {}
    for image in state.images.values():
        tags = {tag["Key"]: tag["Value"] for tag in image.get("Tags", [])}
        if tags.get("ops-automation:policy") == policy:
            kept.setdefault(tags["ops-automation:source-instance"], []).append(tags["ops-automation:slot"])
    purged: dict[str, int] = {}
    for backup in week.purged:
        purged[backup.instance_id] = purged.get(backup.instance_id, 0) + 1
    created: dict[str, int] = {}
    for backup in week.backups.values():
        created[backup.instance_id] = created.get(backup.instance_id, 0) + 1
    print(f"{'instance':<10} {'id':<21} {'created':>7} {'purged':>6} {'kept':>4}  kept backups (local date)")
    for instance_id in (*fleet.backed_up, fleet.terminated, fleet.untagged):
        slots = " ".join(_local(week, slot) for slot in sorted(kept.get(instance_id, []))) or "-"
        print(
            f"{_name(week, instance_id):<10} {instance_id:<21} {created.get(instance_id, 0):>7} "
            f"{purged.get(instance_id, 0):>6} {len(kept.get(instance_id, [])):>4}  {slots}"
        )
    unmanaged = "still there, untouched" if fleet.unmanaged_image in state.images else "GONE (unexpected)"
    print(f"unmanaged AMI {fleet.unmanaged_image}: {unmanaged}")
    purged_snapshots = [s for backup in week.purged for s in backup.snapshots]
    left = [s for s in purged_snapshots if s in state.snapshots]
    print(f"snapshots of purged AMIs: {len(purged_snapshots)} deleted, {len(left)} left behind")
    states: dict[str, int] = {}
    for item in state.ledger:
        states[item["state"]] = states.get(item["state"], 0) + 1
    print(f"ledger {week.deployment.ledger_table}: {len(state.ledger)} items {dict(sorted(states.items()))}")
    errors = week.log.at("ERROR", "CRITICAL")
    print(f"handler log lines: {len(week.log.lines)} ({len(errors)} errors); dead-letter queue: {state.dlq_messages}")
    for line in errors:
        print(f"  ERROR {line.get('message')} {line.get('instance_id', '')}")


# ---------------------------------------------------------------------------------------------------------------
# ebs-snapshot
# ---------------------------------------------------------------------------------------------------------------


def _volume(series: ebs.SeriesReport, volume_id: str) -> str:
    return series.volumes.names.get(volume_id, volume_id)


def _volume_order(series: ebs.SeriesReport, volume_id: str) -> int:
    order = list(series.volumes.names)
    return order.index(volume_id) if volume_id in order else len(order)


def _snapshots(series: ebs.SeriesReport, snapshots: list[ebs.Snapshot], local: bool = False) -> str:
    if not snapshots:
        return "-"
    ordered = sorted(snapshots, key=lambda s: (_volume_order(series, s.volume_id), s.slot))
    return ", ".join(
        f"{_volume(series, s.volume_id)} {s.snapshot_id}" + (f" ({_slot_local(series, s.slot)})" if local else "")
        for s in ordered
    )


def _slot_local(series: ebs.SeriesReport, slot: str, layout: str = "%m-%d") -> str:
    moment = datetime.strptime(slot, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(series.deployment.schedule_timezone)).strftime(layout)


def _alert_line(series: ebs.SeriesReport, alert: dict[str, object]) -> str:
    source = _volume(series, str(alert.get("source_id", "")))
    detail = alert.get("error_code") or alert.get("reason") or ""
    return f"{alert['alert']}: {source} {alert.get('resource_id', '')} ({detail})".replace("  ", " ")


def print_series(series: ebs.SeriesReport, state: ebs.FinalState) -> None:
    deployment = series.deployment
    volumes = series.volumes
    tags = ", ".join(
        f"{key}={value}" for key, value in json.loads(deployment.planner_environment["OPS_VOLUME_TAGS"]).items()
    )
    print(RULE)
    print(
        f"policy {deployment.policy_name!r}: snapshot volumes tagged {tags}, keep {deployment.generations}, "
        f"schedule {deployment.schedule_expression} {deployment.schedule_timezone}"
    )
    print(
        f"volumes: db-data ({volumes.db_data}, attached to {volumes.names[volumes.instance]} {volumes.instance}), "
        f"logs ({volumes.logs}), scratch ({volumes.scratch}) tagged {tags};"
    )
    print(f"         tmp ({volumes.untagged}) untagged")
    print(RULE)
    for number, run in enumerate(series.slots, start=1):
        messages = ", ".join(f"{count} {kind}" for kind, count in sorted(run.messages.items()))
        local = _slot_local(series, run.slot, "%Y-%m-%d %H:%M %Z")
        print(f"slot {number}: {run.slot} ({local})   messages handled: {messages}")
        for event in run.events:
            print(f"  {event}")
        print(f"  created ({len(run.created)}): {_snapshots(series, run.created)}")
        if run.failed:
            print(f"  went to error: {_snapshots(series, run.failed)} (discarded; nothing of its volume purged)")
        for lost in run.lost_events:
            volume = _volume(series, series.snapshots[lost].volume_id)
            print(f"  event lost: {volume} {lost} (the delayed check completed it)")
        if run.failed_records:
            print(f"  handed back to SQS and retried: {len(run.failed_records)} work item(s) (per-volume rate limit)")
        for alert in run.alerts:
            print(f"  ALERT {_alert_line(series, alert)}")
        print(f"  purged  ({len(run.purged)}): {_snapshots(series, run.purged, local=True)}")
        kept = ", ".join(
            f"{_volume(series, volume)} {len(run.kept[volume])}"
            for volume in sorted(run.kept, key=lambda volume: _volume_order(series, volume))
        )
        print(f"  kept after the run: {kept}")
    print(RULE)
    print_series_table(series, state)


def print_series_table(series: ebs.SeriesReport, state: ebs.FinalState) -> None:
    volumes = series.volumes
    policy = series.deployment.policy_name
    kept: dict[str, list[str]] = {}
    for snapshot in state.snapshots.values():
        tags = {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}
        if tags.get("ops-automation:policy") == policy:
            kept.setdefault(tags["ops-automation:source-volume"], []).append(tags["ops-automation:slot"])
    created = Counter(snapshot.volume_id for snapshot in series.snapshots.values())
    purged = Counter(snapshot.volume_id for snapshot in series.purged)
    failed = Counter(snapshot.volume_id for snapshot in series.failed)
    print(
        f"{'volume':<8} {'id':<22} {'created':>7} {'purged':>6} {'error':>5} {'kept':>4}  kept snapshots (local date)"
    )
    for volume_id in (*volumes.tagged, volumes.untagged):
        slots = " ".join(_slot_local(series, slot) for slot in sorted(kept.get(volume_id, []))) or "-"
        gone = "" if volume_id in state.volumes else "  (volume deleted)"
        print(
            f"{_volume(series, volume_id):<8} {volume_id:<22} {created[volume_id]:>7} {purged[volume_id]:>6} "
            f"{failed[volume_id]:>5} {len(kept.get(volume_id, [])):>4}  {slots}{gone}"
        )
    for snapshot_id, what in series.foreign.items():
        status = "still there, untouched" if snapshot_id in state.snapshots else "GONE (unexpected)"
        print(f"not the policy's: {snapshot_id} ({what}): {status}")
    published = series.published
    routed = sum(run.messages[ebs.SNAPSHOT_NOTIFICATION] for run in series.slots)
    events = ", ".join(f"{count} {kind}" for kind, count in sorted(published.items()))
    print(f"EBS events emitted: {events}; routed to the work queue by the rule: {routed}")
    states = Counter(item["state"] for item in state.ledger)
    print(f"ledger {series.deployment.ledger_table}: {len(state.ledger)} items {dict(sorted(states.items()))}")
    errors = series.log.at("ERROR", "CRITICAL")
    print(
        f"alerts on the topic: {len(series.alerts)}; handler log lines: {len(series.log.lines)} "
        f"({len(errors)} errors, one per alert); dead-letter queue: {state.dlq_messages}"
    )


def series_problems(series: ebs.SeriesReport, state: ebs.FinalState) -> list[str]:
    found: list[str] = []
    gone = [snapshot_id for snapshot_id in series.foreign if snapshot_id not in state.snapshots]
    if gone:
        found.append(f"snapshots made by others were deleted: {gone}")
    left = [s.snapshot_id for s in (*series.purged, *series.failed) if s.snapshot_id in state.snapshots]
    if left:
        found.append(f"retired or failed snapshots left behind: {left}")
    if state.dlq_messages:
        found.append(f"{state.dlq_messages} message(s) in the ebs-snapshot dead-letter queue")
    alerts = sorted(alert["alert"] for alert in series.alerts)
    if sorted(str(line.get("message")) for line in series.log.at("ERROR", "CRITICAL")) != alerts:
        found.append("the ebs-snapshot handlers logged errors besides the alerts the series provokes")
    return found


# ---------------------------------------------------------------------------------------------------------------
# deregister-cleanup
# ---------------------------------------------------------------------------------------------------------------


def _fate(report: dereg.CleanupReport, snapshot_id: str) -> str:
    for day in report.days:
        if snapshot_id in day.deleted:
            return f"deleted on day {day.number}"
    return "kept"


def print_cleanup(report: dereg.CleanupReport, state: dereg.FinalState) -> None:
    main = report.main
    environment = main.worker_environment
    print(RULE)
    print(
        f"policy {main.policy_name!r}: scope {environment['OPS_CLEANUP_SCOPE']}, grace "
        f"{environment['OPS_CLEANUP_GRACE_HOURS']} h, sweep {main.schedule_expression} {main.schedule_timezone}; "
        f"beside it {report.dry.policy_name!r} (dry run, CloudTrail rule) and ami-backup {report.backup.policy_name!r}"
    )
    routed = ", ".join(
        f"{name} {dict(counts)}" for name, counts in sorted(report.sample_routing.items()) if name != "backup"
    )
    print(f"{len(report.samples)} published sample events put on the bus; routed to the work queues: {routed}")
    print(RULE)
    stories = (
        ("fed", "deregistered; its event deleted the snapshot (the normalized copy was a duplicate)"),
        ("race", "event handled at once: InvalidSnapshot.InUse, retried through the queue"),
        ("lost", "deregistered by hand, event lost: in grace at the next sweep, swept the day after"),
        ("shared-first", "its snapshot shared with another AMI: kept until that one went too"),
        ("disabled-user", "its snapshot used by a disabled AMI"),
        ("recycled", "in the Recycle Bin until its retention ended (day 3)"),
        ("excluded", "snapshot tagged ops-automation:keep"),
        ("unmanaged", "made by someone else (scope managed): reported, not deleted"),
    )
    for role, story in stories:
        snapshot = report.amis.snapshots[role]
        print(f"  {role:<14} {report.amis.images[role]} {snapshot}: {_fate(report, snapshot)} - {story}")
    if report.denied_snapshot:
        print(
            f"  ami-backup     {report.denied_snapshot}: its deletion refused past ami-backup's deadline; "
            f"{_fate(report, report.denied_snapshot)} by deregister-cleanup"
        )
    print(RULE)
    for day in report.days:
        sweep = day.sweep
        print(
            f"day {day.number} ({day.slot}): sweep {sweep.get('orphans')} orphan(s) enqueued "
            f"{sweep.get('verdicts')}; deleted {len(day.deleted)}; dry run would delete "
            f"{len(day.dry_sweep.get('would_delete', []))}"
        )
        for alert in day.alerts:
            if alert["alert"] == dereg.OUT_OF_SCOPE:
                print(
                    f"  REPORT out of scope: {alert['orphans']} orphan(s), {alert['gib']} GiB, "
                    f"at most ${alert['monthly_cost_usd_at_most']}/month: {alert['sample_snapshot_ids']}"
                )
            else:
                print(f"  ALERT {alert['alert']}: {alert.get('snapshots')}")
        for alert in day.backup_alerts:
            print(f"  ami-backup ALERT {alert['alert']}: {alert.get('snapshots')}")
    print(RULE)
    print(
        f"ledger {main.ledger_table}: {len(state.ledger)} items; dry-run deletions: {len(report.dry_deletions)}; "
        f"dead-letter queues: {state.dlq_messages} + {state.dry_dlq_messages}"
    )


def cleanup_problems(report: dereg.CleanupReport, state: dereg.FinalState) -> list[str]:
    found: list[str] = []
    kept = [report.amis.snapshots[role] for role in ("disabled-user", "excluded", "unmanaged", "registered")]
    if any(snapshot not in state.snapshots for snapshot in kept):
        found.append("deregister-cleanup deleted a snapshot it had to keep")
    gone = [report.amis.snapshots[role] for role in ("fed", "race", "lost", "shared-first", "recycled")]
    if report.denied_snapshot:
        gone.append(report.denied_snapshot)
    left = [snapshot for snapshot in gone if snapshot in state.snapshots]
    if left:
        found.append(f"orphan snapshots left behind: {left}")
    if report.dry_deletions:
        found.append(f"the dry run deleted {report.dry_deletions}")
    if report.failed_records or state.dlq_messages or state.dry_dlq_messages:
        found.append("deregister-cleanup work items failed")
    return found


# ---------------------------------------------------------------------------------------------------------------
# snapshot-copy
# ---------------------------------------------------------------------------------------------------------------


def _copy_slot(report: sc.CopyReport, slot: str) -> str:
    moment = datetime.strptime(slot, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(report.source.schedule_timezone)).strftime("%m-%d")


def print_copies(report: sc.CopyReport, state: sc.FinalState) -> None:
    copy, source = report.copy, report.source
    names = report.volumes.names
    print(RULE)
    print(
        f"policy {copy.policy_name!r}: copy the snapshots of ebs-snapshot policy {source.policy_name!r} "
        f"({report.source_region}, keeps {source.generations}) to {report.destination_region}, encrypted with "
        f"{report.kms_key_arn.rsplit('/', 1)[-1]}, keep {copy.generations}; catch-up {copy.schedule_expression}"
    )
    volumes = ", ".join(f"{names[volume]} ({volume})" for volume in report.volumes.tagged)
    print(f"volumes: {volumes} tagged; tmp ({report.volumes.untagged}) untagged")
    print(RULE)
    for day in report.days:
        routed = day.messages[f"{sc.COPY} {report.destination_region}"]
        print(
            f"day {day.number} ({_copy_slot(report, day.slot)}): {len(day.sources)} snapshot(s) in "
            f"{report.source_region}, {len(day.copies)} copy(ies) made in {report.destination_region}, "
            f"{len(day.retired)} retired; copySnapshot events put on {report.destination_region}'s bus and routed "
            f"to the work queue in {report.source_region}: {routed}"
        )
        for event in day.events:
            print(f"  {event}")
        if day.failed_copies:
            print(f"  copy in error: {', '.join(day.failed_copies)} (deleted; the source was copied again)")
        for alert in day.alerts:
            print(f"  ALERT {alert['alert']}: {alert.get('resource_id', '')} ({alert.get('reason', '')})")
        kept = ", ".join(f"{names.get(volume, volume)} {len(slots)}" for volume, slots in sorted(day.kept.items()))
        print(f"  copies kept in {report.destination_region}: {kept}")
    print(RULE)
    copy_policy = copy.policy_name
    in_tokyo = [s for s in state.tokyo_snapshots.values() if _snapshot_tags(s).get(sc.POLICY_TAG) == copy_policy]
    print(
        f"{report.source_region}: {len(state.tokyo_snapshots)} snapshots (the source policy's "
        f"{source.generations} per volume and the one made by hand), copies of the policy: {len(in_tokyo)}"
    )
    by_volume: dict[str, list[str]] = {}
    for snapshot in state.osaka_snapshots.values():
        tags = _snapshot_tags(snapshot)
        by_volume.setdefault(tags.get(sc.SOURCE_VOLUME_TAG, "?"), []).append(tags.get(sc.SLOT_TAG, "?"))
    for volume, slots in sorted(by_volume.items()):
        dates = " ".join(_copy_slot(report, slot) for slot in sorted(slots))
        print(f"{report.destination_region}: {names.get(volume, volume):<8} {len(slots)} copies (source dates {dates})")
    encrypted = all(s.get("KmsKeyId") == report.kms_key_arn for s in state.osaka_snapshots.values())
    print(
        f"every copy encrypted with the example's {report.destination_region} key: {encrypted}; alerts: "
        f"{len(report.alerts)}; dead-letter queues: {state.dlq_messages}"
    )


def _snapshot_tags(snapshot: dict[str, object]) -> dict[str, str]:
    tags = snapshot.get("Tags") or []
    return {str(tag["Key"]): str(tag["Value"]) for tag in tags} if isinstance(tags, list) else {}


def copy_problems(report: sc.CopyReport, state: sc.FinalState) -> list[str]:
    found: list[str] = []
    if report.tokyo_copies:
        found.append(f"copies made in the source region {report.source_region}: {report.tokyo_copies}")
    kept: dict[str, int] = {}
    for snapshot in state.osaka_snapshots.values():
        volume = _snapshot_tags(snapshot).get(sc.SOURCE_VOLUME_TAG, "?")
        kept[volume] = kept.get(volume, 0) + 1
    if kept != dict.fromkeys(report.volumes.tagged, report.copy.generations):
        found.append(f"copies kept per volume in {report.destination_region}: {kept}")
    if [alert["alert"] for alert in report.alerts] != [sc.COPY_FAILED]:
        found.append(f"alerts other than the one failed copy: {[alert['alert'] for alert in report.alerts]}")
    if report.failed_records or state.dlq_messages or state.work_queue_messages:
        found.append("snapshot-copy work items failed or were left")
    return found


# ---------------------------------------------------------------------------------------------------------------
# All
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Results:
    week: ami.WeekReport
    ami_state: ami.FinalState
    series: ebs.SeriesReport
    ebs_state: ebs.FinalState
    cleanup: dereg.CleanupReport
    cleanup_state: dereg.FinalState
    copies: sc.CopyReport
    copy_state: sc.FinalState
    runs: dict[str, scenario.TerraformRun]
    scheduler_week: isched.WeekReport
    scheduler_dst: isched.DstReport
    scheduler_state: isched.FinalState
    runcommand_nights: ssm.NightsReport
    runcommand_state: ssm.FinalState


def run_with_terraform() -> Results:
    examples = [ami.EXAMPLE, ebs.EXAMPLE, dereg.EXAMPLE, sc.EXAMPLE, isched.EXAMPLE]
    region = scenario.example_region(examples[0])
    with tempfile.TemporaryDirectory(prefix="ops-automation-demo-") as workdir, local_aws(region) as aws:
        print(f"local AWS (moto) at {aws.endpoint}")
        names = " and ".join(example.as_posix() for example in examples)
        print(f"terraform init + apply {names}, at once (moto takes ~25 s per SQS queue) ...", flush=True)
        # ssm-runcommand: only its variant is applied (the example with force_destroy_output_bucket = true).
        variants = [dereg.DRY_RUN, *isched.VARIANTS, *ssm.VARIANTS]
        with scenario.applied_together(aws, Path(workdir), examples, variants) as applied:
            runs = {example.name: applied.run(example) for example in (*examples, *(v.path for v in variants))}
            print("applied in " + ", ".join(f"{name} {run.apply_seconds:.0f}s" for name, run in runs.items()))
            aws_ami = applied.aws_for(ami.EXAMPLE)
            print(f"ami-backup: simulating {ami.DAYS} days ...", flush=True)
            deployment = scenario.deployment_from_terraform(aws_ami, runs[ami.EXAMPLE.name].outputs, ami.EXAMPLE)
            week = ami.run_week(aws_ami, deployment)
            ami_state = ami.final_state(aws_ami, deployment)
            print(f"deregister-cleanup: simulating {dereg.DAYS} days beside ami-backup ...", flush=True)
            aws_dereg = applied.aws_for(dereg.EXAMPLE)
            outputs = {path.name: runs[path.name].outputs for path in (dereg.EXAMPLE, dereg.DRY_RUN.path)}
            main = scenario.deployment_from_terraform(
                aws_dereg, outputs[dereg.EXAMPLE.name], dereg.EXAMPLE, scheduled="sweeper"
            )
            dry = scenario.deployment_from_terraform(
                aws_dereg, outputs[dereg.DRY_RUN.path.name], dereg.DRY_RUN.path, scheduled="sweeper"
            )
            # The published samples it feeds reach the other examples' rules too (instance state changes reach the
            # instance-scheduler policies): cleared from their queues, their own scenarios must not get them.
            bystander_queues = [
                runs[path.name].outputs["work_queue_url"]
                for path in (ebs.EXAMPLE, isched.EXAMPLE, *(v.path for v in isched.VARIANTS))
            ]
            cleanup = dereg.run_days(aws_dereg, main, dry, deployment, bystander_queues)
            cleanup_state = dereg.final_state(aws_dereg, main, dry)
            for example in (ami.EXAMPLE, dereg.EXAMPLE, dereg.DRY_RUN.path):
                applied.start_destroy(example)
            aws_ebs = applied.aws_for(ebs.EXAMPLE)
            print(f"ebs-snapshot: simulating {ebs.SLOTS} daily slots ...", flush=True)
            deployment = scenario.deployment_from_terraform(aws_ebs, runs[ebs.EXAMPLE.name].outputs, ebs.EXAMPLE)
            series = ebs.run_series(aws_ebs, deployment)
            ebs_state = ebs.final_state(aws_ebs, deployment)
            # Last: its createSnapshot events reach the ebs-snapshot example's rule too (same bus), and its own
            # queues got the ebs-snapshot series' events (cleared).
            aws_copy = applied.aws_for(sc.EXAMPLE)
            print(f"snapshot-copy: simulating {sc.DAYS} days, Tokyo to Osaka ...", flush=True)
            copies = sc.run_days(aws_copy, runs[sc.EXAMPLE.name], [runs[ebs.EXAMPLE.name].outputs["work_queue_url"]])
            copy_state = sc.final_state(aws_copy, copies)
            print("instance-scheduler: simulating an office week in Tokyo and the 2027 clock changes ...", flush=True)
            aws_sched = applied.aws_for(isched.EXAMPLE)
            paths = (isched.EXAMPLE, isched.STOP_ONLY.path, isched.NEW_YORK.path)
            office, stop_only, new_york = (
                isched.deployment_from_terraform(aws_sched, runs[path.name].outputs, path) for path in paths
            )
            scheduler_week = isched.run_week(aws_sched, office, stop_only, [new_york])
            scheduler_dst = isched.run_dst(aws_sched, new_york, [office, stop_only])
            scheduler_state = isched.final_state(aws_sched, [office, stop_only, new_york])
            # Its SSM events match no other example's rule, and it emits no EC2 events: nothing to clear elsewhere.
            print("ssm-runcommand: simulating three nights of the online backup in Tokyo ...", flush=True)
            aws_ssm = applied.aws_for(ssm.FORCE_DESTROY.path)
            runcommand = ssm.deployment_from_terraform(
                aws_ssm, runs[ssm.FORCE_DESTROY.path.name].outputs, ssm.FORCE_DESTROY.path
            )
            runcommand_nights = ssm.run_nights(aws_ssm, runcommand)
            runcommand_state = ssm.final_state(aws_ssm, runcommand)
            print("terraform destroy ...", flush=True)
        print("destroyed in " + ", ".join(f"{name} {run.destroy_seconds:.0f}s" for name, run in runs.items()))
    return Results(
        week,
        ami_state,
        series,
        ebs_state,
        cleanup,
        cleanup_state,
        copies,
        copy_state,
        runs,
        scheduler_week,
        scheduler_dst,
        scheduler_state,
        runcommand_nights,
        runcommand_state,
    )


def main() -> int:
    started = time.monotonic()
    try:
        require_terraform()
    except TerraformUnavailable as unavailable:
        print(
            f"demo cannot run: {unavailable.reason}\n"
            "It needs terraform on PATH and a local hashicorp/aws provider mirror, because it deploys\n"
            "examples/ami-backup, examples/ebs-snapshot, examples/deregister-cleanup, examples/snapshot-copy,\n"
            "examples/instance-scheduler and examples/ssm-runcommand with terraform and runs the handlers with\n"
            "what Terraform deployed; there is no in-process fallback (a Python copy of the Terraform configuration\n"
            "could drift from the HCL).",
            file=sys.stderr,
        )
        return CANNOT_RUN
    print(
        "terraform apply of examples/ami-backup, examples/ebs-snapshot, examples/deregister-cleanup,"
        " examples/snapshot-copy, examples/instance-scheduler and examples/ssm-runcommand against one local AWS"
        " (tier-3 path)"
    )
    results = run_with_terraform()
    print()
    print("=== ami-backup " + "=" * (len(RULE) - 15))
    print(f"deployment: {results.week.deployment.how}")
    print_week(results.week, results.ami_state)
    print()
    print("=== ebs-snapshot " + "=" * (len(RULE) - 17))
    print(f"deployment: {results.series.deployment.how}")
    print_series(results.series, results.ebs_state)
    print()
    print("=== deregister-cleanup " + "=" * (len(RULE) - 23))
    print(f"deployment: {results.cleanup.main.how}")
    print_cleanup(results.cleanup, results.cleanup_state)
    print()
    print("=== snapshot-copy " + "=" * (len(RULE) - 18))
    print(f"deployment: {results.copies.copy.how} (and its {results.copies.destination_region} provider)")
    print_copies(results.copies, results.copy_state)
    print()
    print("=== instance-scheduler " + "=" * (len(RULE) - 23))
    print(f"deployment: {results.scheduler_week.office.deployment.how} (and its stop-only and New York variants)")
    print("\n".join(isched.report_lines(results.scheduler_week, results.scheduler_dst, results.scheduler_state, RULE)))
    print()
    print("=== ssm-runcommand " + "=" * (len(RULE) - 19))
    print(f"deployment: {results.runcommand_nights.deployed.deployment.how}")
    print("\n".join(ssm.report_lines(results.runcommand_nights, results.runcommand_state, RULE)))
    print(RULE)
    print(f"demo finished in {time.monotonic() - started:.0f}s")
    found = (
        problems(results.week, results.ami_state)
        + series_problems(results.series, results.ebs_state)
        + cleanup_problems(results.cleanup, results.cleanup_state)
        + copy_problems(results.copies, results.copy_state)
        + isched.problems(results.scheduler_week, results.scheduler_dst, results.scheduler_state)
        + ssm.problems(results.runcommand_nights, results.runcommand_state)
    )
    for problem in found:
        print(f"PROBLEM: {problem}")
    return 1 if found else 0


def problems(week: ami.WeekReport, state: ami.FinalState) -> list[str]:
    """What a reader of the report must not miss: a demo that went wrong exits non-zero."""
    found: list[str] = []
    if week.fleet.unmanaged_image not in state.images:
        found.append(f"the unmanaged AMI {week.fleet.unmanaged_image} was deleted")
    left = [s for backup in week.purged for s in backup.snapshots if s in state.snapshots]
    if left:
        found.append(f"snapshots of purged AMIs left behind: {left}")
    if state.dlq_messages:
        found.append(f"{state.dlq_messages} message(s) in the dead-letter queue")
    if week.log.at("ERROR", "CRITICAL"):
        found.append("the handlers logged errors")
    return found


if __name__ == "__main__":
    sys.exit(main())
