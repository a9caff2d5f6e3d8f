"""ssm-runcommand's pure decisions: settings from the environment (every bad value named), the SendCommand arguments
(checked against botocore's model of the request), the Comment that finds a command again, what an invocation's
StatusDetails mean, its exit code and where its output is."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from aws_harness import runcommand_function_env
from botocore.validate import ParamValidator

from ops_automation.core.errors import ConfigError
from ops_automation.ssm_runcommand.decisions import (
    DEFAULT_EXECUTION_TIMEOUT,
    EXPIRY_MARGIN,
    MAX_COMMENT,
    MAX_IDS_PER_COMMAND,
    Output,
    RunCommandConfig,
    comment,
    exit_code_of,
    invocation_verdict,
    output_url_of,
    send_arguments,
)

SLOT = "2024-05-01T01:00:00Z"
TOPIC = "arn:aws:sns:us-east-1:123456789012:run-command-notifications"
ROLE = "arn:aws:iam::123456789012:role/ssm-notifications"
SEND_COMMAND = botocore.session.get_session().get_service_model("ssm").operation_model("SendCommand").input_shape


def config(**overrides: str) -> RunCommandConfig:
    return RunCommandConfig.from_env(runcommand_function_env(**overrides))


def valid_request(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments botocore would send: types, required members, lengths and ranges of the API model."""
    report = ParamValidator().validate(arguments, SEND_COMMAND)
    assert not report.has_errors(), report.generate_report()
    return arguments


# ---------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------


