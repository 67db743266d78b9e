# syntax=docker/dockerfile:1
# One image for every tally program; the container's command chooses
# (tally-ingest, tally-aggregate, tally-store, tally-gen, tally-devbroker).

# ---- build ------------------------------------------------------------------
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        librdkafka-dev libpq-dev libjansson-dev zlib1g-dev libmicrohttpd-dev \
        libcmocka-dev libgoogle-perftools-dev \
 && rm -rf /var/lib/apt/lists/*
# libcmocka-dev: tests/CMakeLists.txt links the unit tests against cmocka,
# so the configure step needs it even though no test ships in the image.
# libgoogle-perftools-dev: tcmalloc, the programs' allocator (CMakeLists.txt).
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j \
 && strip --strip-unneeded build/bin/tally-*

# ---- runtime ----------------------------------------------------------------
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librdkafka1 libpq5 libjansson4 zlib1g libmicrohttpd12 \
        libtcmalloc-minimal4 \
        ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tally \
 && useradd --system --uid 10001 --gid tally --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tally
COPY --from=build /src/build/bin/tally-* /usr/local/bin/
USER tally:tally
# /metrics and /healthz (the daemons listen only when TALLY_HTTP_PORT != 0)
ENV TALLY_HTTP_PORT=8080
EXPOSE 8080
CMD ["tally-ingest", "--help"]
