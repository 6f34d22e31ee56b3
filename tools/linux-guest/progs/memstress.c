// SPDX-License-Identifier: GPL-2.0
/*
 * memstress ROUNDS MIB: maps MIB MiB of anonymous memory ROUNDS times,
 * touches every page (a page fault each), checks what it wrote, unmaps
 * it, and prints "memstress ok ROUNDS MIB SUM" with a checksum that
 * depends only on the arguments, so every hypervisor must print the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20;
	size_t mib = argc > 2 ? (size_t)atoi(argv[2]) : 16;
	size_t len = mib << 20, page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t sum = 0;

	for (int r = 0; r < rounds; r++) {
		uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("memstress: mmap");
			return 1;
		}
		for (size_t off = 0; off < len; off += page)
			p[off / 8] = (uint64_t)r * 1000003u + off;
		for (size_t off = 0; off < len; off += page) {
			if (p[off / 8] != (uint64_t)r * 1000003u + off) {
				fprintf(stderr, "memstress: round %d offset %zu reads %llu\n",
					r, off, (unsigned long long)p[off / 8]);
				return 1;
			}
			sum += p[off / 8];
		}
		if (munmap(p, len)) {
			perror("memstress: munmap");
			return 1;
		}
	}
	printf("memstress ok %d %zu %llu\n", rounds, mib, (unsigned long long)sum);
	return 0;
}
