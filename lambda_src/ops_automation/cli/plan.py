"""`ops-automation plan`: what a policy's slot would create, keep and delete, with the module's own planning code
in a dry run. No work is queued (the planners build no sender in a dry run), no alert is published (the runtime
has no topic) and the ledger is not written: tests/python/test_cli.py checks every call is a read."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from ..core.alerts import Alerts
from ..core.errors import PartialFailure, error_code
from ..core.events import format_time, parse_time
from ..core.ledger import DynamoLedger
from ..core.runtime import Runtime
from ..core.scope import Target
from ..core.targeting import resolve_instances
from .context import Operator, clients_for, emit_json, findings, looking, operator_of
from .deployment import MODULES, Deployed, resolve
from .lambda_context import LocalContext


@dataclass
class Planned:
    """One table: `rows` are the JSON rows, `cells` the same rows as table text under `columns`."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    cells: list[tuple[str, ...]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def dry_runtime(op: Operator, deployed: Deployed, config: Any, at: datetime) -> Runtime[Any]:
    """The functions' runtime on the operator's credentials, at the slot's time, with no alert topic: `Alerts`
    only logs then, and a dry-run planner still alerts on ids not found."""
    common = replace(deployed.common, alert_topic_arn=None)
    return Runtime(
        config=config,
        common=common,
        clients=clients_for(op, config),
        ledger=DynamoLedger(op.factory.client("dynamodb", op.region), common.ledger_table),
        alerts=Alerts(lambda: op.factory.client("sns", op.region), None, deployed.service, deployed.policy),
        clock=lambda: at,
        service=deployed.service,
    )


def _dry_config(deployed: Deployed) -> Any:
    config = deployed.config()
    return replace(config, retention=replace(config.retention, dry_run=True))


def _handlers(deployed: Deployed) -> Any:
    return importlib.import_module(f"ops_automation.{MODULES[deployed.module].package}.handlers")


def _listed(items: Iterable[dict[str, Any]], id_key: str) -> str:
    return "\n".join(
        f"{', '.join(item[id_key]) if isinstance(item[id_key], list) else item[id_key]} ({item['reason']})"
        for item in items
    )


def _account(row: dict[str, Any]) -> str:
    return Target(str(row["region"]), row.get("role_arn")).account


def _slot_plan(op: Operator, deployed: Deployed, at: datetime) -> tuple[dict[str, Any] | None, list[str]]:
    """The module's own `plan(rt, slot)` in a dry run: its summary, or None and the failures it raised."""
    rt = dry_runtime(op, deployed, _dry_config(deployed), at)
    try:
        summary: dict[str, Any] = _handlers(deployed).plan(rt, format_time(at))
    except PartialFailure as failure:
        return None, list(failure.failures)
    return summary, list(summary.get("not_found", []))


def plan_ami_backup(op: Operator, deployed: Deployed, at: datetime) -> Planned:
    planned = Planned(("account", "region", "instance", "would create", "would keep", "would delete"))
    summary, planned.findings = _slot_plan(op, deployed, at)
    for row in summary["plan"] if summary else []:
        planned.rows.append({**row, "would_create": 1})
        planned.cells.append(
            (
                _account(row),
                row["region"],
                row["instance_id"],
                "1 AMI",
                _listed(row["would_keep"], "image_id"),
                _listed(row["would_delete"], "image_id"),
            )
        )
    return planned


def plan_ebs_snapshot(op: Operator, deployed: Deployed, at: datetime) -> Planned:
    mode = deployed.config().mode
    planned = Planned(("account", "region", "source", "would create", "would keep", "would delete"))
    summary, planned.findings = _slot_plan(op, deployed, at)
    for row in summary["plan"] if summary else []:
        planned.rows.append({**row, "would_create": 1})
        keep = [item for item in row["would_keep"] if item["snapshot_ids"]]
        planned.cells.append(
            (
                _account(row),
                row["region"],
                row["source_id"],
                "1 snapshot set" if mode == "instance" else "1 snapshot",
                "\n".join(["(next snapshot)", _listed(keep, "snapshot_ids")]).strip(),
                _listed(row["would_delete"], "snapshot_ids"),
            )
        )
    planned.notes.extend(summary.get("skipped", []) if summary else [])
    return planned


