"""Restore tests, the machinery both modules share (core.restore): pure decisions, the OPS_RESTORE_TEST reader, and
plan / test / check / event / sweep on an in-memory ledger, fake SQS and SNS and a scripted adapter (the modules'
adapters are tested on the faithful emulator in test_ami_restore.py / test_ebs_restore.py)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aws_harness import START, Clock
from botocore.exceptions import ClientError

from ops_automation.core import restore, tagging
from ops_automation.core.alerts import Alerts
from ops_automation.core.config import CommonConfig, ScopeConfig
from ops_automation.core.errors import ConfigError
from ops_automation.core.events import (
    InstanceStateChange,
    VolumeNotification,
    format_time,
    parse_work_body,
    to_body,
)
from ops_automation.core.ledger import InMemoryLedger, LedgerKey
from ops_automation.core.restore import (
    Backup,
    RestoreAdapter,
    RestoreCheckMessage,
    RestoreConfigError,
    RestoreProgress,
    RestoreRecord,
    RestoreSweepMessage,
    RestoreTestConfig,
    RestoreTestMessage,
)
from ops_automation.core.runtime import Runtime
from ops_automation.core.scope import Target

POLICY = "nightly"
REGION = "us-east-1"
SLOT = "2024-05-01T01:00:00Z"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/ops-automation-nightly-work"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ops-automation-nightly-alerts"
SERVICE = "ami-backup"

CONFIG = RestoreTestConfig(
    region=None,
    role_arn=None,
    subnet_id="subnet-0123456789abcdef0",
    security_group_id="sg-0123456789abcdef0",
    sources="all",
    sample_size=1,
    source_tags=(),
    max_concurrent=2,
    deadline_minutes=30,
    instance_type=None,
    validation_document=None,
    validation_parameters={},
    instance_profile_name=None,
    volume_type="gp3",
)
CONFIG_JSON: dict[str, Any] = {
    "region": None,
    "role_arn": None,
    "subnet_id": "subnet-0123456789abcdef0",
    "security_group_id": "sg-0123456789abcdef0",
    "sources": "all",
    "sample_size": None,
    "source_tags": None,
    "max_concurrent": 2,
    "deadline_minutes": 30,
    "instance_type": None,
    "validation_document": None,
    "validation_parameters": None,
    "instance_profile_name": None,
    "volume_type": None,
    "allow_routed_subnet": None,
}


# ---------------------------------------------------------------------------------------------------------------
# Fakes
# ---------------------------------------------------------------------------------------------------------------


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0) -> dict[str, Any]:
        assert QueueUrl == QUEUE_URL
        self.sent.append((json.loads(MessageBody), DelaySeconds))
        return {}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        for entry in Entries:
            self.sent.append((json.loads(entry["MessageBody"]), entry.get("DelaySeconds", 0)))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def take(self) -> list[tuple[dict[str, Any], int]]:
        sent, self.sent = self.sent, []
        return sent


class FakeSns:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.failures = 0

    def publish(self, TopicArn: str, Subject: str, Message: str) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("SNS unavailable")
        self.published.append(json.loads(Message))
        return {}

    def titles(self) -> list[str]:
        return [message["alert"] for message in self.published]


class FakeClients:
    default_region = REGION

    def __init__(self, sqs: FakeSqs) -> None:
        self.sqs = sqs
        self.ec2_made: list[tuple[str | None, str | None]] = []

    def client(self, service: str, region: str | None = None, role_arn: str | None = None, retries: bool = True) -> Any:
        if service == "sqs":
            return self.sqs
        assert service == "ec2"
        self.ec2_made.append((region, role_arn))
        return SimpleNamespace(region=region, role_arn=role_arn)


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (test)"}}, "RunInstances")


@dataclass
class FakeAdapter:
    """Scripted: what each call answers is set by the test; every call is recorded in order."""

    resource_noun: str = "instance"
    first_check_seconds: int = 120
    poll_seconds: int = 60
    listed: list[Backup] = field(default_factory=list)
    launch_errors: list[Exception] = field(default_factory=list)
    prepare_error: Exception | None = None
    progress: RestoreProgress = field(default_factory=lambda: RestoreProgress("starting"))
    left: list[str] = field(default_factory=list)
    mark_error: Exception | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def backups(self, ec2: Any, target: Target) -> list[Backup]:
        self.calls.append(("backups", target))
        return self.listed

    def prepare(self, ec2: Any, test: RestoreTestMessage) -> None:
        self.calls.append(("prepare", test.test_id))
        if self.prepare_error is not None:
            raise self.prepare_error

    def launch(self, ec2: Any, test: RestoreTestMessage, token: str, tags: Mapping[str, str]) -> tuple[str, ...]:
        self.calls.append(("launch", test.test_id, token, dict(tags)))
        if self.launch_errors:
            raise self.launch_errors.pop(0)
        # Deterministic per token, as a ClientToken makes RunInstances.
        return (f"i-{abs(hash(token)) % 16**17:017x}",)

    def observe(self, ec2: Any, record: RestoreRecord, now: datetime) -> RestoreProgress:
        self.calls.append(("observe", record.test_id, record.resource_ids, dict(record.details)))
        return self.progress

    def clean_up(self, ec2: Any, resource_ids: Sequence[str]) -> None:
        self.calls.append(("clean_up", tuple(resource_ids)))

    def leftovers(self, ec2: Any, cutoff: datetime) -> list[str]:
        self.calls.append(("leftovers", cutoff))
        return list(self.left)

    def mark(self, ec2: Any, backup_ids: Sequence[str], result: restore.Result, slot: str) -> None:
        self.calls.append(("mark", tuple(backup_ids), result, slot))
        if self.mark_error is not None:
            error, self.mark_error = self.mark_error, None
            raise error

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


@dataclass
class World:
    rt: Runtime[Any]
    sqs: FakeSqs
    sns: FakeSns
    clients: FakeClients
    clock: Clock
    ledger: InMemoryLedger
    metrics: Counter[str]
    adapter: FakeAdapter
    config: RestoreTestConfig = CONFIG

    def handle(self, item: Any) -> dict[str, Any]:
        return restore.handle_restore_item(self.rt, self.adapter, self.config, item)

    def plan(self) -> dict[str, Any]:
        return restore.plan_restore_tests(self.rt, self.adapter, self.config, SLOT)

    def record(self, test_id: str) -> Any:
        return self.ledger.get(LedgerKey(SERVICE, POLICY, "local", REGION, f"restore#{test_id}"))

    def held(self) -> list[tuple[str, str]]:
        """The lease slots held now (a released lease's expiry is the epoch)."""
        return [key for key, until in self.ledger.leases.items() if until > self.clock.now]

    def handle_sent(self) -> list[dict[str, Any]]:
        """Deliver every queued message once (the test decides that their delay has passed)."""
        return [self.handle(parse_work_body(json.dumps(body), restore.RESTORE_DECODERS)) for body, _ in self.sqs.take()]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    sqs, sns, clock, ledger = FakeSqs(), FakeSns(), Clock(), InMemoryLedger()
    clients = FakeClients(sqs)
    rt: Runtime[Any] = Runtime(
        config=SimpleNamespace(completion=SimpleNamespace(ledger_ttl_days=30)),
        common=CommonConfig(POLICY, QUEUE_URL, "ledger", TOPIC, 10),
        clients=clients,  # type: ignore[arg-type]
        ledger=ledger,
        alerts=Alerts(lambda: sns, TOPIC, SERVICE, POLICY),
        clock=clock,
        service=SERVICE,
    )
    metrics: Counter[str] = Counter()
    monkeypatch.setattr(restore, "count", lambda name, value=1: metrics.update({name: value}))
    return World(rt, sqs, sns, clients, clock, ledger, metrics, FakeAdapter())


def backup(source: str, image: str, hours_old: float = 1, good: bool = True, **kwargs: Any) -> Backup:
    tags = kwargs.pop("tags", {})
    return Backup(source, (image,), START - timedelta(hours=hours_old), tags, good, kwargs.pop("result", None))


def run_message(source: str = "i-0123456789abcdef0", image: str = "ami-0123456789abcdef0", **kwargs: Any) -> Any:
    return RestoreTestMessage(
        POLICY, restore.test_id_of(SLOT, source), source, (image,), REGION, None, SLOT, SLOT, **kwargs
    )


# ---------------------------------------------------------------------------------------------------------------
# Pure decisions
# ---------------------------------------------------------------------------------------------------------------


def test_test_ids_name_the_slot_and_source() -> None:
    assert restore.test_id_of(SLOT, "i-0123456789abcdef0") == "20240501T010000Z-i-0123456789abcdef0"


def test_client_tokens_are_short_deterministic_and_differ_per_resource_and_attempt() -> None:
    token = restore.client_token(POLICY, "20240501T010000Z-i-0123456789abcdef0")
    assert token == restore.client_token(POLICY, "20240501T010000Z-i-0123456789abcdef0", 0, 1)
    assert len(token) <= 64 and token.isascii()
    others = {
        restore.client_token(POLICY, "20240501T010000Z-i-0123456789abcdef0", 1),
        restore.client_token(POLICY, "20240501T010000Z-i-0123456789abcdef0", 0, 2),
        restore.client_token("weekly", "20240501T010000Z-i-0123456789abcdef0"),
        restore.client_token("x" * 200, "y" * 200),
    }
    assert token not in others and len(others) == 4
    assert all(len(other) <= 64 for other in others)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("InsufficientInstanceCapacity", "capacity"),
        ("VcpuLimitExceeded", "capacity"),
        ("InsufficientVolumeCapacity", "capacity"),
        ("RequestLimitExceeded", "capacity"),
        ("InvalidSubnetID.NotFound", "config"),
        ("UnauthorizedOperation", "config"),
        ("InvalidParameterCombination", "config"),
        ("InvalidParameter", "config"),
        ("InvalidAMIID.NotFound", "backup_gone"),
        ("InvalidAMIID.Unavailable", "backup_gone"),
        ("InvalidSnapshot.NotFound", "backup_gone"),
        ("InternalError", "other"),
    ],
)
def test_launch_errors_are_classified(code: str, kind: str) -> None:
    assert restore.launch_error_kind(code) == kind


