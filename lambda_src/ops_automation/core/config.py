"""Function configuration, read from the environment the internal Terraform module sets.

The module encodes typed groups (`scope`, `targets`, `retention`, `completion`) into `OPS_*` variables; each group
has exactly one reader here, and a module's config composes the groups it uses. Every variable is required
(`OPS_MAX_AGE_DAYS` and `OPS_ALERT_TOPIC_ARN` may be empty): a variable the module forgot fails loudly on the first
invocation instead of silently falling back to a default.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, InvalidInputError
from .targeting import validate_instance_id, validate_target_tags, validate_volume_id

MAX_GENERATIONS = 1000
Environ = Mapping[str, str]


def environ_of(environ: Environ | None) -> Environ:
    return os.environ if environ is None else environ


@dataclass(frozen=True)
class CommonConfig:
    """Settings every function of every module gets."""

    policy_name: str
    work_queue_url: str
    ledger_table: str
    alert_topic_arn: str | None
    # Receives before the queue's redrive gives a work item up to the dead-letter queue.
    max_receive_count: int

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> CommonConfig:
        env = environ_of(environ)
        return cls(
            policy_name=_required(env, "OPS_POLICY_NAME"),
            work_queue_url=_required(env, "OPS_WORK_QUEUE_URL"),
            ledger_table=_required(env, "OPS_LEDGER_TABLE"),
            alert_topic_arn=_optional_text(env, "OPS_ALERT_TOPIC_ARN"),
            max_receive_count=integer(env, "OPS_MAX_RECEIVE_COUNT", minimum=1, maximum=1000),
        )


# `regions = ["all-enabled"]`: each target account's enabled regions (EC2 DescribeRegions without AllRegions).
ALL_ENABLED_REGIONS = "all-enabled"
# Organizations API patterns (Organizations API Reference, ListAccountsForParent `ParentId`): an OU id, or a root.
_ACCOUNT_ID = re.compile(r"[0-9]{12}", re.ASCII)
_OU_ID = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32}", re.ASCII)
# IAM role name (1-64 of [\w+=,.@-]) with an optional path (`path/name`), as modules/target-account-role names it.
_ROLE_NAME = re.compile(r"(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+", re.ASCII)


@dataclass(frozen=True)
class OrganizationalUnit:
    """An OU (`ou-...`) or a root (`r-...`) whose ACTIVE accounts a policy targets; `recursive`: its child OUs'
    accounts too."""

    id: str
    recursive: bool = True


@dataclass(frozen=True)
class ScopeConfig:
    """Where a policy acts: regions ([] = the function's own; ["all-enabled"] = each account's enabled regions) x
    accounts, and the external id the roles' trust policies require (None = they require none).

    Accounts are either explicit role ARNs (`role_arns`, [] = the function's own: the planner walks them in
    process), or, fanned out, explicit `accounts` and/or the ACTIVE accounts under `organizational_units`, each
    reached through `role_name` (the same role in every account); `organizations_role_arn` is the role the planner
    assumes for the Organizations calls (None: its own role)."""

    regions: tuple[str, ...]
    role_arns: tuple[str, ...]
    external_id: str | None = None
    accounts: tuple[str, ...] = ()
    organizational_units: tuple[OrganizationalUnit, ...] = ()
    role_name: str | None = None
    organizations_role_arn: str | None = None
    # Accounts never targeted, even when an OU holds them: the management account, the hub, log-archive / audit
    # accounts without the target role (otherwise alerted "role missing" every slot). Fanned-out scopes only.
    excluded_accounts: tuple[str, ...] = ()

    @property
    def fans_out(self) -> bool:
        """Accounts come from a list or the organization: the planner enqueues one scope item per account x region
        and the workers list each scope (core.planner)."""
        return bool(self.accounts or self.organizational_units)

    @property
    def all_regions(self) -> bool:
        return self.regions == (ALL_ENABLED_REGIONS,)

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> ScopeConfig:
        env = environ_of(environ)
        scope = cls(
            regions=string_list(env, "OPS_TARGET_REGIONS"),
            role_arns=string_list(env, "OPS_TARGET_ROLE_ARNS"),
            external_id=_external_id(env, "OPS_TARGET_ROLE_EXTERNAL_ID"),
            accounts=_accounts(env, "OPS_TARGET_ACCOUNTS"),
            organizational_units=_organizational_units(env, "OPS_TARGET_ORGANIZATIONAL_UNITS"),
            role_name=_optional_text(env, "OPS_TARGET_ROLE_NAME"),
            organizations_role_arn=_optional_text(env, "OPS_ORGANIZATIONS_ROLE_ARN"),
            excluded_accounts=_accounts(env, "OPS_EXCLUDE_ACCOUNTS"),
        )
        scope.validate(env)
        return scope

    def validate(self, env: Environ) -> None:
        """The combinations the Terraform variables' validations also reject, named by variable and value."""
        if ALL_ENABLED_REGIONS in self.regions and not self.all_regions:
            raise ConfigError(
                "OPS_TARGET_REGIONS", env.get("OPS_TARGET_REGIONS"), f'"{ALL_ENABLED_REGIONS}" must stand alone'
            )
        if self.all_regions and not self.fans_out:
            raise ConfigError(
                "OPS_TARGET_REGIONS",
                env.get("OPS_TARGET_REGIONS"),
                f'"{ALL_ENABLED_REGIONS}" needs target accounts or organizational units (each account\'s regions)',
            )
        if self.role_name is not None and not _ROLE_NAME.fullmatch(self.role_name):
            raise ConfigError("OPS_TARGET_ROLE_NAME", self.role_name, "must be an IAM role name (optionally path/name)")
        if self.organizations_role_arn is not None and not _ROLE_ARN.fullmatch(self.organizations_role_arn):
            raise ConfigError("OPS_ORGANIZATIONS_ROLE_ARN", self.organizations_role_arn, "must be an IAM role ARN")
        if self.excluded_accounts and not self.fans_out:
            raise ConfigError(
                "OPS_EXCLUDE_ACCOUNTS",
                env.get("OPS_EXCLUDE_ACCOUNTS"),
                "excluded accounts need target accounts or organizational units",
            )
        if not self.fans_out:
            return
        if self.role_arns:
            raise ConfigError(
                "OPS_TARGET_ROLE_ARNS",
                env.get("OPS_TARGET_ROLE_ARNS"),
                "role ARNs and target accounts / organizational units are mutually exclusive",
            )
        if self.role_name is None:
            name = "OPS_TARGET_ACCOUNTS" if self.accounts else "OPS_TARGET_ORGANIZATIONAL_UNITS"
            raise ConfigError(name, env.get(name), "target accounts / organizational units need OPS_TARGET_ROLE_NAME")


