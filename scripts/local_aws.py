"""A local AWS (moto) for the end-to-end tests and the demo.

`local_aws()` serves moto on a free port of 127.0.0.1. The server runs *in this process*
(`moto.server.ThreadedMotoServer` in a thread), not as a separate `moto_server` process: the moto fidelity
patches (`tests/support/moto_fidelity.py`, entry point `faithful_aws()`) patch the in-process backends and
response classes, and only an in-process server serves them. Terraform (another process) and the handlers
(in-process, through `AWS_ENDPOINT_URL`) both reach it over HTTP, as they would reach AWS. The patches' state
and helpers are `LocalAws.fidelity`; the scenario runs its simulated week inside
`aws.fidelity.simulated_time(clock)`.

(There is no server-less variant any more: the demo's in-process path, a hand-written copy of the Terraform
configuration, was dropped; tests that need no server use `mock_aws()` with `faithful_aws()` directly.)
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from unittest import mock

import boto3
from moto.server import ThreadedMotoServer
from tests.support.moto_fidelity import MotoFidelity, faithful_aws

from ops_automation.cli.lambda_context import LocalContext

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


class LocalAwsError(RuntimeError):
    """The local AWS did not start or did not answer."""


class Aws(Protocol):
    """What the scenario needs from an AWS: clients, the environment a function runs with there, and the
    fidelity patches in force (for simulated time)."""

    @property
    def region(self) -> str: ...

    @property
    def fidelity(self) -> MotoFidelity: ...

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
    """A moto server on 127.0.0.1, with the fidelity patches of `tests/support/moto_fidelity.py`."""

    endpoint: str
    region: str
    fidelity: MotoFidelity

    def reset(self) -> None:
        """Forget every resource (all services, accounts and regions), and what the patches remembered."""
        _post(f"{self.endpoint}/moto-api/reset")
        self.fidelity.forget()

    def client(self, service: str) -> Any:
        return _boto_client(service, self.region, self.endpoint)

    def process_environment(self) -> dict[str, str]:
        # botocore (>= 1.31) honours AWS_ENDPOINT_URL for every service: the handlers need no test hook.
        return {"AWS_ENDPOINT_URL": self.endpoint, **_runtime_environment(self.region)}


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
# Entry points
# ---------------------------------------------------------------------------------------------------------------


@contextmanager
def local_aws(region: str = DEFAULT_REGION) -> Iterator[LocalAws]:
    """Serve moto on a free port of 127.0.0.1 for the duration of the block; it starts and ends empty."""
    with mock.patch.dict(os.environ, MOTO_SETTINGS), faithful_aws() as fidelity:
        # One line per request on stderr would drown the test and demo output.
        werkzeug_logger = logging.getLogger("werkzeug")
        previous_level = werkzeug_logger.level
        werkzeug_logger.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            aws = LocalAws(endpoint=f"http://{host}:{port}", region=region, fidelity=fidelity)
            _wait_until_answering(aws.endpoint)
            aws.reset()
            yield aws
            aws.reset()
        finally:
            server.stop()
            werkzeug_logger.setLevel(previous_level)


@contextmanager
def handler_environment(aws: Aws, function_environment: Mapping[str, str]) -> Iterator[None]:
    """The process environment of a Lambda handler run in-process: the function's variables as deployed,
    plus what the runtime adds (region, credentials), pointed at `aws`."""
    with mock.patch.dict(os.environ, {**function_environment, **aws.process_environment()}):
        yield


def LambdaContext(function_name: str, region: str = DEFAULT_REGION, **fields: Any) -> LocalContext:
    """The context object of a deployed function of the local account (the CLI's, with the modules' usual 300 s
    timeout)."""
    return LocalContext(
        function_name, region, ACCOUNT_ID, **{"timeout_seconds": 300, "log_stream_name": "local", **fields}
    )
