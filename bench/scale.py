"""15. Scale (issue 14): AWS calls per source per cycle of every module at 10, 100, 1,000 and 10,000 sources, ours
next to a naive baseline modelled on the origin design, and the peak memory of every function at 10,000 sources.

Calls. On moto made faithful (tests/support/moto_fidelity.py) at `MOTO_FLEETS`: one full cycle of each module at
steady state, by the module's own bench (bench/calls.py, ebs.py, cleanup.py, copy.py, scheduler.py, runcommand.py),
the baseline on the same moto in the same run (bench/baseline.py's, and `OriginCopy`, `OriginScheduler`,
`OriginRunCommand` here). At 1,000 and 10,000 a full cycle on moto is out of reach in the time, so those rows are
COMPOSED, and say so: the part that depends on the fleet's size (ours: the planner's or sweeper's listing and
fan-out; the baseline: its one unpaginated listing) measured at that size on the stand-ins of bench/standins.py,
checked against moto in the same run (same calls, same messages); plus the per-source calls of the rest of the
cycle measured on moto at `SAMPLE` sources, times the fleet.

Memory. Every function the modules' HCL deploys (`FUNCTIONS`): tracemalloc's peak during one invocation, and the
interpreter's RSS after importing the handler (a fresh interpreter), against the 256 MB the modules give a function.
Planners and the sweeper run at 10,000 sources on the stand-ins; the workers and the restore planners, whose memory
is one batch of records (not the fleet), are measured on the moto cycles (their peak then includes moto's own
in-process allocations: an upper bound).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from multiprocessing import get_context
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
from aws_harness import REGION, Clock, FakeContext, run_instances, take_messages
from tests.support.moto_fidelity import faithful_aws, fast_tags

from ops_automation.ami_backup import handlers as ami_handlers
from ops_automation.core.clients import ClientFactory
from ops_automation.core.events import format_time
from ops_automation.deregister_cleanup import handlers as cleanup_handlers
from ops_automation.ebs_snapshot import handlers as ebs_handlers
from ops_automation.instance_scheduler import handlers as scheduler_handlers
from ops_automation.snapshot_copy import handlers as copy_handlers
from ops_automation.ssm_runcommand import handlers as runcommand_handlers

from . import ROOT
from . import calls as ami_bench
from . import cleanup as cleanup_bench
from . import copy as copy_bench
from . import ebs as ebs_bench
from . import runcommand as runcommand_bench
from . import scheduler as scheduler_bench
from .baseline import ADAPTIVE
from .driver import captured
from .harness import Network, installed, moto_account, routed
from .standins import Catalogue, IdMap, StandInSqs

FLEETS = (10, 100, 1_000, 10_000)
MOTO_FLEETS = (10,)  # full cycles on moto; the sample whose per-source calls compose the larger fleets' rows
STAND_IN_GROUP = 10  # sources of the moto world a stand-in is built from (and checked against)
MEMORY_FLEET = 10_000
TRACED_FROM = 1_000  # the listings' memory is measured at these fleets too: how it grows with the fleet
LAMBDA_MB = 256  # modules/internal: every function's memory_size
SMOKE_FLEETS = (10,)
PROCESSES = 3  # modules measured side by side in the full run
RESULTS = ROOT / "bench" / "results" / "scale.json"
MODULES = ("ami-backup", "ebs-snapshot", "deregister-cleanup", "snapshot-copy", "instance-scheduler", "ssm-runcommand")
UNITS = {
    "ami-backup": "instance",
    "ebs-snapshot": "volume",
    "deregister-cleanup": "AMI deregistered that day (20 snapshots swept per AMI)",
    "snapshot-copy": "snapshot copied (1 destination)",
    "instance-scheduler": "instance (its stop and start slots)",
    "ssm-runcommand": "instance (one nightly slot, tag-targeted)",
}
# Every function of the modules' HCL: (module, function, handler module, handler).
FUNCTIONS: tuple[tuple[str, str, ModuleType, str], ...] = (
    ("ami-backup", "planner", ami_handlers, "plan_handler"),
    ("ami-backup", "worker", ami_handlers, "work_handler"),
    ("ami-backup", "restore", ami_handlers, "restore_handler"),
    ("ebs-snapshot", "planner", ebs_handlers, "plan_handler"),
    ("ebs-snapshot", "worker", ebs_handlers, "work_handler"),
    ("ebs-snapshot", "restore", ebs_handlers, "restore_handler"),
    ("deregister-cleanup", "sweeper", cleanup_handlers, "sweep_handler"),
    ("deregister-cleanup", "worker", cleanup_handlers, "work_handler"),
    ("snapshot-copy", "planner", copy_handlers, "plan_handler"),
    ("snapshot-copy", "worker", copy_handlers, "work_handler"),
    ("instance-scheduler", "planner (start, stop)", scheduler_handlers, "plan_handler"),
    ("instance-scheduler", "worker", scheduler_handlers, "work_handler"),
    ("ssm-runcommand", "planner", runcommand_handlers, "plan_handler"),
    ("ssm-runcommand", "worker", runcommand_handlers, "work_handler"),
)
Counts = Counter[str]


# ---------------------------------------------------------------------------------------------------------------
# Peak memory of handler invocations
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Peaks:
    """tracemalloc's peak per handler invocation, the largest per handler (bytes)."""

    by_handler: dict[str, int] = field(default_factory=dict)

    def wrap(self, name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def traced(event: Any, context: Any) -> Any:
            tracemalloc.start()
            tracemalloc.reset_peak()
            try:
                return handler(event, context)
            finally:
                _current, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                self.by_handler[name] = max(self.by_handler.get(name, 0), peak)

        return traced

    @contextmanager
    def watching(self, module: ModuleType, handler_names: tuple[str, ...]) -> Iterator[None]:
        with ExitStack() as stack:
            for name in handler_names:
                key = f"{module.__name__}.{name}"
                stack.enter_context(mock.patch.object(module, name, self.wrap(key, getattr(module, name))))
            yield


# ---------------------------------------------------------------------------------------------------------------
# Baselines modelled on the origin's functions (uzresk/aws-auto-operations-using-lambda) that bench/baseline.py lacks
# ---------------------------------------------------------------------------------------------------------------


def _unpaginated_ids(ec2: Any, tags: Mapping[str, str]) -> list[str]:
    """The naive listing: one DescribeInstances, no MaxResults (EC2 answers every match in one response)."""
    listing = ec2.describe_instances(Filters=[{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()])
    return [i["InstanceId"] for r in listing["Reservations"] for i in r["Instances"]]


@dataclass
class OriginScheduler:
    """The origin's instance start/stop functions (instance/InstanceOperation.java, Start/Stop): per instance in
    turn, one DescribeInstances for its state, Start/StopInstances, CreateQueue + SendMessage of a check request; a
    per-minute checker receives the requests (10 a receive) and per request calls DescribeInstances, and once the
    state is reached CreateQueue + DeleteMessage. The origin took the instance ids in its event; the naive model
    lists the tagged instances once, unpaginated."""

    network: Network
    queue_url: str
    ec2: Any = field(init=False)
    sqs: Any = field(init=False)

    def __post_init__(self) -> None:
        self.ec2 = self.network.client("ec2", config=ADAPTIVE)
        self.sqs = self.network.client("sqs", config=ADAPTIVE)

    def act(self, action: str, ids: list[str]) -> None:
        for instance_id in ids:
            state = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
            wanted_from = "stopped" if action == "start" else "running"
            if state["State"]["Name"] == wanted_from:
                verb = self.ec2.start_instances if action == "start" else self.ec2.stop_instances
                verb(InstanceIds=[instance_id])
            queue = self.sqs.create_queue(QueueName=self.queue_url.rsplit("/", 1)[1])["QueueUrl"]
            self.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"instanceId": instance_id}))

    def check(self, action: str) -> int:
        """One checker run; returns the requests still waiting."""
        wanted = "running" if action == "start" else "stopped"
        waiting = 0
        while True:
            received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = received.get("Messages", [])
            if not messages:
                return waiting
            for message in messages:
                instance_id = json.loads(message["Body"])["instanceId"]
                found = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
                if found["State"]["Name"] == wanted:
                    queue = self.sqs.create_queue(QueueName=self.queue_url.rsplit("/", 1)[1])["QueueUrl"]
                    self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                else:
                    waiting += 1


