"""Simulated weeks of scheduled start/stop through the deployed examples/instance-scheduler: its tier-3 test.

Three deployments of the example, applied together (`VARIANTS`): the example itself (office hours in Asia/Tokyo,
start 08:00 and stop 20:00 on weekdays, not on its excluded dates), a stop-only policy (`STOP_ONLY`, 22:00 every
night in Tokyo: what people started by hand is stopped again, nothing is ever started) and a policy in
America/New_York (`NEW_YORK`, start 01:30 and stop 02:30 every night) for the days the clock changes.

On the harness of `tests/e2e/scenario.py` this module plays:

* EventBridge Scheduler: the invocations of each deployed schedule are computed from its cron expression and time
  zone as Scheduler evaluates them (`scheduler_slots`), not by shifting a UTC time: EventBridge Scheduler user
  guide, "Schedule types on EventBridge Scheduler" (daylight savings time),
  https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html - "EventBridge Scheduler automatically
  adjusts your schedule for daylight saving time. When time shifts forward in the Spring, if a cron expression falls
  on a non-existent date and time, your schedule invocation is skipped. When time shifts backwards in the Fall, your
  schedule runs only once and does not repeat its invocation." (the AWS Knowledge Center article
  https://repost.aws/knowledge-center/eventbridge-scheduler-adjust-dst says the same). So a local time in the
  spring-forward gap gives no slot, and a local time the fall-back repeats gives one, its first occurrence;
* EC2 as the emitter of `EC2 Instance State-change Notification`: every state change it observes is put on the
  local default bus (`pending` and `stopping` too: the rule Terraform created decides what reaches the queue);
* the operators: an instance started by hand, an instance terminated between the plan and the worker.

Time is simulated (2027, the year of the example's excluded dates and of the DST days): the handlers' clock
(`handler_clock`), SQS delays and the state changes of the instances (fidelity E33: `pending`/`stopping` last
`TRANSITION` instead of moto's instant end state) all run on the same clock.

The Tokyo week (`run_week`), Monday 2027-01-11 (Coming of Age Day, an excluded date of the example) to Sunday:

* Monday, holiday: both office-hours slots are invoked, the planner logs the excluded date and does nothing;
* Tuesday start: `batch-1` is terminated after the plan and before the worker (fidelity E34: a terminated id
  refuses a whole StartInstances): it is reported once and does not hold the others up;
* Wednesday start: the KMS key of `kms-db`'s encrypted volume is denied (fidelity E35): it falls back to
  `stopped` with `Client.InternalError`, reported with that reason; Wednesday stop is delivered twice (Scheduler
  and Lambda deliver at least once): one StopInstances per instance;
* Thursday stop: `slow-1` stays `stopping` for `SLOW_STOP` (fidelity E33), past the 20-minute verification
  deadline: reported once at the deadline;
* every slot: the member of Auto Scaling group `web-asg` (tagged like the others) is skipped and named in the
  planner's report; `dev-1` (stop-only policy) is started by hand on Tuesday and Thursday mornings and stopped
  by the nightly stop;
* Wednesday 16:30 and Thursday 15:30 in Tokyo (02:30 and 01:30 in New York): the New York policy, deployed with
  `auto_scaling_groups = "capacity"` and `schedule_rds = true`, sets its group `ny-batch-asg` to 0/0/0 and stops
  the RDS DB instance `ny-reports`, then restores the group's sizes and starts the database.

Before the week the published sample events (../shared/events/ec2-instance-state-*.json) are put on the bus,
naming `web-1`: which ones the deployed rule routes to each worker is recorded (`sample_routing`).

The DST days (`run_dst`): the New York policy over 2027-03-13..15 (spring forward on the 14th: 02:30 does not
exist) and 2027-11-06..08 (fall back on the 7th: 01:00-01:59 happens twice).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import botocore.client
from scripts.local_aws import ACCOUNT_ID, Aws
from tests.e2e import scenario
from tests.e2e.ebs_snapshot_scenario import AlertInbox
from tests.e2e.scenario import DeployedPolicy, Deployment, HandlerLog, SimulatedClock, SlotReport
from tests.support.scheduler_slots import scheduler_slots

EXAMPLE = Path("examples/instance-scheduler")
EVENTS_DIR = Path(__file__).resolve().parents[3] / "shared" / "events"
SAMPLES = ("ec2-instance-state-pending.json", "ec2-instance-state-running.json", "ec2-instance-state-stopped.json")
STATE_CHANGE = "EC2 Instance State-change Notification"
NOT_IN_STATE = "instance not in its scheduled state"  # the alert of an action that did not get there

STOP_ONLY = scenario.Variant(
    EXAMPLE,
    "stop-only",
    "# Written by tests/e2e/instance_scheduler_scenario.py: a stop-only policy (no start schedule, no starter).\n"
    'variable "name" {\n  default = "nightly-stop"\n}\n'
    'variable "excluded_dates" {\n  default = []\n}\n'
    'module "instance_scheduler" {\n'
    "  start_schedule         = null\n"
    '  stop_schedule          = "cron(0 22 * * ? *)"\n'
    '  target_tags            = { Schedule = "nightly-stop" }\n'
    "  missed_run_alarm_hours = 25\n"
    "}\n",
)
NEW_YORK = scenario.Variant(
    EXAMPLE,
    "new-york",
    "# Written by tests/e2e/instance_scheduler_scenario.py: a policy in a zone with daylight saving time, its slots\n"
    "# in the hours the clock changes (02:30 does not exist on the spring-forward day, 01:30 happens twice on the\n"
    "# fall-back day).\n"
    'variable "name" {\n  default = "new-york-nights"\n}\n'
    'variable "excluded_dates" {\n  default = []\n}\n'
    'module "instance_scheduler" {\n'
    '  start_schedule         = "cron(30 1 * * ? *)"\n'
    '  stop_schedule          = "cron(30 2 * * ? *)"\n'
    '  schedule_timezone      = "America/New_York"\n'
    '  target_tags            = { Schedule = "new-york" }\n'
    '  auto_scaling_groups    = "capacity"\n'
    "  schedule_rds           = true\n"
    "  missed_run_alarm_hours = 25\n"
    "}\n",
)
VARIANTS = (STOP_ONLY, NEW_YORK)

OFFICE_TAG = {"Schedule": "office-hours"}
NIGHTLY_TAG = {"Schedule": "nightly-stop"}
NEW_YORK_TAG = {"Schedule": "new-york"}
ASG_NAME = "web-asg"
TOKYO = ZoneInfo("Asia/Tokyo")
NY_GROUP = "ny-batch-asg"  # capacity mode: 0/0/0 at the New York stop, its sizes restored at the start
NY_DATABASE = "ny-reports"  # an RDS DB instance stopped and started by the New York policy
# The New York policy's nights fall in Tokyo's afternoons (stop 16:30, start 15:30 in January): one stop and the
# next start of them are simulated in the week too, for its group and database.
NY_WEEK_WINDOW = (datetime(2027, 1, 13, 16, tzinfo=TOKYO), datetime(2027, 1, 14, 16, tzinfo=TOKYO))
# Monday (an excluded date of the example: Coming of Age Day) to the next Monday, local time.
WEEK_START = datetime(2027, 1, 11, tzinfo=TOKYO)
WEEK_END = WEEK_START + timedelta(days=7)
HOLIDAY = date(2027, 1, 11)
TERMINATION = (date(2027, 1, 12), "start")  # batch-1 terminated between the plan and the worker
KMS_DENIED = (date(2027, 1, 13), "start")  # kms-db's volume key denied for this slot
DUPLICATE = (date(2027, 1, 13), "stop")  # the schedule delivered twice
SLOW = (date(2027, 1, 14), "stop")  # slow-1 stays stopping past the deadline
HAND_STARTS = (datetime(2027, 1, 12, 9, tzinfo=TOKYO), datetime(2027, 1, 14, 9, tzinfo=TOKYO))  # dev-1
# How long pending and stopping last (fidelity E33: AWS publishes no figure; about the order of magnitude seen).
TRANSITION = timedelta(minutes=2)
# slow-1's stop on SLOW: longer than the 20-minute verification deadline, over before the 22:00 nightly stop.
SLOW_STOP = timedelta(minutes=75)
NEW_YORK_ZONE = ZoneInfo("America/New_York")
SPRING_FORWARD = date(2027, 3, 14)
FALL_BACK = date(2027, 11, 7)
DST_WINDOWS = (
    (date(2027, 3, 13), date(2027, 3, 16)),
    (date(2027, 11, 6), date(2027, 11, 9)),
)
MAX_ROUNDS = 60


# ---------------------------------------------------------------------------------------------------------------
# Deployments: the example's two planners, one worker
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    action: str  # start | stop
    function: str  # the planner it invokes
    name: str
    arn: str
    expression: str
    timezone: str
    input: str  # the target input, with Scheduler's placeholders


@dataclass(frozen=True)
class SchedulerDeployment:
    """What Terraform deployed for one policy: `deployment` describes the worker and the stop planner (the planner
    of every policy here), `schedules` each deployed schedule by action, `planners` each planner's configuration."""

    deployment: Deployment
    schedules: Mapping[str, Schedule]
    planner_environments: Mapping[str, Mapping[str, str]]  # by function name
    starter_function: str | None
    alarm_topic_arn: str
    outputs: Mapping[str, Any]


