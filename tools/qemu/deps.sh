#!/usr/bin/env bash
# Installs what building and testing Pacifica needs on Debian 12: the kernel
# toolchain (LLVM, Debian's rustc-web with its core sources), QEMU, busybox for
# the initramfs, and a pinned bindgen-cli from crates.io. Safe to run again: it
# only installs what is missing.
set -euo pipefail
. "$(dirname "$0")/env.sh"

packages=(
	linux-source-6.12 rustc-web rust-web-src
	clang lld llvm libclang-dev
	qemu-system-x86 busybox-static cpio kmod
	bc flex bison libelf-dev libssl-dev xz-utils make gcc libc6-dev
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	step "installing Debian packages: ${missing[*]}"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$BINDGEN" ]; then
	step "installing bindgen-cli $BINDGEN_VERSION from crates.io (about 4 minutes)"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION" \
		--root "$PACIFICA_CACHE/bindgen-$BINDGEN_VERSION"
fi
