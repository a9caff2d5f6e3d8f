"""What every command gets from the group: one client factory (so a test hook sees every request), the region,
the output mode and the two consoles (data on stdout, progress and logs on stderr)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import track

from ..core.clients import PLANNER_ATTEMPTS, ClientFactory
from ..core.runtime import external_id_of

# Role sessions of the CLI are named like the functions' (ops-automation-*), and say who made them.
CLI_SESSION_NAME = "ops-automation-cli"

# Exit codes scripts can trust: 1 only ever means "looked, and found something".
FINDINGS = 1
CANNOT_LOOK = 2


class CannotLook(click.ClickException):
    """Could not look at all (unknown policy, no credentials, access denied): exit 2, like a usage error, so exit 1
    always means the look succeeded and found something."""

    exit_code = CANNOT_LOOK


@dataclass(frozen=True)
class Operator:
    factory: ClientFactory
    region: str
    json: bool
    console: Console
    err: Console
    # The operator's credentials, for a factory that sends a deployment's external id (`clients_for`).
    session: boto3.session.Session | None = None

    @property
    def interactive(self) -> bool:
        """Progress bars only for a person watching a terminal; CI logs and pipes stay clean."""
        return self.err.is_terminal


# The group leaves a builder here: the Operator is made on first use, so `ops-automation COMMAND --help` works
# without a region or credentials (click runs the group's callback before it parses the command's options).
BUILD_OPERATOR = "ops_automation.build_operator"


def clients_for(op: Operator, config: object) -> ClientFactory:
    """The operator's client factory, or one that sends the deployment's external id when it assumes a spoke
    account's role (modules/target-account-role requires it when the hub sets one)."""
    external_id = external_id_of(config)
    if external_id is None:
        return op.factory
    return ClientFactory(CLI_SESSION_NAME, session=op.session, max_attempts=PLANNER_ATTEMPTS, external_id=external_id)


def operator_of(ctx: click.Context) -> Operator:
    """The command's Operator (also `ctx.obj` once made)."""
    operator = ctx.find_object(Operator)
    if operator is not None:
        return operator
    root = ctx.find_root()
    build: Callable[[], Operator] | None = root.meta.get(BUILD_OPERATOR)
    if build is None:
        raise click.UsageError("run through the ops-automation group")
    root.obj = operator = build()
    return operator


@contextmanager
def looking(what: str) -> Iterator[None]:
    """AWS errors while reading become exit 2 with one line, not a traceback."""
    try:
        yield
    except ClientError as error:
        raise CannotLook(f"{what}: {error}") from error
    except BotoCoreError as error:
        raise CannotLook(f"{what}: {error}") from error


def findings(ctx: click.Context, found: bool) -> None:
    """Exit 1 when the command looked and found something an operator must act on."""
    if found:
        ctx.exit(FINDINGS)


T = TypeVar("T")


def progress(op: Operator, items: Sequence[T], description: str) -> Iterable[T]:
    """A transient progress bar on stderr for long listings; nothing at all when stderr is not a terminal."""
    if not op.interactive or len(items) < 2:
        return items
    return track(items, description=description, console=op.err, transient=True)


def emit_json(document: Any) -> None:
    """`--json`: exactly one document on stdout, nothing else there."""
    click.echo(json.dumps(document, indent=2, default=str))
