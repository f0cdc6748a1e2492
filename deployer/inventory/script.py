"""Ansible dynamic inventory scripts: ``--list`` (``--host NAME`` without ``_meta``), within a timeout.

A script that cannot be run, fails, times out or prints something other than JSON is a
:class:`~deployer.core.errors.FleetError`; what its JSON says wrongly is a spec issue, as in
any other inventory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployer.core.errors import FleetError
from deployer.core.results import tail
from deployer.inventory.ansible import AnsibleInventory, Var
from deployer.inventory.yamlload import MAX_INT_DIGITS, describe


def read_script(inventory: AnsibleInventory, path: Path, deadline: float, timeout: float) -> None:
    """Run ``path --list`` and add its JSON to ``inventory``; ``--host NAME`` when there is no ``_meta``."""
    file = f"{path} --list"
    inventory.file = file
    data = _script_json(path, ["--list"], deadline, timeout)
    if not isinstance(data, dict):
        raise FleetError(
            f"inventory script {path} --list printed {describe(data)}, not a JSON object of groups"
        )
    listed: set[str] = set()  # this script's hosts: its variables reach no other file's
    meta = data.get("_meta")
    for name, body in data.items():
        if name == "_meta":
            continue
        _json_group(inventory, str(name), body, listed)
    if isinstance(meta, dict) and isinstance(meta.get("hostvars"), dict):
        for host, variables in meta["hostvars"].items():
            if host in listed and isinstance(variables, dict):
                inventory.hosts[host].vars.update(_json_vars(file, variables, f"_meta.hostvars.{host}"))
            elif host in listed:
                inventory.issue(
                    None, f"_meta.hostvars.{host}", f"expected a JSON object (got {describe(variables)})"
                )
    elif meta is not None:
        inventory.issue(None, "_meta", 'expected {"hostvars": {...}}')
    else:
        for host, record in inventory.hosts.items():
            if host not in listed:
                continue
            variables = _script_json(path, ["--host", host], deadline, timeout)
            if not isinstance(variables, dict):
                raise FleetError(
                    f"inventory script {path} --host {host} printed {describe(variables)}, not a JSON object"
                )
            record.vars.update(_json_vars(f"{path} --host {host}", variables, host))


def _json_group(inventory: AnsibleInventory, name: str, body: Any, listed: set[str]) -> None:
    """A group of `--list` output: a list of hosts, or {hosts, vars, children}."""
    inventory.group(name)
    if isinstance(body, list):
        body = {"hosts": body}
    if not isinstance(body, dict):
        inventory.issue(
            None,
            name,
            f"expected a list of hosts or an object with hosts, vars, children (got {describe(body)})",
        )
        return
    for key, value in body.items():
        if key == "hosts" and isinstance(value, list):
            for host in value:
                if isinstance(host, str):
                    inventory.add_host(name, host, {}, host, None)
                    listed.add(host)
                else:
                    inventory.issue(None, f"{name}.hosts", f"expected host names (got {describe(host)})")
        elif key == "vars" and isinstance(value, dict):
            inventory.group(name).vars.update(_json_vars(inventory.file, value, f"{name}.vars"))
        elif key == "children" and isinstance(value, list):
            for child in value:
                if isinstance(child, str) and child != name:
                    inventory.add_child(name, child)
                else:
                    inventory.issue(
                        None, f"{name}.children", f"expected names of other groups (got {describe(child)})"
                    )
        elif key in ("hosts", "vars", "children"):
            shape = "an object" if key == "vars" else "a list"
            inventory.issue(None, f"{name}.{key}", f"expected {shape} (got {describe(value)})")
        else:
            inventory.issue(None, f"{name}.{key}", "unknown key in a group; expected hosts, vars or children")


def _json_vars(file: str, variables: Mapping[str, Any], prefix: str) -> dict[str, Var]:
    return {str(key): Var(value, file, f"{prefix}.{key}", None) for key, value in variables.items()}


def _script_json(path: Path, arguments: list[str], deadline: float, timeout: float) -> Any:
    command = " ".join(shlex.quote(part) for part in [str(path), *arguments])
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FleetError(f"inventory script {path} did not finish within {timeout:g}s")
    output = _run(path, arguments, remaining, command, timeout)
    shown = output.strip()[:200] or "nothing"
    try:
        return json.loads(output, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise FleetError(
            f"{command} printed something that is not JSON (line {error.lineno}: {error.msg}): {shown!r}"
        ) from None
    except ValueError as error:  # a number too long, from _bounded_int
        raise FleetError(f"{command} printed JSON deployer will not read ({error}): {shown!r}") from None


def _bounded_int(text: str) -> int:
    """A JSON integer, refused past MAX_INT_DIGITS (Python itself stops at 4,300, with a traceback)."""
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"a number of {len(text)} digits; at most {MAX_INT_DIGITS}")
    return int(text)


def _run(path: Path, arguments: list[str], limit: float, command: str, timeout: float) -> str:
    """Run the script in its own session so a timeout kills it and everything it started."""
    try:
        process = subprocess.Popen(
            [str(path.absolute()), *arguments],  # absolute: it runs from its own folder
            cwd=path.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise FleetError(f"cannot run inventory script {path}: {error.strerror or error}") from None
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_session(process)
        raise FleetError(f"{command} did not finish within {timeout:g}s") from None
    if process.returncode != 0:
        said = tail(stderr.decode("utf-8", "replace"), 5).strip()
        raise FleetError(f"{command} exited {process.returncode}" + (f": {said}" if said else ""))
    try:
        return stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise FleetError(f"{command} printed something that is not UTF-8 text") from None


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just ended by itself
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a descendant left the session and holds the pipes
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.wait(timeout=5)
