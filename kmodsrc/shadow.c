// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow data (<ksplice-patch.h>): blocks of new state attached to existing
 * objects, kept in a hash table by object and id, all freed when the update
 * is reversed. The new code reaches these functions through the core's own
 * symbols (ksplice_core_symbol), not through exports.
 */
#include <linux/hash.h>
#include <linux/hashtable.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include "core.h"
#include "include/ksplice-patch.h"

struct shadow {
	struct hlist_node node;
	const void *obj;
	unsigned long id;
	char data[];
};

static DEFINE_HASHTABLE(shadow_table, 8);
static DEFINE_SPINLOCK(shadow_lock);

static u32 shadow_key(const void *obj, unsigned long id)
{
	return hash_long((unsigned long)obj ^ (id * GOLDEN_RATIO_64), 32);
}

static struct shadow *shadow_find(const void *obj, unsigned long id)
{
	struct shadow *sh;

	hash_for_each_possible(shadow_table, sh, node, shadow_key(obj, id))
		if (sh->obj == obj && sh->id == id)
			return sh;
	return NULL;
}

void *ksplice_shadow_get(const void *obj, unsigned long id)
{
	struct shadow *sh;
	unsigned long flags;

	spin_lock_irqsave(&shadow_lock, flags);
	sh = shadow_find(obj, id);
	spin_unlock_irqrestore(&shadow_lock, flags);
	return sh ? sh->data : NULL;
}

void *ksplice_shadow_get_or_alloc(const void *obj, unsigned long id,
				  size_t size, gfp_t gfp,
				  int (*ctor)(void *shadow, void *arg), void *arg)
{
	struct shadow *sh, *fresh;
	unsigned long flags;

	fresh = kzalloc(sizeof(*fresh) + size, gfp);
	spin_lock_irqsave(&shadow_lock, flags);
	sh = shadow_find(obj, id);
	if (!sh && fresh) {
		fresh->obj = obj;
		fresh->id = id;
		if (ctor && ctor(fresh->data, arg)) {
			spin_unlock_irqrestore(&shadow_lock, flags);
			kfree(fresh);
			return NULL;
		}
		hash_add(shadow_table, &fresh->node, shadow_key(obj, id));
		sh = fresh;
		fresh = NULL;
	}
	spin_unlock_irqrestore(&shadow_lock, flags);
	kfree(fresh);
	return sh ? sh->data : NULL;
}

void ksplice_shadow_free(const void *obj, unsigned long id)
{
	struct shadow *sh;
	unsigned long flags;

	spin_lock_irqsave(&shadow_lock, flags);
	sh = shadow_find(obj, id);
	if (sh)
		hash_del(&sh->node);
	spin_unlock_irqrestore(&shadow_lock, flags);
	kfree(sh);
}

/* Frees every block with id (all of them if all); returns how many. */
size_t ksplice_shadow_free_matching(unsigned long id, bool all)
{
	struct hlist_node *tmp;
	struct shadow *sh;
	unsigned long flags;
	size_t n = 0;
	int bkt;

	spin_lock_irqsave(&shadow_lock, flags);
	hash_for_each_safe(shadow_table, bkt, tmp, sh, node) {
		if (all || sh->id == id) {
			hash_del(&sh->node);
			kfree(sh);
			n++;
		}
	}
	spin_unlock_irqrestore(&shadow_lock, flags);
	return n;
}

void ksplice_shadow_free_all(unsigned long id)
{
	ksplice_shadow_free_matching(id, false);
}

/* What the core itself provides to the new code (<ksplice-patch.h>). */
static const struct {
	const char *name;
	void *addr;
} core_symbols[] = {
	{ "ksplice_shadow_get", ksplice_shadow_get },
	{ "ksplice_shadow_get_or_alloc", ksplice_shadow_get_or_alloc },
	{ "ksplice_shadow_free", ksplice_shadow_free },
	{ "ksplice_shadow_free_all", ksplice_shadow_free_all },
};

/* The address of a function the core provides by that name, or NULL. */
void *ksplice_core_symbol(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(core_symbols); i++)
		if (!strcmp(name, core_symbols[i].name))
			return core_symbols[i].addr;
	return NULL;
}
