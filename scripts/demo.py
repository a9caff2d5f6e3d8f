"""`make demo`: a simulated week of AMI backups against a local AWS, as a readable report.

examples/ami-backup is applied with terraform to a local AWS (moto on 127.0.0.1) and the handlers run with the
configuration Terraform deployed (the tier-3 path). Everything is removed afterwards: `terraform destroy`, the
local AWS, the temporary folder.

terraform and a hashicorp/aws provider mirror are required. There is no fallback without them: the former
in-process path built the module's resources and environment from a hand-written Python copy of the Terraform,
which could drift from the HCL unnoticed, so a demo on it could show a deployment that does not exist. Without
terraform the demo says what is missing and exits with status 2.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
# The import roots pytest uses (pyproject.toml `pythonpath`): the Lambda package and the repository.
sys.path[:0] = [str(REPO_ROOT / "lambda_src"), str(REPO_ROOT)]

from scripts.local_aws import local_aws  # noqa: E402
from tests.e2e import scenario  # noqa: E402
from tests.support.terraform_env import TerraformUnavailable, require_terraform  # noqa: E402

RULE = "-" * 96
# Exit status when the demo cannot run at all (terraform or the provider mirror missing); 1 = it ran and went wrong.
CANNOT_RUN = 2


def _local(week: scenario.WeekReport, slot: str, layout: str = "%m-%d") -> str:
    """A slot (UTC) in the schedule's own time zone, as the policy's owner reads it."""
    moment = datetime.strptime(slot, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(week.deployment.schedule_timezone)).strftime(layout)


def _name(week: scenario.WeekReport, instance_id: str) -> str:
    return week.fleet.names.get(instance_id, instance_id)


def _fleet_order(week: scenario.WeekReport, instance_id: str) -> int:
    order = list(week.fleet.names)
    return order.index(instance_id) if instance_id in order else len(order)


def _backups(week: scenario.WeekReport, backups: list[scenario.Backup]) -> str:
    if not backups:
        return "-"
    ordered = sorted(backups, key=lambda b: _fleet_order(week, b.instance_id))
    return ", ".join(f"{_name(week, b.instance_id)} {b.image_id} ({_local(week, b.slot)})" for b in ordered)


def print_week(week: scenario.WeekReport, state: scenario.FinalState) -> None:
    deployment = week.deployment
    fleet = week.fleet
    print(RULE)
    print(
        f"policy {deployment.policy_name!r}: back up instances tagged Backup=daily, keep {deployment.generations}, "
        f"schedule {deployment.schedule_expression} {deployment.schedule_timezone}"
    )
    print(f"fleet: {', '.join(f'{_name(week, i)} ({i})' for i in fleet.backed_up)} tagged Backup=daily;")
    terminated = f"{_name(week, fleet.terminated)} ({fleet.terminated})"
    print(f"       {terminated} tagged, terminated on day {scenario.TERMINATION_DAY};")
    print(f"       {_name(week, fleet.untagged)} ({fleet.untagged}) untagged;")
    print(f"       {fleet.unmanaged_image}: a hand-made AMI of {_name(week, fleet.backed_up[0])}, not managed")
    print(RULE)
    for number, day in enumerate(week.days, start=1):
        messages = ", ".join(f"{count} {kind}" for kind, count in sorted(day.messages.items()))
        local = _local(week, day.slot, "%Y-%m-%d %H:%M %Z")
        print(f"day {number}: slot {day.slot} ({local})   messages handled: {messages}")
        if number == scenario.TERMINATION_DAY:
            print(f"  terminated: {_name(week, fleet.terminated)} (before this slot)")
        print(f"  created ({len(day.created)}): {_backups(week, day.created)}")
        print(f"  purged  ({len(day.purged)}): {_backups(week, day.purged)}")
        kept = ", ".join(
            f"{_name(week, instance)} {len(day.kept[instance])}"
            for instance in sorted(day.kept, key=lambda instance: _fleet_order(week, instance))
        )
        print(f"  kept after the run: {kept}")
        if day.failed_records:
            print(f"  FAILED records: {day.failed_records}")
    print(RULE)
    print_final_table(week, state)


def print_final_table(week: scenario.WeekReport, state: scenario.FinalState) -> None:
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


def run_with_terraform(region: str) -> tuple[scenario.WeekReport, scenario.FinalState]:
    with tempfile.TemporaryDirectory(prefix="ops-automation-demo-") as workdir, local_aws(region) as aws:
        print(f"local AWS (moto) at {aws.endpoint}, region {region}")
        print("terraform init + apply examples/ami-backup (moto takes ~25 s per SQS queue) ...", flush=True)
        with scenario.terraform_applied(aws, Path(workdir)) as run:
            print(f"applied in {run.apply_seconds:.0f}s; simulating {scenario.DAYS} days ...", flush=True)
            deployment = scenario.deployment_from_terraform(aws, run.outputs)
            week = scenario.run_week(aws, deployment)
            state = scenario.final_state(aws, deployment)
            print("terraform destroy ...", flush=True)
        print(f"destroyed in {run.destroy_seconds:.0f}s")
    return week, state


def main() -> int:
    started = time.monotonic()
    region = scenario.example_region()
    try:
        require_terraform()
    except TerraformUnavailable as unavailable:
        print(
            f"demo cannot run: {unavailable.reason}\n"
            "It needs terraform on PATH and a local hashicorp/aws provider mirror, because it deploys\n"
            "examples/ami-backup with terraform and runs the handlers with what Terraform deployed; there is\n"
            "no in-process fallback (a Python copy of the Terraform configuration could drift from the HCL).",
            file=sys.stderr,
        )
        return CANNOT_RUN
    print("terraform apply of examples/ami-backup against a local AWS (tier-3 path)")
    week, state = run_with_terraform(region)
    print(f"deployment: {week.deployment.how}")
    print_week(week, state)
    print(RULE)
    print(f"demo finished in {time.monotonic() - started:.0f}s")
    found = problems(week, state)
    for problem in found:
        print(f"PROBLEM: {problem}")
    return 1 if found else 0


def problems(week: scenario.WeekReport, state: scenario.FinalState) -> list[str]:
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
