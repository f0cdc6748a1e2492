#!/usr/bin/env python3
"""A script's `children` may name a group it does not list: Ansible adds it, empty."""

import json

print(
    json.dumps(
        {
            "web": {"hosts": ["web-1"], "vars": {"datacenter": "east"}},
            "edge": {"children": ["web", "cdn"]},
            "_meta": {"hostvars": {}},
        }
    )
)
