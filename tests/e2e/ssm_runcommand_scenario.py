"""Simulated nights of the scheduled online backup of examples/ssm-runcommand: its tier-3 test.

The example as deployed: every night at 02:30 Asia/Tokyo, `AWS-RunShellScript` on every instance tagged
`Backup = online-db` (one SendCommand by tag), output to the example's S3 bucket under the policy name, delivery
timeout 600 s, execution timeout 3600 s, MaxConcurrency 10, MaxErrors 100%. It is applied with
`force_destroy_output_bucket = true` (`FORCE_DESTROY`, the example's own variable; its README says to pass it): the
nights leave output objects in the versioned bucket, and the destroy check must get rid of it.

On the harness of `tests/e2e/scenario.py` this module plays:

* EventBridge Scheduler: the planner invoked with each night's `scheduled_time` (`scheduler_slots`);
* SSM Run Command (moto with the fidelity patches E40-E52 of tests/support/moto_fidelity.py): the invocations run a
  timeline on the simulated clock - delivered after `DELIVERY_TIME`, then each instance's planned outcome
  (`ssm_outcome`), MaxConcurrency batches (E45), output objects in the example's bucket and StandardOutputUrl (E50);
  unmanaged nodes (`unmanage`) are neither listed nor targeted, a lost agent (`lose_agent`) stays In Progress until
  the total timeout;
* SSM as the emitter of `EC2 Command Status-change Notification` and `EC2 Command Invocation Status-change
  Notification`: every status change the fidelity reports (E52 `ssm_drain_events`) is put on the local default bus
  when it happens (`Emitter`), unless the night loses it (events are best effort); the rule Terraform created
  decides what reaches the work queue;
* the operators: databases whose backup fails, hangs, whose agent is missing or lost, a fleet that grows to 60.

Time is simulated (February 2027): the handlers' clock (`handler_clock`), SQS delays, the SSM timelines and the event
times all run on it. The nights (`run_nights`), 02:30 in Tokyo (17:30 UTC the day before):

1. Mon 2027-02-08, six tagged databases and an untagged bastion: db-1 and db-2 succeed; db-fail's backup exits 3
   (Failed, its output and error in the bucket); db-slow runs past the execution timeout (ExecutionTimedOut);
   db-noagent is no managed node (NotManaged: SSM's tag targeting skips it silently, the worker names it);
   db-lost's agent lost its connection (sent to, DeliveryTimedOut at the total timeout). Right after the send, the
   published samples (../shared/events/ssm-*.json) are put on the bus twice: rewritten to the deployed document,
   the night's command and db-1 - they reach the worker, which re-reads SSM (db-1's "Failed" sample does not fail
   db-1) - and as published (another document, AWS-RunPowerShellScript) - the rule's document-name filter drops
   them.
2. Tue 2027-02-09: the schedule is delivered twice (one SendCommand); every event naming db-2, and the command's own
   status events, are lost: a delayed check (chained every 15 minutes up to the deadline) settles db-2. db-noagent
   is named again (one alert for the slot, despite the second delivery); the others succeed (db-lost's agent is
   back).
3. Wed 2027-02-10: the fleet has grown to 60 tagged databases (db-noagent managed again): one SendCommand by tag
   for all of them (SSM resolves the tag; more than SendCommand's 50 InstanceIds), 60 invocations in
   MaxConcurrency batches, 60 output objects, no alert.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import botocore.client
from scripts.local_aws import ACCOUNT_ID, Aws
from tests.e2e import scenario
from tests.e2e.ebs_snapshot_scenario import AlertInbox
from tests.e2e.scenario import DeployedPolicy, Deployment, SimulatedClock, SlotReport
from tests.support.moto_fidelity import ssm_event_entries
from tests.support.scheduler_slots import scheduler_slots

EXAMPLE = Path("examples/ssm-runcommand")
FORCE_DESTROY = scenario.Variant(
    EXAMPLE,
    "force-destroy",
    "# Written by tests/e2e/ssm_runcommand_scenario.py: the example, with its output bucket emptied by destroy.\n"
    'variable "force_destroy_output_bucket" {\n  default = true\n}\n',
)
VARIANTS = (FORCE_DESTROY,)
EVENTS_DIR = Path(__file__).resolve().parents[3] / "shared" / "events"
SAMPLES = (
    "ssm-command-status-success.json",
    "ssm-command-status-failed.json",
    "ssm-command-invocation-status-success.json",
    "ssm-command-invocation-status-failed.json",
)
COMMAND_EVENT = "EC2 Command Status-change Notification"
INVOCATION_EVENT = "EC2 Command Invocation Status-change Notification"
FAILED_ALERT = "run command failed on instance"
NOT_SENT_ALERT = "run command not sent"

TARGET_TAG = {"Backup": "online-db"}
TOKYO = ZoneInfo("Asia/Tokyo")
NIGHTS = (datetime(2027, 2, 8, tzinfo=TOKYO), datetime(2027, 2, 11, tzinfo=TOKYO))
DUPLICATE_NIGHT = 2
LOST_EVENTS_NIGHT = 2
FLEET_NIGHT = 3
FLEET_SIZE = 60
# How long SSM takes to hand a command to a running agent, and a database's backup (assumed: AWS publishes no
# figure). The backup outlasts the worker's first check (5 minutes after the send): the events, or the check at the
# deadline, settle it. On the fleet night a smaller database each, so that 60 in batches of 10 end within the hour.
DELIVERY_TIME = timedelta(seconds=10)
BACKUP_TIME = timedelta(minutes=20)
FLEET_BACKUP_TIME = timedelta(minutes=2)
FAILED_EXIT_CODE = 3
FAILED_STDOUT = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n"
FAILED_STDERR = 'pg_basebackup: error: could not create directory "/var/backups/postgresql": No space left on device\n'
MAX_ROUNDS = 400


def backup_stdout(name: str) -> str:
    return f"4.1G\t/var/backups/postgresql/{name}\n"


# ---------------------------------------------------------------------------------------------------------------
# Deployment
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCommandDeployment:
    """What Terraform deployed: the planner/worker `deployment`, the output bucket and prefix, the document, the
    deployed rule (pattern and targets, read back from EventBridge) and the example's outputs."""

    deployment: Deployment
    bucket: str
    prefix: str
    document: str
    alarm_topic_arn: str
    rule_pattern: Mapping[str, Any]
    rule_targets: tuple[str, ...]
    outputs: Mapping[str, Any]


