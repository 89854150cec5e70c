// SPDX-License-Identifier: GPL-2.0
/*
 * The Ksplice core module of one update (ksplice-<kid>.ko).
 *
 * The update's old code modules hand their target's change to the core
 * (init_ksplice_mod_change). The update is driven through
 * /sys/kernel/ksplice/<kid>/: writing "prepare" to stage runs run-pre
 * matching (the running code of every old code function is found and
 * compared byte for byte, which also teaches the values of the symbols its
 * relocations refer to) and resolves the new code's relocations; then the
 * update's labels module may be loaded (labels.c). Writing "apply" prepares
 * if that was not done, stops the machine, checks that no task is inside a
 * function being replaced and writes a 5-byte jump at the start of each.
 * Writing "reverse" undoes it.
 * Any failure leaves the kernel as it was and names its cause in
 * abort_cause, with a trace in debug (and the busy tasks in conflicts).
 *
 * This file: the entry points (registration of the changes, the sysfs
 * attributes, apply and reverse); the steps are in match.c, patch.c,
 * stop.c and shadow.c (see core.h).
 */
#include <linux/kernel.h>
#include <linux/kernfs.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>
#include "compat.h"
#include "core.h"

static const char *const stage_names[] = {
	[STAGE_PREPARING] = "preparing",
	[STAGE_APPLIED] = "applied",
	[STAGE_REVERSED] = "reversed",
};

struct update_attribute {
	struct attribute attr;
	ssize_t (*show)(struct update *update, char *buf);
	ssize_t (*store)(struct update *update, const char *buf, size_t len);
};

static DEFINE_MUTEX(ksplice_mutex);
static struct kobject *ksplice_kobj;
static struct update *the_update;

__printf(2, 3) void ksplice_debug(struct update *u, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!u->debug) {
		u->debug = kvmalloc(KSPLICE_DEBUG_MAX, GFP_KERNEL);
		if (!u->debug)
			return;
		u->debug_len = 0;
	}
	if (u->debug_len >= KSPLICE_DEBUG_MAX - 1)
		return;
	va_start(ap, fmt);
	n = vscnprintf(u->debug + u->debug_len,
		       KSPLICE_DEBUG_MAX - u->debug_len, fmt, ap);
	va_end(ap);
	u->debug_len += n;
}

struct update *ksplice_the_update(void)
{
	return the_update;
}

void ksplice_lock(void)
{
	mutex_lock(&ksplice_mutex);
}

void ksplice_unlock(void)
{
	mutex_unlock(&ksplice_mutex);
}

int ksplice_abort(struct update *u, enum abort_cause cause)
{
	u->cause = cause;
	ksplice_debug(u, "Aborted: %s\n", cause_names[cause]);
	pr_err("ksplice: %s: aborted (%s)\n", kobject_name(&u->kobj),
	       cause_names[cause]);
	return -EINVAL;
}

/* ------------------------------------------------------------ apply and reverse */

static struct module *find_target(const char *name)
{
	struct list_head *pos;
	struct module *found = NULL;

	/* The module list, walked from this module; its head is not in module space. */
	preempt_disable();
	for (pos = rcu_dereference_sched(list_next_rcu(&THIS_MODULE->list));
	     pos != &THIS_MODULE->list;
	     pos = rcu_dereference_sched(list_next_rcu(pos))) {
		struct module *mod;

		if ((unsigned long)pos < MODULES_VADDR || (unsigned long)pos >= MODULES_END)
			continue;
		mod = container_of(pos, struct module, list);
		if (mod->state == MODULE_STATE_LIVE && !strcmp(mod->name, name)) {
			if (try_module_get(mod))
				found = mod;
			break;
		}
	}
	preempt_enable();
	return found;
}

static void change_release_match(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;

	ksplice_values_free(cp);
	kvfree(cp->run);
	cp->run = NULL;
	ksplice_unprepare_patches(change);
	if (!cp->applied) {
		ksplice_free_saved(cp);
		if (cp->target)
			module_put(cp->target);
		cp->target = NULL;
	}
}

