"""`ops-automation report` on moto: the handlers run real slots (one forced failure, enough slots for retention to
retire), then the page is parsed with html.parser and checked against the ledger, the fleet and the schedule."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_harness import (
    LEDGER_TABLE,
    OTHER_REGION,
    POLICY,
    REGION,
    Clock,
    Configure,
    FakeContext,
    Infra,
    ami_event,
    copy_function_env,
    ebs_function_env,
    function_env,
    run_instances,
    snapshot_event,
    sqs_event,
    take_messages,
    work_body,
)
from click.testing import CliRunner
from rich.console import Console
from tests.support.moto_fidelity import MotoFidelity
from tests.support.scheduler_slots import scheduler_slots

from ops_automation.ami_backup import handlers as ami_handlers
from ops_automation.cli import report as report_module
from ops_automation.cli.context import Operator
from ops_automation.cli.deployment import Deployed, FunctionInfo
from ops_automation.cli.report import gather, render, report, write_report
from ops_automation.core import tagging
from ops_automation.core.clients import ClientFactory
from ops_automation.core.config import CommonConfig, ScopeConfig
from ops_automation.core.events import format_time
from ops_automation.core.scope import targets_of
from ops_automation.ebs_snapshot import handlers as ebs_handlers
from ops_automation.snapshot_copy import handlers as copy_handlers

NIGHTLY = ("cron(0 1 * * ? *)", "UTC")
HOURLY = ("cron(0 * * * ? *)", "UTC")
WINDOW_START = datetime(2024, 5, 1, tzinfo=UTC)
HOSTILE_NAME = 'db <b>& "primary"'
LEDGER_STATES = {"available": "kept", "deleted": "retired", "failed": "failed", "pending": "pending"}


class Page(HTMLParser):
    """The parts of the page the checks read: sections, their cells, every attribute, and the text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.sections: list[dict[str, Any]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if tag == "section" and "source" in attributes.get("class", "").split():
            self.sections.append({**attributes, "cells": [], "text": []})
        elif tag == "i" and self.sections and "data-state" in attributes:
            self.sections[-1]["cells"].append(attributes)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.sections:
            self.sections[-1]["text"].append(data)

    def section(self, source_id: str) -> dict[str, Any]:
        [found] = [section for section in self.sections if section["data-source"] == source_id]
        return found


def _operator() -> Operator:
    return Operator(
        factory=ClientFactory("ops-automation-cli"),
        region=REGION,
        json=False,
        console=Console(file=io.StringIO()),
        err=Console(file=io.StringIO()),
    )


def _deployed(module: str, env: dict[str, str], schedule: tuple[str, str] | None) -> Deployed:
    scope = ScopeConfig.from_env(env)
    return Deployed(
        module=module,
        policy=env["OPS_POLICY_NAME"],
        functions={"planner": FunctionInfo(f"{env['OPS_POLICY_NAME']}-planner", "handler", env)},
        common=CommonConfig.from_env(env),
        scope=scope,
        targets=tuple(targets_of(scope, REGION)),
        ledger_table=LEDGER_TABLE,
        schedule=schedule,
    )


def _ledger_counts() -> dict[str, Counter[str]]:
    """The ledger read independently of the report: a Scan, backups only (claims and markers carry a `#`)."""
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    counts: dict[str, Counter[str]] = {}
    for item in items:
        if "#" not in item["sk"]["S"]:
            counts.setdefault(item["source_id"]["S"], Counter())[LEDGER_STATES[item["state"]["S"]]] += 1
    return counts


def _assert_self_contained(page: Page) -> None:
    for tag, attributes in page.tags:
        assert tag not in ("script", "iframe", "object", "embed"), tag
        for name in ("src", "href", "action", "srcset"):
            assert not attributes.get(name, "").lower().startswith(("http:", "https:", "//")), (tag, attributes)
        assert not (tag == "link" and "stylesheet" in attributes.get("rel", "").lower()), attributes
    assert not [text for text in page.text if "@import" in text or "url(" in text]


# ---------------------------------------------------------------------------------------------------------------
# ami-backup: nightly, one cell per slot
# ---------------------------------------------------------------------------------------------------------------


class Nightly:
    """The deployed wiring for one nightly slot, except that the work items of `lost` never reach the worker (a
    source the policy targets and never backs up), and an image listed in `fail` fails."""

    def __init__(self, clock: Clock, fidelity: MotoFidelity) -> None:
        self.clock = clock
        self.fidelity = fidelity

    def work(self, bodies: list[str]) -> None:
        assert ami_handlers.work_handler(sqs_event(bodies), FakeContext()) == {"batchItemFailures": []}

    def slot(self, lost: str, fail: str | None = None) -> dict[str, str]:
        ami_handlers.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext())
        creates = [m for m in take_messages() if m["instance_id"] != lost]
        self.work([work_body(m) for m in creates])
        checks = take_messages()
        images = {check["source_id"]: check["resource_id"] for check in checks}
        outcome = {source: "failed" if source == fail else "available" for source in images}
        for source, image_id in images.items():
            self.fidelity.set_image_state(REGION, image_id, outcome[source])
        self.work([ami_event(images[source], state) for source, state in outcome.items()])
        self.clock.advance(minutes=15)
        self.work([work_body(m) for m in [*checks, *take_messages()]])
        for _round in range(20):
            leftover = take_messages()
            if not leftover:
                break
            self.clock.advance(minutes=15)
            self.work([work_body(m) for m in leftover])
        return images


