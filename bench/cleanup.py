"""8. deregister-cleanup (issue 7): AWS calls of the sweep (by pages, not snapshots), of the worker's purge per orphan,
of the event path per deregistered AMI and of a repeated event; the origin's deregister-image function next to it;
and the cost model's inputs.

All on moto made faithful (tests/support/moto_fidelity.py) on a fixed clock: DescribeSnapshots pages as AWS does
(E24), and the fidelity's `fast_tags` speeds up moto's tag lookup for thousands of snapshots without changing an
answer (checked by `check_fast_tags` on a sample).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from aws_harness import REGION, Clock, FakeContext, ami_event, run_instances, take_messages, work_body
from tests.support.moto_fidelity import MotoFidelity, check_fast_tags, faithful_aws, fast_tags

from ops_automation.core import tagging
from ops_automation.core.events import format_time
from ops_automation.deregister_cleanup import handlers as cleanup_handlers

from .baseline import DeregisterBaseline
from .cost import IDLE_POLLS_PER_MONTH, CycleUsage
from .driver import CycleDriver, captured
from .harness import Network, installed, moto_account, routed
from .model import ALARMS_OURS, CLEANUP_KEY, INPUTS_FILE, METRIC_HOURS_PER_DAY

# What ami-backup (another policy of this project) writes on its AMIs and their snapshots: in `managed` scope.
MANAGED_TAGS = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: "nightly-amis"}
SWEEP_SIZES = (1_000, 3_000)  # CreateImage snapshots in the account
# Of every 20 snapshots: 16 of deregistered AMIs (orphans), 3 of registered AMIs, 1 of an AMI in the Recycle Bin.
MIX_BLOCK, MIX_ORPHANS, MIX_REGISTERED = 20, 16, 3
PAGE = 1000  # DescribeSnapshots/DescribeImages page size the sweep asks for (core.targeting.PAGE_SIZE)
EVENT_AMIS = 20  # AMIs deregistered in the measured day
# A "source" of the cost tables: one AMI deregistered a day, in an account holding this many CreateImage/CopyImage
# snapshots per daily deregistration (e.g. a backup policy keeping 20 generations), all of which the sweep lists.
SNAPSHOTS_PER_SOURCE = 20
GRACE = timedelta(hours=25)  # past the default 24-hour grace period
SWEEP_AFTER = timedelta(hours=2)  # the sweep (03:30) runs after the day's deregistrations were handled
TIMINGS = ("at once", "after the in-use window")
# The sweep hands out at most this many purge messages per run (SQS delays 15 minutes at most); the rest waits for
# the next sweep.
MAX_PURGES_PER_SWEEP: int = getattr(cleanup_handlers, "MAX_PURGES_PER_SWEEP", 0)


# ---------------------------------------------------------------------------------------------------------------
# moto shims (answers unchanged)
# ---------------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------------
# Driving the two functions as the deployed wiring does
# ---------------------------------------------------------------------------------------------------------------


class CleanupDriver(CycleDriver):
    """The sweeper (scheduled) and the worker (the event source mapping: what is due, in batches of up to 10; each
    AMI event on its own), on SQS run by the clock (`faithful_aws(clock, sqs_time=True)`)."""

    handlers = cleanup_handlers

    def sweep(self) -> dict[str, Any]:
        self.seen.planner += 1
        with captured(self.seen.output):
            return dict(self.handlers.sweep_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext()))

    def drain_as_due(self) -> None:
        """Every queued message, the clock moved to each one's due time; what the worker sends back is handled too."""
        pending: list[dict[str, Any]] = []
        for _round in range(10_000):
            pending += take_messages()
            if not pending:
                return
            due = min(_due(m, self.clock.now) for m in pending)
            self.clock.now = max(self.clock.now, due)
            ready = [m for m in pending if _due(m, self.clock.now) <= self.clock.now]
            pending = [m for m in pending if _due(m, self.clock.now) > self.clock.now]
            by_kind: dict[str, list[dict[str, Any]]] = {}
            for message in ready:
                by_kind.setdefault(message["kind"], []).append(message)
            for kind, messages in by_kind.items():
                self._must(self.work([work_body(m) for m in messages], kind))
        raise RuntimeError("the work queue never drained")


def _due(message: dict[str, Any], now: datetime) -> datetime:
    ms = message.get("_delayed_until_ms") or 0
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else now