def deployment_from_terraform(aws: Aws, outputs: Mapping[str, Any], example: Path) -> RunCommandDeployment:
    """The policy as deployed, read back from the local AWS as Lambda, Scheduler and EventBridge see it (handlers
    checked against the outputs)."""
    lambda_ = aws.client("lambda")
    planner, worker = str(outputs["planner_function_name"]), str(outputs["worker_function_name"])
    configurations = {name: lambda_.get_function_configuration(FunctionName=name) for name in (planner, worker)}
    for function, output in ((planner, "planner_handler"), (worker, "worker_handler")):
        if configurations[function]["Handler"] != outputs[output]:
            raise ValueError(f"{function} is deployed with {configurations[function]['Handler']!r}, not {output}")
    environments = {name: dict(c["Environment"]["Variables"]) for name, c in configurations.items()}
    schedule_arn = str(outputs["schedules"]["planner"]["arn"])
    schedule = aws.client("scheduler").get_schedule(Name=schedule_arn.rsplit("/", 1)[-1])
    events = aws.client("events")
    rule_name = str(outputs["event_rule_arns"]["command-status"]).rsplit("/", 1)[-1]
    rule = events.describe_rule(Name=rule_name)
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    worker_environment = environments[worker]
    return RunCommandDeployment(
        deployment=Deployment(
            policy_name=worker_environment["OPS_POLICY_NAME"],
            generations=0,
            planner_function=planner,
            worker_function=worker,
            planner_handler=str(outputs["planner_handler"]),
            worker_handler=str(outputs["worker_handler"]),
            planner_role=configurations[planner]["Role"].rsplit("/", 1)[-1],
            worker_role=configurations[worker]["Role"].rsplit("/", 1)[-1],
            planner_environment=environments[planner],
            worker_environment=worker_environment,
            work_queue_url=str(outputs["work_queue_url"]),
            dlq_url=str(outputs["dlq_url"]),
            ledger_table=str(outputs["ledger_table_name"]),
            schedule_arn=str(schedule["Arn"]),
            schedule_expression=str(schedule["ScheduleExpression"]),
            schedule_timezone=str(schedule.get("ScheduleExpressionTimezone", "UTC")),
            schedule_input=str(schedule["Target"]["Input"]),
            how=f"terraform apply of {EXAMPLE.as_posix()} (force_destroy_output_bucket = true) against a local AWS "
            "(moto server on 127.0.0.1)",
        ),
        bucket=str(outputs["output_bucket_name"]),
        prefix=worker_environment["OPS_OUTPUT_S3_PREFIX"],
        document=worker_environment["OPS_DOCUMENT_NAME"],
        alarm_topic_arn=str(outputs["alarm_topic_arn"]),
        rule_pattern=json.loads(rule["EventPattern"]),
        rule_targets=tuple(str(target["Arn"]) for target in targets),
        outputs=outputs,
    )