DEADLINE = START + timedelta(minutes=30)


@pytest.mark.parametrize(
    ("state", "now", "deadline", "verdict"),
    [
        ("ready", START, DEADLINE, "pass"),
        ("ready", DEADLINE + timedelta(minutes=5), DEADLINE, "pass"),  # restored, slowly
        ("failed", START, None, "fail"),
        ("starting", START, DEADLINE, "wait"),
        ("starting", DEADLINE + timedelta(days=1), None, "wait"),  # events never time a test out
        ("starting", DEADLINE, DEADLINE, "time_out"),
    ],
)
def test_restore_verdict(state: Any, now: datetime, deadline: datetime | None, verdict: str) -> None:
    assert restore.restore_verdict(RestoreProgress(state), now, deadline) == verdict


def test_newest_good_skips_bad_and_restore_failed_backups() -> None:
    listed = [
        backup("i-1", "ami-old", hours_old=48),
        backup("i-1", "ami-restore-failed", hours_old=24, result="failed"),
        backup("i-1", "ami-pending", hours_old=1, good=False),
        backup("i-2", "ami-only-bad", good=False),
        backup("i-3", "ami-new", hours_old=1),
        backup("i-3", "ami-older", hours_old=2, result="passed"),
    ]
    newest = restore.newest_good(listed)
    assert {source: b.backup_ids for source, b in newest.items()} == {"i-1": ("ami-old",), "i-3": ("ami-new",)}


