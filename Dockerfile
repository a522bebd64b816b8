# improbe: a small image that runs as a non-root user.
# Build:  docker build -t improbe .
# Run:    docker run -v $PWD/improbe.toml:/etc/improbe/improbe.toml:ro -v improbe-data:/var/lib/improbe -e TIM_SECRET_KEY improbe
#
# The default build compiles from source, as CI does (cargo build --release
# --locked). To package a binary built outside instead (a glibc build for
# Debian bookworm or older, as `cargo build --release` makes on such a
# machine), put it alone in a directory and build with that directory as the
# context:  docker build --build-arg BINARY=context -f Dockerfile DIR
# (docs/container.md; tests/it/container.rs builds the image this way).
ARG BINARY=source

FROM rust:1.95-slim-bookworm AS from-source
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs link-order.txt ./
# The bundled SQLite's compile options (docs/performance.md, memory).
COPY .cargo ./.cargo
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked \
 && strip target/release/improbe \
 && cp target/release/improbe /improbe

FROM scratch AS from-context
COPY improbe /improbe

FROM from-${BINARY} AS binary

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --home-dir /var/lib/improbe --create-home improbe
COPY --from=binary /improbe /usr/local/bin/improbe
USER improbe
WORKDIR /var/lib/improbe
VOLUME ["/var/lib/improbe"]
ENV IMPROBE_CONFIG=/etc/improbe/improbe.toml
# Needs [prober] listen in the config (e.g. "0.0.0.0:9464").
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s CMD ["improbe", "healthcheck"]
EXPOSE 9464
ENTRYPOINT ["improbe"]
CMD ["run"]
