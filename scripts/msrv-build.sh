#!/usr/bin/env bash
# Builds every library crate (and the kit) with the declared
# minimum Rust version, a real 1.85 toolchain: Debian bookworm's rustc-web and
# cargo-web at 1.85.0 (installed under /usr/bin beside rustup's toolchain, which
# stays the default). Installs them when missing (needs root, as CI has).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
pkgver="1.85.0+dfsg3-1~deb12u3"
if [ "$want" != "1.85" ]; then
  echo "msrv-build: Cargo.toml declares $want; this script installs 1.85 ($pkgver): update both" >&2
  exit 1
fi
if ! /usr/bin/rustc --version 2>/dev/null | grep -q "^rustc 1\.85\."; then
  if [ "$(id -u)" != 0 ]; then
    echo "msrv-build: rustc 1.85 is not in /usr/bin and installing it needs root:" >&2
    echo "  apt-get install rustc-web=$pkgver cargo-web=$pkgver libstd-rust-web-dev=$pkgver libstd-rust-web-1.85=$pkgver" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y \
    "rustc-web=$pkgver" "cargo-web=$pkgver" "libstd-rust-web-dev=$pkgver" "libstd-rust-web-1.85=$pkgver"
fi
/usr/bin/rustc --version
target="${CARGO_TARGET_DIR:-target}/msrv"
RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR="$target" /usr/bin/cargo build --locked \
  -p zk-proto -p zk-client -p zk-gssapi -p zk-recipes -p zk-tls -p zk-tokio -p zk-smol -p zk-blocking -p zk \
  --all-features
# The kit without its `certs` feature (rcgen needs Rust 1.88; the feature says so).
RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR="$target" /usr/bin/cargo build --locked \
  -p zk-testkit
echo "msrv-build: every library crate builds with $(/usr/bin/rustc --version)"