def test_selection_all_tagged_and_already_verified() -> None:
    newest = {
        "i-1": backup("i-1", "ami-1", tags={"Tier": "gold"}),
        "i-2": backup("i-2", "ami-2", tags={"Tier": "gold"}, result="passed"),
        "i-3": backup("i-3", "ami-3"),
    }
    to_test, verified = restore.select_for_test(newest, CONFIG, SLOT)
    assert [b.source_id for b in to_test] == ["i-1", "i-3"]
    assert [b.source_id for b in verified] == ["i-2"]
    tagged = replace(CONFIG, sources="tagged", source_tags=(("Tier", "gold"),))
    to_test, verified = restore.select_for_test(newest, tagged, SLOT)
    assert ([b.source_id for b in to_test], [b.source_id for b in verified]) == (["i-1"], ["i-2"])


def test_a_sample_is_stable_within_a_slot_and_moves_between_slots() -> None:
    newest = {f"i-{n}": backup(f"i-{n}", f"ami-{n}") for n in range(40)}
    sample = replace(CONFIG, sources="sample", sample_size=3)
    first, _ = restore.select_for_test(newest, sample, SLOT)
    again, _ = restore.select_for_test(dict(reversed(newest.items())), sample, SLOT)
    assert len(first) == 3 and first == again
    slots = [format_time(START + timedelta(days=day)) for day in range(10)]
    chosen = {b.source_id for slot in slots for b in restore.select_for_test(newest, sample, slot)[0]}
    assert len(chosen) > 3  # every source gets its turn over the slots


def test_a_sample_takes_sources_not_yet_verified_before_verified_ones() -> None:
    newest = {f"i-{n}": backup(f"i-{n}", f"ami-{n}", result="passed" if n < 8 else None) for n in range(10)}
    sample = replace(CONFIG, sources="sample", sample_size=3)

    to_test, verified = restore.select_for_test(newest, sample, SLOT)

    # Two are left to verify: both are tested, and one verified source fills the sample (skipped as verified).
    assert sorted(b.source_id for b in to_test) == ["i-8", "i-9"] and len(verified) == 1


def test_restore_result_and_restored_tags() -> None:
    assert restore.restore_result_of({tagging.RESTORE_RESULT: "passed"}) == "passed"
    assert restore.restore_result_of({tagging.RESTORE_RESULT: "failed"}) == "failed"
    assert restore.restore_result_of({tagging.RESTORE_RESULT: "maybe"}) is None
    assert restore.restore_result_of({}) is None
    tags = restore.restored_tags(POLICY, "20240501T010000Z-i-1", SLOT, tagging.SOURCE_IMAGE, "ami-1")
    assert tags == {
        tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
        tagging.POLICY: POLICY,
        tagging.SLOT: SLOT,
        tagging.RESTORE_TEST: "20240501T010000Z-i-1",
        tagging.SOURCE_IMAGE: "ami-1",
    }
    assert tagging.is_owned(tags, POLICY)


