// SPDX-License-Identifier: GPL-2.0
/*
 * Redirection through ftrace. A replaced function whose entry is an ftrace
 * site (its call to __fentry__, after endbr64 on IBT kernels) is not
 * overwritten with a jump: the jump would cover the site, and ftrace,
 * finding other bytes than it left there, would fail the next time it
 * traces the function. An ftrace_ops that moves the instruction pointer
 * sends the function's calls to the new code instead, from the moment the
 * stopped machine sets the change applied. The function stays traceable
 * and can be probed at its entry. Built with dynamic ftrace only (see
 * compat.h for the stubs).
 */
#include <linux/ftrace.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include "core.h"
#include "compat.h"

struct redirect {
	unsigned long ip;		/* the ftrace site */
	unsigned long to;		/* the new code */
	const bool *applied;		/* the change's flag */
};

static int redirect_cmp(const void *a, const void *b)
{
	const struct redirect *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return 0;
}

static void notrace ks_redirect(unsigned long ip, unsigned long parent_ip,
				struct ftrace_ops *ops, struct ftrace_regs *fregs)
{
	const struct update *u = ops->private;
	size_t lo = 0, hi = u->nr_redirects;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct redirect *r = u->redirects + mid;

		if (r->ip == ip) {
			if (READ_ONCE(*r->applied))
				ks_set_ip(fregs, r->to);
			return;
		}
		if (r->ip < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
}

/*
 * The ftrace site at the entry of the matched old section s (running at
 * start): its address, or 0 when the function has none.
 */
unsigned long ksplice_fentry_ip(struct ksplice_mod_change *change,
				const struct ksplice_section *s, unsigned long start)
{
	const struct ksplice_code *code = &change->old_code;
	const struct ksplice_site *site = ksplice_first_site(code, s->address);
	unsigned long at = s->address;

	for (; site < code->sites_end && site->addr <= at + 4; site++) {
		if (site->addr == at && site->kind == KSPLICE_SITE_ENDBR)
			at += site->len;
		else if (site->addr == at && site->kind == KSPLICE_SITE_FENTRY)
			return start + (at - s->address);
	}
	return 0;
}

/*
 * The redirected functions of every change in play: counted, and stored
 * into out (sorted by ftrace site) unless out is NULL.
 */
static size_t collect_redirects(struct update *u, struct redirect *out)
{
	struct ksplice_mod_change *change;
	size_t n = 0, i;

	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;

		for (i = 0; cp->redirect_ip && !cp->skipped &&
		     i < change->patches_end - change->patches; i++) {
			if (!cp->redirect_ip[i])
				continue;
			if (out) {
				out[n].ip = cp->redirect_ip[i];
				out[n].to = ksplice_jump_target(change->patches + i);
				out[n].applied = &cp->applied;
			}
			n++;
		}
	}
	if (out)
		sort(out, n, sizeof(*out), redirect_cmp, NULL);
	return n;
}

static void free_redirects(struct update *u)
{
	kfree(u->fops);
	kvfree(u->redirects);
	u->fops = NULL;
	u->redirects = NULL;
	u->nr_redirects = 0;
}

/*
 * Before the machine is stopped to apply: an ftrace_ops over every
 * redirected function, inert until its change is applied. 0 or -errno.
 */
int ksplice_redirect_start(struct update *u)
{
	size_t n = collect_redirects(u, NULL), i;
	int ret = 0;

	if (!n || u->fops)
		return 0;
	u->redirects = kvcalloc(n, sizeof(*u->redirects), GFP_KERNEL);
	u->fops = kzalloc(sizeof(*u->fops), GFP_KERNEL);
	if (!u->redirects || !u->fops) {
		ret = -ENOMEM;
		goto fail;
	}
	u->nr_redirects = collect_redirects(u, u->redirects);
	u->fops->func = ks_redirect;
	u->fops->flags = KS_REDIRECT_FLAGS;
	u->fops->private = u;
	for (i = 0; i < n && !ret; i++)
		ret = ftrace_set_filter_ip(u->fops, u->redirects[i].ip, 0, 0);
	if (!ret)
		ret = register_ftrace_function(u->fops);
	if (!ret)
		return 0;
	ksplice_debug(u, "ftrace refused to redirect (error %d)\n", ret);
	ftrace_free_filter(u->fops);
fail:
	free_redirects(u);
	return ret;
}

/* After the code is switched back (or failed to switch): the ops go. */
void ksplice_redirect_stop(struct update *u)
{
	if (!u->fops)
		return;
	unregister_ftrace_function(u->fops);
	ftrace_free_filter(u->fops);
	free_redirects(u);
}
