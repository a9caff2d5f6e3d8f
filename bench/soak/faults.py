"""Seeded faults of a soak run: the one random generator of a run, and AWS answering the handlers' calls with the
errors real AWS gives (throttling, 5xx, timeouts, AccessDenied) instead of reaching moto.

Reuses bench/harness.py's mechanism: a `before-send` hook on every client the handlers make (through
`ClientFactory.client`, as `harness.routed` does) answers a request with an error response, marked so moto does
not act on it (`harness.THROTTLED`, honoured by `harness._stubber_call`), and botocore's retry sleeps run on a
simulated clock (`harness.simulated_time`), so a throttled run takes no real time.

A read timeout is the fault AWS makes hardest: the request reached AWS and acted, only the answer was lost. Here
moto acts, then the call raises `ReadTimeoutError` (botocore's standard mode retries it: a retried CreateImage
meets its own name, a retried conditional write its own condition). A connect timeout never reached AWS.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from moto.core import models as moto_models
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from ops_automation.core.clients import ClientFactory

from ..harness import THROTTLED, SimClock, _stubber_call, simulated_time

# The kinds answered on AWS calls (per HTTP attempt, retries included).
AWS_CALL_KINDS = ("throttling", "server_error", "timeout", "access_denied")

# Per HTTP attempt for the AWS-call kinds; per occasion (a delivery, a batch, a source and day...) for the others.
# A module passes its own `rates` to override any of them; a kind not listed has rate 0.
DEFAULT_RATES: dict[str, float] = {
    "throttling": 0.02,
    "server_error": 0.004,
    "timeout": 0.004,
    "access_denied": 0.001,
}


def _error_body(protocol: str, code: str, message: str) -> tuple[str, dict[str, str]]:
    """The error document of `protocol` as AWS sends it (botocore's parsers read the code from it)."""
    if protocol == "ec2":
        xml = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        return xml + "<RequestID>soak</RequestID></Response>", {}
    if protocol == "query":
        xml = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        return xml + "<RequestId>soak</RequestId></ErrorResponse>", {}
    if protocol == "rest-xml":
        return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>", {}
    headers = {"x-amzn-ErrorType": code, "x-amzn-query-error": f"{code};Sender"}
    return json.dumps({"__type": code, "message": message}), headers


# (kind, protocol) -> the (code, HTTP status) choices AWS documents for it; "ec2" is EC2's own error codes.
_CODES: dict[tuple[str, str], tuple[tuple[str, int], ...]] = {
    ("throttling", "ec2"): (("RequestLimitExceeded", 503),),
    ("throttling", "query"): (("Throttling", 400),),
    ("throttling", "json"): (("ThrottlingException", 400),),
    ("throttling", "rest-json"): (("TooManyRequestsException", 429),),
    ("throttling", "rest-xml"): (("SlowDown", 503),),
    ("server_error", "ec2"): (("InternalError", 500), ("Unavailable", 503)),
    ("server_error", "query"): (("InternalFailure", 500), ("ServiceUnavailable", 503)),
    ("server_error", "json"): (("InternalServerError", 500), ("ServiceUnavailable", 503)),
    ("server_error", "rest-json"): (("ServiceException", 500), ("ServiceUnavailableException", 503)),
    ("server_error", "rest-xml"): (("InternalError", 500), ("ServiceUnavailable", 503)),
    ("access_denied", "ec2"): (("UnauthorizedOperation", 403),),
    ("access_denied", "query"): (("AccessDenied", 403),),
    ("access_denied", "json"): (("AccessDeniedException", 400),),
    ("access_denied", "rest-json"): (("AccessDeniedException", 403),),
    ("access_denied", "rest-xml"): (("AccessDenied", 403),),
}


class Faults:
    """The faults of one run. `rng` is its only randomness: the same seed gives the same faults at the same steps."""

    def __init__(self, seed: int, rates: Mapping[str, float] | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.rates: dict[str, float] = {**DEFAULT_RATES, **(rates or {})}
        self.injected: Counter[str] = Counter()
        # Requests AWS acted on but whose answer was lost (read timeouts), by "service.Operation".
        self.unanswered: Counter[str] = Counter()
        # The bodies of the requests AWS acted on but whose answer was lost, by `service.Operation`.
        self.unanswered_bodies: dict[str, list[Any]] = {}
        self.clock = SimClock()  # botocore's retry sleeps while faults are on: simulated seconds, not real ones
        self._services: frozenset[str] = frozenset()
        self._hooked: set[int] = set()

    def rate(self, kind: str) -> float:
        return self.rates.get(kind, 0.0)

    def chance(self, kind: str) -> bool:
        """A seeded decision at `kind`'s rate (one draw whatever the rate, so changing one rate does not shift the
        others' decisions); counts the fault when it happens."""
        happens = self.rng.random() < self.rate(kind)
        if happens:
            self.injected[kind] += 1
        return happens

    def pick(self, choices: list[Any]) -> Any:
        return choices[self.rng.randrange(len(choices))]

    # -- AWS calls -----------------------------------------------------------------------------------------------

    @contextmanager
    def on_aws_calls(self, services: Collection[str] = ("ec2",)) -> Iterator[None]:
        """While active, boto3 calls to these services may be answered (seeded, at the rates of kinds
        "throttling" (RequestLimitExceeded / ThrottlingException), "server_error" (500/503 InternalError /
        Unavailable), "timeout" (botocore ReadTimeoutError / ConnectTimeoutError) and "access_denied"
        (UnauthorizedOperation / AccessDeniedException)) instead of reaching moto; counted in `injected`.

        Only the clients the handlers make (`ClientFactory.client`) are touched: the soak's own inspection of AWS
        state never meets a fault. Not re-entrant."""
        original = ClientFactory.client

        def client(factory: ClientFactory, service: str, *args: Any, **kwargs: Any) -> Any:
            made = original(factory, service, *args, **kwargs)
            self._attach(made)
            return made

        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(ClientFactory, "client", client))
            stack.enter_context(mock.patch.object(BotocoreStubber, "__call__", _stubber_call(BotocoreStubber.__call__)))
            stack.enter_context(simulated_time(self.clock, seed=self.rng.randrange(2**32)))
            self._services = frozenset(services)
            try:
                yield
            finally:
                self._services = frozenset()

    def _attach(self, client: Any) -> None:
        """Hook a client once; the hook stays on the cached client but acts only while `on_aws_calls` is active."""
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        service_model = client.meta.service_model
        client.meta.events.register_first(
            f"before-send.{service_model.service_id.hyphenize()}.*",
            self._before_send(service_model.service_name, service_model.protocol),
        )

    def _before_send(self, service: str, protocol: str) -> Callable[..., AWSResponse | None]:
        code_protocol = "ec2" if protocol == "ec2" else protocol

        def before_send(request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
            if service not in self._services:
                return None
            kind = self._draw()
            if kind is None:
                return None
            self.injected[kind] += 1
            if kind == "timeout":
                self._time_out(request, event_name)
            code, status = self.pick(list(_CODES[(kind, code_protocol)]))
            body, headers = _error_body(code_protocol, code, f"injected by the soak ({kind})")
            setattr(request, THROTTLED, True)  # answered here: moto must not act on it
            return AWSResponse(request.url, status, headers, MockRawResponse(body))

        return before_send

    def _draw(self) -> str | None:
        """One draw per attempt: which AWS-call fault (if any) answers it."""
        draw = self.rng.random()
        for kind in AWS_CALL_KINDS:
            draw -= self.rate(kind)
            if draw < 0:
                return kind
        return None

    def _time_out(self, request: Any, event_name: str) -> None:
        """Half the timeouts are read timeouts: moto acts on the request, then the answer is lost."""
        if self.rng.random() < 0.5:
            moto_models.botocore_stubber(event_name, request)
            _, service, operation = event_name.split(".", 2)
            self.unanswered[f"{service}.{operation}"] += 1
            self.unanswered_bodies.setdefault(f"{service}.{operation}", []).append(request.body)
            setattr(request, THROTTLED, True)
            raise ReadTimeoutError(endpoint_url=request.url)
        setattr(request, THROTTLED, True)
        raise ConnectTimeoutError(endpoint_url=request.url)