@dataclass
class Account:
    """CreateImage AMIs of one instance, made at backend level (the bench's setup: not counted)."""

    fidelity: MotoFidelity
    ec2: Any
    clock: Clock
    instance: str = ""
    made: int = 0

    def __post_init__(self) -> None:
        self.instance = run_instances(self.ec2, 1)[0]

    def images(self, count: int, tags: dict[str, str] | None = MANAGED_TAGS) -> list[tuple[str, str]]:
        """`count` AMIs with their snapshot (EC2's description; tagged like the AMI); returns (ami, snapshot)."""
        backend = self.fidelity.backend(REGION)
        spec = (
            [{"ResourceType": kind, "Tags": tagging.tag_list(tags)} for kind in ("image", "snapshot")] if tags else []
        )
        made = []
        for _ in range(count):
            self.made += 1
            image_id = backend.create_image(self.instance, f"bench-{self.made}", "", spec).id
            made.append((image_id, self.fidelity.snapshot_of(REGION, image_id)))
        return made

    def deregister(self, image_id: str) -> None:
        self.fidelity.backend(REGION).deregister_image(image_id)

    def mixed(self, snapshots: int) -> dict[str, list[tuple[str, str]]]:
        """`snapshots` AMIs: per 20, 16 deregistered, 3 registered, 1 deregistered into the Recycle Bin."""
        kinds: dict[str, list[tuple[str, str]]] = {"orphan": [], "registered": [], "recycled": []}
        for index, pair in enumerate(self.images(snapshots)):
            slot = index % MIX_BLOCK
            if slot < MIX_ORPHANS:
                self.deregister(pair[0])
                kinds["orphan"].append(pair)
            elif slot < MIX_ORPHANS + MIX_REGISTERED:
                kinds["registered"].append(pair)
            else:
                self.fidelity.recycle_image(REGION, pair[0], self.clock.now + timedelta(days=30))
                kinds["recycled"].append(pair)
        return kinds

    def snapshot_ids(self) -> set[str]:
        return set(self.fidelity.backend(REGION).snapshots)


@contextmanager
def cleanup_account(network: Network, **env: str) -> Iterator[tuple[Account, CleanupDriver]]:
    clock = Clock()
    with (
        moto_account() as infra,
        faithful_aws(clock, sqs_time=True) as fidelity,
        fast_tags(),
        routed(network),
        installed(infra, clock, module="deregister_cleanup", **env),
    ):
        # Both observed forms are read by ours; the origin's filter needs this one (see DeregisterBaseline).
        fidelity.create_image_description_with_volume = True
        yield Account(fidelity, boto3.client("ec2", region_name=REGION), clock), CleanupDriver(clock)


def _ec2(calls: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(calls.items()) if k.startswith("ec2.")}


def _take(network: Network) -> Counter[str]:
    taken = Counter(network.calls.counts)
    network.calls.counts.clear()
    return taken


# ---------------------------------------------------------------------------------------------------------------
# 1. The sweep at 1,000 and 3,000 snapshots, then the worker's purge of what it found
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRun:
    snapshots: int
    orphans: int
    registered: int
    recycled: int
    pages: int  # DescribeSnapshots pages of 1,000 the listing needs
    calls: dict[str, int]  # every call of the sweep run, by API
    purges_enqueued: int  # purge_snapshots messages (20 snapshots each)
    verdicts: dict[str, int]
    tags_checked: bool  # the tag shim answered as moto on a sample of this account


@dataclass(frozen=True)
class PurgeRun:
    orphans: int
    messages: int
    invocations: int
    calls: dict[str, int]
    deleted: int
    orphans_left: int  # orphans still present after the queue drained: beyond what one sweep hands out
    others_kept: int  # snapshots of registered and binned AMIs still present (all of them)
    others: int


