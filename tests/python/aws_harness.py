"""Shared helpers of the Lambda package tests (the fixtures live in conftest.py): constants, the test clock,
the function environment, SQS/EventBridge payload builders, log and metric capture."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

if TYPE_CHECKING:
    from ops_automation.ami_backup.handlers import AmiRuntime

# Lambda sets these before it imports the handler module, and Powertools reads them at import time.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ami-backup")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OpsAutomation")

REGION = "us-east-1"
# The process environment of every in-process moto here (tests and bench): dummy credentials, and no public
# AMIs and snapshots that a real account's Owners=self listings never return.
MOTO_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
OTHER_REGION = "eu-west-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
POLICY = "nightly"
START = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
QUEUE = "ops-automation-nightly-work"
LEDGER_TABLE = "ops-automation-nightly-ledger"
ALERT_TOPIC = "ops-automation-nightly-alerts"
# Where the ssm-runcommand tests' commands write their output (the instances' role writes it on AWS).
RUN_OUTPUT_BUCKET = "ops-automation-run-output"
EVENTS_DIR = Path(__file__).resolve().parents[3] / "shared" / "events"


class Clock:
    """The one notion of "now" shared by the code under test and moto's image timestamps."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class FakeContext:
    function_name: str = "ops-automation-nightly"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ops-automation-nightly"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    remaining_ms: list[int] = field(default_factory=lambda: [300_000])

    def get_remaining_time_in_millis(self) -> int:
        # A test can script the clock of the invocation: each call pops the next value, the last one stays.
        return self.remaining_ms.pop(0) if len(self.remaining_ms) > 1 else self.remaining_ms[0]


