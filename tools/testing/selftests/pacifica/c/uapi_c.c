// SPDX-License-Identifier: GPL-2.0
/*
 * A VMM in C, written against include/uapi/linux/pacifica.h alone: the
 * proof that the header is the whole ABI. It checks the version and the
 * module's information, then runs a real-mode guest that writes a byte to
 * COM1 and halts, under the paging mode the harness asks for
 * (PACIFICA_SELFTEST_PAGING=npt|shadow), and checks each exit and the
 * registers afterwards. TAP output, like the Rust selftests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/pacifica.h>

#define GUEST_RAM	(1 << 20)
#define GUEST_ENTRY	0x1000

static int failed;
static int test_nr;

static void result(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", ok ? "ok" : "not ok", ++test_nr);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		failed++;
}

static void bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A real-mode segment: base selector * 16, 64 KiB, present. */
static struct pacifica_segment real_segment(__u16 attrib)
{
	struct pacifica_segment s = { .base = 0, .limit = 0xffff, .selector = 0, .attrib = attrib };
	return s;
}

int main(void)
{
	/* mov dx, 0x3f8; mov al, 'C'; out dx, al; hlt */
	static const unsigned char code[] = { 0xba, 0xf8, 0x03, 0xb0, 'C', 0xee, 0xf4 };
	const char *mode = getenv("PACIFICA_SELFTEST_PAGING");
	__u64 paging = mode && !strcmp(mode, "shadow") ? PACIFICA_PAGING_SHADOW : PACIFICA_PAGING_NPT;
	struct pacifica_module_info info;
	struct pacifica_memory_region region;
	struct pacifica_sregs sregs;
	struct pacifica_regs regs;
	struct pacifica_exit_stats stats;
	struct pacifica_run *run;
	unsigned char *ram;
	int dev, vm, vcpu, size, r, zero;
	size_t i;

	printf("TAP version 13\n1..8\n");
	dev = open("/dev/pacifica", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		bail("open /dev/pacifica");

	r = ioctl(dev, PACIFICA_GET_API_VERSION, 0);
	result(r == PACIFICA_API_VERSION, "GET_API_VERSION is %d, the header's %d", r, PACIFICA_API_VERSION);

	memset(&info, 0xff, sizeof(info));
	r = ioctl(dev, PACIFICA_GET_INFO, &info);
	zero = info.pad == 0;
	for (i = 0; i < sizeof(info.reserved) / sizeof(info.reserved[0]); i++)
		zero = zero && info.reserved[i] == 0;
	result(r == 0 && info.api_version == PACIFICA_API_VERSION && (info.features & PACIFICA_FEATURE_NPT) && zero,
	       "GET_INFO: version %u, features %#llx, padding and reserved words zero",
	       info.api_version, (unsigned long long)info.features);

	vm = ioctl(dev, PACIFICA_CREATE_VM, paging);
	if (vm < 0)
		bail("PACIFICA_CREATE_VM");
	ram = mmap(NULL, GUEST_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		bail("mmap guest RAM");
	memcpy(ram + GUEST_ENTRY, code, sizeof(code));
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_RAM;
	region.userspace_addr = (__u64)(unsigned long)ram;
	if (ioctl(vm, PACIFICA_SET_MEMORY_REGION, &region) < 0)
		bail("PACIFICA_SET_MEMORY_REGION");

	vcpu = ioctl(vm, PACIFICA_CREATE_VCPU, 0);
	if (vcpu < 0)
		bail("PACIFICA_CREATE_VCPU");
	size = ioctl(dev, PACIFICA_GET_VCPU_MMAP_SIZE, 0);
	result(size == PACIFICA_RUN_PAGE_SIZE, "GET_VCPU_MMAP_SIZE is %d", size);
	run = mmap(NULL, PACIFICA_RUN_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		bail("mmap the run page");

	/* Real mode at GUEST_ENTRY: CR0.ET only, 16-bit segments at base 0. */
	memset(&sregs, 0, sizeof(sregs));
	sregs.cs = real_segment(0x9b);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = real_segment(0x93);
	sregs.tr = real_segment(0x8b);		/* a busy 32-bit TSS */
	sregs.ldt = real_segment(0x82);		/* an LDT */
	sregs.gdt.limit = 0xffff;
	sregs.idt.limit = 0x3ff;
	sregs.cr0 = 0x10;
	if (ioctl(vcpu, PACIFICA_SET_SREGS, &sregs) < 0)
		bail("PACIFICA_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_ENTRY;
	regs.rflags = 2;
	if (ioctl(vcpu, PACIFICA_SET_REGS, &regs) < 0)
		bail("PACIFICA_SET_REGS");

	sregs.reserved[3] = 1;
	r = ioctl(vcpu, PACIFICA_SET_SREGS, &sregs);
	result(r < 0 && errno == EINVAL, "SET_SREGS with a reserved word set fails with EINVAL");

	r = ioctl(vcpu, PACIFICA_RUN, 0);
	result(r == 0 && run->exit_reason == PACIFICA_EXIT_IO && run->exit.io.direction == PACIFICA_EXIT_IO_OUT &&
	       run->exit.io.port == 0x3f8 && run->exit.io.size == 1 && run->exit.io.count == 1 &&
	       run->exit.io.data_offset == PACIFICA_RUN_IO_DATA_OFFSET &&
	       ((unsigned char *)run)[run->exit.io.data_offset] == 'C',
	       "the guest's OUT to COM1 is an I/O exit carrying 'C' (exit %u)", run->exit_reason);

	r = ioctl(vcpu, PACIFICA_RUN, 0);
	result(r == 0 && run->exit_reason == PACIFICA_EXIT_HLT && run->rip == GUEST_ENTRY + sizeof(code) - 1,
	       "then HLT at %#llx (exit %u)", (unsigned long long)run->rip, run->exit_reason);

	r = ioctl(vcpu, PACIFICA_GET_REGS, &regs);
	result(r == 0 && (regs.rax & 0xff) == 'C' && (regs.rdx & 0xffff) == 0x3f8,
	       "GET_REGS: AL 'C', DX 0x3f8");

	r = ioctl(vcpu, PACIFICA_GET_STATS, &stats);
	result(r == 0 && stats.counts[PACIFICA_STAT_IO] == 1 && stats.counts[PACIFICA_STAT_HLT] == 1 &&
	       stats.counts[PACIFICA_STAT_USER_EXITS] >= 2,
	       "GET_STATS: one I/O exit, one HLT");

	munmap(run, PACIFICA_RUN_PAGE_SIZE);
	close(vcpu);
	close(vm);
	close(dev);
	munmap(ram, GUEST_RAM);
	printf("# Totals: pass:%d fail:%d\n", test_nr - failed, failed);
	return failed ? 1 : 0;
}
