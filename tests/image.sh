#!/usr/bin/env bash
# Builds the container image without a container engine (deploy/build-image.sh: buildah, vfs,
# chroot isolation) and inspects what would be pushed, the OCI image layout:
#   - the config: user 65532:65532, entrypoint /linstor-migrator, the serve command, port 8080,
#     the /data volume, the version label = the crate version;
#   - the layers: the binary (root-owned, executable), /data owned by 65532, passwd with 65532,
#     CA certificates, and no shell or other program (nothing under bin/, no sh, bash, busybox);
#   - the size, compressed and unpacked;
#   - the unpacked root filesystem run as the image runs (chroot into it as uid 65532 when this
#     runs as root, so that the binary sees nothing but the image): `--version`, and `serve --demo`
#     answers /livez and writes its database into the image's /data.
#
# Usage: tests/image.sh [LAYOUT:TAG]   (default: build one with deploy/build-image.sh)
# Env:   CARGO_TARGET_DIR (deploy/build-binary.sh), SKIP_IMAGE=1 does nothing (says so).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
if [[ ${SKIP_IMAGE:-} == 1 ]]; then
  log "SKIP_IMAGE=1: the image is neither built nor inspected"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lm-image-test.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

start=$SECONDS
if [[ $# -ge 1 ]]; then
  image=$1
else
  image=$(deploy/build-image.sh "$WORK/oci")
  log "assembled in $((SECONDS - start)) s (the release build included, when it was not cached)"
fi
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)

# --- config and layers --------------------------------------------------------------------------
python3 - "${image%:*}" "${image##*:}" "$version" "$WORK/rootfs" <<'PY' || fail "the image is not what the Dockerfile says"
"""Reads an OCI image layout: checks the config and the files, unpacks the root filesystem."""
import gzip
import json
import os
import stat
import sys
import tarfile
from pathlib import Path

layout, tag, version, rootfs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def blob(digest):
    algo, hexdigest = digest.split(":")
    return layout / "blobs" / algo / hexdigest


index = json.loads((layout / "index.json").read_text())
desc = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
manifest = json.loads(blob(desc["digest"]).read_text())
config = json.loads(blob(manifest["config"]["digest"]).read_text())
c = config["config"]
check(c.get("User") == "65532:65532", f"user {c.get('User')!r}, not 65532:65532")
check(c.get("Entrypoint") == ["/linstor-migrator"], f"entrypoint {c.get('Entrypoint')}")
check(c.get("Cmd", [])[:1] == ["serve"] and "/data" in c.get("Cmd", []), f"command {c.get('Cmd')}")
check("8080/tcp" in c.get("ExposedPorts", {}), "port 8080 exposed")
check("/data" in c.get("Volumes", {}), "/data a volume")
check(c.get("Labels", {}).get("org.opencontainers.image.version") == version, f"version label {version}")

# the files of all layers, later layers over earlier ones (no whiteouts expected: checked)
files = {}
compressed = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
rootfs.mkdir()
as_root = os.geteuid() == 0
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"]), "r:*") as tar:
        for m in tar.getmembers():
            name = m.name.lstrip("./").rstrip("/")
            check(not os.path.basename(name).startswith(".wh."), f"a whiteout: {name}")
            files[name] = m
        # owners as recorded, when this process may set them (extraction filters: Python >= 3.11.4)
        safety = {"filter": "fully_trusted" if as_root else "tar"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(rootfs, numeric_owner=True, **safety)
unpacked = sum(m.size for m in files.values())

binary = files.get("linstor-migrator")
check(binary is not None and binary.isfile() and binary.mode & 0o111 and binary.uid == 0,
      "/linstor-migrator: a root-owned executable file")
data = files.get("data")
check(data is not None and data.isdir() and (data.uid, data.gid) == (65532, 65532), "/data: a directory of 65532:65532")
passwd = (rootfs / "etc/passwd").read_text() if (rootfs / "etc/passwd").exists() else ""
check(any(line.split(":")[2:4] == ["65532", "65532"] for line in passwd.splitlines()), "/etc/passwd has 65532")
check(files.get("etc/ssl/certs/ca-certificates.crt") is not None, "CA certificates")
programs = sorted(n for n, m in files.items() if m.isfile() and m.mode & 0o111 and n != "linstor-migrator")
check(not programs, f"no program but the binary (found {programs})")
shells = sorted(n for n in files if os.path.basename(n) in ("sh", "bash", "ash", "dash", "busybox"))
check(not shells, f"no shell (found {shells})")

print(f"  config: user {c['User']}, entrypoint {c['Entrypoint']}, cmd {c['Cmd']}", file=sys.stderr)
print(f"  {len(manifest['layers'])} layers, {len(files)} entries: "
      + ", ".join(sorted(n for n in files if files[n].isfile())), file=sys.stderr)
print(f"  size: {compressed / 2**20:.1f} MiB compressed, {unpacked / 2**20:.1f} MiB unpacked", file=sys.stderr)
for f in failures:
    print(f"  not ok: {f}", file=sys.stderr)
sys.exit(1 if failures else 0)
PY
log "config and layers as the Dockerfile says: user 65532, entrypoint, /data of 65532, CA certificates, no shell"

# --- the root filesystem, run ----------------------------------------------------------------------
rootfs=$WORK/rootfs
# in_image CMD...: runs CMD (a path inside the image) as the image runs it
if [[ $(id -u) == 0 ]]; then
  in_image() { chroot --userspec=65532:65532 "$rootfs" "$@"; }
  how="chroot into the unpacked image as 65532:65532"
else
  in_image() { local cmd=$1; shift; (cd "$rootfs" && "$rootfs$cmd" "$@"); }
  how="from the unpacked image (not root: no chroot)"
fi
out=$(in_image /linstor-migrator --version) || fail "/linstor-migrator --version failed"
[[ $out == "linstor-migrator $version" ]] || fail "--version says '$out'"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=/data
[[ $(id -u) == 0 ]] || data=$rootfs/data
LINSTOR_MIGRATOR_TOKEN=image-smoke-token-7b3c in_image /linstor-migrator serve --demo --listen "127.0.0.1:$port" --data-dir "$data" \
  >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null "http://127.0.0.1:$port/livez" 2>/dev/null; do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; fail "serve exited"; }
  ((SECONDS < deadline)) || fail "no /livez answer within 60 s"
  sleep 0.2
done
[[ -s $rootfs/data/linstor-migrator.db ]] || fail "no database in the image's /data"
log "$how: --version says '$out'; serve --demo answers /livez and keeps its database in /data"
log "OK ($((SECONDS - start)) s)"
