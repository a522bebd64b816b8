#!/usr/bin/env bash
# Makes the images the Dockerfiles name from Debian's archive, without any
# image registry, and keeps them between runs (nothing is done for an image
# already there):
# - debian:bookworm-slim, the runtime stage's base: debootstrap a minimal
#   bookworm, import it under that name;
# - rust:<version>-slim-bookworm, the source build's: that base with the C
#   toolchain the official image carries (gcc, libc6-dev, ca-certificates)
#   and this machine's Rust toolchain of the version Dockerfile names
#   (rustup's, which runs on bookworm), as the official image lays it out,
#   trusting the certificate authorities this machine adds to Debian's
#   (/usr/local/share/ca-certificates: a TLS-inspecting proxy's, say), so
#   that cargo reaches crates.io from inside the build as it does here.
#   Left out, with a message, when that toolchain is not installed here.
# Needs root, podman and debootstrap (scripts/test.sh installs them).
# docs/container.md.
set -euo pipefail
cd "$(dirname "$0")/.."
base=docker.io/library/debian:bookworm-slim
build_flags=(--pull=never --format docker --runtime runc --network host
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if ! podman image exists "$base"; then
  rootfs=$(mktemp -d /var/tmp/improbe-base.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "making $base from Debian's archive (debootstrap, about a minute)..."
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
  rm -rf "$rootfs"
  echo "made $base"
fi

# The source build's image: the name and version from Dockerfile's first FROM.
rust_image=$(sed -n 's/^FROM \(rust:[^ ]*\).*/\1/p' Dockerfile | head -n 1)
rust_version=${rust_image#rust:}
rust_version=${rust_version%%-*}
if podman image exists "docker.io/library/$rust_image"; then
  exit 0
fi
toolchain=""
for dir in "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains/"$rust_version"*-x86_64-unknown-linux-gnu; do
  [ -x "$dir/bin/cargo" ] && toolchain=$dir
done
if [ -z "$toolchain" ]; then
  echo "no Rust $rust_version toolchain here (rustup toolchain install $rust_version): $rust_image not made" >&2
  exit 0
fi
context=$(mktemp -d /var/tmp/improbe-rust.XXXXXX)
trap 'rm -rf "$context"' EXIT
echo "making $rust_image from $base and $(basename "$toolchain")..."
mkdir "$context/rust"
# The toolchain without its documentation (800 MB nobody compiles with).
cp -a "$toolchain"/{bin,lib,libexec,etc} "$context/rust/"
mkdir "$context/local-ca"
cp /usr/local/share/ca-certificates/*.crt "$context/local-ca/" 2>/dev/null || true
cat > "$context/Containerfile" <<CONTAINERFILE
FROM $base
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY local-ca /usr/local/share/ca-certificates
RUN update-ca-certificates >/dev/null
COPY rust /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:\$PATH
CONTAINERFILE
podman build "${build_flags[@]}" -t "docker.io/library/$rust_image" "$context" >/dev/null
echo "made $rust_image"
