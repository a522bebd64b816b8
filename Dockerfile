# improbe: a small image that runs as a non-root user.
# Build:  docker build -t improbe .
# Run:    docker run -v $PWD/improbe.toml:/etc/improbe/improbe.toml:ro -v improbe-data:/var/lib/improbe -e TIM_SECRET_KEY improbe
# The build mirrors CI's: cargo build --release --locked.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked && strip target/release/improbe

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/improbe --create-home improbe
COPY --from=build /src/target/release/improbe /usr/local/bin/improbe
USER improbe
WORKDIR /var/lib/improbe
VOLUME ["/var/lib/improbe"]
ENV IMPROBE_CONFIG=/etc/improbe/improbe.toml
# Needs [prober] listen in the config (e.g. "0.0.0.0:9464").
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s CMD ["improbe", "healthcheck"]
EXPOSE 9464
ENTRYPOINT ["improbe"]
CMD ["run"]