def test_the_module_environment_reads_into_the_settings() -> None:
    cfg = config()
    assert cfg.document_name == "AWS-RunShellScript" and cfg.document_version is None
    assert cfg.parameters == {"commands": ("/usr/local/bin/db-online-backup",)}
    assert (cfg.execution_timeout_seconds, cfg.delivery_timeout_seconds) == (1800, 600)
    assert (cfg.max_concurrency, cfg.max_errors) == ("50", "100%")
    assert cfg.output == Output("ops-automation-run-output", "run-command", None)
    assert cfg.notification_topic_arn is None and cfg.notification_role_arn is None
    assert cfg.targets.tags == (("Backup", "nightly-db"),)
    assert cfg.deadline.total_seconds() == 60 * 60


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPS_DOCUMENT_NAME", ""),
        ("OPS_DOCUMENT_NAME", "ab"),
        ("OPS_DOCUMENT_NAME", "Run Shell Script"),
        ("OPS_DOCUMENT_NAME", "x" * 129),
        ("OPS_DOCUMENT_NAME", "AWS-RunShellScript;rm"),
        ("OPS_DOCUMENT_VERSION", "latest"),
        ("OPS_DOCUMENT_VERSION", "$latest"),
        ("OPS_DOCUMENT_VERSION", "1.0"),
        ("OPS_DOCUMENT_PARAMETERS", "commands=date"),
        ("OPS_DOCUMENT_PARAMETERS", '["date"]'),
        ("OPS_DOCUMENT_PARAMETERS", '{"commands": "date"}'),
        ("OPS_DOCUMENT_PARAMETERS", '{"commands": ["date", 3]}'),
        ("OPS_DOCUMENT_PARAMETERS", '{"executionTimeout": [600]}'),
        ("OPS_EXECUTION_TIMEOUT_SECONDS", "0"),
        ("OPS_EXECUTION_TIMEOUT_SECONDS", "172801"),
        ("OPS_EXECUTION_TIMEOUT_SECONDS", "ten"),
        ("OPS_DELIVERY_TIMEOUT_SECONDS", "29"),
        ("OPS_DELIVERY_TIMEOUT_SECONDS", "2592001"),
        ("OPS_DELIVERY_TIMEOUT_SECONDS", "soon"),
        ("OPS_DELIVERY_TIMEOUT_SECONDS", ""),
        ("OPS_MAX_CONCURRENCY", ""),
        ("OPS_MAX_CONCURRENCY", "0"),
        ("OPS_MAX_CONCURRENCY", "0%"),
        ("OPS_MAX_CONCURRENCY", "101%"),
        ("OPS_MAX_CONCURRENCY", "05"),
        ("OPS_MAX_CONCURRENCY", "all"),
        ("OPS_MAX_ERRORS", ""),
        ("OPS_MAX_ERRORS", "-1"),
        ("OPS_MAX_ERRORS", "00"),
        ("OPS_MAX_ERRORS", "101%"),
        ("OPS_MAX_ERRORS", "none"),
        ("OPS_COMPLETION_TIMEOUT_MINUTES", "49"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable_and_the_value(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config(**{variable: value})
    assert raised.value.variable == variable
    assert str(raised.value.value) == value
    assert str(raised.value).startswith(f"{variable}=")


def test_the_execution_timeout_set_twice_is_refused() -> None:
    parameters = json.dumps({"commands": ["date"], "executionTimeout": ["600"]})
    with pytest.raises(ConfigError) as raised:
        config(OPS_DOCUMENT_PARAMETERS=parameters, OPS_COMPLETION_TIMEOUT_MINUTES="70")
    assert raised.value.variable == "OPS_DOCUMENT_PARAMETERS" and raised.value.value == "executionTimeout"


def test_more_than_five_target_tags_are_refused() -> None:
    six = {f"Key{n}": "yes" for n in range(6)}
    with pytest.raises(ConfigError) as raised:
        config(OPS_TARGET_TAGS=json.dumps(six))
    assert raised.value.variable == "OPS_TARGET_TAGS" and raised.value.value == six
    assert len(config(OPS_TARGET_TAGS=json.dumps(dict(list(six.items())[:5]))).targets.tags) == 5


@pytest.mark.parametrize("key", ["cost+center", "tab\tkey"])
def test_a_tag_key_sendcommand_targets_refuse_is_refused(key: str) -> None:
    """SendCommand's Target Key pattern has no `+` (EC2 tag keys allow it), nor control characters."""
    with pytest.raises(ConfigError) as raised:
        config(OPS_TARGET_TAGS=json.dumps({key: "yes"}))
    assert raised.value.variable == "OPS_TARGET_TAGS" and raised.value.value == key


def test_tag_keys_of_letters_numbers_spaces_and_the_allowed_marks_are_accepted() -> None:
    keys = {"Backup window": "x", "app:tier/role=db-1_a.b@c": "y", "バックアップ": "z", "k" * 128: "w"}
    assert dict(config(OPS_TARGET_TAGS=json.dumps(keys)).targets.tags) == keys


@pytest.mark.parametrize(("topic", "role"), [(TOPIC, ""), ("", ROLE)])
def test_a_notification_topic_needs_its_role_and_the_role_its_topic(topic: str, role: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config(OPS_NOTIFICATION_TOPIC_ARN=topic, OPS_NOTIFICATION_ROLE_ARN=role)
    assert raised.value.variable.startswith("OPS_NOTIFICATION_")
    cfg = config(OPS_NOTIFICATION_TOPIC_ARN=TOPIC, OPS_NOTIFICATION_ROLE_ARN=ROLE)
    assert (cfg.notification_topic_arn, cfg.notification_role_arn) == (TOPIC, ROLE)


def test_the_deadline_must_cover_delivery_plus_execution_timeout_the_default_one_when_unset() -> None:
    # 600 s delivery + 1800 s execution + the margin after ExpiresAfter: before it, Pending and In Progress are not
    # failures.
    needed = (600 + 1800) // 60 + int(EXPIRY_MARGIN.total_seconds() // 60)
    assert config(OPS_COMPLETION_TIMEOUT_MINUTES=str(needed)).completion.timeout_minutes == needed
    with pytest.raises(ConfigError) as raised:
        config(OPS_COMPLETION_TIMEOUT_MINUTES=str(needed - 1))
    assert raised.value.variable == "OPS_COMPLETION_TIMEOUT_MINUTES" and raised.value.value == needed - 1
    # Without an execution timeout the document's default (3600 s) runs.
    default = (600 + DEFAULT_EXECUTION_TIMEOUT) // 60 + int(EXPIRY_MARGIN.total_seconds() // 60)
    with pytest.raises(ConfigError) as raised:
        config(OPS_EXECUTION_TIMEOUT_SECONDS="", OPS_COMPLETION_TIMEOUT_MINUTES=str(default - 1))
    assert raised.value.value == default - 1 and str(default) in str(raised.value)
    assert (
        config(OPS_EXECUTION_TIMEOUT_SECONDS="", OPS_COMPLETION_TIMEOUT_MINUTES=str(default)).execution_timeout_seconds
        is None
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"OPS_DELIVERY_TIMEOUT_SECONDS": "30"},
        {"OPS_DELIVERY_TIMEOUT_SECONDS": "2592000", "OPS_COMPLETION_TIMEOUT_MINUTES": str(2592000 // 60 + 40)},
        {"OPS_EXECUTION_TIMEOUT_SECONDS": "1"},
        {"OPS_EXECUTION_TIMEOUT_SECONDS": "172800", "OPS_COMPLETION_TIMEOUT_MINUTES": "2900"},
        {"OPS_MAX_CONCURRENCY": "1", "OPS_MAX_ERRORS": "0"},
        {"OPS_MAX_CONCURRENCY": "1%", "OPS_MAX_ERRORS": "0%"},
        {"OPS_MAX_CONCURRENCY": "100%", "OPS_MAX_ERRORS": "100%"},
        {"OPS_MAX_CONCURRENCY": "250", "OPS_MAX_ERRORS": "9%"},
        {"OPS_DOCUMENT_VERSION": "$LATEST"},
        {"OPS_DOCUMENT_VERSION": "$DEFAULT"},
        {"OPS_DOCUMENT_VERSION": "12"},
        {"OPS_DOCUMENT_NAME": "arn:aws:ssm:us-east-1:123456789012:document/Db-Online-Backup"},
        {"OPS_DOCUMENT_NAME": "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"},
        {"OPS_DOCUMENT_PARAMETERS": "{}"},
        {"OPS_DOCUMENT_PARAMETERS": ""},
    ],
)
def test_the_limits_themselves_are_accepted(overrides: dict[str, str]) -> None:
    config(**overrides)


# ---------------------------------------------------------------------------------------------------------------
# SendCommand arguments
# ---------------------------------------------------------------------------------------------------------------


def test_a_tag_targeted_command_names_each_tag_key_for_ssm_to_resolve() -> None:
    cfg = config(OPS_TARGET_TAGS=json.dumps({"Backup": "nightly-db", "Env": "prod"}))
    label = comment("nightly-db", "tags", SLOT)
    arguments = valid_request(send_arguments(cfg, label, []))
    assert arguments["Targets"] == [
        {"Key": "tag:Backup", "Values": ["nightly-db"]},
        {"Key": "tag:Env", "Values": ["prod"]},
    ]
    assert "InstanceIds" not in arguments
    assert arguments["DocumentName"] == "AWS-RunShellScript" and arguments["Comment"] == label
    assert (arguments["TimeoutSeconds"], arguments["MaxConcurrency"], arguments["MaxErrors"]) == (600, "50", "100%")
    # The execution timeout travels as the document's parameter, a string, beside the others.
    assert arguments["Parameters"] == {"commands": ["/usr/local/bin/db-online-backup"], "executionTimeout": ["1800"]}
    assert "DocumentVersion" not in arguments


def test_an_id_targeted_command_lists_at_most_fifty_ids() -> None:
    cfg = config(OPS_TARGET_TAGS="{}", OPS_INSTANCE_IDS=json.dumps(["i-0123456789abcdef0"]))
    ids = [f"i-{n:017x}" for n in range(MAX_IDS_PER_COMMAND + 1)]
    arguments = valid_request(send_arguments(cfg, comment("nightly-db", "ids-0", SLOT), ids[:50]))
    assert arguments["InstanceIds"] == ids[:50] and "Targets" not in arguments
    with pytest.raises(ValueError, match="at most 50"):
        send_arguments(cfg, comment("nightly-db", "ids-0", SLOT), ids)


def test_without_parameters_nor_execution_timeout_no_parameters_are_sent() -> None:
    cfg = config(OPS_DOCUMENT_NAME="Db-Health-Check", OPS_DOCUMENT_PARAMETERS="{}", OPS_EXECUTION_TIMEOUT_SECONDS="",
                 OPS_COMPLETION_TIMEOUT_MINUTES="80")  # fmt: skip
    arguments = valid_request(send_arguments(cfg, "c", []))
    assert "Parameters" not in arguments


def test_the_document_version_is_sent_only_when_set() -> None:
    arguments = valid_request(send_arguments(config(OPS_DOCUMENT_VERSION="$LATEST"), "c", []))
    assert arguments["DocumentVersion"] == "$LATEST"


def test_output_goes_to_the_bucket_and_prefix_and_the_log_group() -> None:
    cfg = config(OPS_OUTPUT_LOG_GROUP="/aws/ssm/AWS-RunShellScript")
    arguments = valid_request(send_arguments(cfg, "c", []))
    assert (arguments["OutputS3BucketName"], arguments["OutputS3KeyPrefix"]) == (
        "ops-automation-run-output",
        "run-command",
    )
    assert arguments["CloudWatchOutputConfig"] == {
        "CloudWatchLogGroupName": "/aws/ssm/AWS-RunShellScript",
        "CloudWatchOutputEnabled": True,
    }
    no_prefix = valid_request(send_arguments(config(OPS_OUTPUT_S3_PREFIX=""), "c", []))
    assert no_prefix["OutputS3BucketName"] == "ops-automation-run-output" and "OutputS3KeyPrefix" not in no_prefix
    # A prefix without a bucket means nothing.
    nowhere = valid_request(send_arguments(config(OPS_OUTPUT_S3_BUCKET="", OPS_OUTPUT_S3_PREFIX="x"), "c", []))
    assert not {"OutputS3BucketName", "OutputS3KeyPrefix", "CloudWatchOutputConfig"} & set(nowhere)


def test_the_notification_config_is_sent_with_its_role_only_when_both_are_set() -> None:
    cfg = config(OPS_NOTIFICATION_TOPIC_ARN=TOPIC, OPS_NOTIFICATION_ROLE_ARN=ROLE)
    arguments = valid_request(send_arguments(cfg, "c", []))
    assert arguments["ServiceRoleArn"] == ROLE
    assert arguments["NotificationConfig"] == {
        "NotificationArn": TOPIC,
        "NotificationEvents": ["TimedOut", "Cancelled", "Failed"],
        "NotificationType": "Invocation",
    }
    plain = send_arguments(config(), "c", [])
    assert "ServiceRoleArn" not in plain and "NotificationConfig" not in plain


def test_the_comment_fits_100_characters_and_always_keeps_slot_and_chunk() -> None:
    assert comment("nightly-db", "ids-2", SLOT) == f"nightly-db@{SLOT}#ids-2"
    long = comment("p" * 200, "ids-12", SLOT)
    assert len(long) == MAX_COMMENT and long.endswith(f"@{SLOT}#ids-12") and long.startswith("p")
    # Distinct per chunk and per slot: a recovery never adopts another chunk's or slot's command.
    labels = {comment("p" * 200, c, s) for c in ("tags", "ids-0", "ids-1") for s in (SLOT, "2024-05-02T01:00:00Z")}
    assert len(labels) == 6
    valid_request(send_arguments(config(), long, []))


# ---------------------------------------------------------------------------------------------------------------
# Invocations
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "details", "code", "outcome", "named"),
    [
        # (Status, StatusDetails as AWS spells them in CommandInvocation, ResponseCode) -> verdict
        ("Success", "Success", 0, "succeeded", "Success"),
        ("Failed", "Failed", 3, "failed", "Failed"),
        ("TimedOut", "Delivery Timed Out", -1, "failed", "DeliveryTimedOut"),
        ("TimedOut", "Execution Timed Out", -1, "failed", "ExecutionTimedOut"),
        ("TimedOut", "DeliveryTimedOut", -1, "failed", "DeliveryTimedOut"),
        ("TimedOut", "ExecutionTimedOut", 124, "failed", "ExecutionTimedOut"),
        ("Failed", "Undeliverable", -1, "failed", "Undeliverable"),
        ("Cancelled", "Terminated", -1, "failed", "Terminated"),
        ("Cancelled", "Cancelled", -1, "failed", "Cancelled"),
        ("Cancelled", "Canceled", -1, "failed", "Cancelled"),
        ("Failed", "Access Denied", -1, "failed", "AccessDenied"),
        ("Failed", "Invalid Platform", -1, "failed", "InvalidPlatform"),
        ("Pending", "Pending", -1, "pending", "Pending"),
        ("InProgress", "In Progress", -1, "pending", "InProgress"),
        ("Delayed", "Delayed", -1, "pending", "Delayed"),
        ("Cancelling", "Cancelling", -1, "pending", "Cancelling"),
    ],
)
def test_every_status_detail_has_its_verdict(status: str, details: str, code: int, outcome: str, named: str) -> None:
    verdict = invocation_verdict(status, details, code)
    assert (verdict.outcome, verdict.status) == (outcome, named)
    if outcome == "failed":
        assert verdict.reason.startswith(f"{named}: ")
        assert (f"exit code {code}" in verdict.reason) == (code not in (0, -1))
    if outcome == "succeeded":
        assert verdict.reason == ""


def test_the_status_details_decide_not_the_status() -> None:
    # Status Success with an Undeliverable detail would be a lie either way; the detail is what AWS documents.
    assert invocation_verdict("Failed", "Success", 0).outcome == "succeeded"
    assert invocation_verdict("Success", "Undeliverable", -1).outcome == "failed"
    assert invocation_verdict("Cancelled", "Terminated", -1).reason.startswith("Terminated: not run")


def test_an_unknown_detail_fails_when_final_and_waits_while_running() -> None:
    final = invocation_verdict("Failed", "Some New Detail", 2)
    assert (final.outcome, final.status) == ("failed", "SomeNewDetail") and "exit code 2" in final.reason
    assert invocation_verdict("InProgress", "Some New Detail", -1).outcome == "pending"
    # No detail at all: the status speaks.
    assert invocation_verdict("Success", "", 0).outcome == "succeeded"
    assert invocation_verdict("Pending", "", -1).outcome == "pending"
    assert invocation_verdict("", "", None).outcome == "failed"


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([], None), ([0], 0), ([3], 3), ([0, 2, 5], 2), ([-1], -1), ([0, 0], 0), ([None], None), (["0"], None)],
)
def test_the_exit_code_is_the_first_non_zero_plugin_code(codes: list[Any], expected: int | None) -> None:
    plugins = [
        {"Name": f"step{n}"} if c is None else {"Name": f"step{n}", "ResponseCode": c} for n, c in enumerate(codes)
    ]
    assert exit_code_of(plugins) == expected


