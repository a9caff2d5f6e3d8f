"""From the measured cycles to the cost model's inputs, and the committed inputs the README section comes from."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from .calls import CycleCalls, OursCycle
from .cost import IDLE_POLLS_PER_MONTH, MINUTES_PER_MONTH, CycleUsage

INPUTS_FILE = Path(__file__).resolve().parent / "cost_inputs.json"
ALARMS_OURS = 2  # the DLQ alarm and the "backups stopped" (missed run) alarm, at defaults
METRIC_HOURS_PER_DAY = 2  # the slot's hour, and the next one (delayed checks and snapshot purges)


def ours_usage(measured: OursCycle) -> CycleUsage:
    calls, seen, n = measured.calls, measured.invocations, measured.calls.instances
    worker = Counter(calls.worker)
    worker["sqs.SendMessageBatch"] += calls.planner.get("sqs.SendMessageBatch", 0)
    ec2 = sum(v for k, v in worker.items() if k.startswith("ec2."))
    return CycleUsage(
        design="ours",
        ec2_calls_each=ec2 / n,
        other_calls_each={k: v / n for k, v in sorted(worker.items()) if not k.startswith("ec2.")},
        fixed_calls={"ec2.DescribeInstances": calls.planner.get("ec2.DescribeInstances", 0)},
        invocations_each=seen.worker / n,
        invocations_fixed=seen.planner,
        sqs_messages_each=sum(seen.messages.values()) / n,
        eventbridge_deliveries_each=1,  # the rule forwards `available`/`failed` only: one per backup
        log_bytes_each=round(seen.log_bytes() / n, -1),
        metric_names=len(seen.metric_names()),
        metric_hours_per_day=METRIC_HOURS_PER_DAY,
        alarms=ALARMS_OURS,
        idle_sqs_requests_per_month=IDLE_POLLS_PER_MONTH,
    )


def origin_usage(calls: CycleCalls, log_bytes_each: float) -> CycleUsage:
    """The origin: one scheduled creator run, a checker every minute receiving from SQS, no metrics, no alarms."""
    n = calls.instances
    every = Counter(calls.worker) + Counter(calls.planner)
    ec2 = sum(v for k, v in every.items() if k.startswith("ec2."))
    return CycleUsage(
        design="origin",
        ec2_calls_each=ec2 / n,
        other_calls_each={k: v / n for k, v in sorted(every.items()) if not k.startswith("ec2.")},
        fixed_calls={},
        invocations_each=0,
        invocations_fixed=1,
        sqs_messages_each=0,
        eventbridge_deliveries_each=0,
        log_bytes_each=log_bytes_each,
        metric_names=0,
        metric_hours_per_day=0,
        alarms=0,
        idle_sqs_requests_per_month=MINUTES_PER_MONTH,  # the checker's ReceiveMessage every minute
        checker_invocations_per_month=MINUTES_PER_MONTH,
        scheduler_invocations_per_day=0,  # CloudWatch Events scheduled rules
    )


def save_inputs(ours: CycleUsage, origin: CycleUsage, path: Path = INPUTS_FILE) -> None:
    path.write_text(json.dumps({"ours": asdict(ours), "origin": asdict(origin)}, indent=2) + "\n", encoding="utf-8")


def load_inputs(path: Path = INPUTS_FILE) -> tuple[CycleUsage, CycleUsage]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return CycleUsage(**data["ours"]), CycleUsage(**data["origin"])