PLANNERS = {"start": "starter", "stop": "stopper"}


def deployment_from_terraform(aws: Aws, outputs: Mapping[str, Any], example: Path) -> SchedulerDeployment:
    """The policy as deployed, read back from the local AWS as the Lambda service and Scheduler see it (handlers
    checked against the outputs, the schedules from GetSchedule); an action without a schedule has no planner."""
    lambda_ = aws.client("lambda")
    scheduler = aws.client("scheduler")
    worker = str(outputs["worker_function_name"])
    configurations = {worker: lambda_.get_function_configuration(FunctionName=worker)}
    schedules: dict[str, Schedule] = {}
    for action, key in PLANNERS.items():
        function = outputs.get(f"{key}_function_name")
        if function is None:
            continue
        configurations[function] = lambda_.get_function_configuration(FunctionName=function)
        deployed = outputs["schedules"][key]
        found = scheduler.get_schedule(Name=str(deployed["arn"]).rsplit("/", 1)[-1])
        schedules[action] = Schedule(
            action=action,
            function=str(function),
            name=str(found["Name"]),
            arn=str(found["Arn"]),
            expression=str(found["ScheduleExpression"]),
            timezone=str(found.get("ScheduleExpressionTimezone", "UTC")),
            input=str(found["Target"]["Input"]),
        )
    for function, configuration in configurations.items():
        expected = outputs["worker_handler"] if function == worker else outputs["planner_handler"]
        if configuration["Handler"] != expected:
            raise ValueError(f"{function} is deployed with {configuration['Handler']!r}, the outputs say {expected!r}")
    environments = {name: dict(c["Environment"]["Variables"]) for name, c in configurations.items()}
    stop = schedules["stop"]
    return SchedulerDeployment(
        deployment=Deployment(
            policy_name=environments[worker]["OPS_POLICY_NAME"],
            generations=0,
            planner_function=stop.function,
            worker_function=worker,
            planner_handler=str(outputs["planner_handler"]),
            worker_handler=str(outputs["worker_handler"]),
            planner_role=configurations[stop.function]["Role"].rsplit("/", 1)[-1],
            worker_role=configurations[worker]["Role"].rsplit("/", 1)[-1],
            planner_environment=environments[stop.function],
            worker_environment=environments[worker],
            work_queue_url=str(outputs["work_queue_url"]),
            dlq_url=str(outputs["dlq_url"]),
            ledger_table=str(outputs["ledger_table_name"]),
            schedule_arn=stop.arn,
            schedule_expression=stop.expression,
            schedule_timezone=stop.timezone,
            schedule_input=stop.input,
            how=f"terraform apply of {example.as_posix()} against a local AWS (moto server on 127.0.0.1)",
        ),
        schedules=schedules,
        planner_environments={s.function: environments[s.function] for s in schedules.values()},
        starter_function=outputs.get("starter_function_name"),
        alarm_topic_arn=str(outputs["alarm_topic_arn"]),
        outputs=outputs,
    )


