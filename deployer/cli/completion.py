"""Shell completion: apps, environments, deployment IDs and host names from the store; spec paths.

click completes the commands and options by itself (``_DEPLOY_COMPLETE=bash_source
deploy``, see docs/cli.md); the callbacks here fill in the values. Each reads the
store the command would use (``--db``, ``$DEPLOYER_DB`` or the default) and answers
nothing rather than fail: a completion must never print an error into the prompt, nor
create a store that does not exist yet. The store's libraries are imported only when
a value is completed, so a command's ``--help`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

from deployer.core.errors import DeployerError
from deployer.core.spec import DEFAULT_ENVIRONMENT

if TYPE_CHECKING:
    from deployer.store import Store
    from deployer.store.views import DeploymentView

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]

RECENT_PER_ENVIRONMENT = 20  # deployment IDs offered for each app and environment, newest first
SPEC_SUFFIXES = (".yaml", ".yml")


@contextmanager
def _existing_store(ctx: click.Context) -> Iterator[Store | None]:
    """The store the command would open, or None when there is none yet or it cannot be read."""
    from deployer.store import open_store
    from deployer.store.repository import resolve_url

    url = resolve_url(ctx.params.get("db_url"))
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        yield None  # completing must not create an empty store
        return
    try:
        store = open_store(url)
    except DeployerError:
        yield None
        return
    try:
        yield store
    finally:
        store.close()


def _latest(store: Store, ctx: click.Context, *, by_environment: bool = True) -> list[DeploymentView]:
    """The latest deployment of each app and environment, narrowed to ``--app`` (and ``--env``)."""
    app, environment = ctx.params.get("app"), ctx.params.get("environment") if by_environment else None
    return [
        view
        for view in store.latest_deployments()
        if (app is None or view.app == app) and (environment is None or view.environment == environment)
    ]


def _from_store(
    read: Callable[[Store, click.Context], dict[str, str | None]],
) -> Completer:
    """A completer offering what ``read`` finds in the store (value -> help), nothing on any error."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        with _existing_store(ctx) as store:
            if store is None:
                return []
            try:
                found = read(store, ctx)
            except DeployerError:
                return []
        return _matching(found, incomplete)

    return complete


def _matching(values: dict[str, str | None], incomplete: str) -> list[CompletionItem]:
    return [
        CompletionItem(value, help=help) for value, help in values.items() if value.startswith(incomplete)
    ]


def _apps(store: Store, ctx: click.Context) -> dict[str, str | None]:
    return {view.app: None for view in _latest(store, ctx)}


def _environments(store: Store, ctx: click.Context) -> dict[str, str | None]:
    return {view.environment: None for view in _latest(store, ctx, by_environment=False)}


def _deployment_ids(store: Store, ctx: click.Context) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for latest in _latest(store, ctx):
        for view in store.history(latest.app, latest.environment, limit=RECENT_PER_ENVIRONMENT):
            found[view.id] = f"{view.app} {view.environment} {view.version} {view.status.value}"
    return dict(sorted(found.items(), reverse=True))  # ids start with their time: newest first


def _hosts(store: Store, ctx: click.Context) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for view in _latest(store, ctx):
        # retired hosts too: `history --host` still shows what they ran
        for host in store.hosts(view.app, view.environment, include_retired=True):
            found.setdefault(
                host.name, f"{host.datacenter} (retired)" if host.is_retired else host.datacenter
            )
    return dict(sorted(found.items()))


complete_app = _from_store(_apps)
"""Apps the store has deployed (in ``--env``, if given)."""
complete_deployment_id = _from_store(_deployment_ids)
"""Recent deployment IDs (of ``--app``/``--env`` if given), newest first, with what each deployed."""
complete_host = _from_store(_hosts)
"""Host names the store knows (of ``--app``/``--env`` if given), with their datacenter."""
_complete_stored_environment = _from_store(_environments)


def complete_environment(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """A spec's environments once SPEC is on the line, else those the store knows (of ``--app``)."""
    spec = ctx.params.get("spec")
    if spec is None and "spec" in ctx.params:
        # While an option's value is being completed click leaves the arguments unparsed.
        spec = next((arg for arg in ctx.args if arg.endswith(SPEC_SUFFIXES)), None)
    if isinstance(spec, str):
        return _matching(dict.fromkeys(_spec_environments(Path(spec))), incomplete)
    return _complete_stored_environment(ctx, param, incomplete)


def _spec_environments(spec: Path) -> list[str]:
    """The environments a spec file names (its own first), read as plain YAML; none if unreadable."""
    import yaml  # only here: a command's --help needs no YAML

    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    names = [data.get("environment", DEFAULT_ENVIRONMENT)]
    environments = data.get("environments")
    if isinstance(environments, dict):
        names += list(environments)
    return [name for name in dict.fromkeys(names) if isinstance(name, str)]


def complete_spec(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """YAML files and directories that start with what is typed."""
    typed = Path(incomplete).expanduser() if incomplete else Path()
    folder, prefix = (typed, "") if incomplete.endswith("/") or not incomplete else (typed.parent, typed.name)
    shown = incomplete[: len(incomplete) - len(prefix)]  # what the user typed of the folder
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    items = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        if entry.is_dir():
            items.append(CompletionItem(f"{shown}{entry.name}/"))
        elif entry.suffix in SPEC_SUFFIXES:
            items.append(CompletionItem(f"{shown}{entry.name}"))
    return items


def spec_argument(command: Any) -> Any:
    """The SPEC argument of push, plan, rollback, sync, promote and restart."""
    return click.argument("spec", type=click.Path(dir_okay=False), shell_complete=complete_spec)(command)
