#!/usr/bin/env python3
"""Prints the default world (fixtures/world.json) with N more agents in its first org, for the
benchmarks: bench1@wxcc.example ... benchN@wxcc.example in the Support team, each with its own
extension (2000001 ...) and a token bench<i>_P0A1_<org> (scope cjp:user).

    python3 bench/world.py 10000 > /tmp/world-10k.json
"""
import json
import sys
import uuid
from pathlib import Path

n = int(sys.argv[1]) if len(sys.argv) > 1 else 180
world = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "world.json").read_text())
org = world["orgs"][0]
template = next(u for u in org["users"] if u["email"] == "agent2@wxcc.example")
for i in range(1, n + 1):
    user = dict(template)
    user["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"wxcc-mock-bench-{i}"))
    user["email"] = f"bench{i}@wxcc.example"
    user["firstName"], user["lastName"] = "Bench", str(i)
    user["defaultDialledNumber"] = str(2000000 + i)
    org["users"].append(user)
    org["dialNumbers"].append(user["defaultDialledNumber"])
    world["tokens"].append({
        "accessToken": f"bench{i}_{org['cluster']}_{org['id']}",
        "email": user["email"],
        "scopes": ["cjp:user"],
        "description": "A benchmark agent.",
    })
json.dump(world, sys.stdout)
