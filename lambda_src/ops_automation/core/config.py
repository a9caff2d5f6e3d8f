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


@dataclass(frozen=True)
class ScopeConfig:
    """Where a policy acts: regions ([] = the function's own) x accounts (role ARNs, [] = the function's own), and
    the external id the roles' trust policies require (None = they require none)."""

    regions: tuple[str, ...]
    role_arns: tuple[str, ...]
    external_id: str | None = None

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> ScopeConfig:
        env = environ_of(environ)
        return cls(
            regions=string_list(env, "OPS_TARGET_REGIONS"),
            role_arns=string_list(env, "OPS_TARGET_ROLE_ARNS"),
            external_id=_external_id(env, "OPS_TARGET_ROLE_EXTERNAL_ID"),
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
