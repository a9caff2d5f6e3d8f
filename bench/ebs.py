"""6. ebs-snapshot: AWS calls per volume (volume mode) and per instance set (instance mode) per daily cycle at steady
state, ours vs a baseline modelled on the origin design, and the cost model's inputs from them.

As examples/ebs-snapshot schedules it: daily (`cron(0 1 * * ? *)`), 3 generations, volumes by tag. One fleet serves
both modes: instances tagged `Snapshot = daily`, each with 2 data volumes tagged the same (and moto's root volume).
Volume mode targets the volume tags (every data volume); instance mode targets the instance tags with
`exclude_root_volume = true`, so each instance's set is its 2 data volumes. Steady state: 3 daily cycles first, then
the measured cycle, which also retires one generation per volume (set)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

import boto3
from aws_harness import LEDGER_TABLE, REGION, Clock, run_instances, take_messages
from tests.support.moto_fidelity import faithful_aws

from ops_automation.core import tagging

from .baseline import EbsBaseline
from .calls import measured_day
from .driver import EbsDriver
from .harness import Network, installed, moto_account, routed
from .model import ModeInputs, baseline_usage, usage_of

GENERATIONS = 3  # examples/ebs-snapshot
TAGS = {"Snapshot": "daily"}  # examples/ebs-snapshot: volume_tags
VOLUMES_PER_INSTANCE = 2
INSTANCES = 10  # 20 volumes: 20 units in volume mode, 10 sets in instance mode
MODES = ("volume", "instance")
UNITS = {"volume": "volume", "instance": "instance set"}
SERVICE_EVENTS = {"volume": "EBS Snapshot Notification", "instance": "EBS Multi-Volume Snapshots Completion"}
ENVIRONMENT = {
    "volume": {"OPS_VOLUME_TAGS": json.dumps(TAGS)},
    "instance": {
        "OPS_SNAPSHOT_MODE": "instance",
        "OPS_VOLUME_TAGS": "{}",
        "OPS_TARGET_TAGS": json.dumps(TAGS),
        "OPS_EXCLUDE_ROOT_VOLUME": "true",
    },
}


@dataclass(frozen=True)
class EbsCycle:
    """One measured cycle of one design in one mode."""

    design: str
    mode: str
    unit: str
    units: int
    volumes: int
    planner: dict[str, int]  # ours: the planner run; the baseline: its listing of the targets
    worker: dict[str, int]  # the rest of the cycle, every unit
    ec2_each: float  # every EC2 call of the cycle (the planner's included) per unit
    other_each: float  # every other AWS call of the cycle per unit
    retired_each: float  # snapshots deleted per unit: one generation at steady state
    leaked_snapshots: int  # snapshots beyond `generations` per volume after the cycle (0)
    unfinished: int  # ours: ledger entries still pending and work items left on the queue (0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def calls_each(self) -> dict[str, float]:
        return {"ec2": round(self.ec2_each, 4), "other": round(self.other_each, 4)}


def fleet(ec2: Any, instances: int) -> list[str]:
    """Tagged instances with their tagged data volumes attached; returns the data volumes."""
    volumes: list[str] = []
    for instance_id in run_instances(ec2, instances, TAGS):
        for index in range(VOLUMES_PER_INSTANCE):
            volume = ec2.create_volume(
                AvailabilityZone=f"{REGION}a",
                Size=8,
                TagSpecifications=[{"ResourceType": "volume", "Tags": tagging.tag_list(TAGS)}],
            )["VolumeId"]
            ec2.attach_volume(VolumeId=volume, InstanceId=instance_id, Device=f"/dev/sd{chr(ord('f') + index)}")
            volumes.append(volume)
    return volumes


def _leaked(ec2: Any, volumes: list[str], generations: int) -> int:
    per_volume = Counter(s["VolumeId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"])
    return sum(max(0, per_volume[v] - generations) for v in volumes) + sum(
        n for v, n in per_volume.items() if v not in volumes
    )


def _unfinished() -> int:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    return sum(1 for item in items if item["state"]["S"] == "pending") + len(take_messages())


def _cycle(
    design: str, mode: str, planner: Counter[str], worker: Counter[str], volumes: int, leaked: int, unfinished: int
) -> EbsCycle:
    units = volumes if mode == "volume" else volumes // VOLUMES_PER_INSTANCE
    every = planner + worker
    ec2 = sum(n for call, n in every.items() if call.startswith("ec2."))
    deleted = worker["ec2.DeleteSnapshot"] / (1 if mode == "volume" else VOLUMES_PER_INSTANCE)
    return EbsCycle(
        design=design,
        mode=mode,
        unit=UNITS[mode],
        units=units,
        volumes=volumes,
        planner=dict(sorted(planner.items())),
        worker=dict(sorted(worker.items())),
        ec2_each=ec2 / units,
        other_each=(sum(every.values()) - ec2) / units,
        retired_each=deleted / units,
        leaked_snapshots=leaked,
        unfinished=unfinished,
    )


def measure_ours(mode: str, instances: int = INSTANCES, generations: int = GENERATIONS) -> tuple[EbsCycle, ModeInputs]:
    clock = Clock()
    network = Network()
    env = {**ENVIRONMENT[mode], "OPS_GENERATIONS": str(generations)}
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True) as fidelity,
        routed(network),
        installed(infra, clock, module="ebs_snapshot", **env),
    ):
        ec2 = boto3.client("ec2", region_name=REGION)  # the bench's own: not counted
        volumes = fleet(ec2, instances)
        first = clock.now

        def driver() -> EbsDriver:
            return EbsDriver(clock, ec2, fidelity.snapshot_completion_time)

        for day in range(generations):
            clock.now = first + timedelta(days=day)
            driver().day()
        clock.now = first + timedelta(days=generations)
        measured = driver()
        planner, worker = measured_day(network, measured.day)
        cycle = _cycle("ours", mode, planner, worker, len(volumes), _leaked(ec2, volumes, generations), _unfinished())
    usage = usage_of(
        planner, worker, measured.seen, cycle.units, deliveries_each=1, service_events=SERVICE_EVENTS[mode]
    )
    inputs = ModeInputs(
        mode=mode,
        unit=UNITS[mode],
        volumes_per_unit=1 if mode == "volume" else VOLUMES_PER_INSTANCE,
        units_measured=cycle.units,
        calls_each={"ours": cycle.calls_each()},
        ours=usage,
        origin=usage,  # replaced by `measure`
    )
    return cycle, inputs


def measure_baseline(mode: str, instances: int = INSTANCES, generations: int = GENERATIONS) -> EbsCycle:
    clock = Clock()
    with moto_account(), faithful_aws(clock):
        network = Network()
        baseline = EbsBaseline(network, generations)
        ec2 = boto3.client("ec2", region_name=REGION)
        volumes = fleet(ec2, instances)
        tag = next(iter(TAGS.items()))
        first = clock.now
        for n in range(generations):
            clock.now = first + timedelta(days=n)
            baseline.day(mode, tag, _request_date(clock))
        clock.now = first + timedelta(days=generations)
        planner, worker = measured_day(network, lambda mark: baseline.day(mode, tag, _request_date(clock), mark))
        leaked = _leaked(ec2, volumes, generations)
    return _cycle("baseline", mode, planner, worker, len(volumes), leaked, 0)


def _request_date(clock: Clock) -> str:
    return clock.now.strftime("%Y%m%d%H%M")  # the origin's RequestDate tag


def measure(instances: int = INSTANCES) -> tuple[dict[str, dict[str, EbsCycle]], dict[str, ModeInputs]]:
    """Both modes, both designs: the cycles, and the cost model's inputs per mode."""
    cycles: dict[str, dict[str, EbsCycle]] = {}
    inputs: dict[str, ModeInputs] = {}
    for mode in MODES:
        ours, mine = measure_ours(mode, instances)
        base = measure_baseline(mode, instances)
        cycles[mode] = {"ours": ours, "baseline": base}
        origin = baseline_usage(
            base.planner,
            base.worker,
            base.units,
            mine.ours.log_bytes_each,  # the origin logged as much per unit: modelled at ours
            checker=False,
            service_events=SERVICE_EVENTS[mode],
        )
        inputs[mode] = replace(mine, calls_each={"ours": ours.calls_each(), "origin": base.calls_each()}, origin=origin)
    return cycles, inputs
