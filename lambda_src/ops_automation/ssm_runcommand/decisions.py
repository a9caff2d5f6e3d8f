"""What is particular to scheduled Run Command, as pure functions: settings, the SendCommand arguments, and what an
invocation's status means.

Facts and sources: the module README (modules/ssm-runcommand/README.md).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from ..core import config
from ..core.config import CompletionConfig, InstanceTargetConfig, ScopeConfig
from ..core.errors import ConfigError

# SendCommand: `InstanceIds` takes at most 50 ids; `Targets` at most 5 keys (API_SendCommand, API_Target).
MAX_IDS_PER_COMMAND = 50
MAX_TARGET_TAGS = 5
MIN_DELIVERY_TIMEOUT = 30
MAX_DELIVERY_TIMEOUT = 2_592_000
MAX_EXECUTION_TIMEOUT = 172_800
# The execution timeout of AWS-RunShellScript and AWS-RunPowerShellScript when the parameter is not passed.
DEFAULT_EXECUTION_TIMEOUT = 3600
# SendCommand `Comment`: at most 100 characters.
MAX_COMMENT = 100
# MaxConcurrency / MaxErrors patterns of the API reference.
_RATE = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
# SendCommand DocumentName (a name or an ARN, 128 characters in all) and DocumentVersion patterns.
_DOCUMENT = re.compile(r"^[a-zA-Z0-9_\-.:/]{3,128}$")
_VERSION = re.compile(r"^(\$DEFAULT|\$LATEST|[1-9][0-9]*)$")
# SendCommand Target keys follow ^[\p{L}\p{Z}\p{N}_.:/=\-@]*$ (API_Target): no `+`, which EC2 tag keys allow. (Their
# 163-character limit is above `tag:` + EC2's 128.)
_TARGET_KEY_MARKS = frozenset("_.:/=-@")
# Before the deadline's check, every invocation must have ended: the command expires delivery + execution timeout
# after it is sent ("ExpiresAfter"); how quickly its invocations then turn DeliveryTimedOut is not documented.
EXPIRY_MARGIN = timedelta(minutes=10)

Outcome = Literal["succeeded", "failed", "pending"]


@dataclass(frozen=True)
class Output:
    """Where SSM Agent writes the command's output (the instances' role writes it, not ours)."""

    s3_bucket: str | None
    s3_prefix: str
    log_group: str | None

    def location(self, command_id: str, instance_id: str, url: str = "") -> str:
        """Where an operator finds an invocation's output: the URL SSM reports, else where to look for it (the exact
        S3 key layout is not documented), else the log group."""
        if url:
            return url
        if self.s3_bucket:
            prefix = self.s3_prefix.strip("/")
            folder = f"{prefix}/" if prefix else ""
            return f"under s3://{self.s3_bucket}/{folder} (objects of command {command_id} and {instance_id})"
        if self.log_group:
            return f"CloudWatch Logs group {self.log_group}"
        return "not kept: no S3 bucket or log group configured (API output is truncated to 2,500 characters)"


@dataclass(frozen=True)
class RunCommandConfig:
    """Settings of the ssm-runcommand planner and worker (both get the same set). The verification deadline is the
    completion group's timeout, counted from the send."""

    scope: ScopeConfig
    targets: InstanceTargetConfig
    completion: CompletionConfig
    document_name: str
    document_version: str | None
    parameters: Mapping[str, tuple[str, ...]]
    execution_timeout_seconds: int | None
    delivery_timeout_seconds: int
    max_concurrency: str
    max_errors: str
    output: Output
    notification_topic_arn: str | None
    notification_role_arn: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunCommandConfig:
        env = config.environ_of(environ)
        document = env.get("OPS_DOCUMENT_NAME", "")
        if not _DOCUMENT.match(document):
            raise ConfigError("OPS_DOCUMENT_NAME", document, "must be an SSM document name or ARN")
        version = env.get("OPS_DOCUMENT_VERSION", "").strip() or None
        if version is not None and not _VERSION.match(version):
            raise ConfigError("OPS_DOCUMENT_VERSION", version, "must be $DEFAULT, $LATEST or a version number")
        parameters = _parameters(env)
        execution = env.get("OPS_EXECUTION_TIMEOUT_SECONDS", "").strip()
        execution_timeout = (
            config.integer(env, "OPS_EXECUTION_TIMEOUT_SECONDS", minimum=1, maximum=MAX_EXECUTION_TIMEOUT)
            if execution
            else None
        )
        if execution_timeout is not None and "executionTimeout" in parameters:
            raise ConfigError(
                "OPS_DOCUMENT_PARAMETERS", "executionTimeout", "set the execution timeout once, not also as a parameter"
            )
        delivery = config.integer(
            env, "OPS_DELIVERY_TIMEOUT_SECONDS", minimum=MIN_DELIVERY_TIMEOUT, maximum=MAX_DELIVERY_TIMEOUT
        )
        concurrency = env.get("OPS_MAX_CONCURRENCY", "")
        if not _RATE.match(concurrency):
            raise ConfigError("OPS_MAX_CONCURRENCY", concurrency, "must be a number from 1 or a percentage 1%-100%")
        max_errors = env.get("OPS_MAX_ERRORS", "")
        if not _ERRORS.match(max_errors):
            raise ConfigError("OPS_MAX_ERRORS", max_errors, "must be a number from 0 or a percentage 0%-100%")
        targets = InstanceTargetConfig.from_env(env)
        for key, _value in targets.tags:
            if not _target_key(key):
                raise ConfigError(
                    "OPS_TARGET_TAGS",
                    key,
                    "SendCommand targets take tag keys of letters, numbers, spaces and _ . : / = - @ only (no '+')",
                )
        if len(targets.tags) > MAX_TARGET_TAGS:
            raise ConfigError(
                "OPS_TARGET_TAGS", dict(targets.tags), f"SendCommand Targets take at most {MAX_TARGET_TAGS} tag keys"
            )
        topic = env.get("OPS_NOTIFICATION_TOPIC_ARN", "").strip() or None
        role = env.get("OPS_NOTIFICATION_ROLE_ARN", "").strip() or None
        if (topic is None) != (role is None):
            raise ConfigError(
                "OPS_NOTIFICATION_ROLE_ARN", role, "SNS notifications need both a topic and a role (or neither)"
            )
        completion = CompletionConfig.from_env(env)
        needed = timedelta(seconds=delivery + _execution_seconds(execution_timeout, parameters)) + EXPIRY_MARGIN
        if timedelta(minutes=completion.timeout_minutes) < needed:
            raise ConfigError(
                "OPS_COMPLETION_TIMEOUT_MINUTES",
                completion.timeout_minutes,
                f"must be at least the delivery plus execution timeout plus {EXPIRY_MARGIN.seconds // 60} minutes "
                f"({int(needed.total_seconds() // 60)} min): before the command expires, Pending and In Progress are "
                "not failures",
            )
        bucket = env.get("OPS_OUTPUT_S3_BUCKET", "").strip() or None
        prefix = env.get("OPS_OUTPUT_S3_PREFIX", "").strip() if bucket else ""
        log_group = env.get("OPS_OUTPUT_LOG_GROUP", "").strip() or None
        if bucket is not None and not 3 <= len(bucket) <= 63:
            raise ConfigError("OPS_OUTPUT_S3_BUCKET", bucket, "must be 3 to 63 characters")
        if len(prefix) > 500:
            raise ConfigError("OPS_OUTPUT_S3_PREFIX", prefix, "must be at most 500 characters")
        if log_group is not None and len(log_group) > 512:
            raise ConfigError("OPS_OUTPUT_LOG_GROUP", log_group, "must be at most 512 characters")
        return cls(
            scope=ScopeConfig.from_env(env),
            targets=targets,
            completion=completion,
            document_name=document,
            document_version=version,
            parameters=parameters,
            execution_timeout_seconds=execution_timeout,
            delivery_timeout_seconds=delivery,
            max_concurrency=concurrency,
            max_errors=max_errors,
            output=Output(s3_bucket=bucket, s3_prefix=prefix, log_group=log_group),
            notification_topic_arn=topic,
            notification_role_arn=role,
        )

    @property
    def deadline(self) -> timedelta:
        return timedelta(minutes=self.completion.timeout_minutes)


