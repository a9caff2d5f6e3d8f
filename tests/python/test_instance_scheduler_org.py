"""instance-scheduler over target accounts and OUs (issue 12): the planner enqueues one scope item per account x
region and nothing else, a scope item's worker enqueues the act messages of that account's tagged instances (and
Auto Scaling groups and databases), and a state event from an account this policy never acted on touches nothing.

Several accounts on moto: an assumed role's credentials land in the role's account there (the role need not exist).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from aws_harness import (
    LEDGER_TABLE,
    OTHER_REGION,
    REGION,
    Clock,
    FakeContext,
    Infra,
    alerts_sent,
    assumed_client,
    run_instances,
    sqs_event,
    take_messages,
    work_body,
)
from botocore.exceptions import ClientError
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.core.completion import ledger_key
from ops_automation.core.errors import ConfigError, PartialFailure
from ops_automation.core.events import format_time
from ops_automation.core.scope import Target
from ops_automation.instance_scheduler import handlers
from ops_automation.instance_scheduler.decisions import InstanceSchedulerConfig

ConfigureScheduler = Callable[..., Any]
OFFICE = {"Schedule": "office-hours"}
ROLE_NAME = "ops-automation-target"
SPOKES = ("111122223333", "444455556666")
STRANGER = "777788889999"  # an account of the organization this policy never acted in


def role_of(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{ROLE_NAME}"


def spoke_client(service: str, account: str, region: str = REGION) -> Any:
    return assumed_client(role_of(account), service, region)


def state_event(instance_id: str, state: str, at: datetime, account: str, region: str = REGION) -> str:
    return json.dumps(
        {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "account": account, "time": format_time(at), "region": region,
            "resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
            "detail": {"instance-id": instance_id, "state": state},
        }
    )  # fmt: skip


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def plan(self, action: str) -> dict[str, Any]:
        return dict(
            handlers.plan_handler({"scheduled_time": format_time(self.clock.now), "action": action}, FakeContext())
        )

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def take(self, kind: str) -> list[dict[str, Any]]:
        messages = take_messages()
        assert {m["kind"] for m in messages} <= {kind}, messages
        return messages


@pytest.fixture
def scheduler(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Scheduler:
    return Scheduler(clock)


def fanned_out(configure: ConfigureScheduler, **overrides: str) -> Any:
    settings = {
        "OPS_TARGET_ACCOUNTS": json.dumps(list(SPOKES)),
        "OPS_TARGET_ROLE_NAME": ROLE_NAME,
        "OPS_TARGET_REGIONS": json.dumps([REGION, OTHER_REGION]),
    }
    return configure(**{**settings, **overrides})


def test_a_fanned_out_slot_enqueues_one_scope_item_per_account_and_region_and_lists_nothing(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, infra: Infra, api_calls: Counter[str]
) -> None:
    fanned_out(configure_scheduler, OPS_SCHEDULE_RDS="true", OPS_ASG_MODE="capacity")
    run_instances(infra.ec2, 2, OFFICE)  # the hub's own: not a target account
    summary = scheduler.plan("stop")
    assert (summary["scopes"], summary["enqueued"], summary["action"]) == (4, 4, "stop")
    items = scheduler.take("plan_scope")
    assert sorted((m["account"], m["region"], m["role_arn"], m["action"]) for m in items) == sorted(
        (account, region, role_of(account), "stop") for account in SPOKES for region in (REGION, OTHER_REGION)
    )
    assert {m["slot"] for m in items} == {format_time(scheduler.clock.now)}
    # No listing of any account, no AssumeRole: the run does not grow with the accounts' fleets.
    assert set(api_calls) == {"sqs.SendMessageBatch"}


def test_the_excluded_dates_stay_with_the_planner(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    fanned_out(configure_scheduler)
    scheduler.clock.now = scheduler.clock.now.replace(day=2, hour=15, minute=30)  # 2024-05-03 00:30 in Tokyo
    assert scheduler.plan("start")["outcome"] == "excluded_date"
    assert take_messages() == []


def test_each_scope_item_enqueues_the_acts_of_its_own_accounts_tagged_instances(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, infra: Infra
) -> None:
    fanned_out(configure_scheduler, OPS_TARGET_REGIONS=json.dumps([REGION]))
    spokes = {account: spoke_client("ec2", account) for account in SPOKES}
    office = {account: sorted(run_instances(ec2, 2, OFFICE)) for account, ec2 in spokes.items()}
    other = {account: run_instances(ec2, 1, {"Schedule": "always-on"})[0] for account, ec2 in spokes.items()}
    hub = run_instances(infra.ec2, 1, OFFICE)[0]
    scheduler.plan("stop")

    assert scheduler.work([work_body(m) for m in scheduler.take("plan_scope")]) == {"batchItemFailures": []}
    acts = scheduler.take("act")
    assert sorted((m["role_arn"], m["region"], m["action"], sorted(m["instance_ids"])) for m in acts) == sorted(
        (role_of(account), REGION, "stop", office[account]) for account in SPOKES
    )

    assert scheduler.work([work_body(m) for m in acts]) == {"batchItemFailures": []}
    state = lambda ec2, i: ec2.describe_instances(InstanceIds=[i])["Reservations"][0]["Instances"][0]["State"]["Name"]  # noqa: E731
    for account, ec2 in spokes.items():
        assert {state(ec2, i) for i in office[account]} == {"stopped"} and state(ec2, other[account]) == "running"
    assert state(infra.ec2, hub) == "running"
    # The spoke's own state event (forwarded to the hub's bus) verifies it, under its account in the ledger.
    account, instance_id = SPOKES[0], office[SPOKES[0]][0]
    assert scheduler.work([state_event(instance_id, "stopped", scheduler.clock.now, account)]) == {
        "batchItemFailures": []
    }
    rt = handlers.worker_runtime()
    entry = rt.ledger.get(ledger_key(rt, Target(REGION, role_of(account)), instance_id))
    assert entry is not None and (entry.state, entry.source_id) == ("available", "stop")
    assert alerts_sent() == []


def test_a_redelivered_scope_item_acts_once(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    fanned_out(configure_scheduler, OPS_TARGET_ACCOUNTS=json.dumps([SPOKES[0]]), OPS_TARGET_REGIONS="[]")
    run_instances(spoke_client("ec2", SPOKES[0]), 3, OFFICE)
    scheduler.plan("stop")
    (item,) = scheduler.take("plan_scope")
    scheduler.work([work_body(item), work_body(item)])
    acts = scheduler.take("act")
    assert len(acts) == 2
    scheduler.work([work_body(m) for m in acts])
    assert api_calls["ec2.StopInstances"] == 1


def test_groups_and_databases_fan_out_with_the_instances(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    """The adapters plan each scope like the classic planner plans each target: their act messages come from the
    scope item of the account that holds the group or database."""
    fanned_out(
        configure_scheduler,
        OPS_TARGET_ACCOUNTS=json.dumps([SPOKES[0]]),
        OPS_TARGET_REGIONS="[]",
        OPS_SCHEDULE_RDS="true",
        OPS_ASG_MODE="capacity",
    )
    spoke = SPOKES[0]
    rds = spoke_client("rds", spoke)
    rds.create_db_instance(
        DBInstanceIdentifier="orders", Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="owner", MasterUserPassword="password1", Tags=[{"Key": "Schedule", "Value": "office-hours"}],
    )  # fmt: skip
    ec2 = spoke_client("ec2", spoke)
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    spoke_client("autoscaling", spoke).create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        MinSize=1, DesiredCapacity=1, MaxSize=2, AvailabilityZones=[f"{REGION}a"],
        Tags=[{"ResourceId": "web", "ResourceType": "auto-scaling-group", "Key": "Schedule", "Value": "office-hours",
               "PropagateAtLaunch": True}],
    )  # fmt: skip
    scheduler.plan("stop")
    scheduler.work([work_body(m) for m in scheduler.take("plan_scope")])
    messages = take_messages()
    assert sorted((m["kind"], m["role_arn"], m.get("resource_ids") or m.get("group_names")) for m in messages) == [
        ("group-act", role_of(spoke), ["web"]),
        ("rds-act", role_of(spoke), ["db:orders"]),
    ]  # the group's member is scheduled through its group
    scheduler.work([work_body(m) for m in messages])
    assert rds.describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0]["DBInstanceStatus"] in (
        "stopping",
        "stopped",
    )


def test_a_scope_whose_rds_listing_is_denied_still_schedules_its_instances_and_alerts_rds_once(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SCP denying rds: in an account (per-OU service allow-lists) must not stop its EC2 schedules: the adapter
    is skipped for that scope, alerted once under its own marker, and the EC2 acts are enqueued."""
    fanned_out(
        configure_scheduler,
        OPS_TARGET_ACCOUNTS=json.dumps([SPOKES[0]]),
        OPS_TARGET_REGIONS="[]",
        OPS_SCHEDULE_RDS="true",
    )
    instances = run_instances(spoke_client("ec2", SPOKES[0]), 2, OFFICE)

    def denied(*_: Any, **__: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "explicit deny in an SCP"}}, "DescribeDBInstances"
        )

    monkeypatch.setattr(handlers.rds, "_listed", denied)
    scheduler.plan("stop")
    (item,) = scheduler.take("plan_scope")
    assert scheduler.work([work_body(item), work_body(item)]) == {"batchItemFailures": []}
    acts = take_messages()
    assert {m["kind"] for m in acts} == {"act"} and sorted(acts[0]["instance_ids"]) == sorted(instances)
    (alert,) = alerts_sent()
    assert (alert["alert"], alert["account"], alert["part"]) == ("account cannot be scheduled", SPOKES[0], "rds")
    assert alert["reason"].startswith("AccessDenied") and "rds:DescribeDBInstances" in alert["reason"]