# ---------------------------------------------------------------------------------------------------------------
# The policy's functions, and SSM as the emitter of its events
# ---------------------------------------------------------------------------------------------------------------


Call = tuple[str, dict[str, Any]]  # (operation, parameters) of an AWS request the handlers made


def event_kind(body: str) -> str:
    """The message count's label: `command event Success`, `invocation event Failed`, or the work item's kind."""
    try:
        payload = json.loads(body)
    except ValueError:
        return "malformed"
    if isinstance(payload, dict) and payload.get("detail-type") in (COMMAND_EVENT, INVOCATION_EVENT):
        short = "command" if payload["detail-type"] == COMMAND_EVENT else "invocation"
        return f"{short} event {payload.get('detail', {}).get('status')}"
    return scenario.message_kind(body)


class RunCommandPolicy(DeployedPolicy):
    """The deployed planner and worker on the simulated clock; records every AWS request the handlers make."""

    def __init__(self, aws: Aws, deployed: RunCommandDeployment, clock: SimulatedClock) -> None:
        super().__init__(aws, deployed.deployment, clock, handler_clock=True, kinds=event_kind)
        self.deployed = deployed
        self.calls: list[Call] = []
        self.bodies: list[dict[str, Any]] = []  # the SSM events the worker was handed, as received
        self.handled: list[tuple[datetime, str]] = []  # (simulated time, kind) of every message handed to the worker

    def _invoke(self, function: str, handler: str, environment: Mapping[str, str], event: Any) -> Any:
        original = botocore.client.BaseClient._make_api_call
        calls = self.calls

        def recording(client: Any, operation: str, params: Mapping[str, Any]) -> Any:
            calls.append((operation, dict(params)))
            return original(client, operation, params)

        for record in event.get("Records", []) if isinstance(event, dict) else []:
            self.handled.append((self.clock.now(), event_kind(record["body"])))
            body = json.loads(record["body"])
            if isinstance(body, dict) and body.get("source") == "aws.ssm":
                self.bodies.append(body)
        with mock.patch.object(botocore.client.BaseClient, "_make_api_call", recording):
            return super()._invoke(function, handler, environment, event)


