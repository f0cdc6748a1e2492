"""Errors under ``--json``: one JSON object on stdout, the message still on stderr.

Each case runs the real ``deploy`` command in a subprocess, as a script would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_plan import ROOT, deploy

KEYS = {"kind", "message", "exit_code", "file", "line", "field"}


def error_of(stdout: str) -> dict[str, Any]:
    """The error object of stdout, which must be exactly one JSON document."""
    document = json.loads(stdout)
    assert set(document) == {"error"}
    error: dict[str, Any] = document["error"]
    assert set(error) >= KEYS
    return error


def test_a_spec_error_gives_file_line_and_field(tmp_path: Path) -> None:
    spec = ROOT / "tests" / "spec" / "invalid" / "specs" / "bad-choices.yaml"
    done = deploy("plan", str(spec), "--json", db=tmp_path / "s.db")
    assert done.returncode == 2
    error = error_of(done.stdout)
    assert (error["kind"], error["exit_code"]) == ("SpecError", 2)
    assert (error["file"], error["line"], error["field"]) == (str(spec), 9, "ssh.host_key_policy")
    assert {issue["field"] for issue in error["issues"]} >= {"ssh.host_key_policy", "strategy.on_halt"}
    # stderr says what it said without --json
    assert f"error: {spec}:9: ssh.host_key_policy: expected 'strict' or 'accept-new' (got 'maybe')" in (
        done.stderr.splitlines()
    )
    assert error["message"].splitlines()[0] in done.stderr


def test_an_unknown_deployment_is_not_found_with_null_places(tmp_path: Path) -> None:
    done = deploy("status", "d-nope", "--json", db=tmp_path / "s.db")
    assert done.returncode == 2
    error = error_of(done.stdout)
    assert error == {
        "kind": "NotFound",
        "message": "no deployment d-nope",
        "exit_code": 2,
        "file": None,
        "line": None,
        "field": None,
    }
    assert "error: no deployment d-nope" in done.stderr


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (["history", "--json"], "--app", "Missing option '--app'"),
        (["versions", "--app", "a", "--env", "b", "--at", "nonsense", "--json"], "--at", "'nonsense'"),
        (["plan", "--json"], "SPEC", "Missing argument 'SPEC'"),
        (["frob", "--json"], None, "No such command 'frob'"),
    ],
)
def test_a_usage_error_has_the_same_shape(
    tmp_path: Path, args: list[str], field: str | None, words: str
) -> None:
    done = deploy(*args, db=tmp_path / "s.db")
    assert done.returncode == 2
    error = error_of(done.stdout)
    assert (error["kind"], error["exit_code"], error["field"]) == ("UsageError", 2, field)
    assert words in error["message"] and words in done.stderr
    assert "Traceback" not in done.stderr


def test_without_json_stdout_stays_empty(tmp_path: Path) -> None:
    done = deploy("status", "d-nope", db=tmp_path / "s.db")
    assert (done.returncode, done.stdout) == (2, "")


def test_after_a_double_dash_json_is_not_an_option(tmp_path: Path) -> None:
    done = deploy("plan", "--", "--json", db=tmp_path / "s.db")
    assert done.returncode == 2 and done.stdout == ""
