"""Tier 1: the static scanners behind the contract tests find what they must, so those tests can fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests.support.hcl_tree import resolve_locals
from tests.support.python_scan import boto_calls, env_var_reads, reachable_code

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


# A handler module and the shared core it draws on: what the handler reaches, and what only another
# handler would.
REACH_CODE = {
    "__init__.py": "",
    "handler.py": """
        from . import specs
        from .core import Store, used

        def handle(event, context, factory):
            ec2 = factory.client("ec2")
            used(ec2)
            specs.list_instances(ec2)
            return Store(factory).put(event)
    """,
    "core.py": """
        import boto3

        # Runs whenever the module is imported, whoever uses it.
        REGIONS = boto3.client("ec2").describe_regions()

        def used(ec2):
            return _second_hop(ec2)

        def _second_hop(ec2):
            return ec2.create_snapshot(VolumeId="vol-1")

        def unused(ec2):
            return ec2.describe_volumes()

        class Store:
            def __init__(self, factory):
                self._table = factory.client("dynamodb")

            def put(self, item):
                return self._table.put_item(TableName="t", Item=item)

            def drop(self):
                return self._table.delete_table(TableName="t")
    """,
    "specs.py": """
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Kind:
            paginator: str

        INSTANCES = Kind(paginator="describe_instances")
        VOLUMES = Kind(paginator="describe_volumes")

        def list_instances(ec2):
            return _pages(ec2, INSTANCES)

        def list_volumes(ec2):
            return _pages(ec2, VOLUMES)

        def _pages(ec2, kind):
            return list(ec2.get_paginator(kind.paginator).paginate())
    """,
    "other_handler.py": """
        from .core import unused
        from .specs import list_volumes

        def handle(event, context, ec2):
            return unused(ec2), list_volumes(ec2)
    """,
}


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


def _modules(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    for name, code in files.items():
        (package / name).write_text(textwrap.dedent(code), encoding="utf-8")
    return package


def test_reachability_follows_uses_across_modules_and_leaves_out_the_rest(tmp_path: Path) -> None:
    code = reachable_code(_modules(tmp_path, REACH_CODE), ["pkg.handler"])
    core = {name for module, name in code.definitions if module == "core"}
    specs = {name for module, name in code.definitions if module == "specs"}
    assert core == {"used", "_second_hop", "Store"}  # _second_hop: two hops away (handler -> used -> it)
    assert specs == {"list_instances", "_pages", "INSTANCES", "Kind"}
    assert code.modules == {"", "handler", "core", "specs"}


def test_boto_scan_of_a_handler_counts_only_the_code_it_reaches(tmp_path: Path) -> None:
    package = _modules(tmp_path, REACH_CODE)
    calls, unattributed = boto_calls(package, handler_modules=["pkg.handler"])
    assert {call.action for call in calls} == {
        "ec2:CreateSnapshot",  # two hops
        "ec2:DescribeInstances",  # through the spec the handler uses, not the one it does not
        "ec2:DescribeRegions",  # import-time code of an imported module
        "dynamodb:PutItem",
        "dynamodb:DeleteTable",  # a used class counts whole
    }
    assert unattributed == []

    other, _ = boto_calls(package, handler_modules=["pkg.other_handler"])
    assert {call.action for call in other} == {"ec2:DescribeVolumes", "ec2:DescribeRegions"}
    everything, _ = boto_calls(package)
    assert {call.action for call in everything} == {call.action for call in [*calls, *other]}


def test_boto_scan_reports_paginator_names_it_cannot_tell(tmp_path: Path) -> None:
    package = _package(tmp_path, "def f(ec2, name):\n    return ec2.get_paginator(name)\n")
    calls, unattributed = boto_calls(package)
    assert calls == []
    assert [(u.method, u.candidates) for u in unattributed] == [("get_paginator(name)", ())]


def test_reachability_rejects_a_handler_module_outside_the_package(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pkg\.missing"):
        reachable_code(_modules(tmp_path, REACH_CODE), ["pkg.missing"])


def test_locals_resolve_in_templates_and_expressions() -> None:
    locals_ = {"key": "ops:owner", "arns": ["arn:${local.partition}:ec2:*::image/*"], "partition": "aws"}
    assert resolve_locals("aws:ResourceTag/${local.key}", locals_) == "aws:ResourceTag/ops:owner"
    assert resolve_locals("${local.arns}", locals_) == ["arn:aws:ec2:*::image/*"]
    assert resolve_locals("${concat(local.arns, var.x)}", locals_) == '${concat(["arn:aws:ec2:*::image/*"], var.x)}'
    assert resolve_locals("${local.missing}", locals_) == "${local.missing}"
