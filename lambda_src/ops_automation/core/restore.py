"""Restore tests: a backup is proven by restoring it (an instance from an AMI, volumes from a snapshot set) in an
isolated subnet, checking what came up, and removing it again.

A module supplies a `RestoreAdapter` (what to list, launch, observe, clean up and tag); this module is what both
modules share: the planner's choice of backups, a lease per concurrent test, the ledger record that makes every
step idempotent on redelivery, the verdict, and alerts sent once. Modules call only `plan_restore_tests`,
`handle_restore_item` and `is_restore_item`.

Ledger items (one policy, one target): the test `restore#<test id>` (pending while it runs; available = passed;
failed = the backup failed; deleted = the test did not judge the backup: `details.result` not_run, cannot_run or
skipped), one index
item per restored resource `restore#<resource id>` (source_id = the test id: a state event names only the resource),
the finish claim `restore-finish#<test id>` (the verdict, decided once), and leases `restore-lease#<i>`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol

from botocore.exceptions import ClientError

from . import config as config_env
from . import tagging
from .clients import account_of_role
from .errors import THROTTLING_ERRORS, ConfigError, MalformedEventError, error_code
from .events import (
    SLOT_FORMAT,
    Decoder,
    InstanceStateChange,
    VolumeNotification,
    WorkMessage,
    format_time,
    optional_text,
    parse_time,
    text,
    text_list,
    time_field,
)
from .fanout import SQS_MAX_DELAY_SECONDS, BatchSender, send_delayed
from .ledger import LedgerEntry, LedgerKey, LedgerState
from .observability import count, logger
from .runtime import Runtime
from .scope import LazyClient, Target

Result = Literal["passed", "failed"]
Verdict = Literal["wait", "pass", "fail", "time_out"]
LaunchErrorKind = Literal["capacity", "config", "backup_gone", "other"]

ENV = "OPS_RESTORE_TEST"
# Alert and report titles (subjects of the SNS messages: operators filter on them).
TEST_FAILED = "restore test failed"
NOT_RUN = "restore test not run"
CANNOT_RUN = "restore test cannot run"
LEFTOVERS_CLEANED = "restore test leftovers cleaned up"
NOTHING_TO_TEST = "restore test found nothing to test"

# A test waiting for a free slot looks again every 5 minutes, for a day; a launch refused for capacity is tried 8
# times with back-off (60 s doubling, capped at SQS's 15-minute maximum delay).
LEASE_WAIT_SECONDS = 300
MAX_LEASE_WAIT = timedelta(hours=24)
MAX_LAUNCH_ATTEMPTS = 8
CAPACITY_BACKOFF_BASE_SECONDS = 60
# A test's lease and its resources outlive its deadline by this much before they count as abandoned.
GRACE = timedelta(minutes=15)
DEFAULT_LEDGER_TTL_DAYS = 90

# Launch errors that pass by themselves: capacity and quotas (EC2 API error codes,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) and throttling. Not a failed backup.
CAPACITY_ERRORS = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "InsufficientFreeAddressesInSubnet",
        "InsufficientVolumeCapacity",
        "VolumeLimitExceeded",
        "MaxIOPSLimitExceeded",
        *THROTTLING_ERRORS,
    }
)
# The restore_test settings (or the role's permissions) are wrong: no retry helps, nor is the backup at fault.
CONFIG_ERRORS = frozenset(
    {
        "InvalidSubnetID.NotFound",
        "InvalidGroup.NotFound",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        # Observed, not documented for this case: a security group of another VPC than the subnet's ("... belong to
        # different networks").
        "InvalidParameter",
        "Unsupported",
        "UnauthorizedOperation",
    }
)
SNAPSHOT_GONE = "InvalidSnapshot.NotFound"
# The instance states an `EC2 Instance State-change Notification` can settle a test in; `pending` and `stopping`
# say nothing yet.
DECISIVE_INSTANCE_STATES = frozenset({"running", "stopped", "shutting-down", "terminated"})

_SUBNET = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)
_SECURITY_GROUP = re.compile(r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+", re.ASCII)
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9-]+", re.ASCII)
# IAM instance profile names: 1-128 of [\w+=,.@-].
_PROFILE_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
# io1/io2 need Iops and st1/sc1 at least 125 GiB, which a snapshot's size does not guarantee.
VOLUME_TYPES = ("gp3", "gp2")
# An adapter's progress detail: the failure (or a time-out while this is set) is not the backup's fault (a KMS key
# the role may not use, an SSM agent that cannot reach its endpoints): "restore test cannot run", backup untouched.
NOT_BACKUP_FAULT = "not_backup_fault"
SOURCES = ("all", "sample", "tagged")


# Record detail holding the cause a failed `createVolume` event gave (EBS restore tests).
EVENT_CAUSE = "event_cause"
# Record detail set once a `createVolume` event with result `failed` arrived (its cause may be empty).
EVENT_FAILED = "event_failed"


class RestoreConfigError(Exception):
    """The restore test cannot run as configured (a security group with ingress rules, an instance type that does
    not fit the image...); the message names the `restore_test` field and its value. Alerted once per test, never
    counted against the backup."""


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreTestConfig:
    """The module's `restore_test` input, as `OPS_RESTORE_TEST` carries it (a JSON object with every key; "" =
    restore tests off)."""

    region: str | None
    role_arn: str | None
    subnet_id: str
    security_group_id: str
    sources: Literal["all", "sample", "tagged"]
    sample_size: int
    source_tags: tuple[tuple[str, str], ...]
    max_concurrent: int
    deadline_minutes: int
    instance_type: str | None
    validation_document: str | None
    validation_parameters: Mapping[str, tuple[str, ...]]
    instance_profile_name: str | None
    volume_type: str
    # Launch into a subnet with a route out (internet, NAT, transit, peering, VPN): refused unless set.
    allow_routed_subnet: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RestoreTestConfig | None:
        env = config_env.environ_of(environ)
        if ENV not in env:
            raise ConfigError(ENV, None, "is required (set it to an empty string when restore tests are off)")
        raw = env[ENV].strip()
        if not raw:
            return None
        value = config_env.json_value(env, ENV)
        if not isinstance(value, dict):
            raise ConfigError(ENV, raw, "must be a JSON object")
        fields = set(cls.__dataclass_fields__)
        unknown, missing = sorted(set(value) - fields), sorted(fields - set(value))
        if unknown:
            raise ConfigError(ENV, raw, f"unknown key(s) {unknown}")
        if missing:
            raise ConfigError(ENV, raw, f"missing key(s) {missing} (null where not used)")
        reader = _Reader(value)
        sources = reader.choice("sources", SOURCES, "all")
        source_tags = reader.string_map("source_tags")
        if sources == "tagged" and not source_tags:
            raise ConfigError(f"{ENV}.source_tags", value["source_tags"], 'sources = "tagged" needs source_tags')
        return cls(
            region=reader.optional("region", _REGION, "a region name"),
            role_arn=reader.optional("role_arn", _ROLE_ARN, "an IAM role ARN"),
            subnet_id=reader.required("subnet_id", _SUBNET, "a subnet id (subnet-...)"),
            security_group_id=reader.required("security_group_id", _SECURITY_GROUP, "a security group id (sg-...)"),
            sources=sources,  # type: ignore[arg-type]
            sample_size=reader.integer("sample_size", 1, 1000, default=1),
            source_tags=tuple(sorted(source_tags.items())),
            max_concurrent=reader.integer("max_concurrent", 1, 20),
            deadline_minutes=reader.integer("deadline_minutes", 10, 180),
            instance_type=reader.optional("instance_type", _INSTANCE_TYPE, "an instance type (family.size)"),
            validation_document=reader.optional("validation_document", re.compile(r"\S+"), "an SSM document name"),
            validation_parameters=reader.string_lists("validation_parameters"),
            instance_profile_name=reader.optional("instance_profile_name", _PROFILE_NAME, "an instance profile name"),
            volume_type=reader.choice("volume_type", VOLUME_TYPES, "gp3"),
            allow_routed_subnet=reader.boolean("allow_routed_subnet"),
        )

    def target(self, default_region: str) -> Target:
        """Where every test of the policy runs: one region and one account."""
        return Target(self.region or default_region, self.role_arn)


class _Reader:
    """Field readers for the OPS_RESTORE_TEST object: errors name `OPS_RESTORE_TEST.<field>` and the value."""

    def __init__(self, value: Mapping[str, Any]) -> None:
        self._value = value

    def _fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(f"{ENV}.{name}", self._value.get(name), reason)

    def optional(self, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self._value.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self._fail(name, f"must be {what} or null")
        return value

    def required(self, name: str, pattern: re.Pattern[str], what: str) -> str:
        value = self.optional(name, pattern, what)
        if value is None:
            raise self._fail(name, f"must be {what}")
        return value

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = self._value.get(name)
        if value is None:
            return default
        if value not in choices:
            raise self._fail(name, f"must be one of {', '.join(choices)}")
        return str(value)

    def integer(self, name: str, minimum: int, maximum: int, default: int | None = None) -> int:
        value = self._value.get(name)
        if value is None and default is not None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            raise self._fail(name, f"must be an integer {minimum}..{maximum}")
        return value

    def boolean(self, name: str) -> bool:
        value = self._value.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._fail(name, "must be true, false or null")
        return value

    def string_map(self, name: str) -> dict[str, str]:
        value = self._value.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
        ):
            raise self._fail(name, "must be an object of string values")
        return dict(value)

    def string_lists(self, name: str) -> dict[str, tuple[str, ...]]:
        value = self._value.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(item, str) for item in v)
            for k, v in value.items()
        ):
            raise self._fail(name, "must be an object of string lists")
        return {key: tuple(items) for key, items in value.items()}


# ---------------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreTestMessage(WorkMessage):
    """Run one restore test of one backup (the planner sends it; it re-sends itself while it waits)."""

    policy: str
    test_id: str
    source_id: str
    backup_ids: tuple[str, ...]
    region: str
    role_arn: str | None
    slot: str
    queued_at: str
    attempt: int = 1
    kind: Literal["restore_test"] = "restore_test"


@dataclass(frozen=True)
class RestoreCheckMessage(WorkMessage):
    """Observe a running test; re-sent until it passes or fails, or its deadline passes (= failed)."""

    policy: str
    test_id: str
    region: str
    role_arn: str | None
    deadline: str
    kind: Literal["restore_check"] = "restore_check"

    @property
    def deadline_time(self) -> datetime:
        return parse_time(self.deadline, "deadline")


@dataclass(frozen=True)
class RestoreSweepMessage(WorkMessage):
    """Remove what tests left behind (a crashed worker, a lost check). `not_before`: a test's own sweep, due after
    its deadline and grace, which is longer than SQS's 15-minute delay: the message re-sends itself until then."""

    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"not_before"})

    policy: str
    region: str
    role_arn: str | None
    not_before: str | None = None
    kind: Literal["restore_sweep"] = "restore_sweep"


