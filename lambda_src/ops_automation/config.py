"""Function configuration, read from the environment the internal Terraform module sets.

Every variable is required (except that `OPS_MAX_AGE_DAYS` may be empty): a variable the module forgot must fail
loudly on the first invocation instead of silently falling back to a default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .targeting import InvalidInputError, validate_instance_id, validate_target_tags

MAX_GENERATIONS = 1000


class ConfigError(InvalidInputError):
    """A configuration variable is missing or malformed; the field is the environment variable's name."""

    @property
    def variable(self) -> str:
        return self.field


@dataclass(frozen=True)
class CommonConfig:
    """Settings every function of every module gets."""

    policy_name: str
    work_queue_url: str
    ledger_table: str
    idempotency_table: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CommonConfig:
        env = os.environ if environ is None else environ
        return cls(
            policy_name=_required(env, "OPS_POLICY_NAME"),
            work_queue_url=_required(env, "OPS_WORK_QUEUE_URL"),
            ledger_table=_required(env, "OPS_LEDGER_TABLE"),
            idempotency_table=_required(env, "OPS_IDEMPOTENCY_TABLE"),
        )


@dataclass(frozen=True)
class AmiBackupConfig:
    """Settings of the ami-backup planner and worker (both get the same set)."""

    common: CommonConfig
    target_regions: tuple[str, ...]
    target_role_arns: tuple[str, ...]
    instance_ids: tuple[str, ...]
    target_tags: tuple[tuple[str, str], ...]
    generations: int
    max_age_days: int | None
    no_reboot: bool
    copy_instance_tags: bool
    dry_run: bool
    completion_timeout_minutes: int
    ledger_ttl_days: int

    @property
    def policy_name(self) -> str:
        return self.common.policy_name

    @property
    def target_tag_map(self) -> dict[str, str]:
        return dict(self.target_tags)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AmiBackupConfig:
        env = os.environ if environ is None else environ
        instance_ids = _string_list(env, "OPS_INSTANCE_IDS")
        try:
            for instance_id in instance_ids:
                validate_instance_id(instance_id)
        except InvalidInputError as error:
            raise ConfigError("OPS_INSTANCE_IDS", env.get("OPS_INSTANCE_IDS"), str(error)) from error
        target_tags = _string_map(env, "OPS_TARGET_TAGS")
        try:
            validate_target_tags(target_tags)
        except InvalidInputError as error:
            raise ConfigError("OPS_TARGET_TAGS", env.get("OPS_TARGET_TAGS"), str(error)) from error
        if not instance_ids and not target_tags:
            # An empty target must never widen into "every instance of the account".
            raise ConfigError("OPS_INSTANCE_IDS", env.get("OPS_INSTANCE_IDS"), "no instance ids and no target tags")
        return cls(
            common=CommonConfig.from_env(env),
            target_regions=_string_list(env, "OPS_TARGET_REGIONS"),
            target_role_arns=_string_list(env, "OPS_TARGET_ROLE_ARNS"),
            instance_ids=instance_ids,
            target_tags=tuple(sorted(target_tags.items())),
            generations=_int(env, "OPS_GENERATIONS", minimum=1, maximum=MAX_GENERATIONS),
            max_age_days=_optional_int(env, "OPS_MAX_AGE_DAYS", minimum=1),
            no_reboot=_bool(env, "OPS_NO_REBOOT"),
            copy_instance_tags=_bool(env, "OPS_COPY_INSTANCE_TAGS"),
            dry_run=_bool(env, "OPS_DRY_RUN"),
            completion_timeout_minutes=_int(env, "OPS_COMPLETION_TIMEOUT_MINUTES", minimum=1),
            ledger_ttl_days=_int(env, "OPS_LEDGER_TTL_DAYS", minimum=1),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if value is None or not value.strip():
        raise ConfigError(name, value, "is required")
    return value.strip()


def _json(env: Mapping[str, str], name: str) -> Any:
    raw = _required(env, name)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(name, raw, f"is not valid JSON ({error.msg})") from error


def _string_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = _json(env, name)
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(name, env.get(name), "must be a JSON list of non-empty strings")
    return tuple(dict.fromkeys(value))


def _string_map(env: Mapping[str, str], name: str) -> dict[str, str]:
    value = _json(env, name)
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ConfigError(name, env.get(name), "must be a JSON object of string values")
    return dict(value)


def _int(env: Mapping[str, str], name: str, minimum: int, maximum: int | None = None) -> int:
    raw = _required(env, name)
    try:
        value = int(raw)
    except ValueError as error:
        raise ConfigError(name, raw, "must be an integer") from error
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, raw, f"must be {bound}")
    return value


def _optional_int(env: Mapping[str, str], name: str, minimum: int) -> int | None:
    if name not in env:
        raise ConfigError(name, None, "is required (set it to an empty string for none)")
    if not env[name].strip():
        return None
    return _int(env, name, minimum=minimum)


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = _required(env, name)
    if raw.lower() not in ("true", "false"):
        raise ConfigError(name, raw, "must be true or false")
    return raw.lower() == "true"
