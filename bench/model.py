"""From the measured cycles to the cost model's inputs, and the committed inputs the README sections come from."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .calls import CycleCalls, OursCycle
from .cost import IDLE_POLLS_PER_MONTH, MINUTES_PER_MONTH, CycleUsage
from .driver import Invocations

INPUTS_FILE = Path(__file__).resolve().parent / "cost_inputs.json"
EBS_KEY = "ebs-snapshot"
CLEANUP_KEY = "deregister-cleanup"
COPY_KEY = "snapshot-copy"
ALARMS_OURS = 2  # the DLQ alarm and the "backups stopped" (missed run) alarm, at defaults (both modules)
METRIC_HOURS_PER_DAY = 2  # the slot's hour, and the next one (delayed checks and snapshot purges)


def _split(calls: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    ec2 = sum(v for k, v in calls.items() if k.startswith("ec2."))
    return ec2, {k: v for k, v in sorted(calls.items()) if not k.startswith("ec2.")}


def usage_of(
    planner: Mapping[str, int],
    worker: Mapping[str, int],
    seen: Invocations,
    units: int,
    *,
    deliveries_each: float,
    service_events: str,
) -> CycleUsage:
    """Our design, one cycle: the planner's EC2 listing per cycle (it grows by pages of 1,000, not per unit), the
    rest per unit (a unit is what one work item backs up: an instance, a volume, an instance's snapshot set)."""
    worker_calls = Counter(worker)
    worker_calls["sqs.SendMessageBatch"] += planner.get("sqs.SendMessageBatch", 0)
    ec2, others = _split(worker_calls)
    return CycleUsage(
        design="ours",
        ec2_calls_each=ec2 / units,
        other_calls_each={k: v / units for k, v in others.items()},
        fixed_calls={k: v for k, v in sorted(planner.items()) if k.startswith("ec2.")},
        invocations_each=seen.worker / units,
        invocations_fixed=seen.planner,
        sqs_messages_each=sum(seen.messages.values()) / units,
        eventbridge_deliveries_each=deliveries_each,  # the rule forwards the completion events of our own calls
        log_bytes_each=round(seen.log_bytes() / units, -1),
        metric_names=len(seen.metric_names()),
        metric_hours_per_day=METRIC_HOURS_PER_DAY,
        alarms=ALARMS_OURS,
        idle_sqs_requests_per_month=IDLE_POLLS_PER_MONTH,
        service_events=service_events,
    )


def ours_usage(measured: OursCycle) -> CycleUsage:
    calls, seen = measured.calls, measured.invocations
    # The rule forwards `available`/`failed` only: one AMI event per backup.
    return usage_of(calls.planner, calls.worker, seen, calls.instances, deliveries_each=1, service_events="AMI state")


def baseline_usage(
    planner: Mapping[str, int],
    worker: Mapping[str, int],
    units: int,
    log_bytes_each: float,
    *,
    checker: bool,
    service_events: str,
) -> CycleUsage:
    """An origin design: one scheduled run (CloudWatch Events scheduled rules: free), no metrics, no alarms; with
    `checker`, a checker every minute receiving from SQS (ami-backup's origin)."""
    ec2, others = _split(Counter(worker) + Counter(planner))
    return CycleUsage(
        design="origin",
        ec2_calls_each=ec2 / units,
        other_calls_each={k: v / units for k, v in others.items()},
        fixed_calls={},
        invocations_each=0,
        invocations_fixed=1,
        sqs_messages_each=0,
        eventbridge_deliveries_each=0,
        log_bytes_each=log_bytes_each,
        metric_names=0,
        metric_hours_per_day=0,
        alarms=0,
        idle_sqs_requests_per_month=MINUTES_PER_MONTH if checker else 0,  # the checker's ReceiveMessage
        checker_invocations_per_month=MINUTES_PER_MONTH if checker else 0,
        scheduler_invocations_per_day=0,
        service_events=service_events,
    )


def origin_usage(calls: CycleCalls, log_bytes_each: float) -> CycleUsage:
    """ami-backup's origin: one scheduled creator run, a checker every minute receiving from SQS."""
    return baseline_usage(
        calls.planner, calls.worker, calls.instances, log_bytes_each, checker=True, service_events="AMI state"
    )


@dataclass(frozen=True)
class ModeInputs:
    """What the ebs-snapshot cost section is computed from, for one snapshot_mode."""

    mode: str
    unit: str  # what one work item backs up: "volume" or "instance set"
    volumes_per_unit: int
    units_measured: int
    calls_each: dict[str, dict[str, float]]  # design -> {"ec2": ..., "other": ...}: calls per unit per cycle
    ours: CycleUsage
    origin: CycleUsage

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModeInputs:
        fields = dict(data)
        return cls(**{**fields, "ours": CycleUsage(**fields["ours"]), "origin": CycleUsage(**fields["origin"])})


def save_inputs(
    ours: CycleUsage,
    origin: CycleUsage,
    ebs: Mapping[str, ModeInputs],
    cleanup: Mapping[str, Any] | None = None,
    path: Path = INPUTS_FILE,
    snapshot_copy: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """`cleanup`: bench/cleanup.py's CleanupInputs as a dict (loaded back by `cleanup.load_inputs`);
    `snapshot_copy`: bench/copy.py's CopyInputs as dicts (loaded back by `copy.load_inputs`)."""
    data: dict[str, Any] = {
        "ours": asdict(ours),
        "origin": asdict(origin),
        EBS_KEY: {mode: asdict(m) for mode, m in ebs.items()},
    }
    if cleanup is not None:
        data[CLEANUP_KEY] = dict(cleanup)
    if snapshot_copy is not None:
        data[COPY_KEY] = [dict(inputs) for inputs in snapshot_copy]
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def load_inputs(path: Path = INPUTS_FILE) -> tuple[CycleUsage, CycleUsage]:
    """ami-backup's."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return CycleUsage(**data["ours"]), CycleUsage(**data["origin"])


def load_ebs_inputs(path: Path = INPUTS_FILE) -> dict[str, ModeInputs]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {mode: ModeInputs.from_dict(inputs) for mode, inputs in data[EBS_KEY].items()}
