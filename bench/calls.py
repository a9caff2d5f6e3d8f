"""1. AWS calls per instance per daily cycle at steady state (N generations present), ours vs the baseline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from aws_harness import REGION, run_instances
from tests.support.moto_fidelity import faithful_aws

from ops_automation.core.events import format_time

from .baseline import Baseline
from .driver import Driver, Invocations
from .harness import Clock, Network, installed, moto_account, routed

GENERATIONS = 3
# Calls a retired AMI costs, apart from the cycle (what retention demands): the purge of its snapshots asks the
# Recycle Bin whether the AMI went there (a restorable AMI keeps them).
OURS_RETIREMENT = Counter(
    {
        "ec2.DeregisterImage": 1,
        "ec2.ListImagesInRecycleBin": 1,
        "ec2.DescribeImages": 1,
        "ec2.DescribeSnapshots": 1,
        "ec2.DeleteSnapshot": 1,
        "dynamodb.UpdateItem": 1,
        "sqs.SendMessage": 1,
    }
)
BASELINE_RETIREMENT = Counter({"ec2.DeregisterImage": 1, "ec2.DeleteSnapshot": 1})


@dataclass(frozen=True)
class CycleCalls:
    design: str
    instances: int
    planner: dict[str, int]  # one planner run
    worker: dict[str, int]  # the rest of the cycle, every instance
    per_instance_ec2: float  # worker calls per instance, besides deletions
    per_instance_all: float
    retired_per_instance: float
    leaked_snapshots: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OursCycle:
    calls: CycleCalls
    invocations: Invocations


def _per_instance(worker: Counter[str], retirement: Counter[str], retired: int, n: int) -> tuple[float, float]:
    cycle = worker - Counter({call: count * retired for call, count in retirement.items()})
    ec2 = sum(count for call, count in cycle.items() if call.startswith("ec2."))
    return ec2 / n, sum(cycle.values()) / n


def _snapshots_left(ec2: Any) -> int:
    images = ec2.describe_images(Owners=["self"])["Images"]
    used = {m["Ebs"]["SnapshotId"] for i in images for m in i.get("BlockDeviceMappings", []) if "Ebs" in m}
    snapshots = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    return len(snapshots - used)


def measured_day(network: Network, day: Callable[[Callable[[], None]], None]) -> tuple[Counter[str], Counter[str]]:
    """The calls of one cycle, split where `day` calls its mark: after the planner (or the origin's listing)."""
    network.calls.counts.clear()
    marks: list[Counter[str]] = []
    day(lambda: marks.append(Counter(network.calls.counts)))
    return marks[0], network.calls.counts - marks[0]


def measure_ours(n: int, generations: int = GENERATIONS) -> OursCycle:
    clock = Clock()
    network = Network()
    with (
        moto_account() as infra,
        faithful_aws(clock),
        routed(network),
        installed(infra, clock, OPS_GENERATIONS=str(generations)),
    ):
        ec2 = boto3.client("ec2", region_name=REGION)
        run_instances(ec2, n, {"Backup": "nightly"})
        for _day in range(generations):
            Driver(clock).day()
            clock.advance(days=1)
        driver = Driver(clock)
        planner, worker = measured_day(network, driver.day)
        retired = worker["ec2.DeregisterImage"]
        ec2_each, all_each = _per_instance(worker, OURS_RETIREMENT, retired, n)
        leaked = _snapshots_left(ec2)
    calls = CycleCalls("ours", n, dict(planner), dict(worker), ec2_each, all_each, retired / n, leaked)
    return OursCycle(calls, driver.seen)


def measure_baseline(n: int, generations: int = GENERATIONS) -> CycleCalls:
    clock = Clock()
    with moto_account() as infra, faithful_aws(clock):
        network = Network()
        baseline = Baseline(network, infra.queue_url, generations)
        ec2 = boto3.client("ec2", region_name=REGION)
        run_instances(ec2, n, {"Backup": "nightly"})
        for _day in range(generations):
            baseline.day(("Backup", "nightly"), clock.now.strftime("%Y%m%dT%H%M%SZ"))
            clock.advance(days=1)
        calls = network.calls
        calls.counts.clear()
        planned = baseline.plan(("Backup", "nightly"))
        planner = Counter(calls.counts)
        for instance_id in planned:
            baseline.back_up(instance_id, format_time(clock.now).replace(":", ""))
        worker = calls.counts - planner
        retired = worker["ec2.DeregisterImage"]
        ec2_each, all_each = _per_instance(worker, BASELINE_RETIREMENT, retired, n)
        leaked = _snapshots_left(ec2)
    return CycleCalls("baseline", n, dict(planner), dict(worker), ec2_each, all_each, retired / n, leaked)


def measure(n: int) -> tuple[OursCycle, CycleCalls]:
    return measure_ours(n), measure_baseline(n)
