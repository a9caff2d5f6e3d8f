"""ClientFactory: one retry config, region per call, cached clients, assumed roles renewed before expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from aws_harness import REGION, Clock

from ops_automation.core.clients import ClientFactory, account_of_role

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


def test_assumed_role_is_renewed_before_its_credentials_expire(aws: None) -> None:
    clock = Clock(datetime.now(UTC))  # moto's credentials last one hour from the real now
    factory = ClientFactory("ops-automation-nightly", clock=clock)
    first = factory.client("ec2", REGION, ROLE)
    clock.advance(minutes=45)
    assert factory.client("ec2", REGION, ROLE) is first
    clock.advance(minutes=10)
    assert factory.client("ec2", REGION, ROLE) is not first


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
