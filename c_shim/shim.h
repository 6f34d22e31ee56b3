/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C shim of pacifica.ko: thin wrappers for what the Rust API of Linux
 * 6.12 does not offer (misc devices, file operations, anonymous-inode fds,
 * mmap, pinning user pages, physical addresses, per-CPU hotplug callbacks,
 * kernel FPU sections). It holds no policy: every decision is made in Rust.
 *
 * bindgen turns this header into the Rust declarations in
 * rust/shim_bindings.rs, so both sides agree on every signature.
 */
#ifndef PACIFICA_SHIM_H
#define PACIFICA_SHIM_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint64_t u64;
#endif

struct page;
struct mm_struct;

/* What a file created by the module is, as passed to the Rust callbacks. */
enum pac_fd_kind {
	PAC_FD_DEVICE = 0,
	PAC_FD_VM = 1,
	PAC_FD_VCPU = 2,
};

/* Registers and removes /dev/pacifica. */
int pac_misc_register(void);
void pac_misc_deregister(void);

/*
 * Creates an anonymous-inode fd of @kind whose private data is @priv. On
 * success the fd owns @priv (its release calls pacifica_release()); on
 * failure (a negative errno) the caller still owns it.
 */
int pac_anon_fd(enum pac_fd_kind kind, void *priv);

/* Implemented in Rust. */
long pacifica_ioctl(enum pac_fd_kind kind, void *priv, unsigned int cmd, unsigned long arg);
void pacifica_release(enum pac_fd_kind kind, void *priv);
/* Kernel address of the vCPU's run page, mapped by mmap on a vCPU fd. */
void *pacifica_vcpu_run_page(void *priv);
int pacifica_cpu_online(unsigned int cpu);
int pacifica_cpu_offline(unsigned int cpu);

/*
 * Zeroed pages of 2^@order, below 4 GiB if @dma32 (for roots of PAE page
 * tables, which CR3 addresses with 32 bits), and their addresses.
 */
void *pac_alloc_pages(unsigned int order, int dma32);
void pac_free_pages(void *va, unsigned int order);
u64 pac_virt_to_phys(void *va);
void *pac_phys_to_virt(u64 pa);

/*
 * Charges @nr pages to the calling process's RLIMIT_MEMLOCK, as long-term
 * pins are charged elsewhere: 0 and the charged mm (a reference held) in
 * @mm, or -ENOMEM over the limit with nothing charged.
 */
int pac_account_locked(unsigned long nr, struct mm_struct **mm);
/*
 * Pins @nr pages of the caller's memory at @uaddr for long-term writable
 * use (already charged by pac_account_locked()). Returns 0, or a negative
 * errno with nothing left pinned.
 */
int pac_pin_user_pages(u64 uaddr, unsigned long nr, struct page **pages);
/* Unpins pages pinned by pac_pin_user_pages(), marking them dirty. */
void pac_unpin_user_pages(struct page **pages, unsigned long nr);
/* Uncharges @nr pages from @mm and drops the reference pac_account_locked() took. */
void pac_unaccount_locked(unsigned long nr, struct mm_struct *mm);
u64 pac_page_to_phys(struct page *page);

/*
 * The world switch (vmenter.S): runs the guest whose VMCB is at @vmcb_pa
 * until the next #VMEXIT, with the host's VMSAVE state in @host_save_pa and
 * the guest's other general registers in @gprs (GuestGprs in
 * rust/svm/ops.rs). Interrupts and preemption off, EFER.SVME set. Returns
 * 0, or 1 if an SVM instruction faulted (SVM was turned off by an
 * emergency path); then the guest did not run.
 */
int pac_vmrun(u64 vmcb_pa, u64 host_save_pa, void *gprs);
/* An indirect branch prediction barrier, where the CPU and kernel use one. */
void pac_ibpb(void);

