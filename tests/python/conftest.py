"""Fixtures for the Lambda package tests: moto AWS with fidelity patches, a fixed clock, the function
environment, API-call counting, log capture."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_harness import IDEMPOTENCY_TABLE, LEDGER_TABLE, QUEUE, REGION, Captured, Clock, Configure, Infra, function_env
from moto import mock_aws
from moto_aws_fidelity import MotoFidelity, moto_fidelity

from ops_automation import ami_backup
from ops_automation.clients import ClientFactory


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def fidelity(aws: None, clock: Clock) -> Iterator[MotoFidelity]:
    with moto_fidelity(clock) as patched:
        yield patched


@pytest.fixture
def infra(aws: None) -> Infra:
    sqs = boto3.client("sqs", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    dynamodb.create_table(
        TableName=LEDGER_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Infra(queue_url=queue_url, ec2=boto3.client("ec2", region_name=REGION), sqs=sqs, dynamodb=dynamodb)


@pytest.fixture
def configure(infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """Set the function environment and install a runtime using the test clock; returns the runtime."""

    def apply(**overrides: str) -> ami_backup.Runtime:
        for name, value in function_env(infra.queue_url, **overrides).items():
            monkeypatch.setenv(name, value)
        runtime = ami_backup.build_runtime(clock=clock)
        monkeypatch.setattr(ami_backup, "_runtime", runtime)
        return runtime

    monkeypatch.setattr(ami_backup, "_runtime", None)
    return apply


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the AWS API requests (every page of a paginator is one) made through ClientFactory clients."""
    calls: Counter[str] = Counter()
    original = ClientFactory.client
    hooked: set[int] = set()

    def count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def client(self: ClientFactory, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        if id(made) not in hooked:
            hooked.add(id(made))
            made.meta.events.register("before-call.*.*", count)
        return made

    monkeypatch.setattr(ClientFactory, "client", client)
    return calls


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler = Captured()
    handler.setFormatter(ami_backup.logger.registered_formatter)
    # Powertools' Logger wraps the standard logger of the same name; attach beside its stdout handler.
    standard = logging.getLogger(ami_backup.logger.name)
    standard.addHandler(handler)
    yield handler
    standard.removeHandler(handler)
