#!/usr/bin/env python3
"""A dynamic inventory inside an inventory folder: run like any other."""

import json

print(
    json.dumps(
        {
            "edge": {"hosts": ["edge-1"], "children": ["web"], "vars": {"datacenter": "pop"}},
            # web-1 is no host of this script: Ansible ignores what it says of it.
            "_meta": {
                "hostvars": {"edge-1": {"ansible_host": "192.0.2.10"}, "web-1": {"ansible_user": "ignored"}}
            },
        }
    )
)
