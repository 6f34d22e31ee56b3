// SPDX-License-Identifier: GPL-2.0
/*
 * Prints the host's TSC rate in kHz, measured against CLOCK_MONOTONIC_RAW.
 * run-l1 gives it to L1 as tsc_early_khz=: QEMU's TCG lets the guest's RDTSC
 * run at the host's rate, and L1's own calibration (against the PIT only)
 * fails on a busy host, leaving tsc_khz at 0 and KVM in L1 unable to enter
 * a guest (Documentation/testing.rst).
 *
 * Each sample brackets a 20 ms sleep with TSC and clock reads; the pair of
 * reads that took least time bounds the error of a sample, and the median
 * of the samples is printed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

static uint64_t ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A TSC reading and the clock at that moment, from the tightest of a few tries. */
static void stamp(uint64_t *tsc, uint64_t *clock)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 16; i++) {
		uint64_t t0 = __rdtsc(), c = ns(), t1 = __rdtsc();

		if (t1 - t0 < best) {
			best = t1 - t0;
			*tsc = t0 + (t1 - t0) / 2;
			*clock = c;
		}
	}
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
	enum { SAMPLES = 9 };
	uint64_t khz[SAMPLES];
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	for (int i = 0; i < SAMPLES; i++) {
		uint64_t t0, c0, t1, c1;

		stamp(&t0, &c0);
		nanosleep(&pause, NULL);
		stamp(&t1, &c1);
		khz[i] = (t1 - t0) * 1000000u / (c1 - c0);
	}
	qsort(khz, SAMPLES, sizeof(khz[0]), cmp);
	printf("%llu\n", (unsigned long long)khz[SAMPLES / 2]);
	return 0;
}
