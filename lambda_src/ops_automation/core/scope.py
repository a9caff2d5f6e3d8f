"""Where a policy acts: every (region, account) pair of its scope, and the role that reaches an account."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .clients import account_of_role
from .config import ScopeConfig
from .ledger import LOCAL_ACCOUNT


@dataclass(frozen=True)
class Target:
    region: str
    role_arn: str | None

    @property
    def account(self) -> str:
        return account_of_role(self.role_arn) if self.role_arn else LOCAL_ACCOUNT

    def describe(self) -> str:
        return f"{self.region}/{self.role_arn or 'own account'}"


def targets_of(scope: ScopeConfig, default_region: str) -> list[Target]:
    regions = scope.regions or (default_region,)
    roles: Iterable[str | None] = scope.role_arns or (None,)
    return [Target(region=region, role_arn=role) for role in roles for region in regions]


def role_for_account(role_arns: Iterable[str], account: str) -> str | None:
    """Events carry an account id; resources in a spoke account are reached through its role, others directly."""
    return next((arn for arn in role_arns if account_of_role(arn) == account), None)


def target_of_event(scope: ScopeConfig, region: str, account: str) -> Target:
    return Target(region, role_for_account(scope.role_arns, account))


def event_target(scope: ScopeConfig, region: str, account: str, own_account: str, default_region: str) -> Target | None:
    """The target an event's (region, account) is, or None when it is outside the scope: another region than the
    policy's, the own account when the policy targets role accounts only, or an account the policy has no role for
    (events forwarded from other accounts' buses)."""
    if region not in (scope.regions or (default_region,)):
        return None
    role = role_for_account(scope.role_arns, account)
    if role is not None:
        return Target(region, role)
    return Target(region, None) if not scope.role_arns and account == own_account else None