def test_messages_round_trip_and_are_restore_items() -> None:
    check = RestoreCheckMessage(POLICY, "t", REGION, "arn:aws:iam::111122223333:role/r", "2024-05-01T01:30:00Z")
    sweep = RestoreSweepMessage(POLICY, REGION, None)
    later = RestoreSweepMessage(POLICY, REGION, None, not_before="2024-05-01T01:45:00Z")
    for message in (run_message(attempt=3), check, sweep, later):
        assert parse_work_body(to_body(message), restore.RESTORE_DECODERS) == message
        assert restore.is_restore_item(message)
    assert "not_before" not in json.loads(to_body(sweep))
    assert restore.is_restore_item(InstanceStateChange("i-1", "running", REGION, "123456789012"))
    assert restore.is_restore_item(VolumeNotification("vol-1", "createVolume", "available", "", REGION, "1"))
    assert not restore.is_restore_item(object())


# ---------------------------------------------------------------------------------------------------------------
# OPS_RESTORE_TEST
# ---------------------------------------------------------------------------------------------------------------


def test_an_empty_variable_means_off_and_a_missing_one_is_an_error() -> None:
    assert RestoreTestConfig.from_env({"OPS_RESTORE_TEST": ""}) is None
    with pytest.raises(ConfigError, match="OPS_RESTORE_TEST"):
        RestoreTestConfig.from_env({})


def test_the_variable_is_read_with_defaults_for_unused_keys() -> None:
    value = {
        **CONFIG_JSON,
        "sources": "tagged",
        "source_tags": {"Restore": "yes"},
        "validation_document": "AWS-RunShellScript",
        "validation_parameters": {"commands": ["systemctl is-active nginx"]},
        "role_arn": "arn:aws:iam::111122223333:role/ops-automation-target",
        "region": "eu-west-1",
    }
    read = RestoreTestConfig.from_env({"OPS_RESTORE_TEST": json.dumps(value)})
    assert read is not None
    assert (read.sources, read.source_tags, read.sample_size, read.volume_type) == (
        "tagged",
        (("Restore", "yes"),),
        1,
        "gp3",
    )
    assert read.validation_parameters == {"commands": ("systemctl is-active nginx",)}
    assert read.allow_routed_subnet is False
    routed = {**value, "allow_routed_subnet": True, "volume_type": "gp2"}
    read_routed = RestoreTestConfig.from_env({"OPS_RESTORE_TEST": json.dumps(routed)})
    assert read_routed is not None and (read_routed.allow_routed_subnet, read_routed.volume_type) == (True, "gp2")
    assert read.target("us-east-1") == Target("eu-west-1", "arn:aws:iam::111122223333:role/ops-automation-target")
    assert CONFIG.target("us-east-1") == Target("us-east-1", None)


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"subnet_id": "subnet-xyz"}, "subnet_id"),
        ({"subnet_id": None}, "subnet_id"),
        ({"security_group_id": "sg-123"}, "security_group_id"),
        ({"sources": "some"}, "sources"),
        ({"sources": "sample", "sample_size": 0}, "sample_size"),
        ({"max_concurrent": 21}, "max_concurrent"),
        ({"deadline_minutes": 9}, "deadline_minutes"),
        ({"deadline_minutes": True}, "deadline_minutes"),
        ({"volume_type": "gp4"}, "volume_type"),
        ({"volume_type": "io2"}, "volume_type"),  # needs Iops the config does not carry
        ({"allow_routed_subnet": "yes"}, "allow_routed_subnet"),
        ({"instance_type": "large"}, "instance_type"),
        ({"role_arn": "ops-automation-target"}, "role_arn"),
        ({"region": "Tokyo"}, "region"),
        ({"source_tags": {"Tier": 1}}, "source_tags"),
        ({"validation_parameters": {"commands": "ls"}}, "validation_parameters"),
        ({"sources": "tagged"}, "source_tags"),
    ],
)
def test_invalid_settings_name_the_field_and_the_value(change: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        RestoreTestConfig.from_env({"OPS_RESTORE_TEST": json.dumps({**CONFIG_JSON, **change})})
    assert raised.value.field == f"OPS_RESTORE_TEST.{field_name}"
    assert raised.value.value == {**CONFIG_JSON, **change}[field_name]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("[]", "must be a JSON object"),
        ("{", "not valid JSON"),
        (json.dumps({**CONFIG_JSON, "schedule_expression": "rate(7 days)"}), "unknown key"),
        (json.dumps({k: v for k, v in CONFIG_JSON.items() if k != "volume_type"}), "missing key"),
    ],
)
def test_a_malformed_object_is_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        RestoreTestConfig.from_env({"OPS_RESTORE_TEST": raw})


# ---------------------------------------------------------------------------------------------------------------
# The planner
# ---------------------------------------------------------------------------------------------------------------