def _target_key(key: str) -> bool:
    """Whether SendCommand's Target Key pattern accepts `tag:<key>`: letters, separators (spaces), numbers, _.:/=-@."""
    return all(c in _TARGET_KEY_MARKS or unicodedata.category(c)[0] in "LNZ" for c in key)


def _execution_seconds(configured: int | None, parameters: Mapping[str, tuple[str, ...]]) -> int:
    """The execution timeout the command runs with: the configured one, else one given as a document parameter,
    else the default of AWS-RunShellScript and AWS-RunPowerShellScript."""
    if configured is not None:
        return configured
    given = parameters.get("executionTimeout", ())
    if len(given) == 1 and given[0].isdigit():
        return int(given[0])
    return DEFAULT_EXECUTION_TIMEOUT


def _parameters(env: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    raw = env.get("OPS_DOCUMENT_PARAMETERS", "").strip() or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError("OPS_DOCUMENT_PARAMETERS", raw, f"is not JSON: {error}") from error
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v) for k, v in value.items()
    ):
        raise ConfigError("OPS_DOCUMENT_PARAMETERS", raw, "must be a JSON object of parameter name to list of strings")
    return {k: tuple(v) for k, v in value.items()}


def comment(policy: str, chunk: str, slot: str) -> str:
    """The command's `Comment`: how a delivery that took over a dead one finds the command already sent (SendCommand
    takes no client token). Policy names are cut to fit the 100 characters; slot and chunk never are."""
    tail = f"@{slot}#{chunk}"
    return f"{policy[: MAX_COMMENT - len(tail)]}{tail}"


