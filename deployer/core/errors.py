"""The user-facing errors of deployer.

Every error a person can cause and fix derives from :class:`DeployerError`;
the CLI catches that base only, prints one line, and exits with the error's
``exit_code`` (the table is in :mod:`deployer.core.exitcodes`). Anything else is a bug and
keeps its traceback.

    DeployerError                 exit 2 unless said otherwise
     ├── SpecError                a spec or inventory file is malformed (file:line: field: message)
     ├── FleetError               the fleet cannot be built (empty, duplicate names, a failing script)
     ├── PatternError             a --limit pattern cannot be read (a bad regex, a missing @FILE)
     ├── TimeExpressionError      a TIME (--at, the TUI's "at" box) is none of the accepted forms
     ├── ArtifactError            the artifact is missing or unreadable
     ├── StoreError               the state store cannot be opened or migrated
     │    ├── DeploymentLocked    another deployment of this app and environment is running (exit 1)
     │    ├── StoreLost           the store failed or went away while in use (exit 3)
     │    └── NotFound            no such deployment, app or host
     ├── LabError                 the lab fleet cannot be started, found or told what to do
     ├── ControlError             pause/resume/abort asked of a deployment that cannot take it
     ├── NothingToRollBack        no earlier good version is recorded to roll back to
     ├── PromotionRefused         the source environment has nothing to promote (exit 1)
     ├── HttpError                a gate's or a notification's HTTP request failed
     ├── LeftRunning              a second Ctrl-C left a deployment running (exit 130, or 143)
     └── FilterError              the TUI's host filter names an unknown state (in tui.filter: the
                                  package does not import the TUI)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DeployerError(Exception):
    """Base of every error a user can cause and fix."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """One problem in one file: where it is and what was expected."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(DeployerError):
    """A spec or an inventory file is malformed; carries every issue found in it."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        if not issues:
            raise RuntimeError("SpecError needs at least one issue")
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))

    @classmethod
    def single(cls, file: str, line: int | None, field: str, message: str) -> SpecError:
        return cls([SpecIssue(file, line, field, message)])


def sorted_issues(issues: Sequence[SpecIssue]) -> list[SpecIssue]:
    """Issues in file and line order, each once."""
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda issue: (issue.file, issue.line or 0))


class FleetError(DeployerError):
    """The fleet cannot be built from its inventory."""


class PatternError(DeployerError):
    """A ``--limit`` pattern that cannot be read."""


class TimeExpressionError(DeployerError):
    """A TIME argument that is none of the accepted forms."""


class ArtifactError(DeployerError):
    """The artifact to deploy is missing or cannot be packed."""


class StoreError(DeployerError):
    """The state store cannot be opened, migrated or queried."""


class DeploymentLocked(StoreError):
    """Another deployment of the same app and environment is running."""

    exit_code = 1


class StoreLost(StoreError):
    """The state store failed or went away while a command used it (see deployer.core.exitcodes)."""

    exit_code = 3


class NotFound(StoreError):
    """No deployment, app or host by that name."""


class LabError(DeployerError):
    """The lab fleet cannot be started, found or told what to do."""


class ControlError(DeployerError):
    """A pause, resume or abort that the deployment cannot take."""


class NothingToRollBack(DeployerError):
    """No earlier good version is recorded to roll back to."""


class PromotionRefused(DeployerError):
    """The source environment has no version that succeeded on every host to promote."""

    exit_code = 1


class HttpError(DeployerError):
    """The request could not be made, or the answer was not HTTP."""


class LeftRunning(DeployerError):
    """A second signal made the controller leave at once; the deployment still runs on its hosts."""

    def __init__(self, signal_name: str, deployment_id: str | None) -> None:
        self.exit_code = 143 if signal_name == "SIGTERM" else 130
        if deployment_id is None:
            message = f"{signal_name}: left at once; no deployment was left running"
        else:
            message = (
                f"{signal_name}: left at once; deployment {deployment_id} is still running (each host's "
                f"driver finishes its steps by itself).\n"
                f"carry it on: deploy resume {deployment_id}\n"
                f"or stop it: deploy abort {deployment_id}"
            )
        super().__init__(message)
