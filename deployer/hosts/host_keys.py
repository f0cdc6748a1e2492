"""Host keys: what a known_hosts file says about the key a host offers, and why it is refused.

One verdict for both ways deployer connects: the runner's asyncssh connections
(:mod:`deployer.hosts.ssh`) and the paramiko connections of Fabric hooks
(:mod:`deployer.hosts.fabric_connection`). The file is read by asyncssh's parser, which knows
OpenSSH's markers:

* ``@revoked PATTERN KEY``: the key is refused for the hosts the pattern matches, under
  every policy, even beside a line that trusts it, and never recorded.
* ``@cert-authority PATTERN KEY``: a host certificate signed by that key is trusted for
  those hosts (asyncssh checks the certificate; paramiko cannot, so a Fabric hook to a
  host known only through a CA is refused with a sentence that says so).

A host on a port other than 22 is written ``[host]:port``. asyncssh, finding no trusted
key under that name, looks again under the bare name, and then forgets the keys it found
revoked under ``[host]:port``: a file whose one line for a host is ``@revoked
[addr]:port KEY`` revoked nothing, and ``accept-new`` recorded that very key as trusted.
:func:`known_keys` keeps what either lookup revoked.
"""

from __future__ import annotations

import fcntl
import os
import shlex
from dataclasses import dataclass

from deployer.hosts.asyncssh_import import asyncssh
from deployer.hosts.ssh_config import Endpoint

ACCEPT_NEW = "accept-new"


@dataclass(frozen=True, slots=True)
class KnownKeys:
    """What a known_hosts file says about one host."""

    trusted: tuple[asyncssh.SSHKey, ...] = ()
    authorities: tuple[asyncssh.SSHKey, ...] = ()  # @cert-authority
    revoked: tuple[asyncssh.SSHKey, ...] = ()  # @revoked

    def as_asyncssh(self) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """asyncssh's ``known_hosts`` form: trusted keys, CA keys, revoked keys."""
        return list(self.trusted), list(self.authorities), list(self.revoked)


def known_keys(book: asyncssh.SSHKnownHosts | None, host: str, addr: str, port: int | None) -> KnownKeys:
    """The keys ``book`` trusts, trusts as authorities and revokes for a host.

    ``port`` None or 22 is the default port. Trusted keys and authorities are asyncssh's
    match (``[host]:port``, else the bare name); revoked keys are those of both names.
    """
    if book is None:
        return KnownKeys()
    at = port if port not in (None, 22) else None
    trusted, authorities, revoked, *_ = book.match(host, addr, at)
    if at is not None:
        # _match is the lookup of one name, without match()'s second look (see above).
        revoked = [*book._match(host, addr, at)[2], *book._match(host, addr)[2]]
    return KnownKeys(tuple(trusted), tuple(authorities), tuple(revoked))


