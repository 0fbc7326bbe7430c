# syntax=docker/dockerfile:1
# herald in a container: `docker build -t herald .`, then
# `docker run -p 8080:8080 -v herald-data:/data herald`.
# Needs BuildKit (the default since Docker 23; older: DOCKER_BUILDKIT=1) for
# the cache mounts of the build step.
# The database defaults to SQLite in the /data volume; set
# HERALD_DATABASE_URL=postgres://… for Postgres (see docker-compose.yml).

# Build: the release binary, exactly the locked dependencies.
FROM rust:1.95-slim-bookworm AS build
# jemalloc's build runs make; ring and SQLite need only the C compiler
# the image has.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin herald \
 && cp target/release/herald /usr/local/bin/herald

# Run: a slim Debian, a user of its own, nothing else but CA certificates
# (for https webhooks).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home herald \
 && mkdir /data && chown herald:herald /data
COPY --from=build /usr/local/bin/herald /usr/local/bin/herald
USER herald
WORKDIR /data
VOLUME /data
ENV HERALD_LISTEN=0.0.0.0:8080 \
    HERALD_DATABASE_URL=sqlite:///data/herald.db \
    HERALD_LOG_FORMAT=json
EXPOSE 8080
# `herald health` asks GET /healthz on HERALD_URL (the port above by
# default; set HERALD_URL when herald listens elsewhere or over https).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["herald", "health"]
ENTRYPOINT ["herald"]
CMD ["serve"]