@pytest.fixture
def nightly_run(
    infra: Infra, clock: Clock, fidelity: MotoFidelity, configure: Configure
) -> tuple[Deployed, list[str], str, str]:
    """Four instances backed up for five nights with 2 generations; one never backed up, one failed night."""
    named = run_instances(infra.ec2, 1, {"Backup": "nightly", "Name": HOSTILE_NAME})[0]
    others = run_instances(infra.ec2, 3, {"Backup": "nightly"})
    never, failing = others[0], others[1]
    configure(OPS_GENERATIONS="2")
    nightly = Nightly(clock, fidelity)
    for night in range(5):
        clock.now = datetime(2024, 5, 1 + night, 1, tzinfo=UTC)
        # The last night fails: no newer good backup supersedes it, so retention keeps it (and its ledger entry).
        nightly.slot(lost=never, fail=failing if night == 4 else None)
    env = function_env(infra.queue_url, OPS_GENERATIONS="2")
    return _deployed("ami-backup", env, NIGHTLY), [named, *others], never, failing


def test_every_targeted_instance_has_one_section_whose_counts_are_the_ledgers(
    nightly_run: tuple[Deployed, list[str], str, str],
) -> None:
    deployed, instances, never, failing = nightly_run
    end = WINDOW_START + timedelta(days=5)
    data = gather(_operator(), deployed, WINDOW_START, end, generated_at=end)
    page = Page(render(data))

    assert sorted(section["data-source"] for section in page.sections) == sorted(instances)
    ledger = _ledger_counts()
    expected_slots = [format_time(slot) for slot in scheduler_slots(*NIGHTLY, WINDOW_START, end)]
    assert len(expected_slots) == 5
    for instance in instances:
        section = page.section(instance)
        counts = ledger.get(instance, Counter())
        for state, attribute in (("kept", "data-kept"), ("retired", "data-retired"), ("failed", "data-failed")):
            assert int(section[attribute]) == counts[state], (instance, state)
        assert int(section["data-pending"]) == counts["pending"] == 0
        assert [cell["data-slot"] for cell in section["cells"]] == expected_slots
        cell_states = Counter(cell["data-state"] for cell in section["cells"])
        assert int(section["data-gaps"]) == cell_states["gap"]
    # Retention ran: 2 generations of 5 nights, so the older good ones were retired.
    assert sum(int(page.section(i)["data-retired"]) for i in instances) >= 6
    assert [cell["data-state"] for cell in page.section(never)["cells"]] == ["gap"] * 5
    assert int(page.section(never)["data-gaps"]) == 5
    assert [cell["data-state"] for cell in page.section(failing)["cells"]][4] == "failed"
    assert int(page.section(failing)["data-failed"]) == 1
    assert data.findings


