"""One place that makes boto3 clients: shared retry config, region per call, optional cross-account role (with
the external id its trust policy requires)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3
from botocore.config import Config

# `standard` retries: adaptive mode's client-side rate limiter lives in one process, cannot coordinate concurrent
# Lambdas, and took twice as long as standard on the same throttles. Few attempts in the workers: a throttled work
# item backs off through SQS (visibility timeout) instead of sleeping inside a billed, time-limited invocation.
WORKER_ATTEMPTS = 3  # retries after the first attempt (botocore counts them so)
PLANNER_ATTEMPTS = 8


def retry_config(max_attempts: int) -> Config:
    return Config(retries={"mode": "standard", "max_attempts": max_attempts})


SINGLE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})

# Assumed-role credentials last an hour (a function assuming a role is role chaining: one hour at most), warm
# containers live longer. A client handed out may be used until the invocation ends, up to Lambda's 15-minute
# maximum timeout: renew when less than that (and a minute) is left, so no call runs on expired credentials.
LAMBDA_MAX_TIMEOUT = timedelta(minutes=15)
CREDENTIAL_RENEWAL_MARGIN = LAMBDA_MAX_TIMEOUT + timedelta(minutes=1)
# A worker of a fanned-out policy meets the roles of hundreds of accounts in one warm container. Every role keeps its
# credentials (a few hundred bytes; no second AssumeRole) up to an organization's 10,000-account quota, and only the
# MAX_ROLE_CLIENTS most recently used clients of roles are kept (an EC2 client is several MB): the least recently
# used goes first and is made again from the cached credentials.
MAX_CACHED_ROLES = 10_000
MAX_ROLE_CLIENTS = 8


class NoRegionError(RuntimeError):
    """The function's own region is unknown (Lambda always sets it; tests must)."""


@dataclass(frozen=True)
class _AssumedRole:
    session: _ClientMaker
    expires_at: datetime


class _ClientMaker(Protocol):
    def client(self, service: str, region_name: str | None = ..., config: Config | None = ...) -> Any: ...


@dataclass(frozen=True)
class _RoleCredentials:
    """An assumed role's credentials, handed to the base session's `client()`. No boto3 session per role: each loads
    and keeps its own service models and components (boto/botocore#3366). Measured here (40 roles, an EC2 client
    each, botocore's own models, no emulator): 22.8 MB more per role with a session per role, 0.6 MB this way."""

    base: boto3.session.Session
    credentials: Mapping[str, Any]

    def client(self, service: str, region_name: str | None = None, config: Config | None = None) -> Any:
        return self.base.client(
            service,
            region_name=region_name,
            config=config,
            aws_access_key_id=self.credentials["AccessKeyId"],
            aws_secret_access_key=self.credentials["SecretAccessKey"],
            aws_session_token=self.credentials["SessionToken"],
        )


def account_of_role(role_arn: str) -> str:
    """`arn:aws:iam::123456789012:role/x` → `123456789012`."""
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[4].isdigit():
        raise ValueError(f"not an IAM role ARN: {role_arn!r}")
    return parts[4]


class ClientFactory:
    def __init__(
        self,
        session_name: str,
        session: boto3.session.Session | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_attempts: int = WORKER_ATTEMPTS,
        external_id: str | None = None,
    ) -> None:
        self._session = session or boto3.session.Session()
        self._config = retry_config(max_attempts)
        self._session_name = session_name[:64]
        self._external_id = external_id
        self._clock = clock
        self._clients: dict[tuple[str | None, str, str], Any] = {}
        self._roles: dict[str, _AssumedRole] = {}

    @property
    def default_region(self) -> str:
        region = self._session.region_name
        if not region:
            raise NoRegionError("no AWS region configured for this function")
        return region

    def client(self, service: str, region: str | None = None, role_arn: str | None = None, retries: bool = True) -> Any:
        """`retries=False` for calls that take no client token (CreateSnapshot): an SDK retry after a timeout or a
        5xx could make the resource twice; the caller decides what an unknown outcome means."""
        region = region or self.default_region
        if role_arn is not None and self._role_needs_renewal(role_arn):
            self._roles.pop(role_arn, None)  # re-inserted last: the order is the assume order
            self._roles[role_arn] = self._assume(role_arn)
            self._forget_clients(role_arn)
            while len(self._roles) > MAX_CACHED_ROLES:
                oldest = next(iter(self._roles))
                del self._roles[oldest]
                self._forget_clients(oldest)
        key = (role_arn, region, service if retries else f"{service}#once")
        made = self._clients.pop(key, None)  # re-inserted last: the order is the use order
        if made is None:
            session = self._session if role_arn is None else self._roles[role_arn].session
            config = self._config if retries else SINGLE_ATTEMPT
            made = session.client(service, region_name=region, config=config)
        self._clients[key] = made
        role_clients = [cached for cached in self._clients if cached[0] is not None]
        for evicted in role_clients[: max(0, len(role_clients) - MAX_ROLE_CLIENTS)]:
            del self._clients[evicted]
        return made

    def _forget_clients(self, role_arn: str) -> None:
        self._clients = {key: value for key, value in self._clients.items() if key[0] != role_arn}

    def _role_needs_renewal(self, role_arn: str) -> bool:
        assumed = self._roles.get(role_arn)
        return assumed is None or assumed.expires_at - self._clock() < CREDENTIAL_RENEWAL_MARGIN

    def _assume(self, role_arn: str) -> _AssumedRole:
        sts = self.client("sts", self.default_region)
        # The trust policy's sts:ExternalId condition fails without it; sent only when the deployment set one, so a
        # hub without an external id makes the same request it always made.
        external = {} if self._external_id is None else {"ExternalId": self._external_id}
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=self._session_name, **external)["Credentials"]
        return _AssumedRole(session=_RoleCredentials(self._session, credentials), expires_at=credentials["Expiration"])
