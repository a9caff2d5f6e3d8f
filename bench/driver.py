"""Drives the planner and the worker the way the deployed wiring does (tests/python/test_worker.py's `Fleet`):
`Driver` for ami-backup, `EbsDriver` for ebs-snapshot, both on `CycleDriver`."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

from aws_harness import (
    FakeContext,
    ami_event,
    snapshot_event,
    snapshots_event,
    sqs_event,
    take_messages,
    work_body,
)

from ops_automation.ami_backup import handlers as ami_handlers
from ops_automation.core import tagging
from ops_automation.core.events import format_time
from ops_automation.core.observability import logger
from ops_automation.ebs_snapshot import handlers as ebs_handlers

from .harness import Clock

WORKER_BATCH = 10  # the event source mapping's batch size


@dataclass
class Invocations:
    """Lambda invocations of a cycle and what they printed (log lines and EMF documents)."""

    planner: int = 0
    worker: int = 0
    output: io.StringIO = field(default_factory=io.StringIO)
    messages: Counter[str] = field(default_factory=Counter)  # SQS messages consumed, by kind

    def log_bytes(self) -> int:
        return len(self.output.getvalue().encode())

    def metric_names(self) -> set[str]:
        names: set[str] = set()
        for line in self.output.getvalue().splitlines():
            if line.startswith("{") and '"_aws"' in line:
                for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                    names.update(metric["Name"] for metric in directive["Metrics"])
        return names


@contextmanager
def captured(buffer: io.StringIO) -> Iterator[None]:
    """Everything a handler prints: EMF documents (print) and log lines (the Powertools handler's stream)."""
    handlers_ = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(buffer) for h in handlers_]
    try:
        with redirect_stdout(buffer), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for handler, stream in zip(handlers_, streams, strict=True):
            handler.setStream(stream)


class CycleDriver:
    """Planner and worker of one module's handlers, the event source mapping's batches, and the delayed work."""

    handlers: ModuleType = ami_handlers

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.seen = Invocations()

    def plan(self) -> dict[str, Any]:
        self.seen.planner += 1
        with captured(self.seen.output):
            return dict(self.handlers.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext()))

    def work(self, bodies: list[str], kind: str) -> list[str]:
        """The worker on `bodies` in event-source-mapping batches; returns the ids of failed records."""
        failed: list[str] = []
        for start in range(0, len(bodies), WORKER_BATCH):
            self.seen.worker += 1
            self.seen.messages[kind] += len(bodies[start : start + WORKER_BATCH])
            with captured(self.seen.output):
                response = self.handlers.work_handler(sqs_event(bodies[start : start + WORKER_BATCH]), FakeContext())
            failed.extend(item["itemIdentifier"] for item in response["batchItemFailures"])
        return failed

    def work_as_due(self, messages: list[dict[str, Any]], kind: str) -> None:
        """The event source mapping receives what is visible: messages due at the same moment come in batches of up
        to 10, messages the planner paced with per-message delays a few at a time (as they come due)."""
        by_due: dict[float, list[str]] = {}
        for message in messages:
            by_due.setdefault(message.get("_delayed_until_ms", 0), []).append(work_body(message))
        for due in sorted(by_due):
            self._must(self.work(by_due[due], kind))

    def events(self, events: list[str], kind: str) -> None:
        """EventBridge delivers each state event on its own: one record per invocation."""
        for event in events:
            self._must(self.work([event], kind))

    def drain(self, pending: list[dict[str, Any]]) -> None:
        for _round in range(50):
            if not pending:
                return
            self.clock.advance(minutes=15)
            by_kind: dict[str, list[str]] = {}
            for message in pending:
                by_kind.setdefault(message["kind"], []).append(work_body(message))
            for kind, bodies in by_kind.items():
                self._must(self.work(bodies, kind))
            pending = take_messages()
        raise RuntimeError("the work queue never drained")

    @staticmethod
    def _must(failed: list[str]) -> None:
        if failed:
            raise RuntimeError(f"records failed: {failed}")


class Driver(CycleDriver):
    """ami-backup."""

    def day(self, after_plan: Callable[[], None] | None = None) -> None:
        """One schedule slot: plan, create, the `available` events, then the delayed work until the queue drains."""
        self.plan()
        if after_plan is not None:
            after_plan()
        self.work_as_due(take_messages(), "create_image")
        checks = take_messages()
        self.events([ami_event(check["resource_id"], "available") for check in checks], "ami_event")
        self.drain(checks + take_messages())


class EbsDriver(CycleDriver):
    """ebs-snapshot, either mode: the planner paces the creates (per-message delays: run SQS on the clock, with
    `faithful_aws(clock, sqs_time=True)`, so that messages due together share their due time); the snapshots
    complete in EC2 (tests/support/moto_fidelity.py, E11) before their events arrive: one `EBS Snapshot
    Notification` per snapshot (volume mode) or one `EBS Multi-Volume Snapshots Completion Status` per set
    (instance mode)."""

    handlers = ebs_handlers

    def __init__(self, clock: Clock, ec2: Any, completion: timedelta) -> None:
        super().__init__(clock)
        self.ec2 = ec2  # the bench's own client, outside the handlers: not counted
        self.completion = completion

    def day(self, after_plan: Callable[[], None] | None = None) -> None:
        slot = format_time(self.clock.now)
        self.plan()
        if after_plan is not None:
            after_plan()
        creates = take_messages()
        kind = creates[0]["kind"] if creates else "create_snapshot"
        self.work_as_due(creates, kind)
        checks = take_messages()
        self.clock.advance(seconds=self.completion.total_seconds() + 1)
        if kind == "create_snapshot":
            self.events([snapshot_event(c["resource_id"], c["source_id"]) for c in checks], "snapshot_event")
        else:
            self.events([snapshots_event(members) for members in self._sets(slot).values()], "snapshots_event")
        self.drain(checks + take_messages())

    def _sets(self, slot: str) -> dict[str, dict[str, str]]:
        """The slot's sets: set id -> {snapshot id: volume id}, as the completion event lists them."""
        filters = [{"Name": f"tag:{tagging.SLOT}", "Values": [slot]}]
        sets: dict[str, dict[str, str]] = {}
        for page in self.ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters):
            for snapshot in page["Snapshots"]:
                set_id = tagging.tag_dict(snapshot.get("Tags"))[tagging.SNAPSHOT_SET]
                sets.setdefault(set_id, {})[snapshot["SnapshotId"]] = snapshot["VolumeId"]
        return sets
