"""The dependency rule is enforced by import-linter, and a violation really fails it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "ports", "services", "adapters", "entrypoints", "settings")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts_hold_on_the_real_tree(tree_copy: Path) -> None:
    """The project as it is keeps every contract."""
    result = _lint(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("domain/leak.py", "import quart\n", "The core (domain, ports, services) imports no framework"),
        ("services/leak.py", "import adapters.jose.verifier\n", "Hexagon layers"),
        ("entrypoints/http/leak.py", "from adapters.redis import client\n", "Entrypoints never import adapters"),
        ("adapters/jose/leak.py", "import entrypoints.http.errors\n", "Adapters never import entrypoints"),
        ("adapters/openai/leak.py", "import adapters.anthropic\n", "Adapters never import each other"),
        ("adapters/kit/leak.py", "import openai\n", "The adapter kit imports no framework, driver or vendor SDK"),
        # The kit reaching into one vendor would couple every other vendor that uses the kit to it.
        ("adapters/kit/leak.py", "import adapters.gemini.errors\n", "Adapters never import each other"),
    ],
)
def test_a_violation_breaks_its_contract(tree_copy: Path, module: str, source: str, contract: str) -> None:
    """Adding a forbidden import makes lint-imports fail and name the contract."""
    (tree_copy / module).write_text(source)
    result = _lint(tree_copy)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout


def test_every_adapter_may_import_the_kit(tree_copy: Path) -> None:
    """The adapter kit is shared: any adapter package importing it keeps every contract."""
    (tree_copy / "adapters/jose/kit_user.py").write_text("from adapters.kit.errors import safe_reason\n")
    result = _lint(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