def plan_snapshot_copy(op: Operator, deployed: Deployed, at: datetime) -> Planned:
    planned = Planned(("source", "would copy to"))
    summary, planned.findings = _slot_plan(op, deployed, at)
    for row in summary["plan"] if summary else []:
        planned.rows.append(row)
        planned.cells.append((row["source_id"], row["destination_region"]))
    if summary:
        planned.notes.append(f"{summary['sources']} source(s) selected; the others are copied already")
        planned.notes.extend(summary.get("skipped", []))
    return planned


def plan_deregister_cleanup(op: Operator, deployed: Deployed, at: datetime) -> Planned:
    handlers = _handlers(deployed)
    rt = dry_runtime(op, deployed, replace(deployed.config(), dry_run=True), at)
    # The sweep reads only its time budget from the context; the ARN's account is never looked at.
    context = LocalContext(f"{deployed.policy}-sweeper", op.region, "000000000000")
    summary = handlers.sweep_all(rt, handlers.ScheduleTrigger(at), context)
    planned = Planned(("region", "snapshot", "made for AMI", "would"))
    for row in summary["would_delete"]:
        planned.rows.append(row)
        planned.cells.append((row["region"], row["snapshot_id"], row["image_id"], "delete (orphan)"))
    if summary["orphans"] > len(summary["would_delete"]):
        planned.notes.append(f"{summary['orphans']} orphan(s) in all; the first {len(planned.rows)} are listed")
    planned.notes.append("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["verdicts"].items())))
    out_of_scope = summary["verdicts"].get("out of scope", 0)
    if out_of_scope:
        planned.findings.append(f"{out_of_scope} orphan snapshot(s) outside this policy's scope (not deleted)")
    planned.findings.extend(summary.get("failures", []))
    return planned


def plan_instance_scheduler(op: Operator, deployed: Deployed, at: datetime) -> Planned:
    """The planner has no dry run (it always enqueues, and reports through the ledger), so its decision functions
    are called directly: for each instance, what a start and a stop at this time would do (the worker re-reads
    the state and claims before acting). Auto Scaling groups and RDS are not listed."""
    decisions = importlib.import_module("ops_automation.instance_scheduler.decisions")
    handlers = _handlers(deployed)
    config = deployed.config()
    planned = Planned(("account", "region", "instance", "state", "on start", "on stop"))
    clients = clients_for(op, config)
    if decisions.excluded(at, config.timezone, config.excluded_dates):
        planned.notes.append(f"{at:%Y-%m-%d} is an excluded date in {config.timezone}: neither action runs")
    for target in deployed.targets:
        ec2 = clients.client("ec2", target.region, target.role_arn)
        try:
            resolution = resolve_instances(
                ec2, config.targets.instance_ids, config.targets.tag_map, handlers.ALL_STATES
            )
        except (ClientError, BotoCoreError) as error:
            planned.findings.append(f"{target.describe()}: {_reason(error)}")
            continue
        planned.findings.extend(f"{instance_id}: not found" for instance_id in resolution.missing)
        for instance in resolution.instances:
            verdicts = {
                action: decisions.scheduling_decision(instance, action, config.opt_out_tag_key, config.asg_mode)
                for action in decisions.ACTIONS
            }
            planned.rows.append(
                {
                    "account": target.account,
                    "region": target.region,
                    "instance_id": instance.instance_id,
                    "state": instance.state,
                    **{action: {"verdict": d.verdict, "reason": d.reason} for action, d in verdicts.items()},
                }
            )
            planned.cells.append(
                (
                    target.account,
                    target.region,
                    instance.instance_id,
                    instance.state,
                    *(f"{d.verdict}{': ' + d.reason if d.reason else ''}" for d in verdicts.values()),
                )
            )
    if config.rds or config.asg_mode == "capacity":
        planned.notes.append("Auto Scaling groups and RDS databases are not listed by plan")
    return planned


def plan_ssm_runcommand(op: Operator, deployed: Deployed, at: datetime) -> Planned:
    """The commands one slot would send (one per chunk and target) and the instances each would reach now; the
    worker resolves them again at send time and asks SSM which are managed nodes."""
    handlers = _handlers(deployed)
    config = deployed.config()
    rt = dry_runtime(op, deployed, config, at)
    planned = Planned(("account", "region", "command", "instance", "state", "would"))
    for message in handlers.planned_sends(rt, format_time(at)):
        target = Target(message.region, message.role_arn)
        ec2 = rt.clients.client("ec2", target.region, target.role_arn)
        tags = config.targets.tag_map if message.chunk == "tags" else {}
        try:
            resolution = resolve_instances(ec2, message.instance_ids, tags, handlers.ALL_STATES)
        except (ClientError, BotoCoreError) as error:
            planned.findings.append(f"{target.describe()}: {_reason(error)}")
            continue
        planned.findings.extend(f"{instance_id}: not found" for instance_id in resolution.missing)
        for instance in resolution.instances:
            would = "send" if instance.state in handlers.RUNNING else f"not sent: the instance is {instance.state}"
            row = {
                "account": target.account,
                "region": target.region,
                "command": message.chunk,
                "instance_id": instance.instance_id,
                "state": instance.state,
                "would": would,
            }
            planned.rows.append(row)
            planned.cells.append(tuple(str(row[key]) for key in row))
    if not planned.rows and not planned.findings:
        planned.findings.append(f"no instance matched the policy's targets {config.targets.tag_map or ''}".strip())
    return planned


def _reason(error: Exception) -> str:
    return error_code(error) if isinstance(error, ClientError) else str(error)


PLANNERS: dict[str, Callable[[Operator, Deployed, datetime], Planned]] = {
    "ami-backup": plan_ami_backup,
    "ebs-snapshot": plan_ebs_snapshot,
    "snapshot-copy": plan_snapshot_copy,
    "deregister-cleanup": plan_deregister_cleanup,
    "instance-scheduler": plan_instance_scheduler,
    "ssm-runcommand": plan_ssm_runcommand,
}


def plan_table(deployed: Deployed, slot: str, planned: Planned) -> Table:
    table = Table(title=f"{deployed.module} policy {deployed.policy}: plan for {slot} (dry run)")
    for column in planned.columns:
        table.add_column(column, no_wrap=column in ("instance", "source", "snapshot", "account", "region"))
    for cells in planned.cells:
        table.add_row(*cells)
    return table


def _slot_time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return parse_time(value, "--slot")
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--slot") from error


@click.command()
@click.argument("module", type=click.Choice(list(PLANNERS)))
@click.option("--policy", required=True, help="Policy name (the module's `name`).")
@click.option(
    "--from-state",
    type=click.Path(exists=True, path_type=Path),
    help="A Terraform directory (or a file of its `terraform output -json`) instead of reading Lambda.",
)
@click.option("--slot", help="The slot to plan, ISO-8601 UTC (default: now).")
@click.pass_context
def plan(ctx: click.Context, module: str, policy: str, from_state: Path | None, slot: str | None) -> None:
    """What the policy's next slot would create, keep and delete, now. Calls no mutating API.

    Exit 1 when something needs a look: explicit ids not found, nothing matched, a target not listable."""
    op = operator_of(ctx)
    at = _slot_time(slot)
    deployed = resolve(op, policy, module, from_state)
    with looking(f"planning policy {policy!r}"):
        planned = PLANNERS[module](op, deployed, at)
    if op.json:
        emit_json(
            {
                "module": deployed.module,
                "policy": deployed.policy,
                "slot": format_time(at),
                "dry_run": True,
                "plan": planned.rows,
                "findings": planned.findings,
                "notes": planned.notes,
            }
        )
    else:
        op.console.print(plan_table(deployed, format_time(at), planned))
        for note in planned.notes:
            op.console.print(f"note: {note}", markup=False)
        for finding in planned.findings:
            op.console.print(f"finding: {finding}", markup=False, style="bold red")
    findings(ctx, bool(planned.findings))
