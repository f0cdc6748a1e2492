"""A push connects to its first wave's hosts while the rest of it is imported and its
store opened (:class:`deployer.hosts.runner_thread.EarlyRunner`).

Nothing here imports SQLAlchemy, the store or the views: that is what the connections
overlap. The first wave is the spec's, planned without the store (which may put the
hosts that failed last time first, and leave out those already on the version): a host
connected to early but planned later keeps its connection for its turn, and one that is
not planned at all (already on the version, say) is let go as the deployment starts.
Only a push that asks no question connects early (``--yes``): one that asks would
otherwise sign in to hosts its operator may yet decline to deploy to.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.core.spec import Spec
from deployer.core.targets import Fleet, resolve_ssh
from deployer.hosts.file_limits import current_connection_capacity
from deployer.hosts.runner_thread import EarlyRunner
from deployer.operations.options import PushOptions
from deployer.operations.reading import read_spec
from deployer.operations.waves import limited_hosts, plan_for
from deployer.spec.load import load_fleet


@dataclass(frozen=True, slots=True)
class EarlyStart:
    """The spec and fleet of a push, read once, and its runner, already connecting (None:
    the push runs elsewhere, in the terminal UI's loop)."""

    spec: Spec
    fleet: Fleet
    runner: EarlyRunner | None

    def close(self) -> None:
        """Close what was opened early and not used (nothing after a run)."""
        if self.runner is not None:
            self.runner.close()


def start_early(options: PushOptions, *, connect: bool) -> EarlyStart:
    """Read the push's spec and fleet and, with ``connect``, start connecting to its first
    wave. A spec or fleet that cannot be read raises here, as it would have later.

    Not when the spec asks for a preflight (which opens connections of its own first),
    nor when a selected host is one deployer will refuse (the push stops there).
    """
    spec = read_spec(options.spec_path, options.version, options.environment)
    fleet = load_fleet(spec)
    if not connect or spec.strategy.preflight:
        return EarlyStart(spec, fleet, None)
    hosts = limited_hosts(fleet, options.limit, options.only_hosts)
    plan = plan_for(spec, hosts, version=spec.version, current={}, failed=frozenset(), force=True)
    if not plan.waves or any(host.refusal is not None for host in hosts):
        return EarlyStart(spec, fleet, None)
    first = [resolve_ssh(host, fleet.ssh, spec.ssh) for host in plan.waves[0].hosts]
    runner = EarlyRunner()
    runner.connect(first[: current_connection_capacity()])
    return EarlyStart(spec, fleet, runner)
