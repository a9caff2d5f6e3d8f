"""plan_handler on moto: who gets backed up, what is enqueued, and how many API calls that costs."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import boto3
import pytest
from aws_harness import (
    OTHER_REGION,
    POLICY,
    REGION,
    START,
    Configure,
    FakeContext,
    Infra,
    alerts_sent,
    emitted_metrics,
    run_instances,
    take_messages,
)
from botocore.exceptions import ClientError

from ops_automation.ami_backup import handlers
from ops_automation.ami_backup.decisions import CreateImageMessage, carried_tags
from ops_automation.core.errors import PartialFailure
from ops_automation.core.events import format_time, to_body
from ops_automation.core.fanout import BatchSender

SCHEDULE = {"scheduled_time": "2024-05-01T01:00:00.123Z"}
SLOT = "2024-05-01T01:00:00Z"


def _create_messages() -> list[dict[str, Any]]:
    return [message for message in take_messages() if message["kind"] == "create_image"]


def test_tagged_and_explicit_instances_get_one_message_each(
    configure: Configure, infra: Infra, capsys: pytest.CaptureFixture[str]
) -> None:
    tagged = run_instances(infra.ec2, 3, {"Backup": "nightly"})
    explicit = run_instances(infra.ec2, 1)
    run_instances(infra.ec2, 2, {"Backup": "weekly"})
    configure(OPS_INSTANCE_IDS=json.dumps(explicit))

    summary = handlers.plan_handler(SCHEDULE, FakeContext())

    messages = _create_messages()
    assert sorted(m["instance_id"] for m in messages) == sorted([*tagged, *explicit])
    assert {(m["policy"], m["region"], m["role_arn"], m["slot"]) for m in messages} == {(POLICY, REGION, None, SLOT)}
    assert summary == {"slot": SLOT, "dry_run": False, "planned": 4, "enqueued": 4, "not_found": []}
    # Planned targets are a log key, not a metric: a successful run sends no custom metric at all.
    assert emitted_metrics(capsys.readouterr().out) == {}


def test_messages_carry_the_copyable_instance_tags_from_the_listing(configure: Configure, infra: Infra) -> None:
    tags = {"Backup": "nightly", "Name": "web-1", "ops-automation:policy": "forged"}
    [instance] = run_instances(infra.ec2, 1, tags)
    configure()

    handlers.plan_handler(SCHEDULE, FakeContext())

    [message] = _create_messages()
    assert message["instance_id"] == instance
    # Ownership keys can only come from the worker itself, so they never travel.
    assert message["instance_tags"] == {"Backup": "nightly", "Name": "web-1"}


def test_without_tag_copying_messages_carry_no_tags(configure: Configure, infra: Infra) -> None:
    run_instances(infra.ec2, 2, {"Backup": "nightly", "Name": "web"})
    configure(OPS_COPY_INSTANCE_TAGS="false")

    handlers.plan_handler(SCHEDULE, FakeContext())

    messages = _create_messages()
    assert len(messages) == 2
    assert not any("instance_tags" in message for message in messages)


def test_carried_tags_drop_reserved_and_ownership_keys_and_keep_at_most_50() -> None:
    tags = {f"k{n:02d}": "v" for n in range(60)} | {"aws:autoscaling:groupName": "asg", "ops-automation:slot": "x"}
    carried = carried_tags(tags)
    assert list(carried) == [f"k{n:02d}" for n in range(50)]


def test_scheduler_default_notification_time_becomes_the_slot(configure: Configure, infra: Infra) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure()
    event = {
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "time": "2024-05-02T01:00:00Z",
        "detail": "{}",
    }
    handlers.plan_handler(event, FakeContext())
    assert [m["slot"] for m in _create_messages()] == ["2024-05-02T01:00:00Z"]


def test_missing_explicit_id_is_alerted_without_failing_the_run(
    configure: Configure, infra: Infra, capsys: pytest.CaptureFixture[str], logs: Any
) -> None:
    present = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    terminated = run_instances(infra.ec2, 1)[0]
    infra.ec2.terminate_instances(InstanceIds=[terminated])
    unknown = "i-0123456789abcdef0"
    configure(OPS_INSTANCE_IDS=json.dumps([terminated, unknown]))

    # Permanent for this slot: retrying the invocation would re-enqueue the whole fleet and still not find them.
    summary = handlers.plan_handler(SCHEDULE, FakeContext())

    assert sorted(m["instance_id"] for m in _create_messages()) == sorted(present)
    assert len(summary["not_found"]) == 2
    assert any(unknown in failure for failure in summary["not_found"])
    # One alert for the run, naming each instance that was not backed up and why.
    [alert] = alerts_sent()
    assert alert["alert"] == "backups not planned" and alert["policy"] == POLICY
    assert sorted(failure.split(":")[0] for failure in alert["failures"]) == sorted([terminated, unknown])
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 2


def test_a_policy_that_matches_nothing_fails_loudly(configure: Configure, infra: Infra) -> None:
    run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure(OPS_TARGET_TAGS=json.dumps({"Backup": "nighlty"}))  # the typo that must not go quiet

    with pytest.raises(PartialFailure, match="no instance matched"):
        handlers.plan_handler(SCHEDULE, FakeContext())

    assert _create_messages() == []
    [alert] = alerts_sent()
    assert "nighlty" in alert["failures"][0]


def test_multi_region_plans_each_region_and_an_id_found_in_one_region_is_not_missing(
    configure: Configure, infra: Infra
) -> None:
    here = run_instances(infra.ec2, 1, {"Backup": "nightly"})
    there = run_instances(boto3.client("ec2", region_name=OTHER_REGION), 1)
    configure(OPS_TARGET_REGIONS=json.dumps([REGION, OTHER_REGION]), OPS_INSTANCE_IDS=json.dumps(there))

    handlers.plan_handler(SCHEDULE, FakeContext())

    assert sorted((m["region"], m["instance_id"]) for m in _create_messages()) == sorted(
        [(REGION, here[0]), (OTHER_REGION, there[0])]
    )


def test_a_failing_region_does_not_stop_the_others(
    configure: Configure, infra: Infra, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure(OPS_TARGET_REGIONS=json.dumps([OTHER_REGION, REGION]))
    original = handlers.stream_instances

    def stream(ec2: Any, *args: Any, **kwargs: Any) -> Any:
        if ec2.meta.region_name == OTHER_REGION:
            raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "Describe")
        return original(ec2, *args, **kwargs)

    monkeypatch.setattr(handlers, "stream_instances", stream)
    with pytest.raises(PartialFailure, match=OTHER_REGION):
        handlers.plan_handler(SCHEDULE, FakeContext())
    assert sorted(m["instance_id"] for m in _create_messages()) == sorted(healthy)
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 1


def test_calls_grow_with_batches_and_pages_not_with_targets(
    configure: Configure, infra: Infra, api_calls: Counter[str]
) -> None:
    run_instances(infra.ec2, 25, {"Backup": "nightly"})
    configure()
    api_calls.clear()

    handlers.plan_handler(SCHEDULE, FakeContext())

    assert len(_create_messages()) == 25
    assert api_calls == Counter({"ec2.DescribeInstances": 1, "sqs.SendMessageBatch": 3})


class FakeSqs:
    """SendMessageBatch that fails the given entry ids once (service or sender fault), like a partial batch."""

    def __init__(self, fail_once: dict[str, bool]) -> None:
        self.fail_once = dict(fail_once)  # entry id -> SenderFault
        self.calls: list[list[str]] = []
        self.batch_bytes: list[int] = []
        self.delivered: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([entry["Id"] for entry in Entries])
        self.batch_bytes.append(sum(len(entry["MessageBody"].encode()) for entry in Entries))
        failed = [
            {"Id": entry["Id"], "SenderFault": self.fail_once.pop(entry["Id"]), "Code": "X", "Message": "x"}
            for entry in Entries
            if entry["Id"] in self.fail_once
        ]
        failed_ids = {entry["Id"] for entry in failed}
        self.delivered += [json.loads(e["MessageBody"])["instance_id"] for e in Entries if e["Id"] not in failed_ids]
        return {"Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in failed_ids], "Failed": failed}


def enqueue(sqs: Any, queue_url: str, messages: list[CreateImageMessage]) -> list[CreateImageMessage]:
    """Send every message through one BatchSender, as the planner does; returns those that never got through."""
    sender: BatchSender[CreateImageMessage] = BatchSender(sqs, queue_url)
    for message in messages:
        sender.add(message)
    sender.flush()
    return sender.unsent


def _messages(count: int) -> list[CreateImageMessage]:
    return [CreateImageMessage(POLICY, f"i-{n:08x}", REGION, None, SLOT) for n in range(count)]


def test_partially_failed_batch_entries_are_retried_alone() -> None:
    sqs = FakeSqs({"3": False, "7": False})
    messages = _messages(12)
    assert enqueue(sqs, "url", messages) == []
    assert sqs.calls == [[str(n) for n in range(10)], ["3", "7"], ["0", "1"]]
    assert sorted(sqs.delivered) == sorted(m.instance_id for m in messages)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([], []),
        ([100] * 25, [10, 10, 5]),
        ([100_000, 100_000, 62_000, 1], [3, 1]),
        ([200_000, 100_000, 100_000, 200_000], [1, 2, 1]),
    ],
)
def test_batches_hold_at_most_ten_entries_and_256_kib_of_bodies(sizes: list[int], expected: list[int]) -> None:
    sqs = FakeSqs({})
    sender: BatchSender[CreateImageMessage] = BatchSender(sqs, "url")
    for n, size in enumerate(sizes):
        base = len(to_body(CreateImageMessage(POLICY, f"i-{n:08x}", REGION, None, SLOT, {"k": ""})).encode())
        sender.add(CreateImageMessage(POLICY, f"i-{n:08x}", REGION, None, SLOT, {"k": "v" * max(0, size - base)}))
    sender.flush()
    assert [len(call) for call in sqs.calls] == expected
    assert sender.sent == len(sizes) and sender.unsent == []


def test_messages_with_many_long_tags_are_split_to_fit_the_batch_limit() -> None:
    # EC2's worst case: 50 tags with 128-character keys and 256-character values, here in a 3-byte script.
    tags = {f"{n:02d}" + "鍵" * 126: "値" * 256 for n in range(50)}
    messages = [CreateImageMessage(POLICY, f"i-{n:08x}", REGION, None, SLOT, instance_tags=tags) for n in range(12)]
    body_bytes = len(to_body(messages[0]).encode())
    sqs = FakeSqs({})

    assert enqueue(sqs, "url", messages) == []

    assert body_bytes < 100_000  # far below SQS's 256 KiB per message
    assert max(sqs.batch_bytes) <= 256 * 1024
    assert len(sqs.calls) == math.ceil(len(messages) / (256 * 1024 // body_bytes))
    assert sorted(sqs.delivered) == sorted(m.instance_id for m in messages)


def test_sender_faults_are_not_retried_and_come_back_unsent() -> None:
    sqs = FakeSqs({"1": True})
    messages = _messages(3)
    assert enqueue(sqs, "url", messages) == [messages[1]]
    assert len(sqs.calls) == 1


def test_unsent_work_fails_the_run_after_the_rest_is_enqueued(
    configure: Configure, infra: Infra, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    instances = run_instances(infra.ec2, 3, {"Backup": "nightly"})
    configure()
    original = BatchSender.flush

    def flush_losing_the_first_message(self: BatchSender[Any]) -> None:
        if self.sent == 0 and self._pending:
            self.unsent.append(self._pending.pop(0)[0])
        original(self)

    monkeypatch.setattr(BatchSender, "flush", flush_losing_the_first_message)
    with pytest.raises(PartialFailure, match="not enqueued"):
        handlers.plan_handler(SCHEDULE, FakeContext())
    [alert] = alerts_sent()
    [lost] = [failure.split(":")[0] for failure in alert["failures"]]
    assert sorted(m["instance_id"] for m in _create_messages()) == sorted(set(instances) - {lost})
    assert emitted_metrics(capsys.readouterr().out)["BackupsFailed"] == 1


def test_dry_run_enqueues_nothing_and_reports_what_retention_would_delete(
    configure: Configure, infra: Infra, fidelity: Any, clock: Any, api_calls: Counter[str], logs: Any
) -> None:
    instance = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    other = run_instances(infra.ec2, 1, {"Backup": "nightly"})[0]
    runtime = configure(OPS_GENERATIONS="2")
    ec2 = runtime.clients.client("ec2")
    images = []
    for day in range(3):
        clock.now = START.replace(day=day + 1)
        slot = format_time(clock.now)
        tags = [
            {"Key": "ops-automation:managed-by", "Value": "terraform-aws-ops-automation"},
            {"Key": "ops-automation:policy", "Value": POLICY},
            {"Key": "ops-automation:source-instance", "Value": instance},
            {"Key": "ops-automation:slot", "Value": slot},
        ]
        images.append(
            ec2.create_image(
                InstanceId=instance,
                Name=f"seed-{day}",
                TagSpecifications=[{"ResourceType": "image", "Tags": tags}],
            )["ImageId"]
        )
    runtime = configure(OPS_GENERATIONS="2", OPS_DRY_RUN="true")
    clock.now = START.replace(day=4)
    api_calls.clear()

    summary = handlers.plan_handler({"scheduled_time": format_time(clock.now)}, FakeContext())

    assert take_messages() == []
    plan = {entry["instance_id"]: entry for entry in summary["plan"]}
    # The next backup plus the newest existing one make two generations: the two older ones would go.
    assert [item["image_id"] for item in plan[instance]["would_delete"]] == [images[1], images[0]]
    assert plan[other]["would_delete"] == []
    assert api_calls == Counter({"ec2.DescribeInstances": 1, "ec2.DescribeImages": 1})
    assert logs.matching("INFO", "dry run: nothing enqueued")
    assert len(infra.ec2.describe_images(Owners=["self"])["Images"]) == 3
