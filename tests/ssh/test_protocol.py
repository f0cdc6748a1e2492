"""The host protocol's one encoder and one parser, and the driver's generated arguments."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

import deployer
from deployer.core.results import Outcome, Step, parse_outcome
from deployer.core.runner import HookCommand
from deployer.core.targets import Host
from deployer.hosts.protocol import (
    DRIVER_PARAMS,
    PROTOCOL_VERSION,
    Current,
    Done,
    Env,
    Go,
    Hello,
    HookResult,
    NeedArtifact,
    OutputFollows,
    Previous,
    ProtocolError,
    Release,
    Staged,
    StepEnd,
    StepStart,
    Stop,
    driver_command,
    driver_script,
    encode,
    failure_sentence,
    parse_line,
    parse_probe,
    prune_choice,
    remote_script,
)
from tests.ssh.support import hook, job

HOST = Host(name="web 1", address="127.0.0.1", datacenter="dc;1")


def test_the_driver_command_is_one_quoted_argument_list() -> None:
    pushed = job("~/my app's", "1.0;touch /tmp/x", None, hook(Step.START, "echo $HOME && true"))
    words = shlex.split(driver_command(pushed, HOST))
    assert words[:3] == ["exec", "sh", "-c"]  # the login shell gives way to sh: no fork
    assert words[3] == driver_script()
    assert words[4:9] == ["driver", "~/my app's", pushed.deployment_id, "push", "1.0;touch /tmp/x"]
    assert "web 1" in words and "dc;1" in words and "echo $HOME && true" in words
    assert len(words) == 5 + len(DRIVER_PARAMS)
    assert words[-1] == ""
    kept = driver_command(replace(pushed, keep_records=("d-1", "d-2")), HOST)
    assert shlex.split(kept)[-1] == "d-1 d-2"


def test_the_driver_reads_its_arguments_by_the_names_one_definition_gives() -> None:
    first = driver_script().splitlines()[0]
    assert first.startswith(f"PROTOCOL={PROTOCOL_VERSION} target=$" + "{1} id=${2} ")
    assigned = re.findall(r"(\w+)=\$\{(\d+)\}", first)
    assert [name for name, _ in assigned] == list(DRIVER_PARAMS)
    assert [int(index) for _, index in assigned] == list(range(1, len(DRIVER_PARAMS) + 1))
    body = remote_script("driver.sh")
    unused = [name for name in DRIVER_PARAMS if not re.search(rf"\${name}\b|export .*\b{name}\b", body)]
    assert unused == [], "every argument is read (or exported to the hooks) by the driver"
    # No positional parameter is read outside a function: only the generated line does that.
    raw = (Path(deployer.__file__).parent / "hosts" / "remote" / "driver.sh").read_text()
    assert not re.search(r"^\w+=\$\{?[1-9]", raw, re.M)


def test_a_controller_hook_is_labelled_and_run_by_the_controller() -> None:
    fabric = HookCommand(step=Step.AFTER_INSTALL, command="", timeout=5, fabric="/x/fabfile.py:migrate")
    words = shlex.split(driver_command(job("~/app", "1.0", None, fabric), HOST))
    at = words.index("driver") + 1 + DRIVER_PARAMS.index("ai_cmd")
    assert words[at : at + 6] == ["/x/fabfile.py:migrate", "0", "0", "0", "c", "0"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("@@hello 2\n", Hello(2)),
        ("@@previous \n", Previous("")),
        ("@@previous 1.0%2Frc\n", Previous("1.0%2Frc")),
        ("@@need-artifact /srv/my app/.deploy/d.artifact.tar.gz stdin\n", None),
        ("@@release 0.9\n", Release("0.9")),
        ("@@staged\n", Staged()),
        ("@@env DEPLOY_RELEASE_DIR /srv/a b\n", Env("DEPLOY_RELEASE_DIR", "/srv/a b")),
        ("@@step upload start\n", StepStart(Step.UPLOAD)),
        ("@@step validate end 7 3\n", StepEnd(Step.VALIDATE, 7, 3, False)),
        ("@@step start end 143 1 timeout\n", StepEnd(Step.START, 143, 1, True)),
        ("@@output d-1.start.42\n", OutputFollows("d-1.start.42")),
        ("@@done failed:start:3\n", Done("failed:start:3")),
        ("@@current 1.1\n", Current("1.1")),
        ("plain output\n", None),
    ],
)
def test_driver_lines_parse_into_messages(line: str, message: object) -> None:
    if "need-artifact" in line:
        assert parse_line(line) == NeedArtifact("/srv/my app/.deploy/d.artifact.tar.gz", inline=True)
    else:
        assert parse_line(line) == message


@pytest.mark.parametrize("line", ["@@step start sideways\n", "@@hello two\n", "@@teleport now\n"])
def test_a_marker_the_driver_never_writes_is_a_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolError, match="said something unexpected"):
        parse_line(line)


def test_controller_messages_encode_as_the_driver_reads_them() -> None:
    moment = datetime(2026, 12, 6, 9, 5, 7, tzinfo=UTC)
    assert encode(Go(moment, "1.0 beta", (3, 4))) == b"go\t2026-12-06T09:05:07Z\t1.0 beta\t3 4\n"
    assert encode(Go(moment, "", ())) == b"go\t2026-12-06T09:05:07Z\t\t\n"
    assert encode(Stop()) == b"stop\n"
    assert encode(HookResult(3, 2, False)) == b"done 3 2\n"
    assert encode(HookResult(124, 1, True)) == b"done 124 1 timeout\n"


@pytest.mark.parametrize(
    ("releases", "new", "previous", "keep", "doomed"),
    [
        ([], "2", "1", 1, ()),  # no list sent: no more releases than kept
        (["2", "1", "0"], "2", "1", 1, (3,)),  # unpacked just now: first already
        (["1", "0", "2"], "2", "1", 1, (2,)),  # 2 was on the host: first once switched
        (["1", "0", "2"], "2", "", 1, (2,)),  # first deploy: the next newest stays
        (["3", "2", "1", "0"], "2", "3", 1, (3, 4)),  # a rollback to 2: 3 stays
    ],
)
def test_the_prune_choice_refers_to_the_list_as_staging_sent_it(
    releases: list[str], new: str, previous: str, keep: int, doomed: tuple[int, ...]
) -> None:
    assert prune_choice(releases, new, previous, keep) == doomed


@pytest.mark.parametrize("script", ["driver.sh", "probe.sh", "check.sh"])
def test_the_remote_scripts_are_posix_sh(script: str) -> None:
    checked = subprocess.run(
        ["sh", "-n"], input=remote_script(script), text=True, capture_output=True, timeout=10
    )
    assert checked.returncode == 0, checked.stderr
    assert not any(line.lstrip().startswith("#") for line in remote_script(script).splitlines())


def test_outcomes() -> None:
    assert parse_outcome("failed:validate:7") == Outcome("failed", Step.VALIDATE, 7)
    assert parse_outcome("aborted:switch") == Outcome("aborted", Step.SWITCH, None)
    assert parse_outcome("interrupted:start") == Outcome("interrupted", Step.START, None)
    assert parse_outcome("succeeded") == Outcome("succeeded")


def test_failure_sentences() -> None:
    validate = hook(Step.VALIDATE, "curl -f localhost", timeout=2.5, retries=2)
    assert (
        failure_sentence(StepEnd(Step.VALIDATE, 7, 3, False), validate)
        == "validate exited 7 after 3 attempts"
    )
    assert failure_sentence(StepEnd(Step.VALIDATE, 124, 1, True), validate) == (
        "validate timed out after 2.5s and was killed with its children"
    )
    script = hook(Step.START, "bin/start", script=True)
    assert failure_sentence(StepEnd(Step.START, 127, 1, False), script) == (
        "start hook script bin/start is missing from the release"
    )


def test_probe_output_is_read_back_into_versions() -> None:
    probe = parse_probe(
        "h1", "@@current 1.0%2Frc\n@@release 1.0%2Frc\n@@release 0.9\n@@outcome failed:start:3\n"
    )
    assert (probe.current_version, probe.releases, probe.outcome) == (
        "1.0/rc",
        ("1.0/rc", "0.9"),
        "failed:start:3",
    )
    assert parse_probe("h1", "@@current \n").current_version is None
