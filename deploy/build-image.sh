#!/usr/bin/env bash
# Builds the container image without a container engine or a registry, for CI machines that have
# neither: buildah (storage driver vfs, chroot isolation, its storage in a scratch directory, so
# nothing is left in /var/lib/containers) builds the Dockerfile's runtime stage, on two images it
# makes first:
#   - BINARY_IMAGE: /out as the Dockerfile's build stage leaves it (the binary from
#     deploy/build-binary.sh on this host, an empty data directory): the build stage's Rust image
#     cannot be pulled here, and the build command is the same script anyway;
#   - RUNTIME_IMAGE: gcr.io/distroless/static-debian12:nonroot when it can be pulled, otherwise
#     a FROM-scratch stand-in with what the binary needs of it: CA certificates (Debian's bundle),
#     /etc/passwd and /etc/group with root and nonroot (65532), /tmp and /home/nonroot.
# The labels, user, ports, volume, entrypoint and command are the Dockerfile's own.
#
# Usage: deploy/build-image.sh OUT
#   Writes an OCI image layout to the directory OUT (replaced) and prints OUT:TAG (TAG: the crate
#   version). Needs buildah (Debian: apt-get install buildah) and root (or a working rootless
#   buildah); deploy/build-binary.sh's needs. Progress goes to stderr.
# Env: RUNTIME_IMAGE  overrides the runtime base (e.g. a mirror of distroless)
#      PULL_TIMEOUT   seconds to try pulling the runtime base (default 30)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ $# -eq 1 ]] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
command -v buildah >/dev/null || { echo "build-image: buildah is missing (Debian: apt-get install buildah)" >&2; exit 1; }
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
runtime=${RUNTIME_IMAGE:-$(sed -n 's/^ARG RUNTIME_IMAGE=//p' Dockerfile)}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lm-image.XXXXXX")
trap 'buildah --storage-driver vfs --root "$scratch/root" --runroot "$scratch/run" rm --all >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
bh() { buildah --storage-driver vfs --root "$scratch/root" --runroot "$scratch/run" "$@"; }
export BUILDAH_ISOLATION=chroot
log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- the build stage's output ---------------------------------------------------------------------
bin=$(deploy/build-binary.sh)
mkdir -p "$scratch/binary/out/data"
install -m 0755 "$bin" "$scratch/binary/out/linstor-migrator"
c=$(bh from scratch)
bh copy "$c" "$scratch/binary/out" /out >/dev/null
bh commit --quiet --rm "$c" "localhost/linstor-migrator-binary:$version" >/dev/null
log "BINARY_IMAGE: /out with $bin ($(du -h "$bin" | cut -f1))"

# --- the runtime base -----------------------------------------------------------------------------
if timeout "${PULL_TIMEOUT:-30}" buildah --storage-driver vfs --root "$scratch/root" --runroot "$scratch/run" \
  pull --quiet "docker://$runtime" >/dev/null 2>"$scratch/pull.err"; then
  base=$runtime
  log "RUNTIME_IMAGE: $runtime (pulled)"
else
  log "RUNTIME_IMAGE: $runtime cannot be pulled ($(tail -1 "$scratch/pull.err")); a FROM-scratch stand-in"
  # the files as a tarball with exact owners and modes (buildah add unpacks it as it is)
  python3 - "$scratch/base.tar" <<'PY'
import io
import sys
import tarfile

CA = "/etc/ssl/certs/ca-certificates.crt"
with tarfile.open(sys.argv[1], "w") as tar:
    def add(name, data=None, mode=0o644, uid=0, kind=tarfile.REGTYPE):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid = kind, mode, uid, uid
        info.uname = info.gname = "nonroot" if uid else "root"
        if data is not None:
            info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if data is not None else None)

    for d, mode, uid in [("etc", 0o755, 0), ("etc/ssl", 0o755, 0), ("etc/ssl/certs", 0o755, 0),
                         ("tmp", 0o1777, 0), ("home", 0o755, 0), ("home/nonroot", 0o700, 65532)]:
        add(d, mode=mode, uid=uid, kind=tarfile.DIRTYPE)
    add("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
                      b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
                      b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    add("etc/group", b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")
    with open(CA, "rb") as f:
        add("etc/ssl/certs/ca-certificates.crt", f.read())
PY
  base=localhost/linstor-migrator-runtime-base:stand-in
  c=$(bh from scratch)
  bh add "$c" "$scratch/base.tar" / >/dev/null
  bh config --label "org.opencontainers.image.description=stand-in for $runtime" "$c"
  bh commit --quiet --rm "$c" "$base" >/dev/null
fi

# --- the Dockerfile's runtime stage ---------------------------------------------------------------
# The context stays empty: the runtime stage copies only from BINARY_IMAGE, and the unused build
# stage is skipped.
mkdir -p "$scratch/context"
bh bud --quiet --isolation chroot --layers=false --pull=false \
  --build-arg "BINARY_IMAGE=localhost/linstor-migrator-binary:$version" \
  --build-arg "RUNTIME_IMAGE=$base" --build-arg "VERSION=$version" \
  -t "localhost/linstor-migrator:$version" -f Dockerfile "$scratch/context" >/dev/null
rm -rf "$out"
bh push --quiet "localhost/linstor-migrator:$version" "oci:$out:$version" >/dev/null
log "built localhost/linstor-migrator:$version on $base into the OCI layout $out"
echo "$out:$version"
