"""A local AWS (moto) for the end-to-end tests and the demo.

`local_aws()` serves moto on a free port of 127.0.0.1. The server runs *in this process*
(`moto.server.ThreadedMotoServer` in a thread), not as a separate `moto_server` process: the moto fidelity
patches (`tests/python/moto_aws_fidelity.py`) patch the in-process backends, and only an in-process server
serves the patched backends. Terraform (another process) and the handlers (in-process, through
`AWS_ENDPOINT_URL`) both reach it over HTTP, as they would reach AWS.

`in_process_aws()` is the same AWS without a server (`mock_aws`), for when nothing outside this process
needs to reach it.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from unittest import mock

import boto3
from moto import mock_aws
from moto.awslambda.models import LambdaBackend, LayerVersion
from moto.awslambda.utils import split_layer_arn
from moto.events.utils import EventTemplateParser
from moto.server import ThreadedMotoServer
from moto.sqs.models import sqs_backends

DEFAULT_REGION = "us-east-1"
# moto's default account: the ARNs the local AWS hands out carry it.
ACCOUNT_ID = "123456789012"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Settings moto reads from the environment whenever a backend is (re)built, i.e. after every reset.
MOTO_SETTINGS = {
    # Otherwise every EC2 backend starts with hundreds of public AMIs and snapshots that a real account's
    # `describe_images(Owners=["self"])` never returns (moto ignores the owner filter for snapshots).
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
STARTUP_TIMEOUT_SECONDS = 10.0
# Publisher of the public Powertools for AWS Lambda layers that the modules attach by default.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"


class LocalAwsError(RuntimeError):
    """The local AWS did not start or did not answer."""


class Aws(Protocol):
    """What the scenario needs from an AWS: clients, and the environment a function runs with there."""

    @property
    def region(self) -> str: ...

    def client(self, service: str) -> Any: ...

    def process_environment(self) -> dict[str, str]: ...


def _runtime_environment(region: str) -> dict[str, str]:
    # What the Lambda runtime sets for every function, besides the function's own variables.
    return {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, **DUMMY_CREDENTIALS}


def _boto_client(service: str, region: str, endpoint: str | None) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    )


@dataclass(frozen=True)
class LocalAws:
    """A moto server on 127.0.0.1."""

    endpoint: str
    region: str

    def reset(self) -> None:
        """Forget every resource (all services, accounts and regions)."""
        _post(f"{self.endpoint}/moto-api/reset")

    def client(self, service: str) -> Any:
        return _boto_client(service, self.region, self.endpoint)

    def process_environment(self) -> dict[str, str]:
        # botocore (>= 1.31) honours AWS_ENDPOINT_URL for every service: the handlers need no test hook.
        return {"AWS_ENDPOINT_URL": self.endpoint, **_runtime_environment(self.region)}


@dataclass(frozen=True)
class InProcessAws:
    """moto's `mock_aws`: botocore calls of this process are answered without any network."""

    region: str

    def client(self, service: str) -> Any:
        return _boto_client(service, self.region, None)

    def process_environment(self) -> dict[str, str]:
        return _runtime_environment(self.region)


def _post(url: str) -> None:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=STARTUP_TIMEOUT_SECONDS) as response:
        response.read()


def _wait_until_answering(endpoint: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1) as response:
                json.load(response)
                return
        except (OSError, ValueError) as error:
            last_error = error
            time.sleep(0.05)
    raise LocalAwsError(f"local AWS at {endpoint} did not answer within {STARTUP_TIMEOUT_SECONDS}s: {last_error}")


# ---------------------------------------------------------------------------------------------------------------
# Where moto differs from AWS in what a deployment and its event flow rely on
# ---------------------------------------------------------------------------------------------------------------


def _event_template_with_account() -> str:
    # moto's default target input drops the event's `account`; EventBridge delivers the whole event.
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' in template:
        return template
    if '"version": "0",' not in template:
        raise LocalAwsError(f"unexpected moto event template, cannot add the account field: {template}")
    return template.replace('"version": "0",', '"version": "0", "account": "<account>",')


def _without_sqs_push(original: Callable[..., Any]) -> Callable[..., Any]:
    # moto hands every SQS message synchronously to a Docker-run Lambda as soon as it is sent. There is no
    # Docker here, and the failed hand-overs would count as receives and push messages into the DLQ. The
    # harness plays the Lambda service's poller instead: it receives, invokes the handler and deletes.
    def create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        mapping = original(self, spec)
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        return mapping

    return create_event_source_mapping


def _empty_zip_base64() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _with_public_powertools_layers(original: Callable[..., Any]) -> Callable[..., Any]:
    # AWS publishes the Powertools layers in every commercial region; moto only knows layers published in
    # its own accounts and rejects a function that names one of them.
    def layers_versions_by_arn(self: LambdaBackend, layer_version_arn: str) -> LayerVersion | None:
        found = original(self, layer_version_arn)
        arn = split_layer_arn(layer_version_arn)
        if found is not None or arn.account != POWERTOOLS_LAYER_ACCOUNT:
            return found
        layer = LayerVersion(  # type: ignore[abstract]
            {"LayerName": arn.layer_name, "Content": {"ZipFile": _empty_zip_base64()}},
            account_id=arn.account,
            region=arn.region,
        )
        layer.version = int(arn.version)
        return layer

    return layers_versions_by_arn


@contextmanager
def aws_fidelity() -> Iterator[None]:
    """Patch the in-process moto backends where they differ from AWS in what deployments rely on."""
    with ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", _event_template_with_account())
        )
        stack.enter_context(
            mock.patch.object(
                LambdaBackend,
                "create_event_source_mapping",
                _without_sqs_push(LambdaBackend.create_event_source_mapping),
            )
        )
        stack.enter_context(
            mock.patch.object(
                LambdaBackend,
                "layers_versions_by_arn",
                _with_public_powertools_layers(LambdaBackend.layers_versions_by_arn),
            )
        )
        yield


# ---------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------


@contextmanager
def local_aws(region: str = DEFAULT_REGION) -> Iterator[LocalAws]:
    """Serve moto on a free port of 127.0.0.1 for the duration of the block; it starts and ends empty."""
    with mock.patch.dict(os.environ, MOTO_SETTINGS), aws_fidelity():
        # One line per request on stderr would drown the test and demo output.
        werkzeug_logger = logging.getLogger("werkzeug")
        previous_level = werkzeug_logger.level
        werkzeug_logger.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            aws = LocalAws(endpoint=f"http://{host}:{port}", region=region)
            _wait_until_answering(aws.endpoint)
            aws.reset()
            yield aws
            aws.reset()
        finally:
            server.stop()
            werkzeug_logger.setLevel(previous_level)


@contextmanager
def in_process_aws(region: str = DEFAULT_REGION) -> Iterator[InProcessAws]:
    """moto's in-process mock with the same settings and patches as `local_aws`."""
    with mock.patch.dict(os.environ, {**MOTO_SETTINGS, **DUMMY_CREDENTIALS}), aws_fidelity(), mock_aws():
        yield InProcessAws(region=region)


@contextmanager
def handler_environment(aws: Aws, function_environment: Mapping[str, str]) -> Iterator[None]:
    """The process environment of a Lambda handler run in-process: the function's variables as deployed,
    plus what the runtime adds (region, credentials), pointed at `aws`."""
    with mock.patch.dict(os.environ, {**function_environment, **aws.process_environment()}):
        yield


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    region: str = DEFAULT_REGION
    memory_limit_in_mb: int = 256
    timeout_seconds: int = 300
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    function_version: str = "$LATEST"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000