def send_arguments(cfg: RunCommandConfig, comment_text: str, instance_ids: Sequence[str]) -> dict[str, Any]:
    """SendCommand's arguments: by ids when given (at most 50), else by the target tags (SSM resolves them: one call
    whatever the fleet size)."""
    parameters: dict[str, list[str]] = {k: list(v) for k, v in cfg.parameters.items()}
    if cfg.execution_timeout_seconds is not None:
        parameters["executionTimeout"] = [str(cfg.execution_timeout_seconds)]
    arguments: dict[str, Any] = {
        "DocumentName": cfg.document_name,
        "Comment": comment_text,
        "TimeoutSeconds": cfg.delivery_timeout_seconds,
        "MaxConcurrency": cfg.max_concurrency,
        "MaxErrors": cfg.max_errors,
    }
    if instance_ids:
        if len(instance_ids) > MAX_IDS_PER_COMMAND:
            raise ValueError(f"at most {MAX_IDS_PER_COMMAND} instance ids per command, got {len(instance_ids)}")
        arguments["InstanceIds"] = list(instance_ids)
    else:
        arguments["Targets"] = [{"Key": f"tag:{k}", "Values": [v]} for k, v in sorted(cfg.targets.tags)]
    if parameters:
        arguments["Parameters"] = parameters
    if cfg.document_version is not None:
        arguments["DocumentVersion"] = cfg.document_version
    if cfg.output.s3_bucket:
        arguments["OutputS3BucketName"] = cfg.output.s3_bucket
        if cfg.output.s3_prefix:
            arguments["OutputS3KeyPrefix"] = cfg.output.s3_prefix
    if cfg.output.log_group:
        arguments["CloudWatchOutputConfig"] = {
            "CloudWatchLogGroupName": cfg.output.log_group,
            "CloudWatchOutputEnabled": True,
        }
    if cfg.notification_topic_arn and cfg.notification_role_arn:
        arguments["ServiceRoleArn"] = cfg.notification_role_arn
        arguments["NotificationConfig"] = {
            "NotificationArn": cfg.notification_topic_arn,
            "NotificationEvents": ["TimedOut", "Cancelled", "Failed"],
            "NotificationType": "Invocation",
        }
    return arguments


@dataclass(frozen=True)
class InvocationVerdict:
    outcome: Outcome
    # The status an operator reads in the alert, without spaces: Success, Failed, DeliveryTimedOut, ...
    status: str
    reason: str


# StatusDetails of an invocation (API_CommandInvocation; the Run Command user guide's status table), without spaces.
_FAILURES: Mapping[str, str] = {
    "Failed": "the command ran and returned a non-zero exit code",
    "ExecutionTimedOut": "the command started but did not finish within its execution timeout",
    "DeliveryTimedOut": "the command was not delivered before the delivery timeout (agent offline, instance stopped, "
    "or the agent stopped mid-run)",
    "Undeliverable": "the command could not be delivered: the node might not exist or might not be responding",
    "Terminated": "not run: the command reached MaxErrors and SSM cancelled the invocations not yet started",
    "Cancelled": "the command was cancelled before it completed",
    "Canceled": "the command was cancelled before it completed",
    "AccessDenied": "the role sending the command may not run it on this node (IAM tag condition)",
    "InvalidPlatform": "the document does not support this node's platform",
}
_NOT_FINAL = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})


def invocation_verdict(status: str, status_details: str, exit_code: int | None) -> InvocationVerdict:
    """What an invocation's status means, decided on StatusDetails (Status has no Undeliverable, Terminated, Access
    Denied or Invalid Platform); a detail this code does not know, with a final Status, is a failure."""
    details = (status_details or status or "").replace(" ", "")
    code = f" (exit code {exit_code})" if exit_code is not None and exit_code != -1 else ""
    if details == "Success":
        return InvocationVerdict("succeeded", "Success", "")
    if details in _FAILURES:
        status_name = "Cancelled" if details == "Canceled" else details
        return InvocationVerdict("failed", status_name, f"{status_name}: {_FAILURES[details]}{code}")
    if details in _NOT_FINAL or status in _NOT_FINAL:
        return InvocationVerdict("pending", details, f"{details}: not final yet")
    return InvocationVerdict("failed", details or "Unknown", f"{details or status}: not a success{code}")


def exit_code_of(plugins: Sequence[Mapping[str, Any]]) -> int | None:
    """The invocation's exit code from its plugins (CommandPlugins[].ResponseCode): the first non-zero one, else 0;
    None without plugins. -1 means the plugin never started."""
    codes = [int(p["ResponseCode"]) for p in plugins if isinstance(p.get("ResponseCode"), int)]
    if not codes:
        return None
    return next((c for c in codes if c != 0), 0)


def output_url_of(invocation: Mapping[str, Any]) -> str:
    """The S3 URL of the invocation's output: the invocation's own (set with one plugin), else its first plugin's."""
    url = str(invocation.get("StandardOutputUrl") or "")
    if url:
        return url
    for plugin in invocation.get("CommandPlugins") or []:
        if plugin.get("StandardOutputUrl"):
            return str(plugin["StandardOutputUrl"])
    return ""
