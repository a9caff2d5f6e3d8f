"""Fixtures for the Lambda package tests: moto AWS with fidelity patches, a fixed clock, the function
environment, API-call counting and recording, log capture."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_harness import (
    MOTO_ENVIRONMENT,
    REGION,
    RUN_OUTPUT_BUCKET,
    Captured,
    Clock,
    Configure,
    Infra,
    cleanup_function_env,
    copy_function_env,
    create_policy_resources,
    ebs_function_env,
    function_env,
    install_runtimes,
    runcommand_function_env,
    scheduler_function_env,
)
from moto import mock_aws
from tests.support.moto_fidelity import MotoFidelity, faithful_aws

from ops_automation.ami_backup import handlers
from ops_automation.core import observability
from ops_automation.core.clients import ClientFactory
from ops_automation.deregister_cleanup import handlers as cleanup_handlers
from ops_automation.ebs_snapshot import handlers as ebs_handlers
from ops_automation.instance_scheduler import handlers as scheduler_handlers
from ops_automation.snapshot_copy import handlers as copy_handlers
from ops_automation.ssm_runcommand import handlers as runcommand_handlers

# What each Lambda handler was seen calling on AWS in these tests (the botocore event of every request), by the
# handler string a Terraform module deploys. tests/hcl checks it against the rendered IAM policies.
OBSERVED_CALLS_FILE = Path(__file__).resolve().parents[1] / "contracts" / "observed_api_calls.json"
HANDLER_ENTRY_POINTS = {"plan_handler", "work_handler", "sweep_handler", "restore_handler"}
_observed: dict[str, set[str]] = defaultdict(set)


def _calling_handler() -> str | None:
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if frame.f_code.co_name in HANDLER_ENTRY_POINTS and module.startswith("ops_automation."):
            return f"{module}.{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _record(model: Any, **_: Any) -> None:
    handler = _calling_handler()
    if handler is not None:
        service = model.service_model.metadata.get("signingName") or model.service_model.service_name
        _observed[handler].add(f"{service}:{model.name}")


def hook_every_request(monkeypatch: pytest.MonkeyPatch, on_request: Callable[..., None]) -> None:
    """Call `on_request(model=...)` before every AWS request of every client a ClientFactory makes (each page of a
    paginator is one request)."""
    original = ClientFactory.client
    hooked: set[int] = set()

    def client(self: ClientFactory, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        if id(made) not in hooked:
            hooked.add(id(made))
            made.meta.events.register("before-call.*.*", on_request)
        return made

    monkeypatch.setattr(ClientFactory, "client", client)


@pytest.fixture(autouse=True)
def record_api_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    hook_every_request(monkeypatch, _record)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With the whole folder run, the observed calls must equal the committed contract file (write it with
    OPS_WRITE_CONTRACTS=1); on a partial run they must be a subset of it."""
    import os

    if not _observed or exitstatus != 0:
        return
    observed = {handler: sorted(calls) for handler, calls in sorted(_observed.items())}
    if os.environ.get("OPS_WRITE_CONTRACTS") == "1":
        OBSERVED_CALLS_FILE.parent.mkdir(parents=True, exist_ok=True)
        OBSERVED_CALLS_FILE.write_text(json.dumps(observed, indent=2) + "\n", encoding="utf-8")
        return
    committed = json.loads(OBSERVED_CALLS_FILE.read_text(encoding="utf-8")) if OBSERVED_CALLS_FILE.exists() else {}
    new = {
        h: sorted(set(c) - set(committed.get(h, []))) for h, c in observed.items() if set(c) - set(committed.get(h, []))
    }
    here = Path(__file__).parent
    collected = {Path(str(item.path)) for item in session.items}
    whole_run = (
        set(here.glob("test_*.py")) <= collected
        and not session.config.option.keyword
        and not session.config.option.markexpr
    )
    stale = (
        {
            h: sorted(set(c) - set(observed.get(h, [])))
            for h, c in committed.items()
            if set(c) - set(observed.get(h, []))
        }
        if whole_run
        else {}
    )
    if new or stale:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"{OBSERVED_CALLS_FILE} is out of date (re-run with OPS_WRITE_CONTRACTS=1 and review the diff): "
            f"called but not recorded {new}; recorded but never called {stale}"
        )
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(message, red=True)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in MOTO_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def fidelity(aws: None, clock: Clock) -> Iterator[MotoFidelity]:
    with faithful_aws(clock) as patched:
        yield patched


@pytest.fixture
def infra(aws: None) -> Infra:
    queue_url, topic_arn = create_policy_resources()
    return Infra(
        queue_url=queue_url,
        ec2=boto3.client("ec2", region_name=REGION),
        sqs=boto3.client("sqs", region_name=REGION),
        dynamodb=boto3.client("dynamodb", region_name=REGION),
        alert_topic_arn=topic_arn,
    )


