"""ClientFactory: one retry config, region per call, cached clients, assumed roles renewed before expiry, the
external id sent exactly when the deployment configured one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_harness import (
    REGION,
    Clock,
    cleanup_function_env,
    copy_function_env,
    ebs_function_env,
    function_env,
    runcommand_function_env,
    scheduler_function_env,
)

from ops_automation.ami_backup.decisions import AmiBackupConfig
from ops_automation.core import clients
from ops_automation.core.clients import CREDENTIAL_RENEWAL_MARGIN, LAMBDA_MAX_TIMEOUT, ClientFactory, account_of_role
from ops_automation.core.config import CommonConfig
from ops_automation.core.runtime import build_runtime, external_id_of
from ops_automation.deregister_cleanup.decisions import DeregisterCleanupConfig
from ops_automation.ebs_snapshot.decisions import EbsSnapshotConfig
from ops_automation.instance_scheduler.decisions import InstanceSchedulerConfig
from ops_automation.snapshot_copy.decisions import SnapshotCopyConfig
from ops_automation.ssm_runcommand.decisions import RunCommandConfig

ROLE = "arn:aws:iam::111122223333:role/ops-automation-target"


def test_clients_use_standard_retries_and_are_cached_per_role_region_service(aws: None) -> None:
    factory = ClientFactory("ops-automation-nightly")
    ec2 = factory.client("ec2", "eu-west-1")
    assert factory.client("ec2", "eu-west-1") is ec2
    assert factory.client("ec2", REGION) is not ec2
    assert factory.client("ec2") is factory.client("ec2", REGION)
    assert ec2.meta.region_name == "eu-west-1"
    # botocore stores max_attempts=10 retries as 11 attempts in total.
    assert ec2.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_role_clients_use_assumed_credentials_with_the_policy_session_name(aws: None, clock: Clock) -> None:
    requests: list[dict[str, str]] = []
    factory = ClientFactory("ops-automation-nightly", clock=clock)
    factory.client("sts").meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: requests.append(params)
    )
    spoke = factory.client("ec2", "eu-west-1", ROLE)
    assert spoke is factory.client("ec2", "eu-west-1", ROLE)
    assert spoke is not factory.client("ec2", "eu-west-1")
    assert requests == [{"RoleArn": ROLE, "RoleSessionName": "ops-automation-nightly"}]
    identity = factory.client("sts", REGION, ROLE).get_caller_identity()
    assert identity["Account"] == "111122223333"


def assume_role_requests(factory: ClientFactory) -> list[dict[str, str]]:
    """The parameters of every AssumeRole the factory sends from now on."""
    requests: list[dict[str, str]] = []
    factory.client("sts").meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: requests.append(dict(params))
    )
    return requests


def test_a_configured_external_id_goes_with_every_assume_role(aws: None) -> None:
    clock = Clock(datetime.now(UTC))  # moto's credentials last one hour from the real now
    factory = ClientFactory("ops-automation-nightly", clock=clock, external_id="hub-7f3a:landing/zone")
    requests = assume_role_requests(factory)
    factory.client("ec2", REGION, ROLE)
    clock.advance(minutes=55)  # past the renewal margin: the renewal carries it too
    factory.client("ec2", REGION, ROLE)
    assert requests == 2 * [
        {"RoleArn": ROLE, "RoleSessionName": "ops-automation-nightly", "ExternalId": "hub-7f3a:landing/zone"}
    ]


def test_without_an_external_id_none_is_sent(aws: None) -> None:
    factory = ClientFactory("ops-automation-nightly", external_id=None)
    requests = assume_role_requests(factory)
    factory.client("ec2", REGION, ROLE)
    assert requests == [{"RoleArn": ROLE, "RoleSessionName": "ops-automation-nightly"}]


ConfigReader = Callable[[Mapping[str, str]], Any]
MODULE_CONFIGS: list[tuple[str, ConfigReader, Callable[..., dict[str, str]]]] = [
    ("ami-backup", AmiBackupConfig.from_env, function_env),
    ("ebs-snapshot", EbsSnapshotConfig.from_env, ebs_function_env),
    ("deregister-cleanup", DeregisterCleanupConfig.from_env, cleanup_function_env),
    ("instance-scheduler", InstanceSchedulerConfig.from_env, scheduler_function_env),
    ("ssm-runcommand", RunCommandConfig.from_env, runcommand_function_env),
    ("snapshot-copy", SnapshotCopyConfig.from_env, copy_function_env),
]


@pytest.mark.parametrize(("read", "env"), [(r, e) for _, r, e in MODULE_CONFIGS], ids=[m for m, _, _ in MODULE_CONFIGS])
def test_every_module_config_carries_the_external_id_to_its_runtime(
    read: ConfigReader, env: Callable[..., dict[str, str]]
) -> None:
    assert external_id_of(read(env(OPS_TARGET_ROLE_EXTERNAL_ID="hub-7f3a"))) == "hub-7f3a"
    assert external_id_of(read(env(OPS_TARGET_ROLE_EXTERNAL_ID=""))) is None


def test_a_function_runtime_assumes_its_target_roles_with_the_configured_external_id(aws: None, clock: Clock) -> None:
    env = function_env(OPS_TARGET_ROLE_ARNS=f'["{ROLE}"]', OPS_TARGET_ROLE_EXTERNAL_ID="hub-7f3a")
    runtime = build_runtime("ami-backup", AmiBackupConfig.from_env(env), CommonConfig.from_env(env), clock=clock)
    requests = assume_role_requests(runtime.clients)
    runtime.clients.client("ec2", REGION, ROLE)
    assert requests == [{"RoleArn": ROLE, "RoleSessionName": "ops-automation-nightly", "ExternalId": "hub-7f3a"}]


def test_a_config_without_scope_has_no_external_id() -> None:
    assert external_id_of(CommonConfig.from_env(function_env())) is None


def test_assumed_role_is_renewed_before_its_credentials_expire(aws: None) -> None:
    clock = Clock(datetime.now(UTC))  # moto's credentials last one hour from the real now
    factory = ClientFactory("ops-automation-nightly", clock=clock)
    first = factory.client("ec2", REGION, ROLE)
    clock.advance(minutes=43)
    assert factory.client("ec2", REGION, ROLE) is first
    # 16 minutes left: a client handed out now may be used for a whole 15-minute invocation; renewed.
    clock.advance(minutes=1, seconds=30)
    assert factory.client("ec2", REGION, ROLE) is not first


def test_the_renewal_margin_covers_the_longest_invocation() -> None:
    assert CREDENTIAL_RENEWAL_MARGIN > LAMBDA_MAX_TIMEOUT


def test_account_of_role() -> None:
    assert account_of_role(ROLE) == "111122223333"
    with pytest.raises(ValueError, match="not an IAM role ARN"):
        account_of_role("arn:aws:s3:::bucket")


def test_without_a_region_the_factory_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(RuntimeError, match="no AWS region"):
        ClientFactory("x", session=boto3.session.Session()).client("ec2")


def test_role_sessions_share_the_service_models_and_the_caches_are_bounded(
    aws: None, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker of a fanned-out policy meets hundreds of roles: each must not load its own copy of the models, and
    neither credentials nor clients may pile up in a warm container."""
    monkeypatch.setattr(clients, "MAX_CACHED_ROLES", 2)
    monkeypatch.setattr(clients, "MAX_ROLE_CLIENTS", 1)
    requests: list[dict[str, str]] = []
    factory = ClientFactory("ops-automation-nightly", clock=clock)
    factory.client("sts").meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: requests.append(params["RoleArn"])
    )
    roles = [f"arn:aws:iam::{account}:role/spoke" for account in ("111111111111", "222222222222", "333333333333")]
    first = factory.client("ec2", REGION, roles[0])
    loader = factory._session._session.get_component("data_loader")
    second = factory.client("ec2", REGION, roles[1])
    assert first._loader is loader and second._loader is loader  # the base session's: one cache of parsed models
    # One role client kept: the first role's is made again, from its cached credentials (no second AssumeRole).
    again = factory.client("ec2", REGION, roles[0])
    assert again is not first and requests == roles[:2]
    assert factory.client("ec2", REGION, roles[0]) is again
    factory.client("ec2", REGION, roles[2])
    assert list(factory._roles) == roles[1:]  # the least recently assumed role went
    assert [key[0] for key in factory._clients if key[0] is not None] == [roles[2]]
