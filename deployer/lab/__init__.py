"""The lab fleet: real SSH servers on loopback addresses, for the demo and for tests.

``deploy lab up`` (or :func:`start_lab`) starts one background process serving
N hosts, each an SSH server on its own 127.0.0.0/8 address with its own host key
and its own home directory, and writes an inventory for them. Hosts can be broken
(``down``, ``hang``, ``fail-hook``) and fixed while a deployment runs.

    plan      pure: host names, addresses, datacenters, inventory and known_hosts text
    paths     where a lab keeps its files in its directory
    keys      the client key and the hosts' keys
    host      one host: its SSH server (asyncssh), its sessions and its faults
    server    the lab process (one loop for all hosts), its control socket
    procs     is a process alive, what is its command line
    control   start, find, inspect, break, fix and stop a lab from outside
"""

from __future__ import annotations

from deployer.lab.control import (
    LabFleet,
    LabHostStatus,
    LabStatus,
    attach_lab,
    break_hosts,
    lab_status,
    start_lab,
    stop_lab,
)
from deployer.lab.plan import FaultMode, plan_hosts
from deployer.lab.procs import process_is_alive

__all__ = [
    "FaultMode",
    "LabFleet",
    "LabHostStatus",
    "LabStatus",
    "attach_lab",
    "break_hosts",
    "lab_status",
    "plan_hosts",
    "process_is_alive",
    "start_lab",
    "stop_lab",
]
