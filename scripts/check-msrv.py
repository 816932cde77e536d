#!/usr/bin/env python3
"""The MSRV the workspace declares must be at least every library dependency's.

A declaration is not a build: rustyline 19 declared an older Rust than the
cfg_select! it uses. scripts/msrv-build.sh does the real build with 1.85; this
check is the quick one that names the dependency when a declaration is too new.
"""
import json
import subprocess
import sys

# Optional dependencies whose feature documents a higher Rust: zk-testkit's `certs`
# (rcgen 0.14 and time need 1.88). scripts/msrv-build.sh builds the kit without it.
EXEMPT = {("zk-testkit", "rcgen")}
LIBS = {"zk-proto", "zk-client", "zk-gssapi", "zk-recipes", "zk-tls", "zk-tokio", "zk-smol", "zk-blocking", "zk", "zk-testkit"}


def ver(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True, capture_output=True, text=True,
    ).stdout
)
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
declared = {pkgs[i].get("rust_version") for i in pkgs if pkgs[i]["name"] in LIBS}
if len(declared) != 1 or None in declared:
    sys.exit(f"library crates declare different or no rust-version: {declared}")
msrv = declared.pop()
stack = [i for i in pkgs if pkgs[i]["name"] in LIBS]
seen = set()
too_new = []
while stack:
    i = stack.pop()
    if i in seen:
        continue
    seen.add(i)
    rv = pkgs[i].get("rust_version")
    if rv and ver(rv) > ver(msrv):
        too_new.append(f"{pkgs[i]['name']} {pkgs[i]['version']} needs {rv}")
    for d in nodes[i]["deps"]:
        if (pkgs[i]["name"], pkgs[d["pkg"]]["name"]) in EXEMPT:
            continue
        if any(k["kind"] in (None, "normal") for k in d["dep_kinds"]):
            stack.append(d["pkg"])
if too_new:
    sys.exit(f"declared MSRV {msrv} is below what the dependencies need: " + ", ".join(too_new))
print(f"MSRV {msrv}: {len(seen)} library crates and dependencies agree")
