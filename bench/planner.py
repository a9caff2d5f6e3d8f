"""2. Planner calls and peak memory at 1,000 and 10,000 instances with realistic 1,000-instance pages.

moto pages DescribeInstances by reservation and slows down past a few thousand instances, so large fleets are
served by `StandInEc2`: it pages 1,000 instances per page and honours the tag and state filters; it is checked
against moto on a small fleet in the same run (same calls, same messages)."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_harness import FakeContext, run_instances, take_messages

from ops_automation.ami_backup import handlers
from ops_automation.core.events import format_time

from .driver import captured
from .harness import REGION, Clock, Network, installed, moto_account, routed

PAGE = 1000
TAGS = {"Backup": "nightly"}


@dataclass
class StandInEc2:
    """DescribeInstances as EC2 answers it: MaxResults pages, NextToken, tag and state filters."""

    instances: list[tuple[str, str, dict[str, str]]] | None = None  # explicit (id, state, tags), else generated
    fleet: int = 0
    calls: Counter[str] = field(default_factory=Counter)

    def _instance(self, index: int) -> tuple[str, str, dict[str, str]]:
        if self.instances is not None:
            return self.instances[index]
        return f"i-{index:017x}", "running", dict(TAGS)

    def _size(self) -> int:
        return len(self.instances) if self.instances is not None else self.fleet

    def describe_instances(self, Filters: list[dict[str, Any]], MaxResults: int = PAGE, NextToken: str = "") -> Any:
        self.calls["ec2.DescribeInstances"] += 1
        start, found = int(NextToken or 0), list[dict[str, Any]]()
        index = start
        while index < self._size() and len(found) < MaxResults:
            instance_id, state, tags = self._instance(index)
            index += 1
            if _matches(Filters, instance_id, state, tags):
                found.append({"InstanceId": instance_id, "State": {"Name": state}, "Tags": _tag_list(tags)})
        page: dict[str, Any] = {"Reservations": [{"Instances": found}] if found else []}
        if index < self._size():
            page["NextToken"] = str(index)
        return page

    def get_paginator(self, name: str) -> Any:
        assert name == "describe_instances"
        return self

    def paginate(self, Filters: list[dict[str, Any]], PaginationConfig: dict[str, int]) -> Iterator[Any]:
        token = ""
        while True:
            page = self.describe_instances(Filters, PaginationConfig.get("PageSize", PAGE), token)
            yield page
            token = page.get("NextToken", "")
            if not token:
                return


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _matches(filters: list[dict[str, Any]], instance_id: str, state: str, tags: dict[str, str]) -> bool:
    for f in filters:
        name, values = f["Name"], f["Values"]
        if name.startswith("tag:") and tags.get(name[4:]) not in values:
            return False
        if name == "instance-state-name" and state not in values:
            return False
        if name == "instance-id" and instance_id not in values:
            return False
    return True


@dataclass
class StandInSqs:
    """SendMessageBatch that keeps only a count and a digest, so memory measures the planner and not a queue."""

    calls: Counter[str] = field(default_factory=Counter)
    bodies: list[str] = field(default_factory=list)
    keep: bool = False

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:
        self.calls["sqs.SendMessageBatch"] += 1
        if self.keep:
            self.bodies.extend(entry["MessageBody"] for entry in Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


@dataclass(frozen=True)
class PlannerRun:
    instances: int
    calls: dict[str, int]
    peak_bytes: int
    enqueued: int


def _plan(clock: Clock) -> dict[str, Any]:
    with captured(io.StringIO()):
        return dict(handlers.plan_handler({"scheduled_time": format_time(clock.now)}, FakeContext()))


def run_stand_in(fleet: int) -> PlannerRun:
    clock, ec2, sqs = Clock(), StandInEc2(fleet=fleet), StandInSqs()
    with moto_account() as infra, routed(Network(), {"ec2": ec2, "sqs": sqs}), installed(infra, clock):
        tracemalloc.start()
        summary = _plan(clock)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return PlannerRun(fleet, dict(ec2.calls + sqs.calls), peak, int(summary["enqueued"]))


def baseline_peak(fleet: int) -> PlannerRun:
    """The origin's unpaginated listing holds the whole fleet in memory at once (calls: 1 + one per instance)."""
    ec2 = StandInEc2(fleet=fleet)
    tracemalloc.start()
    listing = ec2.describe_instances([{"Name": "tag:Backup", "Values": ["nightly"]}], MaxResults=fleet + 1)
    ids = [i["InstanceId"] for r in listing["Reservations"] for i in r["Instances"]]
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    calls = {"ec2.DescribeInstances": 1 + len(ids), "sqs.SendMessage": len(ids)}
    return PlannerRun(fleet, calls, peak, len(ids))


def check_against_moto(fleet: int = 30) -> dict[str, Any]:
    """The same planner on moto and on the stand-ins built from moto's instances: same calls, same messages."""
    clock = Clock()
    with moto_account() as infra:
        client = boto3.client("ec2", region_name=REGION)
        run_instances(client, fleet, TAGS)
        run_instances(client, 3, {"Backup": "weekly"})
        described = client.describe_instances()["Reservations"]
        instances = [
            (i["InstanceId"], i["State"]["Name"], {t["Key"]: t["Value"] for t in i.get("Tags", [])})
            for r in described
            for i in r["Instances"]
        ]
        network = Network()
        with routed(network), installed(infra, clock):
            _plan(clock)
        on_moto = [_strip(m) for m in take_messages()]
        ec2, sqs = StandInEc2(instances=instances), StandInSqs(keep=True)
        with routed(Network(), {"ec2": ec2, "sqs": sqs}), installed(infra, clock):
            _plan(clock)
    on_stand_in = [json.loads(body) for body in sqs.bodies]
    moto_calls = dict(network.calls.counts)
    return {
        "instances": fleet,
        "same_messages": _key(on_moto) == _key(on_stand_in),
        "moto_calls": moto_calls,
        "stand_in_calls": dict(ec2.calls + sqs.calls),
        "same_calls": moto_calls == dict(ec2.calls + sqs.calls),
    }


def _strip(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _key(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(m, sort_keys=True) for m in messages)
