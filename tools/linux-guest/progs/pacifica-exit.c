// SPDX-License-Identifier: GPL-2.0
/*
 * pacifica-exit STATUS: ends the run with STATUS through the exit port
 * 0xf4 (Documentation/linux-guest.rst). Without ACPI a Linux guest
 * cannot power off; this is its power button, and its exit status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>
#include <unistd.h>

#define EXIT_PORT 0xf4

int main(int argc, char **argv)
{
	int status = argc > 1 ? atoi(argv[1]) : 0;

	sync();
	if (ioperm(EXIT_PORT, 1, 1)) {
		perror("pacifica-exit: ioperm");
		return 1;
	}
	outb((unsigned char)status, EXIT_PORT);
	fprintf(stderr, "pacifica-exit: the VMM did not end the run\n");
	return 1;
}