def client_with(credentials: Mapping[str, Any], service: str, region: str = REGION) -> Any:
    """A client on temporary credentials (the `Credentials` of an AssumeRole answer)."""
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def assumed_client(role_arn: str, service: str, region: str = REGION, session_name: str = "setup") -> Any:
    """A client acting through `role_arn` (moto attributes the session to the role's account)."""
    sts = boto3.client("sts", region_name=REGION)
    return client_with(sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"], service, region)


def function_env(
    queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/q", **overrides: str
) -> dict[str, str]:
    """The environment the internal Terraform module gives both ami-backup functions."""
    env = {
        "OPS_POLICY_NAME": POLICY,
        "OPS_WORK_QUEUE_URL": queue_url,
        "OPS_LEDGER_TABLE": LEDGER_TABLE,
        "OPS_ALERT_TOPIC_ARN": "",
        "OPS_MAX_RECEIVE_COUNT": "10",
        "OPS_TARGET_REGIONS": "[]",
        "OPS_TARGET_ROLE_ARNS": "[]",
        "OPS_TARGET_ROLE_EXTERNAL_ID": "",
        "OPS_TARGET_ACCOUNTS": "[]",
        "OPS_TARGET_ORGANIZATIONAL_UNITS": "[]",
        "OPS_TARGET_ROLE_NAME": "",
        "OPS_ORGANIZATIONS_ROLE_ARN": "",
        "OPS_EXCLUDE_ACCOUNTS": "[]",
        "OPS_INSTANCE_IDS": "[]",
        "OPS_TARGET_TAGS": json.dumps({"Backup": "nightly"}),
        "OPS_GENERATIONS": "3",
        "OPS_MAX_AGE_DAYS": "",
        "OPS_NO_REBOOT": "true",
        "OPS_COPY_INSTANCE_TAGS": "true",
        "OPS_DRY_RUN": "false",
        "OPS_COMPLETION_TIMEOUT_MINUTES": "60",
        "OPS_LEDGER_TTL_DAYS": "90",
        "OPS_RESTORE_TEST": "",
    }
    env.update(overrides)
    return env


def ebs_function_env(
    queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/q", **overrides: str
) -> dict[str, str]:
    """The environment the internal Terraform module gives both ebs-snapshot functions (volume mode, by tag)."""
    env = {
        key: value
        for key, value in function_env(queue_url).items()
        if key not in ("OPS_NO_REBOOT", "OPS_COPY_INSTANCE_TAGS")
    }
    env.update(
        {
            "OPS_TARGET_TAGS": "{}",
            "OPS_VOLUME_IDS": "[]",
            "OPS_VOLUME_TAGS": json.dumps({"Backup": "hourly"}),
            "OPS_EXCLUDE_VOLUME_TAGS": "{}",
            "OPS_EXCLUDE_ROOT_VOLUME": "false",
            "OPS_SNAPSHOT_MODE": "volume",
            "OPS_COPY_VOLUME_TAGS": "true",
        }
    )
    env.update(overrides)
    return env


def cleanup_function_env(
    queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/q", **overrides: str
) -> dict[str, str]:
    """The environment the internal Terraform module gives both deregister-cleanup functions (scope managed)."""
    env = {
        key: value
        for key, value in function_env(queue_url).items()
        if key.startswith(
            (
                "OPS_POLICY",
                "OPS_WORK",
                "OPS_LEDGER_TABLE",
                "OPS_ALERT",
                "OPS_MAX_RECEIVE",
                "OPS_TARGET_R",
                "OPS_TARGET_ACCOUNTS",
                "OPS_TARGET_ORGANIZATIONAL_UNITS",
                "OPS_ORGANIZATIONS_ROLE_ARN",
                "OPS_EXCLUDE_ACCOUNTS",
            )
        )
    }
    env.update(
        {
            "OPS_CLEANUP_SCOPE": "managed",
            "OPS_CLEANUP_EXCLUSION_TAG_KEY": "ops-automation:keep",
            "OPS_CLEANUP_GRACE_HOURS": "24",
            "OPS_CLEANUP_DELETE_ARCHIVED_EARLY": "false",
            "OPS_CLEANUP_DRY_RUN": "false",
            "OPS_CLEANUP_PRICES": json.dumps({"standard": 0.05, "archive": 0.0125}),
        }
    )
    env.update(overrides)
    return env


def copy_function_env(
    queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/q", **overrides: str
) -> dict[str, str]:
    """The environment the internal Terraform module gives both snapshot-copy functions: the snapshots of the
    ebs-snapshot policy `hourly` copied to OTHER_REGION, unencrypted copies unless asked."""
    env = {
        key: value
        for key, value in function_env(queue_url).items()
        if key not in ("OPS_NO_REBOOT", "OPS_COPY_INSTANCE_TAGS", "OPS_INSTANCE_IDS", "OPS_TARGET_TAGS")
    }
    env.update(
        {
            "OPS_POLICY_NAME": "dr",
            "OPS_GENERATIONS": "2",
            "OPS_COMPLETION_TIMEOUT_MINUTES": "1440",
            "OPS_COPY_DESTINATIONS": json.dumps(
                {OTHER_REGION: {"kms_key_arn": None, "role_arn": None, "completion_duration_minutes": None}}
            ),
            "OPS_COPY_IMAGES": "false",
            "OPS_ENCRYPTED": "false",
            "OPS_SOURCE_POLICIES": json.dumps(["hourly"]),
            "OPS_SOURCE_IDS": "[]",
            "OPS_SOURCE_TAGS": "{}",
        }
    )
    env.update(overrides)
    return env


def scheduler_function_env(
    queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/q", **overrides: str
) -> dict[str, str]:
    """The environment the internal Terraform module gives the instance-scheduler functions (office hours in
    Tokyo, instances tagged Schedule = office-hours)."""
    env = {
        key: value
        for key, value in function_env(queue_url).items()
        if key not in ("OPS_NO_REBOOT", "OPS_COPY_INSTANCE_TAGS", "OPS_GENERATIONS", "OPS_MAX_AGE_DAYS", "OPS_DRY_RUN")
    }
    env.update(
        {
            "OPS_POLICY_NAME": "office-hours",
            "OPS_TARGET_TAGS": json.dumps({"Schedule": "office-hours"}),
            "OPS_COMPLETION_TIMEOUT_MINUTES": "20",
            "OPS_SCHEDULE_TIMEZONE": "Asia/Tokyo",
            "OPS_EXCLUDED_DATES": json.dumps(["2024-05-03"]),
            "OPS_OPT_OUT_TAG_KEY": "ops-automation:no-schedule",
            "OPS_ASG_MODE": "skip",
            "OPS_HIBERNATE": "false",
            "OPS_SCHEDULE_RDS": "false",
        }
    )
    env.update(overrides)
    return env


def runcommand_function_env(
    queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/q", **overrides: str
) -> dict[str, str]:
    """The environment the internal Terraform module gives the ssm-runcommand functions (a nightly shell script on
    the instances tagged Backup = nightly-db, output to an S3 bucket)."""
    env = {
        key: value
        for key, value in function_env(queue_url).items()
        if key not in ("OPS_NO_REBOOT", "OPS_COPY_INSTANCE_TAGS", "OPS_GENERATIONS", "OPS_MAX_AGE_DAYS", "OPS_DRY_RUN")
    }
    env.update(
        {
            "OPS_POLICY_NAME": "nightly-db",
            "OPS_TARGET_TAGS": json.dumps({"Backup": "nightly-db"}),
            "OPS_DOCUMENT_NAME": "AWS-RunShellScript",
            "OPS_DOCUMENT_VERSION": "",
            "OPS_DOCUMENT_PARAMETERS": json.dumps({"commands": ["/usr/local/bin/db-online-backup"]}),
            "OPS_EXECUTION_TIMEOUT_SECONDS": "1800",
            "OPS_DELIVERY_TIMEOUT_SECONDS": "600",
            "OPS_MAX_CONCURRENCY": "50",
            "OPS_MAX_ERRORS": "100%",
            "OPS_OUTPUT_S3_BUCKET": RUN_OUTPUT_BUCKET,
            "OPS_OUTPUT_S3_PREFIX": "run-command",
            "OPS_OUTPUT_LOG_GROUP": "",
            "OPS_NOTIFICATION_TOPIC_ARN": "",
            "OPS_NOTIFICATION_ROLE_ARN": "",
            "OPS_COMPLETION_TIMEOUT_MINUTES": "60",
        }
    )
    env.update(overrides)
    return env


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(self.format(record)))

    def matching(self, level: str, message: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["level"] == level and r["message"] == message]


