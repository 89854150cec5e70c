// SPDX-License-Identifier: GPL-2.0
/*
 * The Ksplice core module of one update (ksplice-<kid>.ko).
 *
 * It collects the changes the update's old code modules hand over and
 * exposes the update as /sys/kernel/ksplice/<kid>/ (stage, abort_cause,
 * conflicts, debug, partial). Run-pre matching and patching are not written
 * yet: writing "apply" to stage fails with EOPNOTSUPP and abort_cause
 * "unexpected", and the kernel is left untouched.
 */
#include <linux/build_bug.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include "ksplice.h"

enum ksplice_stage {
	STAGE_PREPARING,
	STAGE_APPLIED,
	STAGE_REVERSED,
};

static const char *const stage_names[] = {
	[STAGE_PREPARING] = "preparing",
	[STAGE_APPLIED] = "applied",
	[STAGE_REVERSED] = "reversed",
};

struct update {
	struct kobject kobj;
	enum ksplice_stage stage;
	const char *abort_cause;
	bool partial;
	struct list_head changes;
};

struct update_attribute {
	struct attribute attr;
	ssize_t (*show)(struct update *update, char *buf);
	ssize_t (*store)(struct update *update, const char *buf, size_t len);
};

static DEFINE_MUTEX(ksplice_mutex);
static struct kobject *ksplice_kobj;
static struct update *the_update;

static ssize_t stage_show(struct update *update, char *buf)
{
	return sysfs_emit(buf, "%s\n", stage_names[update->stage]);
}

static ssize_t stage_store(struct update *update, const char *buf, size_t len)
{
	ssize_t ret = len;

	mutex_lock(&ksplice_mutex);
	if (sysfs_streq(buf, "apply")) {
		if (update->stage == STAGE_PREPARING) {
			update->abort_cause = "unexpected";
			pr_err("ksplice: %s: cannot apply: run-pre matching is not implemented yet\n",
			       kobject_name(&update->kobj));
			ret = -EOPNOTSUPP;
		}
	} else if (sysfs_streq(buf, "reverse")) {
		if (update->stage != STAGE_APPLIED) {
			update->abort_cause = "already_reversed";
			ret = -EINVAL;
		}
	} else if (!sysfs_streq(buf, "cleanup")) {
		ret = -EINVAL;
	}
	mutex_unlock(&ksplice_mutex);
	return ret;
}

static ssize_t abort_cause_show(struct update *update, char *buf)
{
	return sysfs_emit(buf, "%s\n", update->abort_cause ?: "ok");
}

static ssize_t conflicts_show(struct update *update, char *buf)
{
	return sysfs_emit(buf, "\n");
}

static ssize_t debug_show(struct update *update, char *buf)
{
	struct ksplice_mod_change *change;
	ssize_t n = 0;

	mutex_lock(&ksplice_mutex);
	list_for_each_entry(change, &update->changes, list)
		n += sysfs_emit_at(buf, n, "%s: target %s, %ld patches\n",
				   change->name, change->target_name,
				   (long)(change->patches_end - change->patches));
	mutex_unlock(&ksplice_mutex);
	return n;
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
static struct update_attribute debug_attr = __ATTR_RO(debug);
static struct update_attribute partial_attr = __ATTR_RW(partial);

static struct attribute *update_attrs[] = {
	&stage_attr.attr,
	&abort_cause_attr.attr,
	&conflicts_attr.attr,
	&debug_attr.attr,
	&partial_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(update);

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
	kfree(container_of(kobj, struct update, kobj));
}

static struct kobj_type update_ktype = {
	.sysfs_ops = &update_sysfs_ops,
	.release = update_release,
	.default_groups = update_groups,
};

int init_ksplice_mod_change(struct ksplice_mod_change *change)
{
	int ret = 0;

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
	}
	list_add_tail(&change->list, &the_update->changes);
	pr_info("ksplice: %s: change %s for %s registered\n", change->kid,
		change->name, change->target_name);
out:
	mutex_unlock(&ksplice_mutex);
	return ret;
}
EXPORT_SYMBOL_GPL(init_ksplice_mod_change);

void cleanup_ksplice_mod_change(struct ksplice_mod_change *change)
{
	mutex_lock(&ksplice_mutex);
	list_del(&change->list);
	if (the_update && list_empty(&the_update->changes)) {
		kobject_put(&the_update->kobj);
		the_update = NULL;
	}
	mutex_unlock(&ksplice_mutex);
}
EXPORT_SYMBOL_GPL(cleanup_ksplice_mod_change);

static int __init ksplice_init(void)
{
	/* The layout ksplice-obj writes (docs/FORMAT.md). */
	BUILD_BUG_ON(sizeof(struct ksplice_symbol) != 32);
	BUILD_BUG_ON(sizeof(struct ksplice_reloc) != 40);
	BUILD_BUG_ON(sizeof(struct ksplice_reloc_howto) != 32);
	BUILD_BUG_ON(sizeof(struct ksplice_section) != 48);
	BUILD_BUG_ON(sizeof(struct ksplice_patch) != 48);
	BUILD_BUG_ON(sizeof(struct ksplice_system_map) != 24);

	ksplice_kobj = kobject_create_and_add("ksplice", kernel_kobj);
	return ksplice_kobj ? 0 : -ENOMEM;
}

static void __exit ksplice_exit(void)
{
	kobject_put(ksplice_kobj);
}

module_init(ksplice_init);
module_exit(ksplice_exit);
MODULE_DESCRIPTION("Ksplice core: rebootless kernel updates");
MODULE_LICENSE("GPL");