def test_scheduler_scope_failures_speak_of_scheduling(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = fanned_out(
        configure_scheduler,
        OPS_TARGET_ACCOUNTS=json.dumps([SPOKES[0]]),
        OPS_TARGET_REGIONS="[]",
        OPS_TARGET_ORGANIZATIONAL_UNITS='[{"id": "ou-ab12-abcdefgh"}]',  # no organization: the OU fails
    )
    with pytest.raises(PartialFailure, match="ou-ab12-abcdefgh"):
        scheduler.plan("stop")
    (not_planned,) = alerts_sent()
    assert not_planned["alert"] == "schedule not planned"
    (item,) = scheduler.take("plan_scope")  # the explicit account is planned all the same
    original = worker.clients.client

    def client(service: str, region: str | None = None, role_arn: str | None = None, **kwargs: Any) -> Any:
        if role_arn == role_of(SPOKES[0]):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no role"}}, "AssumeRole")
        return original(service, region, role_arn, **kwargs)

    monkeypatch.setattr(worker.clients, "client", client)
    assert scheduler.work([work_body(item)]) == {"batchItemFailures": []}
    (_, failed) = alerts_sent()
    assert (failed["alert"], failed["account"]) == ("account cannot be scheduled", SPOKES[0])


def test_an_event_from_an_account_the_policy_never_acted_on_touches_nothing(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, api_calls: Counter[str], infra: Infra
) -> None:
    """With OUs any account's events are the scope's (membership is not known without Organizations calls): the
    ledger decides, before any client is made - no AssumeRole into the account, no DescribeInstances, no write."""
    configure_scheduler(
        OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": "ou-ab12-cd34ef56", "recursive": True}]),
        OPS_TARGET_ROLE_NAME=ROLE_NAME,
    )
    stranger = spoke_client("ec2", STRANGER)
    (instance_id,) = run_instances(stranger, 1, OFFICE)
    stranger.stop_instances(InstanceIds=[instance_id])
    before = Counter(api_calls)
    events = [
        state_event(instance_id, "stopped", scheduler.clock.now, STRANGER),
        state_event(instance_id, "stopping", scheduler.clock.now, SPOKES[0]),  # an account of the OU, never acted in
    ]
    assert scheduler.work(events) == {"batchItemFailures": []}
    assert api_calls - before == Counter({"dynamodb.GetItem": 2})
    assert take_messages() == [] and alerts_sent() == []
    assert infra.dynamodb.scan(TableName=LEDGER_TABLE)["Items"] == []


def test_explicit_instance_ids_are_refused_with_target_accounts() -> None:
    from aws_harness import scheduler_function_env

    env = scheduler_function_env(
        OPS_TARGET_ACCOUNTS=json.dumps([SPOKES[0]]),
        OPS_TARGET_ROLE_NAME=ROLE_NAME,
        OPS_INSTANCE_IDS=json.dumps(["i-0123456789abcdef0"]),
    )
    with pytest.raises(ConfigError, match="OPS_INSTANCE_IDS"):
        InstanceSchedulerConfig.from_env(env)
