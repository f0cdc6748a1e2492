#!/usr/bin/env python3
"""Host forms of issue 18 from a dynamic inventory: a script lists every host by name
(Ansible expands no range and reads no host:port in a script's output), ports as
ansible_port."""

import json
import sys

if sys.argv[1:] != ["--list"]:
    sys.exit("usage: inventory.py --list")
print(
    json.dumps(
        {
            "all": {"vars": {"datacenter": "r1"}},
            "mail": [f"mail{n}.example.com" for n in range(6)],
            "v6": {
                "hosts": ["2001:db8::11", "2001:db8::12", "2001:db8::13"],
                "vars": {"datacenter": "r6"},
            },
            "web": {
                "hosts": ["www01.example.com", "www05.example.com", "www09.example.com", "web0", "10.0.0.5"]
            },
            "db": ["db-a.example.com", "db-c.example.com", "db-e.example.com", "db-Y", "db-Z"],
            "_meta": {
                "hostvars": {
                    "2001:db8::11": {"ansible_port": 2222},
                    "2001:db8::13": {"ansible_port": 2223, "ansible_user": "v6admin"},
                    "web0": {"ansible_port": 2201},
                    "10.0.0.5": {"ansible_port": 2205},
                }
            },
        }
    )
)