static int prepare_change(struct update *u, struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	size_t nr = change->old_code.sections_end - change->old_code.sections;
	int ret;

	cp->skipped = false;
	if (strcmp(change->target_name, "vmlinux")) {
		cp->target = find_target(change->target_name);
		if (!cp->target) {
			if (u->partial) {
				ksplice_debug(u, "%s: target %s not loaded, skipped (partial)\n",
					      change->name, change->target_name);
				cp->skipped = true;
				return 0;
			}
			ksplice_debug(u, "%s: target module %s is not loaded\n", change->name,
				      change->target_name);
			return ksplice_abort(u, TARGET_NOT_LOADED);
		}
	}
	if (!change->map_printk) {
		ksplice_debug(u, "%s: built without the address of _printk in System.map\n",
			      change->name);
		return ksplice_abort(u, BAD_SYSTEM_MAP);
	}
	cp->kaslr = (unsigned long)&_printk - change->map_printk;
	if (cp->kaslr % PAGE_SIZE) {
		ksplice_debug(u, "%s: KASLR offset %#lx is not page aligned (System.map _printk %#lx)\n",
			      change->name, cp->kaslr, change->map_printk);
		return ksplice_abort(u, BAD_SYSTEM_MAP);
	}
	cp->run = kvcalloc(nr ?: 1, sizeof(*cp->run), GFP_KERNEL);
	if (!cp->run)
		return ksplice_abort(u, OUT_OF_MEMORY);
	ret = ksplice_run_pre_match(change);
	if (ret)
		return ret;
	ret = ksplice_resolve_new_code(change);
	if (ret)
		return ret;
	return ksplice_prepare_patches(change);
}

static void release_match(struct update *u)
{
	struct ksplice_mod_change *change;

	list_for_each_entry(change, &u->changes, list)
		change_release_match(change);
	u->prepared = false;
}

/*
 * Run-pre matching and the new code's relocations, for every change; the
 * results stay until the update is applied or cleaned up.
 */
static int prepare_update(struct update *u)
{
	struct ksplice_mod_change *change;
	u64 t0 = ktime_get_ns();
	bool any = false;
	int ret;

	u->cause = OK;
	u->debug_len = 0;
	u->conflicts_len = 0;
	u->conflicts_cut = false;
	if (ksplice_labels_loaded(u)) {
		/* their tables point at new code whose relocations are filled */
		ksplice_debug(u, "a labels module of the update is loaded: unload the update and load it again\n");
		return ksplice_abort(u, UNEXPECTED);
	}
	list_for_each_entry(change, &u->changes, list) {
		if (!change->old_code.sections) {
			ksplice_debug(u, "%s: the old code module is gone\n", change->name);
			ret = ksplice_abort(u, UNEXPECTED);
			goto fail;
		}
		ret = prepare_change(u, change);
		if (ret)
			goto fail;
		any |= !((struct change_priv *)change->priv)->skipped;
	}
	if (!any) {
		ksplice_debug(u, "no target of the update is loaded\n");
		ret = ksplice_abort(u, TARGET_NOT_LOADED);
		goto fail;
	}
	u->prepared = true;
	ksplice_debug(u, "timing: prepare %llu ns\n", ktime_get_ns() - t0);
	return 0;
fail:
	release_match(u);
	return ret;
}

static int apply_update(struct update *u)
{
	struct ksplice_mod_change *change;
	int ret = 0;

	if (!u->prepared) {
		ret = prepare_update(u);
		if (ret)
			return ret;
	}
	ret = ksplice_labels_missing(u);
	if (ret)
		goto out;
	ret = ksplice_switch_code(u, false);
	if (ret)
		goto out;
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;

		if (cp->applied)
			__module_get(change->new_code_mod);
	}
	ksplice_run_hooks(u, KSPLICE_HOOK_POST_APPLY);
	u->stage = STAGE_APPLIED;
	ksplice_debug(u, "applied\n");
	pr_info("ksplice: update %s applied\n", kobject_name(&u->kobj));
out:
	release_match(u);
	return ret;
}

static int reverse_update(struct update *u)
{
	struct ksplice_mod_change *change;
	int ret = 0;

	u->cause = OK;
	u->conflicts_len = 0;
	u->conflicts_cut = false;
	list_for_each_entry(change, &u->changes, list) {
		if (((struct change_priv *)change->priv)->applied && ksplice_map_aliases(change)) {
			ret = ksplice_abort(u, OUT_OF_MEMORY);
			goto out;
		}
	}
	ret = ksplice_switch_code(u, true);
	if (ret)
		goto out;
	ksplice_run_hooks(u, KSPLICE_HOOK_POST_REVERSE);
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;

		if (cp->skipped)
			continue;
		module_put(change->new_code_mod);
		if (cp->target)
			module_put(cp->target);
		cp->target = NULL;
		ksplice_free_saved(cp);
	}
	u->stage = STAGE_REVERSED;
	ksplice_debug(u, "reversed\n");
	pr_info("ksplice: update %s reversed, %zu shadow blocks freed\n",
		kobject_name(&u->kobj), ksplice_shadow_free_matching(0, true));
out:
	list_for_each_entry(change, &u->changes, list)
		ksplice_unprepare_patches(change);
	return ret;
}

/* ------------------------------------------------------------ sysfs */

static ssize_t stage_show(struct update *update, char *buf)
{
	if (update->stage == STAGE_PREPARING && update->prepared)
		return sysfs_emit(buf, "prepared\n");
	return sysfs_emit(buf, "%s\n", stage_names[update->stage]);
}