def _accounts(env: Environ, name: str) -> tuple[str, ...]:
    accounts = string_list(env, name)
    for account in accounts:
        if not _ACCOUNT_ID.fullmatch(account):
            raise ConfigError(name, env.get(name), f"{account!r} is not a 12-digit account id")
    return accounts


def _organizational_units(env: Environ, name: str) -> tuple[OrganizationalUnit, ...]:
    value = json_value(env, name)
    if not isinstance(value, list):
        raise ConfigError(name, env.get(name), 'must be a JSON list of {"id": ..., "recursive": true|false}')
    units: dict[str, OrganizationalUnit] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or set(item) - {"id", "recursive"}:
            raise ConfigError(name, env.get(name), 'must be a JSON list of {"id": ..., "recursive": true|false}')
        recursive = item.get("recursive", True)
        recursive = True if recursive is None else recursive
        if not isinstance(recursive, bool):
            raise ConfigError(name, env.get(name), f"recursive of {item['id']!r} must be true or false")
        if not _OU_ID.fullmatch(item["id"]):
            raise ConfigError(name, env.get(name), f"{item['id']!r} is not an OU id (ou-...) or a root id (r-...)")
        # Listed twice: recursive if either says so (the wider of the two).
        known = units.get(item["id"])
        units[item["id"]] = OrganizationalUnit(item["id"], recursive or (known is not None and known.recursive))
    return tuple(units.values())


def explicit_ids_in_one_account(env: Environ, scope: ScopeConfig, name: str, ids: tuple[str, ...]) -> None:
    """Explicit resource ids name one account's resources: a policy over target accounts or OUs targets by tags."""
    if ids and scope.fans_out:
        raise ConfigError(
            name, env.get(name), "explicit ids are not allowed with target accounts / organizational units: use tags"
        )


# What STS accepts as ExternalId (IAM and AWS STS quotas, "IAM name requirements"): 2 to 1,224 characters.
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)


def _external_id(env: Environ, name: str) -> str | None:
    external_id = _optional_text(env, name)
    if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
        raise ConfigError(name, env[name], "must be 2 to 1224 characters of letters, digits and _+=,.@:/-")
    return external_id


@dataclass(frozen=True)
class InstanceTargetConfig:
    """Which instances: explicit ids and/or instances carrying every target tag; never empty."""

    instance_ids: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> InstanceTargetConfig:
        env = environ_of(environ)
        instance_ids = _instance_ids(env)
        tags = _tags(env, "OPS_TARGET_TAGS")
        if not instance_ids and not tags:
            # An empty target must never widen into "every instance of the account".
            raise ConfigError("OPS_INSTANCE_IDS", env.get("OPS_INSTANCE_IDS"), "no instance ids and no target tags")
        return cls(instance_ids=instance_ids, tags=tuple(sorted(tags.items())))