def measure_sweeps(sizes: tuple[int, ...] = SWEEP_SIZES) -> tuple[list[SweepRun], PurgeRun]:
    """One account growing to each size in turn (the sweep only reads: its messages are dropped, except the last
    sweep's, which the worker then drains)."""
    network = Network()
    runs: list[SweepRun] = []
    with cleanup_account(network) as (account, driver):
        kinds: dict[str, list[tuple[str, str]]] = {"orphan": [], "registered": [], "recycled": []}
        for size in sizes:
            for kind, pairs in account.mixed(size - sum(len(v) for v in kinds.values())).items():
                kinds[kind] += pairs
            account.clock.now += GRACE
            network.calls.counts.clear()
            summary = driver.sweep()
            calls = _take(network)
            sample = list(account.fidelity.backend(REGION).snapshots.values())[:50]
            runs.append(
                SweepRun(
                    snapshots=size,
                    orphans=len(kinds["orphan"]),
                    registered=len(kinds["registered"]),
                    recycled=len(kinds["recycled"]),
                    pages=math.ceil(size / PAGE),
                    calls=dict(sorted(calls.items())),
                    purges_enqueued=summary["purges_enqueued"],
                    verdicts=summary["verdicts"],
                    tags_checked=check_fast_tags(sample),
                )
            )
            if size != sizes[-1]:
                take_messages()
        before = driver.seen.worker
        driver.drain_as_due()
        calls = _take(network)
        present = account.snapshot_ids()
        others = [s for kind in ("registered", "recycled") for _, s in kinds[kind]]
        purge = PurgeRun(
            orphans=len(kinds["orphan"]),
            messages=driver.seen.messages["purge_snapshots"],
            invocations=driver.seen.worker - before,
            calls=dict(sorted(calls.items())),
            deleted=calls["ec2.DeleteSnapshot"],
            orphans_left=sum(1 for _, s in kinds["orphan"] if s in present),
            others_kept=sum(1 for s in others if s in present),
            others=len(others),
        )
    return runs, purge


# ---------------------------------------------------------------------------------------------------------------
# 2. The event path per deregistered AMI (a steady-state day), a repeated event, and the origin's function
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventDay:
    design: str
    timing: str  # "at once": the event handled right after DeregisterImage; or after the in-use window (E7)
    amis: int
    snapshots_listed: int  # by the day's sweep (ours)
    calls: dict[str, int]  # every call of the events and of the retries they caused
    sweep_calls: dict[str, int]  # ours: the day's sweep
    repeat_calls: dict[str, int]  # ours: the same events once more (both rules on, or a redelivery)
    invocations: int
    messages: int  # SQS messages the worker consumed (events and retries)
    deleted: int
    left: int  # the day's AMIs' snapshots still present afterwards
    sweep_orphans: int
    invocations_seen: dict[str, int] = field(default_factory=dict)
    log_bytes_each: float = 0.0
    sweep_log_bytes: float = 0.0
    metric_names: tuple[str, ...] = ()


def _day_setup(account: Account, amis: int) -> list[tuple[str, str]]:
    """An account holding SNAPSHOTS_PER_SOURCE snapshots per AMI deregistered today, the day's AMIs among them."""
    made = account.images(amis * SNAPSHOTS_PER_SOURCE)
    account.clock.now += GRACE
    return made[:amis]


def measure_ours_day(timing: str, amis: int = EVENT_AMIS) -> EventDay:
    network = Network()
    with cleanup_account(network) as (account, driver):
        today = _day_setup(account, amis)
        for image_id, _ in today:
            account.deregister(image_id)
        if timing != "at once":
            account.clock.now += account.fidelity.snapshot_in_use_window + timedelta(seconds=1)
        network.calls.counts.clear()
        events = [ami_event(image_id, "deregistered") for image_id, _ in today]
        driver.events(events, "ami_event")
        driver.drain_as_due()
        calls = _take(network)
        invocations, messages = driver.seen.worker, sum(driver.seen.messages.values())
        log_bytes = driver.seen.log_bytes()
        driver.events(events, "ami_event")  # the same events again: the ledger answers
        repeat = _take(network)
        present = account.snapshot_ids()
        account.clock.now += SWEEP_AFTER
        sweep_out = len(driver.seen.output.getvalue().encode())
        summary = driver.sweep()
        sweep_log = len(driver.seen.output.getvalue().encode()) - sweep_out
        sweep = _take(network)
        leftover = take_messages()
        metric_names = tuple(sorted(driver.seen.metric_names()))
    return EventDay(
        design="ours",
        timing=timing,
        amis=amis,
        snapshots_listed=sum(summary["verdicts"].values()),
        calls=dict(sorted(calls.items())),
        sweep_calls=dict(sorted(sweep.items())),
        repeat_calls=dict(sorted(repeat.items())),
        invocations=invocations,
        messages=messages,
        deleted=sum(1 for _, s in today if s not in present),
        left=sum(1 for _, s in today if s in present),
        sweep_orphans=summary["orphans"] + len(leftover),
        invocations_seen={"worker": invocations, "sweeper": 1},
        log_bytes_each=round(log_bytes / amis, -1),
        sweep_log_bytes=float(sweep_log),
        metric_names=metric_names,
    )


