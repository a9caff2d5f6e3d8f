"""`ops-automation`: the click group, its global options, and the entry point `[project.scripts]` names."""

from __future__ import annotations

import logging
import os
import sys
from functools import partial
from unittest import mock

import boto3
import click
from botocore.exceptions import BotoCoreError
from rich.console import Console

from ..core import observability
from ..core.clients import PLANNER_ATTEMPTS, ClientFactory
from .context import BUILD_OPERATOR, CANNOT_LOOK, CLI_SESSION_NAME, CannotLook, Operator
from .history import history
from .invoke import invoke
from .plan import plan
from .report import report

# A table printed into a pipe or a CI log: wide enough that no instance id is folded across lines.
PIPE_WIDTH = 200


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr)
    return console if console.is_terminal or "COLUMNS" in os.environ else Console(stderr=stderr, width=PIPE_WIDTH)


def _functions_telemetry_quiet(ctx: click.Context, verbose: bool) -> None:
    """The functions' code logs through Powertools, whose logger writes JSON lines to stdout, which belongs to the
    tables and `--json` here: point it at stderr, and show it only with --verbose (the CLI reports findings
    itself). Metrics a planner counts are dropped: the CLI is not the function and publishes none. Everything is
    put back when the command ends (tests run many commands in one process, next to the handlers)."""
    logger = observability.logger
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        ctx.call_on_close(partial(handler.setStream, handler.stream))
        handler.setStream(sys.stderr)
    ctx.call_on_close(partial(logger.setLevel, logger.log_level))
    logger.setLevel(logging.INFO if verbose else logging.CRITICAL)
    ctx.call_on_close(observability.metrics.clear_metrics)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--profile", help="AWS profile (default: the environment's credentials).")
@click.option("--region", help="AWS region of the policy's functions (default: the profile's or AWS_REGION).")
@click.option("--endpoint-url", help="Another AWS endpoint, e.g. the local emulator of `make demo`.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout instead of tables.")
@click.option("-v", "--verbose", is_flag=True, help="Show the functions' own log lines (JSON, on stderr).")
@click.pass_context
def cli(
    ctx: click.Context, profile: str | None, region: str | None, endpoint_url: str | None, as_json: bool, verbose: bool
) -> None:
    """Look at the ops-automation policies deployed in an account, with the functions' own code.

    Exit codes: 0 nothing to report, 1 findings (see each command), 2 usage error or could not look."""
    if endpoint_url:
        # botocore reads it for every client (the way scripts/local_aws.py points the handlers at the emulator).
        ctx.with_resource(mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL": endpoint_url}))
    _functions_telemetry_quiet(ctx, verbose)
    ctx.meta[BUILD_OPERATOR] = partial(build_operator, profile, region, as_json)


def build_operator(profile: str | None, region: str | None, as_json: bool) -> Operator:
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except BotoCoreError as error:
        raise CannotLook(str(error)) from error
    if not session.region_name:
        raise CannotLook("no AWS region: pass --region, or set AWS_REGION or the profile's region")
    return Operator(
        factory=ClientFactory(CLI_SESSION_NAME, session=session, max_attempts=PLANNER_ATTEMPTS),
        region=session.region_name,
        json=as_json,
        console=_console(stderr=False),
        err=_console(stderr=True),
        session=session,
    )


for command in (plan, history, report, invoke):
    cli.add_command(command)


def main() -> None:
    """The console script. Exit 1 is kept for findings: anything that stopped the look - a usage error, an
    interrupt, an error no command expected - exits 2 with one line on stderr, not a traceback."""
    try:
        code = cli.main(prog_name="ops-automation", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("ops-automation: interrupted", err=True)
        sys.exit(CANNOT_LOOK)
    except Exception as error:
        click.echo(f"ops-automation: could not finish: {type(error).__name__}: {error}", err=True)
        sys.exit(CANNOT_LOOK)
    sys.exit(code if isinstance(code, int) else 0)
