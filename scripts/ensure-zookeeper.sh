#!/usr/bin/env bash
# Installs Debian's ZooKeeper package when it is missing (the tests and the demo
# start their own throwaway servers from it; nothing is left running).
set -euo pipefail
if [ -x /usr/share/zookeeper/bin/zkServer.sh ] || [ -f /usr/share/java/zookeeper.jar ]; then
  exit 0
fi
echo "ZooKeeper is not installed: installing Debian's zookeeper package" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y zookeeper
