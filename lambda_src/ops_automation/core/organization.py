"""Which accounts a fanned-out policy targets: its explicit accounts and the ACTIVE accounts under its OUs, through the
AWS Organizations API, and which regions of an account are enabled.

Where the Organizations calls go: the management account, or a member account that is a delegated administrator
(ListAccountsForParent and ListOrganizationalUnitsForParent "can be called only from the organization's management
account or by a member account that is a delegated administrator"), through `organizations_role_arn` when the hub is
neither. Permissions there: `organizations:ListAccountsForParent` and `organizations:ListOrganizationalUnitsForParent`
(resource types root and organizationalunit; Service Authorization Reference, AWS Organizations).
Organizations has a single endpoint per partition: us-east-1 for the aws partition (Organizations API Reference,
"Endpoint to call"; botocore's endpoints: cn-northwest-1 for aws-cn, us-gov-west-1 for aws-us-gov).
https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccountsForParent.html
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .clients import ClientFactory
from .config import ScopeConfig
from .observability import logger

if TYPE_CHECKING:
    from .scope import Target

# ListAccountsForParent and ListOrganizationalUnitsForParent accept MaxResults 1..20 (API Reference).
ORGANIZATIONS_PAGE_SIZE = 20
ORGANIZATIONS_REGIONS = {"aws": "us-east-1", "aws-cn": "cn-northwest-1", "aws-us-gov": "us-gov-west-1"}
# Account lifecycle (Organizations User Guide, "Monitor the state of your AWS accounts"): PENDING_ACTIVATION, ACTIVE,
# SUSPENDED, PENDING_CLOSURE, CLOSED. AWS added `State` in 2025 and retired `Status` (ACTIVE, SUSPENDED,
# PENDING_CLOSURE) on 9 September 2026: `State` is read first, `Status` where a response (an older SDK's model, an
# emulator) still has only that.
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_account_state.html
# An account carrying neither (a runtime SDK whose model predates `State` drops it from the response once `Status`
# is gone: "The Status parameter in the API response will be retired on September 9, 2026") is NOT skipped: only a
# known state other than ACTIVE skips. Assuming a role in a suspended account then fails, and is alerted.
ACTIVE = "ACTIVE"
# The reason of an account in scope.excluded_accounts (listed among the skipped ones: logged, never alerted).
EXCLUDED = "excluded"
NOT_ACTIVE_STATES = frozenset({"PENDING_ACTIVATION", "SUSPENDED", "PENDING_CLOSURE", "CLOSED"})
_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
)
_PARTITIONS_EU = (("eu-isoe-", "aws-iso-e"), ("eusc-", "aws-eusc"))


@dataclass(frozen=True)
class SkippedAccount:
    account: str
    # the account's state: SUSPENDED, PENDING_CLOSURE, CLOSED, PENDING_ACTIVATION; or EXCLUDED (scope.excluded_accounts)
    reason: str

    def describe(self) -> str:
        return f"{self.account}: {self.reason}"


@dataclass(frozen=True)
class AccountResolution:
    """The accounts to act in (sorted, each once), and those an OU holds that are not ACTIVE (not errors: a
    suspended or closing account has nothing to back up and its role cannot be assumed)."""

    accounts: tuple[str, ...]
    skipped: tuple[SkippedAccount, ...]
    # With `tolerate`: "<ou id>: <error>" for each OU that could not be walked (its accounts found so far are kept).
    failed_units: tuple[str, ...] = ()


def partition_of(region: str) -> str:
    """The partition of a region name: aws-cn for cn-*, aws-us-gov for us-gov-*, ..., aws otherwise."""
    for prefix, partition in (*_PARTITIONS, *_PARTITIONS_EU):
        if region.startswith(prefix):
            return partition
    return "aws"


def role_arn_for(scope: ScopeConfig, account: str, partition: str) -> str:
    """The target role of `account`: `scope.role_name` may carry a path (`path/name` → `role/path/name`)."""
    if scope.role_name is None:
        raise ValueError("a fanned-out scope needs role_name")
    return f"arn:{partition}:iam::{account}:role/{scope.role_name}"


def home_region(region: str) -> str:
    """The region of the partition's global services (Organizations' endpoint), enabled in every account: where a
    call that may go to any region of the account is made."""
    return ORGANIZATIONS_REGIONS.get(partition_of(region), region)


def organizations_client(clients: ClientFactory, scope: ScopeConfig) -> Any:
    return clients.client("organizations", home_region(clients.default_region), scope.organizations_role_arn)


def account_state(account: Mapping[str, Any]) -> str:
    return str(account.get("State") or account.get("Status") or "")


def resolve_accounts(clients: ClientFactory, scope: ScopeConfig, *, tolerate: bool = False) -> AccountResolution:
    """Explicit accounts and the accounts under each OU (recursive: its child OUs too) that are not in a known
    non-ACTIVE state, deduplicated, sorted; `scope.excluded_accounts` are dropped after resolution and listed as
    skipped with reason "excluded" (those the explicit list or an OU held; logged, never alerted). Only OUs need the
    Organizations API: an explicit account list works without it. An explicit account that an OU lists as not
    ACTIVE is skipped too. Throttling
    (TooManyRequestsException) is retried by the SDK's standard retries first. Organizations errors propagate, or
    with `tolerate` each OU is walked on its own: one that fails (ParentNotFoundException, AccessDenied, throttled)
    is named in `failed_units` and the others still resolve."""
    found = set(scope.accounts)
    skipped: dict[str, str] = {}
    failed: list[str] = []
    if scope.organizational_units:
        try:
            organizations = organizations_client(clients, scope)
        except (ClientError, BotoCoreError) as error:
            if not tolerate:
                raise
            logger.exception("organizations not reachable")
            organizations = None
            failed = [f"{unit.id}: {error}" for unit in scope.organizational_units]
        for unit in scope.organizational_units if organizations is not None else ():
            try:
                for account in accounts_under(organizations, unit.id, unit.recursive):
                    state = account_state(account)
                    if state in NOT_ACTIVE_STATES:
                        skipped[str(account["Id"])] = state
                    else:
                        if state != ACTIVE:
                            logger.warning(
                                "account state unknown: targeted", extra={"account": account["Id"], "state": state}
                            )
                        found.add(str(account["Id"]))
            except (ClientError, BotoCoreError) as error:
                if not tolerate:
                    raise
                logger.exception("OU not resolved", extra={"unit": unit.id})
                failed.append(f"{unit.id}: {error}")
    for account_id, state in skipped.items():
        logger.info("account skipped: not ACTIVE", extra={"account": account_id, "state": state})
    for account_id in sorted(found.intersection(scope.excluded_accounts) - set(skipped)):
        logger.info("account skipped: excluded", extra={"account": account_id})
        skipped[account_id] = EXCLUDED
    return AccountResolution(
        accounts=tuple(sorted(found - set(skipped))),
        skipped=tuple(SkippedAccount(account, skipped[account]) for account in sorted(skipped)),
        failed_units=tuple(failed),
    )


def accounts_under(organizations: Any, parent_id: str, recursive: bool) -> Iterator[Mapping[str, Any]]:
    """Every account directly under `parent_id` (an OU or the root), and with `recursive` under its child OUs,
    breadth first; pages of 20 (the APIs' maximum)."""
    parents = [parent_id]
    seen = {parent_id}
    while parents:
        parent = parents.pop(0)
        for page in _pages(organizations, "list_accounts_for_parent", parent):
            yield from page.get("Accounts", [])
        if not recursive:
            continue
        for page in _pages(organizations, "list_organizational_units_for_parent", parent):
            for unit in page.get("OrganizationalUnits", []):
                if unit["Id"] not in seen:
                    seen.add(unit["Id"])
                    parents.append(unit["Id"])


def _pages(organizations: Any, operation: str, parent_id: str) -> Iterator[Mapping[str, Any]]:
    # The paginator follows NextToken until it is null: Organizations "might return fewer results than the
    # maximum even when there are more results available" (API Reference), even an empty page.
    paginator = organizations.get_paginator(operation)
    yield from paginator.paginate(ParentId=parent_id, PaginationConfig={"PageSize": ORGANIZATIONS_PAGE_SIZE})


def enabled_regions(ec2: Any) -> list[str]:
    """The regions enabled for the account of `ec2`'s credentials: DescribeRegions without AllRegions lists only
    those ("Describes the Regions that are enabled for your account, or all Regions", EC2 API Reference).
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRegions.html"""
    return sorted(str(region["RegionName"]) for region in ec2.describe_regions().get("Regions", []))


def resolve_targets(
    clients: ClientFactory, scope: ScopeConfig, default_region: str, failures: list[str] | None = None
) -> list[Target]:
    """Every (region, account) of the scope, resolved now: for dry runs and the operator CLI (a fanned-out planner
    enqueues scope items instead, core.planner). Explicit scopes are `targets_of`. With `failures`, an account whose
    enabled regions cannot be listed is named there and left out instead of raising."""
    from .scope import Target, targets_of  # scope imports this module's helpers

    if not scope.fans_out:
        return targets_of(scope, default_region)
    partition = partition_of(default_region)
    targets: list[Target] = []
    for account in resolve_accounts(clients, scope).accounts:
        role_arn = role_arn_for(scope, account, partition)
        if scope.all_regions:
            try:
                regions: tuple[str, ...] = tuple(enabled_regions(clients.client("ec2", default_region, role_arn)))
            except (ClientError, BotoCoreError) as error:
                if failures is None:
                    raise
                failures.append(f"{account}: enabled regions not listed: {error}")
                continue
        else:
            regions = scope.regions or (default_region,)
        targets.extend(Target(region, role_arn) for region in regions)
    return targets