/*
 * Turns SVM off on every CPU when the system stops without the hotplug
 * callbacks running (reboot, kexec, crash, panic: the kernel's emergency
 * virtualization-disable callback and a reboot notifier) and back on
 * after resume (syscore ops). They call pacifica_cpu_emergency_disable() on
 * each CPU, in NMI context for the emergency path, and
 * pacifica_cpu_resume() on the CPU that resumes.
 */
int pac_power_setup(void);
void pac_power_remove(void);
void pacifica_cpu_emergency_disable(void);
void pacifica_cpu_resume(void);

/* Per-CPU bring-up: calls pacifica_cpu_online/offline on every CPU. */
int pac_cpuhp_setup(void);
void pac_cpuhp_remove(void);
unsigned int pac_nr_cpu_ids(void);
unsigned int pac_num_online_cpus(void);
unsigned int pac_smp_processor_id(void);

/*
 * Enters and leaves a section that may use FPU/SSE registers freely: the
 * task's user FPU state is saved first and restored on return to user mode.
 * Preemption is off inside.
 */
void pac_fpu_begin(void);
void pac_fpu_end(void);
void pac_local_irq_disable(void);
void pac_local_irq_enable(void);
void pac_cond_resched(void);
/*
 * Puts back the host's hardware breakpoints (DR0-DR3, DR6, DR7) after a
 * guest ran, if the host uses any: #VMEXIT resets DR7 and the guest may
 * have written DR0-DR3. With rearm_dr7 and no host breakpoint, DR7 is
 * written with its reset value anyway: QEMU's TCG rebuilds its list of
 * breakpoints only on a write of DR7 that changes more than the enable
 * bits, so a guest's would otherwise stay armed after #VMEXIT and fire in
 * later guests at the same addresses (rust/testbed.rs). Interrupts must
 * be off.
 */
void pac_restore_host_debugregs(int rearm_dr7);
int pac_signal_pending(void);
/* The host kernel's TSC rate in kHz (tsc_khz), 0 if unknown. */
unsigned int pac_tsc_khz(void);

/*
 * A vCPU's wake-up point (Documentation/interrupts.rst, "Kicks"): a word of
 * pending-work bits, a wait queue its thread sleeps on in an in-kernel HLT,
 * and the hrtimer of its local APIC timer. pac_wake_kick() may be called
 * from any context, hard interrupts included: it sets bits, wakes the
 * sleeper, and sends a reschedule IPI to the CPU the vCPU is running guest
 * code on, which makes it leave the guest (#VMEXIT(INTR)). The vCPU thread
 * calls pac_wake_enter() with interrupts off just before VMRUN: it returns
 * non-zero, and the vCPU does not enter, when bits arrived since the last
 * pac_wake_take(); a kick after it sees in_guest and sends the IPI, which
 * is taken at VMRUN at the latest. No wake-up is lost between the two.
 */
struct pac_wake;
/* Pending-work bits: the timer's hrtimer expired, a userspace injection. */
#define PAC_WAKE_TIMER	1u
#define PAC_WAKE_INJECT	2u
struct pac_wake *pac_wake_new(void);
/* Cancels the timer (waiting for a running callback) and frees @w. */
void pac_wake_free(struct pac_wake *w);
/* Arms the timer for CLOCK_MONOTONIC (ktime_get()) time @expires_ns. */
void pac_wake_timer_arm(struct pac_wake *w, u64 expires_ns);
void pac_wake_timer_cancel(struct pac_wake *w);
void pac_wake_kick(struct pac_wake *w, unsigned int bits);
/* Returns and clears the pending bits. */
unsigned int pac_wake_take(struct pac_wake *w);
/* Sleeps until a bit is pending: 0, or -EINTR for a signal. */
int pac_wake_wait(struct pac_wake *w);
/* Interrupts off: marks the vCPU in the guest on @cpu, or returns 1. */
int pac_wake_enter(struct pac_wake *w, unsigned int cpu);
void pac_wake_exit(struct pac_wake *w);

#endif /* PACIFICA_SHIM_H */