# The start/stop requests the handlers made (operation, policy, resource ids): what "acted" means.
Call = tuple[str, str, tuple[str, ...]]
# Operation -> the parameter naming what it acts on.
ACTING_CALLS = {
    "StartInstances": "InstanceIds",
    "StopInstances": "InstanceIds",
    "UpdateAutoScalingGroup": "AutoScalingGroupName",
    "StartDBInstance": "DBInstanceIdentifier",
    "StopDBInstance": "DBInstanceIdentifier",
}


class SchedulerPolicy(DeployedPolicy):
    """A deployed instance-scheduler policy: each planner invoked by its own schedule, one worker; records the
    Start/StopInstances requests its handlers make."""

    def __init__(self, aws: Aws, deployed: SchedulerDeployment, clock: SimulatedClock, calls: list[Call]) -> None:
        super().__init__(aws, deployed.deployment, clock, handler_clock=True, kinds=self._kind)
        self.deployed = deployed
        self.name = deployed.deployment.policy_name
        self.calls = calls
        self.invocations: list[tuple[str, str]] = []  # (action, slot) of every planner invocation

    @staticmethod
    def _kind(body: str) -> str:
        try:
            payload = json.loads(body)
        except ValueError:
            return "malformed"
        if isinstance(payload, dict) and payload.get("detail-type") == STATE_CHANGE:
            return f"state event {payload.get('detail', {}).get('state')}"
        return scenario.message_kind(body)

    def _invoke(self, function: str, handler: str, environment: Mapping[str, str], event: Any) -> Any:
        original = botocore.client.BaseClient._make_api_call
        calls, name = self.calls, self.name

        def recording(client: Any, operation: str, params: Mapping[str, Any]) -> Any:
            if operation in ACTING_CALLS:
                named = params.get(ACTING_CALLS[operation], ())
                calls.append((operation, name, (named,) if isinstance(named, str) else tuple(named)))
            return original(client, operation, params)

        with mock.patch.object(botocore.client.BaseClient, "_make_api_call", recording):
            return super()._invoke(function, handler, environment, event)

    def plan_action(self, action: str, slot: datetime) -> dict[str, Any]:
        """The planner of `action`, invoked as its deployed schedule invokes it for `slot`."""
        schedule = self.deployed.schedules[action]
        self.invocations.append((action, scenario.format_slot(slot)))
        event = scenario.scheduler_input(schedule.input, slot, schedule.arn, len(self.invocations))
        environment = self.deployed.planner_environments[schedule.function]
        return dict(self._invoke(schedule.function, self.deployment.planner_handler, environment, event))

    def verification(self) -> dict[str, dict[str, Any]]:
        """The verification item of each resource (its newest action and outcome), by resource id."""
        return {
            str(item["sk"]): item
            for item in scenario.ledger_items(self.aws, self.deployment.ledger_table)
            if "#" not in str(item["sk"]) and item.get("source_id") in ("start", "stop")
        }