def _attempt(payload: Mapping[str, Any]) -> int:
    attempt = payload.get("attempt", 1)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise MalformedEventError(f"message field 'attempt' must be a positive integer, got {attempt!r}")
    return attempt


def _decode_test(payload: Mapping[str, Any]) -> RestoreTestMessage:
    backup_ids = text_list(payload, "backup_ids")
    if not backup_ids:
        raise MalformedEventError("message field 'backup_ids' must not be empty")
    return RestoreTestMessage(
        policy=text(payload, "policy"),
        test_id=text(payload, "test_id"),
        source_id=text(payload, "source_id"),
        backup_ids=backup_ids,
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        slot=time_field(payload, "slot"),
        queued_at=time_field(payload, "queued_at"),
        attempt=_attempt(payload),
    )


def _decode_check(payload: Mapping[str, Any]) -> RestoreCheckMessage:
    return RestoreCheckMessage(
        policy=text(payload, "policy"),
        test_id=text(payload, "test_id"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        deadline=time_field(payload, "deadline"),
    )


def _decode_sweep(payload: Mapping[str, Any]) -> RestoreSweepMessage:
    not_before = payload.get("not_before")
    return RestoreSweepMessage(
        policy=text(payload, "policy"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        not_before=None if not_before is None else time_field(payload, "not_before"),
    )


RESTORE_DECODERS: Mapping[str, Decoder] = {
    "restore_test": _decode_test,
    "restore_check": _decode_check,
    "restore_sweep": _decode_sweep,
}


# ---------------------------------------------------------------------------------------------------------------
# What adapters get and give
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """One backup of one source, as the adapter lists it: an AMI (one id) or an EBS snapshot set (its ids)."""

    source_id: str
    backup_ids: tuple[str, ...]
    created_at: datetime
    tags: Mapping[str, str]
    good: bool  # complete and usable: AMI `available`; a set `completed`, complete and not archived
    restore_result: Result | None


@dataclass(frozen=True)
class RestoreRecord:
    """A running test as the ledger has it."""

    test_id: str
    source_id: str
    slot: str
    backup_ids: tuple[str, ...]
    resource_ids: tuple[str, ...]
    started_at: datetime
    details: Mapping[str, str]


@dataclass(frozen=True)
class RestoreProgress:
    """What the adapter observed. `details` are named in the failure alert and recorded; `remember` is merged into
    the record's details before the next observation (an SSM command id, so the command is sent once)."""

    state: Literal["starting", "ready", "failed"]
    reason: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    remember: Mapping[str, str] = field(default_factory=dict)


class RestoreAdapter(Protocol):
    resource_noun: str  # "instance" | "volume"
    first_check_seconds: int
    poll_seconds: int

    def backups(self, ec2: Any, target: Target) -> list[Backup]: ...

    def prepare(self, ec2: Any, test: RestoreTestMessage) -> None: ...

    def launch(self, ec2: Any, test: RestoreTestMessage, token: str, tags: Mapping[str, str]) -> tuple[str, ...]: ...

    def observe(self, ec2: Any, record: RestoreRecord, now: datetime) -> RestoreProgress: ...

    def clean_up(self, ec2: Any, resource_ids: Sequence[str]) -> None: ...

    def leftovers(self, ec2: Any, cutoff: datetime) -> list[str]: ...

    def mark(self, ec2: Any, backup_ids: Sequence[str], result: Result, slot: str) -> None: ...


# ---------------------------------------------------------------------------------------------------------------
# Pure decisions
# ---------------------------------------------------------------------------------------------------------------


def newest_good(backups: Iterable[Backup]) -> dict[str, Backup]:
    """Per source, the newest good backup whose restore has not failed: a backup known not to restore is not tested
    again, the one before it is (is there still one that restores?)."""
    newest: dict[str, Backup] = {}
    for backup in backups:
        if not backup.good or backup.restore_result == "failed":
            continue
        known = newest.get(backup.source_id)
        if known is None or (backup.created_at, backup.backup_ids) > (known.created_at, known.backup_ids):
            newest[backup.source_id] = backup
    return newest


def _sample_rank(slot: str, source_id: str) -> str:
    return hashlib.sha256(f"{slot}{source_id}".encode()).hexdigest()


def select_for_test(
    newest: Mapping[str, Backup], config: RestoreTestConfig, slot: str
) -> tuple[list[Backup], list[Backup]]:
    """(to test, already verified). `sample`: N sources per slot whose newest backup is not verified yet (so a run
    tests N whenever N are left), a different N each slot but the same N on a re-run of the slot (sha256 of slot +
    source); the verified ones are listed only when fewer than N are left."""
    ordered = [newest[source] for source in sorted(newest)]
    if config.sources == "sample":
        chosen = sorted(
            ordered,
            key=lambda backup: (backup.restore_result == "passed", _sample_rank(slot, backup.source_id)),
        )[: config.sample_size]
    elif config.sources == "tagged":
        chosen = [backup for backup in ordered if tagging.carries_all(backup.tags, config.source_tags)]
    else:
        chosen = ordered
    to_test = [backup for backup in chosen if backup.restore_result != "passed"]
    verified = [backup for backup in chosen if backup.restore_result == "passed"]
    return to_test, verified


def test_id_of(slot: str, source_id: str) -> str:
    """`<YYYYmmddTHHMMSSZ>-<source id>`: one test per source and slot, whatever the deliveries."""
    moment = datetime.strptime(slot, SLOT_FORMAT)
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{source_id}"


# Not a test, whatever pytest's name rule says, when a test module imports it.
test_id_of.__test__ = False  # type: ignore[attr-defined]


def client_token(policy: str, test_id: str, index: int = 0, attempt: int = 1) -> str:
    """A ClientToken (at most 64 ASCII characters, https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html):
    a redelivered launch gets the same instance or volume back. `attempt`: a launch refused for capacity made
    nothing; its retry is a new request, with a new token."""
    digest = hashlib.sha256(f"{policy}\n{test_id}\n{index}\n{attempt}".encode()).hexdigest()
    return f"ops-automation-{digest[:40]}"


def launch_error_kind(code: str) -> LaunchErrorKind:
    if code in CAPACITY_ERRORS:
        return "capacity"
    if code in CONFIG_ERRORS:
        return "config"
    if code.startswith("InvalidAMIID.") or code == SNAPSHOT_GONE:
        return "backup_gone"
    return "other"


def restore_verdict(progress: RestoreProgress, now: datetime, deadline: datetime | None) -> Verdict:
    """`deadline` None: a state event, which never times a test out (the check does). A test that is ready when
    observed passed, even past its deadline: it restored, just slowly."""
    if progress.state == "ready":
        return "pass"
    if progress.state == "failed":
        return "fail"
    if deadline is None or now < deadline:
        return "wait"
    return "time_out"


def restore_result_of(tags: Mapping[str, str]) -> Result | None:
    value = tags.get(tagging.RESTORE_RESULT)
    return value if value in ("passed", "failed") else None  # type: ignore[return-value]


def restored_tags(policy: str, test_id: str, slot: str, backup_key: str, backup_id: str) -> dict[str, str]:
    """Tags of every restored resource, set at launch (TagSpecifications): ownership, the test, the slot, and the
    backup it came from. `backup_key`: the tag key (tagging.SOURCE_IMAGE / SOURCE_SNAPSHOT)."""
    return {
        **tagging.ownership_tags(policy, slot=slot),
        tagging.RESTORE_TEST: test_id,
        backup_key: backup_id,
    }


def restore_config(environ: Mapping[str, str], scope: config_env.ScopeConfig) -> RestoreTestConfig | None:
    """OPS_RESTORE_TEST, checked against the policy's scope as the modules' Terraform preconditions check it: one
    target, so never with target accounts / OUs, and its role one of target_role_arns (this guards a hand-edited
    environment)."""
    restore = RestoreTestConfig.from_env(environ)
    if restore is None:
        return None
    if scope.fans_out:
        raise ConfigError(ENV, restore.role_arn, "restore tests do not run with target_accounts / target_ous")
    if restore.role_arn is not None and restore.role_arn not in scope.role_arns:
        raise ConfigError(f"{ENV}.role_arn", restore.role_arn, "must be one of target_role_arns")
    return restore


def plan_if_on(
    rt: Runtime[Any], config: RestoreTestConfig | None, adapter: Callable[[], RestoreAdapter], slot: str
) -> dict[str, Any]:
    """The `restore` function's schedule; with restore tests off it has nothing to plan (its schedule should not
    exist), which is an error."""
    if config is None:
        raise ConfigError(ENV, "", "restore tests are off: the restore function has nothing to plan")
    return plan_restore_tests(rt, adapter(), config, slot)


def handle_if_on(
    rt: Runtime[Any], config: RestoreTestConfig | None, adapter: Callable[[], RestoreAdapter], item: Any
) -> dict[str, Any]:
    """A restore item of the worker; with restore tests off (turned off while items were queued) it is dropped."""
    if config is None:
        logger.info("restore tests are off; item ignored", extra={"kind": type(item).__name__})
        return {"outcome": "ignored", "reason": "restore tests are off"}
    return handle_restore_item(rt, adapter(), config, item)


def is_restore_item(item: Any) -> bool:
    return isinstance(
        item, (RestoreTestMessage, RestoreCheckMessage, RestoreSweepMessage, InstanceStateChange, VolumeNotification)
    )


# ---------------------------------------------------------------------------------------------------------------
# The machinery
# ---------------------------------------------------------------------------------------------------------------


def plan_restore_tests(
    rt: Runtime[Any], adapter: RestoreAdapter, config: RestoreTestConfig, slot: str
) -> dict[str, Any]:
    """The `restore` function's schedule: a sweep, then one test per selected backup. Reads EC2 only."""
    target = config.target(rt.clients.default_region)
    now = rt.clock()
    sender: BatchSender[WorkMessage] = BatchSender(rt.clients.client("sqs"), rt.common.work_queue_url)
    sender.add(RestoreSweepMessage(rt.policy, target.region, target.role_arn))
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    backups = adapter.backups(ec2, target)
    newest = newest_good(backups)
    to_test, verified = select_for_test(newest, config, slot)
    log_keys = {"slot": slot, "region": target.region, "account": target.account}
    for backup in verified:
        logger.info(
            "backup already verified by a restore test; not tested again",
            extra={**log_keys, "source_id": backup.source_id, "backup_ids": list(backup.backup_ids)},
        )
    for backup in to_test:
        sender.add(
            RestoreTestMessage(
                rt.policy,
                test_id_of(slot, backup.source_id),
                backup.source_id,
                backup.backup_ids,
                target.region,
                target.role_arn,
                slot,
                format_time(now),
            )
        )
    sender.flush()
    if sender.unsent:
        raise RuntimeError(f"{len(sender.unsent)} restore work item(s) could not be queued")
    if not to_test and not verified:
        reason = (
            "no good backup of any source"
            if not newest
            else f"no newest good backup carries every source tag {dict(config.source_tags)}"
        )
        rt.alerts.report(NOTHING_TO_TEST, {**log_keys, "backups_listed": len(backups), "reason": reason})
    logger.info(
        "restore tests planned",
        extra={**log_keys, "sources": len(newest), "planned": len(to_test), "already_verified": len(verified)},
    )
    return {"planned": len(to_test), "already_verified": len(verified), "sources": len(newest)}


def handle_restore_item(
    rt: Runtime[Any], adapter: RestoreAdapter, config: RestoreTestConfig, item: Any
) -> dict[str, Any]:
    if isinstance(item, (RestoreTestMessage, RestoreCheckMessage, RestoreSweepMessage)) and item.policy != rt.policy:
        raise MalformedEventError(f"message for policy {item.policy!r} reached policy {rt.policy!r}")
    if isinstance(item, RestoreTestMessage):
        return _run_test(rt, adapter, config, item)
    if isinstance(item, RestoreCheckMessage):
        return _observe_and_finish(rt, adapter, Target(item.region, item.role_arn), item.test_id, item)
    if isinstance(item, RestoreSweepMessage):
        return _sweep(rt, adapter, config, item)
    if isinstance(item, InstanceStateChange):
        if item.state not in DECISIVE_INSTANCE_STATES:
            return {"resource_id": item.instance_id, "outcome": "ignored"}
        return _on_event(rt, adapter, config, item.region, item.account, item.instance_id)
    if isinstance(item, VolumeNotification):
        if item.event != "createVolume":
            return {"resource_id": item.volume_id, "outcome": "ignored"}
        # The cause of a failed creation (a KMS key the volume cannot use) is only in the event: kept in the record
        # for the adapter to tell a key problem from a broken backup.
        cause = {EVENT_FAILED: "true", EVENT_CAUSE: item.cause} if item.result == "failed" else {}
        return _on_event(rt, adapter, config, item.region, item.account, item.volume_id, cause)
    raise MalformedEventError(f"no restore handler for {type(item).__name__}")


def _ttl_days(rt: Runtime[Any]) -> int:
    completion = getattr(rt.config, "completion", None)
    return int(getattr(completion, "ledger_ttl_days", DEFAULT_LEDGER_TTL_DAYS))


def _key(rt: Runtime[Any], target: Target, resource_id: str) -> LedgerKey:
    return LedgerKey(rt.service, rt.policy, target.account, target.region, resource_id)


def _record_key(rt: Runtime[Any], target: Target, test_id: str) -> LedgerKey:
    return _key(rt, target, f"restore#{test_id}")


def _finish_key(rt: Runtime[Any], target: Target, test_id: str) -> LedgerKey:
    return _key(rt, target, f"restore-finish#{test_id}")


def _index_key(rt: Runtime[Any], target: Target, resource_id: str) -> LedgerKey:
    return _key(rt, target, f"restore#{resource_id}")


def _lease_key(rt: Runtime[Any], target: Target, index: int) -> LedgerKey:
    return _key(rt, target, f"restore-lease#{index}")


def _ids(value: str | None) -> tuple[str, ...]:
    return tuple(part for part in (value or "").split(",") if part)


def _backup_key(adapter: RestoreAdapter) -> str:
    return tagging.SOURCE_SNAPSHOT if adapter.resource_noun == "volume" else tagging.SOURCE_IMAGE


def _ec2(rt: Runtime[Any], target: Target) -> Any:
    return LazyClient(lambda: rt.clients.client("ec2", target.region, target.role_arn))


def _send(rt: Runtime[Any], message: WorkMessage, delay_seconds: float) -> None:
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, message, delay_seconds)


def _take_lease(
    rt: Runtime[Any], target: Target, config: RestoreTestConfig, holder: str, now: datetime, until: datetime
) -> int | None:
    """One of `max_concurrent` slots. A redelivered test first looks for the slot it already holds: taking the
    first free one instead could hold two."""
    keys = [_lease_key(rt, target, index) for index in range(config.max_concurrent)]
    for index, key in enumerate(keys):
        entry = rt.ledger.get(key)
        if entry is not None and entry.source_id == holder and rt.ledger.acquire_lease(key, holder, now, until):
            return index
    for index, key in enumerate(keys):
        if rt.ledger.acquire_lease(key, holder, now, until):
            return index
    return None


def _release_lease(rt: Runtime[Any], target: Target, details: Mapping[str, str], holder: str) -> None:
    lease = details.get("lease")
    if lease is not None and lease.isdigit():
        rt.ledger.release_lease(_lease_key(rt, target, int(lease)), holder, rt.clock())


def _run_test(
    rt: Runtime[Any], adapter: RestoreAdapter, config: RestoreTestConfig, test: RestoreTestMessage
) -> dict[str, Any]:
    target = Target(test.region, test.role_arn)
    ttl = _ttl_days(rt)
    key = _record_key(rt, target, test.test_id)
    result: dict[str, Any] = {"test_id": test.test_id, "source_id": test.source_id}
    entry = rt.ledger.get(key)
    if entry is not None and entry.state != "pending":
        return {**result, "outcome": "already_" + entry.state}
    if entry is not None and entry.details.get("resource_ids"):
        # An earlier delivery launched and recorded it, then failed before its checks were queued.
        _schedule(rt, adapter, target, test.test_id, parse_time(entry.details["deadline"], "deadline"))
        return {**result, "outcome": "already_launched"}

    now = rt.clock()
    deadline = now + timedelta(minutes=config.deadline_minutes)
    lease = _take_lease(rt, target, config, test.test_id, now, deadline + GRACE)
    if lease is None:
        if now - parse_time(test.queued_at, "queued_at") >= MAX_LEASE_WAIT:
            reason = (
                f"no restore test slot was free for {int(MAX_LEASE_WAIT.total_seconds() // 3600)} hours "
                f"(max_concurrent = {config.max_concurrent})"
            )
            return _not_run(rt, target, test, NOT_RUN, "not_run", "NoFreeSlot", reason)
        _send(rt, test, LEASE_WAIT_SECONDS)
        return {**result, "outcome": "waiting_for_slot"}

    details = {
        "started_at": format_time(now),
        "deadline": format_time(deadline),
        "backup_ids": ",".join(test.backup_ids),
        "lease": str(lease),
        "attempt": str(test.attempt),
    }
    rt.ledger.transition(
        key, "pending", now, ttl, from_states={"pending"}, source_id=test.source_id, slot=test.slot, details=details
    )
    ec2 = _ec2(rt, target)
    try:
        adapter.prepare(ec2, test)
        tags = restored_tags(rt.policy, test.test_id, test.slot, _backup_key(adapter), test.backup_ids[0])
        resource_ids = adapter.launch(ec2, test, client_token(rt.policy, test.test_id, 0, test.attempt), tags)
    except RestoreConfigError as error:
        _release_lease(rt, target, details, test.test_id)
        return _not_run(rt, target, test, CANNOT_RUN, "cannot_run", "RestoreConfigError", str(error))
    except ClientError as error:
        code = error_code(error)
        kind = launch_error_kind(code)
        if kind == "other":
            raise  # retried by SQS with the lease kept: the same test takes the same slot again
        _release_lease(rt, target, details, test.test_id)
        if kind == "config":
            return _not_run(rt, target, test, CANNOT_RUN, "cannot_run", code, str(error))
        if kind == "backup_gone":
            return _skip(rt, target, test, details, code, str(error))
        if test.attempt >= MAX_LAUNCH_ATTEMPTS:
            reason = f"{code} on each of {test.attempt} launch attempts: {error}"
            return _not_run(rt, target, test, NOT_RUN, "not_run", code, reason)
        delay = min(SQS_MAX_DELAY_SECONDS, CAPACITY_BACKOFF_BASE_SECONDS * 2 ** (test.attempt - 1))
        _send(rt, replace(test, attempt=test.attempt + 1), delay)
        logger.warning(
            "restore test launch refused for capacity; retried later",
            extra={**result, "error_code": code, "attempt": test.attempt, "retry_in_seconds": delay},
        )
        return {**result, "outcome": "retrying", "error_code": code, "attempt": test.attempt}

    for resource_id in resource_ids:
        rt.ledger.transition(
            _index_key(rt, target, resource_id), "pending", now, ttl, source_id=test.test_id, slot=test.slot
        )
    details["resource_ids"] = ",".join(resource_ids)
    rt.ledger.transition(key, "pending", rt.clock(), ttl, from_states={"pending"}, details=details)
    _schedule(rt, adapter, target, test.test_id, deadline)
    logger.info(
        "restore test launched",
        extra={**result, "backup_ids": list(test.backup_ids), "resource_ids": list(resource_ids), "lease": lease},
    )
    return {**result, "outcome": "launched", "resource_ids": list(resource_ids)}


def _schedule(rt: Runtime[Any], adapter: RestoreAdapter, target: Target, test_id: str, deadline: datetime) -> None:
    check = RestoreCheckMessage(rt.policy, test_id, target.region, target.role_arn, format_time(deadline))
    _send(rt, check, adapter.first_check_seconds)
    sweep = RestoreSweepMessage(rt.policy, target.region, target.role_arn, not_before=format_time(deadline + GRACE))
    _send(rt, sweep, (deadline + GRACE - rt.clock()).total_seconds())


def _not_run(
    rt: Runtime[Any], target: Target, test: RestoreTestMessage, title: str, result: str, code: str, reason: str
) -> dict[str, Any]:
    """Alert once per test that it did not run (the backup is not at fault: its restore result is untouched). The
    conditional transition decides who alerts; a failed publish undoes it, so the retry alerts again."""
    key = _record_key(rt, target, test.test_id)
    now = rt.clock()
    ttl = _ttl_days(rt)
    previous = rt.ledger.get(key)
    details = {"result": result, "reason": reason, "error_code": code, "backup_ids": ",".join(test.backup_ids)}
    outcome = {"test_id": test.test_id, "source_id": test.source_id, "outcome": result, "error_code": code}
    if not rt.ledger.transition(
        key,
        "deleted",
        now,
        ttl,
        from_states={"pending"},
        source_id=test.source_id,
        slot=test.slot,
        reason=reason,
        details=details,
    ):
        return {**outcome, "alerted_by": "another delivery"}
    try:
        rt.alerts.send(
            title,
            {
                "test_id": test.test_id,
                "source_id": test.source_id,
                "backup_ids": list(test.backup_ids),
                "region": target.region,
                "account": target.account,
                "error_code": code,
                "reason": reason,
            },
        )
    except Exception:
        rt.ledger.transition(
            key, "pending", rt.clock(), ttl, from_states={"deleted"}, details=previous.details if previous else {}
        )
        raise
    count("RestoreTestsNotRun")
    return outcome


def _skip(
    rt: Runtime[Any], target: Target, test: RestoreTestMessage, details: Mapping[str, str], code: str, reason: str
) -> dict[str, Any]:
    """The backup was deleted (retention, by hand) between plan and test: nothing to test, nothing to alert."""
    key = _record_key(rt, target, test.test_id)
    rt.ledger.transition(
        key,
        "deleted",
        rt.clock(),
        _ttl_days(rt),
        from_states={"pending"},
        reason=reason,
        details={**details, "result": "skipped", "reason": reason, "error_code": code},
    )
    logger.info("restore test skipped: the backup is gone", extra={"test_id": test.test_id, "error_code": code})
    return {"test_id": test.test_id, "source_id": test.source_id, "outcome": "skipped", "error_code": code}


def _record_of(test_id: str, entry: LedgerEntry) -> RestoreRecord:
    return RestoreRecord(
        test_id=test_id,
        source_id=entry.source_id,
        slot=entry.slot,
        backup_ids=_ids(entry.details.get("backup_ids")),
        resource_ids=_ids(entry.details.get("resource_ids")),
        started_at=parse_time(entry.details.get("started_at"), "started_at"),
        details=dict(entry.details),
    )


def _on_event(
    rt: Runtime[Any],
    adapter: RestoreAdapter,
    config: RestoreTestConfig,
    region: str,
    account: str,
    resource_id: str,
    event_details: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A restored resource's state event. Only the restore target's, and only a resource the index knows: anything
    else (every other instance and volume of the account) is answered without an EC2 call."""
    target = config.target(rt.clients.default_region)
    outside = region != target.region or (target.role_arn is not None and account_of_role(target.role_arn) != account)
    index = None if outside else rt.ledger.get(_index_key(rt, target, resource_id))
    if index is None:
        return {"resource_id": resource_id, "outcome": "ignored"}
    return {
        "resource_id": resource_id,
        **_observe_and_finish(rt, adapter, target, index.source_id, None, event_details or {}),
    }


def _observe_and_finish(
    rt: Runtime[Any],
    adapter: RestoreAdapter,
    target: Target,
    test_id: str,
    check: RestoreCheckMessage | None,
    event_details: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    key = _record_key(rt, target, test_id)
    result: dict[str, Any] = {"test_id": test_id}
    entry = rt.ledger.get(key)
    if entry is None:
        return {**result, "outcome": "ignored"}
    if entry.state != "pending":
        return {**result, "outcome": "already_" + entry.state}
    if not entry.details.get("resource_ids"):
        return {**result, "outcome": "not_launched"}
    ttl = _ttl_days(rt)
    if event_details and any(entry.details.get(k) != v for k, v in event_details.items()):
        merged_event = {**entry.details, **event_details}
        rt.ledger.transition(key, "pending", rt.clock(), ttl, from_states={"pending"}, details=merged_event)
        entry = replace(entry, details=merged_event)
    record = _record_of(test_id, entry)
    ec2 = _ec2(rt, target)
    finish_key = _finish_key(rt, target, test_id)
    claimed = rt.ledger.get(finish_key)
    if claimed is None:
        now = rt.clock()
        progress = adapter.observe(ec2, record, now)
        if progress.remember:
            merged = {**entry.details, **progress.remember}
            rt.ledger.transition(key, "pending", now, ttl, from_states={"pending"}, details=merged)
            entry = replace(entry, details=merged)
        deadline = check.deadline_time if check is not None else None
        verdict = restore_verdict(progress, now, deadline)
        if verdict == "wait":
            if check is not None and deadline is not None:
                _send(rt, check, min(adapter.poll_seconds, (deadline - now).total_seconds()))
            return {**result, "outcome": "pending", "state": progress.state}
        if verdict == "time_out" and deadline is not None:
            minutes = int((deadline - record.started_at).total_seconds() // 60)
            reason = f"did not pass within {minutes} minutes" + (f" ({progress.reason})" if progress.reason else "")
        else:
            reason = progress.reason or ("" if verdict == "pass" else "failed")
        # The verdict is decided once: a delivery that observes later (after the winner cleaned up, so the
        # resources are gone) must not turn a pass into a failure. Every delivery then finishes with the
        # claimed verdict; the steps are idempotent and the record's transition alerts once.
        not_fault = verdict != "pass" and progress.details.get(NOT_BACKUP_FAULT) == "true"
        claim: LedgerState = "available" if verdict == "pass" else "deleted" if not_fault else "failed"
        rt.ledger.transition(
            finish_key,
            claim,
            now,
            ttl,
            from_states=(),
            source_id=test_id,
            reason=reason,
            details=dict(progress.details),
        )
        claimed = rt.ledger.get(finish_key)
        if claimed is None:  # not readable after its write: a strongly consistent read never gives this
            raise RuntimeError(f"restore test {test_id}: finish claim not readable")
    return _finish(rt, adapter, target, ec2, entry, record, claimed)


# The claimed verdict (the finish item's state) → the test record's state, its `result`, the alert and the metric.
_OUTCOMES: Mapping[str, tuple[LedgerState, str, str | None, str]] = {
    "available": ("available", "passed", None, "RestoreTestsPassed"),
    "failed": ("failed", "failed", TEST_FAILED, "RestoreTestsFailed"),
    "deleted": ("deleted", "not_run", CANNOT_RUN, "RestoreTestsNotRun"),
}


def _finish(
    rt: Runtime[Any],
    adapter: RestoreAdapter,
    target: Target,
    ec2: Any,
    entry: LedgerEntry,
    record: RestoreRecord,
    claimed: LedgerEntry,
) -> dict[str, Any]:
    """Clean up, tag the backup (not when the test could not judge it), then the record's conditional transition:
    its winner alerts and counts."""
    state, result, alert, metric = _OUTCOMES[claimed.state]
    adapter.clean_up(ec2, record.resource_ids)
    if result != "not_run":
        adapter.mark(ec2, record.backup_ids, "passed" if result == "passed" else "failed", record.slot)
    now = rt.clock()
    ttl = _ttl_days(rt)
    duration = int((now - record.started_at).total_seconds())
    final = {
        **entry.details,
        **claimed.details,
        "result": result,
        "reason": claimed.reason,
        "started_at": format_time(record.started_at),
        "finished_at": format_time(now),
        "duration_seconds": str(duration),
        "backup_ids": ",".join(record.backup_ids),
        "resource_ids": ",".join(record.resource_ids),
    }
    key = _record_key(rt, target, record.test_id)
    outcome: dict[str, Any] = {"test_id": record.test_id, "outcome": result, "reason": claimed.reason}
    if not rt.ledger.transition(key, state, now, ttl, from_states={"pending"}, reason=claimed.reason, details=final):
        return {**outcome, "alerted_by": "another delivery"}
    if alert is not None:
        try:
            rt.alerts.send(
                alert,
                {
                    **claimed.details,
                    "test_id": record.test_id,
                    "source_id": record.source_id,
                    "backup_ids": list(record.backup_ids),
                    "resource_ids": list(record.resource_ids),
                    "region": target.region,
                    "account": target.account,
                    "reason": claimed.reason,
                    "duration_seconds": duration,
                },
            )
        except Exception:
            rt.ledger.transition(key, "pending", rt.clock(), ttl, from_states={state}, details=entry.details)
            raise
    count(metric)
    for resource_id in record.resource_ids:
        rt.ledger.transition(_index_key(rt, target, resource_id), "deleted", now, ttl)
    _release_lease(rt, target, entry.details, record.test_id)
    logger.info(
        "restore test " + result,
        extra={
            "test_id": record.test_id,
            "source_id": record.source_id,
            "backup_ids": list(record.backup_ids),
            "duration_seconds": duration,
            "reason": claimed.reason,
        },
    )
    return {**outcome, "duration_seconds": duration}


def _sweep(
    rt: Runtime[Any], adapter: RestoreAdapter, config: RestoreTestConfig, sweep: RestoreSweepMessage
) -> dict[str, Any]:
    now = rt.clock()
    if sweep.not_before is not None:
        due = parse_time(sweep.not_before, "not_before")
        if now < due:
            _send(rt, sweep, (due - now).total_seconds())
            return {"outcome": "not_yet"}
    target = Target(sweep.region, sweep.role_arn)
    cutoff = now - timedelta(minutes=config.deadline_minutes) - GRACE
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    leftovers = sorted(adapter.leftovers(ec2, cutoff))
    if not leftovers:
        return {"outcome": "clean"}
    adapter.clean_up(ec2, leftovers)
    abandoned = _close_abandoned(rt, target, leftovers)
    rt.alerts.report(
        LEFTOVERS_CLEANED,
        {
            "resource_ids": leftovers,
            "test_ids": abandoned,
            "region": target.region,
            "account": target.account,
            "created_before": format_time(cutoff),
            "reason": f"restore test {adapter.resource_noun}(s) still present past their deadline and grace",
        },
    )
    count("RestoreLeftoversSwept", len(leftovers))
    return {"outcome": "swept", "resource_ids": leftovers, "test_ids": abandoned}


def _close_abandoned(rt: Runtime[Any], target: Target, leftovers: Sequence[str]) -> list[str]:
    """Tests whose resources outlived deadline and grace while their record still says pending lost their checks
    (given up to the dead-letter queue): closed as not run, the backup untouched (nothing judged it)."""
    closed: list[str] = []
    reason = "its checks stopped before a verdict; its resources were left behind and swept"
    for resource_id in leftovers:
        index = rt.ledger.get(_index_key(rt, target, resource_id))
        if index is None or index.source_id in closed:
            continue
        key = _record_key(rt, target, index.source_id)
        entry = rt.ledger.get(key)
        if entry is None or entry.state != "pending":
            continue
        details = {**entry.details, "result": "not_run", "reason": reason, "finished_at": format_time(rt.clock())}
        if rt.ledger.transition(
            key, "deleted", rt.clock(), _ttl_days(rt), from_states={"pending"}, reason=reason, details=details
        ):
            _release_lease(rt, target, entry.details, index.source_id)
            closed.append(index.source_id)
    return closed
