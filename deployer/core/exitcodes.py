"""The ``deploy`` command's exit codes: one table, here and in docs/cli.md (a test compares them).

Scripts and CI act on these, so each code means one thing:

    0    succeeded
    1    the deployment failed, halted or was aborted by an operator; or the command was
         refused (another deployment holds the lock, a promotion whose source did not succeed)
    2    bad input: a spec, inventory or option error, an unknown deployment or host
    3    the state store was lost while the command ran (unreachable, deleted or replaced);
         the hosts' own records still hold what happened
    124  the deadline (``--timeout``) passed: stopped gracefully, like ``timeout(1)``
    130  interrupted by Ctrl-C (SIGINT) and stopped gracefully
    143  stopped by SIGTERM, gracefully
"""

from __future__ import annotations

from enum import IntEnum

from deployer.core.results import DeploymentStatus


class ExitCode(IntEnum):
    SUCCEEDED = 0
    FAILED = 1
    BAD_INPUT = 2
    STORE_LOST = 3
    DEADLINE = 124
    INTERRUPTED = 130
    TERMINATED = 143


_STOPPED = {
    "SIGINT": ExitCode.INTERRUPTED,
    "SIGTERM": ExitCode.TERMINATED,
    "deadline": ExitCode.DEADLINE,
}


def exit_code_for(status: DeploymentStatus, stopped_by: str | None = None) -> ExitCode:
    """How ``deploy push`` (rollback, sync, promote, restart, resume) exits after a deployment.

    ``stopped_by`` is the cause of a graceful stop (a StopCause value), if one was asked:
    a deployment it ended ``aborted`` exits with that cause's code.
    """
    if status is DeploymentStatus.SUCCEEDED:
        return ExitCode.SUCCEEDED
    if status is DeploymentStatus.ABORTED and stopped_by in _STOPPED:
        return _STOPPED[stopped_by]
    return ExitCode.FAILED