def measure_origin_day(timing: str, amis: int = EVENT_AMIS, with_volume: bool = True) -> EventDay:
    """The origin on the same day; `with_volume=False`: EC2 wrote the other observed description form."""
    network = Network()
    with cleanup_account(network) as (account, _driver):
        account.fidelity.create_image_description_with_volume = with_volume
        baseline = DeregisterBaseline(network)
        today = _day_setup(account, amis)
        for image_id, _ in today:
            account.deregister(image_id)
        if timing != "at once":
            account.clock.now += account.fidelity.snapshot_in_use_window + timedelta(seconds=1)
        network.calls.counts.clear()
        deleted = sum(len(baseline.on_event(image_id)) for image_id, _ in today)
        calls = _take(network)
        present = account.snapshot_ids()
    return EventDay(
        design="origin" if with_volume else "origin, description without ` from vol-…`",
        timing=timing,
        amis=amis,
        snapshots_listed=0,
        calls=dict(sorted(calls.items())),
        sweep_calls={},
        repeat_calls={},
        invocations=amis,
        messages=0,
        deleted=deleted,
        left=sum(1 for _, s in today if s in present),
        sweep_orphans=0,
    )


# ---------------------------------------------------------------------------------------------------------------
# Cost model inputs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanupInputs:
    """What the deregister-cleanup cost section is computed from. A source is one AMI deregistered a day (with the
    one snapshot CreateImage makes on this moto), in an account holding `snapshots_per_source` snapshots per source
    that the daily sweep lists."""

    units_measured: int
    snapshots_per_source: int
    page_size: int
    sweep_calls_per_page: dict[str, float]  # measured: calls / pages, for the listings that page
    sweep_calls_fixed: dict[str, float]  # measured: calls that do not page at these sizes
    sweep_log_bytes: float
    ours: CycleUsage  # per source; fixed_calls empty (the sweep's come from the lines above per size)
    origin: CycleUsage
    calls_each: dict[str, dict[str, float]]  # design -> {"ec2": ..., "other": ...} per deregistered AMI
    repeat_each: dict[str, float]  # ours: calls per AMI of a repeated event (the CloudTrail rule's, a redelivery)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleanupInputs:
        return cls(**{**data, "ours": CycleUsage(**data["ours"]), "origin": CycleUsage(**data["origin"])})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def pages(self, sources: int) -> int:
        return max(1, math.ceil(sources * self.snapshots_per_source / self.page_size))

    def usage(self, design: str, sources: int) -> CycleUsage:
        """The cycle at `sources`: ours' sweep lists `sources * snapshots_per_source` snapshots (and at most as many
        registered AMIs) in pages."""
        if design == "origin":
            return self.origin
        pages = self.pages(sources)
        fixed = {call: n * pages for call, n in self.sweep_calls_per_page.items()}
        for call, n in self.sweep_calls_fixed.items():
            fixed[call] = fixed.get(call, 0) + n
        return CycleUsage(
            **{
                **asdict(self.ours),
                "fixed_calls": dict(sorted(fixed.items())),
                "log_bytes_each": self.ours.log_bytes_each + self.sweep_log_bytes / sources,
            }
        )


def _split_each(calls: dict[str, int], units: int) -> tuple[float, dict[str, float]]:
    ec2 = sum(v for k, v in calls.items() if k.startswith("ec2.")) / units
    return ec2, {k: v / units for k, v in sorted(calls.items()) if not k.startswith("ec2.")}


