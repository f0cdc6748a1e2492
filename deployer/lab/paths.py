"""Where a lab keeps its files inside its directory.

::

    DIR/
      lab.json          what `up` asked for (hosts, user); read by the server
      lab.pid           the server's pid, while it runs
      lab.lock          flock-held by the server for its whole life: "is a lab running here?"
      lab.log           the server's log (its stdout and stderr)
      control.sock      the server's control socket (status, break, fix, stop)
      inventory.yaml    the lab as a deployer inventory
      client_key(.pub)  the only key the hosts accept
      known_hosts       every host's own key, as [address]:port
      host_keys/NAME    each host's private key
      hosts/NAME/       each host's home: HOME and cwd of its sessions
      hosts/NAME/.lab/unhealthy   present while the host is broken with fail-hook
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# sun_path holds 108 bytes with its terminating NUL; keep clear of the edge.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True, slots=True)
class LabPaths:
    dir: Path  # absolute and resolved

    @classmethod
    def of(cls, directory: str | os.PathLike[str]) -> LabPaths:
        # Resolved, so the path recorded in the server's command line is the same from any cwd.
        return cls(Path(directory).expanduser().resolve())

    @property
    def config(self) -> Path:
        return self.dir / "lab.json"

    @property
    def pid_file(self) -> Path:
        return self.dir / "lab.pid"

    @property
    def lock_file(self) -> Path:
        return self.dir / "lab.lock"

    @property
    def log(self) -> Path:
        return self.dir / "lab.log"

    @property
    def control_socket(self) -> Path:
        return self.dir / "control.sock"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def client_key(self) -> Path:
        return self.dir / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def host_keys(self) -> Path:
        return self.dir / "host_keys"

    @property
    def homes(self) -> Path:
        return self.dir / "hosts"

    def host_key(self, name: str) -> Path:
        return self.host_keys / name

    def home(self, name: str) -> Path:
        return self.homes / name

    def unhealthy_marker(self, name: str) -> Path:
        return self.home(name) / ".lab" / "unhealthy"


@contextlib.contextmanager
def unix_socket_address(path: Path) -> Iterator[str]:
    """An address for ``bind``/``connect`` that reaches ``path`` even when it is too long.

    A Unix socket path is limited to 107 bytes, and pytest's temporary directories
    easily pass that. A long path is reached through ``/proc/self/fd/N/``, N being an
    ``O_PATH`` descriptor of its directory, open for as long as the block runs.
    """
    text = str(path)
    if len(os.fsencode(text)) <= _MAX_SOCKET_PATH:
        yield text
        return
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)
