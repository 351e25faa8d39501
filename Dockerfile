# LangGuard as a container image: `docker build -t langguard .`
#
# Build stage: the release binary, with dependencies cached in their own layer.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p langguard \
    && install -m 0755 target/release/langguard /usr/local/bin/langguard

# Runtime: Debian slim with CA certificates (Cloudflare's API is HTTPS), a non-root user, and
# the data directory as a volume (the SQLite file and key; unused with PostgreSQL and
# LANGGUARD_ENCRYPTION_KEY, where the container keeps no state).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/langguard --shell /usr/sbin/nologin langguard \
    && install -d -o langguard -g langguard -m 0700 /var/lib/langguard
COPY --from=build /usr/local/bin/langguard /usr/local/bin/langguard
USER langguard
ENV LANGGUARD_DATA_DIR=/var/lib/langguard \
    LANGGUARD_LISTEN=0.0.0.0:8080 \
    LANGGUARD_LOG_FORMAT=json
VOLUME ["/var/lib/langguard"]
EXPOSE 8080
# Liveness: GET /healthz; readiness: GET /readyz (the database answers). SIGTERM stops cleanly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/langguard"]
CMD ["serve"]