@dataclass
class OriginRunCommand:
    """The origin's run-command function (run-command/RunScriptFunction.java): one SendCommand with the instance ids
    of its event, no tracking of the invocations. The naive model lists the tagged instances once, unpaginated, and
    sends SendCommand per 50 ids (SendCommand's documented maximum: the origin's single call is refused past it)."""

    network: Network
    ssm: Any = field(init=False)
    ec2: Any = field(init=False)

    def __post_init__(self) -> None:
        self.ec2 = self.network.client("ec2", config=ADAPTIVE)
        self.ssm = self.network.client("ssm", config=ADAPTIVE)

    def listing(self) -> list[str]:
        return _unpaginated_ids(self.ec2, runcommand_bench.TAGS)

    def run(self, ids: list[str]) -> None:
        for start in range(0, len(ids), 50):
            self.ssm.send_command(
                InstanceIds=ids[start : start + 50],
                DocumentName="AWS-RunShellScript",
                Parameters={"commands": ["/usr/local/bin/db-online-backup"]},
                OutputS3BucketName=runcommand_bench.RUN_OUTPUT_BUCKET,
                OutputS3KeyPrefix="run-command",
            )


ORIGIN_COPY_TAG = "copy-snapshot"


@dataclass
class OriginCopy:
    """The origin's ebs-copy-snapshot function (EBSCopySnapshotFunction.copySnapshotFromVolumeId), per volume in
    turn: DescribeSnapshots of the volume's snapshots (unpaginated) for the latest, CopySnapshot, DescribeSnapshots of
    the source (its tags), CreateTags on the copy, DescribeSnapshots of the copy (its VolumeId tag), DescribeSnapshots
    of the volume's copies and DeleteSnapshot of the completed ones beyond the generations. The origin's copy-side
    calls use the source region's client (on AWS its copy-side describes would not find the copy): modelled in the
    destination region."""

    network: Network
    destination: str
    generations: int
    ec2: Any = field(init=False)
    dest: Any = field(init=False)

    def __post_init__(self) -> None:
        self.ec2 = self.network.client("ec2", config=ADAPTIVE)
        self.dest = self.network.attach(boto3.client("ec2", region_name=self.destination, config=ADAPTIVE))

    def copy_volume(self, volume_id: str) -> None:
        filters = [
            {"Name": "volume-id", "Values": [volume_id]},
            {"Name": "tag:VolumeId", "Values": [volume_id]},
            {"Name": "tag:BackupType", "Values": ["snapshot"]},
        ]
        snapshots = sorted(self.ec2.describe_snapshots(Filters=filters)["Snapshots"], key=lambda s: s["StartTime"])
        source = snapshots[-1]["SnapshotId"]
        copied = self.dest.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Description=f"[Copied {source}]")
        copy_id = copied["SnapshotId"]
        tags = self.ec2.describe_snapshots(SnapshotIds=[source])["Snapshots"][0].get("Tags", [])
        extra = [{"Key": "SourceSnapshotId", "Value": source}, {"Key": "BackupType", "Value": ORIGIN_COPY_TAG}]
        kept = [t for t in tags if t["Key"] not in ("SourceSnapshotId", "BackupType")]
        self.dest.create_tags(Resources=[copy_id], Tags=kept + extra)
        volume = next(
            t["Value"]
            for t in self.dest.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0]["Tags"]
            if t["Key"] == "VolumeId"
        )
        lineage = [
            {"Name": "tag:VolumeId", "Values": [volume]},
            {"Name": "tag:BackupType", "Values": [ORIGIN_COPY_TAG]},
        ]
        copies = sorted(self.dest.describe_snapshots(Filters=lineage)["Snapshots"], key=lambda s: s["StartTime"])
        for snapshot in copies[: max(0, len(copies) - self.generations)]:
            if snapshot["State"] == "completed":
                self.dest.delete_snapshot(SnapshotId=snapshot["SnapshotId"])


