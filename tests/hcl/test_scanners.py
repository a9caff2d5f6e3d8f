"""Tier 1: the static scanners behind the contract tests find what they must, so those tests can fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.hcl_tree import resolve_locals
from tests.support.python_scan import boto_calls, env_var_reads

ENV_CODE = """
import os
from os import getenv

NAME_VAR = "OPS_FROM_CONSTANT"

def settings(env):
    return _required(env, "OPS_VIA_HELPER"), env["OPS_SUBSCRIPT"], "OPS_MEMBERSHIP" in env

def more():
    return os.environ.get("OPS_GET"), os.getenv("AWS_REGION"), getenv("OPS_GETENV"), os.environ[NAME_VAR]

LABEL = "NOT_AN_ENV_READ"
MESSAGE = "mentions OPS_INLINE inside a sentence, not a name"
"""

BOTO_CODE = """
def plan(factory, queue_url):
    ec2 = factory.client("ec2", "eu-west-1")
    pages = ec2.get_paginator("describe_images").paginate(Owners=["self"])
    client = factory.client("sqs")
    client.send_message_batch(QueueUrl=queue_url, Entries=[])
    factory.client("sts").get_caller_identity()
    return pages

class Store:
    def __init__(self, factory):
        self._table = factory.client("dynamodb")

    def get(self, key):
        return self._table.get_item(Key=key)

def cleanup(ec2, snapshot_id):
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    ec2.get_waiter("image_available").wait(ImageIds=["ami-1"])

def by_method_only(unknown):
    unknown.deregister_image(ImageId="ami-1")

def not_aws(items):
    return items.get("x"), ",".join(items)
"""


def _package(tmp_path: Path, code: str) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return package


def test_env_scan_finds_every_read_style(tmp_path: Path) -> None:
    reads = env_var_reads(_package(tmp_path, ENV_CODE))
    assert set(reads) == {
        "OPS_FROM_CONSTANT",
        "OPS_VIA_HELPER",
        "OPS_SUBSCRIPT",
        "OPS_MEMBERSHIP",
        "OPS_GET",
        "AWS_REGION",
        "OPS_GETENV",
    }


def test_boto_scan_attributes_calls_to_services(tmp_path: Path) -> None:
    calls, unattributed = boto_calls(_package(tmp_path, BOTO_CODE))
    assert {call.action for call in calls} == {
        "ec2:DescribeImages",
        "sqs:SendMessage",  # SendMessageBatch is authorized by sqs:SendMessage
        "sts:GetCallerIdentity",
        "dynamodb:GetItem",
        "ec2:DeleteSnapshot",
        "ec2:DeregisterImage",
    }
    assert unattributed == []


def test_boto_scan_reports_calls_it_cannot_attribute(tmp_path: Path) -> None:
    # ec2/sqs/dynamodb/sts share no operation name; DynamoDB and SNS both have TagResource.
    package = _package(tmp_path, "def f(unknown, sns):\n    unknown.tag_resource()\n    sns.tag_resource()\n")
    calls, unattributed = boto_calls(package, services=("dynamodb", "sns"))
    assert [call.action for call in calls] == ["sns:TagResource"]
    assert [(u.method, u.candidates) for u in unattributed] == [("tag_resource", ("dynamodb", "sns"))]


def test_locals_resolve_in_templates_and_expressions() -> None:
    locals_ = {"key": "ops:owner", "arns": ["arn:${local.partition}:ec2:*::image/*"], "partition": "aws"}
    assert resolve_locals("aws:ResourceTag/${local.key}", locals_) == "aws:ResourceTag/ops:owner"
    assert resolve_locals("${local.arns}", locals_) == ["arn:aws:ec2:*::image/*"]
    assert resolve_locals("${concat(local.arns, var.x)}", locals_) == '${concat(["arn:aws:ec2:*::image/*"], var.x)}'
    assert resolve_locals("${local.missing}", locals_) == "${local.missing}"
