#!/usr/bin/env python3
"""An Ansible dynamic inventory: `--list` prints every group, `_meta` every host's variables.

A real one would ask a cloud API; this one prints a fixed fleet.
"""

import json
import sys

FLEET = {
    "edge_ams": {"hosts": ["edge-ams-1", "edge-ams-2"], "vars": {"datacenter": "ams"}},
    "edge_sin": {"hosts": ["edge-sin-1", "edge-sin-2"], "vars": {"datacenter": "sin"}},
    "edge": {"children": ["edge_ams", "edge_sin"], "vars": {"ansible_user": "deploy"}},
    "_meta": {
        "hostvars": {
            "edge-ams-1": {"ansible_host": "10.40.1.11"},
            "edge-ams-2": {"ansible_host": "10.40.1.12"},
            "edge-sin-1": {"ansible_host": "10.50.1.11"},
            "edge-sin-2": {"ansible_host": "10.50.1.12", "ansible_port": 2222},
        }
    },
}

if __name__ == "__main__":
    if sys.argv[1:] == ["--list"]:
        print(json.dumps(FLEET, indent=2))
    elif sys.argv[1:2] == ["--host"]:
        print(json.dumps(FLEET["_meta"]["hostvars"].get(sys.argv[2], {})))
    else:
        sys.exit("usage: edge-inventory.py --list | --host NAME")
