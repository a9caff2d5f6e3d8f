"""Shared harness for the Terraform-driven test tiers (tier 2: validate/test, tier 3: apply on moto).

Nothing here hard-codes where Terraform or the provider mirror live: both are discovered, and a
missing piece raises `TerraformUnavailable` with a reason the caller turns into a loud skip (or a
failure on CI).
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

PROVIDER_SOURCE = "registry.terraform.io/hashicorp/aws"
PACKAGE_FILE = Path("modules/internal/package.tf")
STAGED_TREES = ("modules", "examples", "lambda_src")
# A fixed timestamp makes the zip (and so the Lambda code hash) depend on file contents only.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Local state, caches and lock files are never part of the staged copy: the stand-in package file
# changes the provider set (no archive provider), so a lock file written against the real
# configuration would not describe the staged one.
_STAGE_IGNORE = shutil.ignore_patterns(
    ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "__pycache__", "*.pyc", "*.tfplan"
)


class TerraformUnavailable(Exception):
    """Terraform or the provider mirror cannot be found; `reason` says which and where we looked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TerraformCommandError(subprocess.CalledProcessError):
    """A terraform command exited non-zero; the message carries its output so pytest shows it."""

    def __str__(self) -> str:
        return (
            f"`{' '.join(map(str, self.cmd))}` exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def find_terraform() -> str | None:
    override = os.environ.get("TERRAFORM")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    return shutil.which("terraform")


def _os_arch() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def is_provider_mirror(directory: Path) -> bool:
    """True when `directory` holds an unpacked hashicorp/aws build for this platform."""
    provider_dir = directory / PROVIDER_SOURCE
    if not provider_dir.is_dir():
        return False
    os_arch = _os_arch()
    return any(
        any(platform_dir.glob("terraform-provider-aws*"))
        for platform_dir in provider_dir.glob(f"*/{os_arch}")
        if platform_dir.is_dir()
    )


def _mirror_candidates() -> Iterator[Path]:
    override = os.environ.get("TF_PLUGIN_MIRROR")
    if override:
        yield Path(override)
    home = Path.home()
    bases: list[Path] = [home / ".terraform.d" / "plugins", home / ".local" / "share" / "terraform" / "plugins"]
    for pattern_root, pattern in (
        (Path("/opt"), "*"),
        (Path("/usr/share"), "terraform*"),
        (Path("/usr/local/share"), "terraform*"),
    ):
        if pattern_root.is_dir():
            bases.extend(sorted(p for p in pattern_root.glob(pattern) if p.is_dir()))
    for base in bases:
        yield base
        # Mirrors are often one level down (e.g. /opt/terraform/plugins).
        if base.is_dir():
            yield from sorted(p for p in base.iterdir() if p.is_dir() and p.name != "registry.terraform.io")


def find_provider_mirror() -> Path | None:
    for candidate in _mirror_candidates():
        try:
            if is_provider_mirror(candidate):
                return candidate.resolve()
        except OSError:
            continue
    return None


def require_terraform() -> tuple[str, Path]:
    terraform = find_terraform()
    if terraform is None:
        raise TerraformUnavailable(
            "no `terraform` binary on PATH (or $TERRAFORM); install Terraform >= 1.7 to run this tier"
        )
    mirror = find_provider_mirror()
    if mirror is None:
        raise TerraformUnavailable(
            f"no filesystem mirror holding {PROVIDER_SOURCE} for {_os_arch()} found; set $TF_PLUGIN_MIRROR "
            "(searched $TF_PLUGIN_MIRROR, /opt/*, /usr/share/terraform*, /usr/local/share/terraform*, "
            "~/.terraform.d/plugins, ~/.local/share/terraform/plugins)"
        )
    return terraform, mirror


def _hcl_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_cli_config(directory: Path, mirror: Path) -> Path:
    """Write a CLI config that installs hashicorp/aws from `mirror` only, never from the network.

    A plugin cache next to it lets every `terraform init` of a session reuse one provider copy.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cache = directory / "plugin-cache"
    cache.mkdir(exist_ok=True)
    config = directory / "terraform.rc"
    config.write_text(
        f"plugin_cache_dir = {_hcl_string(str(cache))}\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {_hcl_string(str(mirror))}\n"
        f'    include = ["{PROVIDER_SOURCE}"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/*/*"]\n'
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    return config


def _package_sources(source_root: Path) -> Iterable[Path]:
    for path in sorted(source_root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def build_package_zip(dest_dir: Path) -> Path:
    """Zip `lambda_src` the way `archive_file` would (paths relative to it), byte-for-byte reproducibly."""
    source_root = repo_root() / "lambda_src"
    if not source_root.is_dir():
        raise FileNotFoundError(f"{source_root} does not exist: nothing to package")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / "lambda_src.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _package_sources(source_root):
            info = zipfile.ZipInfo(path.relative_to(source_root).as_posix(), date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return target


def base64_sha256(path: Path) -> str:
    """The same value as Terraform's `filebase64sha256()` and archive_file's `output_base64sha256`."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode("ascii")


def package_stand_in(zip_path: Path) -> str:
    """HCL replacing modules/internal/package.tf: same locals, no archive provider."""
    return (
        "# Test stand-in written by tests/support/terraform_env.py: the archive provider is not available\n"
        "# offline, so the package is built by the harness and only its path and hash are passed on.\n"
        "locals {\n"
        f"  package_file = {_hcl_string(str(zip_path.resolve()))}\n"
        f"  package_hash = {_hcl_string(base64_sha256(zip_path))}\n"
        "}\n"
    )


def staged_copy(dest: Path) -> Path:
    """Copy modules/, examples/ and lambda_src/ into `dest` with the packaging file swapped out.

    Returns `dest`, the root of the staged tree (relative module sources keep working).
    """
    root = repo_root()
    dest.mkdir(parents=True, exist_ok=True)
    for name in STAGED_TREES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=_STAGE_IGNORE, dirs_exist_ok=True)
    package_tf = dest / PACKAGE_FILE
    if not package_tf.parent.is_dir():
        raise FileNotFoundError(f"{root / PACKAGE_FILE.parent} does not exist: nothing to stage")
    zip_path = build_package_zip(dest / ".build")
    package_tf.write_text(package_stand_in(zip_path), encoding="utf-8")
    return dest


def terraform_env(cli_config: Path, data_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "TF_INPUT": "0",
        }
    )
    if data_dir is not None:
        env["TF_DATA_DIR"] = str(data_dir)
    return env


def run_terraform(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: int = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `terraform <args>` in `cwd`; raise `TerraformCommandError` (with output) on failure if `check`."""
    terraform = find_terraform()
    if terraform is None:
        raise TerraformUnavailable("no `terraform` binary on PATH (or $TERRAFORM)")
    command = [terraform, *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise TerraformCommandError(result.returncode, command, result.stdout, result.stderr)
    return result