@pytest.fixture
def configure(infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """Set the function environment and install planner and worker runtimes on the test clock; returns the
    worker's. Alerts go to the test topic unless OPS_ALERT_TOPIC_ARN is overridden."""

    def apply(**overrides: str) -> handlers.AmiRuntime:
        env = function_env(infra.queue_url, **{"OPS_ALERT_TOPIC_ARN": infra.alert_topic_arn, **overrides})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return install_runtimes(clock)

    monkeypatch.setattr(handlers.planner_runtime, "_value", None)
    monkeypatch.setattr(handlers.worker_runtime, "_value", None)
    return apply


@pytest.fixture
def configure_ebs(infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """As `configure`, for the ebs-snapshot functions; returns the worker's runtime."""

    def apply(**overrides: str) -> ebs_handlers.EbsRuntime:
        env = ebs_function_env(infra.queue_url, **{"OPS_ALERT_TOPIC_ARN": infra.alert_topic_arn, **overrides})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime: ebs_handlers.EbsRuntime = install_runtimes(clock, "ebs_snapshot")
        return runtime

    monkeypatch.setattr(ebs_handlers.planner_runtime, "_value", None)
    monkeypatch.setattr(ebs_handlers.worker_runtime, "_value", None)
    return apply


@pytest.fixture
def configure_cleanup(infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """As `configure`, for the deregister-cleanup functions; returns the worker's runtime."""

    def apply(**overrides: str) -> cleanup_handlers.CleanupRuntime:
        env = cleanup_function_env(infra.queue_url, **{"OPS_ALERT_TOPIC_ARN": infra.alert_topic_arn, **overrides})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime: cleanup_handlers.CleanupRuntime = install_runtimes(clock, "deregister_cleanup")
        return runtime

    monkeypatch.setattr(cleanup_handlers.sweeper_runtime, "_value", None)
    monkeypatch.setattr(cleanup_handlers.worker_runtime, "_value", None)
    return apply


@pytest.fixture
def configure_copy(infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """As `configure`, for the snapshot-copy functions; returns the worker's runtime."""

    def apply(**overrides: str) -> copy_handlers.CopyRuntime:
        env = copy_function_env(infra.queue_url, **{"OPS_ALERT_TOPIC_ARN": infra.alert_topic_arn, **overrides})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime: copy_handlers.CopyRuntime = install_runtimes(clock, "snapshot_copy")
        return runtime

    monkeypatch.setattr(copy_handlers.planner_runtime, "_value", None)
    monkeypatch.setattr(copy_handlers.worker_runtime, "_value", None)
    return apply


@pytest.fixture
def configure_scheduler(infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """As `configure`, for the instance-scheduler functions; returns the worker's runtime."""

    def apply(**overrides: str) -> scheduler_handlers.SchedulerRuntime:
        env = scheduler_function_env(infra.queue_url, **{"OPS_ALERT_TOPIC_ARN": infra.alert_topic_arn, **overrides})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime: scheduler_handlers.SchedulerRuntime = install_runtimes(clock, "instance_scheduler")
        return runtime

    monkeypatch.setattr(scheduler_handlers.planner_runtime, "_value", None)
    monkeypatch.setattr(scheduler_handlers.worker_runtime, "_value", None)
    return apply


@pytest.fixture
def configure_runcommand(infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """As `configure`, for the ssm-runcommand functions (the output bucket created); returns the worker's runtime."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=RUN_OUTPUT_BUCKET)

    def apply(**overrides: str) -> runcommand_handlers.RunRuntime:
        env = runcommand_function_env(infra.queue_url, **{"OPS_ALERT_TOPIC_ARN": infra.alert_topic_arn, **overrides})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime: runcommand_handlers.RunRuntime = install_runtimes(clock, "ssm_runcommand")
        return runtime

    monkeypatch.setattr(runcommand_handlers.planner_runtime, "_value", None)
    monkeypatch.setattr(runcommand_handlers.worker_runtime, "_value", None)
    return apply


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch, record_api_calls: None) -> Counter[str]:
    """Counts the AWS API requests (every page of a paginator is one) made through ClientFactory clients."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}.{model.name}"] += 1

    hook_every_request(monkeypatch, count)
    return calls


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler = Captured()
    handler.setFormatter(observability.logger.registered_formatter)
    # Powertools' Logger wraps the standard logger of the same name; attach beside its stdout handler.
    standard = logging.getLogger(observability.logger.name)
    standard.addHandler(handler)
    yield handler
    standard.removeHandler(handler)
