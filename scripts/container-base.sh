#!/usr/bin/env bash
# Makes the base image the Dockerfile's runtime stage names
# (debian:bookworm-slim) from Debian's archive, without any image registry:
# debootstrap a minimal bookworm, import it under that name. Kept between
# runs: nothing is done when the image is already there. Needs root, podman
# and debootstrap (scripts/test.sh installs them). docs/container.md.
set -euo pipefail
image=docker.io/library/debian:bookworm-slim
if podman image exists "$image"; then
  exit 0
fi
rootfs=$(mktemp -d /var/tmp/improbe-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "making $image from Debian's archive (debootstrap, about a minute)..."
debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
tar -C "$rootfs" -c . | podman import - "$image" >/dev/null
echo "made $image"
