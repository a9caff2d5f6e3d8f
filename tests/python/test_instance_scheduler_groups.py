"""instance-scheduler, Auto Scaling groups in capacity mode: stop saves min/desired/max in a tag before setting 0/0/0,
start restores it before deleting the tag; one change per group and slot, verified by the check or the group's
events, one alert per group that did not get there (moto scales at once; a stuck group is made with scale-in
protection or a member held in Pending)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_harness import ACCOUNT, REGION, Clock, FakeContext, Infra, alerts_sent, sqs_event, take_messages, work_body
from botocore.exceptions import ClientError
from moto.autoscaling.models import autoscaling_backends
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.core.completion import ledger_key
from ops_automation.core.events import format_time
from ops_automation.core.scope import Target
from ops_automation.instance_scheduler import groups, handlers

ConfigureScheduler = Callable[..., Any]
OFFICE = {"Schedule": "office-hours"}
TAG = groups.SAVED_CAPACITY_TAG


class Groups:
    """The test's side of AWS: groups to make and read, the schedule and the queue, on a fixed clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.asg = boto3.client("autoscaling", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        ec2.create_launch_template(
            LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
        )

    def make(
        self, name: str, capacity: str, tags: dict[str, str] | None = None, protected: bool = False, weight: int = 0
    ) -> None:
        """`weight`: a mixed instances group whose one instance type counts for that many capacity units."""
        low, desired, high = (int(part) for part in capacity.split("/"))
        template = {"LaunchTemplateName": "web", "Version": "$Latest"}
        source: dict[str, Any] = (
            {
                "MixedInstancesPolicy": {
                    "LaunchTemplate": {
                        "LaunchTemplateSpecification": template,
                        "Overrides": [{"InstanceType": "t3.large", "WeightedCapacity": str(weight)}],
                    }
                }
            }
            if weight
            else {"LaunchTemplate": template}
        )
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            **source,
            MinSize=low, DesiredCapacity=desired, MaxSize=high,
            AvailabilityZones=[f"{REGION}a"],
            NewInstancesProtectedFromScaleIn=protected,
            Tags=[
                {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": key, "Value": value,
                 "PropagateAtLaunch": True}
                for key, value in (tags or {}).items()
            ],
        )  # fmt: skip

    def tag(self, name: str, key: str, value: str) -> None:
        self.asg.create_or_update_tags(
            Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": key, "Value": value}]
        )

    def read(self, name: str) -> dict[str, Any]:
        (group,) = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return dict(group)

    def capacity(self, name: str) -> str:
        group = self.read(name)
        return f"{group['MinSize']}/{group['DesiredCapacity']}/{group['MaxSize']}"

    def tags(self, name: str) -> dict[str, dict[str, Any]]:
        return {t["Key"]: t for t in self.read(name).get("Tags", [])}

    def hold_in_pending(self, name: str, count: int) -> None:
        """Members that never come InService (a launch that keeps failing its health check): moto launches at
        once, so the state is set on its record."""
        group = autoscaling_backends[ACCOUNT][REGION].autoscaling_groups[name]
        for state in group.instance_states[:count]:
            state.lifecycle_state = "Pending"

    def refuse_call(self, operation: str, code: str) -> None:
        """The worker's `operation` calls are refused with `code` before they reach moto."""

        def refused(model: Any, **_: Any) -> None:
            if model.name == operation:
                raise ClientError({"Error": {"Code": code, "Message": "refused"}}, operation)

        worker_asg().meta.events.register("before-call.*.*", refused)

    def stopped_then_started(self, name: str) -> None:
        self.plan("stop")
        self.run("group-act")
        take_messages()
        self.clock.advance(hours=12)
        self.plan("start")
        self.run("group-act")

    def plan(self, action: str) -> dict[str, Any]:
        return dict(
            handlers.plan_handler({"scheduled_time": format_time(self.clock.now), "action": action}, FakeContext())
        )

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def run(self, kind: str) -> dict[str, Any]:
        return self.work([work_body(m) for m in take_messages() if m["kind"] == kind])

    def ledger_state(self, name: str) -> str | None:
        rt = handlers.worker_runtime()
        entry = rt.ledger.get(ledger_key(rt, Target(REGION, None), groups.resource_id(name)))
        return None if entry is None else entry.state


