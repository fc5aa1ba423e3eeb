# Build
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin commitment-tracker

# Run
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app tracker \
    && mkdir -p /var/lib/commitment-tracker && chown tracker /var/lib/commitment-tracker
WORKDIR /app
COPY --from=build /src/target/release/commitment-tracker /usr/local/bin/commitment-tracker
COPY data ./data
USER tracker
ENV LISTEN_ADDR=0.0.0.0:8080
# The transparency log's signing key (created on first start) and last checkpoint: a volume.
ENV LOG_SIGNING_KEY_FILE=/var/lib/commitment-tracker/log-signing.key
EXPOSE 8080
ENTRYPOINT ["commitment-tracker"]
CMD ["serve", "--import", "/app/data/nhs-digitisation.json"]