def test_the_plan_queues_a_sweep_then_one_test_per_untested_newest_backup(world: World) -> None:
    world.adapter.listed = [
        backup("i-1", "ami-1"),
        backup("i-1", "ami-1-older", hours_old=30),
        backup("i-2", "ami-2", result="passed"),
        backup("i-3", "ami-3", good=False),
    ]
    assert world.plan() == {"planned": 1, "already_verified": 1, "sources": 2}
    bodies = [body for body, _ in world.sqs.take()]
    assert [body["kind"] for body in bodies] == ["restore_sweep", "restore_test"]
    assert bodies[1] | {"queued_at": "-"} == {
        "kind": "restore_test",
        "policy": POLICY,
        "test_id": "20240501T010000Z-i-1",
        "source_id": "i-1",
        "backup_ids": ["ami-1"],
        "region": REGION,
        "role_arn": None,
        "slot": SLOT,
        "queued_at": "-",
        "attempt": 1,
    }
    assert world.sns.published == []
    assert world.clients.ec2_made == [(REGION, None)]


def test_a_plan_with_nothing_to_test_reports_it(world: World) -> None:
    world.adapter.listed = [backup("i-1", "ami-1", good=False)]
    world.plan()
    assert world.sns.titles() == [restore.NOTHING_TO_TEST]
    assert world.sns.published[0]["reason"] == "no good backup of any source"
    assert [body["kind"] for body, _ in world.sqs.take()] == ["restore_sweep"]


# ---------------------------------------------------------------------------------------------------------------
# A test: lease, launch, and what refuses it
# ---------------------------------------------------------------------------------------------------------------


def test_a_launch_records_the_test_and_schedules_its_check_and_sweep(world: World) -> None:
    result = world.handle(run_message())
    assert result["outcome"] == "launched"
    [instance_id] = result["resource_ids"]
    [(_, test_id, token, tags)] = [call for call in world.adapter.calls if call[0] == "launch"]
    assert token == restore.client_token(POLICY, test_id)
    assert tags[tagging.RESTORE_TEST] == test_id and tags[tagging.SOURCE_IMAGE] == "ami-0123456789abcdef0"
    entry = world.record(test_id)
    assert (entry.state, entry.source_id, entry.slot) == ("pending", "i-0123456789abcdef0", SLOT)
    assert entry.details["resource_ids"] == instance_id
    assert entry.details["deadline"] == "2024-05-01T01:30:00Z"
    index = world.ledger.get(LedgerKey(SERVICE, POLICY, "local", REGION, f"restore#{instance_id}"))
    assert index is not None and index.source_id == test_id
    sent = world.sqs.take()
    assert [(body["kind"], delay) for body, delay in sent] == [("restore_check", 120), ("restore_sweep", 900)]
    assert sent[1][0]["not_before"] == "2024-05-01T01:45:00Z"


def test_a_redelivered_test_launches_nothing_more(world: World) -> None:
    world.handle(run_message())
    world.sqs.take()
    assert world.handle(run_message())["outcome"] == "already_launched"
    assert world.adapter.names().count("launch") == 1
    assert [body["kind"] for body, _ in world.sqs.take()] == ["restore_check", "restore_sweep"]


def test_at_most_max_concurrent_tests_run_and_the_next_waits_for_a_slot(world: World) -> None:
    for n in range(2):
        assert world.handle(run_message(f"i-{n}", f"ami-{n}"))["outcome"] == "launched"
    world.sqs.take()
    third = run_message("i-2", "ami-2")
    assert world.handle(third)["outcome"] == "waiting_for_slot"
    assert world.sqs.take() == [(json.loads(to_body(third)), restore.LEASE_WAIT_SECONDS)]
    assert world.adapter.names().count("launch") == 2


def test_a_crashed_tests_slot_is_free_once_its_lease_expires(world: World) -> None:
    for n in range(2):
        world.handle(run_message(f"i-{n}", f"ami-{n}"))
    third = run_message("i-2", "ami-2")
    world.clock.advance(minutes=45)  # deadline + grace: still held (the expiry is inclusive)
    assert world.handle(third)["outcome"] == "waiting_for_slot"
    world.clock.advance(seconds=1)
    assert world.handle(third)["outcome"] == "launched"


def test_a_test_that_waits_a_day_for_a_slot_is_alerted_once_as_not_run(world: World) -> None:
    for n in range(2):
        world.handle(run_message(f"i-{n}", f"ami-{n}"))
    waiting = run_message("i-2", "ami-2")
    world.ledger.leases = {key: START + timedelta(days=2) for key in world.ledger.leases}  # stuck slots
    world.clock.advance(hours=24)
    assert world.handle(waiting)["outcome"] == "not_run"
    assert world.handle(waiting)["outcome"] == "already_deleted"
    assert world.sns.titles() == [restore.NOT_RUN]
    assert world.sns.published[0]["error_code"] == "NoFreeSlot"
    assert world.metrics["RestoreTestsNotRun"] == 1
    assert "mark" not in world.adapter.names()


