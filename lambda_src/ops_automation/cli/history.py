"""`ops-automation history`: the policy's ledger, as a table or JSON (docs/DESIGN.md, "Ledger table")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import click
from rich.table import Table

from ..core.events import parse_time
from ..core.ledger import DynamoLedger, LedgerEntry
from ..core.planner import SCOPE_REGION
from ..core.runtime import utc_now
from .context import Operator, emit_json, findings, looking, operator_of, progress
from .deployment import Deployed, resolve

# Claims and once-only markers: bookkeeping of the functions, not resources. (ssm-runcommand's `run@<slot>#<id>`
# items are its per-instance outcomes, so they stay; so do a fanned-out policy's `scope#<slot>` items: an account it
# could not reach, and why.)
MARKER_PREFIXES = ("request#", "reported#", "failed#", "command#")
STATES = ("pending", "available", "failed", "deleted")


def is_marker(entry: LedgerEntry) -> bool:
    return entry.key.sk.startswith(MARKER_PREFIXES)


def partitions(deployed: Deployed) -> list[tuple[str, str]]:
    """The (account, region) partitions the policy's functions write: its targets, and for snapshot-copy its
    destinations too (a copy is recorded where it is made)."""
    places = [(target.account, target.region) for target in deployed.targets]
    if deployed.scope.fans_out:
        # A fanned-out policy records an account it could not reach at all under region "-" (core.planner).
        places += [(target.account, SCOPE_REGION) for target in deployed.targets]
    if deployed.module == "snapshot-copy":
        places += [(destination.account, destination.region) for destination in deployed.config().destinations]
    return list(dict.fromkeys(places))


def entries(op: Operator, deployed: Deployed, include_markers: bool = False) -> list[LedgerEntry]:
    """Every ledger entry of the policy over all its partitions (one paginated Query per account and region),
    oldest first. The ledger's TTL (`ledger_ttl_days`) bounds how far back it reaches."""
    ledger = DynamoLedger(op.factory.client("dynamodb", op.region), deployed.ledger_table)
    found: list[LedgerEntry] = []
    with looking(f"reading the ledger {deployed.ledger_table}"):
        for account, region in progress(op, partitions(deployed), "reading the ledger"):
            for entry in ledger.partition(deployed.service, deployed.policy, account, region):
                if include_markers or not is_marker(entry):
                    found.append(entry)
    return sorted(found, key=lambda entry: (entry.created_at, entry.key.pk, entry.key.sk))


def age(entry: LedgerEntry, now: datetime) -> str:
    seconds = int((now - parse_time(entry.created_at, "created_at")).total_seconds())
    days, rest = divmod(max(seconds, 0), 86_400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"


def entry_document(entry: LedgerEntry, now: datetime) -> dict[str, Any]:
    document = asdict(entry)
    key = document.pop("key")
    return {
        "resource": entry.key.sk,
        "account": key["account"],
        "region": key["region"],
        **document,
        "refs": list(entry.refs),
        "age_seconds": int((now - parse_time(entry.created_at, "created_at")).total_seconds()),
    }


def history_table(deployed: Deployed, rows: Iterable[LedgerEntry], now: datetime) -> Table:
    table = Table(title=f"{deployed.module} policy {deployed.policy}: ledger")
    for column in ("slot", "resource", "source", "state", "age", "reason"):
        table.add_column(column, no_wrap=column in ("resource", "source", "slot"))
    for entry in rows:
        table.add_row(entry.slot, entry.key.sk, entry.source_id, entry.state, age(entry, now), entry.reason)
    return table


@click.command()
@click.option("--policy", required=True, help="Policy name (the module's `name`).")
@click.option("--source", "sources", multiple=True, help="Only this instance or volume (repeatable).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Only entries in this state.")
@click.option("--all", "include_markers", is_flag=True, help="Also the functions' claims and once-only markers.")
@click.pass_context
def history(
    ctx: click.Context, policy: str, sources: tuple[str, ...], states: tuple[str, ...], include_markers: bool
) -> None:
    """The policy's ledger: slot, resource, source, state, age, reason. Exit 1 when an entry shown failed."""
    op = operator_of(ctx)
    deployed = resolve(op, policy, None)
    now = utc_now()
    rows = [
        entry
        for entry in entries(op, deployed, include_markers)
        if (not sources or entry.source_id in sources) and (not states or entry.state in states)
    ]
    if op.json:
        emit_json(
            {
                "module": deployed.module,
                "policy": deployed.policy,
                "entries": [entry_document(entry, now) for entry in rows],
            }
        )
    else:
        op.console.print(history_table(deployed, rows, now))
    findings(ctx, any(entry.state == "failed" for entry in rows))
