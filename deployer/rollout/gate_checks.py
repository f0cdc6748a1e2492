"""Running gates' checks: the imperative half of :mod:`deployer.core.gates`.

A check is a local command or an HTTP request, run here on the controller's machine,
never on the hosts. Whatever goes wrong (the command cannot start, the connection is
refused, the answer is not JSON, the timeout passes) is a failing verdict with a
sentence, never an exception: a gate that cannot tell is a gate that fails.

The check sees the deployment in ``DEPLOY_*`` variables: ``DEPLOY_APP``,
``DEPLOY_VERSION``, ``DEPLOY_ENVIRONMENT``, ``DEPLOY_ID``, ``DEPLOY_WAVE`` (the wave
just finished; 0 before the first), ``DEPLOY_GATE`` (its name) and
``DEPLOY_HOSTS_FILE``: a file naming the hosts the deployment has touched so far, one
a line (a list in the environment would overflow for a large fleet). An http gate's
header values may name variables as ``${NAME}``: the controller's environment and these.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from deployer.core.errors import HttpError
from deployer.core.gates import GateVerdict, judge_command, judge_http
from deployer.core.spec import Gate
from deployer.hosts.release import shell_number
from deployer.rollout.http_client import expand_headers, http_request
from deployer.rollout.local_commands import run_local


@dataclass(frozen=True, slots=True)
class GateContext:
    """What a gate is told about the deployment it guards."""

    app: str
    version: str
    environment: str
    deployment_id: str
    wave: int  # the wave just finished, 0 before the first
    hosts: Sequence[str]  # the hosts touched so far


async def check_gates(
    gates: Sequence[Gate], context: GateContext, clock: Callable[[], datetime]
) -> list[GateVerdict]:
    """Check ``gates`` one after the other, stopping at the first that fails."""
    verdicts: list[GateVerdict] = []
    with tempfile.TemporaryDirectory(prefix="deployer-gate-") as folder:
        hosts_file = Path(folder) / "hosts"
        hosts_file.write_text("".join(f"{name}\n" for name in context.hosts), encoding="utf-8")
        env = {**os.environ, **deploy_variables(context), "DEPLOY_HOSTS_FILE": str(hosts_file)}
        for gate in gates:
            verdict = await check_gate(gate, {**env, "DEPLOY_GATE": gate.name}, clock)
            verdicts.append(verdict)
            if not verdict.passed:
                break
    return verdicts


def deploy_variables(context: GateContext) -> dict[str, str]:
    return {
        "DEPLOY_APP": context.app,
        "DEPLOY_VERSION": context.version,
        "DEPLOY_ENVIRONMENT": context.environment,
        "DEPLOY_ID": context.deployment_id,
        "DEPLOY_WAVE": str(context.wave),
    }


async def check_gate(gate: Gate, env: Mapping[str, str], clock: Callable[[], datetime]) -> GateVerdict:
    """One check of ``gate``; an error or a timeout is a failing verdict saying so."""
    try:
        if gate.type == "command":
            assert gate.command is not None
            result = await run_local(gate.command, env=env, timeout=gate.timeout)
            passed, message = judge_command(result.exit_status, result.output)
        else:
            assert gate.url is not None
            response = await http_request(
                "GET", gate.url, headers=expand_headers(gate.headers, env), timeout=gate.timeout
            )
            passed, message = judge_http(gate, response.status, response.body)
    except TimeoutError:
        passed, message = False, f"timed out after {shell_number(gate.timeout)}s"
    except KeyError as error:  # a ${NAME} that is not set
        passed, message = False, str(error.args[0])
    except (HttpError, OSError) as error:
        passed, message = False, str(error)
    return GateVerdict(gate.name, passed, message, clock())
