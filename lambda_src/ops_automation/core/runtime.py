"""What a function builds from its environment: once per container, lazily (a module imports without any
environment, and a warm invocation reuses clients and config)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from .alerts import Alerts
from .clients import ClientFactory
from .config import CommonConfig, ScopeConfig
from .ledger import DynamoLedger, Ledger

C = TypeVar("C")
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime(Generic[C]):
    config: C
    common: CommonConfig
    clients: ClientFactory
    ledger: Ledger
    alerts: Alerts
    clock: Callable[[], datetime]
    service: str

    @property
    def policy(self) -> str:
        return self.common.policy_name


def external_id_of(config: object) -> str | None:
    """The external id of a module config's scope: every config that reaches other accounts composes a
    `ScopeConfig` as `scope` (snapshot-copy's too, for its destination roles)."""
    scope = getattr(config, "scope", None)
    return scope.external_id if isinstance(scope, ScopeConfig) else None


def build_runtime(
    service: str,
    config: C,
    common: CommonConfig,
    clock: Callable[[], datetime] = utc_now,
    ledger: Ledger | None = None,
    max_attempts: int | None = None,
) -> Runtime[C]:
    clients = ClientFactory(
        # Spoke roles made by modules/target-account-role trust only session names matching ops-automation-*.
        session_name=f"ops-automation-{common.policy_name}",
        clock=clock,
        external_id=external_id_of(config),
        **({} if max_attempts is None else {"max_attempts": max_attempts}),
    )
    sns: Callable[[], Any] = lambda: clients.client("sns")  # noqa: E731 - built only when an alert is sent
    return Runtime(
        config=config,
        common=common,
        clients=clients,
        ledger=ledger or DynamoLedger(clients.client("dynamodb"), common.ledger_table),
        alerts=Alerts(sns, common.alert_topic_arn, service, common.policy_name),
        clock=clock,
        service=service,
    )


class Lazy(Generic[T]):
    """A value built on first use and cached for the container's life; tests install their own."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value

    def install(self, value: T | None) -> None:
        self._value = value