class Emitter:
    """SSM's EventBridge events: every status change up to the simulated clock, put on the local default bus when it
    happens (E52), except those `lose` says are lost (SSM sends events on a best-effort basis)."""

    def __init__(self, aws: Aws, policy: RunCommandPolicy) -> None:
        self.fidelity = aws.fidelity
        self.policy = policy
        self.lose: Callable[[Mapping[str, Any]], bool] = lambda _event: False
        self.emitted: Counter[str] = Counter()
        self.lost: list[Mapping[str, Any]] = []

    def announce(self) -> int:
        events = self.fidelity.ssm_drain_events()
        kept = []
        for event in events:
            if self.lose(event):
                self.lost.append(event)
                continue
            kept.append(event)
            short = "command" if event["detail-type"] == COMMAND_EVENT else "invocation"
            self.emitted[f"{short} event {event['detail']['status']}"] += 1
        return self.policy.put_events(ssm_event_entries(kept)) if kept else 0


# ---------------------------------------------------------------------------------------------------------------
# The account
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Fleet:
    names: dict[str, str] = field(default_factory=dict)  # instance id -> Name, launch order

    def id_of(self, name: str) -> str:
        return next(instance for instance, known in self.names.items() if known == name)

    def arn(self, region: str, name: str) -> str:
        return f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{self.id_of(name)}"


def launch(ec2: Any, fleet: Fleet, names: Sequence[str], tags: Mapping[str, str]) -> list[str]:
    response = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=len(names),
        MaxCount=len(names),
        InstanceType="t3.medium",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    ids = [str(instance["InstanceId"]) for instance in response["Instances"]]
    for instance_id, name in zip(ids, names, strict=True):
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": name}])
        fleet.names[instance_id] = name
    return ids


FIRST_FLEET = ("db-1", "db-2", "db-fail", "db-slow", "db-noagent", "db-lost")


# ---------------------------------------------------------------------------------------------------------------
# One night
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One instance's invocation as SSM answers ListCommandInvocations (Details) after the night."""

    status: str
    details: str
    exit_code: int | None
    output_url: str


@dataclass
class NightRun(SlotReport):
    number: int = 0
    local: str = ""  # the slot in Tokyo
    events: list[str] = field(default_factory=list)  # what happened around the night (operators, faults)
    summaries: list[dict[str, Any]] = field(default_factory=list)  # the planner's answer, per delivery
    calls: list[Call] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)  # ListCommands of the night's window
    invocations: dict[str, dict[str, Invocation]] = field(default_factory=dict)  # command id -> name -> invocation
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> its run@slot ledger item
    command_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # command id -> its ledger item
    alerts: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, str] = field(default_factory=dict)  # S3 key -> body, under the night's commands
    emitted: Counter[str] = field(default_factory=Counter)  # events put on the bus
    lost: list[str] = field(default_factory=list)  # events lost: "<kind> <status> <instance name or command>"
    handled: list[tuple[datetime, str]] = field(default_factory=list)  # (time, kind) of the messages the worker got
    bodies: list[dict[str, Any]] = field(default_factory=list)  # the SSM events the worker got, as the rule sent them
    deadline: str = ""  # the verification deadline of the night's command (send + OPS_COMPLETION_TIMEOUT_MINUTES)

    @property
    def send_commands(self) -> list[dict[str, Any]]:
        return [params for operation, params in self.calls if operation == "SendCommand"]

    @property
    def operations(self) -> Counter[str]:
        return Counter(operation for operation, _params in self.calls)

    def invocation(self, name: str) -> Invocation:
        (found,) = [by_name[name] for by_name in self.invocations.values() if name in by_name]
        return found


def _local(moment: datetime) -> str:
    return moment.astimezone(TOKYO).strftime("%Y-%m-%d %a %H:%M %Z")