# ---------------------------------------------------------------------------------------------------------------
# The account: fleet, EC2's events, operators
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Fleet:
    names: dict[str, str] = field(default_factory=dict)  # instance id -> Name, launch order
    kms_key: str = ""
    asg_member: str = ""

    def id_of(self, name: str) -> str:
        return next(instance for instance, known in self.names.items() if known == name)


@dataclass
class SlotRun(SlotReport):
    """One invocation of one policy's schedule and everything until the queues were empty."""

    policy: str = ""
    action: str = ""
    local: str = ""  # the slot in the schedule's zone
    summaries: list[dict[str, Any]] = field(default_factory=list)  # the planner's answer, per delivery
    events: list[str] = field(default_factory=list)  # what happened around the slot (operators, faults)
    calls: list[Call] = field(default_factory=list)
    # Per instance of the policy's fleet: (state after the slot, verdict as the ledger and the planner tell it).
    verification: dict[str, tuple[str, str]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    log_from: int = 0  # index of the slot's first handler log line

    @property
    def acted(self) -> Counter[str]:
        """Instance id -> Start/StopInstances requests naming it in this slot."""
        return Counter(instance for _operation, _policy, ids in self.calls for instance in ids)


class Account:
    """The local account the policies share: EC2's event emitter, the queues of every policy drained together (one
    rule per policy gets every instance event of the account)."""

    def __init__(self, aws: Aws, policies: Sequence[SchedulerPolicy], clock: SimulatedClock) -> None:
        self.aws = aws
        self.policies = list(policies)
        self.clock = clock
        self.ec2 = aws.client("ec2")
        self.known: dict[str, str] = {}
        self.watching = False
        self.on_state: list[Callable[[str, str], None]] = []  # hooks: (instance id, new state)

    def states(self) -> dict[str, str]:
        pages = self.ec2.get_paginator("describe_instances").paginate()
        return {
            str(instance["InstanceId"]): str(instance["State"]["Name"])
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        }

    def announce(self) -> int:
        """EC2's `EC2 Instance State-change Notification` for every state change since the last call (EC2 emits
        one per transition, for every instance of the account; the rules pick theirs)."""
        entries = []
        for instance_id, state in self.states().items():
            if self.known.get(instance_id) == state:
                continue
            self.known[instance_id] = state
            if not self.watching:
                continue  # launched before the emitter started watching
            for hook in self.on_state:
                hook(instance_id, state)
            entries.append(
                {
                    "Source": "aws.ec2",
                    "DetailType": STATE_CHANGE,
                    "Resources": [f"arn:aws:ec2:{self.aws.region}:{ACCOUNT_ID}:instance/{instance_id}"],
                    "Detail": json.dumps({"instance-id": instance_id, "state": state}),
                    "Time": self.clock.now(),
                }
            )
        self.watching = True
        return self.policies[0].put_events(entries) if entries else 0

    def next_change(self) -> timedelta | None:
        """Until the first state change under way ends (fidelity E33)."""
        ends = [t.started + t.duration for t in self.aws.fidelity.instance_transitions.values()]
        return min(ends) - self.clock.now() if ends else None

    def drain(self, run: SlotRun) -> None:
        """Every policy's queue until all are empty, time running on to the next due message or state change."""
        for _round in range(MAX_ROUNDS):
            while sum(policy.poll_once(run) for policy in self.policies):
                pass
            if self.announce():
                continue
            depths = [policy.queue_depths() for policy in self.policies]
            delayed = any(d for d, _ in depths)
            if not delayed and not any(f for _, f in depths):
                if self.next_change() is None:
                    return
                step = self.next_change() or timedelta(0)
            else:
                step = scenario.SQS_MAX_DELAY if delayed else self.policies[0].visibility_timeout()
                sooner = self.next_change()
                if sooner is not None:
                    step = min(step, max(sooner, timedelta(0)))
            self.clock.advance(step + timedelta(seconds=1))
            run.clock_advances += 1
        depths = {policy.name: policy.queue_depths() for policy in self.policies}
        raise RuntimeError(
            f"queues not drained after {MAX_ROUNDS} rounds on {run.slot}: (delayed, in flight) {depths}, "
            f"next state change in {self.next_change()}"
        )

    def settle(self) -> None:
        """Let what is under way end and its events be handled (outside any slot)."""
        self.drain(SlotRun(slot="settle"))


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def launch(ec2: Any, fleet: Fleet, name: str, tags: Mapping[str, str], **extra: Any) -> str:
    response = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags({"Name": name, **tags})}],
        **extra,
    )
    instance_id = str(response["Instances"][0]["InstanceId"])
    fleet.names[instance_id] = name
    return instance_id


