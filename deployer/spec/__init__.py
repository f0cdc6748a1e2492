"""The deployment spec: YAML in, a validated and frozen spec out.

* :mod:`~deployer.core.spec` — the :class:`~deployer.core.spec.Spec` the rest of
  deployer reads, its defaults and enums (no pydantic);
* :mod:`~deployer.spec.schema` — the pydantic models of a spec file;
* :mod:`~deployer.spec.load` — reading and checking a file, every problem with its file,
  line and field; the fleet a spec names;
* :mod:`~deployer.spec.hooks` — hooks resolved when a spec is read, and as the runner runs
  them;
* :mod:`~deployer.spec.json_schema` — the JSON Schemas for editors.

The values people write are typed in :mod:`deployer.inventory.fields`; a fleet written inline in a
spec is our inventory format (:mod:`deployer.inventory.ours`).
"""