static ssize_t stage_store(struct update *update, const char *buf, size_t len)
{
	ssize_t ret = len;

	mutex_lock(&ksplice_mutex);
	if (sysfs_streq(buf, "prepare")) {
		if (update->stage != STAGE_PREPARING || update->prepared ||
		    prepare_update(update))
			ret = -EINVAL;
	} else if (sysfs_streq(buf, "apply")) {
		if (update->stage == STAGE_PREPARING && apply_update(update))
			ret = -EINVAL;
	} else if (sysfs_streq(buf, "reverse")) {
		if (update->stage != STAGE_APPLIED) {
			update->cause = ALREADY_REVERSED;
			ret = -EINVAL;
		} else if (reverse_update(update)) {
			ret = -EINVAL;
		}
	} else if (sysfs_streq(buf, "cleanup")) {
		if (update->prepared)
			release_match(update);
	} else {
		ret = -EINVAL;
	}
	mutex_unlock(&ksplice_mutex);
	return ret;
}

static ssize_t abort_cause_show(struct update *update, char *buf)
{
	return sysfs_emit(buf, "%s\n", cause_names[update->cause]);
}

/* One line "COMM PID FUNCTION..." per busy task of the last code_busy. */
static ssize_t conflicts_show(struct update *update, char *buf)
{
	ssize_t ret;

	mutex_lock(&ksplice_mutex);
	if (update->conflicts_len)
		ret = sysfs_emit(buf, "%.*s", (int)update->conflicts_len,
				 update->conflicts);
	else
		ret = sysfs_emit(buf, "\n");
	mutex_unlock(&ksplice_mutex);
	return ret;
}

static ssize_t partial_show(struct update *update, char *buf)
{
	return sysfs_emit(buf, "%d\n", update->partial);
}

static ssize_t partial_store(struct update *update, const char *buf, size_t len)
{
	bool val;
	int ret = kstrtobool(buf, &val);

	if (ret)
		return ret;
	update->partial = val;
	return len;
}

static struct update_attribute stage_attr = __ATTR_RW(stage);
static struct update_attribute abort_cause_attr = __ATTR_RO(abort_cause);
static struct update_attribute conflicts_attr = __ATTR_RO(conflicts);
static struct update_attribute partial_attr = __ATTR_RW(partial);

static struct attribute *update_attrs[] = {
	&stage_attr.attr,
	&abort_cause_attr.attr,
	&conflicts_attr.attr,
	&partial_attr.attr,
	NULL,
};

/* debug: the trace of the last apply or reverse, of any length. */
static ssize_t debug_read(struct file *file, struct kobject *kobj,
			  struct bin_attribute *attr, char *buf, loff_t off,
			  size_t count)
{
	struct update *u = container_of(kobj, struct update, kobj);
	ssize_t n = 0;

	mutex_lock(&ksplice_mutex);
	if (u->debug && off < u->debug_len) {
		n = min_t(size_t, count, u->debug_len - off);
		memcpy(buf, u->debug + off, n);
	} else if (!u->debug && off == 0) {
		struct ksplice_mod_change *change;

		list_for_each_entry(change, &u->changes, list) {
			int k = scnprintf(buf + n, count - n, "%s: target %s, %ld patches\n",
					  change->name, change->target_name,
					  (long)(change->patches_end - change->patches));
			n += k;
		}
	}
	mutex_unlock(&ksplice_mutex);
	return n;
}

static BIN_ATTR_RO(debug, 0);

static struct bin_attribute *update_bin_attrs[] = {
	&bin_attr_debug,
	NULL,
};

static const struct attribute_group update_group = {
	.attrs = update_attrs,
	.bin_attrs = update_bin_attrs,
};

static const struct attribute_group *update_groups[] = {
	&update_group,
	NULL,
};

static ssize_t update_attr_show(struct kobject *kobj, struct attribute *attr,
				char *buf)
{
	struct update_attribute *a = container_of(attr, struct update_attribute, attr);

	return a->show ? a->show(container_of(kobj, struct update, kobj), buf) : -EIO;
}

static ssize_t update_attr_store(struct kobject *kobj, struct attribute *attr,
				 const char *buf, size_t len)
{
	struct update_attribute *a = container_of(attr, struct update_attribute, attr);

	return a->store ? a->store(container_of(kobj, struct update, kobj), buf, len) : -EIO;
}

static const struct sysfs_ops update_sysfs_ops = {
	.show = update_attr_show,
	.store = update_attr_store,
};

static void update_release(struct kobject *kobj)
{
	struct update *u = container_of(kobj, struct update, kobj);

	kvfree(u->debug);
	kvfree(u->busy_ranges);
	kvfree(u->busy_names);
	kfree(u->conflicts);
	kfree(u);
}

static const struct kobj_type update_ktype = {
	.sysfs_ops = &update_sysfs_ops,
	.release = update_release,
	.default_groups = update_groups,
};