def emitted_metrics(stdout: str) -> Counter[str]:
    """Sum of every EMF metric printed (Powertools writes one JSON document per flush to stdout)."""
    totals: Counter[str] = Counter()
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "OpsAutomation"
            # One dimension: the metric count (and cost) does not grow with the number of policies.
            assert directive["Dimensions"] == [["service"]]
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                totals[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return totals


def alerts_sent() -> list[dict[str, Any]]:
    """Every alert the handlers published to the test topic, as the JSON bodies they sent."""
    topic = next(t for t in sns_backends[ACCOUNT][REGION].topics.values() if t.name == ALERT_TOPIC)
    return [json.loads(notification[1]) | {"_subject": notification[2]} for notification in topic.sent_notifications]


def take_messages() -> list[dict[str, Any]]:
    """Pop every message of the work queue, delayed or not: the test decides when "later" is."""
    queue = sqs_backends[ACCOUNT][REGION].queues[QUEUE]
    messages, queue._messages = list(queue._messages), []
    return [json.loads(message.body) | {"_delayed_until_ms": message.delayed_until} for message in messages]


def sqs_event(bodies: list[str], receive_count: int = 1) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1714989721000"},
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}",
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


def work_body(message: dict[str, Any]) -> str:
    return json.dumps({key: value for key, value in message.items() if not key.startswith("_")})


def snapshot_event(snapshot_id: str, volume_id: str, result: str = "succeeded", region: str = REGION) -> str:
    """An `EBS Snapshot Notification` (createSnapshot) from the AWS sample, with the sample's ARN layout."""
    sample = json.loads((EVENTS_DIR / "normalized" / "ebs-snapshot-create-succeeded.json").read_text())
    sample["region"] = region
    sample["account"] = ACCOUNT
    sample["detail"].update(
        result=result,
        cause="" if result == "succeeded" else f"Snapshot {snapshot_id} is in status error",
        snapshot_id=f"arn:aws:ec2::{region}:snapshot/{snapshot_id}",
        source=f"arn:aws:ec2::{region}:volume/{volume_id}",
    )
    sample["resources"] = [sample["detail"]["snapshot_id"]]
    return json.dumps(sample)