def create_fleet(aws: Aws) -> Fleet:
    """The Tokyo fleet, stopped (as Friday's stop left it), except the group member and the bastion."""
    ec2 = aws.client("ec2")
    fleet = Fleet()
    fleet.kms_key = str(aws.client("kms").create_key(Description="kms-db volumes")["KeyMetadata"]["Arn"])
    for name in ("web-1", "web-2", "slow-1", "batch-1"):
        launch(ec2, fleet, name, OFFICE_TAG)
    encrypted = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": fleet.kms_key}}]
    launch(ec2, fleet, "kms-db", OFFICE_TAG, BlockDeviceMappings=encrypted)
    launch(ec2, fleet, "dev-1", NIGHTLY_TAG)
    launch(ec2, fleet, "bastion", {"Schedule": "always-on"})
    ec2.stop_instances(InstanceIds=[i for i, name in fleet.names.items() if name not in ("bastion",)])
    # A real group (moto's Auto Scaling), its tags propagated at launch: its member carries the office-hours tag
    # and aws:autoscaling:groupName, as AWS tags it.
    autoscaling = aws.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{ASG_NAME}-lc", ImageId="ami-12345678", InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=ASG_NAME,
        LaunchConfigurationName=f"{ASG_NAME}-lc",
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=[f"{aws.region}a"],
        Tags=[
            {"Key": key, "Value": value, "PropagateAtLaunch": True, "ResourceId": ASG_NAME}
            for key, value in {"Name": "asg-web", **OFFICE_TAG}.items()
        ],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG_NAME])["AutoScalingGroups"][0]
    fleet.asg_member = str(group["Instances"][0]["InstanceId"])
    fleet.names[fleet.asg_member] = "asg-web"
    # The New York policy's group (capacity mode: the tag is on the group) and database.
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=NY_GROUP,
        LaunchConfigurationName=f"{ASG_NAME}-lc",
        MinSize=1,
        MaxSize=3,
        DesiredCapacity=2,
        AvailabilityZones=[f"{aws.region}a"],
        Tags=[
            {"Key": key, "Value": value, "PropagateAtLaunch": True, "ResourceId": NY_GROUP}
            for key, value in NEW_YORK_TAG.items()
        ],
    )
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=NY_DATABASE,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="reports",
        MasterUserPassword="not-a-secret-1",
        Tags=_tags(NEW_YORK_TAG),
    )
    return fleet


def group_sizes(aws: Aws, name: str) -> tuple[int, int, int, int]:
    """(min, desired, max, instances) of a group."""
    (group,) = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return int(group["MinSize"]), int(group["DesiredCapacity"]), int(group["MaxSize"]), len(group["Instances"])


def database_status(aws: Aws) -> str:
    (database,) = aws.client("rds").describe_db_instances(DBInstanceIdentifier=NY_DATABASE)["DBInstances"]
    return str(database["DBInstanceStatus"])


def remove_groups_and_database(aws: Aws) -> None:
    autoscaling = aws.client("autoscaling")
    for name in (ASG_NAME, NY_GROUP):
        autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    autoscaling.delete_launch_configuration(LaunchConfigurationName=f"{ASG_NAME}-lc")
    aws.client("rds").delete_db_instance(DBInstanceIdentifier=NY_DATABASE, SkipFinalSnapshot=True)


# ---------------------------------------------------------------------------------------------------------------
# The published samples
# ---------------------------------------------------------------------------------------------------------------


def published_samples(instance_id: str, region: str, account: str) -> list[tuple[str, dict[str, Any]]]:
    """The published `EC2 Instance State-change Notification` samples, naming `instance_id` of this account."""
    samples = []
    for name in SAMPLES:
        event = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
        detail = {**event["detail"], "instance-id": instance_id}
        samples.append(
            (
                name,
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
                    "Detail": json.dumps(detail),
                },
            )
        )
    return samples


