"""Shell completion as a shell asks for it: apps, environments, IDs and hosts from the store, specs.

Each case runs the installed ``deploy`` the way click's bash script does
(``_DEPLOY_COMPLETE=bash_complete`` with ``COMP_WORDS`` and ``COMP_CWORD``) against a
store holding tests/cli/test_query.py's history, and reads the offered values.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_query import CLI_TIMEOUT, DEPLOY, _record_history


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _record_history(f"sqlite:///{tmp_path_factory.mktemp('completion') / 'state.db'}").url


def offered(line: str, *, db: str, cwd: Path | None = None, shell: str = "bash") -> list[str]:
    """The values ``deploy`` offers for the last word of ``line`` (a trailing space: a new word)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    env = {
        **os.environ,
        "_DEPLOY_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": " ".join(words),
        "COMP_CWORD": str(len(words) - 1),
        "DEPLOYER_DB": db,
    }
    done = subprocess.run(
        [DEPLOY], env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return [row.split(",", 1)[1] for row in done.stdout.splitlines() if row]


def test_deployment_ids_newest_first(store_url: str) -> None:
    ids = offered("deploy status ", db=store_url)
    assert len(ids) == 4 and ids == sorted(ids, reverse=True)
    assert all(value.startswith("d-2026030") for value in ids)
    assert offered(f"deploy abort {ids[0][:-2]}", db=store_url) == [ids[0]]


def test_apps_environments_and_hosts(store_url: str) -> None:
    assert offered("deploy history --app ", db=store_url) == ["webapp"]
    assert offered("deploy versions --app webapp --env ", db=store_url) == ["production", "staging"]
    assert offered("deploy versions --app webapp --env st", db=store_url) == ["staging"]
    assert offered("deploy history --app webapp --env staging --host ", db=store_url) == ["s1", "s2"]
    hosts = offered("deploy history --app webapp --env production --host ", db=store_url)
    assert hosts == ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert offered("deploy history --app nope --host ", db=store_url) == []


def test_spec_paths_and_their_environments(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "shop.yaml").write_text("app: shop\nenvironment: prod\nenvironments: {qa: {}, stage: {}}\n")
    (tmp_path / "notes.txt").write_text("not a spec\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "web.yml").write_text("app: web\n")
    assert offered("deploy push ", db=store_url, cwd=tmp_path) == ["shop.yaml", "specs/"]
    assert offered("deploy plan specs/", db=store_url, cwd=tmp_path) == ["specs/web.yml"]
    assert offered("deploy push shop.yaml --env ", db=store_url, cwd=tmp_path) == ["prod", "qa", "stage"]
    assert offered("deploy plan specs/web.yml --env ", db=store_url, cwd=tmp_path) == ["production"]


def test_command_names_with_their_help(store_url: str) -> None:
    assert offered("deploy st", db=store_url) == ["status"]
    assert offered("deploy re", db=store_url) == ["reconcile", "restart", "resume"]
    # zsh shows each value's help: a command's one line, a deployment's app, env, version, status
    env = {**os.environ, "_DEPLOY_COMPLETE": "zsh_complete", "DEPLOYER_DB": store_url}
    for words, cword, help in [
        ("deploy st", "1", "Show a deployment, or the latest of each app."),
        ("deploy status ", "2", "webapp production 1.2 halted"),
    ]:
        done = subprocess.run(
            [DEPLOY],
            env={**env, "COMP_WORDS": words, "COMP_CWORD": cword},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert help in done.stdout.splitlines(), done.stdout


def test_without_a_store_nothing_is_offered_and_none_is_made(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "state.db"
    assert offered("deploy status ", db=f"sqlite:///{missing}") == []
    assert offered("deploy history --app ", db=f"sqlite:///{missing}") == []
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_its_script(shell: str) -> None:
    done = subprocess.run(
        [DEPLOY],
        env={**os.environ, "_DEPLOY_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0 and "_DEPLOY_COMPLETE" in done.stdout