class Nights:
    """Drives the deployed policy through the nights, and plays SSM and the operators around it."""

    def __init__(self, aws: Aws, deployed: RunCommandDeployment, clock: SimulatedClock) -> None:
        self.aws = aws
        self.deployed = deployed
        self.clock = clock
        self.policy = RunCommandPolicy(aws, deployed, clock)
        self.emitter = Emitter(aws, self.policy)
        self.fidelity = aws.fidelity
        self.ec2 = aws.client("ec2")
        self.ssm = aws.client("ssm")
        self.s3 = aws.client("s3")
        self.fleet = Fleet()
        self.inbox = AlertInbox(aws, deployed.alarm_topic_arn, f"{deployed.deployment.policy_name}-e2e-inbox")

    def close(self) -> None:
        self.inbox.close()

    # -- SSM's clock and events --------------------------------------------------------------------------------

    def next_change(self) -> timedelta | None:
        moment = self.fidelity.ssm_next_change()
        return None if moment is None else moment - self.clock.now()

    def drain(self, run: NightRun) -> None:
        """Work the queue until it is empty and SSM has nothing under way: poll; put SSM's events on the bus; else
        let simulated time run to the next due message or SSM status change, whichever comes first."""
        for _round in range(MAX_ROUNDS):
            while self.policy.poll_once(run):
                pass
            if self.emitter.announce():
                continue
            delayed, in_flight = self.policy.queue_depths()
            sooner = self.next_change()
            if not delayed and not in_flight and sooner is None:
                return
            steps = [sooner] if sooner is not None else []
            if delayed:
                steps.append(scenario.SQS_MAX_DELAY)
            elif in_flight:
                steps.append(self.policy.visibility_timeout())
            self.clock.advance(max(min(steps), timedelta(0)) + timedelta(seconds=1))
            run.clock_advances += 1
        raise RuntimeError(f"night {run.number} not drained after {MAX_ROUNDS} rounds: {self.policy.queue_depths()}")

    # -- the published samples -----------------------------------------------------------------------------------

    def feed_samples(self, command_id: str) -> dict[str, list[str]]:
        """The four published samples put on the bus as published (another document) and rewritten to the deployed
        document, `command_id` and db-1; which reached the worker through the deployed rule, and which it dropped."""
        region = self.aws.region
        entries: list[tuple[str, dict[str, Any]]] = []
        for name in SAMPLES:
            event = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
            entries.append((f"{name} as published", _entry(event, self.clock.now())))
            detail = {**event["detail"], "document-name": self.deployed.document, "command-id": command_id}
            if "instance-id" in detail:
                detail["instance-id"] = self.fleet.id_of("db-1")
            rewritten = {**event, "detail": detail, "resources": [self.fleet.arn(region, "db-1")]}
            entries.append((f"{name} rewritten", _entry(rewritten, self.clock.now())))
        by_key = {_sample_key(json.loads(entry["Detail"]), entry["DetailType"]): label for label, entry in entries}
        before = len(self.policy.bodies)
        self.policy.put_events([entry for _label, entry in entries])
        report = NightRun(slot="samples")
        while self.policy.poll_once(report):
            pass
        reached = sorted(
            by_key[key]
            for body in self.policy.bodies[before:]
            if (key := _sample_key(body["detail"], body["detail-type"])) in by_key
        )
        return {"reached": reached, "filtered": sorted(set(by_key.values()) - set(reached))}

    # -- reading what AWS, the ledger and the topic say ------------------------------------------------------------

    def commands_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        pages = self.ssm.get_paginator("list_commands").paginate(
            Filters=[
                {"key": "DocumentName", "value": self.deployed.document},
                {"key": "InvokedAfter", "value": scenario.format_slot(start)},
                {"key": "InvokedBefore", "value": scenario.format_slot(end)},
            ]
        )
        return [command for page in pages for command in page["Commands"]]

    def read_invocations(self, command_id: str) -> dict[str, Invocation]:
        pages = self.ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id, Details=True)
        found = {}
        for page in pages:
            for invocation in page["CommandInvocations"]:
                plugins = invocation.get("CommandPlugins") or [{}]
                code = plugins[0].get("ResponseCode")
                found[self.fleet.names[invocation["InstanceId"]]] = Invocation(
                    status=str(invocation["Status"]),
                    details=str(invocation["StatusDetails"]),
                    exit_code=int(code) if isinstance(code, int) else None,
                    output_url=str(invocation.get("StandardOutputUrl") or plugins[0].get("StandardOutputUrl") or ""),
                )
        return found

    def objects_under(self, prefix: str) -> dict[str, str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.deployed.bucket, Prefix=prefix)
        keys = [str(item["Key"]) for page in pages for item in page.get("Contents", [])]
        return {
            key: self.s3.get_object(Bucket=self.deployed.bucket, Key=key)["Body"].read().decode("utf-8") for key in keys
        }

    def ledger(self) -> list[dict[str, Any]]:
        return scenario.ledger_items(self.aws, self.deployed.deployment.ledger_table)

    # -- a night -------------------------------------------------------------------------------------------------

    def night(
        self,
        number: int,
        moment: datetime,
        deliveries: int = 1,
        after_send: Callable[[str], None] | None = None,
    ) -> NightRun:
        self.clock.set(moment)
        run = NightRun(slot=scenario.format_slot(moment), number=number, local=_local(moment))
        first_call, first_lost = len(self.policy.calls), len(self.emitter.lost)
        first_handled, first_body = len(self.policy.handled), len(self.policy.bodies)
        emitted_before = Counter(self.emitter.emitted)
        for _delivery in range(deliveries):
            run.summaries.append(self.policy.plan(moment))
        if deliveries > 1:
            run.events.append(f"the schedule delivered {deliveries} times: planned {deliveries} times")
        if after_send is not None:
            while self.policy.poll_once(run):
                pass
            (command,) = self.commands_between(moment, moment + timedelta(hours=1))
            after_send(str(command["CommandId"]))
        self.drain(run)
        run.calls = self.policy.calls[first_call:]
        run.handled = self.policy.handled[first_handled:]
        run.bodies = self.policy.bodies[first_body:]
        run.emitted = self.emitter.emitted - emitted_before
        for event in self.emitter.lost[first_lost:]:
            detail = event["detail"]
            about = self.fleet.names.get(str(detail.get("instance-id")), "the command")
            short = "command" if event["detail-type"] == COMMAND_EVENT else "invocation"
            run.lost.append(f"{short} event {detail['status']} of {about}")
        run.alerts = self.inbox.take()
        run.commands = self.commands_between(moment, moment + timedelta(hours=12))
        prefix = f"{self.deployed.prefix}/" if self.deployed.prefix else ""
        for command in run.commands:
            command_id = str(command["CommandId"])
            run.invocations[command_id] = self.read_invocations(command_id)
            run.objects.update(self.objects_under(f"{prefix}{command_id}/"))
        for item in self.ledger():
            sk = str(item["sk"])
            if sk.startswith(f"run@{run.slot}#"):
                run.runs[self.fleet.names.get(sk.rsplit("#", 1)[1], sk)] = item
            elif sk.startswith("command#") and item.get("slot") == run.slot:
                run.command_items[sk.split("#", 1)[1]] = item
        checks = [body for _op, params in run.calls for body in _check_bodies(params)]
        run.deadline = min((check["deadline"] for check in checks), default="")
        return run