def inputs_of(ours: EventDay, origin: EventDay, sweeps: list[SweepRun]) -> CleanupInputs:
    """Ours: the `at once` day (the event reaches the worker within the in-use window); per source the event path
    and what it sends itself, per cycle the sweep (its listings per page, measured on the sweep runs)."""
    units = ours.amis
    ec2_each, others = _split_each(ours.calls, units)
    paging = {"ec2.DescribeSnapshots", "ec2.DescribeImages"}
    largest = sweeps[-1]
    per_page = {call: largest.calls[call] / largest.pages for call in sorted(paging) if call in largest.calls}
    # DescribeImages pages by the registered AMIs, at most as many as snapshots: priced as if by snapshots.
    fixed = {k: float(v) for k, v in ours.sweep_calls.items() if k.startswith("ec2.") and k not in paging}
    usage = CycleUsage(
        design="ours",
        ec2_calls_each=ec2_each,
        other_calls_each=others,
        fixed_calls={},
        invocations_each=ours.invocations / units,
        invocations_fixed=1,  # the sweep
        sqs_messages_each=ours.messages / units,
        eventbridge_deliveries_each=1,  # the AMI's `deregistered` state event
        log_bytes_each=ours.log_bytes_each,
        metric_names=len(ours.metric_names),
        metric_hours_per_day=METRIC_HOURS_PER_DAY,
        alarms=ALARMS_OURS,
        idle_sqs_requests_per_month=IDLE_POLLS_PER_MONTH,
        service_events="AMI state",
    )
    o_ec2, o_others = _split_each(origin.calls, origin.amis)
    origin_usage = CycleUsage(
        design="origin",
        ec2_calls_each=o_ec2,
        other_calls_each=o_others,
        fixed_calls={},
        invocations_each=1,  # one per CloudTrail event, straight from the rule
        invocations_fixed=0,
        sqs_messages_each=0,
        eventbridge_deliveries_each=1,  # the CloudTrail `DeregisterImage` event
        log_bytes_each=ours.log_bytes_each,  # modelled at ours, as for the other origins
        metric_names=0,
        metric_hours_per_day=0,
        alarms=0,
        idle_sqs_requests_per_month=0,
        scheduler_invocations_per_day=0,
        service_events="AMI state",
    )

    def each(day: EventDay) -> dict[str, float]:
        ec2 = sum(v for k, v in day.calls.items() if k.startswith("ec2."))
        return {"ec2": round(ec2 / day.amis, 4), "other": round((sum(day.calls.values()) - ec2) / day.amis, 4)}

    return CleanupInputs(
        units_measured=units,
        snapshots_per_source=SNAPSHOTS_PER_SOURCE,
        page_size=PAGE,
        sweep_calls_per_page=per_page,
        sweep_calls_fixed=fixed,
        sweep_log_bytes=ours.sweep_log_bytes,
        ours=usage,
        origin=origin_usage,
        calls_each={"ours": each(ours), "origin": each(origin)},
        repeat_each={k: v / units for k, v in ours.repeat_calls.items()},
    )


@dataclass(frozen=True)
class CleanupResults:
    sweeps: list[SweepRun]
    purge: PurgeRun
    days: list[EventDay]
    inputs: CleanupInputs

    def as_dict(self) -> dict[str, Any]:
        return {
            "sweeps": [asdict(s) for s in self.sweeps],
            "purge": asdict(self.purge),
            "days": [asdict(d) for d in self.days],
            "inputs": self.inputs.as_dict(),
        }


def measure(sizes: tuple[int, ...] = SWEEP_SIZES, amis: int = EVENT_AMIS) -> CleanupResults:
    sweeps, purge = measure_sweeps(sizes)
    days = [measure_ours_day(timing, amis) for timing in TIMINGS]
    days += [measure_origin_day(timing, amis) for timing in TIMINGS]
    days.append(measure_origin_day(TIMINGS[1], amis, with_volume=False))
    ours = next(d for d in days if d.design == "ours" and d.timing == TIMINGS[0])
    origin = next(d for d in days if d.design == "origin" and d.timing == TIMINGS[0])
    return CleanupResults(sweeps, purge, days, inputs_of(ours, origin, sweeps))


def load_inputs(path: Path = INPUTS_FILE) -> CleanupInputs:
    return CleanupInputs.from_dict(json.loads(path.read_text(encoding="utf-8"))[CLEANUP_KEY])


def with_cloudtrail(usage: CycleUsage, repeat_each: dict[str, float]) -> CycleUsage:
    """`cloudtrail_events = true`: each deregistration also delivers the CloudTrail call, one more invocation that
    the ledger answers (`repeat_each`: its calls per AMI, measured)."""
    others = dict(usage.other_calls_each)
    for call, n in repeat_each.items():
        others[call] = others.get(call, 0) + n
    return CycleUsage(
        **{
            **asdict(usage),
            "other_calls_each": dict(sorted(others.items())),
            "invocations_each": usage.invocations_each + 1,
            "sqs_messages_each": usage.sqs_messages_each + 1,
            "eventbridge_deliveries_each": usage.eventbridge_deliveries_each + 1,
        }
    )
