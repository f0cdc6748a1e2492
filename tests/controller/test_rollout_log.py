"""The loop records through the RolloutLog protocol, so it loads no database library."""

from __future__ import annotations

import subprocess
import sys

import pytest

IMPORT_TIMEOUT = 60.0  # seconds for a fresh interpreter to import the module


@pytest.mark.parametrize(
    "module", ["deployer.rollout.controller", "deployer.rollout.probing", "deployer.core.rollout_log"]
)
def test_the_loop_imports_no_sqlalchemy(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=IMPORT_TIMEOUT, check=True
    )
    assert run.stdout.strip() == "[]", run.stdout
