"""Our own inventory format: a list of hosts with their datacenters, and SSH defaults.

The same shape is a file of its own (``hosts:`` and ``ssh:``) or stands inline under a
spec's ``fleet:``; :func:`fleet_from_model` builds the fleet of either.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictBool, ValidationError

from deployer.core.errors import SpecError
from deployer.core.targets import Fleet, SshOptions
from deployer.inventory.assemble import HostEntry, assemble_fleet
from deployer.inventory.fields import (
    Address,
    Duration,
    FrozenModel,
    HostName,
    Label,
    Labels,
    LocalPath,
    PositiveDuration,
    ProxyJump,
    UserName,
    local_path,
)
from deployer.inventory.yamlload import Locate, YamlDocument, YamlPath, format_path, issues_from_validation


class SshModel(FrozenModel):
    """How to reach the hosts; every key optional (built-in defaults < inventory < spec)."""

    user: UserName | None = Field(default=None, description="remote user (a host's own user wins)")
    identity_file: LocalPath | None = Field(
        default=None, description="private key; ~ is the local home, relative to this file"
    )
    known_hosts: LocalPath | None = Field(
        default=None, description="known_hosts file; ~ is the local home, relative to this file"
    )
    connect_timeout: PositiveDuration | None = Field(default=None, description="default 10s")
    keepalive: Duration | None = Field(
        default=None, description="keepalive interval, 0 turns it off; default 15s"
    )
    host_key_policy: Literal["strict", "accept-new"] | None = Field(
        default=None,
        description="strict: the host key must be known; accept-new: learn unknown keys (default strict)",
    )
    use_ssh_config: StrictBool | None = Field(
        default=None, description="read the OpenSSH client config, config_file (default true)"
    )
    config_file: LocalPath | None = Field(
        default=None,
        description="OpenSSH client config (default ~/.ssh/config); paths as for identity_file",
    )
    proxy_jump: ProxyJump | None = Field(
        default=None,
        description="jump hosts as OpenSSH's ProxyJump: [user@]host[:port], comma-separated; none: direct",
    )


class HostModel(FrozenModel):
    """One host of our inventory format."""

    name: HostName = Field(description="unique name of the host")
    address: Address | None = Field(
        default=None, description="host name or IP to connect to (default: the name)"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, strict=True, description="SSH port (default: ~/.ssh/config's, else 22)"
    )
    user: UserName | None = Field(default=None, description="remote user for this host")
    datacenter: Label = Field(description="the datacenter the host is in; waves are striped across these")
    tags: Labels = Field(default=(), description="labels for --limit tag:NAME")
    ssh: SshModel = Field(
        default=SshModel(), description="this host's own SSH settings, over every ssh: block"
    )


class InventoryModel(FrozenModel):
    """Our inventory format: a list of hosts and inventory-wide SSH settings."""

    model_config = ConfigDict(title="deployer inventory")

    hosts: tuple[HostModel, ...] = Field(
        description="the hosts, in deployment order", json_schema_extra={"minItems": 1}
    )
    ssh: SshModel = Field(default=SshModel(), description="SSH defaults for these hosts")


def ssh_options(model: SshModel, base: Path) -> SshOptions:
    """The SSH settings of a spec or inventory, key and known_hosts paths made absolute."""
    return SshOptions(
        user=model.user,
        identity_file=str(local_path(model.identity_file, base)) if model.identity_file else None,
        known_hosts=str(local_path(model.known_hosts, base)) if model.known_hosts else None,
        connect_timeout=model.connect_timeout,
        keepalive=model.keepalive,
        host_key_policy=model.host_key_policy,
        use_ssh_config=model.use_ssh_config,
        config_file=str(local_path(model.config_file, base)) if model.config_file else None,
        proxy_jump=model.proxy_jump,
    )


def fleet_from_model(
    model: InventoryModel,
    *,
    file: str,
    base_dir: Path,
    locate: Locate,
    source: str,
) -> Fleet:
    """The fleet of our inventory format (a file, or inline in a spec)."""

    def where(path: YamlPath) -> tuple[str, int | None]:
        shown, line = locate(path)
        return format_path(shown), line

    entries = []
    for index, host in enumerate(model.hosts):
        shown, line = where(("hosts", index, "name"))
        entries.append(
            HostEntry(
                name=host.name,
                address=host.address or host.name,
                datacenter=host.datacenter,
                port=host.port,
                user=host.user,
                tags=frozenset(host.tags),
                ssh=ssh_options(host.ssh, base_dir),
                field=shown,
                line=line,
            )
        )
    return assemble_fleet(
        entries, file=file, ssh=ssh_options(model.ssh, base_dir), source=source, empty_at=where(("hosts",))
    )


def is_our_yaml(data: Mapping[str, Any]) -> bool:
    """A YAML inventory in our format rather than Ansible's: a list of ``hosts``, or ``ssh``."""
    return isinstance(data.get("hosts"), list) or "ssh" in data


def fleet_of_our_yaml(path: Path, document: YamlDocument) -> Fleet:
    """The fleet of an inventory file in our format; every problem a SpecError issue."""
    try:
        model = InventoryModel.model_validate(document.data)
    except ValidationError as error:
        raise SpecError(issues_from_validation(error, document, model=InventoryModel)) from None
    return fleet_from_model(
        model,
        file=document.file,
        base_dir=path.parent.absolute(),
        locate=lambda at: (at, document.line_of(at)),
        source=str(path),
    )
