# ferry's container image: `ferry serve` with the config mounted at /etc/ferry.
#   docker build -t ferry .
#   docker run -v $PWD/config:/etc/ferry -e SLACK_APP_TOKEN -e SLACK_BOT_TOKEN ferry
# Build stage: the Rust toolchain, with dependencies cached in their own layer.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src target/release/deps/ferry* target/release/.fingerprint/ferry*
COPY src src
COPY config config
RUN cargo build --release --locked --bin ferry

# Runtime stage: CA certificates (Slack, Discord and webhooks use TLS), a shell for command
# deployers' scripts, time zone data, and a non-root user. No compiler, no sources.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/ferry --create-home ferry
COPY --from=build /src/target/release/ferry /usr/local/bin/ferry
USER ferry
WORKDIR /var/lib/ferry
ENV FERRY_CONFIG=/etc/ferry/ferry.toml
EXPOSE 8080
# The store defaults to sqlite next to the config; mount /etc/ferry writable, or use PostgreSQL.
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["serve", "--config", "/etc/ferry/ferry.toml"]