/* ------------------------------------------------------------ registration */

int init_ksplice_mod_change(struct ksplice_mod_change *change)
{
	struct change_priv *cp;
	int ret = 0;

	cp = kzalloc(sizeof(*cp), GFP_KERNEL);
	if (!cp)
		return -ENOMEM;
	hash_init(cp->values);
	sort(change->old_code.relocs,
	     change->old_code.relocs_end - change->old_code.relocs,
	     sizeof(*change->old_code.relocs), ksplice_reloc_cmp, NULL);
	if (change->old_code.sites)
		sort(change->old_code.sites,
		     change->old_code.sites_end - change->old_code.sites,
		     sizeof(*change->old_code.sites), ksplice_site_order, NULL);
	if (change->new_code.sites)
		sort(change->new_code.sites,
		     change->new_code.sites_end - change->new_code.sites,
		     sizeof(*change->new_code.sites), ksplice_site_order, NULL);
	mutex_lock(&ksplice_mutex);
	if (!the_update) {
		struct update *update = kzalloc(sizeof(*update), GFP_KERNEL);

		if (!update) {
			ret = -ENOMEM;
			goto out;
		}
		INIT_LIST_HEAD(&update->changes);
		update->stage = STAGE_PREPARING;
		ret = kobject_init_and_add(&update->kobj, &update_ktype,
					   ksplice_kobj, "%s", change->kid);
		if (ret) {
			kobject_put(&update->kobj);
			goto out;
		}
		the_update = update;
	} else if (the_update->stage != STAGE_PREPARING) {
		ret = -EBUSY;
		goto out;
	}
	cp->update = the_update;
	change->priv = cp;
	cp = NULL;
	list_add_tail(&change->list, &the_update->changes);
	pr_info("ksplice: %s: change %s for %s registered\n", change->kid,
		change->name, change->target_name);
out:
	mutex_unlock(&ksplice_mutex);
	kfree(cp);
	return ret;
}
EXPORT_SYMBOL_GPL(init_ksplice_mod_change);

/* Forgets a change; the caller holds ksplice_mutex. */
static void forget_change(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;

	ksplice_unprepare_patches(change);
	list_del(&change->list);
	change->priv = NULL;
	if (cp->target)
		module_put(cp->target);
	ksplice_values_free(cp);
	kvfree(cp->run);
	ksplice_free_saved(cp);
	kfree(cp);
	if (the_update && list_empty(&the_update->changes)) {
		kobject_put(&the_update->kobj);
		the_update = NULL;
	}
}

/* The old code module goes: an applied change stays, without its old code. */
void cleanup_ksplice_mod_change(struct ksplice_mod_change *change)
{
	struct change_priv *cp;

	mutex_lock(&ksplice_mutex);
	cp = change->priv;
	if (cp && (cp->applied || cp->update->stage != STAGE_PREPARING))
		memset(&change->old_code, 0, sizeof(change->old_code));
	else if (cp)
		forget_change(change);
	mutex_unlock(&ksplice_mutex);
}
EXPORT_SYMBOL_GPL(cleanup_ksplice_mod_change);

void ksplice_new_code_gone(struct ksplice_mod_change *change)
{
	mutex_lock(&ksplice_mutex);
	if (change->priv)
		forget_change(change);
	mutex_unlock(&ksplice_mutex);
}
EXPORT_SYMBOL_GPL(ksplice_new_code_gone);

/* /sys/kernel/ksplice, shared by the cores of all updates loaded. */
static struct kobject *ksplice_dir(void)
{
	int tries;

	for (tries = 0; tries < 3; tries++) {
		struct kernfs_node *kn = kernfs_find_and_get(kernel_kobj->sd, "ksplice");
		struct kobject *kobj = NULL;

		if (kn) {
			if (kernfs_type(kn) == KERNFS_DIR && kn->priv)
				kobj = kobject_get_unless_zero(kn->priv);
			kernfs_put(kn);
			if (kobj)
				return kobj;
		}
		kobj = kobject_create_and_add("ksplice", kernel_kobj);
		if (kobj)
			return kobj;
	}
	return NULL;
}

static int __init ksplice_init(void)
{
	int ret;

	ksplice_kobj = ksplice_dir();
	if (!ksplice_kobj)
		return -ENOMEM;
	ret = ksplice_labels_init();
	if (ret)
		kobject_put(ksplice_kobj);
	return ret;
}

static void __exit ksplice_exit(void)
{
	ksplice_labels_exit();
	ksplice_shadow_free_matching(0, true);
	kobject_put(ksplice_kobj);
}

module_init(ksplice_init);
module_exit(ksplice_exit);
MODULE_DESCRIPTION("Ksplice core: rebootless kernel updates");
MODULE_VERSION(KSPLICE_VERSION);
MODULE_LICENSE("GPL");