def _entry(event: Mapping[str, Any], moment: datetime) -> dict[str, Any]:
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Resources": list(event["resources"]),
        "Detail": json.dumps(event["detail"]),
        "Time": moment,
    }


def _sample_key(detail: Mapping[str, Any], detail_type: str) -> tuple[str, str, str, str]:
    return (detail_type, str(detail.get("status")), str(detail.get("document-name")), str(detail.get("command-id")))


def _check_bodies(params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The delayed checks among an SQS SendMessage/SendMessageBatch request's messages."""
    bodies = [params.get("MessageBody")] + [entry.get("MessageBody") for entry in params.get("Entries", [])]
    for body in bodies:
        if isinstance(body, str):
            payload = json.loads(body)
            if isinstance(payload, dict) and payload.get("kind") == "check":
                yield payload


# ---------------------------------------------------------------------------------------------------------------
# The nights
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class NightsReport:
    deployed: RunCommandDeployment
    fleet: Fleet
    nights: list[NightRun]
    sample_routing: dict[str, list[str]]
    sample_effect: dict[str, Any]  # what the worker did with the rewritten samples
    log: scenario.HandlerLog

    def night(self, number: int) -> NightRun:
        return self.nights[number - 1]


@contextmanager
def _ssm_durations(aws: Aws) -> Iterator[None]:
    fidelity = aws.fidelity
    saved = (fidelity.ssm_delivery_time, fidelity.ssm_run_time)
    fidelity.ssm_delivery_time, fidelity.ssm_run_time = DELIVERY_TIME, BACKUP_TIME
    try:
        yield
    finally:
        fidelity.ssm_delivery_time, fidelity.ssm_run_time = saved


def run_nights(aws: Aws, deployed: RunCommandDeployment) -> NightsReport:
    """On an empty EC2 account: the fleet, then the three nights (see the module docstring)."""
    slots = scheduler_slots(deployed.deployment.schedule_expression, deployed.deployment.schedule_timezone, *NIGHTS)
    clock = SimulatedClock(slots[0] - timedelta(hours=1))
    scenario.fresh_ec2(aws)
    nights = Nights(aws, deployed, clock)
    fidelity = aws.fidelity
    try:
        with scenario.simulated_aws_time(aws, clock), _ssm_durations(aws):
            fleet = nights.fleet
            launch(nights.ec2, fleet, FIRST_FLEET, TARGET_TAG)
            launch(nights.ec2, fleet, ["bastion"], {"Backup": "none"})
            ids = {name: fleet.id_of(name) for name in FIRST_FLEET}
            runs: list[NightRun] = []
            routing: dict[str, list[str]] = {}
            effect: dict[str, Any] = {}

            # Night 1: every way a backup can end.
            clock.set(slots[0] - timedelta(minutes=30))
            fidelity.unmanage(ids["db-noagent"])
            fidelity.lose_agent(ids["db-lost"])
            for name in ("db-1", "db-2"):
                fidelity.ssm_outcome(ids[name], "Success", after=BACKUP_TIME, stdout=backup_stdout(name))
            fidelity.ssm_outcome(
                ids["db-fail"],
                "Failed",
                exit_code=FAILED_EXIT_CODE,
                after=timedelta(minutes=3),
                stdout=FAILED_STDOUT,
                stderr=FAILED_STDERR,
            )
            fidelity.ssm_outcome(ids["db-slow"], "ExecutionTimedOut", stdout="pg_basebackup: waiting for WAL ...\n")

            def samples(command_id: str) -> None:
                routing.update(nights.feed_samples(command_id))
                # What the worker made of them: the alerts they caused, db-1's run as the ledger has it then.
                effect["alerts"] = nights.inbox.take()
                effect["db-1"] = next(
                    (item for item in nights.ledger() if str(item["sk"]).endswith(f"#{ids['db-1']}")), {}
                )

            first = nights.night(1, slots[0], after_send=samples)
            first.events[:0] = [
                "db-noagent: no managed node (no SSM Agent registered)",
                "db-lost: SSM Agent lost its connection (PingStatus ConnectionLost)",
                f"db-fail: the backup exits {FAILED_EXIT_CODE} (no space left on device)",
                "db-slow: the backup runs past the execution timeout (3600 s)",
                "published samples put on the bus right after the send (as published, and rewritten to the command)",
            ]
            runs.append(first)

            # Night 2: the schedule delivered twice; db-2's events and the command's own events are lost.
            clock.set(slots[1] - timedelta(minutes=30))
            for name in ("db-fail", "db-slow", "db-lost"):
                fidelity.ssm_outcome(ids[name], "Success", after=BACKUP_TIME, stdout=backup_stdout(name))
            fidelity.restore_agent(ids["db-lost"])
            db_2 = ids["db-2"]
            nights.emitter.lose = lambda event: (
                event["detail-type"] == COMMAND_EVENT or event["detail"].get("instance-id") == db_2
            )
            second = nights.night(2, slots[1], deliveries=2)
            nights.emitter.lose = lambda _event: False
            second.events += ["db-lost: agent reconnected", "lost: every event naming db-2, and the command's own"]
            runs.append(second)

            # Night 3: the fleet grew to 60; db-noagent is a managed node again.
            clock.set(slots[2] - timedelta(minutes=30))
            grown = [f"db-{number:02d}" for number in range(len(FIRST_FLEET) + 1, FLEET_SIZE + 1)]
            launch(nights.ec2, fleet, grown, TARGET_TAG)
            fidelity.manage(ids["db-noagent"])
            for instance_id, name in fleet.names.items():
                if name != "bastion":
                    fidelity.ssm_outcome(instance_id, "Success", after=FLEET_BACKUP_TIME, stdout=backup_stdout(name))
            third = nights.night(3, slots[2])
            third.events += [f"{len(grown)} more databases tagged {_tag_text()}: {FLEET_SIZE} in all"]
            runs.append(third)
            return NightsReport(deployed, fleet, runs, routing, effect, nights.policy.log)
    finally:
        nights.close()


def _tag_text() -> str:
    return ", ".join(f"{key}={value}" for key, value in TARGET_TAG.items())


# ---------------------------------------------------------------------------------------------------------------
# What is left, and the report
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinalState:
    ledger: list[dict[str, Any]]
    work_queue_messages: int
    dlq_messages: int
    bucket_keys: list[str]


def final_state(aws: Aws, deployed: RunCommandDeployment) -> FinalState:
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=deployed.bucket)
    return FinalState(
        ledger=scenario.ledger_items(aws, deployed.deployment.ledger_table),
        work_queue_messages=scenario.queue_total(sqs, deployed.deployment.work_queue_url),
        dlq_messages=scenario.queue_total(sqs, deployed.deployment.dlq_url),
        bucket_keys=[str(item["Key"]) for page in pages for item in page.get("Contents", [])],
    )


