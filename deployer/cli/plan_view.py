"""The plan of a deployment as ``deploy plan`` and ``deploy push`` show it: text and JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployer.core.wording import count_of, format_table

if TYPE_CHECKING:
    from deployer.operations.plan import Prepared


def plan_json(prepared: Prepared) -> dict[str, Any]:
    spec, plan = prepared.spec, prepared.plan
    return {
        "app": spec.app,
        "environment": spec.environment,
        "version": spec.version,
        "kind": prepared.kind.value,
        "previous_version": prepared.previous_version,
        "failure_budget": prepared.failure_budget,
        "waves": [
            {
                "index": wave.index,
                "hosts": [
                    {"name": h.name, "datacenter": h.datacenter, "address": h.address} for h in wave.hosts
                ],
            }
            for wave in plan.waves
        ],
        "skipped": [{"name": skip.host.name, "reason": skip.reason} for skip in plan.skipped],
        "unknown": list(prepared.unknown),
    }


def plan_text(prepared: Prepared) -> str:
    spec, plan = prepared.spec, prepared.plan
    datacenters = list(dict.fromkeys(h.datacenter for wave in plan.waves for h in wave.hosts))
    lines = [
        f"{prepared.kind.value} {spec.app} {prepared.previous_version or '(new)'} -> {spec.version} "
        f"in {spec.environment}: {count_of(plan.host_count, 'host')} in {count_of(len(plan.waves), 'wave')}, "
        f"{count_of(prepared.failure_budget, 'failure')} allowed"
        + (f", {len(plan.skipped)} skipped" if plan.skipped else "")
    ]
    if plan.waves:
        header = ["wave", "hosts", *datacenters, "names"]
        rows = []
        for wave in plan.waves:
            per_dc = {dc: sum(1 for h in wave.hosts if h.datacenter == dc) for dc in datacenters}
            names = _names(wave_names=[h.name for h in wave.hosts])
            rows.append(
                [
                    str(wave.index),
                    str(len(wave.hosts)),
                    *(str(per_dc[dc] or "-") for dc in datacenters),
                    names,
                ]
            )
        lines += format_table(header, rows)
    for skip in plan.skipped:
        lines.append(f"skipped {skip.host.name}: {skip.reason}")
    if prepared.unknown:
        lines.append(
            f"unknown outcome (the connection dropped; a push probes them first, or `deploy reconcile`): "
            f"{', '.join(prepared.unknown)}"
        )
    return "\n".join(lines)


def _names(wave_names: list[str], most: int = 8) -> str:
    if len(wave_names) <= most:
        return " ".join(wave_names)
    return " ".join(wave_names[:most]) + f" ... (+{len(wave_names) - most})"
