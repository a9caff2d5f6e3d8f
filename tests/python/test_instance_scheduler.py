"""instance-scheduler on moto made faithful (E33-E36: start/stop take time, one bad id refuses a whole request, a
start with a denied KMS key falls back to stopped): one action per instance and slot, verified by the state event
or the deadline check, one alert per instance that did not get there."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from aws_harness import (
    ACCOUNT,
    REGION,
    Clock,
    FakeContext,
    Infra,
    alerts_sent,
    run_instances,
    sqs_event,
    take_messages,
    work_body,
)
from botocore.exceptions import ClientError
from tests.support.moto_fidelity import MotoFidelity
from tests.support.scheduler_slots import scheduler_slots

from conftest import hook_every_request
from ops_automation.core.completion import ledger_key
from ops_automation.core.errors import PartialFailure
from ops_automation.core.events import format_time
from ops_automation.core.targeting import Instance
from ops_automation.instance_scheduler import handlers
from ops_automation.instance_scheduler.decisions import scheduling_decision

ConfigureScheduler = Callable[..., Any]
OFFICE = {"Schedule": "office-hours"}


def state_event(instance_id: str, state: str, at: datetime) -> str:
    return json.dumps(
        {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "account": ACCOUNT, "time": format_time(at), "region": REGION,
            "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"],
            "detail": {"instance-id": instance_id, "state": state},
        }
    )  # fmt: skip


class Scheduler:
    def __init__(self, infra: Infra, clock: Clock) -> None:
        self.ec2 = infra.ec2
        self.clock = clock

    def plan(self, action: str) -> dict[str, Any]:
        return dict(
            handlers.plan_handler({"scheduled_time": format_time(self.clock.now), "action": action}, FakeContext())
        )

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def run(self, kind: str) -> dict[str, Any]:
        return self.work([work_body(m) for m in take_messages() if m["kind"] == kind])

    def state(self, instance_id: str) -> str:
        found = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        return str(found["State"]["Name"])


def _stopped_with_a_denied_volume_key(scheduler: Scheduler, fidelity: MotoFidelity) -> str:
    """A stopped office-hours instance whose encrypted volume's KMS key the caller may not use (E35)."""
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    (instance_id,) = [
        i["InstanceId"]
        for i in scheduler.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
            BlockDeviceMappings=[
                {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": key}}
            ],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office-hours"}]}],
        )["Instances"]
    ]  # fmt: skip
    scheduler.ec2.stop_instances(InstanceIds=[instance_id])
    fidelity.deny_kms_key(key)
    return str(instance_id)


