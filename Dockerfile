# syntax=docker/dockerfile:1
# vitals: multi-stage build. The build stage compiles dependencies in their own layer (from the
# manifests alone), then the crate; the runtime stage holds the binary and Rocket.toml.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first: a change under src/ reuses this layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src target/release/.fingerprint/vitals-* target/release/deps/vitals-* target/release/deps/libvitals-*
COPY src ./src
# The status page's stylesheet is built into the binary.
COPY static ./static
RUN cargo build --release --locked

FROM debian:bookworm-slim
# The system's root certificates, which TLS checks trust unless a ca_file names others
# (slim images ship none). Unpinned on purpose: the roots should be the archive's newest.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin vitals
# vitals looks for Rocket.toml in its working directory.
WORKDIR /app
COPY --from=build /src/target/release/vitals /usr/local/bin/vitals
COPY Rocket.toml ./
ENV ROCKET_PROFILE=release \
    ROCKET_ADDRESS=0.0.0.0 \
    ROCKET_PORT=8000
USER 10001:10001
EXPOSE 8000
# vitals drains on SIGTERM: readiness 503 for health.drain_ms, then a graceful stop.
STOPSIGNAL SIGTERM
# No curl in the image: the binary probes itself (3 s bound, exit 0 on 2xx).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["vitals", "healthcheck"]
ENTRYPOINT ["vitals"]
CMD ["serve"]