# ---------------------------------------------------------------------------------------------------------------
# One full cycle per module on moto: (listing, rest) for ours and for the baseline
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """One measured cycle of one design. `listing`: the part that depends on the fleet's size (ours: the planner or
    sweeper run; the baseline: its one unpaginated listing); `rest`: every other call of the cycle."""

    module: str
    design: str
    sources: int
    backend: str
    listing: dict[str, int]
    rest: dict[str, int]

    def every(self) -> Counts:
        return Counter(self.listing) + Counter(self.rest)

    def each(self) -> dict[str, float]:
        every = self.every()
        ec2 = sum(n for call, n in every.items() if call.startswith("ec2."))
        return {"ec2": ec2 / self.sources, "other": (sum(every.values()) - ec2) / self.sources}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "each": {k: round(v, 4) for k, v in self.each().items()}}


def _split_listing(calls: Counts, listing_call: str) -> tuple[Counts, Counts]:
    """The baseline's one listing call apart from its per-target calls."""
    listing = Counter({listing_call: 1}) if calls[listing_call] else Counter()
    return listing, calls - listing


def ami_cycles(n: int, peaks: Peaks) -> tuple[Cycle, Cycle]:
    with peaks.watching(ami_handlers, ("work_handler",)):
        ours = ami_bench.measure_ours(n).calls
    base = ami_bench.measure_baseline(n)
    listing, per_target = _split_listing(Counter(base.planner), "ec2.DescribeInstances")
    return (
        Cycle("ami-backup", "ours", n, "moto", dict(ours.planner), dict(ours.worker)),
        Cycle("ami-backup", "baseline", n, "moto", dict(listing), dict(per_target + Counter(base.worker))),
    )


