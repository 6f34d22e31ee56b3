# SPDX-License-Identifier: GPL-2.0
#
# Pacifica's two commands, `make run` and `make test`, each do their own
# set-up on a fresh Debian 12 machine: packages, bindgen, the L1 kernel
# (cached under ~/.cache/pacifica), the module, the tools and the guests.
#
#   make run      boot L1, run the demo guest, show its output and statistics
#   make test     host unit tests, then every selftest inside L1
#   make shell    an interactive L1 shell
#   make module KDIR=/path/to/a/rust/enabled/kernel/build   (real hardware)

SHELL      := /bin/bash
QEMU_DIR   := tools/qemu
TARGET     := x86_64-unknown-linux-gnu
TOOLS_OUT  := tools/target/$(TARGET)/release

# The kernel side must use Debian's rustc-web; see tools/qemu/env.sh.
KRUST = LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
	BINDGEN=$(shell . $(QEMU_DIR)/env.sh && echo $$BINDGEN)

.PHONY: all deps kernel module tools linux-guest unit l1-inputs run test test-kasan test-distro-kernels fuzz shell clean bench

all: module tools

deps:
	@$(QEMU_DIR)/deps.sh

kernel: deps
	@$(QEMU_DIR)/kernel.sh build >/dev/null

# Without KDIR, the module is built against the L1 test kernel.
# A warning (rustc, clang, objtool) fails the build: objtool's, for one,
# names code the kernel cannot unwind through.
module: $(if $(KDIR),,kernel)
	@echo "==> building pacifica.ko" >&2
	@out=$$($(MAKE) --no-print-directory -s -C $(or $(KDIR),$(shell $(QEMU_DIR)/kernel.sh path)) \
		M=$(CURDIR) $(KRUST) modules 2>&1); rc=$$?; \
	[ -z "$$out" ] || printf '%s\n' "$$out" >&2; \
	[ $$rc -eq 0 ] || exit $$rc; \
	if printf '%s\n' "$$out" | grep -qi 'warning'; then \
		echo "pacifica.ko: the build gave warnings (above)" >&2; exit 1; fi

# Userspace is static, so that it runs in L1's busybox initramfs.
tools: deps
	@echo "==> building the VMM, the selftests and the guest images" >&2
	@cd tools && RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build --quiet --release --target $(TARGET) --workspace
	@mkdir -p $(TOOLS_OUT)/c-selftests
	@$(CC) -std=c99 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -static -Iinclude/uapi \
		-o $(TOOLS_OUT)/c-selftests/uapi_c tools/testing/selftests/pacifica/c/uapi_c.c

# The Linux guest: a small kernel from the same linux-source-6.12
# (tools/linux-guest/guest.config, cached like L1's; 5-6 minutes the first
# time) and a busybox initramfs, in tools/target/linux/.
linux-guest: deps
	@echo "==> building the Linux guest" >&2
	@tools/linux-guest/build

unit: deps
	@cd tools && cargo test --quiet --workspace

l1-inputs: kernel module tools linux-guest

LINUX := /usr/share/pacifica/linux
LINUX_DEMO := --kernel $(LINUX)/bzImage --initrd $(LINUX)/initrd.cpio.gz \
	--cmdline "console=ttyS0 panic=-1 loglevel=4 pacifica.demo"

run:
	@$(QEMU_DIR)/run-l1 -- sh -c \
		'pacifica info && echo && \
		 echo "== hello.elf with nested paging" && \
		 pacifica run --stats /usr/share/pacifica/guests/hello.elf && echo && \
		 echo "== hello64.elf with shadow paging" && \
		 pacifica run --stats --paging shadow /usr/share/pacifica/guests/hello64.elf && echo && \
		 echo "== Linux with nested paging" && \
		 pacifica run --stats --paging npt $(LINUX_DEMO) && echo && \
		 echo "== Linux with shadow paging" && \
		 pacifica run --stats --paging shadow $(LINUX_DEMO)'

test: deps
	@$(QEMU_DIR)/test.sh

# All of `make test` on a second cached kernel with KASAN and KCOV
# (tools/qemu/l1-kasan.config); about 25 minutes more the first time.
test-kasan: deps
	@$(QEMU_DIR)/test-kasan

# Debian's generic and cloud kernels (downloaded, cached) boot the Linux
# guest's initramfs and pass its check in L1; about 5 minutes.
test-distro-kernels: deps
	@$(QEMU_DIR)/distro-kernels

# The ioctl and guest fuzzers for FUZZ_SECONDS (default 1800) in L1;
# FUZZ_SEED=N replays, KASAN=1 uses the KASAN kernel (with KCOV).
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$(FUZZ_SEED) KASAN=$(KASAN) $(QEMU_DIR)/fuzz

shell:
	@$(QEMU_DIR)/run-l1 --interactive

# The nanobenchmarks on pacifica-npt, pacifica-shadow, kvm-npt and
# kvm-shadow in one boot of L1: bench/results.json, bench/results.md and
# bench/chart.png (Documentation/benchmarks.rst). BENCH_ARGS go to
# tools/qemu/bench-l1, e.g. BENCH_ARGS="--scale 0.1 --reps 3".
bench: deps
	@$(QEMU_DIR)/bench $(BENCH_ARGS)

clean:
	rm -rf tools/target rust/shim_bindings.rs rust/uapi_bindings.rs
	find . -name '*.o' -o -name '*.ko' -o -name '.*.cmd' -o -name '.*.o.d' -o -name '*.mod*' | xargs rm -f
	rm -f modules.order Module.symvers
