#!/usr/bin/env python3
"""A dynamic inventory inside an inventory folder: run like any other."""

import json

print(
    json.dumps(
        {
            "edge": {"hosts": ["edge-1"], "children": ["web"], "vars": {"datacenter": "pop"}},
            "_meta": {"hostvars": {"edge-1": {"ansible_host": "192.0.2.10"}}},
        }
    )
)
