"""Record what ansible-core says of this corpus: run by hand, never by the tests.

    python3 tests/inventories/record.py /tmp/ansible-venv/bin

ANSIBLE_BIN holds ``ansible`` and ``ansible-inventory`` (ansible-core 2.19, the last
release series that runs on Python 3.11). For each case folder it writes
``expected.json`` (``ansible-inventory -i INVENTORY --list``) or, when Ansible refuses
the inventory, ``expected-error.txt`` (its message); for ``limit/`` it writes
``patterns.json``: each pattern of ``patterns.txt`` with the hosts
``ansible all -i inventory.ini --list-hosts --limit PATTERN`` lists (sorted; none when
Ansible says the pattern leaves no host).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# Fail on an inventory Ansible cannot parse, instead of its default warning and empty inventory.
ENVIRONMENT = {
    **os.environ,
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
    "ANSIBLE_DEPRECATION_WARNINGS": "false",
    "PYTHONWARNINGS": "ignore",
}


def inventory_of(case: Path) -> Path:
    (found,) = [path for path in case.iterdir() if path.name.startswith("inventory")]
    return found


def record_case(bin_dir: Path, case: Path) -> None:
    inventory = inventory_of(case)
    command = [str(bin_dir / "ansible-inventory"), "-i", inventory.name, "--list"]
    done = subprocess.run(command, cwd=case, env=ENVIRONMENT, capture_output=True, text=True, check=False)
    for stale in ("expected.json", "expected-error.txt"):
        (case / stale).unlink(missing_ok=True)
    if done.returncode == 0:
        listed = json.loads(done.stdout)
        listed["_meta"].pop("profile", None)
        (case / "expected.json").write_text(json.dumps(listed, indent=2, sort_keys=True) + "\n")
    else:
        reason = re.search(r"Failed to parse inventory: (.*)", done.stderr)
        said = reason.group(1) if reason else done.stderr.strip()
        (case / "expected-error.txt").write_text(said + "\n")


def record_limit(bin_dir: Path, folder: Path) -> None:
    table = {}
    for pattern in (folder / "patterns.txt").read_text().splitlines():
        command = [str(bin_dir / "ansible"), "all", "-i", "inventory.ini", "--list-hosts", "--limit", pattern]
        done = subprocess.run(
            command, cwd=folder, env=ENVIRONMENT, capture_output=True, text=True, check=False
        )
        lines = done.stdout.splitlines()
        hosts = [line.strip() for line in lines[1:]] if done.returncode == 0 else []
        table[pattern] = sorted(hosts)
    (folder / "patterns.json").write_text(json.dumps(table, indent=2) + "\n")


def main(bin_dir: Path) -> None:
    for case in sorted(HERE.iterdir()):
        if case.is_dir() and case.name == "limit":
            record_limit(bin_dir, case)
        elif case.is_dir() and not case.name.startswith(("_", ".")):
            record_case(bin_dir, case)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
