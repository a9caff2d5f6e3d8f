"""`ops-automation report`: one self-contained HTML page of what a backup policy did over a window, per source.

Four readings, all read-only: the ledger (what the policy made and what became of it), EC2 now (the policy's
AMIs or snapshots, by its ownership tag), the targeted fleet (the module's own targeting code, so a source that was
never backed up still gets a row) and the expected slots (the schedule, evaluated as EventBridge Scheduler does).
A source's expected slot with no backup, from its first sighting on, is a gap.

`gather` reads, `render` is pure (data → HTML), `write_report` does both; the demo calls them directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from rich.table import Table

from ..core import tagging
from ..core.events import format_time, parse_time
from ..core.image_links import image_state, list_images
from ..core.ledger import LOCAL_ACCOUNT, DynamoLedger, LedgerEntry
from ..core.scope import Target
from ..core.snapshots import list_snapshots, snapshot_state
from ..core.targeting import stream_instances
from . import history
from .context import CannotLook, Operator, clients_for, emit_json, findings, looking, operator_of, progress
from .deployment import Deployed, resolve
from .plan import dry_runtime
from .slots import scheduler_slots

REPORTED_MODULES = ("ami-backup", "ebs-snapshot", "snapshot-copy")
# The ledger's states as an auditor reads them.
REPORT_STATE = {"available": "kept", "deleted": "retired", "failed": "failed", "pending": "pending"}
BACKUP_STATES = ("kept", "retired", "failed", "pending")
# A day's cell shows the state that most needs attention; `none`: the source was not (yet, or any more) targeted.
SEVERITY = ("gap", "failed", "pending", "retired", "kept", "none")
CLAIM_PREFIX = "request#"


@dataclass(frozen=True)
class Backup:
    """A ledger entry of one backup (claims and markers are not backups)."""

    resource_id: str
    slot: str
    state: str
    reason: str
    in_ec2: bool


@dataclass(frozen=True)
class Cell:
    """One expected slot (`key` = the slot, UTC), or one local day of a sub-daily schedule (`key` = the date, with
    the day's slots counted by state in `counts`)."""

    key: str
    state: str
    title: str
    counts: tuple[tuple[str, int], ...] = ()

    @property
    def expected(self) -> int:
        return sum(count for _, count in self.counts) if self.counts else 1


@dataclass(frozen=True)
class SourceReport:
    source_id: str
    name: str
    where: str
    targeted: bool
    cells: tuple[Cell, ...]
    # Ledger entries of the window by report state, and `gap`.
    counts: Mapping[str, int]
    # What needs a look: failed and pending backups, and kept ones EC2 no longer has.
    notable: tuple[Backup, ...]
    # (reason, how many) of the window's retired backups.
    retired_because: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ReportData:
    policy: str
    module: str
    targets: tuple[str, ...]
    start: datetime
    end: datetime
    generated_at: datetime
    schedule: str
    timezone: str
    retention: str
    ledger_ttl_days: int
    per_day: bool
    unit: str
    sources: tuple[SourceReport, ...]
    # Ledger says kept (or pending) but EC2 has no such resource; EC2 has a managed backup the ledger does not know.
    ledger_not_in_ec2: tuple[str, ...]
    ec2_not_in_ledger: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for source in self.sources:
            totals.update(source.counts)
        return {
            "sources": len(self.sources),
            "targeted": sum(source.targeted for source in self.sources),
            **{state: totals[state] for state in (*BACKUP_STATES, "gap")},
            "ledger_not_in_ec2": len(self.ledger_not_in_ec2),
            "ec2_not_in_ledger": len(self.ec2_not_in_ledger),
        }

    @property
    def findings(self) -> bool:
        totals = self.totals
        return bool(totals["gap"] or totals["failed"])


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Reading:
    """What one module's reader found, before it is laid out per source."""

    # source id → (name, where, targeted now)
    sources: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    backups: dict[str, list[LedgerEntry]] = field(default_factory=dict)
    # (source id, slot) → why the request for it was given up (a released claim)
    refused: dict[tuple[str, str], str] = field(default_factory=dict)
    # Resource ids EC2 has now (usable: not deregistered or in the Recycle Bin), and the policy's owned ones.
    in_ec2: set[str] = field(default_factory=set)
    owned_in_ec2: dict[str, str] = field(default_factory=dict)
    # Every resource id the ledger names (the backups' own ids and the ids their requests made).
    known: set[str] = field(default_factory=set)
    # Per source, what it should have (snapshot-copy: a copy of each source); empty: the schedule's slots.
    expected: dict[str, set[datetime]] = field(default_factory=dict)
    # Whether a source's slots before its first backup are "not targeted yet" rather than gaps (a schedule's
    # sources; a copy is owed for every source the destination should hold, however old).
    from_first_sighting: bool = True
    notes: list[str] = field(default_factory=list)


def gather(
    op: Operator, deployed: Deployed, start: datetime, end: datetime, generated_at: datetime | None = None
) -> ReportData:
    """Everything the page shows, read from AWS (read-only calls only). The expected slots are [start, end)."""
    reader = _READERS.get(deployed.module)
    if reader is None:
        raise CannotLook(
            f"policy {deployed.policy!r} is a {deployed.module} policy: the report charts backups "
            f"({', '.join(REPORTED_MODULES)}); `ops-automation history --policy {deployed.policy}` lists its ledger"
        )
    config = deployed.config()
    reading = _Reading()
    with looking(f"reading policy {deployed.policy!r}"):
        reader(op, deployed, config, reading)
    notes = reading.notes
    schedule_slots = [] if reading.expected else _expected_slots(deployed, start, end, reading, notes)

    def slots_of(source_id: str) -> list[datetime]:
        if not reading.expected:
            return schedule_slots
        return sorted(slot for slot in reading.expected.get(source_id, ()) if start <= slot < end)

    zone = ZoneInfo(deployed.schedule[1] if deployed.schedule else "UTC")
    per_day = any(
        len(slots) > len({slot.astimezone(zone).date() for slot in slots})
        for slots in (
            [schedule_slots] if not reading.expected else [slots_of(source_id) for source_id in reading.sources]
        )
    )
    generated_at = generated_at or datetime.now(UTC)
    # A slot this recent may still be in the works: no backup yet is not a gap.
    settled_before = generated_at - timedelta(minutes=config.completion.timeout_minutes)
    sources = tuple(
        _source_report(source_id, reading, slots_of(source_id), start, end, settled_before, zone if per_day else None)
        for source_id in sorted(reading.sources, key=lambda s: (not reading.sources[s][2], reading.sources[s][1], s))
    )
    ledger_ids = {entry.key.resource_id for entries in reading.backups.values() for entry in entries}
    retention = config.retention
    return ReportData(
        policy=deployed.policy,
        module=deployed.module,
        targets=tuple(_where(target.region, target.account) for target in deployed.targets),
        start=start,
        end=end,
        generated_at=generated_at,
        schedule=deployed.schedule[0] if deployed.schedule else "(unknown)",
        timezone=str(zone),
        retention=f"{retention.generations} generations"
        + (f", max_age_days {retention.max_age_days}" if retention.max_age_days else "")
        + (" (dry run: nothing is retired)" if retention.dry_run else ""),
        ledger_ttl_days=config.completion.ledger_ttl_days,
        per_day=per_day,
        unit="day" if per_day else "slot",
        sources=sources,
        ledger_not_in_ec2=tuple(
            sorted(
                entry.key.resource_id
                for entries in reading.backups.values()
                for entry in entries
                if entry.state in ("available", "pending") and entry.key.resource_id not in reading.in_ec2
            )
        ),
        ec2_not_in_ledger=tuple(sorted(set(reading.owned_in_ec2) - reading.known - ledger_ids)),
        notes=tuple(notes),
    )


def _per_target(
    read_target: Callable[[Operator, Deployed, Any, Target, _Reading], None],
) -> Callable[[Operator, Deployed, Any, _Reading], None]:
    """A scheduled backup module: the ledger of every target, then each target's fleet and backups in EC2."""

    def read(op: Operator, deployed: Deployed, config: Any, reading: _Reading) -> None:
        _read_ledger(op, deployed, reading)
        for target in progress(op, list(deployed.targets), "reading EC2"):
            with looking(f"reading {target.describe()} of policy {deployed.policy!r}"):
                read_target(op, deployed, config, target, reading)

    return read


def _read_ledger(op: Operator, deployed: Deployed, reading: _Reading) -> None:
    """The `history` command's reading of the ledger, claims and markers included."""
    for entry in history.entries(op, deployed, include_markers=True):
        reading.known.update(entry.refs)
        if entry.key.resource_id.startswith(CLAIM_PREFIX):
            if entry.state == "failed":
                reading.refused[(entry.source_id, entry.slot)] = entry.reason
        elif not history.is_marker(entry):
            reading.backups.setdefault(entry.source_id, []).append(entry)
            if entry.source_id not in reading.sources:
                reading.sources[entry.source_id] = ("", _where(entry.key.region, entry.key.account), False)


def _where(region: str, account: str) -> str:
    return f"{region}/{'own account' if account == LOCAL_ACCOUNT else account}"


def _target(reading: _Reading, source_id: str, name: str, target: Target) -> None:
    known_name = reading.sources.get(source_id, ("", "", False))[0]
    reading.sources[source_id] = (name or known_name, _where(target.region, target.account), True)


def _name_from(reading: _Reading, source_id: str, tags: Mapping[str, str]) -> None:
    """A backup carries its source's copied tags: the name of a source that is no longer targeted."""
    name, where, targeted = reading.sources.get(source_id, ("", "", False))
    if not name and tags.get("Name") and where:
        reading.sources[source_id] = (tags["Name"], where, targeted)


def _read_ami_backup(op: Operator, deployed: Deployed, config: Any, target: Target, reading: _Reading) -> None:
    ec2 = clients_for(op, config).client("ec2", target.region, target.role_arn)
    # The planner's own stream: the same ids, tags and instance states.
    stream = stream_instances(ec2, config.targets.instance_ids, config.targets.tag_map)
    for page in stream.pages():
        for instance in page:
            _target(reading, instance.instance_id, instance.tags.get("Name", ""), target)
    for image in list_images(ec2, [{"Name": f"tag:{tagging.POLICY}", "Values": [deployed.policy]}]):
        tags = tagging.tag_dict(image.get("Tags"))
        if image_state(image) is None:
            continue
        reading.in_ec2.add(str(image["ImageId"]))
        if tagging.is_owned(tags, deployed.policy):
            reading.owned_in_ec2[str(image["ImageId"])] = tags.get(tagging.SOURCE_INSTANCE, "")
            _name_from(reading, tags.get(tagging.SOURCE_INSTANCE, ""), tags)


def _read_ebs_snapshot(op: Operator, deployed: Deployed, config: Any, target: Target, reading: _Reading) -> None:
    # Imported on use, like deployment.Module.config_of: a report of one module loads no other module's handlers.
    from ..ebs_snapshot import handlers as ebs
    from ..ebs_snapshot.decisions import source_of

    now = datetime.now(UTC)
    # The planner's own per-target selection (volume or instance mode, exclusions, root volume), as work items it
    # would send; nothing is sent (the runtime `plan` uses: no alert topic). It reads only the config and the policy.
    planner = dry_runtime(op, deployed, config, now)
    ec2 = planner.clients.client("ec2", target.region, target.role_arn)
    unmatched = ebs.Unmatched(set(), set())
    for message in ebs.plan_target(planner, ec2, target, format_time(now), unmatched):
        tags = getattr(message, "volume_tags", None) or {}
        _target(reading, message.source_id, tags.get("Name", ""), target)
    for snapshot in list_snapshots(ec2, [{"Name": f"tag:{tagging.POLICY}", "Values": [deployed.policy]}]):
        tags = tagging.tag_dict(snapshot.get("Tags"))
        if snapshot_state(snapshot) is None:
            continue
        reading.in_ec2.add(str(snapshot["SnapshotId"]))
        if tagging.is_owned(tags, deployed.policy):
            source = source_of(snapshot, config.mode)
            reading.owned_in_ec2[str(snapshot["SnapshotId"])] = source
            _name_from(reading, source, tags)


def _read_snapshot_copy(op: Operator, deployed: Deployed, config: Any, reading: _Reading) -> None:
    """Per lineage (the volume or instance the sources were made of) and destination: a copy is owed for each
    source the catch-up would copy now (its own selection and `sources_to_hold`), and every copy the ledger knows
    is shown. Copies live in the destinations, so do their ledger entries."""
    from ..snapshot_copy import handlers as copy_handlers
    from ..snapshot_copy.decisions import copied_source_id, sources_to_hold

    kind = copy_handlers.IMAGES if config.copy_images else copy_handlers.SNAPSHOTS
    reading.from_first_sighting = False
    reading.notes.append(
        "expected: one copy per destination of each source the catch-up would copy now, and every copy the ledger "
        "knows; copies to " + ", ".join(_where(d.region, d.account) for d in config.destinations)
    )
    clients = clients_for(op, config)
    sources: dict[str, Any] = {}
    for target in progress(op, list(deployed.targets), "reading the sources"):
        ec2 = clients.client("ec2", target.region, target.role_arn)
        for filters in config.sources.filter_sets(config.kind):
            for source in kind.sources(ec2, filters, target.region):
                if not tagging.is_owned(source.tags, deployed.policy):
                    sources[source.resource_id] = source
    retention = config.retention
    held = sources_to_hold(sources.values(), retention.generations, retention.max_age_days, datetime.now(UTC))
    lineage_of = {source_id: source.lineage for source_id, source in sources.items()}
    ledger = DynamoLedger(op.factory.client("dynamodb", op.region), deployed.ledger_table)
    for destination in config.destinations:
        where = _where(destination.region, destination.account)

        def key_of(lineage: str, region: str = destination.region) -> str:
            return lineage if len(config.destinations) == 1 else f"{lineage} to {region}"

        dest_ec2 = clients.client("ec2", destination.region, destination.role_arn)
        for region in sorted({target.region for target in deployed.targets}):
            for copy in kind.copies(dest_ec2, deployed.policy, region):
                tags = tagging.tag_dict(copy.get("Tags"))
                if kind.state(copy) is None:
                    continue
                copy_id = str(copy[kind.id_key])
                reading.in_ec2.add(copy_id)
                reading.owned_in_ec2[copy_id] = tags.get(kind.lineage_tag, "")
                source_id = copied_source_id(tags)
                if source_id and tags.get(kind.lineage_tag):
                    lineage_of.setdefault(source_id, tags[kind.lineage_tag])
        for source in held:
            key = key_of(source.lineage)
            name = reading.sources.get(key, ("", "", False))[0] or source.tags.get("Name", "")
            reading.sources[key] = (name, where, True)
            reading.expected.setdefault(key, set()).add(source.created_at)
        for entry in ledger.partition(deployed.service, deployed.policy, destination.account, destination.region):
            reading.known.update(entry.refs)
            # A copy whose source and copy are both gone (retired on both sides) no longer names its lineage.
            key = key_of(lineage_of.get(entry.source_id, "(source gone)"))
            if entry.key.resource_id.startswith(CLAIM_PREFIX):
                if entry.state == "failed" and entry.source_id in sources:
                    reading.refused[(key, format_time(sources[entry.source_id].created_at))] = entry.reason
            elif not history.is_marker(entry):
                reading.backups.setdefault(key, []).append(entry)
                reading.sources.setdefault(key, ("", where, False))
                if entry.slot:
                    reading.expected.setdefault(key, set()).add(parse_time(entry.slot, "slot"))


_READERS: dict[str, Callable[[Operator, Deployed, Any, _Reading], None]] = {
    "ami-backup": _per_target(_read_ami_backup),
    "ebs-snapshot": _per_target(_read_ebs_snapshot),
    "snapshot-copy": _read_snapshot_copy,
}


def _expected_slots(
    deployed: Deployed, start: datetime, end: datetime, reading: _Reading, notes: list[str]
) -> list[datetime]:
    if deployed.schedule is not None and deployed.schedule[0].startswith("cron("):
        return scheduler_slots(deployed.schedule[0], deployed.schedule[1], start, end)
    # Without a cron schedule the grid is what the ledger shows ran: gaps are then only sources a slot missed.
    notes.append(
        f"schedule {deployed.schedule[0] if deployed.schedule else 'unknown'}: the expected slots are the slots "
        "the ledger shows any source was backed up at"
    )
    seen = {parse_time(entry.slot, "slot") for entries in reading.backups.values() for entry in entries if entry.slot}
    return sorted(slot for slot in seen if start <= slot < end)


def _source_report(
    source_id: str,
    reading: _Reading,
    slots: Sequence[datetime],
    start: datetime,
    end: datetime,
    settled_before: datetime,
    day_zone: ZoneInfo | None,
) -> SourceReport:
    name, where, targeted = reading.sources[source_id]
    entries = reading.backups.get(source_id, [])
    backups = [
        Backup(e.key.resource_id, e.slot, REPORT_STATE[e.state], e.reason, e.key.resource_id in reading.in_ec2)
        for e in sorted(entries, key=lambda e: (e.slot, e.key.resource_id))
    ]
    # Of two entries of one slot, the better one counts for the slot (a kept backup covers it).
    by_slot = {backup.slot: backup for backup in sorted(backups, key=lambda b: SEVERITY.index(b.state))}
    sighted = sorted(parse_time(e.slot, "slot") for e in entries if e.slot)
    first = sighted[0] if sighted else None
    last = sighted[-1] if sighted else None
    states: list[tuple[datetime, str, str]] = []
    refusals: list[Backup] = []
    for slot in slots:
        key = format_time(slot)
        # The tooltip: the window's year is in the header, the full slot in data-slot.
        shown = key[5:16].replace("T", " ")
        backup = by_slot.get(key)
        if backup is not None:
            # A retired backup's reason is one of a few retention rules, summed up once per source instead.
            why = f": {backup.reason}" if backup.reason and backup.state != "retired" else ""
            states.append((slot, backup.state, f"{shown} {backup.resource_id}{why}"))
        elif reading.from_first_sighting and (
            (first is not None and slot < first) or (not targeted and last is not None and slot > last)
        ):
            states.append((slot, "none", f"{shown} not targeted"))
        elif slot >= settled_before:
            states.append((slot, "pending", f"{shown} not recorded yet (within the completion timeout)"))
        else:
            refused = reading.refused.get((source_id, key))
            if refused:
                # Listed under the timeline too: a day's cell of a sub-daily schedule shows counts only.
                refusals.append(Backup("", key, "gap", f"request failed ({refused})", False))
            states.append((slot, "gap", f"{shown} no backup" + (f": request failed ({refused})" if refused else "")))
    in_window = [b for b in backups if b.slot and start <= parse_time(b.slot, "slot") < end]
    counts = Counter(backup.state for backup in in_window)
    counts["gap"] = sum(state == "gap" for _, state, _ in states)
    notable = tuple(
        sorted(
            [b for b in in_window if b.state in ("failed", "pending") or (b.state == "kept" and not b.in_ec2)]
            + refusals,
            key=lambda b: b.slot,
        )
    )
    retired_because = Counter(b.reason or "(no reason recorded)" for b in in_window if b.state == "retired")
    return SourceReport(
        source_id=source_id,
        name=name,
        where=where,
        targeted=targeted,
        cells=tuple(_cells(states, day_zone)),
        counts={state: counts[state] for state in (*BACKUP_STATES, "gap")},
        notable=notable,
        retired_because=tuple(sorted(retired_because.items())),
    )


def _cells(states: Iterable[tuple[datetime, str, str]], day_zone: ZoneInfo | None) -> Iterable[Cell]:
    if day_zone is None:
        return [Cell(format_time(slot), state, title) for slot, state, title in states]
    days: dict[str, Counter[str]] = {}
    for slot, state, _ in states:
        days.setdefault(slot.astimezone(day_zone).date().isoformat(), Counter())[state] += 1
    cells = []
    for day, counted in days.items():
        ordered = tuple((state, counted[state]) for state in SEVERITY if counted[state])
        title = f"{day[5:]}: " + ", ".join(f"{count} {state}" for state, count in ordered)
        cells.append(Cell(day, ordered[0][0], title, ordered))
    return cells


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------

# Autoescape on for every template whatever its name (select_autoescape alone escapes .html/.htm/.xml names only).
_TEMPLATES = Environment(
    loader=PackageLoader("ops_automation.cli"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(data: ReportData) -> str:
    """The page, from `data` alone: no clock, no AWS."""
    return _TEMPLATES.get_template("report.html").render(
        data=data, totals=data.totals, states=(*BACKUP_STATES, "gap"), legend=SEVERITY
    )


def write_report(
    op: Operator, deployed: Deployed, start: datetime, end: datetime, path: Path, generated_at: datetime | None = None
) -> ReportData:
    data = gather(op, deployed, start, end, generated_at)
    path.write_text(render(data), encoding="utf-8")
    return data


# ---------------------------------------------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------------------------------------------


@click.command("report")
@click.option("--policy", required=True, help="The policy name (the functions are <policy>-planner, ...).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The HTML file to write.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 400), help="The window, up to now.")
@click.option("--module", type=click.Choice(REPORTED_MODULES), default=None, help="Only look for this module.")
@click.option(
    "--from-state",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Read the configuration from `terraform output -json` of this directory (or file).",
)
@click.pass_context
def report(ctx: click.Context, policy: str, out: Path, days: int, module: str | None, from_state: Path | None) -> None:
    """Write one self-contained HTML page: per source, the expected slots of the last DAYS days as kept, retired,
    failed, pending or gap. Exit 1 when there are gaps or failures."""
    op = operator_of(ctx)
    deployed = resolve(op, policy, module, from_state)
    end = datetime.now(UTC)
    data = write_report(op, deployed, end - timedelta(days=days), end, out)
    size = out.stat().st_size
    if op.json:
        emit_json({"policy": policy, "module": data.module, "out": str(out), "bytes": size, **data.totals})
    else:
        table = Table("policy", *data.totals, title=f"{out} ({size} bytes)")
        table.add_row(policy, *(str(value) for value in data.totals.values()))
        op.console.print(table)
    findings(ctx, data.findings)
