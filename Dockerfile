# improbe: a small image that runs as a non-root user, compiled from source.
# Build:  docker build -t improbe .        (podman build -t improbe . alike)
# Run:    docker run -v $PWD/improbe.toml:/etc/improbe/improbe.toml:ro -v improbe-data:/var/lib/improbe -e TIM_SECRET_KEY improbe
#
# To package a binary built elsewhere instead, Dockerfile.binary (its
# runtime stage is this one's; tests/it/container.rs checks they agree).
# docs/container.md.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The bundled SQLite's compile options (docs/performance.md, memory).
COPY .cargo ./.cargo
COPY src ./src
COPY migrations ./migrations
# Relative relocations packed (DT_RELR): the time zone table alone needs
# some 28,000, a megabyte of the binary that every start reads whole as
# classic entries. Here only, since the binary needs glibc 2.36+ where it
# runs, which this image's base has and Ubuntu 22.04 or RHEL 9 have not
# (docs/container.md).
RUN RUSTFLAGS="-C link-arg=-Wl,-z,pack-relative-relocs" cargo build --release --locked \
 && strip target/release/improbe \
 && cp target/release/improbe /improbe

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --home-dir /var/lib/improbe --create-home improbe
COPY --from=build /improbe /usr/local/bin/improbe
USER improbe
WORKDIR /var/lib/improbe
VOLUME ["/var/lib/improbe"]
ENV IMPROBE_CONFIG=/etc/improbe/improbe.toml
# Needs [prober] listen in the config (e.g. "0.0.0.0:9464").
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s CMD ["improbe", "healthcheck"]
EXPOSE 9464
ENTRYPOINT ["improbe"]
CMD ["run"]