def test_the_output_location_prefers_the_url_ssm_reports() -> None:
    url = "https://s3.us-east-1.amazonaws.com/b/p/c/i-1/awsrunShellScript/0.awsrunShellScript/stdout"
    assert Output("b", "p", None).location("c", "i-1", url) == url
    # Without a URL: where to look, naming the bucket, the prefix, the command and the instance.
    for prefix, folder in (("run-command", "s3://b/run-command/"), ("/a/b/", "s3://b/a/b/"), ("", "s3://b/")):
        where = Output("b", prefix, None).location("c-1", "i-1")
        assert folder in where and "c-1" in where and "i-1" in where
    assert "s3://b/" in Output("b", "", "/aws/ssm/x").location("c-1", "i-1")
    assert Output(None, "", "/aws/ssm/x").location("c", "i-1") == "CloudWatch Logs group /aws/ssm/x"
    assert Output(None, "", None).location("c", "i-1").startswith("not kept")


def test_the_output_url_is_the_invocations_else_its_first_plugins() -> None:
    assert output_url_of({"StandardOutputUrl": "u", "CommandPlugins": [{"StandardOutputUrl": "p"}]}) == "u"
    assert (
        output_url_of(
            {"StandardOutputUrl": "", "CommandPlugins": [{"StandardOutputUrl": ""}, {"StandardOutputUrl": "p"}]}
        )
        == "p"
    )
    assert output_url_of({"StandardOutputUrl": "", "CommandPlugins": []}) == ""
    assert output_url_of({}) == ""
