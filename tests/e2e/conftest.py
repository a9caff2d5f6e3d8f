"""Tier 3 runs every selected example on one local AWS: applied at once, scenarios one after the other, each
destroyed in the background as soon as its scenario is done (see tests/e2e/scenario.py for why).

Each test module names the example it needs in a module-level `EXAMPLE`, and may name more: `USES` (examples
another module owns that its scenario drives too - deregister-cleanup drives ami-backup) and `VARIANTS`
(`scenario.Variant`: a second deployment of an example with some settings overridden). The session applies
those of the selected modules only, all at once; an example is destroyed once every module using it called
`start_destroy`. The tests that check `terraform destroy` run after the other tier-3 tests, so that one
example's destroy overlaps the next example's scenario instead of holding it up; the outcome fixtures of the test
modules are session-scoped for that reason (a module-scoped one would be set up again for its destroy check).
The local AWS ends with the last tier-3 test.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from scripts.local_aws import LocalAws, local_aws
from tests.e2e import scenario
from tests.support.terraform_env import TerraformUnavailable, require_terraform

DESTROY_TESTS = "test_terraform_destroy_succeeds"
E2E_DIR = Path(__file__).resolve().parent


def not_run(reason: str) -> None:
    message = f"TIER 3 NOT RUN: {reason}"
    print(f"\n!!! {message} !!!", file=sys.stderr)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: a tier that cannot run is a failure)", pytrace=False)
    pytest.skip(message)


def _in_tier3(item: pytest.Item) -> bool:
    return E2E_DIR in item.path.resolve().parents


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The destroy checks go right after the last other tier-3 test (not to the end of the session: the local AWS
    ends with tier 3)."""
    destroys = [item for item in items if item.name == DESTROY_TESTS and _in_tier3(item)]
    if not destroys:
        return
    rest = [item for item in items if item not in destroys]
    last = max((index for index, item in enumerate(rest) if _in_tier3(item)), default=len(rest) - 1)
    items[:] = [*rest[: last + 1], *destroys, *rest[last + 1 :]]


def _examples(
    session: pytest.Session,
) -> tuple[list[Path], list[scenario.Variant], Counter[Path], list[Callable[[LocalAws], scenario.Variant]]]:
    """The examples and variants the selected tier-3 modules need, how many modules use each example, and the
    modules' `PREPARE(aws) -> Variant` hooks: a variant whose inputs exist only once the local AWS runs (ids moto
    generates), made before the shared applies start so that it applies alongside them."""
    modules = {}
    for item in session.items:
        module = getattr(item, "module", None)
        if _in_tier3(item) and module is not None:
            modules[module.__name__] = module
    examples: dict[Path, None] = {}
    variants: dict[Path, scenario.Variant] = {}
    holders: Counter[Path] = Counter()
    prepares: list[Callable[[LocalAws], scenario.Variant]] = []
    for module in modules.values():
        prepare = getattr(module, "PREPARE", None)
        if prepare is not None:
            prepares.append(prepare)
        used = [getattr(module, "EXAMPLE", None), *getattr(module, "USES", ())]
        for example in used:
            if isinstance(example, Path):
                examples[example] = None
                holders[example] += 1
        for variant in getattr(module, "VARIANTS", ()):
            variants[variant.path] = variant
            holders[variant.path] += 1
    return list(examples), list(variants.values()), holders, prepares


# The local AWS of the session, open from the first tier-3 test to the end of the last one.
_open: list[ExitStack] = []


def _close_local_aws() -> None:
    while _open:
        _open.pop().close()


@pytest.fixture(scope="session")
def applied(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[scenario.AppliedExamples]:
    """The selected modules' examples, applied to one local AWS (`run(example)` waits for one apply)."""
    try:
        require_terraform()
    except TerraformUnavailable as unavailable:
        not_run(unavailable.reason)
    examples, variants, holders, prepares = _examples(request.session)
    region = scenario.example_region(examples[0]) if examples else scenario.DEFAULT_REGION
    stack = ExitStack()
    _open.append(stack)
    try:
        aws = stack.enter_context(local_aws(region))
        for prepare in prepares:
            variant = prepare(aws)
            variants.append(variant)
            holders[variant.path] += 1
        workdir = tmp_path_factory.mktemp("e2e")
        yield stack.enter_context(scenario.applied_together(aws, workdir, examples, variants, holders))
    finally:
        _close_local_aws()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """A session fixture would live until the session ends, but the local AWS must end with tier 3: its server and
    the moto patches it holds (`faithful_aws`, not re-entrant) would otherwise be in the way of every later test
    that uses `mock_aws`. Destroys what is still applied, then stops the server."""
    if _in_tier3(item) and (nextitem is None or not _in_tier3(nextitem)):
        _close_local_aws()
