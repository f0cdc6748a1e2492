"""Hooks: resolved when a spec is read (the Fabric check it is given), and as the runner runs them."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from deployer.core.errors import ArtifactError, SpecError
from deployer.core.results import Step
from deployer.core.runner import HookCommand
from deployer.operations.reading import check_fabric_task
from deployer.spec.hooks import hook_commands
from deployer.spec.load import load_spec
from tests.spec.support import BASE, FULL, VALID, write_spec


def test_hook_commands_of_a_directory_artifact() -> None:
    commands = hook_commands(load_spec(FULL, check_task=check_fabric_task))
    assert commands == {
        Step.STOP: HookCommand(Step.STOP, "systemctl stop billing || true", timeout=90.0, interval=2.0),
        # ./bin/preflight is a file in release/: a script, run from the release
        Step.BEFORE_INSTALL: HookCommand(
            Step.BEFORE_INSTALL, "bin/preflight --strict", timeout=90.0, interval=2.0, script=True
        ),
        Step.AFTER_INSTALL: HookCommand(
            Step.AFTER_INSTALL,
            f"{VALID / 'fabfile.py'}:migrate",
            timeout=600.0,
            interval=2.0,
            fabric=f"{VALID / 'fabfile.py'}:migrate",
            fabric_args={"dry_run": False},
        ),
        Step.START: HookCommand(
            Step.START, "systemctl start billing", timeout=45.0, interval=2.0
        ),  # <<: merged
        Step.VALIDATE: HookCommand(
            Step.VALIDATE, "curl -fsS localhost:9000/health", timeout=90.0, retries=5, interval=0.5
        ),
    }


def make_tarball(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_hook_commands_of_a_tarball_artifact(tmp_path: Path) -> None:
    make_tarball(tmp_path / "app.tar.gz", {"./scripts/migrate.sh": b"#!/bin/sh\n", "bin/run": b""})
    path = write_spec(
        tmp_path,
        """\
        app: shop
        version: "1.0"
        fleet: {hosts: [{name: a, datacenter: east}]}
        artifact: app.tar.gz
        target: /srv/shop
        hooks:
          before_install: scripts/migrate.sh --fast
          after_install: ./bin/run
          start: scripts/absent.sh
          validate: ../bin/run
        """,
    )
    commands = hook_commands(load_spec(path, check_task=check_fabric_task))
    assert (commands[Step.BEFORE_INSTALL].command, commands[Step.BEFORE_INSTALL].script) == (
        "scripts/migrate.sh --fast",
        True,
    )
    assert (commands[Step.AFTER_INSTALL].command, commands[Step.AFTER_INSTALL].script) == ("bin/run", True)
    assert (commands[Step.START].command, commands[Step.START].script) == ("scripts/absent.sh", False)
    assert (commands[Step.VALIDATE].command, commands[Step.VALIDATE].script) == ("../bin/run", False)


def test_hook_commands_need_the_artifact_only_to_tell_scripts(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BASE + "hooks: {start: systemctl start shop}\n")
    assert (
        hook_commands(load_spec(path, check_task=check_fabric_task))[Step.START].command
        == "systemctl start shop"
    )
    path = write_spec(tmp_path, BASE + "hooks: {start: bin/start}\n")
    with pytest.raises(ArtifactError, match="does not exist"):
        hook_commands(load_spec(path, check_task=check_fabric_task))
    (tmp_path / "build").write_text("not a directory")
    with pytest.raises(SpecError, match=r"spec.yaml:4: artifact: .* is neither a directory nor a .tar.gz"):
        load_spec(path, check_task=check_fabric_task)


# --- the Fabric task check is the caller's ----------------------------------------------------

FABRIC_HOOK = BASE + "hooks:\n  after_install: {fabric: fabfile.py:migrate, args: {dry_run: true}}\n"
# Run only if something loads it: the tests below pass checks that never do.
FABFILE = """\
from pathlib import Path
Path(__file__).with_name("ran").touch()

def migrate(c, dry_run):
    pass
"""


@pytest.mark.parametrize("problem", [None, "no Fabric task migrate in fabfile.py"])
def test_load_spec_asks_the_check_it_is_given(tmp_path: Path, problem: str | None) -> None:
    (tmp_path / "fabfile.py").write_text(FABFILE)
    path = write_spec(tmp_path, FABRIC_HOOK)
    asked: list[tuple[str, dict[str, object]]] = []

    def check(reference: str, args: object) -> str | None:
        assert isinstance(args, dict)
        asked.append((reference, dict(args)))
        return problem

    if problem is None:
        hook = load_spec(path, check_task=check).hooks[Step.AFTER_INSTALL]
        assert hook.fabric == f"{tmp_path / 'fabfile.py'}:migrate"
    else:
        with pytest.raises(SpecError) as caught:
            load_spec(path, check_task=check)
        (issue,) = caught.value.issues
        assert (issue.line, issue.field, issue.message) == (7, "hooks.after_install.fabric", problem)
    assert asked == [(f"{tmp_path / 'fabfile.py'}:migrate", {"dry_run": True})]
    assert not (tmp_path / "ran").exists()  # the fabfile was never run


def test_reading_a_spec_imports_no_fabric(tmp_path: Path) -> None:
    (tmp_path / "fabfile.py").write_text(FABFILE)
    path = write_spec(tmp_path, FABRIC_HOOK)
    probe = (
        "import sys\n"
        "from deployer.spec.load import load_fleet, load_spec\n"
        f"spec = load_spec({str(path)!r}, check_task=lambda reference, args: None)\n"
        "load_fleet(spec)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fabric', 'invoke', 'paramiko')"
        " or m == 'deployer.hosts.fabric_hooks'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert not (tmp_path / "ran").exists()


def test_check_fabric_task_loads_the_task(tmp_path: Path) -> None:
    (tmp_path / "fabfile.py").write_text(FABFILE)
    load_spec(write_spec(tmp_path, FABRIC_HOOK), check_task=check_fabric_task)
    assert (tmp_path / "ran").exists()  # what the CLI passes: the fabfile runs here, not on a host
