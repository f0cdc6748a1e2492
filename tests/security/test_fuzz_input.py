"""Fuzzed specs and inventories (all four formats): a clean error or a result, never a
traceback, and never an allocation without bound.

Each case is read in-process the way the CLI reads it: it either loads or raises a
:class:`~deployer.core.errors.DeployerError` whose exit code is 2 (the CLI prints it as one
line). Anything else escaping is a bug, and the test shows the case. Memory is watched
with tracemalloc: a case that holds more than :data:`PEAK_BYTES` at once fails (the INI
range ``web-[01:99999999]`` once reached 7 GB before failing; it is now refused before it
is expanded). How fast the refusals are is measured in ``bench/hostile_input.py``.

A few of the cases that broke before are also run through the real CLI, for exit 2 and
one line without a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.core.errors import DeployerError
from deployer.inventory.load import load_inventory
from deployer.inventory.patterns import expand_host_pattern
from deployer.operations.reading import check_fabric_task
from deployer.spec.load import load_spec

PEAK_BYTES = 64 << 20
# Bounded for the suite; DEPLOYER_FUZZ_EXAMPLES=5000 for a longer hunt.
EXAMPLES = int(os.environ.get("DEPLOYER_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Raw(str):
    """Text written into the YAML as it is (a number of any length, a broken token)."""


HOSTILE_TEXT = [
    "/./",
    "~/.",
    "~/./",
    "/srv//x",
    "/etc",
    "../../etc",
    "$(touch /tmp/pwned)",
    "`id`",
    "a;b",
    "x\ny",
    "bell\x07ff\x0c",
    "web-[01:99999999].x",
    "db[a:z][a:z][a:z][a:z]",
    "h[1:9999999999999999999999]",
    "[[1:2]:3]",
    "é" * 80,
    "a" * 64 + ".example",
    "a" * 300,
    "x" * 20_000,
    "\ud800",
    "1e400",
    "-0",
    "25%",
    "101%",
    "0.0001s",
    "99999999999d",
]

leaf: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=40),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.integers(min_value=1, max_value=6000).map(lambda digits: Raw("9" * digits)),
    st.sampled_from([Raw("*nothing"), Raw("&a [1"), Raw("!!python/object:os.system"), Raw("{")]),
)


def tree(keys: list[str], depth: int = 2) -> st.SearchStrategy[Any]:
    """Mappings over ``keys`` (and a few unknown ones), lists and leaves, ``depth`` deep."""
    if depth == 0:
        return leaf
    inner = tree(keys, depth - 1)
    return st.one_of(
        leaf,
        st.dictionaries(st.sampled_from([*keys, "x-any", "bogus"]), inner, max_size=5),
        st.lists(inner, max_size=4),
    )


SPEC_KEYS = ["app", "version", "environment", "fleet", "artifact", "target", "keep_releases", "ssh"]
SPEC_KEYS += ["strategy", "hooks", "environments", "hosts", "name", "datacenter", "address", "port"]
SPEC_KEYS += ["user", "batch", "max_failures", "bake", "stripe", "on_halt", "timeout", "retries"]
SPEC_KEYS += ["start", "stop", "validate", "known_hosts", "identity_file", "host_key_policy", "tags"]


def render(value: Any) -> str:
    """YAML (flow style, so JSON-like) with :class:`Raw` leaves written as they are."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(key)}: {render(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(item) for item in value) + "]"
    if isinstance(value, float) and value != value:
        return ".nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    return json.dumps(value)


def base_spec(fleet: Any) -> dict[str, Any]:
    return {
        "app": "shop",
        "version": "1.0",
        "artifact": "build/",
        "target": "/srv/shop",
        "fleet": fleet,
    }


specs = st.builds(
    lambda base, overrides: {**base, **overrides},
    st.builds(base_spec, st.one_of(leaf, st.just({"hosts": [{"name": "s1", "datacenter": "dc1"}]}))),
    st.dictionaries(st.sampled_from(SPEC_KEYS), tree(SPEC_KEYS), max_size=4),
)


def outcome(read: Callable[[], object]) -> str:
    """Runs ``read``: "ok" or "exit 2"; anything else fails the test (with the case shown)."""
    tracemalloc.start()
    try:
        read()
        result = "ok"
    except DeployerError as error:
        assert error.exit_code == 2, error
        assert str(error).strip(), "an error with nothing to say"
        result = "exit 2"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"the case held {peak >> 20} MiB at once"
    return result


def fresh(folder: Path, name: str) -> Path:
    path = folder / uuid.uuid4().hex[:8] / name
    path.parent.mkdir()
    return path


@FUZZ
@given(spec=specs, mutation=st.one_of(st.none(), st.tuples(st.integers(0, 400), st.text(max_size=3))))
def test_fuzzed_specs_load_or_give_a_clean_error(
    tmp_path: Path, spec: dict[str, Any], mutation: tuple[int, str] | None
) -> None:
    text = "\n".join(f"{render(key)}: {render(value)}" for key, value in spec.items()) + "\n"
    if mutation is not None:
        at, inserted = mutation
        text = text[:at] + inserted + text[at:]
    path = fresh(tmp_path, "spec.yaml")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    outcome(lambda: load_spec(path, check_task=check_fabric_task))


HOST_KEYS = ["ansible_host", "ansible_port", "ansible_user", "datacenter", "tags", "ssh", "name"]
host_patterns = st.one_of(
    st.sampled_from(HOSTILE_TEXT), st.from_regex(r"[a-z]{1,4}(\[[0-9a-z]{1,3}:[0-9a-z]{1,3}\])?")
)
host_vars = st.dictionaries(st.sampled_from(HOST_KEYS), leaf, max_size=4)


