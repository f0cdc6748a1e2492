"""Public-key authentication in one round trip instead of four (a key file, against OpenSSH).

asyncssh's client does what OpenSSH's does. First it sends the ``none`` method, to learn
which methods the server takes. Then it asks whether a key would do, and only then
signs with it. Each step waits a round trip: 0.16 s per host across regions (80 ms),
in front of every host's first step. RFC 4252 makes both optional: a client MAY send
``none`` (section 5.2), and MAY send a signed request without asking first (section 7).

So a connection this module is told about (:func:`sign_first`) starts with
``publickey``, and signs at once with a key read from a file. It still asks first for
a key that may stop to ask its owner: one held by an agent (which may want a
confirmation) or a security key (which wants a touch). A server that refuses the key
answers as it would have to the question, naming the methods it takes; asyncssh then
carries on as usual (the next key, then those methods). ``none`` itself is sent only
when there is no key to offer: a server that lets anyone in with ``none`` but refuses
our key now refuses us (deployer signs in with keys; such a server is not a host of
ours).

Before any of that, asyncssh asks for the authentication service and waits for the
server to accept it. Against OpenSSH, :func:`request_auth_early` sends the signed request
right behind that question, in the same round trip: sshd reads its packets in order, accepts
the service, then takes the request already waiting (RFC 4253 does not ask a client to
wait). It starts once the server's extension info is in (which names the signature
algorithms it takes, for an RSA key), and only for a server whose version says OpenSSH:
no other server was tried. Other servers, and an OpenSSH too old to send extension info,
get the question answered first, as before.

asyncssh has no option for any of it, so this leans on its internals: the class that
runs public-key authentication, the list of methods a connection tries, and the
handlers of two packets. Where a later asyncssh lacks them, these functions do nothing
and asyncssh goes as before (tests/ssh/test_quick_auth.py counts the requests sshd saw,
and checks the order of the packets).
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

from deployer.hosts.asyncssh_import import asyncssh

_HANDLERS: dict[bytes, Any] | None = None  # asyncssh's client classes by method, where as expected
try:
    from asyncssh import auth as _auth
    from asyncssh.packet import Boolean
    from asyncssh.public_key import SSHLocalKeyPair

    _PublicKeyAuth: Any = _auth._ClientPublicKeyAuth
    # What _SignedFirst relies on: all still there, and as it was, or asyncssh is left alone.
    _SENDS = inspect.signature(_PublicKeyAuth.send_request).parameters
    if (
        _auth._client_auth_handlers.get(b"publickey") is _PublicKeyAuth
        and callable(getattr(_PublicKeyAuth, "_send_signed_request", None))
        and {"key", "trivial"} <= _SENDS.keys()
    ):  # (and a key it cannot find, send_request asks about as asyncssh did)
        _HANDLERS = _auth._client_auth_handlers
except (ImportError, AttributeError, TypeError, ValueError):  # another asyncssh: it asks
    _PublicKeyAuth = object

_SIGNING_FIRST: weakref.WeakSet[Any] = weakref.WeakSet()  # the connections told about

_USERAUTH = b"ssh-userauth"
_PACKET_HANDLERS: dict[int, Any] | None = None  # a client connection's, where as expected
try:
    from asyncssh.connection import SSHClientConnection
    from asyncssh.constants import MSG_EXT_INFO, MSG_SERVICE_ACCEPT
    from asyncssh.misc import ServiceNotAvailable
    from asyncssh.packet import SSHPacket, String

    _on_ext_info = SSHClientConnection._packet_handlers[MSG_EXT_INFO]
    _on_service_accept = SSHClientConnection._packet_handlers[MSG_SERVICE_ACCEPT]
    _PACKET_HANDLERS = dict(SSHClientConnection._packet_handlers)
except (ImportError, AttributeError, KeyError, TypeError):  # another asyncssh: it waits
    pass
_ACCEPTED_EARLY: weakref.WeakSet[Any] = weakref.WeakSet()  # the service taken as accepted


def sign_first(connection: asyncssh.SSHClientConnection) -> None:
    """Authenticate ``connection`` with a signed public key first (see the module's docstring).

    To be called before its authentication begins: from the client's ``connection_made``.
    """
    methods = getattr(connection, "_auth_methods", None)
    if _HANDLERS is None or methods != [b"none"]:
        return
    _SIGNING_FIRST.add(connection)
    # `none` stays, last: with no key to offer, it still learns the server's methods.
    connection._auth_methods = [b"publickey", b"none"]


def request_auth_early(connection: asyncssh.SSHClientConnection) -> None:
    """Send ``connection``'s first authentication request without waiting for the
    service to be accepted, where the server is OpenSSH (see the module's docstring).

    To be called before its key exchange ends: from the client's ``connection_made``.
    """
    state = [getattr(connection, name, None) for name in ("_next_service", "_auth_in_progress")]
    if _PACKET_HANDLERS is None or state != [None, False]:
        return
    # This connection's own handlers: other asyncssh connections in the process are left alone.
    connection._packet_handlers = {
        **_PACKET_HANDLERS,
        MSG_EXT_INFO: _ext_info_then_auth,
        MSG_SERVICE_ACCEPT: _service_accepted,
    }


def _ext_info_then_auth(connection: Any, pkttype: int, pktid: int, packet: Any) -> None:
    """The server's extension info, which follows its keys: authentication begins now,
    as asyncssh would have begun it on the accept that is still a round trip away."""
    _on_ext_info(connection, pkttype, pktid, packet)
    version = connection.get_extra_info("server_version") or ""
    if (
        connection._next_service == _USERAUTH
        and not connection._auth_in_progress
        and not connection._auth_complete
        and version.startswith("SSH-2.0-OpenSSH_")
    ):
        _ACCEPTED_EARLY.add(connection)
        # (asyncssh then logs the service as accepted: what follows is its usual path)
        connection.logger.debug1("Beginning auth before the service accept: the server is OpenSSH")
        _on_service_accept(connection, MSG_SERVICE_ACCEPT, pktid, SSHPacket(String(_USERAUTH)))


def _service_accepted(connection: Any, pkttype: int, pktid: int, packet: Any) -> None:
    """The server's real accept: checked, and nothing more where authentication began."""
    if connection not in _ACCEPTED_EARLY:
        _on_service_accept(connection, pkttype, pktid, packet)
        return
    _ACCEPTED_EARLY.discard(connection)
    service = packet.get_string()
    packet.check_end()
    if service != _USERAUTH:
        raise ServiceNotAvailable("Unexpected service in service accept")
    connection.logger.debug1("Service ssh-userauth accepted (auth was already under way)")


def _signs_unasked(keypair: Any) -> bool:
    """Whether a key signs without stopping to ask its owner: one read from a file, and
    not a security key."""
    return isinstance(keypair, SSHLocalKeyPair) and not keypair.algorithm.startswith(b"sk-")


class _SignedFirst(_PublicKeyAuth):  # type: ignore[misc]
    """asyncssh's public-key authentication, but signing where it would have asked."""

    async def send_request(self, *args: bytes, key: Any = None, trivial: bool = True) -> None:
        asking = key is None and args[:1] == (Boolean(False),)
        if asking and self._conn in _SIGNING_FIRST and _signs_unasked(getattr(self, "_keypair", None)):
            await self._send_signed_request()  # which sends it, with the key, through here
            return
        await super().send_request(*args, key=key, trivial=trivial)


if _HANDLERS is not None:
    _HANDLERS[b"publickey"] = _SignedFirst
