"""Peer benchmark: LiteLLM's proxy in an environment of its own, outside the project's lock.

``.tools/peers/litellm`` is created with the project's uv (``.tools/bin/uv``, which ``make`` bootstraps) and holds
``litellm[proxy]`` at the pinned version, from PyPI, with bytecode compiled (as ``make env`` does for the project: the
proxy re-imports an optional OpenTelemetry module on every request when ``opentelemetry-sdk`` is absent, and without
``.pyc`` files each attempt compiles the source again, a third of its CPU). A second run finds the stamp of a complete
install of the pinned version and reuses it; a changed pin replaces the environment. Pinned exactly, never a range:
a proxy release was once published compromised (1.107.0), and the figures must name the version they measured.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["LITELLM_VERSION", "ensure_litellm", "installed_version"]

LITELLM_VERSION = "1.108.7"
ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = ROOT / ".tools" / "peers" / "litellm"


def installed_version(env_dir: Path = ENV_DIR) -> str | None:
    """The litellm version installed in ``env_dir``, or None."""
    python = env_dir / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_litellm(version: str = LITELLM_VERSION, env_dir: Path = ENV_DIR) -> Path:
    """The ``litellm`` proxy script of an environment holding ``litellm[proxy]==version`` (installed if needed)."""
    script = env_dir / "bin" / "litellm"
    stamp = env_dir / f".bench-peers-{version}"
    if stamp.exists() and script.exists() and installed_version(env_dir) == version:
        return script
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.exists():
        raise SystemExit(f"{uv} is missing: run `make env` first (it bootstraps uv)")
    print(f"installing litellm[proxy]=={version} into {env_dir} ...", flush=True)
    subprocess.run([str(uv), "venv", "--quiet", "--clear", "--python", sys.executable, str(env_dir)], check=True)
    subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(env_dir / "bin" / "python"),
            f"litellm[proxy]=={version}",
        ],
        check=True,
    )
    if installed_version(env_dir) != version:
        raise SystemExit(f"litellm {version} did not install into {env_dir}")
    stamp.touch()
    return script
