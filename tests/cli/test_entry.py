"""What ``deploy`` sets up for itself before any command runs."""

from __future__ import annotations

import subprocess
import sys


def test_deploy_raises_its_open_file_limit_to_the_hard_one() -> None:
    """A shell's soft limit (often 1,024 files) is no limit on how many hosts are in flight."""
    program = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "from deployer.hosts.file_limits import raise_open_file_limit\n"
        "raise_open_file_limit()\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "print(soft == min(hard, 65536), soft > 256)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "True"]
