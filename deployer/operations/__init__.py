"""What ``deploy push``, ``rollback``, ``resume`` and ``reconcile`` do, apart from how they are shown.

The CLI and the TUI call these; they tie the spec, the fleet, the planner, the store
and the controller together. Nothing here prints: progress goes to the event sink,
results come back as values. One module per job, each importing only those above it:

    reading    a spec read for an operation, its Fabric tasks checked
    options    what the operator asked for, kept with the deployment
    context    who runs an operation, and with which runner
    reconcile  ask UNKNOWN hosts what became of them (``deploy reconcile``)
    plan       spec, inventory and store -> a deployment worked out, not started
    rollout    record a deployment and run its waves in the controller loop
    rollback   the automatic rollbacks of a halted deployment (``on_halt: rollback``)
    push       run a prepared deployment, then its rollback when due (``deploy push``)
    resume     take over a dead controller's deployment: resume it, or abort it
"""