@pytest.fixture
def scheduler(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Scheduler:
    return Scheduler(infra, clock)


def test_a_stop_slot_stops_the_tagged_instances_and_the_event_verifies_them(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    configure_scheduler()
    fidelity.instance_stop_time = timedelta(minutes=1)
    office = run_instances(scheduler.ec2, 2, OFFICE)
    other = run_instances(scheduler.ec2, 1, {"Schedule": "always-on"})
    summary = scheduler.plan("stop")
    assert summary["enqueued"] == 1
    assert scheduler.run("act") == {"batchItemFailures": []}
    assert {scheduler.state(i) for i in office} == {"stopping"} and scheduler.state(other[0]) == "running"
    scheduler.clock.advance(minutes=2)
    assert scheduler.work([state_event(i, "stopped", scheduler.clock.now) for i in office]) == {"batchItemFailures": []}
    assert alerts_sent() == []
    rt = handlers.worker_runtime()
    for instance_id in office:
        entry = rt.ledger.get(ledger_key(rt, handlers.Target(REGION, None), instance_id))
        assert entry is not None and entry.state == "available" and entry.source_id == "stop"


def test_an_excluded_date_in_the_schedule_time_zone_does_nothing(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    configure_scheduler()
    run_instances(scheduler.ec2, 1, OFFICE)
    scheduler.clock.now = scheduler.clock.now.replace(day=2, hour=15, minute=30)  # 2024-05-03 00:30 in Tokyo
    assert scheduler.plan("stop")["outcome"] == "excluded_date"
    assert take_messages() == []


def test_a_duplicate_delivery_acts_once(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    """A redelivered item of a slot already done must not act again, even on an instance someone started since."""
    configure_scheduler()
    instances = run_instances(scheduler.ec2, 3, OFFICE)
    scheduler.plan("stop")
    (item,) = [m for m in take_messages() if m["kind"] == "act"]
    scheduler.work([work_body(item)])
    scheduler.ec2.start_instances(InstanceIds=[instances[0]])  # an operator needs it back now
    scheduler.work([work_body(item)])
    assert api_calls["ec2.StopInstances"] == 1
    assert scheduler.state(instances[0]) == "running"


def test_a_start_that_falls_back_to_stopped_alerts_with_its_reason(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    configure_scheduler()
    fidelity.instance_start_time = timedelta(minutes=1)
    instance_id = _stopped_with_a_denied_volume_key(scheduler, fidelity)
    scheduler.plan("start")
    scheduler.run("act")
    scheduler.clock.advance(minutes=2)
    assert scheduler.state(instance_id) == "stopped"
    scheduler.work([state_event(instance_id, "stopped", scheduler.clock.now)])
    (alert,) = alerts_sent()
    assert alert["resource_id"] == instance_id
    assert "Client error on launch" in alert["reason"] and "kms:CreateGrant" in alert["reason"]


def test_a_terminated_instance_in_a_batch_does_not_stop_the_others(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    configure_scheduler()
    instances = run_instances(scheduler.ec2, 4, OFFICE)
    scheduler.plan("stop")
    (item,) = [m for m in take_messages() if m["kind"] == "act"]
    scheduler.ec2.terminate_instances(InstanceIds=[instances[1]])
    scheduler.work([work_body(item)])
    assert {scheduler.state(i) for i in instances if i != instances[1]} == {"stopped"}
    (alert,) = alerts_sent()
    assert alert["resource_id"] == instances[1] and "terminated" in alert["reason"]
    # The next slot does not report it again.
    scheduler.clock.advance(hours=12)
    scheduler.work([work_body({**item, "slot": format_time(scheduler.clock.now)})])
    assert len(alerts_sent()) == 1


def test_an_instance_not_stopped_by_the_deadline_alerts_once(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    configure_scheduler()
    (instance_id,) = run_instances(scheduler.ec2, 1, OFFICE)
    scheduler.plan("stop")
    scheduler.run("act")
    fidelity.set_instance_state(REGION, instance_id, "stopping")  # stuck
    scheduler.clock.advance(minutes=21)
    checks = [m for m in take_messages() if m["kind"] == "check"]
    scheduler.work([work_body(c) for c in checks])
    scheduler.work([work_body(c) for c in checks])
    (alert,) = alerts_sent()
    assert alert["resource_id"] == instance_id and "deadline" in alert["reason"]


def test_auto_scaling_members_are_skipped_and_reported(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    configure_scheduler()
    (member,) = run_instances(scheduler.ec2, 1, {**OFFICE, "aws:autoscaling:groupName": "web"})
    summary = scheduler.plan("stop")
    assert summary["enqueued"] == 0 and summary["skipped"] == [
        f"{member}: member of Auto Scaling group web: stopping it makes the group replace it"
    ]
    assert scheduler.state(member) == "running"


def test_a_throttled_batch_keeps_what_was_done_and_waits_for_the_rest(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_scheduler()
    instances = sorted(run_instances(scheduler.ec2, 3, OFFICE))
    monkeypatch.setattr(handlers, "BATCH_SIZE", 1)
    real = handlers._call
    calls: list[list[str]] = []

    def throttled_second(rt: Any, ec2: Any, action: Any, ids: list[str]) -> dict[str, str]:
        calls.append(ids)
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "StopInstances")
        return real(rt, ec2, action, ids)

    monkeypatch.setattr(handlers, "_call", throttled_second)
    handlers.act(
        handlers.worker_runtime(),
        handlers.ActMessage(
            policy="office-hours",
            action="stop",
            slot=format_time(scheduler.clock.now),
            region=REGION,
            role_arn=None,
            instance_ids=tuple(instances),
        ),
    )
    assert scheduler.state(instances[0]) == "stopped"
    messages = take_messages()
    (waiting,) = [m for m in messages if m["kind"] == "act"]
    assert waiting["instance_ids"] == instances[1:]
    assert [m["resource_id"] for m in messages if m["kind"] == "check"] == [instances[0]]
    scheduler.work([work_body(waiting)])
    assert {scheduler.state(i) for i in instances} == {"stopped"}
    assert alerts_sent() == []


def test_an_older_slot_never_undoes_or_judges_a_newer_one(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    """Stop at 12:00, start at 12:10 with a 20-minute deadline: the stop slot's check and a late copy of its item
    arrive after the start."""
    configure_scheduler()
    (instance_id,) = run_instances(scheduler.ec2, 1, OFFICE)
    scheduler.plan("stop")
    stop_item = next(m for m in take_messages() if m["kind"] == "act")
    scheduler.work([work_body(stop_item)])
    stop_check = next(m for m in take_messages() if m["kind"] == "check")
    scheduler.clock.advance(minutes=10)
    scheduler.plan("start")
    scheduler.run("act")
    take_messages()
    fidelity.set_instance_state(REGION, instance_id, "pending")  # the start is still on its way
    scheduler.clock.advance(minutes=11)
    scheduler.work([work_body(stop_check), work_body(stop_item)])
    assert alerts_sent() == []
    assert scheduler.state(instance_id) == "pending"


def test_a_repeated_schedule_delivery_acts_once(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    configure_scheduler()
    run_instances(scheduler.ec2, 2, OFFICE)
    scheduler.plan("stop")
    scheduler.plan("stop")
    assert scheduler.run("act") == {"batchItemFailures": []}
    assert api_calls["ec2.StopInstances"] == 1


def test_a_target_that_cannot_be_listed_alerts_and_is_retried(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_scheduler(OPS_TARGET_REGIONS=json.dumps([REGION, "eu-west-1"]))
    run_instances(scheduler.ec2, 1, OFFICE)
    planner = handlers.planner_runtime()
    real = planner.clients.client

    def client(service: str, region: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if service == "ec2" and region == "eu-west-1":
            raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeInstances")
        return real(service, region, *args, **kwargs)

    monkeypatch.setattr(planner.clients, "client", client)
    with pytest.raises(PartialFailure):
        scheduler.plan("stop")
    (alert,) = alerts_sent()
    assert alert["failures"][0].startswith("eu-west-1")
    assert len([m for m in take_messages() if m["kind"] == "act"]) == 1  # the other region still acts


def test_a_malformed_item_is_handed_back_to_the_queue(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    configure_scheduler()
    result = scheduler.work([json.dumps({"kind": "act", "policy": "office-hours", "action": "pause"})])
    assert len(result["batchItemFailures"]) == 1


def test_an_instance_untagged_since_the_plan_is_left_alone(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    configure_scheduler()
    kept, left = run_instances(scheduler.ec2, 2, OFFICE)
    scheduler.plan("stop")
    scheduler.ec2.delete_tags(Resources=[left], Tags=[{"Key": "Schedule"}])
    scheduler.run("act")
    assert (scheduler.state(kept), scheduler.state(left)) == ("stopped", "running")


def test_an_instance_already_stopping_is_verified_too(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    configure_scheduler()
    (instance_id,) = run_instances(scheduler.ec2, 1, OFFICE)
    scheduler.plan("stop")
    fidelity.set_instance_state(REGION, instance_id, "stopping")  # someone else is stopping it; it will stick
    scheduler.run("act")
    scheduler.clock.advance(minutes=21)
    scheduler.run("check")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == instance_id


def test_a_late_act_gets_its_full_verification_time(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler
) -> None:
    configure_scheduler()  # 20-minute deadline
    run_instances(scheduler.ec2, 1, OFFICE)
    scheduler.plan("stop")
    scheduler.clock.advance(minutes=30)  # the item was delivered late
    scheduler.run("act")
    (check,) = [m for m in take_messages() if m["kind"] == "check"]
    assert check["deadline"] == format_time(scheduler.clock.now + timedelta(minutes=20))


def _spot_instances(ec2: Any, count: int) -> list[str]:
    return [
        str(i["InstanceId"])
        for i in ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=count, MaxCount=count, InstanceMarketOptions={"MarketType": "spot"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office-hours"}]}],
        )["Instances"]
    ]  # fmt: skip


def test_a_one_time_spot_instance_is_reported_once_and_never_blocks_the_others(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity, api_calls: Counter[str]
) -> None:
    """E36: StopInstances refuses a one-time Spot Instance, and with it the whole request."""
    configure_scheduler()
    on_demand = run_instances(scheduler.ec2, 3, OFFICE)
    one_time, persistent = _spot_instances(scheduler.ec2, 2)
    fidelity.persistent_spot(persistent)
    scheduler.plan("stop")
    scheduler.run("act")
    assert {scheduler.state(i) for i in [*on_demand, persistent]} == {"stopped"}
    assert scheduler.state(one_time) == "running"
    # Spot Instances are called apart: the on-demand batch is never refused because of one.
    assert api_calls["ec2.StopInstances"] == 1 + 3  # on-demand batch; spot pair, then each half
    (alert,) = alerts_sent()
    assert alert["resource_id"] == one_time and "one-time Spot Instance request" in alert["reason"]
    scheduler.clock.advance(days=1)
    scheduler.plan("stop")
    scheduler.run("act")
    assert len(alerts_sent()) == 1


def test_an_interrupted_spot_instance_is_left_to_ec2(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    configure_scheduler()
    (spot,) = _spot_instances(scheduler.ec2, 1)
    fidelity.persistent_spot(spot)
    reason = {"Code": "Server.SpotInstanceShutdown", "Message": "Server.SpotInstanceShutdown: capacity"}
    scheduler.ec2.stop_instances(InstanceIds=[spot])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(handlers, "stream_instances", _streaming_with(reason, spot))
        summary = scheduler.plan("start")
    assert summary["enqueued"] == 0
    assert summary["skipped"] == [f"{spot}: Spot Instance stopped by a Spot interruption: only EC2 restarts it"]
    assert scheduler.state(spot) == "stopped" and alerts_sent() == []


def _streaming_with(reason: dict[str, str], instance_id: str) -> Callable[..., Any]:
    """The planner's listing, with `instance_id` carrying `reason` (moto cannot interrupt a Spot Instance)."""
    original = handlers.stream_instances

    def stream(*args: Any, **kwargs: Any) -> Any:
        listing = original(*args, **kwargs)
        pages = listing.pages

        def changed_pages() -> Any:
            for page in pages():
                yield [replace(i, state_reason=reason) if i.instance_id == instance_id else i for i in page]

        listing.pages = changed_pages
        return listing

    return stream


def test_with_hibernation_on_only_the_instances_enabled_for_it_hibernate(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_scheduler(OPS_HIBERNATE="true")
    plain = run_instances(scheduler.ec2, 2, OFFICE)
    enabled = [
        str(i["InstanceId"])
        for i in scheduler.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=2, MaxCount=2, HibernationOptions={"Configured": True},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office-hours"}]}],
        )["Instances"]
    ]  # fmt: skip
    requests: list[tuple[frozenset[str], bool]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "StopInstances":
            body = params["body"]  # the serialized EC2 query request
            ids = frozenset(v for k, v in body.items() if k.startswith("InstanceId."))
            requests.append((ids, body.get("Hibernate") == "true"))

    hook_every_request(monkeypatch, record)
    scheduler.plan("stop")
    scheduler.run("act")
    assert sorted(requests, key=lambda r: r[1]) == [(frozenset(plain), False), (frozenset(enabled), True)]
    assert {scheduler.state(i) for i in [*plain, *enabled]} == {"stopped"} and alerts_sent() == []


def test_an_instance_store_instance_is_reported_once_at_stop() -> None:
    decision = scheduling_decision(
        Instance("i-0123456789abcdef0", "running", {}, root_device_type="instance-store"), "stop", None, "skip"
    )
    assert decision.verdict == "report" and "instance-store" in decision.reason
    running = Instance("i-0123456789abcdef0", "running", {}, root_device_type="instance-store")
    assert scheduling_decision(running, "start", None, "skip").verdict == "already"


def test_a_stale_stopped_event_right_after_a_start_waits_for_the_deadline(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    """An event older than the act (redelivered, or of the previous failed start) never alerts before the deadline:
    what DescribeInstances shows then may still be the previous start's `stopped` and reason."""
    configure_scheduler()
    fidelity.instance_start_time = timedelta(minutes=1)
    instance_id = _stopped_with_a_denied_volume_key(scheduler, fidelity)
    acted_at = scheduler.clock.now
    scheduler.plan("start")
    scheduler.run("act")
    scheduler.clock.advance(minutes=2)
    scheduler.work([state_event(instance_id, "stopped", acted_at - timedelta(minutes=10))])
    assert alerts_sent() == []
    scheduler.clock.advance(minutes=20)
    scheduler.run("check")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == instance_id and "kms:CreateGrant" in alert["reason"]


def test_a_late_act_that_must_wait_gets_its_full_time_before_it_fails(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, fidelity: MotoFidelity
) -> None:
    """First handled 40 minutes after its slot (deadline 20): an instance still on its way waits, it does not fail."""
    configure_scheduler()
    (instance_id,) = run_instances(scheduler.ec2, 1, OFFICE)
    scheduler.plan("stop")
    fidelity.set_instance_state(REGION, instance_id, "pending")
    scheduler.clock.advance(minutes=40)
    scheduler.run("act")
    assert alerts_sent() == []
    (retry,) = [m for m in take_messages() if m["kind"] == "act"]
    assert retry["deadline"] == format_time(scheduler.clock.now + timedelta(minutes=20))
    scheduler.clock.advance(minutes=21)
    scheduler.work([work_body(retry)])
    (alert,) = alerts_sent()
    assert alert["resource_id"] == instance_id and "deadline" in alert["reason"]


def test_dst_a_slot_in_the_spring_forward_gap_never_comes_and_one_the_fall_back_repeats_comes_once(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    """America/New_York: 02:30 does not exist on 2027-03-14 and 01:30 happens twice on 2027-11-07; Scheduler skips
    the first and invokes the second once (tests/support/scheduler_slots.py), and the planner acts on what comes,
    judging excluded dates by the local date of the slot."""
    configure_scheduler(OPS_SCHEDULE_TIMEZONE="America/New_York", OPS_EXCLUDED_DATES='["2027-11-08"]')
    (instance_id,) = run_instances(scheduler.ec2, 1, OFFICE)
    new_york = "America/New_York"
    spring = scheduler_slots(
        "cron(30 2 ? * * *)", new_york, datetime(2027, 3, 13, tzinfo=UTC), datetime(2027, 3, 16, tzinfo=UTC)
    )
    assert [s.astimezone(ZoneInfo(new_york)).day for s in spring] == [13, 15]
    fall = scheduler_slots(
        "cron(30 1 ? * * *)", new_york, datetime(2027, 11, 7, tzinfo=UTC), datetime(2027, 11, 9, tzinfo=UTC)
    )
    assert fall == [datetime(2027, 11, 7, 5, 30, tzinfo=UTC), datetime(2027, 11, 8, 6, 30, tzinfo=UTC)]
    outcomes = []
    for slot in [*spring, *fall]:
        scheduler.ec2.start_instances(InstanceIds=[instance_id])
        scheduler.clock.now = slot
        outcomes.append(scheduler.plan("stop").get("outcome", "planned"))
        if outcomes[-1] == "planned":
            scheduler.run("act")
    assert outcomes == ["planned", "planned", "planned", "excluded_date"]
    assert api_calls["ec2.StopInstances"] == 3 and scheduler.state(instance_id) == "running"