def test_a_capacity_refusal_is_retried_with_back_off_then_alerted_once_as_not_run(world: World) -> None:
    world.adapter.launch_errors = [client_error("InsufficientInstanceCapacity") for _ in range(8)]
    message = run_message()
    delays = []
    for attempt in range(1, 8):
        assert world.handle(message)["outcome"] == "retrying"
        [(body, delay)] = world.sqs.take()
        assert body["attempt"] == attempt + 1
        delays.append(delay)
        message = parse_work_body(json.dumps(body), restore.RESTORE_DECODERS)
    assert delays == [60, 120, 240, 480, 900, 900, 900]
    tokens = [call[2] for call in world.adapter.calls if call[0] == "launch"]
    assert len(set(tokens)) == 7  # a refused launch made nothing: each attempt is a new request
    assert world.held() == []  # released each time: a refused test holds no slot while it waits
    result = world.handle(message)
    assert (result["outcome"], result["error_code"]) == ("not_run", "InsufficientInstanceCapacity")
    assert world.sns.titles() == [restore.NOT_RUN]
    assert "InsufficientInstanceCapacity" in world.sns.published[0]["reason"]
    assert world.metrics == Counter({"RestoreTestsNotRun": 1})
    assert "mark" not in world.adapter.names() and world.sqs.take() == []


@pytest.mark.parametrize(
    "error",
    [client_error("InvalidSubnetID.NotFound"), RestoreConfigError("restore_test.security_group_id: has ingress")],
)
def test_a_configuration_refusal_is_alerted_once_and_is_not_a_failed_backup(world: World, error: Exception) -> None:
    if isinstance(error, RestoreConfigError):
        world.adapter.prepare_error = error
    else:
        world.adapter.launch_errors = [error]
    assert world.handle(run_message())["outcome"] == "cannot_run"
    assert world.handle(run_message())["outcome"] == "already_deleted"
    assert world.sns.titles() == [restore.CANNOT_RUN]
    assert "mark" not in world.adapter.names()
    assert world.held() == []
    entry = world.record(restore.test_id_of(SLOT, "i-0123456789abcdef0"))
    assert entry.details["result"] == "cannot_run"


def test_a_backup_gone_before_its_test_is_skipped_without_alert(world: World) -> None:
    world.adapter.launch_errors = [client_error("InvalidAMIID.NotFound")]
    assert world.handle(run_message())["outcome"] == "skipped"
    assert world.handle(run_message())["outcome"] == "already_deleted"
    assert world.sns.published == [] and world.metrics == Counter()
    assert world.held() == []


def test_an_unknown_launch_error_is_raised_for_sqs_to_retry(world: World) -> None:
    world.adapter.launch_errors = [client_error("InternalError")]
    with pytest.raises(ClientError):
        world.handle(run_message())
    assert world.handle(run_message())["outcome"] == "launched"
    assert len(world.held()) == 1  # the retry took the slot it held


# ---------------------------------------------------------------------------------------------------------------
# Checks, events, finish
# ---------------------------------------------------------------------------------------------------------------


def launched(world: World) -> tuple[str, str, RestoreCheckMessage]:
    result = world.handle(run_message())
    sent = world.sqs.take()
    check = parse_work_body(json.dumps(sent[0][0]), restore.RESTORE_DECODERS)
    return result["test_id"], result["resource_ids"][0], check


def test_a_pass_cleans_up_then_tags_the_backup_then_records_it_and_frees_the_slot(world: World) -> None:
    test_id, instance_id, check = launched(world)
    world.adapter.progress = RestoreProgress("ready", details={"status": "ok"})
    world.clock.advance(minutes=3)
    assert world.handle(check)["outcome"] == "passed"
    finish = [call[0] for call in world.adapter.calls if call[0] in ("clean_up", "mark")]
    assert finish == ["clean_up", "mark"]
    assert ("clean_up", (instance_id,)) in world.adapter.calls
    assert ("mark", ("ami-0123456789abcdef0",), "passed", SLOT) in world.adapter.calls
    entry = world.record(test_id)
    assert entry.state == "available"
    assert {key: entry.details[key] for key in ("result", "started_at", "finished_at", "duration_seconds")} == {
        "result": "passed",
        "started_at": "2024-05-01T01:00:00Z",
        "finished_at": "2024-05-01T01:03:00Z",
        "duration_seconds": "180",
    }
    assert (entry.details["backup_ids"], entry.details["resource_ids"]) == ("ami-0123456789abcdef0", instance_id)
    assert world.held() == []
    assert world.sns.published == [] and world.metrics == Counter({"RestoreTestsPassed": 1})
    assert world.sqs.take() == []  # no further check


def test_a_failure_is_alerted_once_whatever_the_deliveries(world: World) -> None:
    test_id, instance_id, check = launched(world)
    world.adapter.progress = RestoreProgress("failed", "status check impaired", {"instance_status": "impaired"})
    event = InstanceStateChange(instance_id, "terminated", REGION, "123456789012")
    results = [world.handle(event), world.handle(check), world.handle(event)]
    assert [result["outcome"] for result in results] == ["failed", "already_failed", "already_failed"]
    assert world.sns.titles() == [restore.TEST_FAILED]
    alert = world.sns.published[0]
    assert (alert["source_id"], alert["backup_ids"], alert["reason"]) == (
        "i-0123456789abcdef0",
        ["ami-0123456789abcdef0"],
        "status check impaired",
    )
    assert alert["instance_status"] == "impaired" and "duration_seconds" in alert
    finish = [call[0] for call in world.adapter.calls if call[0] in ("clean_up", "mark")]
    assert finish == ["clean_up", "mark"]
    assert ("mark", ("ami-0123456789abcdef0",), "failed", SLOT) in world.adapter.calls
    assert world.metrics == Counter({"RestoreTestsFailed": 1})
    assert world.record(test_id).state == "failed"


