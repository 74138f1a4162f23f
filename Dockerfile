# tracekeeper: one image, every role (`all-in-one`, `collector`, `indexer`, `query`,
# `retention`, `schema apply`). Build: docker build -t tracekeeper .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p tracekeeper && cp target/release/tracekeeper /usr/local/bin/tracekeeper

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl libssl3 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/tracekeeper /usr/local/bin/tracekeeper
RUN useradd --system --home /var/lib/tracekeeper --create-home tracekeeper
USER tracekeeper
WORKDIR /var/lib/tracekeeper
# OTLP gRPC, OTLP HTTP, Zipkin, query API, indexer admin, retention admin
EXPOSE 4317 4318 9411 16685 16686 14270 14271
ENTRYPOINT ["tracekeeper"]
CMD ["all-in-one", "--data-dir", "/var/lib/tracekeeper/data"]
