"""Read the repository's Terraform with python-hcl2 (major 8) into plain Python values.

python-hcl2 8 keeps quotes and wraps expressions; the options below give the clean shape
(`"x"` -> `x`, expressions stay as `"${...}"` strings). Expressions are not evaluated, but plain
`local.*` references can be followed with `resolve_locals`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions
from tests.support.terraform_env import repo_root

HCL_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, preserve_heredocs=False, with_comments=False
)
TERRAFORM_TREES = ("modules", "examples")
_WHOLE_LOCAL = re.compile(r"^\$\{local\.([A-Za-z0-9_.\-\[\]\"]+)\}$")
_EMBEDDED_LOCAL = re.compile(r"\$\{local\.([A-Za-z0-9_.\-]+)\}")
_BARE_LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")


def load_tf(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def tf_files(root: Path | None = None) -> list[Path]:
    base = root or repo_root()
    return sorted(
        path for tree in TERRAFORM_TREES for path in (base / tree).rglob("*.tf") if ".terraform" not in path.parts
    )


def terraform_dirs(root: Path | None = None) -> list[Path]:
    """Every module and example directory (any folder holding .tf files), public or internal."""
    return sorted({path.parent for path in tf_files(root)})


def public_modules(root: Path | None = None) -> list[Path]:
    modules = (root or repo_root()) / "modules"
    return sorted(p for p in modules.iterdir() if (p / "README.md").is_file()) if modules.is_dir() else []


@dataclass
class Module:
    """The blocks of all .tf files of one directory, merged."""

    path: Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    module_calls: dict[str, dict[str, Any]] = field(default_factory=dict)


def calls_to(caller: Module, module_folder: str) -> list[dict[str, Any]]:
    """Bodies of the `module` blocks of `caller` whose source is the sibling folder `module_folder`."""
    return [
        body
        for body in caller.module_calls.values()
        if str(body.get("source", "")).rstrip("/").split("/")[-1] == module_folder
    ]


def _typed_blocks(blocks: list[dict[str, Any]]) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for block in blocks:
        for kind, named in block.items():
            for name, body in named.items():
                yield (kind, name), body


@cache
def load_module(path: Path) -> Module:
    module = Module(path=path)
    for tf in sorted(path.glob("*.tf")):
        parsed = load_tf(tf)
        for block in parsed.get("variable", []):
            module.variables.update(block)
        for block in parsed.get("output", []):
            module.outputs.update(block)
        for block in parsed.get("locals", []):
            module.locals.update(block)
        for block in parsed.get("module", []):
            module.module_calls.update(block)
        module.data.update(_typed_blocks(parsed.get("data", [])))
        module.resources.update(_typed_blocks(parsed.get("resource", [])))
    return module


def _lookup(locals_: dict[str, Any], reference: str) -> Any:
    """`a.b` or `a["b"]` inside `locals_`; raises KeyError when it is not a plain path."""
    tokens = [part for part in re.split(r'\.|\["|"\]', reference) if part]
    value: Any = locals_
    for token in tokens:
        if not isinstance(value, dict) or token not in value:
            raise KeyError(reference)
        value = value[token]
    return value


def resolve_locals(value: Any, locals_: dict[str, Any], depth: int = 10) -> Any:
    """Replace `${local.x}` references that point at plain values, recursively; leave the rest as is."""
    if depth == 0:
        return value
    if isinstance(value, list):
        return [resolve_locals(item, locals_, depth) for item in value]
    if isinstance(value, dict):
        return {key: resolve_locals(item, locals_, depth) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    whole = _WHOLE_LOCAL.match(value)
    if whole:
        try:
            return resolve_locals(_lookup(locals_, whole.group(1)), locals_, depth - 1)
        except KeyError:
            return value

    def substitute(match: re.Match[str]) -> str:
        try:
            found = resolve_locals(_lookup(locals_, match.group(1)), locals_, depth - 1)
        except KeyError:
            return match.group(0)
        return found if isinstance(found, str) else match.group(0)

    def literal(match: re.Match[str]) -> str:
        try:
            found = resolve_locals(_lookup(locals_, match.group(1)), locals_, depth - 1)
        except KeyError:
            return match.group(0)
        return json.dumps(found)

    # `${local.x}` in a template becomes its text; `local.x` inside a larger expression (`concat(local.a,
    # local.b)`) becomes an HCL literal of its value (JSON is valid HCL for strings, lists and maps).
    return _BARE_LOCAL.sub(literal, _EMBEDDED_LOCAL.sub(substitute, value))


# --- what a public module hands modules/internal ------------------------------------------------------------

INTERNAL_FOLDER = "internal"
_STRING = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class BusinessStatement:
    """One entry of `functions[*].statements` as a public module writes it (actions and ownership)."""

    sid: str
    actions: tuple[str, ...]
    ownership: str
    condition_variables: tuple[str, ...]
    resource_kinds: tuple[str, ...]  # "image", "snapshot", "instance", "*"...


# Resource types whose ARNs separate the type from the name with ":" (arn:...:rds:<region>:<account>:db:<name>,
# ...:autoscaling:<region>:<account>:autoScalingGroup:<id>:autoScalingGroupName/<name>), per service.
_COLON_KINDS = re.compile(r":rds:.*?:(db|cluster):|:autoscaling:.*?:(autoScalingGroup):")


def _resource_kinds(text: str) -> tuple[str, ...]:
    kinds = set(re.findall(r":([a-z-]+)/", text))
    kinds |= {kind for match in _COLON_KINDS.findall(text) for kind in match if kind}
    if re.search(r'(resources\s*=\s*|^)\[\s*"\*"', text):
        kinds.add("*")
    return tuple(sorted(kinds))


def business_statements(value: Any) -> list[BusinessStatement]:
    """The statements of one function: plain HCL lists are read as data; statements built by an expression
    (`concat(...)` of literal objects and conditionals) are read from its text, which python-hcl2 keeps."""
    if isinstance(value, list):
        return [
            BusinessStatement(
                sid=str(item.get("sid")),
                actions=tuple(str(a) for a in item.get("actions", [])),
                ownership=str(item.get("ownership", "none")),
                condition_variables=tuple(str(c.get("variable")) for c in item.get("conditions", []) or []),
                resource_kinds=_resource_kinds(json.dumps(item.get("resources", []))),
            )
            for item in value
            if isinstance(item, dict)
        ]
    # HCL objects (`sid = "..."`) and the JSON literals `resolve_locals` puts in for `local.x` (`"sid": "..."`).
    text = str(value).replace("\\", "")
    found = []
    for segment in re.split(r'(?=\{\s*"?sid"?\s*[=:])', text):
        sid = re.match(r'\{\s*"?sid"?\s*[=:]\s*"([A-Za-z0-9]+)"', segment)
        if not sid:
            continue
        actions = re.search(r'"?actions"?\s*[=:]\s*\[([^\]]*)\]', segment)
        ownership = re.search(r'"?ownership"?\s*[=:]\s*"([a-z]+)"', segment)
        resources = segment.split("resources", 1)[-1].split("ownership", 1)[0]
        found.append(
            BusinessStatement(
                sid=sid.group(1),
                actions=tuple(_STRING.findall(actions.group(1))) if actions else (),
                ownership=ownership.group(1) if ownership else "none",
                condition_variables=tuple(re.findall(r'"?variable"?\s*[=:]\s*"([^"]+)"', segment)),
                resource_kinds=_resource_kinds("resources" + resources),
            )
        )
    return found


@dataclass(frozen=True)
class ModuleFunction:
    module: str  # public module folder name
    key: str  # functions map key (planner, worker, ...)
    handler: str
    consumes_queue: bool
    scheduled: bool
    reads_ledger: bool
    statements: tuple[BusinessStatement, ...]


# `functions = { for key, fn in local.<map> : key => fn if ... }`: a module whose functions depend on its inputs
# (instance-scheduler: no planner for an action without a schedule) filters a literal map of every function it can
# deploy; the contract tests check all of them.
_FILTERED_LOCAL_MAP = re.compile(r"^\$\{\{\s*for\s+\w+\s*,\s*\w+\s+in\s+local\.([A-Za-z0-9_]+)\s*:")


def internal_call(module_dir: Path) -> dict[str, Any]:
    caller = load_module(module_dir)
    calls = calls_to(caller, INTERNAL_FOLDER)
    assert len(calls) == 1, f"{module_dir.name} must call modules/{INTERNAL_FOLDER} exactly once, found {len(calls)}"
    call = dict(calls[0])
    filtered = _FILTERED_LOCAL_MAP.match(str(call.get("functions", "")))
    if filtered and isinstance(caller.locals.get(filtered.group(1)), dict):
        call["functions"] = caller.locals[filtered.group(1)]
    return {key: resolve_locals(value, caller.locals) for key, value in call.items()}


def module_functions(module_dir: Path) -> list[ModuleFunction]:
    functions = internal_call(module_dir).get("functions")
    assert isinstance(functions, dict) and functions, f"{module_dir.name} passes no functions map to internal"
    return [
        ModuleFunction(
            module=module_dir.name,
            key=key,
            handler=str(body.get("handler")),
            consumes_queue=str(body.get("consumes_queue", False)).lower() == "true",
            scheduled="schedule" in body,
            reads_ledger=str(body.get("reads_ledger", False)).lower() == "true",
            statements=tuple(business_statements(body.get("statements", []))),
        )
        for key, body in functions.items()
    ]


def automation_modules(root: Path | None = None) -> list[Path]:
    """Every public module built on modules/internal (each is checked by the contract tests); a module of plain IAM
    (target-account-role) runs no function and has no environment contract."""
    return [
        path
        for path in public_modules(root)
        if path.name != INTERNAL_FOLDER and calls_to(load_module(path), INTERNAL_FOLDER)
    ]
