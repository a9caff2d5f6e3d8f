"""The ssm-runcommand soak: a year of nightly slots (01:00 UTC) of the tag-targeted command for `sources` tagged
instances and a few outside the policy, the real planner and worker in-process on moto made faithful (SSM's
invocations, concurrency, timeouts and events: the fidelity's E40-E52, delivery and run times as bench/runcommand.py
assumes them), each Run Command event the rule forwards put on the queue as EventBridge does, the work queue
delivered by `Wiring` (bench/soak/instance_scheduler.py) as the event source mapping does.

Faults (seeded, `Faults`): throttling, 5xx, timeouts (a read timeout of SendCommand: the command was sent, the answer
lost) and AccessDenied on the EC2 and SSM calls; duplicate, late and lost events; duplicate work items and schedules;
a crash after k records of a batch; per instance and night, the script failing (exit code 1), the SSM Agent losing
its connection, the instance terminated mid-run (a replacement launched with the tag).

Invariants, after every step: at most one command per chunk and slot, at most one invocation per instance and slot;
none on an instance outside the policy; at most one failure alert per instance and slot. At each slot's end: every
tagged instance that did not run the script successfully is alerted (an alert for it, one for the whole slot, or its
work item in the dead-letter queue), and none that succeeded is.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_harness import (
    REGION,
    RUN_OUTPUT_BUCKET,
    install_runtimes,
    run_instances,
    runcommand_function_env,
)
from moto.moto_api._internal import mock_random
from tests.support.moto_fidelity import MotoFidelity, faithful_aws

from ops_automation.core.events import format_time
from ops_automation.ssm_runcommand import handlers as runcommand_handlers

from ..harness import Clock, moto_account, patched_env
from ..runcommand import DELIVERY_TIME, RULE_SKIPS, RUN_TIME, TAGS
from .faults import Faults
from .instance_scheduler import AWS_SERVICES, GIVEN_UP, Alerts, StopSoak, Wiring, checked
from .report import ModuleReport

MODULE = "ssm_runcommand"
SLOT_AT = timedelta(hours=1)
FIRST_DAY = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
OUTSIDERS = {"other-db": 3, "": 2}
FAILED_ALERT = runcommand_handlers.RUN.failure_alert
NOT_SENT = runcommand_handlers.NOT_SENT_ALERT
CHAOS_WINDOW = timedelta(minutes=10)  # instances terminated during the first minutes of the slot

RATES: dict[str, float] = {
    "throttling": 0.02,
    "server_error": 0.004,
    "timeout": 0.004,
    "access_denied": 0.001,
    "duplicate_delivery": 0.002,  # SQS standard queues deliver at least once: a duplicate is rare
    "out_of_order": 0.02,
    "lost_event": 0.01,
    "schedule_duplicate": 0.02,
    "crash_mid_batch": 0.01,
    "instance_terminated": 0.002,
    "command_failed": 0.01,
    "agent_lost": 0.005,
}
# A nightly slot makes few AWS calls (one SendCommand, whatever the fleet): the smoke test's AWS-call rates are high.
RAISED = {kind: min(0.2, rate * 10) for kind, rate in RATES.items()} | {
    "throttling": 0.12,
    "server_error": 0.05,
    "timeout": 0.05,
    "access_denied": 0.02,
}


@dataclass
class Night:
    slot: str
    at: datetime
    expected: set[str] = field(default_factory=set)  # tagged instances, not terminated, at the slot


class RunCommandSoak:
    def __init__(self, seed: int, days: int, sources: int, stop_at_step: int | None, rates: dict[str, float]) -> None:
        self.report = ModuleReport(MODULE, seed, days, sources)
        self.days = days
        self.sources = sources
        self.stop_at_step = stop_at_step
        self.faults = Faults(seed, rates)
        self.clock = Clock(FIRST_DAY)
        self.alerts = Alerts()
        self.failure_alerts: Counter[tuple[str, str]] = Counter()
        self.alerted: set[tuple[str, str]] = set()
        self.night: Night | None = None
        self.terminated: set[str] = set()
        self.chaos: list[tuple[datetime, str]] = []
        self.slot_of_command: dict[str, str] = {}

    # -- the account -------------------------------------------------------------------------------------------

    def _setup(self, fidelity: MotoFidelity) -> None:
        self.fidelity = fidelity
        self.ec2 = boto3.client("ec2", region_name=REGION)  # the soak's own client: never faulted
        self.managed: set[str] = set(run_instances(self.ec2, self.sources, TAGS))
        self.outsiders: set[str] = set()
        for tag, n in OUTSIDERS.items():
            self.outsiders.update(run_instances(self.ec2, n, {"Backup": tag} if tag else None))

    def _states(self) -> dict[str, str]:
        return {i.id: i._state.name for i in self.fidelity.backend(REGION).all_instances()}

    # -- invariants --------------------------------------------------------------------------------------------

    def _invocations(self) -> Iterator[tuple[str, str, Any]]:
        """(slot, command id, invocation record) of every command SSM holds."""
        for command_id, records in self.fidelity.ssm_invocations.items():
            slot = self.slot_of_command.get(command_id)
            if slot is None:
                command = self.fidelity.ssm_commands.get(command_id)
                label = str(getattr(command, "comment", "") or "")
                slot = label.split("@", 1)[-1].rsplit("#", 1)[0] if "@" in label else "?"
                self.slot_of_command[command_id] = slot
            for record in records:
                yield slot, command_id, record

    def check(self, step: int) -> None:
        for alert in self.alerts.new():
            self._note_alert(alert)
        per_label = Counter(
            str(getattr(c, "comment", "")) for c in self.fidelity.ssm_commands.values() if self.night is not None
        )
        for label, n in per_label.items():
            checked(self.report, "one command per chunk and slot", step, n <= 1, lambda k=label, m=n: f"{m} x {k}")
        runs: Counter[tuple[str, str]] = Counter()
        for slot, _command_id, record in self._invocations():
            runs[(record.instance_id, slot)] += 1
            checked(
                self.report,
                "never on an instance outside the policy",
                step,
                record.instance_id not in self.outsiders,
                lambda r=record: f"{r.instance_id} (not tagged) got command {r.command_id}",
            )
        for (instance_id, slot), n in runs.items():
            checked(
                self.report,
                "one command per target per slot",
                step,
                n <= 1,
                lambda i=instance_id, s=slot, m=n: f"{i}: {m} invocations in slot {s}",
            )
        for (instance_id, slot), n in self.failure_alerts.items():
            checked(
                self.report,
                "every failed command alerted exactly once",
                step,
                n <= 1,
                lambda i=instance_id, s=slot, m=n: f"{i}: {m} failure alerts for slot {s}",
            )
        self._announce()

    def _announce(self) -> None:
        """The Run Command events SSM emitted up to now, through the rule (it drops the statuses RULE_SKIPS)."""
        for event in self.fidelity.ssm_drain_events():
            if event["detail"]["status"] in RULE_SKIPS:
                continue
            self.wiring.event(self.clock.now, json.dumps(event))

    def _note_alert(self, alert: dict[str, Any]) -> None:
        kind = alert.get("alert")
        slot = str(alert.get("slot") or (self.night.slot if self.night else "*"))
        if kind == FAILED_ALERT:
            key = (str(alert.get("instance_id")), slot)
            self.failure_alerts[key] += 1
            self.alerted.add(key)
        elif kind == NOT_SENT or (kind is not None and "not planned" in str(kind)):
            self.alerted.add(("*", slot))
        elif kind == GIVEN_UP:
            self._dead_letter(str(alert.get("body", "")))

    def _dead_letter(self, body: str) -> None:
        """A work item given up (its alert, or the dead-letter queue's alarm): what it names counts as alerted."""
        with suppress(ValueError):
            payload = json.loads(body)
            slot = str(payload.get("slot") or (self.night.slot if self.night else "*"))
            if payload.get("kind") in ("send", "check"):
                self.alerted.add(("*", slot))  # the whole chunk's command
                return
            detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
            if detail.get("instance-id"):
                self.alerted.add((str(detail["instance-id"]), slot))
            else:
                self.alerted.add(("*", slot))

    def end_of_night(self, night: Night) -> None:
        for body in self.wiring.dead_letters:
            self._dead_letter(body)
        self.wiring.dead_letters.clear()
        for alert in self.alerts.new():
            self._note_alert(alert)
        outcomes: dict[str, str] = {}
        for slot, _command_id, record in self._invocations():
            if slot == night.slot:
                outcomes[record.instance_id] = self.fidelity.ssm_state(record).details
        step = self.report.steps
        for instance_id in sorted(night.expected):
            outcome = outcomes.get(instance_id, "no invocation")
            alerted = bool({(instance_id, night.slot), ("*", night.slot)} & self.alerted)
            if instance_id in self.terminated:
                continue
            if outcome == "Success":
                checked(
                    self.report,
                    "no failure alert for a command that succeeded",
                    step,
                    (instance_id, night.slot) not in self.failure_alerts,
                    lambda i=instance_id: f"{i}: alerted as failed in slot {night.slot}, its invocation succeeded",
                )
                continue
            checked(
                self.report,
                "every failed command alerted exactly once",
                step,
                alerted,
                lambda i=instance_id, o=outcome: f"{i}: {o} in slot {night.slot}, not alerted",
            )

    # -- the year ----------------------------------------------------------------------------------------------

    def run(self, plant: Callable[[RunCommandSoak], None] | None = None) -> ModuleReport:
        """The year; then, for the smoke test, `plant` (a violation made by hand) and every invariant checked again."""
        mock_random.seed(self.report.seed)  # moto's ids: the same seed gives the same run
        with ExitStack() as stack:
            self._setup(stack.enter_context(runcommand_world(self.clock)))
            self.wiring = Wiring(
                runcommand_handlers, self.clock, self.faults, self.report, self.check, stop_at_step=self.stop_at_step
            )
            stack.enter_context(self.faults.on_aws_calls((*AWS_SERVICES, "ssm")))
            with suppress(StopSoak):
                self._year()
                if plant is not None:
                    plant(self)
                    self.final_checks()
        self.report.faults = Counter(self.faults.injected)
        return self.report

    def forget(self, night: Night) -> None:
        """The night's commands are over: SSM's history of them is no longer read (keeps the emulator's scans of
        invocations to the current night)."""
        for command_id in [c for c, s in self.slot_of_command.items() if s == night.slot]:
            self.fidelity.ssm_invocations.pop(command_id, None)

    def final_checks(self) -> None:
        self.check(self.report.steps)
        if self.night is not None:
            self.end_of_night(self.night)

    def _year(self) -> None:
        previous: Night | None = None
        for day in range(self.days):
            at = FIRST_DAY + timedelta(days=day) + SLOT_AT
            self.wiring.run_until(at, self._next_moment)
            if previous is not None:
                self.end_of_night(previous)
                self.forget(previous)
            self._tonight()
            states = self._states()
            night = Night(format_time(at), at)
            night.expected = {i for i in self.managed if states.get(i) not in ("shutting-down", "terminated")}
            self.night = night
            self.wiring.schedule({"scheduled_time": night.slot})
            previous = night
        self.wiring.run_until(self.clock.now + timedelta(hours=6), self._next_moment)
        if previous is not None:
            self.end_of_night(previous)

    def _tonight(self) -> None:
        """Tonight's faults of the instances: the script fails, the agent loses its connection, the instance is
        terminated during the run; yesterday's heal."""
        at = self.clock.now
        for instance_id in sorted(self.managed - self.terminated):
            self.fidelity.ssm_outcome(instance_id, None)
            self.fidelity.restore_agent(instance_id)
            if self.faults.chance("command_failed"):
                self.fidelity.ssm_outcome(instance_id, "Failed", exit_code=1, after=RUN_TIME)
            if self.faults.chance("agent_lost"):
                self.fidelity.lose_agent(instance_id)
            if self.faults.chance("instance_terminated"):
                moment = at + timedelta(seconds=self.faults.rng.randrange(1, int(CHAOS_WINDOW.total_seconds())))
                self.chaos.append((moment, instance_id))
        self.chaos.sort()

    def _next_moment(self) -> datetime | None:
        """Chaos due now, SSM's events up to now; the next moment something happens outside the queue."""
        while self.chaos and self.chaos[0][0] <= self.clock.now:
            _moment, instance_id = self.chaos.pop(0)
            self.ec2.terminate_instances(InstanceIds=[instance_id])
            self.terminated.add(instance_id)
            self.managed.update(run_instances(self.ec2, 1, TAGS))
        self._announce()
        moments = [m for m in (self.fidelity.ssm_next_change(), self.chaos[0][0] if self.chaos else None) if m]
        return min(moments) if moments else None


@contextmanager
def runcommand_world(clock: Clock) -> Iterator[MotoFidelity]:
    """bench/runcommand.py's account settings (the tag-targeted nightly script, output to S3, SSM's assumed delivery
    and run times); yields the fidelity."""
    with moto_account() as infra, faithful_aws(clock, sqs_time=True) as fidelity:
        fidelity.ssm_delivery_time = DELIVERY_TIME
        fidelity.ssm_run_time = RUN_TIME
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=RUN_OUTPUT_BUCKET)
        env = runcommand_function_env(
            infra.queue_url, OPS_ALERT_TOPIC_ARN=infra.topic_arn, OPS_TARGET_TAGS=json.dumps(TAGS)
        )
        with patched_env(env):
            install_runtimes(clock, MODULE)
            try:
                yield fidelity
            finally:
                runcommand_handlers.planner_runtime.install(None)
                runcommand_handlers.worker_runtime.install(None)


def soak(
    seed: int, days: int, sources: int, stop_at_step: int | None = None, rates: dict[str, float] | None = None
) -> ModuleReport:
    return RunCommandSoak(seed, days, sources, stop_at_step, rates or RATES).run()
