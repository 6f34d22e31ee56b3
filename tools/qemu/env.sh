# Shared settings for the testbed scripts; sourced, not run.
# The kernel side must be built by Debian's rustc-web (it has the core sources
# the kernel needs); the rustup toolchain first on PATH builds userspace only.
PACIFICA_CACHE=${PACIFICA_CACHE:-$HOME/.cache/pacifica}
BINDGEN_VERSION=0.73.2
BINDGEN=$PACIFICA_CACHE/bindgen-$BINDGEN_VERSION/bin/bindgen
KRUST=(LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN="$BINDGEN")

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