def test_a_decided_pass_stays_a_pass_when_a_later_delivery_sees_the_resources_gone(world: World) -> None:
    test_id, instance_id, check = launched(world)
    world.adapter.progress = RestoreProgress("ready")
    world.adapter.mark_error = RuntimeError("tagging throttled")
    with pytest.raises(RuntimeError):
        world.handle(check)
    # The instance is terminated by then: its own events arrive, and the adapter would now say "failed".
    world.adapter.progress = RestoreProgress("failed", "instance terminated")
    assert world.handle(InstanceStateChange(instance_id, "terminated", REGION, "123456789012"))["outcome"] == "passed"
    assert world.record(test_id).state == "available"
    assert [call[2] for call in world.adapter.calls if call[0] == "mark"] == ["passed", "passed"]
    assert world.sns.published == []


@pytest.mark.parametrize("state", ["failed", "starting"])
def test_a_failure_that_is_not_the_backups_fault_cannot_run_and_leaves_the_backup_untagged(
    world: World, state: Any
) -> None:
    """A KMS key the role may not use terminates the instance (StateReason Client.InternalError); an SSM agent that
    cannot reach its endpoints never registers: the adapter says so, and the backup is not judged."""
    test_id, instance_id, check = launched(world)
    world.adapter.progress = RestoreProgress(
        state, "KMS key not usable by the role: check restore_test.kms_key_arns", {restore.NOT_BACKUP_FAULT: "true"}
    )
    world.clock.advance(minutes=30)  # at the deadline: a "starting" test times out
    result = world.handle(check)
    assert result["outcome"] == "not_run"
    assert world.handle(InstanceStateChange(instance_id, "terminated", REGION, "123456789012"))["outcome"] == (
        "already_deleted"
    )
    assert world.sns.titles() == [restore.CANNOT_RUN]
    assert "kms_key_arns" in world.sns.published[0]["reason"]
    assert "mark" not in world.adapter.names() and ("clean_up", (instance_id,)) in world.adapter.calls
    entry = world.record(test_id)
    assert (entry.state, entry.details["result"]) == ("deleted", "not_run")
    assert world.metrics == Counter({"RestoreTestsNotRun": 1}) and world.held() == []


def test_a_failed_publish_undoes_the_transition_and_raises_so_the_retry_alerts(world: World) -> None:
    test_id, _, check = launched(world)
    world.adapter.progress = RestoreProgress("failed", "impaired")
    world.sns.failures = 1
    with pytest.raises(RuntimeError, match="SNS"):
        world.handle(check)
    assert world.record(test_id).state == "pending"
    assert world.sns.published == []
    assert world.handle(check)["outcome"] == "failed"
    assert world.sns.titles() == [restore.TEST_FAILED]
    assert world.metrics == Counter({"RestoreTestsFailed": 1})


def test_a_check_waits_then_times_out_at_the_deadline(world: World) -> None:
    test_id, _, check = launched(world)
    world.clock.advance(minutes=29, seconds=30)
    assert world.handle(check)["outcome"] == "pending"
    assert world.sqs.take() == [(json.loads(to_body(check)), 30)]  # never past the deadline
    world.clock.advance(seconds=30)
    result = world.handle(check)
    assert (result["outcome"], result["reason"]) == ("failed", "did not pass within 30 minutes")
    assert world.sns.titles() == [restore.TEST_FAILED]
    assert world.record(test_id).details["reason"] == "did not pass within 30 minutes"


def test_an_early_check_polls_again_after_poll_seconds(world: World) -> None:
    _, _, check = launched(world)
    world.clock.advance(minutes=2)
    world.handle(check)
    assert world.sqs.take() == [(json.loads(to_body(check)), 60)]


def test_an_event_before_the_verdict_waits_without_sending_anything(world: World) -> None:
    test_id, instance_id, _ = launched(world)
    world.adapter.progress = RestoreProgress("starting", remember={"command_id": "cmd-1"})
    result = world.handle(InstanceStateChange(instance_id, "running", REGION, "123456789012"))
    assert result["outcome"] == "pending"
    assert world.sqs.take() == []
    assert world.record(test_id).details["command_id"] == "cmd-1"
    world.handle(InstanceStateChange(instance_id, "running", REGION, "123456789012"))
    assert world.adapter.calls[-1][3]["command_id"] == "cmd-1"  # the next observation sees it