def worker_asg() -> Any:
    return handlers.worker_runtime().clients.client("autoscaling", REGION, None)


def group_event(detail_type: str, name: str) -> str:
    return json.dumps(
        {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.autoscaling",
            "account": ACCOUNT, "time": "2024-05-01T01:05:00Z", "region": REGION,
            "resources": [f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/{name}"],
            "detail": {
                "StatusCode": "InProgress", "AutoScalingGroupName": name, "ActivityId": str(uuid.uuid4()),
                "EC2InstanceId": "i-1234567890abcdef0", "StatusMessage": "", "Cause": "capacity change",
            },
        }
    )  # fmt: skip


@pytest.fixture
def asgs(infra: Infra, clock: Clock, fidelity: MotoFidelity, configure_scheduler: ConfigureScheduler) -> Groups:
    configure_scheduler(OPS_ASG_MODE="capacity")
    return Groups(clock)


def refuse(monkeypatch: pytest.MonkeyPatch, code: str, times: int = 1) -> list[str]:
    """The first `times` group calls fail with `code`; returns the calls seen."""
    real = groups._call
    seen: list[str] = []

    def failing(asg: Any, action: Any, group: Any, decision: Any) -> str:
        seen.append(group.name)
        if len(seen) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "refused"}}, "UpdateAutoScalingGroup")
        return real(asg, action, group, decision)

    monkeypatch.setattr(groups, "_call", failing)
    return seen


def test_stop_saves_the_capacity_then_sets_zero_and_leaves_untagged_groups_alone(
    asgs: Groups, api_calls: Counter[str]
) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    asgs.make("batch", "1/1/3", {"Schedule": "always-on"})
    summary = asgs.plan("stop")
    assert summary["enqueued"] == 1
    # Its members (which carry the propagated target tag) are left to the group.
    assert {entry.split(": ", 1)[1] for entry in summary["skipped"]} == {
        "member of Auto Scaling group web: scheduled through its group"
    }
    assert asgs.run("group-act") == {"batchItemFailures": []}
    assert asgs.capacity("web") == "0/0/0" and asgs.read("web")["Instances"] == []
    saved = asgs.tags("web")[TAG]
    assert saved["Value"] == "1/2/4" and saved["PropagateAtLaunch"] is False
    assert asgs.capacity("batch") == "1/1/3" and TAG not in asgs.tags("batch")
    assert api_calls["autoscaling.UpdateAutoScalingGroup"] == 1 and api_calls["autoscaling.CreateOrUpdateTags"] == 1