def feed_samples(account: Account, instance_id: str) -> dict[str, dict[str, list[str]]]:
    """Put the samples on the bus; per policy, which samples (by file) reached its worker and which its rule
    filtered out."""
    samples = published_samples(instance_id, account.aws.region, ACCOUNT_ID)
    by_kind = {f"state event {json.loads(entry['Detail'])['state']}": name for name, entry in samples}
    account.policies[0].put_events([{**entry, "Time": account.clock.now()} for _name, entry in samples])
    routing: dict[str, dict[str, list[str]]] = {}
    for policy in account.policies:
        run = SlotRun(slot="samples")
        while policy.poll_once(run):
            pass
        reached = sorted(by_kind[kind] for kind in run.messages if kind in by_kind)
        routing[policy.name] = {"reached": reached, "filtered": sorted(set(SAMPLES) - set(reached))}
    return routing


# ---------------------------------------------------------------------------------------------------------------
# The Tokyo week
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class WeekReport:
    office: SchedulerDeployment
    stop_only: SchedulerDeployment
    fleet: Fleet
    slots: list[SlotRun]
    sample_routing: dict[str, dict[str, list[str]]]
    log: HandlerLog
    hand_starts: list[str]
    initial_states: dict[str, str]

    def slot(self, policy: str, day: date, action: str) -> list[SlotRun]:
        return [s for s in self.slots if s.policy == policy and s.action == action and s.local[:10] == day.isoformat()]


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %a %H:%M %Z")


def _verdicts(
    policy: SchedulerPolicy, run: SlotRun, fleet: Fleet, members: Sequence[str], states: Mapping[str, str]
) -> None:
    items = policy.verification()
    skipped = {entry.split(":")[0]: entry.split(": ", 1)[1] for s in run.summaries for entry in s.get("skipped", [])}
    reported = {entry.split(":")[0]: entry.split(": ", 1)[1] for s in run.summaries for entry in s.get("reported", [])}
    excluded = any(s.get("outcome") == "excluded_date" for s in run.summaries)
    for instance_id in members:
        item = items.get(instance_id)
        alert = next((a for a in run.alerts if a.get("resource_id") == instance_id), None)
        if excluded:
            verdict = "excluded date: not planned"
        elif instance_id in skipped:
            verdict = f"skipped ({skipped[instance_id]})"
        elif instance_id in reported:
            verdict = f"reported ({reported[instance_id]})"
        elif alert is not None and alert.get("alert") == NOT_IN_STATE:
            # The slot's alerts: it did not get there (reported once); a state reached after the deadline does not
            # undo the report.
            late = item is not None and item.get("slot") == run.slot and item.get("state") == "available"
            verdict = f"FAILED: {alert.get('reason', '')}" + ("; got there after the deadline" if late else "")
        elif alert is not None:
            verdict = f"reported ({alert.get('reason', '')})"
        elif item is not None and item.get("slot") == run.slot:
            reason = f": {item['reason']}" if item.get("reason") else ""
            verdict = {"available": "verified", "failed": "FAILED"}.get(str(item["state"]), str(item["state"])) + reason
        else:
            verdict = "already there: not acted on"
        run.verification[fleet.names[instance_id]] = (states.get(instance_id, "?"), verdict)


def run_week(
    aws: Aws, office: SchedulerDeployment, stop_only: SchedulerDeployment, others: Sequence[SchedulerDeployment] = ()
) -> WeekReport:
    """On an empty EC2 account, the fleet, the samples, then every slot of both Tokyo policies over the week.
    `others`: further policies deployed in the region, whose rules get the same instance events (their workers
    handle them, so their queues do not fill up)."""
    clock = SimulatedClock(WEEK_START - timedelta(hours=12))
    scenario.fresh_ec2(aws)
    fidelity = aws.fidelity
    durations = (fidelity.instance_start_time, fidelity.instance_stop_time)
    calls: list[Call] = []
    fleet: Fleet | None = None
    inbox = AlertInbox(aws, office.alarm_topic_arn, f"{office.deployment.policy_name}-e2e-inbox")
    stop_inbox = AlertInbox(aws, stop_only.alarm_topic_arn, f"{stop_only.deployment.policy_name}-e2e-inbox")
    try:
        with scenario.simulated_aws_time(aws, clock):
            fleet = create_fleet(aws)
            fidelity.instance_start_time = fidelity.instance_stop_time = TRANSITION
            policies = [SchedulerPolicy(aws, d, clock, calls) for d in (office, stop_only, *others)]
            shared_log = policies[0].log
            for policy in policies[1:]:
                policy.log = shared_log
            account = Account(aws, policies, clock)
            account.announce()  # the emitter starts watching
            initial = account.states()
            routing = feed_samples(account, fleet.id_of("web-1"))
            account.settle()
            slots = [
                (moment, policy, action)
                for policy in policies[:2]
                for action, schedule in policy.deployed.schedules.items()
                for moment in scheduler_slots(schedule.expression, schedule.timezone, WEEK_START, WEEK_END)
            ]
            if others:
                slots += [
                    (moment, policies[2], action)
                    for action, schedule in others[0].schedules.items()
                    for moment in scheduler_slots(schedule.expression, schedule.timezone, *NY_WEEK_WINDOW)
                ]
            timeline: list[tuple[datetime, int, Any]] = [(moment, 1, (p, a)) for moment, p, a in slots]
            timeline += [(moment.astimezone(UTC), 0, "hand") for moment in HAND_STARTS]
            runs: list[SlotRun] = []
            hand: list[str] = []
            for moment, _order, what in sorted(timeline, key=lambda entry: (entry[0], entry[1])):
                if clock.now() > moment:
                    raise RuntimeError(f"the simulation ran past {moment} (now {clock.now()})")
                clock.set(moment)
                if what == "hand":
                    dev = fleet.id_of("dev-1")
                    aws.client("ec2").start_instances(InstanceIds=[dev])
                    hand.append(_local(moment, TOKYO))
                    account.settle()
                    continue
                policy, action = what
                runs.append(_week_slot(aws, account, policy, action, moment, fleet, calls, inbox, stop_inbox))
            return WeekReport(office, stop_only, fleet, runs, routing, shared_log, hand, initial)
    finally:
        fidelity.instance_start_time, fidelity.instance_stop_time = durations
        inbox.close()
        stop_inbox.close()
        if fleet is not None:
            fidelity.deny_kms_key(fleet.kms_key, denied=False)
            remove_groups_and_database(aws)


