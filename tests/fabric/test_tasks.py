"""Loading Fabric tasks, and the shell text their commands travel in; no hosts needed."""

from __future__ import annotations

import copy
import subprocess
import time
from pathlib import Path

import pytest

from deployer.core.results import Step
from deployer.core.targets import Host
from deployer.hosts.fabric_connection import CapturedOutput, bounded_command, exported
from deployer.hosts.fabric_hooks import hook_variables, task_problem
from deployer.hosts.fabric_tasks import load_task, task_label
from tests.ssh.support import hook, job

FABFILE = """
from fabric import task

HELPER = 1

@task
def migrate(c, dry_run=False):
    return ("migrate", c, dry_run)

def plain(c, note):
    return ("plain", c, note)

class db:
    @staticmethod
    def seed(c):
        return ("seed", c)
"""


@pytest.fixture
def fabfile(tmp_path: Path) -> Path:
    path = tmp_path / "fabfile.py"
    path.write_text(FABFILE)
    return path


def test_a_task_s_body_and_a_plain_function_are_called_with_the_connection(fabfile: Path) -> None:
    assert load_task(f"{fabfile}:migrate")("c", dry_run=True) == ("migrate", "c", True)
    assert load_task(f"{fabfile}:plain")("c", note="n") == ("plain", "c", "n")
    assert load_task(f"{fabfile}:db.seed")("c") == ("seed", "c")
    assert task_problem(f"{fabfile}:migrate", {"dry_run": False}) is None
    assert task_label(f"{fabfile}:migrate") == "fabfile.py:migrate"


@pytest.mark.parametrize(
    ("text", "task", "args", "problem"),
    [
        ("def migrate(c):\n    pass\n", "migrat", {}, "no Fabric task migrat in {path} (its tasks: migrate)"),
        ("def broken(:\n", "migrate", {}, "cannot load Fabric task migrate: {path} line 1: invalid syntax"),
        (
            "import no_such_module_here\n",
            "migrate",
            {},
            "cannot load Fabric task migrate: importing {path} raised "
            "ModuleNotFoundError: No module named 'no_such_module_here'",
        ),
        (
            "raise RuntimeError('needs\\nsecrets')\n",
            "migrate",
            {},
            "cannot load Fabric task migrate: importing {path} raised RuntimeError: needs secrets",
        ),
        (
            "migrate = 3\n",
            "migrate",
            {},
            "migrate in {path} is not a Fabric task or a function (it is a int)",
        ),
        (
            "def migrate(c, dry_run=False):\n    pass\n",
            "migrate",
            {"dry_runn": True},
            "Fabric task migrate in {path} cannot be called with args {{'dry_runn': True}}: "
            "got an unexpected keyword argument 'dry_runn'",
        ),
    ],
)
def test_what_keeps_a_task_from_loading_is_said_in_one_line(
    tmp_path: Path, text: str, task: str, args: dict[str, object], problem: str
) -> None:
    path = tmp_path / "fabfile.py"
    path.write_text(text)
    assert task_problem(f"{path}:{task}", args) == problem.format(path=path)


def test_a_missing_fabfile_is_a_problem_too(tmp_path: Path) -> None:
    problem = task_problem(f"{tmp_path}/nope.py:migrate", {})
    assert (
        problem
        == f"cannot load Fabric task migrate: cannot read {tmp_path}/nope.py: No such file or directory"
    )


def test_a_fabfile_is_loaded_again_only_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "fabfile.py"
    path.write_text("def t(c):\n    return 1\n")
    first = load_task(f"{path}:t")
    assert load_task(f"{path}:t") is first
    path.write_text("def t(c):\n    return 2\n")
    assert load_task(f"{path}:t")("c") == 2


def sh(command: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout, check=False)


def test_exported_values_reach_the_shell_as_data(tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    value = f"1.0'; touch {canary}; echo '$(touch {canary}) `x` \"q\" \\"
    done = sh(exported({"DEPLOY_VERSION": value, "B": ""}) + 'printf "%s|%s" "$DEPLOY_VERSION" "$B"')
    assert done.stdout == f"{value}|"
    assert not canary.exists()
    with pytest.raises(ValueError, match="cannot be the name"):
        exported({"A B": "x"})


def test_a_bounded_command_is_killed_with_its_children_when_its_time_is_up() -> None:
    started = time.monotonic()
    done = sh(bounded_command("sleep 30 & sleep 30; echo never", 0.3), timeout=15)
    assert done.returncode == 124 and "never" not in done.stdout
    assert time.monotonic() - started < 5
    ok = sh(bounded_command('echo "it\'s $((1 + 1))"', 5))
    assert (ok.returncode, ok.stdout) == (0, "it's 2\n")


def test_captured_output_keeps_the_tail_and_survives_copying() -> None:
    output = CapturedOutput()
    assert copy.copy(output) is output  # invoke copies config values it merges
    output.write("a" * 200_000)
    output.write("end\n")
    text = output.text()
    assert text.startswith("[... ") and text.endswith("aend\n") and len(text) < 70_000


def test_hook_variables_take_what_the_host_said() -> None:
    pushed = job("~/app", "2.0", None, hook(Step.START, "true"))
    told = {"DEPLOY_PREVIOUS_VERSION": "1.0", "DEPLOY_RELEASE_DIR": "/home/u/app/releases/2.0"}
    variables = hook_variables(pushed, Host("web1", "10.0.0.1", "iad"), told)
    assert variables.as_env() == {
        "DEPLOY_APP": "shop",
        "DEPLOY_VERSION": "2.0",
        "DEPLOY_PREVIOUS_VERSION": "1.0",
        "DEPLOY_ENVIRONMENT": "prod",
        "DEPLOY_HOST": "web1",
        "DEPLOY_DATACENTER": "iad",
        "DEPLOY_ID": pushed.deployment_id,
        "DEPLOY_RELEASE_DIR": "/home/u/app/releases/2.0",
    }
    assert variables.as_config()["id"] == pushed.deployment_id