def ini_value(value: Any) -> str:
    return value if isinstance(value, str) else render(value)


@FUZZ
@given(
    sections=st.lists(
        st.tuples(
            st.sampled_from(["web", "db", "web:vars", "all:children", "x y", "", "web:bogus"]),
            st.lists(st.tuples(host_patterns, host_vars), max_size=4),
        ),
        max_size=4,
    )
)
def test_fuzzed_ini_inventories(tmp_path: Path, sections: list[tuple[str, list[Any]]]) -> None:
    lines = []
    for section, hosts in sections:
        lines.append(f"[{section}]")
        for pattern, variables in hosts:
            settings_text = " ".join(f"{key}={ini_value(value)}" for key, value in variables.items())
            lines.append(f"{pattern} {settings_text}".replace("\n", " "))
    path = fresh(tmp_path, "hosts.ini")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    outcome(lambda: load_inventory(path))


ansible_groups = st.dictionaries(
    st.sampled_from(["web", "db", "all", "x y"]),
    st.one_of(
        leaf,
        st.fixed_dictionaries(
            {},
            optional={
                "hosts": st.one_of(leaf, st.dictionaries(host_patterns, st.one_of(st.none(), host_vars))),
                "vars": st.one_of(leaf, host_vars),
                "children": st.one_of(leaf, st.dictionaries(st.sampled_from(["web", "db"]), st.none())),
            },
        ),
    ),
    max_size=3,
)


@FUZZ
@given(groups=ansible_groups)
def test_fuzzed_ansible_yaml_inventories(tmp_path: Path, groups: dict[str, Any]) -> None:
    path = fresh(tmp_path, "hosts.yml")
    path.write_text(render(groups) + "\n", encoding="utf-8", errors="surrogatepass")
    outcome(lambda: load_inventory(path))


@FUZZ
@given(
    hosts=st.lists(
        st.fixed_dictionaries(
            {"name": host_patterns, "datacenter": leaf}, optional={"address": leaf, "port": leaf}
        ),
        max_size=4,
    ),
    ssh=st.one_of(
        st.none(), st.dictionaries(st.sampled_from(["user", "port", "known_hosts", "bogus"]), leaf)
    ),
)
def test_fuzzed_inventories_of_our_format(
    tmp_path: Path, hosts: list[Any], ssh: dict[str, Any] | None
) -> None:
    path = fresh(tmp_path, "fleet.yaml")
    body = {"hosts": hosts} if ssh is None else {"hosts": hosts, "ssh": ssh}
    path.write_text(render(body) + "\n", encoding="utf-8", errors="surrogatepass")
    outcome(lambda: load_inventory(path))


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 1))
@given(output=st.one_of(ansible_groups, leaf, st.text(max_size=30).map(Raw)))
def test_fuzzed_dynamic_inventory_scripts(tmp_path: Path, output: Any) -> None:
    """A script's output is data: whatever it prints is read or refused cleanly."""
    if isinstance(output, dict):
        output = {**output, "_meta": {"hostvars": {}}}
    path = fresh(tmp_path, "inventory.sh")
    (path.parent / "out.json").write_text(render(output), encoding="utf-8", errors="surrogatepass")
    path.write_text('#!/bin/sh\nexec cat "$(dirname "$0")/out.json"\n')
    path.chmod(0o755)
    outcome(lambda: load_inventory(path, script_timeout=20))


def test_a_huge_range_is_refused_before_it_is_expanded() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="at most 100000 hosts"):
            expand_host_pattern("web-[00000001:99999999].x")
        with pytest.raises(ValueError):  # the issue's own example: its padding differs, as Ansible refuses
            expand_host_pattern("web-[01:99999999].x")
        with pytest.raises(ValueError, match="at most 100000 hosts"):
            expand_host_pattern("db[a:z][a:z][a:z][a:z]")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert expand_host_pattern("[[1:2]:3]") == ["[1:3]", "[2:3]"]  # a made name is not expanded again


CLI_CASES = {
    "keep_releases: " + "9" * 5000: "keep_releases: a number of at most 30 digits",
    "fleet: " + "a" * 20_000: "fleet: a path may have at most 1024 bytes",
    "fleet: {hosts: [{name: " + "a" * 64 + ".x, datacenter: dc1}]}": "at most 63 characters",
    "fleet: hosts.ini": "a range may hold at most 100000 hosts",
}


@pytest.mark.parametrize("line", list(CLI_CASES), ids=["digits", "path", "label", "range"])
def test_the_cases_that_broke_are_one_clean_line_and_exit_2(tmp_path: Path, line: str) -> None:
    (tmp_path / "hosts.ini").write_text("[web]\nweb-[1:99999999].x datacenter=dc1\n")
    spec = tmp_path / "spec.yaml"
    base = 'app: shop\nversion: "1"\nartifact: build/\ntarget: /srv/shop\n'
    if not line.startswith("fleet"):
        base += "fleet: {hosts: [{name: s1, datacenter: dc1}]}\n"
    spec.write_text(base + line + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "plan", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # a store of its own: the user's default one may belong to another deployer version
        env={**os.environ, "DEPLOYER_DB": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    assert done.returncode == 2, done.stderr
    assert CLI_CASES[line] in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["spec.yaml", "hosts.ini"])
def test_a_file_too_large_is_refused_before_it_is_read(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with path.open("wb") as file:
        file.truncate(17 << 20)  # sparse: 17 MiB that take no disk
    read = partial(load_spec, check_task=check_fabric_task) if name == "spec.yaml" else load_inventory
    with pytest.raises(DeployerError, match="file too large"):
        tracemalloc.start()
        try:
            read(path)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peak < 1 << 20
