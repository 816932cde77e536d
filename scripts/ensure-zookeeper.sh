#!/usr/bin/env bash
# Installs Debian's ZooKeeper package when it is missing (the tests and the demo
# start their own throwaway servers from it; nothing is left running).
# The TLS tests also need `openssl` (it packs the servers' PKCS12 key stores).
set -euo pipefail
if { [ -x /usr/share/zookeeper/bin/zkServer.sh ] || [ -f /usr/share/java/zookeeper.jar ]; } \
  && command -v openssl >/dev/null; then
  exit 0
fi
echo "ZooKeeper or openssl is not installed: installing Debian's zookeeper and openssl packages" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y zookeeper openssl
