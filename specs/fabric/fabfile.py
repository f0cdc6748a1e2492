"""The fabric-demo's hooks, written as Fabric tasks (see site.yaml).

deployer calls each task with a Connection to the host being deployed. What it knows
about the deployment is in ``c.config.deploy`` (app, version, previous_version,
environment, host, datacenter, id, release_dir), and every ``c.run`` has the same
values as DEPLOY_APP ... DEPLOY_RELEASE_DIR in its environment. What the commands print
becomes the step's output; an exception, or a command that fails, fails the host.
"""

from __future__ import annotations

from typing import Any

from fabric import task  # type: ignore[import-untyped]

SHARED = '"$HOME/apps/$DEPLOY_APP/shared"'  # outlives releases; quoted for the remote shell


@task  # type: ignore[untyped-decorator]
def migrate(c: Any, dry_run: bool = False) -> None:
    """A stand-in for a schema migration: the shared schema file moves to this version."""
    if dry_run:
        c.run('echo "would migrate $DEPLOY_HOST from ${DEPLOY_PREVIOUS_VERSION:-nothing} to $DEPLOY_VERSION"')
        return
    c.run(f'mkdir -p {SHARED} && printf "%s\\n" "$DEPLOY_VERSION" > {SHARED}/schema')
    c.run('echo "migrated $DEPLOY_HOST to schema $DEPLOY_VERSION"')


@task  # type: ignore[untyped-decorator]
def publish(c: Any) -> None:
    """Marks the release live on this host (a real app would restart its service here)."""
    c.run('date -u +%Y-%m-%dT%H:%M:%SZ > "$DEPLOY_RELEASE_DIR/published-at"')
    c.run('echo "published $DEPLOY_VERSION on $DEPLOY_HOST in $DEPLOY_DATACENTER"')


@task  # type: ignore[untyped-decorator]
def check(c: Any) -> None:
    """The health check: the live release has been published and the schema matches it."""
    live = c.run(f"cat {SHARED}/schema", hide=True).stdout.strip()
    if live != c.config.deploy.version:
        raise RuntimeError(f"the schema is at {live}, the release is {c.config.deploy.version}")
    c.run('test -f "$HOME/apps/$DEPLOY_APP/current/published-at" && echo "healthy: $DEPLOY_VERSION"')
