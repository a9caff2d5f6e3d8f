"""`ops-automation invoke`: run a deployed function's handler here, in the function's environment as Lambda holds
it, against the caller's credentials (not the function's role) — the code path of the tier-3 scenarios."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import boto3
import click

from ..core.runtime import Lazy
from .context import FINDINGS, CannotLook, Operator, emit_json, looking, operator_of
from .deployment import module_of_handler
from .lambda_context import LocalContext

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_local_endpoint() -> bool:
    """The local emulator of `make demo` and the tier-3 tests: nothing there to protect."""
    return urlparse(os.environ.get("AWS_ENDPOINT_URL", "")).hostname in LOCAL_HOSTS


@contextlib.contextmanager
def function_environment(op: Operator, variables: Mapping[str, str]) -> Iterator[None]:
    """The function's variables plus what the Lambda runtime adds: its region, and credentials as environment
    variables - here the operator's own, resolved from the CLI's session (`--profile`), so the handler's clients act
    in the account the operator confirmed, not in whatever the default credential chain would find."""
    credentials = (op.session or boto3.session.Session()).get_credentials()
    if credentials is None:
        raise CannotLook("no AWS credentials found for the handler to run with")
    frozen = credentials.get_frozen_credentials()
    runtime = {
        "AWS_REGION": op.region,
        "AWS_DEFAULT_REGION": op.region,
        "AWS_ACCESS_KEY_ID": frozen.access_key,
        "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
    }
    with mock.patch.dict(os.environ, {**variables, **runtime}):
        for name in (
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_CREDENTIAL_EXPIRATION",
        ):
            os.environ.pop(name, None)
        if frozen.token:
            os.environ["AWS_SESSION_TOKEN"] = frozen.token
        yield


@contextlib.contextmanager
def cold_start(module: Any) -> Iterator[None]:
    """The handler module's cached runtimes are built from this environment, and forgotten afterwards: the next
    invocation (another function, another environment) starts cold too."""
    lazies = [value for value in vars(module).values() if isinstance(value, Lazy)]
    for lazy in lazies:
        lazy.install(None)
    try:
        yield
    finally:
        for lazy in lazies:
            lazy.install(None)


def run_handler(op: Operator, function: str, handler: str, variables: Mapping[str, str], event: Any) -> Any:
    module_name, _, attribute = handler.rpartition(".")
    account = op.factory.client("sts", op.region).get_caller_identity()["Account"]
    context = LocalContext(function_name=function, region=op.region, account=str(account))
    with function_environment(op, variables):
        module = importlib.import_module(module_name)
        # A handler's metrics flush prints EMF documents: stdout carries only the result here.
        with cold_start(module), contextlib.redirect_stdout(sys.stderr):
            return getattr(module, attribute)(event, context)


@click.command()
@click.argument("function")
@click.option("--event", "event_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before running against a non-local endpoint.")
@click.pass_context
def invoke(ctx: click.Context, function: str, event_file: Path, yes: bool) -> None:
    """Run FUNCTION's handler here with the event in FILE (JSON), in the function's environment as deployed.

    It runs with YOUR credentials, not the function's role, and does what the function does (it can create and
    delete). Exit 1 when the handler raised or reported batchItemFailures."""
    op = operator_of(ctx)
    try:
        event = json.loads(event_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--event") from error
    with looking(f"reading function {function}"):
        configuration = op.factory.client("lambda", op.region).get_function_configuration(FunctionName=function)
    handler = str(configuration["Handler"])
    module_of_handler(handler)
    variables = dict(configuration.get("Environment", {}).get("Variables", {}))
    if not yes and not is_local_endpoint():
        if not sys.stdin.isatty():
            raise click.UsageError("invoke acts on real resources with your credentials: pass --yes to confirm")
        # On stderr: with --json, stdout carries the one JSON document only.
        if not click.confirm(f"Run {handler} of {function} in {op.region} with your credentials?", err=True):
            raise CannotLook("not confirmed")
    try:
        result = run_handler(op, function, handler, variables, event)
    # Whatever the handler raised is what Lambda would report as the invocation's error: the finding.
    except Exception as error:
        op.err.print(f"{function}: the handler raised {type(error).__name__}: {error}", markup=False)
        if op.json:
            emit_json({"function": function, "handler": handler, "error": f"{type(error).__name__}: {error}"})
        ctx.exit(FINDINGS)
    if op.json:
        emit_json({"function": function, "handler": handler, "result": result})
    else:
        op.console.print_json(json.dumps(result, default=str))
    failed = isinstance(result, dict) and bool(result.get("batchItemFailures"))
    if failed:
        ctx.exit(FINDINGS)
