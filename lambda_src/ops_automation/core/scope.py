"""Where a policy acts: every (region, account) pair of its scope, and the role that reaches an account."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .clients import account_of_role
from .config import ScopeConfig
from .ledger import LOCAL_ACCOUNT
from .organization import partition_of, role_arn_for


@dataclass(frozen=True)
class Target:
    region: str
    role_arn: str | None

    @property
    def account(self) -> str:
        return account_of_role(self.role_arn) if self.role_arn else LOCAL_ACCOUNT

    def describe(self) -> str:
        return f"{self.region}/{self.role_arn or 'own account'}"


class LazyClient:
    """A client made (and its role assumed) on first use. An event names an account; when the ledger does not know
    the resource (another account's, or not this policy's), no role is assumed at all — assuming a role an account
    outside the scope does not have would only fail."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._make()
        return getattr(self._client, name)


def targets_of(scope: ScopeConfig, default_region: str) -> list[Target]:
    """The targets of an explicit scope (role ARNs, or the function's own account). A fanned-out scope (accounts,
    OUs, "all-enabled") has no such list without AWS calls: `core.organization.resolve_targets`, or the planner's
    scope items (`core.planner`)."""
    if scope.fans_out or scope.all_regions:
        raise ValueError("a fanned-out scope is resolved through core.organization.resolve_targets")
    regions = scope.regions or (default_region,)
    roles: Iterable[str | None] = scope.role_arns or (None,)
    return [Target(region=region, role_arn=role) for role in roles for region in regions]


def role_for_account(role_arns: Iterable[str], account: str) -> str | None:
    """Events carry an account id; resources in a spoke account are reached through its role, others directly."""
    return next((arn for arn in role_arns if account_of_role(arn) == account), None)


def target_of_event(scope: ScopeConfig, region: str, account: str, default_region: str) -> Target | None:
    """The target of an event a module handles only if its ledger knows the resource. Fanned out, the same rules as
    `event_target` (a region and an account of the scope, never an excluded one), so the ledger is the second guard
    and no role is assumed outside the scope; otherwise the account's role, if the policy has one."""
    if scope.fans_out:
        return event_target(scope, region, account, own_account="", default_region=default_region)
    return Target(region, role_for_account(scope.role_arns, account))


def event_target(scope: ScopeConfig, region: str, account: str, own_account: str, default_region: str) -> Target | None:
    """The target an event's (region, account) is, or None when it is outside the scope: another region than the
    policy's, the own account when the policy targets role accounts only, or an account the policy has no role for
    (events forwarded from other accounts' buses).

    Fanned out, the OUs' membership is not known without Organizations calls: any account (only the explicit ones
    when no OU is targeted) in a region of the scope (any region with "all-enabled") is a target, reached through
    `role_name`; whether the resource is the policy's is for the ledger (or the module's claims and tags) to say.
    An excluded account (`scope.excluded_accounts`) is never a target."""
    if scope.fans_out:
        if account in scope.excluded_accounts:
            return None
        if not scope.all_regions and region not in (scope.regions or (default_region,)):
            return None
        if not scope.organizational_units and account not in scope.accounts:
            return None
        return Target(region, role_arn_for(scope, account, partition_of(region)))
    if region not in (scope.regions or (default_region,)):
        return None
    role = role_for_account(scope.role_arns, account)
    if role is not None:
        return Target(region, role)
    return Target(region, None) if not scope.role_arns and account == own_account else None
