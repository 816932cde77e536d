#!/usr/bin/env bash
# Makes a Python venv with kazoo 2.11 from PyPI for the interop tests (our
# watchers and recipes against a real kazoo process) and prints the path of its
# python, which the tests take from ZK_KAZOO_PYTHON. Reuses the venv when it is there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${ZK_KAZOO_VENV:-$PWD/target/kazoo-venv}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import kazoo' 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi
if ! python3 -m venv "$venv" >/dev/null 2>&1; then
  echo "python3 cannot make a venv: installing python3-venv" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y python3 python3-venv >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install --quiet kazoo==2.11.0 >&2
"$venv/bin/python" -c 'import kazoo' >&2
echo "$venv/bin/python"
