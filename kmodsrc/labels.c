// SPDX-License-Identifier: GPL-2.0
/*
 * The jump labels of the new code, kept in step with their keys by the
 * kernel itself.
 *
 * A jump label of the new code whose key lives in the running kernel (or
 * in a target module) is left out of the new code module's __jump_table:
 * its key is only known once run-pre matching ran. After "prepare", the
 * change's labels module (<change name>_labels, empty) is loaded; while it
 * is COMING, before the kernel's jump label notifier runs, this file hands
 * it a jump table built from the new code's sites with their keys filled,
 * in the room the new code module keeps for it (in the module area, so its
 * 32-bit offsets reach the code and the key). The kernel then links every
 * entry to its key, sets it as the key is now and rewrites it whenever the
 * key flips, as for any module. The references the table needs (the new
 * code module, its target, the core) are dropped once the labels module
 * is gone.
 */
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/slab.h>
#include "compat.h"
#include "core.h"

/* A labels module loaded, and the references it holds. */
struct carrier {
	struct list_head list;
	struct module *mod;
	struct module *refs[3];		/* new code module, target, core */
	int nr_refs;
};

static LIST_HEAD(carriers);

static size_t change_labels(struct ksplice_mod_change *change)
{
	const struct ksplice_site *s;
	size_t n = 0;

	for (s = change->new_code.sites; s && s < change->new_code.sites_end; s++)
		n += s->kind == KSPLICE_SITE_JUMP_LABEL;
	return n;
}

/* Whether mod is the labels module of change: "<change name>_labels". */
static bool is_carrier_of(const struct module *mod, const struct ksplice_mod_change *change)
{
	size_t len = strlen(change->name);

	return !strncmp(mod->name, change->name, len) && !strcmp(mod->name + len, "_labels");
}

static struct carrier *find_carrier(const struct module *mod)
{
	struct carrier *c;

	list_for_each_entry(c, &carriers, list)
		if (c->mod == mod)
			return c;
	return NULL;
}

/* Whether the labels module of change is loaded (and carries its table). */
static bool change_carried(const struct ksplice_mod_change *change)
{
	struct carrier *c;

	list_for_each_entry(c, &carriers, list)
		if (is_carrier_of(c->mod, change))
			return true;
	return false;
}

bool ksplice_labels_loaded(struct update *u)
{
	struct ksplice_mod_change *change;

	list_for_each_entry(change, &u->changes, list)
		if (change_carried(change))
			return true;
	return false;
}

int ksplice_labels_missing(struct update *u)
{
	struct ksplice_mod_change *change;

	list_for_each_entry(change, &u->changes, list) {
		size_t n = change_labels(change);

		if (!n || ((struct change_priv *)change->priv)->skipped)
			continue;
		if (!change_carried(change)) {
			ksplice_debug(u, "%s: the new code has %zu jump labels, and its labels module was not loaded after prepare\n",
				      change->name, n);
			return ksplice_abort(u, NO_LABELS);
		}
	}
	return 0;
}

static void carrier_ref(struct carrier *c, struct module *mod)
{
	__module_get(mod);
	c->refs[c->nr_refs++] = mod;
}

/* Builds the jump table of change in its new code's label space, for mod. */
static int carrier_fill(struct carrier *c, struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	const struct ksplice_site *s;
	size_t n = change_labels(change), i = 0;
	void *table = change->label_space;

	if (n > ks_jump_entries_fit(change->label_space, change->label_space_end)) {
		pr_err("ksplice: %s: %zu jump labels, room for fewer\n", change->name, n);
		return -ENOSPC;
	}
	for (s = change->new_code.sites; s && s < change->new_code.sites_end; s++)
		if (s->kind == KSPLICE_SITE_JUMP_LABEL)
			ks_jump_entry_set(table, i++, s->addr, s->addr + (s16)s->feature,
					  s->aux, s->aux_len);
	carrier_ref(c, change->new_code_mod);
	if (cp->target)
		carrier_ref(c, cp->target);
	carrier_ref(c, THIS_MODULE);
	ks_module_set_jump_entries(c->mod, n ? table : NULL, n);
	ksplice_debug(cp->update, "%s: %zu jump labels handed to %s\n", change->name, n,
		      c->mod->name);
	return 0;
}

/* A labels module is coming: its table, or why it cannot have one. */
static int carrier_coming(struct module *mod)
{
	struct update *u = ksplice_the_update();
	struct ksplice_mod_change *change;
	struct carrier *c;
	int ret;

	if (!u)
		return 0;
	list_for_each_entry(change, &u->changes, list) {
		if (!is_carrier_of(mod, change))
			continue;
		if (!u->prepared) {
			pr_err("ksplice: %s: load it after writing prepare to the update's stage\n",
			       mod->name);
			return -EINVAL;
		}
		if (((struct change_priv *)change->priv)->skipped)
			return 0;	/* target not loaded (partial): nothing to carry */
		c = kzalloc(sizeof(*c), GFP_KERNEL);
		if (!c)
			return -ENOMEM;
		c->mod = mod;
		ret = carrier_fill(c, change);
		if (ret) {
			kfree(c);
			return ret;
		}
		list_add(&c->list, &carriers);
		return 0;
	}
	return 0;
}

static int labels_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	int ret;

	if (action != MODULE_STATE_COMING)
		return NOTIFY_DONE;
	ksplice_lock();
	ret = carrier_coming(data);
	ksplice_unlock();
	return notifier_from_errno(ret);
}

/* After the kernel's jump label notifier unlinked the table. */
static int labels_gone(struct notifier_block *nb, unsigned long action, void *data)
{
	struct carrier *c;

	if (action != MODULE_STATE_GOING)
		return NOTIFY_DONE;
	ksplice_lock();
	c = find_carrier(data);
	if (c) {
		list_del(&c->list);
		while (c->nr_refs)
			module_put(c->refs[--c->nr_refs]);
		kfree(c);
	}
	ksplice_unlock();
	return NOTIFY_OK;
}

/* Before the kernel's jump label notifier (priority 1) on COMING. */
static struct notifier_block labels_coming_nb = {
	.notifier_call = labels_notify,
	.priority = 2,
};

/* After it on GOING. */
static struct notifier_block labels_going_nb = {
	.notifier_call = labels_gone,
	.priority = 0,
};

int ksplice_labels_init(void)
{
	int ret = register_module_notifier(&labels_coming_nb);

	if (ret)
		return ret;
	ret = register_module_notifier(&labels_going_nb);
	if (ret)
		unregister_module_notifier(&labels_coming_nb);
	return ret;
}

void ksplice_labels_exit(void)
{
	unregister_module_notifier(&labels_going_nb);
	unregister_module_notifier(&labels_coming_nb);
}
