"""Tier 1: every input validation says which field is wrong and shows the offending value.

Project rule: bad input gets a clear error naming the field and the value. Terraform renders a
validation's error_message only when its condition fails, so a message that does not interpolate
its variable can only repeat the rule, never the value the user must fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.support.hcl_tree import load_module, public_modules
from tests.support.terraform_env import repo_root

ROOT = repo_root()
INTERNAL = ROOT / "modules" / "internal"
CHECKED_MODULES = sorted({*public_modules(), INTERNAL})
_VAR_REFERENCE = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
_REGEX_LITERAL = re.compile(r'regex\(\s*("(?:[^"\\]|\\.)*")')


def _validations(body: dict[str, Any]) -> list[dict[str, Any]]:
    validations = body.get("validation", [])
    return validations if isinstance(validations, list) else [validations]


def interpolations(template: str) -> list[str]:
    """The expressions inside the `${...}` sequences of a template, string literals in them skipped over."""
    found: list[str] = []
    start = template.find("${")
    while start != -1:
        depth, index, in_string = 1, start + 2, False
        while index < len(template) and depth:
            char = template[index]
            if in_string:
                if char == "\\":
                    index += 1
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            index += 1
        found.append(template[start + 2 : index - 1])
        start = template.find("${", index)
    return found


def message_problems(variable: str, validation: dict[str, Any]) -> list[str]:
    """Why one validation's error_message would not show the offending value (empty when it does)."""
    message = str(validation.get("error_message", ""))
    condition = str(validation.get("condition", ""))
    expressions = interpolations(message)
    referenced = {name for expression in expressions for name in _VAR_REFERENCE.findall(expression)}
    problems = []
    if variable not in referenced:
        problems.append(f"does not interpolate var.{variable}: {message!r}")
    if others := sorted(referenced - {variable}):
        # Before Terraform 1.9 a validation may only refer to its own variable; the modules allow 1.5.
        problems.append(f"refers to other variables {others}: {message!r}")
    # Terraform evaluates the message even when a null value made the condition fail or error; a message
    # that fails on null ("${var.x}", a for over var.x) adds an evaluation error instead of the value.
    unsafe = [
        expression
        for expression in expressions
        if expression.strip() != f"jsonencode(var.{variable})" and f"var.{variable} == null" not in expression
    ]
    if unsafe:
        problems.append(f"fails on null var.{variable}; use jsonencode(var.{variable}) or test for null: {unsafe}")
    if drifted := [p for p in _REGEX_LITERAL.findall(message) if p not in condition]:
        # The message repeats the condition's pattern to list the bad entries; a different one lists the wrong ones.
        problems.append(f"filters with regex {drifted} that the condition does not use: {condition!r}")
    return problems


def _cases() -> list[tuple[Path, str, int, dict[str, Any]]]:
    return [
        (module_dir, name, index, validation)
        for module_dir in CHECKED_MODULES
        for name, body in load_module(module_dir).variables.items()
        for index, validation in enumerate(_validations(body))
    ]


CASES = _cases()


def test_checked_modules_have_validations() -> None:
    """Guard against a vacuous pass: the modules this file covers exist and declare validations."""
    covered = {module_dir.name for module_dir, *_ in CASES}
    expected = {module_dir.name for module_dir in CHECKED_MODULES}
    assert expected <= covered, f"modules without validations: {sorted(expected - covered)}"


@pytest.mark.parametrize(
    ("module_dir", "variable", "index", "validation"),
    CASES,
    ids=[f"{module_dir.name}/{name}[{index}]" for module_dir, name, index, _ in CASES],
)
def test_error_message_shows_the_value(module_dir: Path, variable: str, index: int, validation: dict[str, Any]) -> None:
    problems = message_problems(variable, validation)
    assert not problems, f"{module_dir.relative_to(ROOT)} variable {variable} validation {index}: " + "; ".join(
        problems
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("plain text", []),
        ("got ${jsonencode(var.a)}.", ["jsonencode(var.a)"]),
        (
            'bad: ${jsonencode({ for k in var.m : k => k if !can(regex("^x{2}}$", k)) })}; ${var.b}',
            ['jsonencode({ for k in var.m : k => k if !can(regex("^x{2}}$", k)) })', "var.b"],
        ),
    ],
)
def test_interpolations_balances_braces_and_skips_strings(message: str, expected: list[str]) -> None:
    assert interpolations(message) == expected


@pytest.mark.parametrize(
    ("message", "condition", "complaint"),
    [
        ("x must be set.", "var.x != null", "does not interpolate var.x"),
        ("x is wrong; got ${var.x}.", "var.x != null", "fails on null"),
        ('bad: ${jsonencode([for v in var.x : v if v != ""])}.', "var.x != null", "fails on null"),
        ("x must differ from y; got ${jsonencode([var.x, var.y])}.", "var.x != null", "other variables ['y']"),
        (
            'bad: ${jsonencode(var.x == null ? null : [for v in var.x : v if !can(regex("^b$", v))])}.',
            'can(regex("^a$", var.x))',
            "regex",
        ),
    ],
)
def test_message_problems_catches_each_mistake(message: str, condition: str, complaint: str) -> None:
    problems = message_problems("x", {"condition": condition, "error_message": message})
    assert any(complaint in problem for problem in problems), problems


def test_message_problems_accepts_a_good_message() -> None:
    validation = {
        "condition": 'alltrue([for v in var.x : can(regex("^a$", v))])',
        "error_message": (
            "x entries must be a; invalid: "
            '${jsonencode(var.x == null ? null : [for v in var.x : v if !can(regex("^a$", v))])}.'
        ),
    }
    assert message_problems("x", validation) == []
