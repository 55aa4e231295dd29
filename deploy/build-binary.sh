#!/usr/bin/env bash
# Builds the release binary of linstor-migrator, the one command both the container image and the
# tests use: the Dockerfile's build stage RUNs this script, and tests/deploy.sh runs it on the host
# and starts the result. Change the build here, never in only one of the two.
#
# The binary is static (x86_64 musl): TLS is rustls and SQLite is compiled in (libsqlite3-sys
# "bundled"), so it needs no shared library and runs on distroless/static.
#
# Usage: deploy/build-binary.sh [OUT]
#   Prints the path of the built binary on stdout; with OUT, also copies it there.
# Needs: the toolchain of rust-toolchain.toml with the x86_64-unknown-linux-musl target (added
# here when missing) and musl-gcc (Debian: musl-tools) for the C code of ring and SQLite.
# Honours CARGO_TARGET_DIR (default: target/ of the repository).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET=x86_64-unknown-linux-musl

if ! command -v musl-gcc >/dev/null; then
  echo "build-binary: musl-gcc is missing (Debian: apt-get install musl-tools)" >&2
  exit 1
fi
# rustup reads rust-toolchain.toml in this directory, so the target lands in the pinned toolchain.
if ! rustup target list --installed | grep -qx "$TARGET"; then
  rustup target add "$TARGET" >&2
fi

# --locked: exactly the versions of Cargo.lock. -p: the service only (the workspace also holds the
# test stand-ins). Progress goes to stderr; stdout carries only the path.
cargo build --release --locked --target "$TARGET" -p linstor-migrator --bin linstor-migrator >&2

bin="${CARGO_TARGET_DIR:-target}/$TARGET/release/linstor-migrator"
if [[ $# -ge 1 ]]; then
  install -D -m 0755 "$bin" "$1"
  bin=$1
fi
echo "$bin"
