"""A Fabric file for the tests on hosts, and how to put it next to a spec."""

from __future__ import annotations

from pathlib import Path

# Tasks the tests name in their hooks. `record` writes what the task was told, through
# its config and through its commands' environment, into the release on the host.
FABFILE = r"""
import shlex

from fabric import task

ENV = ("DEPLOY_APP", "DEPLOY_VERSION", "DEPLOY_PREVIOUS_VERSION", "DEPLOY_ENVIRONMENT",
       "DEPLOY_HOST", "DEPLOY_DATACENTER", "DEPLOY_ID", "DEPLOY_RELEASE_DIR")


@task
def record(c, note="none"):
    d = c.config.deploy
    told = "|".join([d.app, d.version, d.previous_version, d.environment, d.host,
                     d.datacenter, d.id, d.release_dir])
    where = shlex.quote(d.release_dir + "/fabric-" + note)
    c.run("printf '%s\\n' " + shlex.quote(told) + " > " + where + ".config")
    fields = '"' + "|".join("$" + name for name in ENV) + '"'
    c.run("printf '%s\\n' " + fields + " > " + where + ".env")
    c.run("echo recorded " + note + " on $DEPLOY_HOST; echo a word on stderr >&2")


def hello(c):
    c.run("echo hello from $DEPLOY_HOST")


def migrate(c):
    faults = "~/.faults/" + c.config.deploy.app
    if c.run("test -e " + faults + "-raise", warn=True).ok:
        raise RuntimeError("schema is locked on " + c.config.deploy.host)
    c.run("if [ -e " + faults + "-exit ]; then echo migration failed >&2; exit 3; fi")


def hang(c, marker):
    c.run("echo hanging; sleep " + marker)
"""


def write_fabfile(folder: Path, text: str = FABFILE) -> Path:
    path = folder / "fabfile.py"
    path.write_text(text)
    return path