@pytest.mark.parametrize(
    "event",
    [
        InstanceStateChange("i-0fedcba9876543210", "running", REGION, "123456789012"),  # not a restored instance
        InstanceStateChange("i-0fedcba9876543210", "pending", REGION, "123456789012"),
        VolumeNotification("vol-0fedcba9876543210", "createVolume", "available", "", REGION, "123456789012"),
        VolumeNotification("vol-0fedcba9876543210", "attachVolume", "available", "", REGION, "123456789012"),
        InstanceStateChange("i-0fedcba9876543210", "running", "eu-west-1", "123456789012"),
    ],
)
def test_events_of_other_resources_are_ignored_without_any_ec2_call(world: World, event: Any) -> None:
    assert world.handle(event)["outcome"] == "ignored"
    assert world.adapter.calls == [] and world.clients.ec2_made == []


def test_an_event_of_a_restored_resource_outside_the_restore_target_is_ignored(world: World) -> None:
    _, instance_id, _ = launched(world)
    calls = len(world.adapter.calls)
    world.config = replace(CONFIG, role_arn="arn:aws:iam::111122223333:role/ops-automation-target")
    assert world.handle(InstanceStateChange(instance_id, "running", REGION, "444455556666"))["outcome"] == "ignored"
    assert len(world.adapter.calls) == calls


def test_a_check_of_a_finished_test_touches_nothing(world: World) -> None:
    _, _, check = launched(world)
    world.adapter.progress = RestoreProgress("ready")
    world.handle(check)
    calls = len(world.adapter.calls)
    assert world.handle(check)["outcome"] == "already_available"
    assert len(world.adapter.calls) == calls


# ---------------------------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------------------------


def test_the_sweep_cleans_up_leftovers_past_deadline_and_grace_and_reports_them(world: World) -> None:
    world.adapter.left = ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"]
    assert world.handle(RestoreSweepMessage(POLICY, REGION, None))["outcome"] == "swept"
    assert world.adapter.calls == [
        ("leftovers", START - timedelta(minutes=45)),
        ("clean_up", ("i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb")),
    ]
    assert world.sns.titles() == [restore.LEFTOVERS_CLEANED]
    assert world.sns.published[0]["resource_ids"] == ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"]
    assert world.metrics == Counter({"RestoreLeftoversSwept": 2})


def test_the_sweep_closes_a_test_whose_checks_were_lost_without_judging_its_backup(world: World) -> None:
    test_id, instance_id, _ = launched(world)  # its check is never delivered
    world.clock.advance(minutes=46)
    world.adapter.left = [instance_id]
    result = world.handle(RestoreSweepMessage(POLICY, REGION, None))
    assert (result["outcome"], result["test_ids"]) == ("swept", [test_id])
    entry = world.record(test_id)
    assert (entry.state, entry.details["result"]) == ("deleted", "not_run")
    assert world.held() == [] and "mark" not in world.adapter.names()
    assert world.sns.titles() == [restore.LEFTOVERS_CLEANED]
    assert world.sns.published[0]["test_ids"] == [test_id]


def test_a_clean_sweep_says_nothing(world: World) -> None:
    assert world.handle(RestoreSweepMessage(POLICY, REGION, None))["outcome"] == "clean"
    assert world.sns.published == [] and world.metrics == Counter()


def test_a_tests_own_sweep_waits_until_it_is_due(world: World) -> None:
    sweep = RestoreSweepMessage(POLICY, REGION, None, not_before="2024-05-01T01:45:00Z")
    world.clock.advance(minutes=15)
    assert world.handle(sweep)["outcome"] == "not_yet"
    assert world.sqs.take() == [(json.loads(to_body(sweep)), 900)]
    world.clock.advance(minutes=30)
    assert world.handle(sweep)["outcome"] == "clean"
    assert world.adapter.names() == ["leftovers"]


def test_a_message_of_another_policy_is_rejected(world: World) -> None:
    from ops_automation.core.errors import MalformedEventError

    with pytest.raises(MalformedEventError, match="policy"):
        world.handle(RestoreSweepMessage("weekly", REGION, None))


def _adapter_is_a_restore_adapter(adapter: FakeAdapter) -> RestoreAdapter:
    return adapter  # mypy checks the fake against the protocol


def test_the_restore_setting_is_refused_beside_a_fanned_out_scope_or_a_role_the_policy_does_not_target() -> None:
    setting = dict(CONFIG_JSON)
    own = ScopeConfig(regions=(), role_arns=("arn:aws:iam::111111111111:role/target",))
    fanned = ScopeConfig(regions=(), role_arns=(), accounts=("111111111111",), role_name="target")
    on = {restore.ENV: json.dumps({**setting, "role_arn": "arn:aws:iam::111111111111:role/target"})}
    assert restore.restore_config(on, own) is not None
    assert restore.restore_config({restore.ENV: ""}, fanned) is None
    with pytest.raises(ConfigError, match="target_accounts"):
        restore.restore_config({restore.ENV: json.dumps(setting)}, fanned)
    with pytest.raises(ConfigError, match="target_role_arns"):
        other = {restore.ENV: json.dumps({**setting, "role_arn": "arn:aws:iam::222222222222:role/x"})}
        restore.restore_config(other, own)