def _week_slot(
    aws: Aws,
    account: Account,
    policy: SchedulerPolicy,
    action: str,
    moment: datetime,
    fleet: Fleet,
    calls: list[Call],
    inbox: AlertInbox,
    stop_inbox: AlertInbox,
) -> SlotRun:
    day = moment.astimezone(TOKYO).date()
    run = SlotRun(slot=scenario.format_slot(moment), policy=policy.name, action=action, local=_local(moment, TOKYO))
    run.log_from = len(policy.log.lines)
    first_call = len(calls)
    office = policy is account.policies[0]
    hooks: list[Callable[[str, str], None]] = []
    if office and (day, action) == KMS_DENIED:
        aws.fidelity.deny_kms_key(fleet.kms_key)
        run.events.append("kms-db's volume key denied to the caller (E35)")
    if office and (day, action) == SLOW:
        slow = fleet.id_of("slow-1")

        def slow_stop(instance_id: str, state: str) -> None:
            transition = aws.fidelity.instance_transitions.get(instance_id)
            if instance_id == slow and state == "stopping" and transition is not None:
                aws.fidelity.instance_transitions[instance_id] = dataclasses.replace(transition, duration=SLOW_STOP)

        hooks.append(slow_stop)
        run.events.append(f"slow-1 stays stopping for {int(SLOW_STOP.total_seconds() // 60)} min (E33)")
    account.on_state.extend(hooks)
    try:
        run.summaries.append(policy.plan_action(action, moment))
        if office and (day, action) == DUPLICATE:
            run.summaries.append(policy.plan_action(action, moment))
            run.events.append("the schedule delivered twice: planned twice")
        if office and (day, action) == TERMINATION:
            aws.client("ec2").terminate_instances(InstanceIds=[fleet.id_of("batch-1")])
            run.events.append("batch-1 terminated after the plan, before the worker (E34)")
        account.drain(run)
    finally:
        for hook in hooks:
            account.on_state.remove(hook)
        if office and (day, action) == KMS_DENIED:
            aws.fidelity.deny_kms_key(fleet.kms_key, denied=False)
    run.calls = calls[first_call:]
    if len(account.policies) > 2 and policy is account.policies[2]:
        items = policy.verification()
        sizes = "{}/{}/{} ({} instances)".format(*group_sizes(aws, NY_GROUP))
        for resource, now in ((f"group:{NY_GROUP}", sizes), (f"db:{NY_DATABASE}", database_status(aws))):
            item = items.get(resource, {})
            verified = item.get("slot") == run.slot and item.get("state") == "available"
            run.verification[resource] = (now, "verified" if verified else f"{item.get('state')}: {item.get('reason')}")
        return run
    run.alerts = (inbox if office else stop_inbox).take()
    tag = OFFICE_TAG if office else NIGHTLY_TAG
    members = [i for i in fleet.names if _carries(account, i, tag)]
    _verdicts(policy, run, fleet, members, account.states())
    return run


def _carries(account: Account, instance_id: str, tags: Mapping[str, str]) -> bool:
    reservations = account.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    found = {t["Key"]: t["Value"] for t in reservations[0]["Instances"][0].get("Tags", [])}
    return all(found.get(key) == value for key, value in tags.items())


