"""Static (AST) inventory of the environment variables the Lambda package reads, and where the code of one
module lives.

The environment contract test compares this inventory with what the Terraform modules set, so it is derived
from the code itself, never listed by hand. (Which AWS actions the code calls is recorded by the moto tests,
as evidence, in tests/contracts/observed_api_calls.json; no scanner guesses it from variable names.)
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# Every OPS_* literal in the package is one of this project's environment variables, however it is read.
PROJECT_ENV_NAME = re.compile(r"^OPS_[A-Z0-9_]+$")
# SQS batch operations have no IAM action of their own: the single-message action authorizes them
# (SQS developer guide, "Amazon SQS batch actions").
IAM_ACTION_OF_OPERATION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# The shared core every module's handlers use (lambda_src/ops_automation/core/).
CORE_PACKAGE = "core"
_ENV_NAMES = {"environ", "env", "environment"}


def python_files(package: Path) -> list[Path]:
    if package.is_file():
        return [package]
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def iam_action(operation: str) -> str:
    """The IAM action that authorizes an API operation written `service:Operation`."""
    return IAM_ACTION_OF_OPERATION.get(operation, operation)


def handler_code(package: Path, handler: str) -> list[Path]:
    """The code a Lambda handler string (`ops_automation.<module>.handlers.<function>`) runs on: its module's
    package (`ops_automation/<module>/`) and the shared core (`ops_automation/core/`), plus the package's own
    top-level files. A handler whose module is missing returns nothing, so the caller can say which."""
    parts = handler.split(".")
    if len(parts) < 3 or parts[0] != package.name:
        return []
    module = package / parts[1]
    if not module.exists() and (package / f"{parts[1]}.py").is_file():
        module = package / f"{parts[1]}.py"  # a module that is a single file
    if not module.exists():
        return []
    paths = [module, *sorted(package.glob("*.py"))]
    if (package / CORE_PACKAGE).is_dir():
        paths.append(package / CORE_PACKAGE)
    else:
        # Before the core/ split the shared code is the package's other top-level modules.
        paths = [package]
    return paths


def _location(path: Path, node: ast.AST) -> str:
    return f"{path.name}:{getattr(node, 'lineno', '?')}"


def _module_constants(tree: ast.Module) -> dict[str, str]:
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    constants[target.id] = node.value.value
    return constants


def _string(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _is_environ(node: ast.AST) -> bool:
    """`os.environ`, or a name that by convention holds the environment mapping (`env`, `environ`...)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" or node.attr.lstrip("_") in _ENV_NAMES
    return isinstance(node, ast.Name) and (node.id in _ENV_NAMES or node.id.endswith("_env"))


def _env_reads_in(tree: ast.Module, constants: dict[str, str]) -> Iterator[tuple[str, ast.AST]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = _string(node.slice, constants)
            if name:
                yield name, node
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            name = _string(node.left, constants)
            if name:
                yield name, node
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                (
                    isinstance(func, ast.Attribute)
                    and func.attr in {"get", "pop", "setdefault"}
                    and _is_environ(func.value)
                )
                or (isinstance(func, ast.Attribute) and func.attr == "getenv")
                or (isinstance(func, ast.Name) and func.id == "getenv")
            ):
                name = _string(node.args[0] if node.args else None, constants)
                if name:
                    yield name, node
            else:
                # A helper handed the environment and a variable name: `_required(env, "OPS_X")`.
                arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
                if any(_is_environ(argument) for argument in arguments):
                    for argument in arguments:
                        name = _string(argument, constants)
                        if name and ENV_NAME.match(name):
                            yield name, node
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and PROJECT_ENV_NAME.match(node.value):
            yield node.value, node


def env_var_reads(*packages: Path) -> dict[str, list[str]]:
    """Environment variable name -> where the given packages (folders or files) read it."""
    reads: dict[str, list[str]] = defaultdict(list)
    for path in sorted({file for package in packages for file in python_files(package)}):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in _env_reads_in(tree, _module_constants(tree)):
            location = _location(path, node)
            if location not in reads[name]:
                reads[name].append(location)
    return dict(reads)
