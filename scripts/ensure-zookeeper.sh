#!/usr/bin/env bash
# Installs Debian's ZooKeeper package when it is missing (the tests and the demo
# start their own throwaway servers from it; nothing is left running).
# The TLS tests also need `openssl` (it packs the servers' PKCS12 key stores).
# The Kerberos tests (tests/kerberos.rs, the `gssapi` feature) need MIT Kerberos:
# a KDC and its admin tools (krb5-kdc, krb5-admin-server for kadmin.local), the
# client tools (krb5-user), and, to build the GSSAPI binding, libkrb5-dev (the
# headers and libgssapi_krb5) and libclang-dev (its bindgen) with pkg-config.
# The Curator interop tests (tests/tests/curator_*.rs) compile a Java peer with
# javac against Debian's Apache Curator 5 jars (default-jdk-headless,
# libcurator-recipes-java, libcurator-discovery-java).
set -euo pipefail
if { [ -x /usr/share/zookeeper/bin/zkServer.sh ] || [ -f /usr/share/java/zookeeper.jar ]; } \
  && command -v openssl >/dev/null \
  && [ -x /usr/sbin/krb5kdc ] && [ -x /usr/sbin/kadmin.local ] && [ -x /usr/sbin/kdb5_util ] \
  && command -v krb5-config >/dev/null && command -v pkg-config >/dev/null \
  && compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null \
  && command -v javac >/dev/null && [ -f /usr/share/java/curator-recipes.jar ] \
  && [ -f /usr/share/java/curator-x-discovery.jar ]; then
  exit 0
fi
echo "ZooKeeper, openssl, MIT Kerberos or Curator is not installed: installing Debian's packages" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y zookeeper openssl \
  krb5-kdc krb5-admin-server krb5-user libkrb5-dev libclang-dev pkg-config \
  default-jdk-headless libcurator-recipes-java libcurator-discovery-java
