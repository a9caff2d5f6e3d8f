"""`make demo`: the tour. examples/complete - every module of the project in one account, sharing one alert topic
and one KMS key - applied with terraform to a local AWS (moto on 127.0.0.1), then a simulated month of every
schedule at once on one small fleet (tests/e2e/complete_scenario.py, the driver of its tier-3 test): nightly AMIs,
hourly snapshots of the data volumes, weekly snapshots copied to Osaka, clean-up after each retired AMI, office-hours
start/stop, a nightly Run Command. Then one summary table per module, and the HTML report of the month
(`ops-automation report`, ops_automation.cli.report) for the ami-backup and ebs-snapshot policies, written to files
whose paths and sizes are printed. Then the restore tests: examples/ami-backup and examples/ebs-snapshot (restore_test
on, each with its isolated VPC), applied alongside, back up one day and fire their restore schedule once
(tests/e2e/ami_backup_scenario.py and ebs_snapshot_scenario.py, the drivers of their tier-3 tests); one restore test
of each module is printed. Everything else is removed afterwards: `terraform destroy`, the local AWS, the temporary
folder.

terraform and a hashicorp/aws provider mirror are required. There is no fallback without them: a Python copy of
the Terraform configuration could drift from the HCL unnoticed, so a demo on it could show a deployment that does not
exist. Without terraform the demo says what is missing and exits with status 2; with status 1 when the month went
wrong (an alert, a dead-letter message, a handler error, a resource that was not the policies' touched).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import boto3

REPO_ROOT = Path(__file__).resolve().parents[1]
# The import roots pytest uses (pyproject.toml `pythonpath`): the Lambda package and the repository.
sys.path[:0] = [str(REPO_ROOT / "lambda_src"), str(REPO_ROOT)]

from scripts.local_aws import LocalAws, local_aws  # noqa: E402
from tests.e2e import ami_backup_scenario as ami  # noqa: E402
from tests.e2e import complete_scenario as complete  # noqa: E402
from tests.e2e import ebs_snapshot_scenario as ebs  # noqa: E402
from tests.e2e import scenario  # noqa: E402
from tests.support.terraform_env import TerraformUnavailable, require_terraform  # noqa: E402

RULE = "-" * 96
# Exit status when the demo cannot run at all (terraform or the provider mirror missing); 1 = it ran and went wrong.
CANNOT_RUN = 2
DAYS = 30
SUNDAY = 6  # the month starts on one: the weekly snapshots (and their copies) from the first day on
# The hourly snapshots only on the last days of the month: each hour costs about a second of handler time here (six
# invocations: the planner, the worker's snapshot, the completion events reaching the three policies whose rules
# take them, the delayed check), so 720 of them would take the whole time budget of `make demo` alone.
HOURLY_DAYS = 3
# The policies whose month becomes an HTML report (the report covers the backup modules).
REPORTED = ("ami-backup", "ebs-snapshot")
# The examples that show the restore tests (examples/complete has restore_test off): one day of backups, then one
# firing of the restore schedule each.
RESTORE_EXAMPLES = (ami.EXAMPLE, ebs.EXAMPLE)
RESTORE_BACKUP_DAYS = 1


@dataclass(frozen=True)
class Restores:
    lines: list[str]
    problems: list[str]


def run_restore_tests(applied: scenario.AppliedExamples) -> Restores:
    """One day of backups through each restore example, then its restore schedule fired once: every test passes (no
    impaired copy here; the tier-3 tests fail one on purpose). The month's events reached these examples' queues
    too (their rules take EC2's events of the whole account): emptied first."""
    lines: list[str] = []
    found: list[str] = []
    local = applied.aws_for(ami.EXAMPLE)
    runs = {example: applied.run(example) for example in RESTORE_EXAMPLES}
    urls = [url for run in runs.values() for url in scenario.work_queue_urls(run)]
    scenario.purge_work_queues(local.client("sqs"), urls)
    deployment = scenario.deployment_from_terraform(local, runs[ami.EXAMPLE].outputs, ami.EXAMPLE)
    week = ami.run_week(local, deployment, days=RESTORE_BACKUP_DAYS)
    restoring = ebs.restore_deployment(local, runs[ami.EXAMPLE], deployment, ami.MODULE)
    restore = ami.run_restore(local, week, restoring, impaired_name=None, capacity_name=None, leftovers=False)
    lines += ami.restore_lines(week, restore)
    found += _restore_problems("ami-backup", restore)
    deployment = scenario.deployment_from_terraform(local, runs[ebs.EXAMPLE].outputs, ebs.EXAMPLE)
    series = ebs.run_series(local, deployment, slots=RESTORE_BACKUP_DAYS)
    volumes = ebs.run_restore(local, series, ebs.restore_deployment(local, runs[ebs.EXAMPLE], deployment, ebs.MODULE))
    lines += ebs.restore_lines(series, volumes)
    found += _restore_problems("ebs-snapshot", volumes)
    return Restores(lines, found)


def _restore_problems(module: str, run: ebs.RestoreRun) -> list[str]:
    found = []
    results = [ebs.details_of(record).get("result") for record in run.records.values()]
    if not results or any(result != "passed" for result in results):
        found.append(f"{module}: restore tests {results or 'none'}; all should pass")
    if run.alerts or run.failed_records or run.work_queue_messages or run.dlq_messages:
        found.append(f"{module}: the restore run left alerts, failed records or messages")
    return found


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    totals: dict[str, int]
    findings: bool  # gaps or failures: `ops-automation report` would exit 1


def write_reports(aws: LocalAws, report: complete.MonthReport, folder: Path) -> list[Written]:
    """The HTML report of the month of each REPORTED block, read from the local AWS as `ops-automation report
    --endpoint-url` reads it."""
    # Imported only now: the CLI imports handler modules, and Powertools reads a function's settings (the metrics
    # namespace) when its handler module is first imported - which must happen inside that function's environment,
    # as the month's invocations do it.
    from rich.console import Console

    from ops_automation.cli.context import Operator
    from ops_automation.cli.deployment import resolve
    from ops_automation.cli.report import write_report
    from ops_automation.core.clients import ClientFactory

    written = []
    with mock.patch.dict(os.environ, aws.process_environment()):
        operator = Operator(
            factory=ClientFactory("ops-automation-demo", session=boto3.session.Session(region_name=aws.region)),
            region=aws.region,
            json=False,
            console=Console(),
            err=Console(stderr=True),
        )
        for block, kind in report.deployed.kinds.items():
            if kind not in REPORTED:
                continue
            policy = report.deployed.policies[block].policy_name
            path = folder / f"{policy}.html"
            deployed = resolve(operator, policy, kind)
            # Generated at the end of the simulated month: its last slots are not "pending" then.
            data = write_report(operator, deployed, report.start, report.end, path, generated_at=report.end)
            written.append(Written(path, path.stat().st_size, data.totals, data.findings))
    return written


def simulated(report: complete.MonthReport) -> list[str]:
    start, end = (moment.astimezone(complete.TOKYO) for moment in (report.start, report.end))
    slots = ", ".join(f"{block} {count}" for block, count in report.account.reports.slots.items())
    names = ", ".join(report.fleet.names.values())
    hourly = report.sub_daily_from.astimezone(complete.TOKYO) if report.sub_daily_from else start
    return [
        f"simulated: {start:%a %Y-%m-%d %H:%M} to {end:%a %Y-%m-%d %H:%M} {end.tzname()} ({DAYS} days): every daily and"
        " weekly schedule at every one of its slots, the queues worked after each change;",
        f"the hourly ebs-snapshot schedule from {hourly:%a %Y-%m-%d %H:%M} only ({HOURLY_DAYS} days, "
        f"{report.account.reports.slots.get('ebs_snapshot', 0)} slots): each hour costs about a second of handler time",
        "here, so 720 hours would take `make demo`'s whole time budget (12 min) alone",
        f"schedule slots fired: {slots}",
        f"fleet: {names}; someone else's AMI {', '.join(report.fleet.foreign_images)} and snapshots "
        f"{', '.join(report.fleet.foreign_snapshots)}",
        "events EC2 and SSM emitted: "
        + ", ".join(f"{count} {kind}" for kind, count in report.account.emitter.published.most_common()),
        f"{report.account.rounds} jumps of simulated time; {report.real_seconds:.0f} s of real time",
    ]


def main() -> int:
    started = time.monotonic()
    try:
        require_terraform()
    except TerraformUnavailable as unavailable:
        print(
            f"demo cannot run: {unavailable.reason}\n"
            "It needs terraform on PATH and a local hashicorp/aws provider mirror, because it deploys\n"
            f"{complete.EXAMPLE.as_posix()} with terraform and runs the handlers with what Terraform deployed;\n"
            "there is no in-process fallback (a Python copy of the Terraform configuration could drift from the HCL).",
            file=sys.stderr,
        )
        return CANNOT_RUN
    region = scenario.example_region(complete.EXAMPLE)
    reports_folder = Path(tempfile.mkdtemp(prefix="ops-automation-demo-report-"))
    with tempfile.TemporaryDirectory(prefix="ops-automation-demo-") as workdir, local_aws(region) as aws:
        print(f"local AWS (moto) at {aws.endpoint}")
        examples = [complete.EXAMPLE, *RESTORE_EXAMPLES]
        print(f"terraform init + apply {', '.join(e.as_posix() for e in examples)} (tier-3 path) ...", flush=True)
        with scenario.applied_together(aws, Path(workdir), examples) as applied:
            run = applied.run(complete.EXAMPLE)
            print(f"applied in {run.apply_seconds:.0f}s")
            ebs.wait_for_network_applies(applied)
            start, end = complete.month_window(DAYS, datetime.now(UTC), weekday=SUNDAY)
            print(f"simulating {DAYS} days of every schedule ...", flush=True)
            local = applied.aws_for(complete.EXAMPLE)
            report = complete.run_month(
                local, run, start, end, progress=lambda day: print(f"  {day}", flush=True), sub_daily_days=HOURLY_DAYS
            )
            written = write_reports(local, report, reports_folder)
            emptied = complete.empty_output_bucket(local, report.deployed)
            applied.start_destroy(complete.EXAMPLE)
            print("restore tests: one day of backups, then the restore schedule, per restore example ...", flush=True)
            restores = run_restore_tests(applied)
            print(f"terraform destroy (the Run Command output bucket emptied first: {emptied} objects) ...", flush=True)
        print(f"destroyed in {run.destroy_seconds:.0f}s")
    print()
    print("\n".join(simulated(report)))
    print("\n".join(complete.report_lines(report, RULE)))
    print(RULE)
    for page in written:
        totals = ", ".join(f"{name} {count}" for name, count in page.totals.items())
        print(f"HTML report: {page.path} ({page.size:,} bytes): {totals}")
    print(RULE)
    print(
        "restore tests (restore_test of examples/ami-backup and examples/ebs-snapshot, in their isolated VPCs; "
        "EC2's state events played by the harness):"
    )
    print("\n".join(restores.lines))
    print(f"demo finished in {time.monotonic() - started:.0f}s")
    found = complete.problems(report) + restores.problems
    found += [f"the report {page.path.name} shows gaps or failures" for page in written if page.findings]
    for problem in found:
        print(f"PROBLEM: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
