// SPDX-License-Identifier: GPL-2.0
/*
 * Thin wrappers for pacifica.ko; see shim.h. The module's init and exit are
 * Rust's (the module! macro), so nothing here uses module_init/module_exit.
 */
#include <linux/anon_inodes.h>
#include <linux/cpuhotplug.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/hrtimer.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/reboot.h>
#include <linux/slab.h>
#include <linux/syscore_ops.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/smp.h>
#include <linux/wait.h>
#include <trace/events/ipi.h>
#include <asm/debugreg.h>
#include <asm/fpu/api.h>
#include <asm/nospec-branch.h>
#include <asm/reboot.h>

#include "shim.h"

static long pac_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return pacifica_ioctl(PAC_FD_DEVICE, NULL, cmd, arg);
}

static long pac_vm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return pacifica_ioctl(PAC_FD_VM, file->private_data, cmd, arg);
}

static long pac_vcpu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return pacifica_ioctl(PAC_FD_VCPU, file->private_data, cmd, arg);
}

static int pac_vm_release(struct inode *inode, struct file *file)
{
	pacifica_release(PAC_FD_VM, file->private_data);
	return 0;
}

static int pac_vcpu_release(struct inode *inode, struct file *file)
{
	pacifica_release(PAC_FD_VCPU, file->private_data);
	return 0;
}

/* What a mapped run page holds on to: the page, and this empty file. */
static const struct file_operations pac_run_page_fops = {
	.owner = THIS_MODULE,
	.llseek = noop_llseek,
};

/*
 * The run page is one kernel page; userspace maps exactly it, shared. The
 * mapping keeps a reference to the page (vm_insert_page), and its file
 * becomes a small anonymous one: a mapping that outlives every vCPU fd must
 * not keep the vCPU, its VM and their memory alive.
 */
static int pac_vcpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	void *run = pacifica_vcpu_run_page(file->private_data);
	struct file *holder;
	int ret;

	if (vma->vm_pgoff != 0 || vma->vm_end - vma->vm_start != PAGE_SIZE)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	holder = anon_inode_getfile("pacifica-run", &pac_run_page_fops, NULL, O_RDWR);
	if (IS_ERR(holder))
		return PTR_ERR(holder);
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	ret = vm_insert_page(vma, vma->vm_start, virt_to_page(run));
	if (!ret)
		vma_set_file(vma, holder);
	fput(holder);
	return ret;
}

static const struct file_operations pac_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = pac_dev_ioctl,
	.llseek = noop_llseek,
};

static const struct file_operations pac_vm_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = pac_vm_ioctl,
	.release = pac_vm_release,
	.llseek = noop_llseek,
};

static const struct file_operations pac_vcpu_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = pac_vcpu_ioctl,
	.release = pac_vcpu_release,
	.mmap = pac_vcpu_mmap,
	.llseek = noop_llseek,
};

/*
 * The node's owner and mode are the system's choice (udev, see
 * tools/udev/60-pacifica.rules): root only until a rule says otherwise.
 */
static struct miscdevice pac_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "pacifica",
	.fops = &pac_dev_fops,
};

int pac_misc_register(void)
{
	return misc_register(&pac_misc);
}

void pac_misc_deregister(void)
{
	misc_deregister(&pac_misc);
}

int pac_anon_fd(enum pac_fd_kind kind, void *priv)
{
	switch (kind) {
	case PAC_FD_VM:
		return anon_inode_getfd("pacifica-vm", &pac_vm_fops, priv, O_RDWR | O_CLOEXEC);
	case PAC_FD_VCPU:
		return anon_inode_getfd("pacifica-vcpu", &pac_vcpu_fops, priv, O_RDWR | O_CLOEXEC);
	default:
		return -EINVAL;
	}
}

void *pac_alloc_pages(unsigned int order, int dma32)
{
	gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_ZERO | (dma32 ? GFP_DMA32 : 0);

	return (void *)__get_free_pages(gfp, order);
}

void pac_free_pages(void *va, unsigned int order)
{
	free_pages((unsigned long)va, order);
}

u64 pac_virt_to_phys(void *va)
{
	return virt_to_phys(va);
}

void *pac_phys_to_virt(u64 pa)
{
	return phys_to_virt(pa);
}

int pac_account_locked(unsigned long nr, struct mm_struct **mm)
{
	int ret = account_locked_vm(current->mm, nr, true);

	if (ret)
		return ret;
	mmgrab(current->mm);
	*mm = current->mm;
	return 0;
}

void pac_unaccount_locked(unsigned long nr, struct mm_struct *mm)
{
	account_locked_vm(mm, nr, false);
	mmdrop(mm);
}

int pac_pin_user_pages(u64 uaddr, unsigned long nr, struct page **pages)
{
	unsigned long done = 0;

	while (done < nr) {
		long got = pin_user_pages_fast(uaddr + done * PAGE_SIZE, nr - done,
					       FOLL_WRITE | FOLL_LONGTERM, pages + done);
		if (got <= 0) {
			unpin_user_pages(pages, done);
			return got ? got : -EFAULT;
		}
		done += got;
	}
	return 0;
}

void pac_unpin_user_pages(struct page **pages, unsigned long nr)
{
	unpin_user_pages_dirty_lock(pages, nr, true);
}

void pac_ibpb(void)
{
	indirect_branch_prediction_barrier();
}

/*
 * SVM off on every CPU when the system goes down without the hotplug
 * callbacks, and back on after resume.
 */
static void pac_emergency_disable(void)
{
	pacifica_cpu_emergency_disable();
}

