#!/usr/bin/env bash
# Builds the L1 test kernel from Debian's linux-source-6.12 and the fragment
# l1.config, outside the work tree so every clone shares it.
#
#   kernel.sh path    print the build directory (KDIR) for the current inputs
#   kernel.sh build   build it if it is not built yet, then print KDIR
#
# The build directory is keyed by the kernel source version, the fragment and
# the toolchain versions: changing any of them builds a new kernel beside the
# old one, and a second run with the same inputs reuses the first.
#
# PACIFICA_KERNEL=kasan selects the KASAN lane's kernel: l1-kasan.config on
# top of l1.config (`make test-kasan`). PACIFICA_KERNEL=guest builds the
# small Linux guest Pacifica boots (tools/linux-guest/guest.config on top of
# tinyconfig; bzImage and vmlinux, no modules, no Rust).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

fragments=("$here/l1.config")
suffix="" what="the L1 kernel" targets=(bzImage modules) minutes="11-13 minutes on 2 cores, KASAN's about twice that"
case "${PACIFICA_KERNEL:-default}" in
default) ;;
kasan) fragments+=("$here/l1-kasan.config"); suffix=-kasan ;;
guest)
	fragments=("$here/../linux-guest/guest.config") suffix=-guest what="the Linux guest kernel"
	targets=(bzImage) minutes="4-6 minutes on 2 cores"
	;;
*) die "PACIFICA_KERNEL must be default, kasan or guest" ;;
esac

kver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( { echo "$kver"; cat "${fragments[@]}"; /usr/bin/rustc --version; echo "$BINDGEN_VERSION"; clang --version | head -1; } | sha256sum | cut -c1-12)
src=$PACIFICA_CACHE/src/linux-$kver
out=$PACIFICA_CACHE/build/linux-$kver-$key$suffix

case "${1:-}" in
path) echo "$out"; exit 0 ;;
build) ;;
*) die "usage: kernel.sh path|build" ;;
esac

if [ -f "$out/.pacifica-built" ]; then
	echo "$out"
	exit 0
fi

if [ ! -f "$src/.pacifica-unpacked" ]; then
	step "unpacking linux-source $kver into $src"
	rm -rf "$src.tmp" && mkdir -p "$src.tmp"
	tar -xf /usr/src/linux-source-6.12.tar.xz -C "$src.tmp" --strip-components=1
	rm -rf "$src" && mv "$src.tmp" "$src"
	touch "$src/.pacifica-unpacked"
fi

mkdir -p "$out"
kmake() { make -C "$src" O="$out" "${KRUST[@]}" "$@"; }
step "configuring $what in $out"
kmake -s tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >/dev/null
kmake -s olddefconfig >/dev/null
# A symbol whose dependencies are not met is silently dropped by Kconfig.
bad=0
while IFS= read -r line; do
	case "$line" in CONFIG_*) ;; *) continue ;; esac
	grep -qxF "$line" "$out/.config" || { echo "not in .config: $line" >&2; bad=1; }
done < <(cat "${fragments[@]}")
[ $bad = 0 ] || die "the configuration of $what lost options (see above)"

step "building $what (${targets[*]}; $minutes)"
kmake -j"$(nproc)" -s "${targets[@]}"
if [[ " ${targets[*]} " == *" modules "* ]]; then
	rm -rf "$out/modroot"
	kmake -s INSTALL_MOD_PATH="$out/modroot" modules_install >/dev/null
fi
touch "$out/.pacifica-built"
echo "$out"
