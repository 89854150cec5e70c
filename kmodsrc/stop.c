// SPDX-License-Identifier: GPL-2.0
/*
 * Switching code: the patch-author hooks, then the machine stopped (every
 * CPU in stop_machine) while the stacks of all tasks are checked for the
 * code being replaced and the jumps (or the saved bytes) are written. A
 * busy stack is retried a few times, then reported in conflicts.
 */
#include <linux/ctype.h>
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/printk.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>
#include <linux/stop_machine.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <asm/sync_core.h>
#include "core.h"
#include "compat.h"

/* ------------------------------------------------------------ hooks */

/* The check and pre hooks return int (non-zero refuses); the others void. */
static bool hook_can_refuse(enum ksplice_hook_kind kind)
{
	return kind == KSPLICE_HOOK_PRE_APPLY || kind == KSPLICE_HOOK_CHECK_APPLY ||
	       kind == KSPLICE_HOOK_PRE_REVERSE || kind == KSPLICE_HOOK_CHECK_REVERSE;
}

/*
 * Runs the hooks of one kind of every change taking part, in order; the
 * first int hook to refuse stops them with -ECANCELED.
 */
int ksplice_run_hooks(struct update *u, enum ksplice_hook_kind kind)
{
	struct ksplice_mod_change *change;

	list_for_each_entry(change, &u->changes, list) {
		void **h;

		if (((struct change_priv *)change->priv)->skipped)
			continue;
		for (h = change->hooks[kind].start; h && h < change->hooks[kind].end; h++) {
			if (!*h)
				continue;
			if (hook_can_refuse(kind)) {
				int (*check)(void) = *h;

				if (check())
					return -ECANCELED;
			} else {
				void (*run)(void) = *h;

				run();
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------ the stack check */

/* The functions one busy task is inside (indices of busy ranges). */
struct busy_task {
	size_t range[KSPLICE_CONFLICT_SYMS];
	size_t nr;
	bool more;
};

/*
 * The busy range holding w, or -1. A return address is never a function's
 * first byte, and one equal to its end follows a call that does not return
 * (a function ends with a return or a jump otherwise): both bounds are
 * excluded. The end counts the function's size as built, which may exceed
 * the running one, so a pointer to the next function (a function pointer
 * saved on a stack) would otherwise make the check fail forever.
 */
static long busy_range(struct update *u, unsigned long w)
{
	size_t i;

	for (i = 0; i < u->nr_busy_ranges; i++)
		if (w > u->busy_ranges[2 * i] && w < u->busy_ranges[2 * i + 1])
			return i;
	return -1;
}

/* Notes busy range i for a task, once per function name. */
static void busy_task_add(struct update *u, struct busy_task *bt, size_t i)
{
	size_t k;

	for (k = 0; k < bt->nr; k++)
		if (!strcmp(u->busy_names[bt->range[k]], u->busy_names[i]))
			return;
	if (bt->nr < KSPLICE_CONFLICT_SYMS)
		bt->range[bt->nr++] = i;
	else
		bt->more = true;
}

/*
 * Whether a task's kernel stack, from its saved stack pointer up, holds an
 * address inside a range being replaced (conservative: any word counts);
 * the functions found go to bt.
 */
static bool stack_busy(struct update *u, struct task_struct *t,
		       struct busy_task *bt)
{
	unsigned long base = (unsigned long)READ_ONCE(t->stack);
	unsigned long sp = READ_ONCE(t->thread.sp);
	unsigned long top = base + THREAD_SIZE;
	unsigned long buf[64];

	if (sp < base || sp >= top)
		sp = base;
	sp &= ~(sizeof(long) - 1);
	while (sp < top) {
		size_t len = min_t(size_t, sizeof(buf), top - sp), i;

		if (copy_from_kernel_nofault(buf, (void *)sp, len))
			break;
		for (i = 0; i < len / sizeof(long); i++) {
			long r = busy_range(u, buf[i]);

			if (r < 0)
				continue;
			if (!bt->nr)
				pr_info("ksplice: %s: %s[%d] is using replaced code (%pS)\n",
					kobject_name(&u->kobj), t->comm,
					task_pid_nr(t), (void *)buf[i]);
			busy_task_add(u, bt, r);
		}
		sp += len;
	}
	return bt->nr;
}

/* Appends to the conflicts report at *len: false once it is full. */
static __printf(3, 4) bool report_add(struct update *u, size_t *len,
				      const char *fmt, ...)
{
	size_t room = KSPLICE_CONFLICTS_MAX - sizeof(KSPLICE_CONFLICTS_CUT);
	va_list ap;

	if (*len >= room)
		return false;
	va_start(ap, fmt);
	*len += vsnprintf(u->conflicts + *len, room - *len, fmt, ap);
	va_end(ap);
	return *len < room;
}

/*
 * Adds "COMM PID FUNCTION..." for a busy task to the conflicts report (its
 * buffer allocated beforehand: the machine is stopped), or the line
 * KSPLICE_CONFLICTS_CUT once the report is full.
 */
static void report_conflict(struct update *u, struct task_struct *t,
			    const struct busy_task *bt)
{
	char comm[TASK_COMM_LEN];
	size_t len = u->conflicts_len, i;
	bool fits;

	if (u->conflicts_cut)
		return;
	strscpy(comm, t->comm, sizeof(comm));
	for (i = 0; comm[i]; i++)
		if (isspace(comm[i]))
			comm[i] = '_';
	fits = report_add(u, &len, "%s %d", comm, task_pid_nr(t));
	for (i = 0; fits && i < bt->nr; i++)
		fits = report_add(u, &len, " %s", u->busy_names[bt->range[i]]);
	if (fits && bt->more)
		fits = report_add(u, &len, " ...");
	if (fits && report_add(u, &len, "\n")) {
		u->conflicts_len = len;
		return;
	}
	memcpy(u->conflicts + u->conflicts_len, KSPLICE_CONFLICTS_CUT,
	       sizeof(KSPLICE_CONFLICTS_CUT));
	u->conflicts_len += strlen(KSPLICE_CONFLICTS_CUT);
	u->conflicts_cut = true;
}

/* Whether any task is inside a range being replaced; each one is reported. */
static bool stacks_busy(struct update *u)
{
	struct task_struct *g, *t;
	bool busy = false;

	u->conflicts_len = 0;
	u->conflicts_cut = false;
	rcu_read_lock();
	for_each_process_thread(g, t) {
		struct busy_task bt = { .nr = 0 };

		/* The tasks on a CPU now are the stopper threads, this one included. */
		if (!READ_ONCE(t->stack) || t == current || READ_ONCE(t->on_cpu))
			continue;
		if (stack_busy(u, t, &bt)) {
			report_conflict(u, t, &bt);
			busy = true;
		}
	}
	rcu_read_unlock();
	return busy;
}

/* ------------------------------------------------------------ stopping the machine */

static void ks_sync_core(void *unused)
{
	sync_core();
}

/* Whether a change takes part: applying, every change whose target is here. */
static bool change_in_play(const struct change_priv *cp, bool reverse)
{
	return reverse ? cp->applied : !cp->skipped;
}

/*
 * With the machine stopped: runs the check hooks, checks the stacks, checks
 * that every patch site holds the bytes expected (the saved old code, or on
 * reverse the jump written), and only then writes the new bytes (or the
 * saved ones back) through the aliases.
 */
static int patch_stopped(struct update *u, bool reverse)
{
	struct ksplice_mod_change *change;
	u8 jmp[KSPLICE_JMP_SIZE];

	if (ksplice_run_hooks(u, reverse ? KSPLICE_HOOK_CHECK_REVERSE : KSPLICE_HOOK_CHECK_APPLY))
		return -ECANCELED;
	if (stacks_busy(u))
		return -EBUSY;
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;
		size_t i, off = 0;

		if (!change_in_play(cp, reverse))
			continue;
		for (i = 0; i < change->patches_end - change->patches; i++) {
			struct ksplice_patch *p = change->patches + i;
			const void *want = cp->saved + off;

			off += p->size;
			if (!ksplice_patch_written(change, i))
				continue;
			if (reverse) {
				/*
				 * Data may have been written since (a fired
				 * WARN_ONCE): only jumps are checked, and the
				 * writable data the update rewrote, which must
				 * still hold what it wrote.
				 */
				if (p->type != KSPLICE_PATCH_TEXT &&
				    !(cp->rewritten && cp->rewritten[i]))
					continue;
				want = ksplice_patch_bytes(p, jmp);
			}
			if (memcmp((void *)p->oldaddr, want, p->size))
				return -EEXIST;
		}
	}
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;
		size_t i, off = 0;

		if (!change_in_play(cp, reverse))
			continue;
		for (i = 0; i < change->patches_end - change->patches; i++) {
			struct ksplice_patch *p = change->patches + i;

			if (ksplice_patch_written(change, i))
				memcpy(cp->alias[i] + offset_in_page(p->oldaddr),
				       reverse ? cp->saved + off : ksplice_patch_bytes(p, jmp),
				       p->size);
			off += p->size;
		}
		cp->applied = !reverse;
	}
	sync_core();
	ksplice_run_hooks(u, reverse ? KSPLICE_HOOK_REVERSE : KSPLICE_HOOK_APPLY);
	return 0;
}

/* The work of the stopped machine, timed for the trace (ktime is NMI-safe). */
static int timed_stopped(struct update *u, bool reverse)
{
	int ret;

	u->stopped_start = ktime_get_mono_fast_ns();
	ret = patch_stopped(u, reverse);
	u->stopped_end = ktime_get_mono_fast_ns();
	return ret;
}

static int apply_stopped(void *data)
{
	return timed_stopped(data, false);
}

static int reverse_stopped(void *data)
{
	return timed_stopped(data, true);
}

/*
 * Runs fn with the machine stopped, retrying while the code is busy.
 * Returns 0 or an abort cause.
 */
static enum abort_cause stop_and_run(struct update *u, int (*fn)(void *))
{
	int tries, ret = -EBUSY;

	for (tries = 0; tries < KSPLICE_TRIES && ret == -EBUSY; tries++) {
		u64 t0;

		if (tries)
			msleep(200 * tries);
		t0 = ktime_get_ns();
		ret = stop_machine(fn, u, NULL);
		/* "timing:" lines are read by bench/run */
		ksplice_debug(u, "timing: stop_machine %llu ns, stopped work %llu ns (try %d)\n",
			      ktime_get_ns() - t0, u->stopped_end - u->stopped_start, tries + 1);
	}
	on_each_cpu(ks_sync_core, NULL, 1);
	switch (ret) {
	case 0:
		return OK;
	case -EBUSY:
		ksplice_debug(u, "code busy after %d tries\n", KSPLICE_TRIES);
		return CODE_BUSY;
	case -ECANCELED:
		return CALL_FAILED;
	case -EEXIST:
		ksplice_debug(u, "the code, or data the update rewrote, changed under us (another update?)\n");
		return UNEXPECTED;
	default:
		return UNEXPECTED;
	}
}

/* A function's name in the conflicts report: its label, without "(post)". */
static const char *report_name(const struct ksplice_section *s)
{
	const char *label = s->symbol ? s->symbol->label : NULL;

	if (!label)
		return "?";
	return strstarts(label, "(post)") ? label + strlen("(post)") : label;
}

static void add_busy_range(struct update *u, unsigned long start,
			   unsigned long end, const struct ksplice_section *s)
{
	size_t n = u->nr_busy_ranges++;

	u->busy_ranges[2 * n] = start;
	u->busy_ranges[2 * n + 1] = end;
	u->busy_names[n] = report_name(s);
}

/*
 * The ranges no task may be inside: the matched old functions patched
 * (apply) or the new code (reverse); and the buffer of the conflicts report.
 */
static int busy_ranges(struct update *u, bool reverse)
{
	struct ksplice_mod_change *change;
	size_t cap = 0;

	list_for_each_entry(change, &u->changes, list)
		cap += reverse ? change->new_code.sections_end - change->new_code.sections :
				 change->patches_end - change->patches;
	kvfree(u->busy_ranges);
	kvfree(u->busy_names);
	u->nr_busy_ranges = 0;
	u->busy_ranges = kvmalloc_array(2 * (cap ?: 1), sizeof(long), GFP_KERNEL);
	u->busy_names = kvmalloc_array(cap ?: 1, sizeof(*u->busy_names), GFP_KERNEL);
	if (!u->conflicts)
		u->conflicts = kmalloc(KSPLICE_CONFLICTS_MAX, GFP_KERNEL);
	if (!u->busy_ranges || !u->busy_names || !u->conflicts)
		return -ENOMEM;
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;
		const struct ksplice_section *s;
		const struct ksplice_patch *p;
		unsigned long start;

		if (reverse ? !cp->applied : cp->skipped)
			continue;
		if (reverse) {
			for (s = change->new_code.sections;
			     s < change->new_code.sections_end; s++) {
				if (s->flags & KSPLICE_SECTION_TEXT)
					add_busy_range(u, s->address, s->address + s->size, s);
			}
			continue;
		}
		for (p = change->patches; p < change->patches_end; p++) {
			if (p->type != KSPLICE_PATCH_TEXT)
				continue;
			s = ksplice_matched_section(change, p->oldaddr, 1, &start);
			if (s)
				add_busy_range(u, p->oldaddr < start + KSPLICE_JMP_SIZE ?
					       start : p->oldaddr, start + s->size, s);
		}
	}
	return 0;
}

/*
 * The part apply and reverse share: the busy ranges, the pre hooks, the
 * stopped machine (the fail hooks if it refused). 0 or an abort.
 */
int ksplice_switch_code(struct update *u, bool reverse)
{
	enum abort_cause cause;

	if (busy_ranges(u, reverse))
		return ksplice_abort(u, OUT_OF_MEMORY);
	if (ksplice_run_hooks(u, reverse ? KSPLICE_HOOK_PRE_REVERSE : KSPLICE_HOOK_PRE_APPLY))
		return ksplice_abort(u, CALL_FAILED);
	if (!reverse && ksplice_redirect_start(u)) {
		ksplice_run_hooks(u, KSPLICE_HOOK_FAIL_APPLY);
		return ksplice_abort(u, FTRACE_FAILED);
	}
	cause = stop_and_run(u, reverse ? reverse_stopped : apply_stopped);
	/* The ftrace_ops go once no change needs them (stop_machine has synced). */
	if ((reverse && cause == OK) || (!reverse && cause != OK))
		ksplice_redirect_stop(u);
	if (cause != CODE_BUSY) {
		/* conflicts names the busy tasks of a code_busy only. */
		u->conflicts_len = 0;
		u->conflicts_cut = false;
	}
	if (cause != OK) {
		ksplice_run_hooks(u, reverse ? KSPLICE_HOOK_FAIL_REVERSE : KSPLICE_HOOK_FAIL_APPLY);
		return ksplice_abort(u, cause);
	}
	return 0;
}