static void pac_disable_on_cpu(void *unused)
{
	pacifica_cpu_emergency_disable();
}

static int pac_reboot(struct notifier_block *nb, unsigned long code, void *unused)
{
	on_each_cpu(pac_disable_on_cpu, NULL, 1);
	return NOTIFY_OK;
}

static struct notifier_block pac_reboot_nb = {
	.notifier_call = pac_reboot,
};

/* Suspend runs on the last online CPU; the others went through hotplug. */
static int pac_suspend(void *unused)
{
	pacifica_cpu_emergency_disable();
	return 0;
}

static void pac_resume(void *unused)
{
	pacifica_cpu_resume();
}

static const struct syscore_ops pac_syscore_ops = {
	.suspend = pac_suspend,
	.resume = pac_resume,
};

static struct syscore pac_syscore = {
	.ops = &pac_syscore_ops,
};

int pac_power_setup(void)
{
	int ret = register_reboot_notifier(&pac_reboot_nb);

	if (ret)
		return ret;
	cpu_emergency_register_virt_callback(pac_emergency_disable);
	register_syscore(&pac_syscore);
	return 0;
}

void pac_power_remove(void)
{
	unregister_syscore(&pac_syscore);
	cpu_emergency_unregister_virt_callback(pac_emergency_disable);
	unregister_reboot_notifier(&pac_reboot_nb);
}

u64 pac_page_to_phys(struct page *page)
{
	return page_to_phys(page);
}

static enum cpuhp_state pac_cpuhp_state;

int pac_cpuhp_setup(void)
{
	int ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "pacifica:online",
				    pacifica_cpu_online, pacifica_cpu_offline);
	if (ret < 0)
		return ret;
	pac_cpuhp_state = ret;
	return 0;
}

void pac_cpuhp_remove(void)
{
	cpuhp_remove_state(pac_cpuhp_state);
}

unsigned int pac_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

unsigned int pac_num_online_cpus(void)
{
	return num_online_cpus();
}

unsigned int pac_smp_processor_id(void)
{
	return smp_processor_id();
}

void pac_fpu_begin(void)
{
	kernel_fpu_begin();
}

void pac_fpu_end(void)
{
	kernel_fpu_end();
}

void pac_local_irq_disable(void)
{
	local_irq_disable();
}

void pac_local_irq_enable(void)
{
	local_irq_enable();
}

void pac_cond_resched(void)
{
	cond_resched();
}

void pac_restore_host_debugregs(int rearm_dr7)
{
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
	else if (rearm_dr7) {
		/*
		 * QEMU skips the rebuild when only DR7's enable bits differ
		 * from the value it holds, and #VMEXIT already made that the
		 * reset value: pass through one that differs above them (GE,
		 * no breakpoint enabled) so that the guest's are dropped.
		 */
		set_debugreg(DR7_FIXED_1 | DR_GLOBAL_SLOWDOWN, 7);
		set_debugreg(DR7_FIXED_1, 7);
	}
}

int pac_signal_pending(void)
{
	return signal_pending(current);
}

unsigned int pac_tsc_khz(void)
{
	return tsc_khz;
}

struct pac_wake {
	atomic_t pending;
	/* The vCPU is between pac_wake_enter() and pac_wake_exit() on cpu. */
	int in_guest;
	unsigned int cpu;
	wait_queue_head_t wq;
	struct hrtimer timer;
};

static enum hrtimer_restart pac_wake_timer_fn(struct hrtimer *t)
{
	pac_wake_kick(container_of(t, struct pac_wake, timer), PAC_WAKE_TIMER);
	return HRTIMER_NORESTART;
}

struct pac_wake *pac_wake_new(void)
{
	struct pac_wake *w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);

	if (!w)
		return NULL;
	init_waitqueue_head(&w->wq);
	hrtimer_init(&w->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_HARD);
	w->timer.function = pac_wake_timer_fn;
	return w;
}

void pac_wake_free(struct pac_wake *w)
{
	hrtimer_cancel(&w->timer);
	kfree(w);
}

void pac_wake_timer_arm(struct pac_wake *w, u64 expires_ns)
{
	hrtimer_start(&w->timer, ns_to_ktime(expires_ns), HRTIMER_MODE_ABS_HARD);
}

void pac_wake_timer_cancel(struct pac_wake *w)
{
	hrtimer_try_to_cancel(&w->timer);
}

void pac_wake_kick(struct pac_wake *w, unsigned int bits)
{
	int me;

	atomic_or(bits, &w->pending);
	/* Pairs with the barrier in pac_wake_enter(). */
	smp_mb__after_atomic();
	me = get_cpu();
	if (READ_ONCE(w->in_guest) && READ_ONCE(w->cpu) != me)
		smp_send_reschedule(READ_ONCE(w->cpu));
	put_cpu();
	wake_up_interruptible(&w->wq);
}

unsigned int pac_wake_take(struct pac_wake *w)
{
	return atomic_xchg(&w->pending, 0);
}

int pac_wake_wait(struct pac_wake *w)
{
	return wait_event_interruptible(w->wq, atomic_read(&w->pending)) ? -EINTR : 0;
}

int pac_wake_enter(struct pac_wake *w, unsigned int cpu)
{
	WRITE_ONCE(w->cpu, cpu);
	/* Pairs with the barrier in pac_wake_kick(). */
	smp_store_mb(w->in_guest, 1);
	if (atomic_read(&w->pending)) {
		WRITE_ONCE(w->in_guest, 0);
		return 1;
	}
	return 0;
}

void pac_wake_exit(struct pac_wake *w)
{
	WRITE_ONCE(w->in_guest, 0);
}
