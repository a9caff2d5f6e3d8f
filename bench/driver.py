"""Drives the planner and the worker the way the deployed wiring does (tests/python/test_worker.py's `Fleet`)."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

from aws_harness import FakeContext, ami_event, sqs_event, take_messages, work_body

from ops_automation.ami_backup import handlers
from ops_automation.core.events import format_time
from ops_automation.core.observability import logger

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


class Driver:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.seen = Invocations()

    def plan(self) -> dict[str, Any]:
        self.seen.planner += 1
        with captured(self.seen.output):
            return dict(handlers.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext()))

    def work(self, bodies: list[str], kind: str) -> list[str]:
        """The worker on `bodies` in event-source-mapping batches; returns the ids of failed records."""
        failed: list[str] = []
        for start in range(0, len(bodies), WORKER_BATCH):
            self.seen.worker += 1
            self.seen.messages[kind] += len(bodies[start : start + WORKER_BATCH])
            with captured(self.seen.output):
                response = handlers.work_handler(sqs_event(bodies[start : start + WORKER_BATCH]), FakeContext())
            failed.extend(item["itemIdentifier"] for item in response["batchItemFailures"])
        return failed

    def day(self, after_plan: Callable[[], None] | None = None) -> None:
        """One schedule slot: plan, create, the `available` events, then the delayed work until the queue drains."""
        self.plan()
        if after_plan is not None:
            after_plan()
        creates = take_messages()
        self._must(self.work([work_body(m) for m in creates], "create_image"))
        checks = take_messages()
        image_ids = [check["resource_id"] for check in checks]
        # EventBridge delivers each AMI event on its own: one record per invocation.
        for image_id in image_ids:
            self._must(self.work([ami_event(image_id, "available")], "ami_event"))
        self.drain(checks + take_messages())

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