def test_the_capacity_is_saved_before_the_group_is_changed(asgs: Groups, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop refused after tagging leaves the group as it was, with its values saved; nothing is lost."""
    asgs.make("web", "1/2/4", OFFICE)

    asgs.refuse_call("UpdateAutoScalingGroup", "AccessDenied")
    asgs.plan("stop")
    asgs.run("group-act")
    assert asgs.capacity("web") == "1/2/4" and asgs.tags("web")[TAG]["Value"] == "1/2/4"
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and alert["reason"] == "refused: AccessDenied"


def test_start_restores_the_saved_capacity_then_deletes_the_tag(asgs: Groups) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    asgs.plan("stop")
    asgs.run("group-act")
    take_messages()
    asgs.clock.advance(hours=12)
    asgs.plan("start")
    asgs.run("group-act")
    assert asgs.capacity("web") == "1/2/4" and TAG not in asgs.tags("web")
    assert [i["LifecycleState"] for i in asgs.read("web")["Instances"]] == ["InService", "InService"]
    asgs.clock.advance(minutes=21)
    asgs.run("check")
    assert asgs.ledger_state("web") == "available" and alerts_sent() == []


def test_a_repeated_delivery_changes_the_group_once(asgs: Groups, api_calls: Counter[str]) -> None:
    """A redelivered item of a slot already done must not zero a group its owner scaled up again since."""
    asgs.make("web", "1/2/4", OFFICE)
    asgs.plan("stop")
    asgs.plan("stop")  # the schedule delivered twice
    items = [m for m in take_messages() if m["kind"] == "group-act"]
    assert len(items) == 2
    asgs.work([work_body(items[0])])
    asgs.asg.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=1, DesiredCapacity=1, MaxSize=4)
    asgs.work([work_body(items[1]), work_body(items[0])])
    assert api_calls["autoscaling.UpdateAutoScalingGroup"] == 1 and api_calls["autoscaling.CreateOrUpdateTags"] == 1
    assert asgs.capacity("web") == "1/1/4"


@pytest.mark.parametrize("capacity", ["0/0/0", "0/0/5"])
def test_a_group_at_zero_desired_without_saved_capacity_is_reported_once_and_left(
    asgs: Groups, api_calls: Counter[str], capacity: str
) -> None:
    """Desired 0 is stopped whatever min and max say: nothing saved at stop, nothing to restore at start."""
    asgs.make("web", capacity, OFFICE)
    assert asgs.plan("stop")["already"] == 1  # its owner stopped it: nothing to save
    asgs.plan("start")
    asgs.clock.advance(days=1)
    summary = asgs.plan("start")
    assert summary["reported"] == [f"group:web: no saved capacity: left at {capacity}"]
    asgs.run("group-act")  # both slots' items
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and alert["reason"] == f"no saved capacity: left at {capacity}"
    assert asgs.capacity("web") == capacity and TAG not in asgs.tags("web")
    assert api_calls["autoscaling.UpdateAutoScalingGroup"] == 0 and api_calls["autoscaling.CreateOrUpdateTags"] == 0


def test_sizes_moved_while_stopped_never_overwrite_the_saved_capacity(asgs: Groups, api_calls: Counter[str]) -> None:
    """A scheduled action setting max alone (0/0/10) leaves a stopped group: a second stop keeps the saved tag and
    the start restores it."""
    asgs.make("web", "1/2/4", OFFICE)
    asgs.plan("stop")
    asgs.run("group-act")
    take_messages()
    asgs.asg.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=10)
    asgs.clock.advance(days=1)
    assert asgs.plan("stop")["already"] == 1 and take_messages() == []
    assert asgs.tags("web")[TAG]["Value"] == "1/2/4" and api_calls["autoscaling.CreateOrUpdateTags"] == 1
    asgs.clock.advance(hours=12)
    asgs.plan("start")
    asgs.run("group-act")
    assert asgs.capacity("web") == "1/2/4" and TAG not in asgs.tags("web")


def test_a_start_scaled_back_to_zero_desired_is_not_verified(asgs: Groups) -> None:
    """0 InService of 0 desired is no start: restored, then zeroed again by something else."""
    asgs.make("web", "1/2/4", OFFICE)
    asgs.stopped_then_started("web")
    asgs.asg.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=0, DesiredCapacity=0)
    asgs.clock.advance(minutes=21)
    asgs.run("check")
    (alert,) = alerts_sent()
    assert alert["reason"].startswith("desired capacity back at 0 (capacity 0/0/4)")
    assert asgs.ledger_state("web") == "failed"


def test_a_weighted_group_is_started_when_its_capacity_units_are_in_service(asgs: Groups) -> None:
    """Desired 4 units are met by two InService instances of weight 2. moto leaves WeightedCapacity out of the
    instances it describes (AWS gives it: "The number of capacity units contributed by the instance"), so the test
    adds it to the worker's answers; and moto relaunches one instance per unit, so two are held in Pending to leave
    the two InService that AWS would launch."""

    def weighted(parsed: dict[str, Any], **_: Any) -> None:
        for group in parsed.get("AutoScalingGroups", []):
            for instance in group.get("Instances", []):
                instance.setdefault("WeightedCapacity", "2")

    worker_asg().meta.events.register("after-call.autoscaling.DescribeAutoScalingGroups", weighted)
    asgs.make("web", "2/4/8", OFFICE, weight=2)
    asgs.stopped_then_started("web")
    asgs.hold_in_pending("web", 2)
    assert asgs.capacity("web") == "2/4/8"
    asgs.clock.advance(minutes=21)
    asgs.run("check")
    assert asgs.ledger_state("web") == "available" and alerts_sent() == []


def test_a_group_with_a_warm_pool_is_reported_once_and_never_changed(asgs: Groups, api_calls: Counter[str]) -> None:
    """Stopping it would leave or grow the pool's instances, which the group record does not list."""
    asgs.make("web", "1/2/4", OFFICE)
    asgs.asg.put_warm_pool(AutoScalingGroupName="web", PoolState="Stopped", MinSize=1)
    reason = "has a warm pool (PoolState Stopped, MinSize 1): not scheduled"
    assert asgs.plan("stop")["reported"] == [f"group:web: {reason}"]
    asgs.run("group-act")
    asgs.clock.advance(hours=12)
    asgs.plan("start")
    asgs.run("group-act")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and alert["reason"] == reason
    assert asgs.capacity("web") == "1/2/4" and TAG not in asgs.tags("web")
    assert api_calls["autoscaling.UpdateAutoScalingGroup"] == 0 and api_calls["autoscaling.CreateOrUpdateTags"] == 0


def test_a_restore_whose_tag_removal_is_refused_is_verified_as_a_start(asgs: Groups) -> None:
    """The sizes are back: the start is verified, the tag left is reported on its own, not as a refused start."""
    asgs.make("web", "1/2/4", OFFICE)
    asgs.refuse_call("DeleteTags", "AccessDenied")
    asgs.stopped_then_started("web")
    assert asgs.capacity("web") == "1/2/4" and asgs.tags("web")[TAG]["Value"] == "1/2/4"
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web"
    assert alert["reason"] == f"restored 1/2/4, but the tag {TAG} was not removed: AccessDenied"
    assert asgs.ledger_state("web") == "pending"
    asgs.clock.advance(minutes=21)
    asgs.run("check")
    assert asgs.ledger_state("web") == "available" and len(alerts_sent()) == 1


def test_a_group_with_50_tags_is_reported_with_the_limit(asgs: Groups) -> None:
    """No room for the saved tag: never stopped, and the reason names the limit."""
    asgs.make("web", "1/2/4", OFFICE)
    asgs.refuse_call("CreateOrUpdateTags", "LimitExceeded")
    asgs.plan("stop")
    asgs.run("group-act")
    asgs.clock.advance(days=1)
    asgs.plan("stop")
    asgs.run("group-act")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and alert["reason"] == groups.TAG_LIMIT_REASON
    assert "50 tags" in alert["reason"] and asgs.capacity("web") == "1/2/4"


@pytest.mark.parametrize("value", ["2/1/x", "3/1/4", "1/2", ""])
def test_a_malformed_saved_capacity_is_reported_and_never_guessed(asgs: Groups, value: str) -> None:
    asgs.make("web", "0/0/0", OFFICE)
    asgs.tag("web", TAG, value)
    asgs.plan("start")
    asgs.run("group-act")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and f"{TAG}={value!r}" in alert["reason"]
    assert asgs.capacity("web") == "0/0/0" and asgs.tags("web")[TAG]["Value"] == value


def test_a_tag_corrupted_after_the_plan_is_reported_by_the_worker(asgs: Groups) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    asgs.plan("stop")
    asgs.run("group-act")
    take_messages()
    asgs.clock.advance(hours=12)
    asgs.plan("start")
    asgs.tag("web", TAG, "lots")
    asgs.run("group-act")
    (alert,) = alerts_sent()
    assert "'lots'" in alert["reason"] and asgs.capacity("web") == "0/0/0"


def test_a_group_untagged_since_the_plan_is_left_alone(asgs: Groups) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    asgs.plan("stop")
    asgs.asg.delete_tags(Tags=[{"ResourceId": "web", "ResourceType": "auto-scaling-group", "Key": "Schedule"}])
    asgs.run("group-act")
    assert asgs.capacity("web") == "1/2/4" and TAG not in asgs.tags("web")


def test_the_terminate_event_verifies_a_stop(asgs: Groups) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    asgs.plan("stop")
    asgs.run("group-act")
    assert asgs.ledger_state("web") == "pending"
    assert asgs.work([group_event(groups.TERMINATE_SUCCESSFUL, "web")]) == {"batchItemFailures": []}
    assert asgs.ledger_state("web") == "available" and alerts_sent() == []


def test_a_stop_that_leaves_instances_fails_at_the_deadline_naming_the_held_members(asgs: Groups) -> None:
    """Members protected from scale in are not terminated: the group stays at 0 desired with them, and the alert names
    them and the one in Standby."""
    asgs.make("web", "0/2/4", OFFICE, protected=True)
    first, second = (i["InstanceId"] for i in asgs.read("web")["Instances"])
    asgs.asg.enter_standby(AutoScalingGroupName="web", InstanceIds=[second], ShouldDecrementDesiredCapacity=True)
    asgs.plan("stop")
    asgs.run("group-act")
    asgs.work([group_event(groups.TERMINATE_SUCCESSFUL, "web")])  # before the deadline: still pending, no alert
    assert alerts_sent() == [] and asgs.ledger_state("web") == "pending"
    asgs.clock.advance(minutes=21)
    checks = [m for m in take_messages() if m["kind"] == "check"]
    asgs.work([work_body(c) for c in checks])
    asgs.work([work_body(c) for c in checks])
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and alert["reason"].startswith(
        f"2 instance(s) left (capacity 0/0/0); protected from scale-in: {first}, {second}; in Standby: {second}"
    )


def test_a_start_short_of_its_desired_capacity_fails_at_the_deadline(asgs: Groups) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    asgs.stopped_then_started("web")
    asgs.hold_in_pending("web", 1)
    asgs.work([group_event(groups.LAUNCH_SUCCESSFUL, "web")])
    assert alerts_sent() == []
    asgs.clock.advance(minutes=21)
    asgs.run("check")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and alert["reason"].startswith(
        "1 of 2 desired capacity unit(s) InService (1 instance(s))"
    )
    assert asgs.ledger_state("web") == "failed"


@pytest.mark.parametrize("code", ["Throttling", "ScalingActivityInProgress", "ResourceContention"])
def test_a_busy_or_throttled_group_waits_and_is_done_later(
    asgs: Groups, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    seen = refuse(monkeypatch, code)
    asgs.plan("stop")
    asgs.run("group-act")
    assert asgs.capacity("web") == "1/2/4"
    (retry,) = [m for m in take_messages() if m["kind"] == "group-act"]
    assert retry["group_names"] == ["web"] and retry["waits"] == 1 and retry["_delayed_until_ms"] > 0
    asgs.work([work_body(retry)])
    assert seen == ["web", "web"] and asgs.capacity("web") == "0/0/0" and alerts_sent() == []


def test_a_group_still_busy_at_the_deadline_fails_once(asgs: Groups, monkeypatch: pytest.MonkeyPatch) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    refuse(monkeypatch, "ScalingActivityInProgress", times=10)
    asgs.plan("stop")
    asgs.run("group-act")
    asgs.clock.advance(minutes=21)
    asgs.run("group-act")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and alert["reason"] == "not acted on by the deadline"
    assert [m for m in take_messages() if m["kind"] == "group-act"] == []


def test_a_group_gone_before_the_act_is_reported(asgs: Groups) -> None:
    asgs.make("web", "1/2/4", OFFICE)
    asgs.plan("stop")
    asgs.asg.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    asgs.run("group-act")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "group:web" and "no longer exists" in alert["reason"]


def test_the_opt_out_tag_on_the_group_skips_it(asgs: Groups) -> None:
    asgs.make("web", "1/2/4", {**OFFICE, "ops-automation:no-schedule": "yes"})
    summary = asgs.plan("stop")
    skipped = [entry for entry in summary["skipped"] if entry.startswith("group:")]
    assert skipped == ["group:web: carries the opt-out tag ops-automation:no-schedule"]
    assert [m for m in take_messages() if m["kind"] == "group-act"] == []
    assert asgs.capacity("web") == "1/2/4"


def test_skip_mode_never_reads_groups(
    infra: Infra, clock: Clock, configure_scheduler: ConfigureScheduler, api_calls: Counter[str]
) -> None:
    configure_scheduler()  # OPS_ASG_MODE=skip
    groups_side = Groups(clock)
    groups_side.make("web", "1/2/4", OFFICE)
    groups_side.plan("stop")
    assert not [call for call in api_calls if call.startswith("autoscaling.")]
    assert groups_side.capacity("web") == "1/2/4"
