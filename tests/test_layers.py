"""The package's shape: its layers (import-linter contracts in pyproject.toml), and small modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE_LINE_LIMIT = 600


def test_no_module_imports_from_a_layer_above_it() -> None:
    """The contracts in pyproject.toml's [tool.importlinter], as docs/architecture.md draws them."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_every_module_of_the_package_and_the_tui_is_small() -> None:
    too_long = {
        str(path.relative_to(REPO)): lines
        for folder in ("deployer", "tui")
        for path in sorted((REPO / folder).rglob("*.py"))
        if "migrations" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MODULE_LINE_LIMIT
    }
    assert too_long == {}, f"modules over {MODULE_LINE_LIMIT} lines: split them along their jobs"
