"""One place that makes boto3 clients: shared retry config, region per call, optional cross-account role (with
the external id its trust policy requires)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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


class NoRegionError(RuntimeError):
    """The function's own region is unknown (Lambda always sets it; tests must)."""


@dataclass(frozen=True)
class _AssumedRole:
    session: boto3.session.Session
    expires_at: datetime


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
            self._roles[role_arn] = self._assume(role_arn)
            self._clients = {key: value for key, value in self._clients.items() if key[0] != role_arn}
        key = (role_arn, region, service if retries else f"{service}#once")
        if key not in self._clients:
            session = self._session if role_arn is None else self._roles[role_arn].session
            config = self._config if retries else SINGLE_ATTEMPT
            self._clients[key] = session.client(service, region_name=region, config=config)
        return self._clients[key]

    def _role_needs_renewal(self, role_arn: str) -> bool:
        assumed = self._roles.get(role_arn)
        return assumed is None or assumed.expires_at - self._clock() < CREDENTIAL_RENEWAL_MARGIN

    def _assume(self, role_arn: str) -> _AssumedRole:
        sts = self.client("sts", self.default_region)
        # The trust policy's sts:ExternalId condition fails without it; sent only when the deployment set one, so a
        # hub without an external id makes the same request it always made.
        external = {} if self._external_id is None else {"ExternalId": self._external_id}
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=self._session_name, **external)["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        return _AssumedRole(session=session, expires_at=credentials["Expiration"])