# ---------------------------------------------------------------------------------------------------------------
# The days the clock changes
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class DstReport:
    deployment: SchedulerDeployment
    instances: dict[str, str]  # id -> name
    slots: list[SlotRun]
    # Local date -> action -> invocations that day, for every day of the windows (0 included).
    invocations: dict[str, Counter[str]]
    # Local date -> states of the instances at the end of that day.
    end_of_day: dict[str, dict[str, str]]


def run_dst(aws: Aws, new_york: SchedulerDeployment, others: Sequence[SchedulerDeployment] = ()) -> DstReport:
    """The New York policy over the days around both clock changes of 2027 (on an empty EC2 account); `others` as
    for `run_week`."""
    start = datetime.combine(DST_WINDOWS[0][0], time(0), tzinfo=NEW_YORK_ZONE)
    clock = SimulatedClock(start - timedelta(hours=1))
    scenario.fresh_ec2(aws)
    calls: list[Call] = []
    fidelity = aws.fidelity
    durations = (fidelity.instance_start_time, fidelity.instance_stop_time)
    try:
        with scenario.simulated_aws_time(aws, clock):
            fidelity.instance_start_time = fidelity.instance_stop_time = TRANSITION
            fleet = Fleet()
            ec2 = aws.client("ec2")
            for name in ("ny-batch-1", "ny-batch-2"):
                launch(ec2, fleet, name, NEW_YORK_TAG)
            ec2.stop_instances(InstanceIds=list(fleet.names))
            policy = SchedulerPolicy(aws, new_york, clock, calls)
            bystanders = [SchedulerPolicy(aws, d, clock, []) for d in others]
            for bystander in bystanders:
                bystander.log = policy.log
            account = Account(aws, [policy, *bystanders], clock)
            account.announce()
            account.settle()
            runs: list[SlotRun] = []
            invocations: dict[str, Counter[str]] = {}
            end_of_day: dict[str, dict[str, str]] = {}
            for first, last in DST_WINDOWS:
                day = first
                while day < last:
                    local_day = datetime.combine(day, time(0), tzinfo=NEW_YORK_ZONE)
                    next_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=NEW_YORK_ZONE)
                    slots = sorted(
                        (moment, action)
                        for action, schedule in new_york.schedules.items()
                        for moment in scheduler_slots(schedule.expression, schedule.timezone, local_day, next_day)
                    )
                    invocations[day.isoformat()] = Counter({action: 0 for action in new_york.schedules})
                    clock.set(max(clock.now(), local_day.astimezone(UTC)))
                    for moment, action in slots:
                        clock.set(moment)
                        run = SlotRun(
                            slot=scenario.format_slot(moment),
                            policy=policy.name,
                            action=action,
                            local=_local(moment, NEW_YORK_ZONE),
                        )
                        first_call = len(calls)
                        run.summaries.append(policy.plan_action(action, moment))
                        account.drain(run)
                        run.calls = calls[first_call:]
                        _verdicts(policy, run, fleet, list(fleet.names), account.states())
                        runs.append(run)
                        invocations[day.isoformat()][action] += 1
                    clock.set(next_day.astimezone(UTC) - timedelta(minutes=1))
                    states = account.states()
                    end_of_day[day.isoformat()] = {fleet.names[i]: states[i] for i in fleet.names}
                    day += timedelta(days=1)
            return DstReport(new_york, dict(fleet.names), runs, invocations, end_of_day)
    finally:
        fidelity.instance_start_time, fidelity.instance_stop_time = durations


# ---------------------------------------------------------------------------------------------------------------
# What is left, and the report
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinalState:
    ledgers: dict[str, list[dict[str, Any]]]  # by policy
    work_queue_messages: int
    dlq_messages: int


def final_state(aws: Aws, deployments: Sequence[SchedulerDeployment]) -> FinalState:
    sqs = aws.client("sqs")
    return FinalState(
        ledgers={d.deployment.policy_name: scenario.ledger_items(aws, d.deployment.ledger_table) for d in deployments},
        work_queue_messages=sum(scenario.queue_total(sqs, d.deployment.work_queue_url) for d in deployments),
        dlq_messages=sum(scenario.queue_total(sqs, d.deployment.dlq_url) for d in deployments),
    )


def problems(week: WeekReport, dst: DstReport, state: FinalState) -> list[str]:
    """What must not happen (the demo exits non-zero on any)."""
    found: list[str] = []
    bastion = week.fleet.id_of("bastion")
    if any(bastion in run.acted for run in week.slots):
        found.append("the untagged bastion was acted on")
    if any(run.acted[i] > 1 for run in week.slots for i in run.acted):
        found.append("an instance was acted on twice in one slot")
    if dst.invocations[SPRING_FORWARD.isoformat()]["stop"] != 0:
        found.append("a stop was invoked in the spring-forward gap")
    if state.dlq_messages or state.work_queue_messages:
        found.append("messages left in the work or dead-letter queues")
    if any(run.failed_records for run in [*week.slots, *dst.slots]):
        found.append("work items failed")
    return found
