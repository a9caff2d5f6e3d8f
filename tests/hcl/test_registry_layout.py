"""Tier 1: the repository has the layout a module registry and an external caller expect.

A caller outside this repository reaches a module by its git address with `//modules/<name>` and a `?ref=` tag;
a relative path in a README would only work inside a clone. The examples are the opposite: they apply from a
clone, so they use relative paths and follow the working tree rather than a tag.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support.hcl_tree import load_module, public_modules, terraform_dirs
from tests.support.terraform_env import repo_root

ROOT = repo_root()
STANDARD_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
ADDRESS = re.compile(
    r"^git::https://github\.com/<org>/terraform-aws-ops-automation\.git//(?P<path>modules/[a-z0-9/-]+)"
    r"\?ref=v(?P<version>\d+\.\d+\.\d+)$"
)
SOURCE_LINE = re.compile(r'^\s*source\s*=\s*"(?P<source>[^"]+)"', re.MULTILINE)
FENCED_HCL = re.compile(r"^```hcl\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
RELEASE_HEADING = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\]", re.MULTILINE)
PUBLIC = public_modules()
DOCUMENTS = sorted({*(module / "README.md" for module in PUBLIC), ROOT / "README.md", ROOT / "CHANGELOG.md"})
EXAMPLES = [d for d in terraform_dirs() if d.relative_to(ROOT).parts[0] == "examples" and "tests" not in d.parts]


def documented_release() -> str:
    releases = RELEASE_HEADING.findall((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    assert releases, "CHANGELOG.md names no release (a `## [x.y.z]` heading)"
    return str(releases[0])


def usage_sources(readme: Path) -> list[str]:
    """The module sources of a document's HCL blocks (the usage a reader copies)."""
    text = readme.read_text(encoding="utf-8")
    return [line.group("source") for block in FENCED_HCL.finditer(text) for line in SOURCE_LINE.finditer(block["body"])]


def test_every_public_module_has_the_standard_files() -> None:
    assert len(PUBLIC) >= 6, f"public modules found: {[p.name for p in PUBLIC]}"
    for module in PUBLIC:
        missing = [name for name in STANDARD_FILES if not (module / name).is_file()]
        assert not missing, f"modules/{module.name} lacks {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_usage_blocks_use_the_external_address_at_a_released_tag(document: Path) -> None:
    release = documented_release()
    for source in usage_sources(document):
        address = ADDRESS.match(source)
        assert address, f"{document.relative_to(ROOT)}: usage source {source!r} is not //modules/<name>?ref=vX.Y.Z"
        assert address["version"] == release, (
            f"{document.relative_to(ROOT)}: {source!r} pins v{address['version']}, CHANGELOG.md's newest is v{release}"
        )
        target = ROOT / address["path"]
        assert (target / "main.tf").is_file(), f"{document.relative_to(ROOT)}: {source!r} names no module"


def test_each_public_module_readme_shows_its_own_address() -> None:
    for module in PUBLIC:
        matches = (ADDRESS.match(source) for source in usage_sources(module / "README.md"))
        paths = {match["path"] for match in matches if match}
        assert f"modules/{module.name}" in paths, f"modules/{module.name}/README.md has no usage block for itself"


@pytest.mark.parametrize("example", EXAMPLES, ids=[str(e.relative_to(ROOT)) for e in EXAMPLES])
def test_examples_use_relative_module_paths_inside_the_repository(example: Path) -> None:
    calls = load_module(example).module_calls
    assert calls, f"{example.relative_to(ROOT)} calls no module"
    for name, call in calls.items():
        source = call["source"]
        assert source.startswith("../"), f"{example.relative_to(ROOT)}: module {name} source {source!r} is not relative"
        target = (example / source).resolve()
        assert target.is_relative_to(ROOT / "modules") and (target / "main.tf").is_file(), (
            f"{example.relative_to(ROOT)}: module {name} source {source!r} is not a module of this repository"
        )


def test_address_pattern_rejects_what_an_external_caller_cannot_use() -> None:
    good = "git::https://github.com/<org>/terraform-aws-ops-automation.git//modules/ami-backup?ref=v0.1.0"
    assert ADDRESS.match(good)
    for bad in (
        "../../modules/ami-backup",
        "<this repository>//modules/ami-backup",
        good.replace("?ref=v0.1.0", "?ref=v0.x"),
        good.replace("?ref=v0.1.0", ""),
        good.replace("//modules", "/modules"),
    ):
        assert not ADDRESS.match(bad), bad