@dataclass(frozen=True)
class VolumeTargetConfig:
    """Which EBS volumes: explicit volume ids, volumes carrying every volume tag, and/or the volumes attached to the
    targeted instances (the root volume optionally left out); a volume carrying any exclusion tag never counts."""

    volume_ids: tuple[str, ...]
    volume_tags: tuple[tuple[str, str], ...]
    instances: InstanceTargetConfig
    exclude_volume_tags: tuple[tuple[str, str], ...]
    exclude_root_volume: bool

    @property
    def volume_tag_map(self) -> dict[str, str]:
        return dict(self.volume_tags)

    @property
    def targets_volumes(self) -> bool:
        return bool(self.volume_ids or self.volume_tags)

    @property
    def targets_instances(self) -> bool:
        return bool(self.instances.instance_ids or self.instances.tags)

    def excludes(self, volume_tags: Mapping[str, str]) -> bool:
        return any(volume_tags.get(key) == value for key, value in self.exclude_volume_tags)

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> VolumeTargetConfig:
        env = environ_of(environ)
        volume_ids = string_list(env, "OPS_VOLUME_IDS")
        try:
            for volume_id in volume_ids:
                validate_volume_id(volume_id)
        except InvalidInputError as error:
            raise ConfigError("OPS_VOLUME_IDS", env.get("OPS_VOLUME_IDS"), str(error)) from error
        volume_tags = _tags(env, "OPS_VOLUME_TAGS")
        exclude = _tags(env, "OPS_EXCLUDE_VOLUME_TAGS")
        instances = InstanceTargetConfig(
            instance_ids=_instance_ids(env), tags=tuple(sorted(_tags(env, "OPS_TARGET_TAGS").items()))
        )
        config = cls(
            volume_ids=volume_ids,
            volume_tags=tuple(sorted(volume_tags.items())),
            instances=instances,
            exclude_volume_tags=tuple(sorted(exclude.items())),
            exclude_root_volume=boolean(env, "OPS_EXCLUDE_ROOT_VOLUME"),
        )
        if not config.targets_volumes and not config.targets_instances:
            # An empty target must never widen into "every volume of the account".
            raise ConfigError(
                "OPS_VOLUME_IDS", env.get("OPS_VOLUME_IDS"), "no volume ids, volume tags, instance ids or instance tags"
            )
        return config


@dataclass(frozen=True)
class RetentionConfig:
    generations: int
    max_age_days: int | None
    dry_run: bool

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> RetentionConfig:
        env = environ_of(environ)
        return cls(
            generations=integer(env, "OPS_GENERATIONS", minimum=1, maximum=MAX_GENERATIONS),
            max_age_days=_optional_int(env, "OPS_MAX_AGE_DAYS", minimum=1),
            dry_run=boolean(env, "OPS_DRY_RUN"),
        )


@dataclass(frozen=True)
class CompletionConfig:
    timeout_minutes: int
    ledger_ttl_days: int

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> CompletionConfig:
        env = environ_of(environ)
        return cls(
            timeout_minutes=integer(env, "OPS_COMPLETION_TIMEOUT_MINUTES", minimum=1),
            ledger_ttl_days=integer(env, "OPS_LEDGER_TTL_DAYS", minimum=1),
        )


def _instance_ids(env: Environ) -> tuple[str, ...]:
    instance_ids = string_list(env, "OPS_INSTANCE_IDS")
    try:
        for instance_id in instance_ids:
            validate_instance_id(instance_id)
    except InvalidInputError as error:
        raise ConfigError("OPS_INSTANCE_IDS", env.get("OPS_INSTANCE_IDS"), str(error)) from error
    return instance_ids


def _tags(env: Environ, name: str) -> dict[str, str]:
    tags = _string_map(env, name)
    try:
        validate_target_tags(tags)
    except InvalidInputError as error:
        raise ConfigError(name, env.get(name), str(error)) from error
    return tags


def _required(env: Environ, name: str) -> str:
    value = env.get(name)
    if value is None or not value.strip():
        raise ConfigError(name, value, "is required")
    return value.strip()


def _optional_text(env: Environ, name: str) -> str | None:
    if name not in env:
        raise ConfigError(name, None, "is required (set it to an empty string for none)")
    return env[name].strip() or None


def json_value(env: Environ, name: str) -> Any:
    """A required variable holding JSON, parsed; invalid JSON names the variable and its value."""
    raw = _required(env, name)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(name, raw, f"is not valid JSON ({error.msg})") from error


def string_list(env: Environ, name: str) -> tuple[str, ...]:
    """A required variable holding a JSON list of non-empty strings, deduplicated in order."""
    value = json_value(env, name)
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(name, env.get(name), "must be a JSON list of non-empty strings")
    return tuple(dict.fromkeys(value))


def _string_map(env: Environ, name: str) -> dict[str, str]:
    value = json_value(env, name)
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ConfigError(name, env.get(name), "must be a JSON object of string values")
    return dict(value)


def integer(env: Environ, name: str, minimum: int, maximum: int | None = None) -> int:
    raw = _required(env, name)
    try:
        value = int(raw)
    except ValueError as error:
        raise ConfigError(name, raw, "must be an integer") from error
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, raw, f"must be {bound}")
    return value


def _optional_int(env: Environ, name: str, minimum: int) -> int | None:
    if name not in env:
        raise ConfigError(name, None, "is required (set it to an empty string for none)")
    if not env[name].strip():
        return None
    return integer(env, name, minimum=minimum)


def boolean(env: Environ, name: str) -> bool:
    """A `true|false` variable (also for module-specific settings)."""
    raw = _required(env, name)
    if raw.lower() not in ("true", "false"):
        raise ConfigError(name, raw, "must be true or false")
    return raw.lower() == "true"
