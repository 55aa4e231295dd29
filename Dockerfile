# syntax=docker/dockerfile:1
#
# linstor-migrator: a static (musl) binary on distroless/static, non-root, for a read-only root
# filesystem (the Helm chart in deploy/linstor-migrator sets that up).
#
#   docker build -t linstor-migrator:0.1.0 .
#   docker run --rm -p 8080:8080 linstor-migrator:0.1.0 serve --demo --listen 0.0.0.0:8080 --data-dir /data
#
# The build stage runs deploy/build-binary.sh, the same script tests/deploy.sh builds and tests
# the binary with. BuildKit cache mounts keep the crate registry and target/ between builds, so a
# change in src/ recompiles only this crate.
#
# Where no registry can be reached, deploy/build-image.sh builds this file's runtime stage with
# buildah: BINARY_IMAGE then names an image holding /out from deploy/build-binary.sh on the host,
# and RUNTIME_IMAGE a FROM-scratch stand-in for distroless (CA certificates, passwd with 65532).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot
# Where the runtime stage takes /out (the binary, an empty data directory) from.
ARG BINARY_IMAGE=build

FROM ${RUST_IMAGE} AS build
# musl-gcc compiles the C parts (ring, the bundled SQLite) for the musl target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The pinned toolchain and the musl target first: this layer changes only with the pin.
COPY rust-toolchain.toml ./
RUN (rustup show active-toolchain || rustup toolchain install) \
 && rustup target add x86_64-unknown-linux-musl
# The workspace: the manifest and lock file, the test stand-ins' crate (a workspace member cargo
# must see), and everything compiled into the binary: askama templates, static assets and sqlx
# migrations are embedded at compile time.
COPY Cargo.toml Cargo.lock ./
COPY tests/cluster/standins tests/cluster/standins
COPY migrations migrations
COPY templates templates
COPY static static
COPY src src
COPY deploy/build-binary.sh deploy/build-binary.sh
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    deploy/build-binary.sh /out/linstor-migrator \
 && mkdir -p /out/data

FROM ${BINARY_IMAGE} AS binary

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="linstor-migrator" \
      org.opencontainers.image.description="Moves a LINSTOR controller's database from etcd to the Kubernetes backend" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary /out/linstor-migrator /linstor-migrator
# The data directory (SQLite database and backups), owned by the non-root user so that a plain
# `docker run` can write to the anonymous volume; Kubernetes mounts a PVC here (fsGroup 65532).
COPY --from=binary --chown=65532:65532 /out/data /data
USER 65532:65532
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/linstor-migrator"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