def s3_key(deployed: RunCommandDeployment, url: str) -> str:
    """The object key of an output URL SSM reported (`https://s3.<region>.amazonaws.com/<bucket>/<key>`, or
    `s3://<bucket>/<key>`), checked to be in the example's bucket."""
    parsed = urlparse(url)
    path = parsed.path.lstrip("/")
    bucket, _, key = (parsed.netloc, "/", path) if parsed.scheme == "s3" else path.partition("/")
    if bucket != deployed.bucket:
        raise ValueError(f"{url} is not in the example's bucket {deployed.bucket}")
    return key


def problems(report: NightsReport, state: FinalState) -> list[str]:
    """What must not happen (the demo exits non-zero on any)."""
    found: list[str] = []
    bastion = report.fleet.id_of("bastion")
    if any(bastion in by_name for n in report.nights for by_name in n.invocations.values()):
        found.append("the untagged bastion got the command")
    if any(len(night.send_commands) != 1 or len(night.commands) != 1 for night in report.nights):
        found.append("a night sent other than one command")
    if state.work_queue_messages or state.dlq_messages:
        found.append("messages left in the work or dead-letter queue")
    if any(night.failed_records for night in report.nights):
        found.append("work items failed")
    if any(item.get("state") == "pending" for item in state.ledger):
        found.append("ledger items left pending")
    if report.sample_routing.get("filtered") != sorted(f"{name} as published" for name in SAMPLES):
        found.append(f"sample routing: {report.sample_routing}")
    return found
