# syntax=docker/dockerfile:1
# Sigil's container image: the three service binaries and `sigil`, built in
# a Rust stage, run as a non-root user from a distroless glibc image (no
# shell, no package manager).
#
#   docker build -t sigil:0.1.0 .
#
# Each Deployment picks its binary with `command` (the Helm chart does);
# without one the image runs `sigil dev` on 0.0.0.0:50051 for a trial.

FROM rust:1.95-slim-bookworm AS builder
# aws-lc-sys (jsonwebtoken's crypto backend) and mimalloc (the allocator)
# compile C; protoc is vendored by protoc-bin-vendored, so a C compiler is
# all the build needs. Not pinned: Debian's point releases replace package
# versions, and the rust image tag already fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The caches keep crates and build artefacts between builds; the binaries
# are copied out because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        --bin sigil-issuer --bin sigil-validator --bin sigil-edge-token --bin sigil \
    && mkdir -p /out \
    && cp target/release/sigil-issuer target/release/sigil-validator \
          target/release/sigil-edge-token target/release/sigil /out/

# Debian 12 like the builder, so the glibc the binaries link against is there.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/ /usr/local/bin/
# 65532 is distroless' "nonroot"; numeric so runAsNonRoot can check it.
USER 65532:65532
# gRPC: issuer, validator, edge-token; edge-token's HTTP (/edge/validate);
# Prometheus /metrics.
EXPOSE 50051 50052 50053 3063 9464
CMD ["sigil", "dev", "--listen", "0.0.0.0:50051"]