def ebs_cycles(n: int, peaks: Peaks) -> tuple[Cycle, Cycle]:
    instances = max(1, n // ebs_bench.VOLUMES_PER_INSTANCE)
    with peaks.watching(ebs_handlers, ("work_handler",)):
        ours, _inputs = ebs_bench.measure_ours("volume", instances)
    base = ebs_bench.measure_baseline("volume", instances)
    listing, per_target = _split_listing(Counter(base.planner), "ec2.DescribeVolumes")
    return (
        Cycle("ebs-snapshot", "ours", ours.units, "moto", ours.planner, ours.worker),
        Cycle("ebs-snapshot", "baseline", base.units, "moto", dict(listing), dict(per_target + Counter(base.worker))),
    )


def cleanup_cycles(n: int, peaks: Peaks) -> tuple[Cycle, Cycle]:
    with peaks.watching(cleanup_handlers, ("work_handler", "sweep_handler")):
        ours = cleanup_bench.measure_ours_day("at once", n)
    origin = cleanup_bench.measure_origin_day("at once", n)
    return (
        Cycle("deregister-cleanup", "ours", n, "moto", ours.sweep_calls, ours.calls),
        Cycle("deregister-cleanup", "baseline", n, "moto", {}, origin.calls),
    )


def copy_cycles(n: int, peaks: Peaks) -> tuple[Cycle, Cycle]:
    with peaks.watching(copy_handlers, ("work_handler",)):
        day = copy_bench.measure_day(False, n, 1)
    return (
        Cycle("snapshot-copy", "ours", n, "moto", day.catch_up, day.calls),
        origin_copy_cycle(n),
    )


def origin_copy_cycle(n: int, generations: int = copy_bench.GENERATIONS) -> Cycle:
    """The origin's copy of every volume's daily snapshot, `generations` days first (steady state), then the measured
    day. Its snapshots are made and tagged as the origin's ebs-snapshot function tags them (setup: not counted).
    Measured without the 20-pending-copies limit of the fidelity (E27): past 20 volumes the origin's sequential
    copies would be refused `ResourceLimitExceeded` (logged, no copy)."""
    clock = Clock()
    network = Network()
    destination = copy_bench.DESTINATION_REGIONS[0]
    with moto_account(), faithful_aws(clock) as fidelity, fast_tags(), copy_bench.fast_tag_filters():
        fidelity.concurrent_snapshot_copies = 10**9
        ec2 = boto3.client("ec2", region_name=REGION)
        volumes = [ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"] for _ in range(n)]
        origin = OriginCopy(network, destination, generations)
        for _day in range(generations + 1):
            for volume in volumes:
                tags = [{"Key": "VolumeId", "Value": volume}, {"Key": "BackupType", "Value": "snapshot"}]
                ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
            clock.advance(hours=1)
            network.calls.counts.clear()
            for volume in volumes:
                origin.copy_volume(volume)
            clock.advance(days=1)
        calls = Counter(network.calls.counts)
    return Cycle("snapshot-copy", "baseline", n, "moto", {}, dict(calls))


def scheduler_cycles(n: int, peaks: Peaks) -> tuple[Cycle, Cycle]:
    with peaks.watching(scheduler_handlers, ("work_handler",)):
        runs, _foreign, _log = scheduler_bench.measure_fleet(n)
    planner: Counts = Counter()
    rest: Counts = Counter()
    for run in runs.values():
        planner.update(run.planner)
        for calls in run.worker.values():
            rest.update(calls)
    return (
        Cycle("instance-scheduler", "ours", n, "moto", dict(planner), dict(rest)),
        origin_scheduler_cycle(n),
    )


def origin_scheduler_cycle(n: int) -> Cycle:
    """A stop and a start slot first (steady state), then the measured stop and start slots: the listing, the acts,
    then the per-minute checker until every request is done."""
    network, clock = Network(), Clock(scheduler_bench.FIRST_STOP - timedelta(days=1))
    listing: Counts = Counter()
    rest: Counts = Counter()
    with scheduler_bench.scheduler_account(Network(), clock) as infra:
        ec2 = boto3.client("ec2", region_name=REGION)
        run_instances(ec2, n, scheduler_bench.TAGS)
        origin = OriginScheduler(network, infra.queue_url)
        slots = [("stop", False), ("start", False), ("stop", True), ("start", True)]
        for action, measured in slots:
            network.calls.counts.clear()
            ids = _unpaginated_ids(origin.ec2, scheduler_bench.TAGS)
            listed = Counter(network.calls.counts)
            origin.act(action, ids)
            for _minute in range(30):
                clock.advance(minutes=1)
                if origin.check(action) == 0:
                    break
            else:
                raise RuntimeError("the origin's checker never finished")
            if measured:
                listing.update(listed)
                rest.update(Counter(network.calls.counts) - listed)
            clock.advance(hours=12)
    return Cycle("instance-scheduler", "baseline", n, "moto", dict(listing), dict(rest))


def runcommand_cycles(n: int, peaks: Peaks) -> tuple[Cycle, Cycle]:
    with peaks.watching(runcommand_handlers, ("plan_handler", "work_handler")):
        run = runcommand_bench.measure_fleet("tags", n)
    rest: Counts = Counter()
    for calls in run.worker.values():
        rest.update(calls)
    return (
        Cycle("ssm-runcommand", "ours", n, "moto", dict(run.planner), dict(rest)),
        origin_runcommand_cycle(n),
    )


def origin_runcommand_cycle(n: int) -> Cycle:
    network, clock = Network(), Clock(runcommand_bench.FIRST_SLOT)
    with runcommand_bench.runcommand_account(Network(), clock, "tags", n):
        origin = OriginRunCommand(network)
        ids = origin.listing()
        listed = Counter(network.calls.counts)
        origin.run(ids)
        rest = Counter(network.calls.counts) - listed
    return Cycle("ssm-runcommand", "baseline", n, "moto", dict(listed), dict(rest))


MOTO_CYCLES: dict[str, Callable[[int, Peaks], tuple[Cycle, Cycle]]] = {
    "ami-backup": ami_cycles,
    "ebs-snapshot": ebs_cycles,
    "deregister-cleanup": cleanup_cycles,
    "snapshot-copy": copy_cycles,
    "instance-scheduler": scheduler_cycles,
    "ssm-runcommand": runcommand_cycles,
}


# ---------------------------------------------------------------------------------------------------------------
# The part that depends on the fleet's size, on the stand-ins, checked against moto
# ---------------------------------------------------------------------------------------------------------------

Invoke = Callable[[], dict[str, Any]]


def _invoke(handler: Callable[..., Any], event: dict[str, Any]) -> dict[str, Any]:
    with captured(io.StringIO()):
        return dict(handler(event, FakeContext()))


@contextmanager
def ami_world(n: int) -> Iterator[Invoke]:
    """`n` instances of the policy (and 3 of another schedule, filtered out); the planner at the slot."""
    clock = Clock()
    with moto_account() as infra, installed(infra, clock):
        ec2 = boto3.client("ec2", region_name=REGION)
        run_instances(ec2, n, {"Backup": "nightly"})
        run_instances(ec2, 3, {"Backup": "weekly"})
        yield lambda: _invoke(ami_handlers.plan_handler, {"scheduled_time": format_time(clock.now)})


@contextmanager
def ebs_world(n: int) -> Iterator[Invoke]:
    """`n` tagged data volumes, 2 per instance (volume mode, examples/ebs-snapshot), and the instances' untagged root
    volumes; the planner at the slot."""
    clock = Clock()
    env = ebs_bench.ENVIRONMENT["volume"]
    with moto_account() as infra, installed(infra, clock, module="ebs_snapshot", **env):
        ebs_bench.fleet(boto3.client("ec2", region_name=REGION), max(1, n // ebs_bench.VOLUMES_PER_INSTANCE))
        yield lambda: _invoke(ebs_handlers.plan_handler, {"scheduled_time": format_time(clock.now)})


@contextmanager
def cleanup_world(n: int) -> Iterator[Invoke]:
    """Steady state for `n` AMIs deregistered a day: the account holds 20 CreateImage snapshots of registered AMIs per
    source (the day's were purged by their events), past the grace period; the daily sweep."""
    with cleanup_bench.cleanup_account(Network()) as (account, driver):
        account.images(n * cleanup_bench.SNAPSHOTS_PER_SOURCE)
        account.clock.now += cleanup_bench.GRACE
        yield driver.sweep


@contextmanager
def scheduler_world(n: int) -> Iterator[Invoke]:
    """`n` running instances of the policy (and one `always-on`); a cycle's two planner runs, the stop slot's and
    the start slot's (the instances are still running: it lists them all and starts none)."""
    clock = Clock(scheduler_bench.FIRST_STOP)
    with scheduler_bench.scheduler_account(Network(), clock):
        ec2 = boto3.client("ec2", region_name=REGION)
        run_instances(ec2, n, scheduler_bench.TAGS)
        run_instances(ec2, 1, {"Schedule": "always-on"})

        def both() -> dict[str, Any]:
            stop = {"scheduled_time": format_time(clock.now), "action": "stop"}
            start = {"scheduled_time": format_time(clock.now + timedelta(hours=12)), "action": "start"}
            _invoke(scheduler_handlers.plan_handler, stop)
            return _invoke(scheduler_handlers.plan_handler, start)

        yield both


@contextmanager
def copy_world(n: int) -> Iterator[Invoke]:
    """Steady state (bench/copy.py `copy_account`): `n` volumes, 7 copies of each in the destination, the sources
    still in the source region; the scheduled catch-up finds nothing missing."""
    with copy_bench.copy_account(Network(), False, n, 1) as (account, _history):
        yield lambda: _invoke(copy_handlers.plan_handler, {"scheduled_time": format_time(account.clock.now)})


@contextmanager
def by_region(network: Network, stand_ins: Mapping[str, Any]) -> Iterator[None]:
    """As harness.routed, with a stand-in per service and region (`"ec2@us-west-1"`) where a function lists more
    than one region; other services and regions go through `network` to moto."""
    original = ClientFactory.client

    def client(self: ClientFactory, service: str, region: str | None = None, *args: Any, **kwargs: Any) -> Any:
        key = f"{service}@{region or self.default_region}"
        if key in stand_ins:
            return stand_ins[key]
        if service in stand_ins:
            return stand_ins[service]
        return network.attach(original(self, service, region, *args, **kwargs))

    with mock.patch.object(ClientFactory, "client", client):
        yield


@dataclass(frozen=True)
class ListingWorld:
    module: str
    function: str  # the handler measured at the fleet's size
    build: Callable[[int], Any]  # a context manager: the moto world of n sources, yielding the invocation
    listings: dict[str, dict[str, Any]]  # what the stand-in serves: operation -> the bench's own describe-all
    baseline_listing: tuple[str, dict[str, Any]] | None  # the baseline's one unpaginated call
    regions: tuple[str, ...] = (REGION,)  # the regions listed (each its own catalogue)
    baseline_runs: int = 1  # the baseline's listings per cycle (instance-scheduler: one per slot)


INSTANCES_OF = {"describe_instances": {}}
WORLDS: dict[str, ListingWorld] = {
    "ami-backup": ListingWorld(
        "ami-backup",
        "ops_automation.ami_backup.handlers.plan_handler",
        ami_world,
        INSTANCES_OF,
        ("describe_instances", {"Filters": [{"Name": "tag:Backup", "Values": ["nightly"]}]}),
    ),
    "ebs-snapshot": ListingWorld(
        "ebs-snapshot",
        "ops_automation.ebs_snapshot.handlers.plan_handler",
        ebs_world,
        {"describe_volumes": {}},
        ("describe_volumes", {"Filters": [{"Name": "tag:Snapshot", "Values": ["daily"]}]}),
    ),
    "deregister-cleanup": ListingWorld(
        "deregister-cleanup",
        "ops_automation.deregister_cleanup.handlers.sweep_handler",
        cleanup_world,
        {
            "describe_snapshots": {"OwnerIds": ["self"]},
            "describe_images": {"Owners": ["self"], "IncludeDisabled": True},
            "list_images_in_recycle_bin": {},
        },
        None,  # the origin has no sweep: it acts on each CloudTrail event
    ),
    "instance-scheduler": ListingWorld(
        "instance-scheduler",
        "ops_automation.instance_scheduler.handlers.plan_handler",
        scheduler_world,
        INSTANCES_OF,
        ("describe_instances", {"Filters": [{"Name": "tag:Schedule", "Values": ["office-hours"]}]}),
        baseline_runs=2,
    ),
    "snapshot-copy": ListingWorld(
        "snapshot-copy",
        "ops_automation.snapshot_copy.handlers.plan_handler",
        copy_world,
        {"describe_snapshots": {"OwnerIds": ["self"]}},
        None,  # the origin has no catch-up: it copies what its own run lists
        (REGION, copy_bench.DESTINATION_REGIONS[0]),
    ),
}


def described(listings: Mapping[str, Mapping[str, Any]], region: str = REGION) -> dict[str, list[dict[str, Any]]]:
    """Every item of each listing as moto describes it (the bench's own client: not counted)."""
    ec2 = boto3.client("ec2", region_name=region)
    items: dict[str, list[dict[str, Any]]] = {}
    for operation, kwargs in listings.items():
        found: list[dict[str, Any]] = []
        for page in ec2.get_paginator(operation).paginate(**kwargs):
            if operation == "describe_instances":
                found += [i for r in page["Reservations"] for i in r["Instances"]]
            else:
                found += page[
                    {"describe_volumes": "Volumes", "describe_snapshots": "Snapshots"}.get(operation, "Images")
                ]
        items[operation] = [{k: v for k, v in item.items() if k != "ResponseMetadata"} for item in found]
    return items


def _bodies(bodies: list[str]) -> list[str]:
    return sorted(json.dumps(json.loads(body), sort_keys=True) for body in bodies)


def _moto_bodies(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in m.items() if not k.startswith("_")}, sort_keys=True) for m in messages)


def catalogues(world: ListingWorld, copies: int = 1) -> dict[str, Catalogue]:
    """One catalogue per region the world lists, of moto's items (cloned `copies` times)."""
    ids = IdMap()  # one for every region: a copy's tags name its source in the other region
    made = {f"ec2@{region}": Catalogue(described(world.listings, region), copies, ids=ids) for region in world.regions}
    if len(made) == 1:
        return {"ec2": next(iter(made.values()))}
    return made


def _calls(stand_ins: Mapping[str, Any], others: Network) -> dict[str, int]:
    total: Counts = Counter(others.calls.counts)
    for stand_in in stand_ins.values():
        total.update(stand_in.calls)
    return dict(sorted(total.items()))


def check_stand_in(world: ListingWorld, sources: int = STAND_IN_GROUP) -> dict[str, Any]:
    """The same invocation on moto, then on the stand-ins built from moto's items: same calls, same messages."""
    with world.build(sources) as invoke:
        stand_ins: dict[str, Any] = dict(catalogues(world))
        take_messages()
        network = Network()
        with routed(network):
            invoke()
        on_moto = _moto_bodies(take_messages())
        sqs, others = StandInSqs(keep=True), Network()
        stand_ins["sqs"] = sqs
        with by_region(others, stand_ins):
            invoke()
    moto_calls = dict(sorted(network.calls.counts.items()))
    stand_in_calls = _calls(stand_ins, others)
    return {
        "module": world.module,
        "sources": sources,
        "moto_calls": moto_calls,
        "stand_in_calls": stand_in_calls,
        "same_calls": moto_calls == stand_in_calls,
        "messages": len(on_moto),
        "same_messages": on_moto == _bodies(sqs.bodies),
    }


@dataclass(frozen=True)
class ListingRun:
    module: str
    sources: int
    calls: dict[str, int]
    enqueued: int
    peak_bytes: int
    baseline_calls: dict[str, int]


def listing_at(world: ListingWorld, fleet: int, trace: bool) -> ListingRun:
    """The fleet-sized invocation on the stand-ins (moto's world of STAND_IN_GROUP sources cloned to `fleet`), with
    `trace` its tracemalloc peak; and the baseline's unpaginated listing on the same catalogue."""
    copies = max(1, fleet // STAND_IN_GROUP)
    with world.build(STAND_IN_GROUP) as invoke:
        stand_ins: dict[str, Any] = dict(catalogues(world, copies))
        sqs, others = StandInSqs(), Network()
        stand_ins["sqs"] = sqs
        peak = 0
        with by_region(others, stand_ins):
            if trace:
                tracemalloc.start()
                tracemalloc.reset_peak()
            try:
                invoke()
                if trace:
                    _current, peak = tracemalloc.get_traced_memory()
            finally:
                if trace:
                    tracemalloc.stop()
        calls = _calls(stand_ins, others)
        baseline: dict[str, int] = {}
        if world.baseline_listing is not None:
            operation, kwargs = world.baseline_listing
            origin = Catalogue(described(world.listings), copies)
            for _run in range(world.baseline_runs):
                origin.answer(operation, dict(kwargs))
            baseline = dict(origin.calls)
    return ListingRun(world.module, fleet, calls, sqs.sent, peak, baseline)


def composed(sample: Cycle, listing: Mapping[str, int], fleet: int) -> Cycle:
    """A fleet's cycle composed of its listing measured at that size and the rest of the sample's cycle per source
    times the fleet."""
    rest = {call: count * fleet / sample.sources for call, count in sample.rest.items()}
    backend = f"listing on the stand-ins at {fleet:,}; the rest: moto at {sample.sources} x {fleet // sample.sources}"
    return Cycle(sample.module, sample.design, fleet, backend, dict(listing), rest)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# RSS after imports (a fresh interpreter per handler module)
# ---------------------------------------------------------------------------------------------------------------

# After the imports, the clients the functions make (botocore loads each service's model): the resident set a warm
# container starts an invocation with. VmRSS, not ru_maxrss: Linux carries the forking parent's high-water mark over.
RSS_PROBE = (
    "import importlib, boto3; importlib.import_module({module!r}); "
    "clients = [boto3.client(s, region_name={region!r}) for s in {services!r}]; "
    "print(next(l for l in open('/proc/self/status') if l.startswith('VmRSS:')).split()[1])"
)
SERVICES = {
    "ops_automation.ssm_runcommand.handlers": ("ec2", "sqs", "dynamodb", "sns", "ssm"),
}
DEFAULT_SERVICES = ("ec2", "sqs", "dynamodb", "sns")


def rss_after_import(module: str) -> int:
    """Bytes: a fresh interpreter's resident set after importing `module` and making its clients (KiB reported)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "lambda_src"),
        "POWERTOOLS_SERVICE_NAME": "scale",
        "AWS_DEFAULT_REGION": REGION,
    }
    probe = RSS_PROBE.format(module=module, region=REGION, services=SERVICES.get(module, DEFAULT_SERVICES))
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) * 1024


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


def _function_rows(peaks: Peaks, listings: Mapping[str, ListingRun], rss: Mapping[str, int]) -> list[dict[str, Any]]:
    rows = []
    for module, function, handlers, name in FUNCTIONS:
        if handlers.__name__ not in rss:
            continue  # a module not measured in this run
        key = f"{handlers.__name__}.{name}"
        at_size = listings.get(module) if WORLDS.get(module) and WORLDS[module].function == key else None
        if at_size is not None:
            peak, how = at_size.peak_bytes, f"{at_size.sources:,} sources, stand-ins"
        elif key in peaks.by_handler:
            peak, how = peaks.by_handler[key], f"largest invocation of the moto cycles (up to {max(MOTO_FLEETS)})"
        else:
            peak, how = 0, "not measured"
        resident = rss[handlers.__name__]
        rows.append(
            {
                "module": module,
                "function": function,
                "handler": key,
                "peak_bytes": peak,
                "rss_after_import_bytes": resident,
                "total_mb": round((peak + resident) / 2**20, 1),
                "fits": peak > 0 and peak + resident < LAMBDA_MB * 2**20,
                "measured": how,
            }
        )
    return rows


def measure_module(
    module: str, fleets: tuple[int, ...], moto_fleets: tuple[int, ...], memory_fleet: int
) -> dict[str, Any]:
    """One module: its moto cycles, its stand-in's check, its listings at the larger fleets, its functions' memory."""
    print(f"scale: {module} ...", file=sys.stderr, flush=True)
    peaks = Peaks()
    cycles: list[Cycle] = []
    samples: dict[str, Cycle] = {}
    for n in moto_fleets:
        for cycle in MOTO_CYCLES[module](n, peaks):
            cycles.append(cycle)
            samples[cycle.design] = cycle  # the largest moto fleet is the sample
    world = WORLDS.get(module)
    checks = [check_stand_in(world)] if world else []
    listings: dict[str, ListingRun] = {}
    peaks_by_fleet: dict[int, int] = {}
    for fleet in sorted({*(f for f in fleets if f not in moto_fleets), memory_fleet}) if world else []:
        run = listing_at(world, fleet, trace=fleet >= TRACED_FROM or fleet == memory_fleet)
        peaks_by_fleet[fleet] = run.peak_bytes
        if fleet == memory_fleet:
            listings[module] = run
        if fleet in fleets and fleet not in moto_fleets:
            cycles.append(composed(samples["ours"], run.calls, fleet))
            cycles.append(composed(samples["baseline"], run.baseline_calls, fleet))
    rss = {h.__name__: rss_after_import(h.__name__) for m, _f, h, _n in FUNCTIONS if m == module}
    print(f"scale: {module} done", file=sys.stderr, flush=True)
    return {
        "cycles": [c.as_dict() for c in cycles],
        "stand_in_checks": checks,
        "listings_at_memory_fleet": {m: asdict(r) for m, r in listings.items()},
        "functions": _function_rows(peaks, listings, rss),
        "listing_peaks": {world.function: {str(f): p for f, p in peaks_by_fleet.items() if p}} if world else {},
    }


# The costliest first: the sweep lists 20 snapshots and 20 AMIs per source.
ORDER = ("deregister-cleanup", "snapshot-copy", "instance-scheduler", "ami-backup", "ebs-snapshot", "ssm-runcommand")


def measure(
    fleets: tuple[int, ...] = FLEETS,
    moto_fleets: tuple[int, ...] = MOTO_FLEETS,
    modules: tuple[str, ...] = MODULES,
    memory_fleet: int = MEMORY_FLEET,
    processes: int = 1,
) -> dict[str, Any]:
    """Every module in its own process when `processes` > 1 (moto and the stand-ins keep nothing between modules);
    the results in MODULES order."""
    started = time.perf_counter()
    ordered = [m for m in ORDER if m in modules]
    args = [(m, fleets, moto_fleets, memory_fleet) for m in ordered]
    if processes > 1:
        with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork")) as pool:
            parts = dict(zip(ordered, pool.map(_measure_module, args), strict=True))
    else:
        parts = {m: _measure_module(a) for m, a in zip(ordered, args, strict=True)}
    in_order = [parts[m] for m in modules]
    return {
        "fleets": list(fleets),
        "moto_fleets": list(moto_fleets),
        "sample": max(moto_fleets),
        "units": {m: UNITS[m] for m in modules},
        "cycles": [c for part in in_order for c in part["cycles"]],
        "stand_in_checks": [c for part in in_order for c in part["stand_in_checks"]],
        "listings_at_memory_fleet": {k: v for part in in_order for k, v in part["listings_at_memory_fleet"].items()},
        "memory_fleet": memory_fleet,
        "functions": [row for part in in_order for row in part["functions"]],
        "listing_peaks": {k: v for part in in_order for k, v in part["listing_peaks"].items()},
        "lambda_mb": LAMBDA_MB,
        "seconds": round(time.perf_counter() - started, 1),
        "processes": processes,
    }


def _measure_module(args: tuple[str, tuple[int, ...], tuple[int, ...], int]) -> dict[str, Any]:
    return measure_module(*args)


SMOKE_MODULES = ("instance-scheduler",)


def smoke() -> dict[str, Any]:
    """The smoke path (tests/python/test_bench_scale_smoke.py): one module's cycle on moto at 10 sources, its
    stand-in checked against moto, its planner's memory at 20 sources on the stand-ins."""
    return measure(fleets=SMOKE_FLEETS, moto_fleets=SMOKE_FLEETS, modules=SMOKE_MODULES, memory_fleet=20)


# ---------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:,.2f}"


def _mb(value: float) -> str:
    return f"{value / 2**20:,.1f} MB"


def markdown(results: dict[str, Any]) -> list[str]:
    by_key = {(c["module"], c["design"], c["sources"]): c for c in results["cycles"]}
    lines = [
        "| module (per source) | sources | ours: EC2 | ours: other AWS | baseline: EC2 | baseline: other AWS "
        "| measured on |",
        "|---|---|---|---|---|---|---|",
    ]
    for module, unit in results["units"].items():
        for n in results["fleets"]:
            ours, base = by_key.get((module, "ours", n)), by_key.get((module, "baseline", n))
            if ours is None or base is None:
                lines.append(f"| {module} ({unit}) | {n:,} | not measured | | | | |")
                continue
            how = "moto" if ours["backend"] == "moto" else f"composed: {ours['backend']}"
            lines.append(
                f"| {module} ({unit}) | {n:,} | {_f(ours['each']['ec2'])} | {_f(ours['each']['other'])} | "
                f"{_f(base['each']['ec2'])} | {_f(base['each']['other'])} | {how} |"
            )
    lines += _listing_lines(results)
    lines += ["", "Stand-ins checked against moto in the same run:", ""]
    for check in results["stand_in_checks"]:
        lines.append(
            f"- {check['module']}, {check['sources']} sources: same calls {check['same_calls']} "
            f"({', '.join(f'{k} {v}' for k, v in check['moto_calls'].items())}), same messages "
            f"{check['same_messages']} ({check['messages']})"
        )
    lines += [
        "",
        f"### Peak memory per function ({results['memory_fleet']:,} sources where the function's memory depends on "
        f"the fleet; {results['lambda_mb']} MB functions)",
        "",
        "| module | function | tracemalloc peak of one invocation | RSS after imports | sum | fits 256 MB | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["functions"]:
        peak = _mb(row["peak_bytes"]) if row["peak_bytes"] else "not measured"
        lines.append(
            f"| {row['module']} | {row['function']} | {peak} | {_mb(row['rss_after_import_bytes'])} | "
            f"{row['total_mb']:,.1f} MB | {'yes' if row['fits'] else 'NO' if row['peak_bytes'] else '?'} | "
            f"{row['measured']} |"
        )
    lines += ["", "Peak of the functions whose memory grows with the fleet, by fleet (tracemalloc, stand-ins):", ""]
    for handler, by_fleet in results.get("listing_peaks", {}).items():
        growth = ", ".join(f"{int(fleet):,} sources {_mb(peak)}" for fleet, peak in by_fleet.items())
        lines.append(f"- {handler}: {growth}")
    lines += ["", *HOW, "", f"Whole run: {results['seconds']:,.0f} s on this machine."]
    return lines


def _calls_text(calls: Mapping[str, float]) -> str:
    return ", ".join(f"{call} {count:,.0f}" for call, count in sorted(calls.items())) or "none"


def _listing_lines(results: dict[str, Any]) -> list[str]:
    """The part that grows with the fleet, by API: ours' planner or sweeper run against the baseline's listing and
    its one describe per target."""
    rows = [
        "",
        "The part that depends on the fleet's size (ours: one planner or sweeper run per cycle, as measured; the "
        "baseline: its unpaginated listing and its per-target describes):",
        "",
        "| module | sources | ours | baseline |",
        "|---|---|---|---|",
    ]
    for cycle in results["cycles"]:
        if cycle["design"] != "ours" or cycle["sources"] < 1_000:
            continue
        base = next(
            c
            for c in results["cycles"]
            if (c["module"], c["design"], c["sources"]) == (cycle["module"], "baseline", cycle["sources"])
        )
        described = {k: v for k, v in base["rest"].items() if k.startswith("ec2.Describe")}
        rows.append(
            f"| {cycle['module']} | {cycle['sources']:,} | {_calls_text(cycle['listing'])} | "
            f"listing: {_calls_text(base['listing'])}; describes: {_calls_text(described)} |"
        )
    return rows


HOW = [
    "How it is measured:",
    "",
    "- Per source = every AWS call of one full cycle (the planner's or sweeper's included) / the sources. EC2 = the "
    "account-wide EC2 API (its request-rate limits are shared by every tool in the account and region); other = "
    "DynamoDB, SQS, SSM, SNS. Retries are not calls.",
    "- Rows measured on moto: one full cycle at steady state on moto made faithful, by each module's own bench "
    "(generations present: ami-backup and ebs-snapshot 3, snapshot-copy 7; instance-scheduler after a stop and a "
    "start slot; ssm-runcommand after the night before), ours and the baseline in the same run.",
    "- Rows marked composed (1,000 and 10,000): NOT a full cycle. The planner's or sweeper's listing and fan-out "
    "(ours) and the baseline's one unpaginated listing are measured at that size on the stand-ins "
    "(bench/standins.py: moto's items of a 10-source world, cloned with fresh ids, paged by MaxResults/NextToken); "
    "every other call of the cycle is per source (each work item, event and check concerns one source) and is "
    "taken from the moto cycle at the sample size, times the fleet. Modules without a stand-in have no composed row.",
    "- Baselines (sequential, one describe per target, unpaginated listing): bench/baseline.py's for ami-backup, "
    "ebs-snapshot (volume mode) and deregister-cleanup; `OriginCopy`, `OriginScheduler`, `OriginRunCommand` in "
    "bench/scale.py after the origin's ebs-copy-snapshot, instance and run-command functions. The baselines keep no "
    "ledger, check nothing before deleting and track no outcome: fewer calls is not the same work.",
    "- Memory: tracemalloc's peak during the invocation (Python allocations: the function's, and boto3's parsed "
    "pages); RSS after imports: a fresh interpreter's resident set (VmRSS) after importing the handler module and "
    "making its boto3 clients; their sum against the function's 256 MB. Planners and the sweeper: at the fleet's "
    "size on the stand-ins, whose pages hold moto's full descriptions of each item. Workers: the largest invocation "
    "of the moto cycles, whose peak includes moto's in-process allocations and, in a cold invocation, botocore "
    "loading the service models again (an upper bound); a worker handles one batch of at most 10 records, so its "
    "memory does not grow with the fleet (ssm-runcommand's `send` item, which lists the targets, excepted: measured "
    "at 10 only). The restore functions are deployed only with `restore_test` and are not invoked here.",
]


def main() -> None:
    results = measure(processes=PROCESSES)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
