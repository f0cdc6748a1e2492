"""The local artifact cache, shared by every process of the user: packs from two processes
at once all succeed, and the kept artifacts are pruned to the versions still of use."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deployer.hosts.artifact import CACHE_KEEP_COUNT, prepare_artifact
from deployer.hosts.kept_artifacts import kept_artifact, versions_dir
from deployer.operations.push import prune_kept_artifacts
from deployer.store import Store
from tests.store.builders import at, deploy, hosts

PACKS = 150  # per process: past CACHE_KEEP_COUNT many times, so trims run all along

# Packs trees of its own and trees the other process packs too (the same keys), and checks
# that each file it got is whole and stays there while it is held.
PACKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from deployer.hosts.artifact import prepare_artifact, sha256_of

    work, me, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for number in range(count):
        name = f"shared-{number}" if number % 2 else f"{me}-{number}"
        tree = work / "trees" / me / name
        tree.mkdir(parents=True)
        (tree / "VERSION").write_text(name + "\\n")
        (tree / "data").write_bytes(bytes(range(256)) * (number % 7 + 1))
        artifact = prepare_artifact(tree, work / "cache")
        assert sha256_of(Path(artifact.path)) == artifact.sha256, name
    print("packed", count)
    """
)


def test_two_processes_packing_into_one_cache_at_once_all_succeed(tmp_path: Path) -> None:
    script = tmp_path / "packer.py"
    script.write_text(PACKER)
    packers = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), me, str(PACKS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in ("a", "b")
    ]
    for packer in packers:
        out, err = packer.communicate(timeout=300)
        assert packer.returncode == 0, err
        assert out.strip() == f"packed {PACKS}"
    cache = tmp_path / "cache"
    assert not list(cache.glob(".*"))  # no temporary left behind
    # Each packer held what it packed until it exited; once they are gone, a pack trims.
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "VERSION").write_text("one\n")
    prepare_artifact(tmp_path / "one", cache)
    assert len(list(cache.glob("*.tar.gz"))) == CACHE_KEEP_COUNT


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = versions_dir() / "web"
    folder.mkdir(parents=True)
    for version in ("1.0", "1.1", "1.2", "1.3", "1.4", "2.0"):
        (folder / f"{version}.tar.gz").write_bytes(b"artifact " + version.encode())
    return folder


def test_kept_artifacts_are_pruned_to_what_hosts_run_and_each_latest_good(store: Store, kept: Path) -> None:
    prod, staging = hosts("p1", "p2"), hosts("s1", "s2")
    deploy(store, "1.0", prod, at(0), environment="prod")
    deploy(store, "1.1", prod, at(10), environment="prod")
    deploy(store, "1.2", prod, at(20), environment="prod", failed=["p2"])  # p1 runs 1.2, p2 1.1
    deploy(store, "1.3", staging, at(30), environment="staging")
    deploy(store, "1.4", staging, at(40), environment="staging", failed=["s1", "s2"])  # both keep 1.3
    deploy(store, "9.9", hosts("o1"), at(50), app="other")  # another app's versions do not count
    assert kept_artifact("web", "2.0") is not None  # held: in use by a rollback of this process
    assert prune_kept_artifacts(store, "web") == ["1.0", "1.4"]
    assert sorted(path.name for path in kept.iterdir()) == [
        "1.1.tar.gz",
        "1.2.tar.gz",
        "1.3.tar.gz",
        "2.0.tar.gz",
    ]
