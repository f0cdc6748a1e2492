"""Inventories: the hosts a spec deploys to, read from the files people already keep.

Four formats and a folder of them, recognised by
:func:`deployer.inventory.load.load_inventory`:

* **an executable file** (:mod:`~deployer.inventory.script`) — an Ansible dynamic
  inventory script, run with ``--list`` (bounded by a timeout); its JSON groups,
  ``vars``, ``children`` and ``_meta.hostvars`` are read as Ansible reads them
  (``--host NAME`` per host when there is no ``_meta``);
* **our YAML** (:mod:`~deployer.inventory.ours`) — ``hosts:`` as a list of ``{name,
  address, port, user, datacenter, tags}`` plus optional ``ssh:`` defaults (the same
  shape may stand inline in a spec);
* **an Ansible YAML inventory** (:mod:`~deployer.inventory.ansible_yaml`) — groups with
  ``hosts``, ``vars`` and ``children``;
* **an Ansible INI inventory** (:mod:`~deployer.inventory.ini`) — ``[group]``,
  ``[group:vars]``, ``[group:children]``;
* **a folder** of Ansible inventories and scripts (:mod:`~deployer.inventory.load`),
  merged in name order as ``ansible -i folder/`` merges them.

Ansible inventories are read as they are (:mod:`~deployer.inventory.ansible`):
``ansible_host``, ``ansible_port`` and ``ansible_user`` (and their old ``ansible_ssh_*``
spellings) say how to connect, and the host variable ``datacenter`` (set on the host, or
inherited from a group, the ``group_vars/`` and ``host_vars/`` folders next to the
inventory included) says where the host is. A host's groups become its tags, for
``--limit tag:web``. Variables merge as Ansible merges them: groups by depth from ``all``
then name, group files over inventory group vars, host vars over both.

Every format ends in :func:`~deployer.inventory.assemble.assemble_fleet`, which checks
what holds for a whole fleet (a datacenter per host, unique names).

Problems with what a file says are :class:`~deployer.core.errors.SpecError` issues (file,
line, field); a script that cannot be run, fails, times out or prints something
other than JSON is a :class:`~deployer.core.errors.FleetError`.
"""