def load_known_hosts(path: str) -> asyncssh.SSHKnownHosts | None:
    """The file's entries, or None when there is no such file. Raises OSError or
    ValueError (a line asyncssh cannot read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return asyncssh.import_known_hosts(file.read())
    except FileNotFoundError:
        return None


def host_label(host: str, port: int) -> str:
    """How known_hosts names a host: ``host``, or ``[host]:port`` off port 22."""
    return host if port == 22 else f"[{host}]:{port}"


def record_host_key(path: str, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
    """Append ``key`` for a host to ``path`` under an exclusive lock; False if another key got there first.

    The lock is held only inside this synchronous function, so coroutines of one process
    never wait on each other's lock; other processes appending at once are serialised.
    """
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    with open(path, "a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        known = known_keys(asyncssh.import_known_hosts(file.read()), host, addr, port)
        if key in known.revoked:
            return False
        if known.trusted:
            return key in known.trusted
        file.seek(0, os.SEEK_END)
        file.write(f"{host_label(host, port)} {algorithm} {blob}\n")
        file.flush()
    return True


def judge_host_key(
    path: str,
    book: asyncssh.SSHKnownHosts | None,
    host: str,
    addr: str,
    port: int,
    key: asyncssh.SSHKey,
    policy: str,
    *,
    checks_certificates: bool = True,
) -> str | None:
    """None to accept the plain host ``key`` a host offers, else why it is refused.

    Under ``accept-new`` a key the file knows nothing about for the host is recorded
    (and accepted). ``checks_certificates`` False (paramiko) refuses, rather than treats
    as unknown, a host the file knows only through a certificate authority.
    """
    where = f"{host}:{port}"
    known = known_keys(book, host, addr, port)
    offered = f"{key.get_algorithm()} {key.get_fingerprint()}"
    if key in known.revoked:
        return f"host key for {where} ({offered}) is REVOKED in {path}: refused"
    if key in known.trusted:
        return None
    label = host_label(host, port)
    if known.trusted:
        types = sorted({other.get_algorithm() for other in known.trusted})
        if key.get_algorithm() not in types:
            return other_type_problem(path, where, key.get_algorithm(), types)
        return (
            f"host key CHANGED for {where}: it offers {offered}, which is not the key recorded in "
            f"{path}; if the change is expected, remove the old entry "
            f"(ssh-keygen -R {shlex.quote(label)} -f {shlex.quote(path)})"
        )
    if known.authorities and not checks_certificates:
        return (
            f"{path} trusts {where} through a certificate authority (@cert-authority), but Fabric hooks "
            "connect through paramiko, which cannot check host certificates: add the host's own key "
            f"to {path}, or make the hook a command"
        )
    if policy == ACCEPT_NEW:
        try:
            recorded = record_host_key(path, host, addr, port, key)
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            return f"cannot record the host key of {where} in {path}: {reason}"
        return (
            None
            if recorded
            else f"host key CHANGED for {where}: another key was recorded in {path} meanwhile"
        )
    missing = "" if book is not None else " (the file does not exist)"
    return f"host key for {where} is not in {path}{missing}; {unknown_key_hint(host, port, path)}"


def unknown_key_hint(host: str, port: int, path: str) -> str:
    """How to make an unknown host key known: the exact ``ssh-keyscan`` line, or ``accept-new``.

    ``ssh-keyscan -p`` writes ``[host]:port`` off port 22, the name the lookup uses.
    """
    scan = f"ssh-keyscan -p {port} {shlex.quote(host)} >> {shlex.quote(path)}"
    return (
        f"to trust it, check its fingerprint and run `{scan}`, "
        "or set ssh.host_key_policy: accept-new in the spec to record keys on first use"
    )


def os_error_text(error: OSError) -> str:
    """An OSError as a person reads it: "Connection refused", not asyncio's
    "Connect call failed ('127.0.20.110', 2222)" with its Python tuple."""
    if error.errno:
        return os.strerror(error.errno)
    return error.strerror or str(error) or type(error).__name__


def other_type_problem(path: str, where: str, offered_type: str, known_types: list[str]) -> str:
    return (
        f"host key of type {offered_type} for {where} is not known: {path} has only "
        f"{', '.join(known_types)} for it; add the host's {offered_type} key, or remove the old entry "
        "if the host changed its keys"
    )


def refusal_problem(reason: str, where: str, path: str) -> str | None:
    """Our sentence for a refusal asyncssh decided before asking us (a revoked key or CA)."""
    if "CA key is revoked" in reason:
        return f"the certificate authority that signed the host key of {where} is REVOKED in {path}: refused"
    if "revoked" in reason:
        return f"host key for {where} is REVOKED in {path}: refused"
    return None


class _OfferRecorder(asyncssh.SSHClient):
    """Notes the type of host key offered, and refuses it."""

    offered: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = key.get_algorithm()
        return False


async def offered_key_type(address: str, port: int, timeout: float) -> str | None:
    """The type of host key the host offers when asked for any type, or None.

    Only called after a handshake failed for a host the file knows keys of: asyncssh asks
    only for the known types, and a host with none of them just hangs up.
    """
    recorder = _OfferRecorder()
    try:
        connection = await asyncssh.connect(
            address,
            port=port,
            known_hosts=([], [], []),
            client_factory=lambda: recorder,
            server_host_key_algs="default",
            connect_timeout=timeout,
            config=[],
            username="deployer-host-key-check",
        )
    except (asyncssh.Error, OSError):
        return recorder.offered
    connection.close()  # not reached: every key is refused above
    return recorder.offered


async def other_key_type(
    book: asyncssh.SSHKnownHosts | None, endpoint: Endpoint, known_hosts: str, *, direct: bool
) -> str | None:
    """Why a host hung up, when it offers a key type the file knows none of for it; else None.

    Found by a second, short handshake, straight to the host: so not for one behind a jump
    host or a ProxyCommand.
    """
    known = known_keys(book, endpoint.address, "", endpoint.port).trusted
    if not known or not direct or endpoint.proxy_command:
        return None
    offered = await offered_key_type(endpoint.address, endpoint.port, endpoint.connect_timeout)
    types = sorted({key.get_algorithm() for key in known})
    if offered is None or offered in types:
        return None
    return other_type_problem(known_hosts, endpoint.where, offered, types)