def snapshots_event(snapshots: dict[str, str], result: str = "succeeded", region: str = REGION) -> str:
    """An `EBS Multi-Volume Snapshots Completion Status` (createSnapshots) from the AWS sample; `snapshots` maps
    snapshot id to volume id."""
    sample = json.loads((EVENTS_DIR / "normalized" / "ebs-snapshots-create-multi-succeeded.json").read_text())
    sample["region"] = region
    sample["account"] = ACCOUNT
    status = "completed" if result == "succeeded" else "error"
    sample["detail"]["result"] = result
    sample["detail"]["snapshots"] = [
        {
            "snapshot_id": f"arn:aws:ec2::{region}:snapshot/{snapshot_id}",
            "source": f"arn:aws:ec2::{region}:volume/{volume_id}",
            "status": status,
        }
        for snapshot_id, volume_id in snapshots.items()
    ]
    sample["resources"] = [entry["snapshot_id"] for entry in sample["detail"]["snapshots"]]
    return json.dumps(sample)


def ami_event(image_id: str, state: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """An `EC2 AMI State Change` event as EventBridge publishes it, from the AWS sample's shape."""
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 AMI State Change",
        "source": "aws.ec2",
        "account": account,
        "time": "2024-05-01T01:10:00Z",
        "region": region,
        "resources": [f"arn:aws:ec2:{region}::image/{image_id}"],
        "detail": {"RequestId": str(uuid.uuid4()), "ImageId": image_id, "State": state, "ErrorMessage": ""},
    }
    return json.dumps(event)


def run_instances(ec2: Any, count: int, tags: dict[str, str] | None = None) -> list[str]:
    kwargs: dict[str, Any] = {"ImageId": "ami-12c6146b", "MinCount": count, "MaxCount": count}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return [instance["InstanceId"] for instance in ec2.run_instances(**kwargs)["Instances"]]


def create_policy_resources() -> tuple[str, str]:
    """On the active moto: the work queue, ledger table and alert topic modules/internal creates for a policy.
    Returns the queue URL and the topic ARN."""
    queue_url: str = boto3.client("sqs", region_name=REGION).create_queue(QueueName=QUEUE)["QueueUrl"]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=LEDGER_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn: str = boto3.client("sns", region_name=REGION).create_topic(Name=ALERT_TOPIC)["TopicArn"]
    return queue_url, topic_arn


def install_runtimes(clock: Callable[[], datetime], module: str = "ami_backup") -> Any:
    """Both functions' runtimes of `module` (ami_backup, ebs_snapshot, deregister_cleanup) built from the current
    environment on `clock`, with the retry budgets the handlers use; returns the worker's."""
    # Imported here: this module sets the Powertools variables Lambda sets before the handler is imported.
    import importlib

    from ops_automation.core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
    from ops_automation.core.config import CommonConfig
    from ops_automation.core.runtime import build_runtime

    handlers = importlib.import_module(f"ops_automation.{module}.handlers")
    config_class = {
        "ami_backup": "AmiBackupConfig",
        "ebs_snapshot": "EbsSnapshotConfig",
        "deregister_cleanup": "DeregisterCleanupConfig",
        "snapshot_copy": "SnapshotCopyConfig",
        "instance_scheduler": "InstanceSchedulerConfig",
        "ssm_runcommand": "RunCommandConfig",
    }[module]
    # The scheduled function's runtime: a planner, or deregister-cleanup's sweeper.
    scheduled = getattr(handlers, "planner_runtime", None) or handlers.sweeper_runtime
    built = {}
    for name, lazy, attempts in (
        ("planner", scheduled, PLANNER_ATTEMPTS),
        ("worker", handlers.worker_runtime, WORKER_ATTEMPTS),
    ):
        config, common = getattr(handlers, config_class).from_env(), CommonConfig.from_env()
        built[name] = build_runtime(handlers.SERVICE, config, common, clock=clock, max_attempts=attempts)
        lazy.install(built[name])
    return built["worker"]


@dataclass(frozen=True)
class Infra:
    queue_url: str
    ec2: Any
    sqs: Any
    dynamodb: Any
    alert_topic_arn: str


# Sets the function environment, installs a runtime on the test clock, and returns it.
Configure = Callable[..., "AmiRuntime"]
