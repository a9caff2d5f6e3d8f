"""The cycle of a hub module backing up another account (examples/landing-zone): the AMI and snapshot events of a
spoke account never reach the hub's event bus, so the delayed check completes each backup instead of an event
(modules/ami-backup/README.md, "Cross-account and multi-region"). Measured as the module cycles of bench/calls.py
and bench/ebs.py, with no event delivered; the spoke's role sessions are not part of it (moto answers every call
in one account): `AssumeRole` is added by the cost model of bench/examples.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from aws_harness import REGION, run_instances, take_messages
from tests.support.moto_fidelity import faithful_aws

from . import ebs
from .calls import GENERATIONS, measured_day
from .cost import CycleUsage
from .driver import Driver, EbsDriver
from .harness import Clock, Network, installed, moto_account, routed
from .model import INPUTS_FILE, usage_of

KEY = "cross-account"
UNITS = 20  # instances (ami-backup) and volumes (ebs-snapshot, volume mode), as the same-account figures
SOURCE = (
    "bench/crossaccount.py: one cycle at steady state on moto made faithful, no AMI or snapshot event delivered "
    "(a spoke's events stay on its own bus): the delayed check completes every backup"
)


class CheckedAmiDriver(Driver):
    """ami-backup with no `available` event: the work items, then the delayed checks until the queue drains."""

    def day(self, after_plan: Callable[[], None] | None = None) -> None:
        self.plan()
        if after_plan is not None:
            after_plan()
        self.work_as_due(take_messages(), "create_image")
        self.drain(take_messages())


class CheckedEbsDriver(EbsDriver):
    """ebs-snapshot with no `EBS Snapshot Notification`: the snapshots complete in EC2, the checks find them."""

    def day(self, after_plan: Callable[[], None] | None = None) -> None:
        self.plan()
        if after_plan is not None:
            after_plan()
        creates = take_messages()
        self.work_as_due(creates, creates[0]["kind"] if creates else "create_snapshot")
        self.clock.advance(seconds=self.completion.total_seconds() + 1)
        self.drain(take_messages())


@dataclass(frozen=True)
class CrossAccountInputs:
    """Per-unit usage of one checked cycle of each hub module, and whether it left anything behind."""

    ami_backup: CycleUsage
    ebs_snapshot: CycleUsage
    leftovers: int  # AMIs or snapshots beyond the generations, pending ledger entries, work items left (0)
    source: str = SOURCE

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrossAccountInputs:
        return cls(
            ami_backup=CycleUsage(**data["ami_backup"]),
            ebs_snapshot=CycleUsage(**data["ebs_snapshot"]),
            leftovers=int(data["leftovers"]),
            source=str(data["source"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ami_cycle(units: int) -> tuple[CycleUsage, int]:
    clock, network = Clock(), Network()
    with (
        moto_account() as infra,
        faithful_aws(clock),
        routed(network),
        installed(infra, clock, OPS_GENERATIONS=str(GENERATIONS)),
    ):
        ec2 = boto3.client("ec2", region_name=REGION)
        run_instances(ec2, units, {"Backup": "nightly"})
        for _day in range(GENERATIONS):
            CheckedAmiDriver(clock).day()
            clock.advance(days=1)
        driver = CheckedAmiDriver(clock)
        planner, worker = measured_day(network, driver.day)
        images = ec2.describe_images(Owners=["self"])["Images"]
        leftovers = max(0, len(images) - units * GENERATIONS) + ebs._unfinished()
    usage = usage_of(planner, worker, driver.seen, units, deliveries_each=0, service_events="AMI state")
    return usage, leftovers


def _ebs_cycle(units: int) -> tuple[CycleUsage, int]:
    clock, network = Clock(), Network()
    env = {**ebs.ENVIRONMENT["volume"], "OPS_GENERATIONS": str(ebs.GENERATIONS)}
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True) as fidelity,
        routed(network),
        installed(infra, clock, module="ebs_snapshot", **env),
    ):
        ec2 = boto3.client("ec2", region_name=REGION)
        volumes = ebs.fleet(ec2, units // ebs.VOLUMES_PER_INSTANCE)
        first = clock.now
        for day in range(ebs.GENERATIONS):
            clock.now = first + timedelta(days=day)
            CheckedEbsDriver(clock, ec2, fidelity.snapshot_completion_time).day()
        clock.now = first + timedelta(days=ebs.GENERATIONS)
        driver = CheckedEbsDriver(clock, ec2, fidelity.snapshot_completion_time)
        planner, worker = measured_day(network, driver.day)
        leftovers = ebs._leaked(ec2, volumes, ebs.GENERATIONS) + ebs._unfinished()
    usage = usage_of(
        planner, worker, driver.seen, len(volumes), deliveries_each=0, service_events=ebs.SERVICE_EVENTS["volume"]
    )
    return usage, leftovers


def measure(units: int = UNITS) -> CrossAccountInputs:
    ami, ami_left = _ami_cycle(units)
    volumes, ebs_left = _ebs_cycle(units)
    return CrossAccountInputs(ami_backup=ami, ebs_snapshot=volumes, leftovers=ami_left + ebs_left)


def save_inputs(inputs: CrossAccountInputs, path: Path = INPUTS_FILE) -> None:
    """Adds these inputs to the committed file model.save_inputs writes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data[KEY] = inputs.as_dict()
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def load_inputs(path: Path = INPUTS_FILE) -> CrossAccountInputs:
    return CrossAccountInputs.from_dict(json.loads(path.read_text(encoding="utf-8"))[KEY])
