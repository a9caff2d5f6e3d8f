"""moto in-process, the function environment, call counting and a simulated clock for latency and back-off."""

from __future__ import annotations

import importlib
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import botocore.endpoint
from aws_harness import (
    MOTO_ENVIRONMENT,
    REGION,
    Clock,
    cleanup_function_env,
    copy_function_env,
    create_policy_resources,
    ebs_function_env,
    function_env,
    install_runtimes,
)
from botocore.awsrequest import AWSResponse
from botocore.retries import bucket, standard
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from ops_automation.core.clients import ClientFactory

from . import ROOT  # noqa: F401 - puts lambda_src and tests/python on the path


@dataclass
class Calls:
    """AWS API calls seen by a botocore `before-call` hook (every page is one; retry attempts are not)."""

    counts: Counter[str] = field(default_factory=Counter)

    def hook(self, model: Any, **_: Any) -> None:
        self.counts[f"{model.service_model.service_name}.{model.name}"] += 1

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self.hook)
        return client

    def ec2(self) -> int:
        return sum(n for call, n in self.counts.items() if call.startswith("ec2."))

    def total(self) -> int:
        return sum(self.counts.values())


class SimClock:
    """Simulated wall time: each request costs `latency` seconds, botocore's retry sleeps advance it instead of
    sleeping, so throttled runs are measured in seconds they would take, not in seconds of this machine."""

    def __init__(self, latency: float = 0.0) -> None:
        self.now = 0.0
        self.latency = latency

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, float(seconds))

    def current_time(self) -> float:
        return self.now


def _throttled_response() -> AWSResponse:
    body = (
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
        "</Error></Errors><RequestID>bench</RequestID></Response>"
    )
    return AWSResponse("https://ec2.amazonaws.com/", 503, {}, MockRawResponse(body))


THROTTLED = "_bench_throttled"  # marks a request answered with a throttling error: moto must not act on it


@dataclass
class Network:
    """What every client of a run goes through: counting, simulated latency and EC2 throttling.

    Every HTTP attempt (a retry is one) costs the latency of its service (`latency`, else the clock's) and, for
    EC2, is answered `RequestLimitExceeded` with probability `throttle_share` from a seeded RNG. `hooks` run on
    every client attached (e.g. a simulated queue's ChangeMessageVisibility)."""

    calls: Calls = field(default_factory=Calls)
    clock: SimClock = field(default_factory=SimClock)
    throttle_share: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    throttled: int = 0
    latency: dict[str, float] = field(default_factory=dict)
    hooks: list[Callable[[Any], None]] = field(default_factory=list)

    def _before_send(self, service: str) -> Callable[..., AWSResponse | None]:
        seconds = self.latency.get(service, self.clock.latency)

        def before_send(request: Any, **_: Any) -> AWSResponse | None:
            self.clock.sleep(seconds)
            if service == "ec2" and self.throttle_share and self.rng.random() < self.throttle_share:
                self.throttled += 1
                setattr(request, THROTTLED, True)
                return _throttled_response()
            return None

        return before_send

    def attach(self, client: Any) -> Any:
        self.calls.attach(client)
        service = client.meta.service_model.service_name
        client.meta.events.register_first(f"before-send.{service}.*", self._before_send(service))
        for hook in self.hooks:
            hook(client)
        return client

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.attach(boto3.client(service, region_name=REGION, **kwargs))


def _acquire(self: Any, amount: float, block: bool) -> bool:
    """TokenBucket._acquire of botocore's adaptive mode, waiting on the bucket's (simulated) clock."""
    self._refill()
    # A tolerance: a simulated clock far from 0 absorbs the last femtoseconds of a wait, which would loop forever.
    while amount - self._current_capacity > 1e-9:
        self._clock.sleep((amount - self._current_capacity) / self._fill_rate)
        self._refill()
    self._current_capacity -= amount
    return True


def _seeded_backoff(rng: random.Random) -> Callable[..., None]:
    original = standard.ExponentialBackoff.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("random", rng.random)
        original(self, *args, **kwargs)

    return init


@contextmanager
def simulated_time(clock: SimClock, seed: int = 5) -> Iterator[None]:
    """botocore's retry sleeps (standard and adaptive), its token bucket and its jitter on `clock` and a seeded
    RNG. Make the clients inside the block: adaptive mode reads the clock when a client is created."""
    shim = SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    shim.sleep = clock.sleep
    with ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(standard.ExponentialBackoff, "__init__", _seeded_backoff(random.Random(seed)))
        )
        stack.enter_context(mock.patch.object(botocore.endpoint, "time", shim))
        stack.enter_context(mock.patch.object(bucket.Clock, "sleep", lambda _self, s: clock.sleep(s)))
        stack.enter_context(mock.patch.object(bucket.Clock, "current_time", lambda _self: clock.current_time()))
        stack.enter_context(mock.patch.object(bucket.TokenBucket, "_acquire", _acquire))
        yield


@contextmanager
def routed(network: Network, stand_ins: dict[str, Any] | None = None) -> Iterator[None]:
    """Every client the handlers make goes through `network`; `stand_ins` replace a service's client."""
    original = ClientFactory.client
    hooked: set[int] = set()

    def client(self: ClientFactory, service: str, *args: Any, **kwargs: Any) -> Any:
        if stand_ins and service in stand_ins:
            return stand_ins[service]
        made = original(self, service, *args, **kwargs)
        if id(made) not in hooked:
            hooked.add(id(made))
            network.attach(made)
        return made

    with mock.patch.object(ClientFactory, "client", client):
        yield


@dataclass(frozen=True)
class Infra:
    queue_url: str
    topic_arn: str


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, values):
        yield


def _stubber_call(original: Callable[..., Any]) -> Callable[..., Any]:
    """botocore calls every `before-send` handler, so moto would act on a request already answered as throttled
    (a throttled CreateImage would still create the image): skip those."""

    def call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if getattr(request, THROTTLED, False):
            return None
        return original(self, event_name, request, **kwargs)

    return call


@contextmanager
def moto_account() -> Iterator[Infra]:
    """A fresh moto account with the module's queue, ledger table and alert topic."""
    with (
        patched_env(MOTO_ENVIRONMENT),
        mock.patch.object(BotocoreStubber, "__call__", _stubber_call(BotocoreStubber.__call__)),
        mock_aws(),
    ):
        yield Infra(*create_policy_resources())


# The function environment modules/internal gives each module's functions, by handler package.
ENVIRONMENTS: dict[str, Callable[..., dict[str, str]]] = {
    "ami_backup": function_env,
    "ebs_snapshot": ebs_function_env,
    "deregister_cleanup": cleanup_function_env,
    "snapshot_copy": copy_function_env,
}


@contextmanager
def installed(
    infra: Infra, clock: Clock | Callable[[], Any], *, module: str = "ami_backup", **overrides: str
) -> Iterator[None]:
    """The function environment and both runtimes of `module` (ami_backup, ebs_snapshot, deregister_cleanup,
    snapshot_copy) on `clock`, as modules/internal wires them."""
    handlers = importlib.import_module(f"ops_automation.{module}.handlers")
    env = ENVIRONMENTS[module](infra.queue_url, **{"OPS_ALERT_TOPIC_ARN": infra.topic_arn, **overrides})
    with patched_env(env):
        install_runtimes(clock, module)
        try:
            yield
        finally:
            (getattr(handlers, "planner_runtime", None) or handlers.sweeper_runtime).install(None)
            handlers.worker_runtime.install(None)