def test_the_page_is_self_contained_escapes_what_tags_say_and_names_the_policy_window_and_schedule(
    nightly_run: tuple[Deployed, list[str], str, str],
) -> None:
    deployed, instances, _never, _failing = nightly_run
    end = WINDOW_START + timedelta(days=5)
    html = render(gather(_operator(), deployed, WINDOW_START, end, generated_at=end))
    page = Page(html)

    _assert_self_contained(page)
    assert "<b>&" not in html
    assert "&lt;b&gt;&amp;" in html
    # The parser decodes it back to the tag's value, in the named instance's own section.
    assert HOSTILE_NAME in "".join(page.section(instances[0])["text"])
    assert not [tag for tag, _ in page.tags if tag == "b"]

    # The header; and the page depends on the data alone.
    data = gather(_operator(), deployed, WINDOW_START, end, generated_at=end)
    assert render(data) == html
    text = " ".join(page.text)
    header = (POLICY, "ami-backup", "us-east-1/own account", WINDOW_START.isoformat(), end.isoformat(), NIGHTLY[0])
    assert [part for part in header if part not in text] == []
    assert "2 generations" in text and "90 days" in text


def test_report_command_exits_1_on_gaps_and_failures_and_writes_the_file(
    nightly_run: tuple[Deployed, list[str], str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed, _instances, _never, _failing = nightly_run
    monkeypatch.setattr(report_module, "resolve", lambda *_args: deployed)
    monkeypatch.setattr(report_module, "datetime", _frozen_at(datetime(2024, 5, 6, tzinfo=UTC)))
    out = tmp_path / "report.html"
    result = CliRunner().invoke(report, ["--policy", POLICY, "--out", str(out), "--days", "5"], obj=_json_operator())
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["bytes"] == out.stat().st_size > 0
    assert document["gap"] == 5 and document["failed"] == 1


def _frozen_at(moment: datetime) -> type[datetime]:
    """`datetime` whose now() is `moment`: the command's window ends now."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            return moment

    return Frozen


def _json_operator() -> Operator:
    operator = _operator()
    return Operator(operator.factory, operator.region, True, operator.console, operator.err)


def test_a_clean_run_exits_0_and_a_gap_alone_is_a_finding(
    infra: Infra,
    clock: Clock,
    fidelity: MotoFidelity,
    configure: Configure,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure(OPS_GENERATIONS="2")
    nightly = Nightly(clock, fidelity)
    for night in range(3):
        clock.now = datetime(2024, 5, 1 + night, 1, tzinfo=UTC)
        nightly.slot(lost="none")
    deployed = _deployed("ami-backup", function_env(infra.queue_url, OPS_GENERATIONS="2"), NIGHTLY)
    out = tmp_path / "clean.html"
    data = write_report(_operator(), deployed, WINDOW_START, WINDOW_START + timedelta(days=3), out)
    assert not data.findings
    assert data.totals["kept"] == 4 and data.totals["retired"] == 2 and data.totals["gap"] == 0
    assert out.read_text(encoding="utf-8") == render(data)
    monkeypatch.setattr(report_module, "resolve", lambda *_args: deployed)
    monkeypatch.setattr(report_module, "datetime", _frozen_at(WINDOW_START + timedelta(days=3)))
    args = ["--policy", POLICY, "--out", str(tmp_path / "command.html"), "--days", "3"]
    operator = _operator()
    result = CliRunner().invoke(report, args, obj=operator)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "command.html").stat().st_size > 0
    assert "command.html" in operator.console.file.getvalue()

    # A newly targeted instance no slot backed up: gaps alone are findings.
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    late = gather(_operator(), deployed, WINDOW_START, WINDOW_START + timedelta(days=3))
    assert (late.totals["gap"], late.totals["failed"], late.findings) == (3, 0, True)


def test_other_modules_are_refused_with_exit_2(infra: Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deployed = _deployed("instance-scheduler", function_env(infra.queue_url), None)
    monkeypatch.setattr(report_module, "resolve", lambda *_args: deployed)
    result = CliRunner().invoke(report, ["--policy", POLICY, "--out", str(tmp_path / "x.html")], obj=_operator())
    assert result.exit_code == 2
    assert "history --policy" in result.output
    assert not (tmp_path / "x.html").exists()


# ---------------------------------------------------------------------------------------------------------------
# ebs-snapshot: hourly, one cell per day
# ---------------------------------------------------------------------------------------------------------------


def test_an_hourly_schedule_gets_one_cell_per_day_with_the_days_counts(
    infra: Infra, clock: Clock, fidelity: MotoFidelity, configure_ebs: Callable[..., Any]
) -> None:
    volumes = [
        infra.ec2.create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=8,
            TagSpecifications=[{"ResourceType": "volume", "Tags": tagging.tag_list({"Backup": "hourly"})}],
        )["VolumeId"]
        for _ in range(3)
    ]
    never, refused = volumes[2], volumes[1]
    configure_ebs(OPS_GENERATIONS="3")
    slots = scheduler_slots(*HOURLY, WINDOW_START, WINDOW_START + timedelta(hours=30))
    for slot in slots:
        clock.now = slot
        # One hour the region's snapshot quota is full: the request is refused and its claim released.
        fidelity.fail_create_snapshot(refused, "SnapshotLimitExceeded" if slot.hour == 10 else None)
        ebs_handlers.plan_handler({"scheduled_time": format_time(slot)}, FakeContext())
        creates = [m for m in take_messages() if m["volume_id"] != never]
        assert ebs_handlers.work_handler(sqs_event([work_body(m) for m in creates]), FakeContext()) == {
            "batchItemFailures": []
        }
        checks = take_messages()
        for check in checks:
            fidelity.set_snapshot_state(REGION, check["resource_id"], "completed")
        events = [snapshot_event(c["resource_id"], c["source_id"]) for c in checks]
        assert ebs_handlers.work_handler(sqs_event(events), FakeContext()) == {"batchItemFailures": []}
        take_messages()  # the delayed checks find the sets complete: nothing left to do
    end = WINDOW_START + timedelta(days=2)
    deployed = _deployed("ebs-snapshot", ebs_function_env(infra.queue_url, OPS_GENERATIONS="3"), HOURLY)
    data = gather(_operator(), deployed, WINDOW_START, end, generated_at=end + timedelta(hours=2))
    page = Page(render(data))

    assert sorted(section["data-source"] for section in page.sections) == sorted(volumes)
    ledger = _ledger_counts()
    for volume in volumes:
        section = page.section(volume)
        assert [cell["data-day"] for cell in section["cells"]] == ["2024-05-01", "2024-05-02"]
        assert [int(cell["data-expected"]) for cell in section["cells"]] == [24, 24]
        assert int(section["data-kept"]) == ledger.get(volume, Counter())["kept"]
        assert int(section["data-retired"]) == ledger.get(volume, Counter())["retired"]
        gaps = sum(int(cell.get("data-gap", 0)) for cell in section["cells"])
        assert int(section["data-gaps"]) == gaps
    backed_up = page.section(volumes[0])
    assert (int(backed_up["data-kept"]), int(backed_up["data-retired"]), int(backed_up["data-gaps"])) == (3, 27, 18)
    assert [cell["data-state"] for cell in backed_up["cells"]] == ["retired", "gap"]
    assert int(page.section(never)["data-gaps"]) == 48
    quota = page.section(refused)
    assert [int(cell.get("data-gap", 0)) for cell in quota["cells"]] == [1, 18]
    assert "2024-05-01T10:00:00Z" in quota["text"] and "request failed (SnapshotLimitExceeded)" in quota["text"]
    _assert_self_contained(page)


# ---------------------------------------------------------------------------------------------------------------
# snapshot-copy: per lineage, one cell per source the destination should hold
# ---------------------------------------------------------------------------------------------------------------


def test_copies_are_charted_per_lineage_and_a_source_never_copied_is_a_gap(
    infra: Infra, clock: Clock, fidelity: MotoFidelity, configure_copy: Callable[..., Any]
) -> None:
    configure_copy()  # copies the snapshots of policy `hourly` to OTHER_REGION, 2 generations
    copied, forgotten = (infra.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"] for _ in range(2))

    def source(volume_id: str) -> str:
        """A completed snapshot of the volume, as the nightly ebs-snapshot policy `hourly` makes it."""
        clock.advance(days=1)
        tags = {
            tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
            tagging.POLICY: "hourly",
            tagging.SLOT: format_time(clock.now),
        }
        snapshot_id = str(
            infra.ec2.create_snapshot(
                VolumeId=volume_id, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tagging.tag_list(tags)}]
            )["SnapshotId"]
        )
        fidelity.set_snapshot_state(REGION, snapshot_id, "completed")
        return snapshot_id

    def work(bodies: list[str]) -> None:
        assert copy_handlers.work_handler(sqs_event(bodies), FakeContext()) == {"batchItemFailures": []}

    def copy_made(volume_id: str) -> str:
        made = source(volume_id)
        work([snapshot_event(made, volume_id)])
        work([work_body(m) for m in take_messages()])
        clock.advance(minutes=fidelity.snapshot_copy_time.total_seconds() / 60 + 1)
        work([work_body(m) for m in take_messages()])
        return made

    sources = [copy_made(copied) for _ in range(4)]
    # Its completion event was lost and no catch-up has run since: the destination lacks a copy it should hold,
    # older than the lineage's first copy (a copy is owed from the start, not from a first sighting).
    lost = source(forgotten)
    later = copy_made(forgotten)
    deployed = _deployed("snapshot-copy", copy_function_env(infra.queue_url), ("cron(0 3 ? * SUN *)", "UTC"))
    window = (WINDOW_START, WINDOW_START + timedelta(days=9))
    starts = {
        s["SnapshotId"]: s["StartTime"]
        for s in infra.ec2.describe_snapshots(SnapshotIds=[*sources[2:], lost, later])["Snapshots"]
    }
    # Within the copies' completion timeout (24 hours here) a missing copy may still be on its way.
    early = gather(_operator(), deployed, *window, generated_at=starts[lost] + timedelta(hours=23))
    assert [c["data-state"] for c in Page(render(early)).section(forgotten)["cells"]] == ["pending", "kept"]
    assert not early.findings
    data = gather(_operator(), deployed, *window, generated_at=starts[lost] + timedelta(hours=25))
    page = Page(render(data))

    assert sorted(section["data-source"] for section in page.sections) == sorted([copied, forgotten])
    ledger = _ledger_counts()
    copied_section = page.section(copied)
    for state in ("kept", "retired", "failed", "pending"):
        assert int(copied_section[f"data-{state}"]) == sum(ledger.get(s, Counter())[state] for s in sources), state
    assert (int(copied_section["data-kept"]), int(copied_section["data-retired"])) == (2, 2)
    assert [c["data-slot"] for c in copied_section["cells"]][-2:] == [format_time(starts[s]) for s in sources[2:]]
    assert [c["data-state"] for c in copied_section["cells"]] == ["retired", "retired", "kept", "kept"]
    assert [(c["data-slot"], c["data-state"]) for c in page.section(forgotten)["cells"]] == [
        (format_time(starts[lost]), "gap"),
        (format_time(starts[later]), "kept"),
    ]
    assert data.findings and data.totals["gap"] == 1
    assert OTHER_REGION in " ".join(page.text)
    _assert_self_contained(page)
