"""Configuration from the environment: complete, strict, and never needed at import time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_harness import ebs_function_env, function_env

from ops_automation.ami_backup.decisions import AmiBackupConfig
from ops_automation.core.config import CommonConfig
from ops_automation.core.errors import ConfigError
from ops_automation.ebs_snapshot.decisions import EbsSnapshotConfig

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"


def test_full_environment_is_parsed() -> None:
    config = AmiBackupConfig.from_env(
        function_env(
            OPS_TARGET_REGIONS='["us-east-1", "eu-west-1"]',
            OPS_TARGET_ROLE_ARNS='["arn:aws:iam::111122223333:role/backup"]',
            OPS_INSTANCE_IDS='["i-0123456789abcdef0", "i-01234567"]',
            OPS_MAX_AGE_DAYS="30",
            OPS_DRY_RUN="TRUE",
        )
    )
    assert CommonConfig.from_env(function_env()).policy_name == "nightly"
    assert CommonConfig.from_env(function_env()).alert_topic_arn is None
    assert config.scope.regions == ("us-east-1", "eu-west-1")
    assert config.scope.role_arns == ("arn:aws:iam::111122223333:role/backup",)
    assert config.targets.instance_ids == ("i-0123456789abcdef0", "i-01234567")
    assert config.targets.tag_map == {"Backup": "nightly"}
    retention = config.retention
    assert (retention.generations, retention.max_age_days, retention.dry_run, config.no_reboot) == (3, 30, True, True)
    assert config.completion.timeout_minutes == 60
    assert config.completion.ledger_ttl_days == 90


def test_external_id_is_read_as_given_and_empty_means_none() -> None:
    longest = "aZ09_+=,.@:/-" * 94 + "ab"  # 1,224 characters: every symbol IAM allows, at the maximum length
    assert len(longest) == 1224
    assert AmiBackupConfig.from_env(function_env(OPS_TARGET_ROLE_EXTERNAL_ID=longest)).scope.external_id == longest
    assert AmiBackupConfig.from_env(function_env(OPS_TARGET_ROLE_EXTERNAL_ID="ab")).scope.external_id == "ab"
    assert AmiBackupConfig.from_env(function_env(OPS_TARGET_ROLE_EXTERNAL_ID="")).scope.external_id is None


def test_empty_max_age_means_none() -> None:
    assert AmiBackupConfig.from_env(function_env(OPS_MAX_AGE_DAYS="")).retention.max_age_days is None


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("OPS_GENERATIONS", "abc", "must be an integer"),
        ("OPS_GENERATIONS", "0", "must be 1..1000"),
        ("OPS_GENERATIONS", "1001", "must be 1..1000"),
        ("OPS_MAX_AGE_DAYS", "-3", ">= 1"),
        ("OPS_TARGET_REGIONS", '{"us-east-1": true}', "JSON list"),
        ("OPS_TARGET_REGIONS", "us-east-1", "not valid JSON"),
        ("OPS_TARGET_ROLE_ARNS", '[""]', "JSON list of non-empty strings"),
        ("OPS_TARGET_TAGS", '["Backup"]', "JSON object"),
        ("OPS_TARGET_TAGS", '{"aws:cloudformation:stack-name": "x"}', "reserved"),
        ("OPS_INSTANCE_IDS", '["i-123"]', "8 or 17"),
        ("OPS_NO_REBOOT", "yes", "true or false"),
        ("OPS_POLICY_NAME", "  ", "is required"),
        ("OPS_TARGET_ROLE_EXTERNAL_ID", "x", "2 to 1224 characters"),
        ("OPS_TARGET_ROLE_EXTERNAL_ID", "hub id", "2 to 1224 characters"),
        ("OPS_TARGET_ROLE_EXTERNAL_ID", "hub\u00e9id", "2 to 1224 characters"),
        ("OPS_TARGET_ROLE_EXTERNAL_ID", "a" * 1225, "2 to 1224 characters"),
    ],
)
def test_malformed_variables_are_named_with_their_value(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        AmiBackupConfig.from_env(function_env(**{variable: value}))
        CommonConfig.from_env(function_env(**{variable: value}))
    assert caught.value.variable == variable
    assert caught.value.value == value
    assert variable in str(caught.value)


@pytest.mark.parametrize("variable", sorted(function_env()))
def test_every_variable_is_required(variable: str) -> None:
    env = function_env()
    del env[variable]
    with pytest.raises(ConfigError) as caught:
        AmiBackupConfig.from_env(env)
        CommonConfig.from_env(env)
    assert caught.value.variable == variable


@pytest.mark.parametrize("variable", sorted(ebs_function_env()))
def test_every_ebs_snapshot_variable_is_required(variable: str) -> None:
    env = ebs_function_env()
    del env[variable]
    with pytest.raises(ConfigError) as caught:
        EbsSnapshotConfig.from_env(env)
        CommonConfig.from_env(env)
    assert caught.value.variable == variable


def test_no_targets_at_all_is_rejected_rather_than_meaning_everything() -> None:
    with pytest.raises(ConfigError, match="no instance ids and no target tags"):
        AmiBackupConfig.from_env(function_env(OPS_INSTANCE_IDS="[]", OPS_TARGET_TAGS="{}"))


FAN_OUT = {"OPS_TARGET_ACCOUNTS": '["111111111111"]', "OPS_TARGET_ROLE_NAME": "ops-automation-ami-backup"}


def test_excluded_accounts_are_read_with_accounts_or_units() -> None:
    env = function_env(**FAN_OUT, OPS_EXCLUDE_ACCOUNTS='["222222222222", "333333333333", "222222222222"]')
    assert AmiBackupConfig.from_env(env).scope.excluded_accounts == ("222222222222", "333333333333")
    assert AmiBackupConfig.from_env(function_env()).scope.excluded_accounts == ()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({**FAN_OUT, "OPS_EXCLUDE_ACCOUNTS": '["12345"]'}, "'12345' is not a 12-digit account id"),
        ({**FAN_OUT, "OPS_EXCLUDE_ACCOUNTS": '"222222222222"'}, "JSON list"),
        ({"OPS_EXCLUDE_ACCOUNTS": '["222222222222"]'}, "need target accounts or organizational units"),
    ],
)
def test_bad_excluded_accounts_are_named_with_their_value(overrides: dict[str, str], reason: str) -> None:
    env = function_env(**overrides)
    with pytest.raises(ConfigError, match=reason) as caught:
        AmiBackupConfig.from_env(env)
    assert caught.value.variable == "OPS_EXCLUDE_ACCOUNTS"
    assert caught.value.value == env["OPS_EXCLUDE_ACCOUNTS"]


def test_handlers_import_without_environment_or_aws() -> None:
    # A clean interpreter with no AWS region, credentials or OPS_* variables, as a unit test or a linter sees it.
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(LAMBDA_SRC)}
    code = (
        "import ops_automation.ami_backup.handlers as m, ops_automation.ebs_snapshot.handlers as e; "
        "assert all(callable(f) for f in (m.plan_handler, m.work_handler, e.plan_handler, e.work_handler))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
