// SPDX-License-Identifier: GPL-2.0
/*
 * The Ksplice core module of one update (ksplice-<kid>.ko).
 *
 * The update's old code modules hand their target's change to the core
 * (init_ksplice_mod_change). The update is driven through
 * /sys/kernel/ksplice/<kid>/: writing "apply" to stage runs run-pre
 * matching (the running code of every old code function is found and
 * compared byte for byte, which also teaches the values of the symbols its
 * relocations refer to), resolves the new code's relocations, then stops the
 * machine, checks that no task is inside a function being replaced and
 * writes a 5-byte jump at the start of each. Writing "reverse" undoes it.
 * Any failure leaves the kernel as it was and names its cause in
 * abort_cause, with a trace in debug.
 */
#include <linux/build_bug.h>
#include <linux/delay.h>
#include <linux/hashtable.h>
#include <linux/kernel.h>
#include <linux/kernfs.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/printk.h>
#include <linux/sched/signal.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/stop_machine.h>
#include <linux/string.h>
#include <linux/stringhash.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <asm/sync_core.h>
#include "ksplice.h"
#include "include/ksplice-patch.h"

/* ksplice_reloc_howto.type */
enum {
	KSPLICE_HOWTO_RELOC,
	KSPLICE_HOWTO_RELOC_PATCH,
	KSPLICE_HOWTO_DATE,
	KSPLICE_HOWTO_TIME,
	KSPLICE_HOWTO_BUG,
	KSPLICE_HOWTO_EXTABLE,
	KSPLICE_HOWTO_SYMBOL,
};

/* ksplice_section.flags */
#define KSPLICE_SECTION_TEXT	0x1
#define KSPLICE_SECTION_RODATA	0x2
#define KSPLICE_SECTION_DATA	0x4
#define KSPLICE_SECTION_STRING	0x8

/* ksplice_patch.type */
enum {
	KSPLICE_PATCH_TEXT,
	KSPLICE_PATCH_DATA,
	KSPLICE_PATCH_EXPORT,
};

#define KSPLICE_CANARY		0x7777777777777777UL
#define KSPLICE_JMP_SIZE	5
#define KSPLICE_TRIES		5
#define KSPLICE_DEBUG_MAX	(256 * 1024)

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

enum abort_cause {
	OK,
	NO_MATCH,
	CODE_BUSY,
	BAD_SYSTEM_MAP,
	FAILED_TO_FIND,
	ALREADY_REVERSED,
	MISSING_EXPORT,
	UNEXPECTED_RUNNING_TASK,
	TARGET_NOT_LOADED,
	OUT_OF_MEMORY,
	CALL_FAILED,
	UNEXPECTED,
};

static const char *const cause_names[] = {
	[OK] = "ok",
	[NO_MATCH] = "no_match",
	[CODE_BUSY] = "code_busy",
	[BAD_SYSTEM_MAP] = "bad_system_map",
	[FAILED_TO_FIND] = "failed_to_find",
	[ALREADY_REVERSED] = "already_reversed",
	[MISSING_EXPORT] = "missing_export",
	[UNEXPECTED_RUNNING_TASK] = "unexpected_running_task",
	[TARGET_NOT_LOADED] = "target_not_loaded",
	[OUT_OF_MEMORY] = "out_of_memory",
	[CALL_FAILED] = "call_failed",
	[UNEXPECTED] = "unexpected",
};

struct update {
	struct kobject kobj;
	enum ksplice_stage stage;
	enum abort_cause cause;
	bool partial;
	struct list_head changes;
	char *debug;
	size_t debug_len;
	/* address ranges no task may be inside while the machine is stopped */
	unsigned long *busy_ranges;
	size_t nr_busy_ranges;
};

/* A symbol value, learnt by run-pre matching. */
struct value {
	struct hlist_node node;
	const char *label;
	unsigned long val;
};

/* What the core knows of a registered change. */
struct change_priv {
	struct update *update;
	struct module *target;		/* NULL for vmlinux */
	bool skipped;			/* target not loaded, --partial */
	bool applied;
	unsigned long kaslr;
	unsigned long *run;		/* running address of each old section */
	DECLARE_HASHTABLE(values, 10);
	u8 *saved;			/* saved bytes of the patches */
	void **alias;			/* writable alias of each patch */
	unsigned long *alias_base;
};

struct update_attribute {
	struct attribute attr;
	ssize_t (*show)(struct update *update, char *buf);
	ssize_t (*store)(struct update *update, const char *buf, size_t len);
};

static DEFINE_MUTEX(ksplice_mutex);
static struct kobject *ksplice_kobj;
static struct update *the_update;

static __printf(2, 3) void ks_debug(struct update *u, const char *fmt, ...)
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

static int ks_abort(struct update *u, enum abort_cause cause)
{
	u->cause = cause;
	ks_debug(u, "Aborted: %s\n", cause_names[cause]);
	pr_err("ksplice: %s: aborted (%s)\n", kobject_name(&u->kobj),
	       cause_names[cause]);
	return -EINVAL;
}

/* ------------------------------------------------------------ memory */

static struct page *ks_page_of(unsigned long addr)
{
	if (is_vmalloc_addr((void *)addr) ||
	    (addr >= MODULES_VADDR && addr < MODULES_END))
		return vmalloc_to_page((void *)addr);
	if (addr >= __START_KERNEL_map)
		return pfn_to_page(__pa_symbol(addr) >> PAGE_SHIFT);
	return virt_to_page((void *)addr);
}

/*
 * A writable alias of the page(s) holding [addr, addr + len), or NULL. The
 * alias starts at the page of addr; vunmap() it when done.
 */
static void *ks_map_alias(unsigned long addr, size_t len)
{
	unsigned long first = addr & PAGE_MASK;
	unsigned long last = (addr + len - 1) & PAGE_MASK;
	struct page *pages[2];
	unsigned int n = 1;

	if (!len || last - first > PAGE_SIZE)
		return NULL;
	pages[0] = ks_page_of(first);
	if (last != first)
		pages[n++] = ks_page_of(last);
	if (!pages[0] || (n == 2 && !pages[1]))
		return NULL;
	return vmap(pages, n, VM_MAP, PAGE_KERNEL);
}

/* Writes len bytes at addr (text or read-only data) through an alias. */
static int ks_poke(unsigned long addr, const void *src, size_t len)
{
	void *alias = ks_map_alias(addr, len);

	if (!alias)
		return -ENOMEM;
	memcpy(alias + offset_in_page(addr), src, len);
	vunmap(alias);
	return 0;
}

/* ------------------------------------------------------------ shadow data */

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
static size_t shadow_free_matching(unsigned long id, bool all)
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
	shadow_free_matching(id, false);
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

/* ------------------------------------------------------------ symbols */

static struct value *value_find(struct change_priv *cp, const char *label)
{
	u32 key = full_name_hash(NULL, label, strlen(label));
	struct value *v;

	hash_for_each_possible(cp->values, v, node, key)
		if (!strcmp(v->label, label))
			return v;
	return NULL;
}

static int value_learn(struct change_priv *cp, const char *label,
		       unsigned long val)
{
	struct value *v = value_find(cp, label);

	if (v)
		return v->val == val ? 0 : -EINVAL;
	v = kmalloc(sizeof(*v), GFP_KERNEL);
	if (!v)
		return -ENOMEM;
	v->label = label;
	v->val = val;
	hash_add(cp->values, &v->node, full_name_hash(NULL, label, strlen(label)));
	return 0;
}

static void values_free(struct change_priv *cp)
{
	struct hlist_node *tmp;
	struct value *v;
	int bkt;

	hash_for_each_safe(cp->values, bkt, tmp, v, node) {
		hash_del(&v->node);
		kfree(v);
	}
}

static const struct ksplice_system_map *
map_find(const struct ksplice_code *code, const char *label)
{
	const struct ksplice_system_map *m;

	if (!code->system_map)
		return NULL;
	for (m = code->system_map; m < code->system_map_end; m++)
		if (m->label && !strcmp(m->label, label))
			return m;
	return NULL;
}

/* System.map lists kernel image addresses unrelocated; per-CPU offsets are not shifted. */
static unsigned long map_shift(struct change_priv *cp, unsigned long addr)
{
	return addr >= __START_KERNEL_map ? addr + cp->kaslr : addr;
}

/*
 * The running addresses a label may have: System.map candidates for the
 * kernel, the target module's symbol table for a module. Returns how many
 * were stored (up to max), or -ENOENT.
 */
static int candidates(struct ksplice_mod_change *change,
		      const struct ksplice_symbol *sym, unsigned long *out,
		      int max)
{
	struct change_priv *cp = change->priv;
	const struct ksplice_system_map *m;
	int n = 0;
	unsigned long i;

	if (cp->target) {
		struct mod_kallsyms *ks;

		if (!sym->name)
			return -ENOENT;
		preempt_disable();
		ks = rcu_dereference_sched(cp->target->kallsyms);
		for (i = 0; ks && i < ks->num_symtab && n < max; i++) {
			if (ks->symtab[i].st_shndx != SHN_UNDEF && ks->symtab[i].st_value &&
			    !strcmp(ks->strtab + ks->symtab[i].st_name, sym->name))
				out[n++] = ks->symtab[i].st_value;
		}
		preempt_enable();
		if (n || strchr(sym->label, '<'))
			return n ? n : -ENOENT;
	}
	m = map_find(&change->old_code, sym->label);
	if (!m)
		m = map_find(&change->new_code, sym->label);
	if (!m)
		return -ENOENT;
	for (i = 0; i < m->nr_candidates && n < max; i++)
		out[n++] = map_shift(cp, m->candidates[i]);
	return n ? n : -ENOENT;
}

/* The value of a label for the new code: learnt, or its only candidate. */
static int resolve_label(struct ksplice_mod_change *change,
			 const struct ksplice_symbol *sym, unsigned long *val)
{
	struct change_priv *cp = change->priv;
	struct value *v = value_find(cp, sym->label);
	unsigned long cands[2];
	size_t i;
	int n;

	if (v) {
		*val = v->val;
		return 0;
	}
	for (i = 0; sym->name && i < ARRAY_SIZE(core_symbols); i++) {
		if (!strcmp(sym->name, core_symbols[i].name)) {
			*val = (unsigned long)core_symbols[i].addr;
			return 0;
		}
	}
	n = candidates(change, sym, cands, ARRAY_SIZE(cands));
	if (n == 1) {
		*val = cands[0];
		return 0;
	}
	ks_debug(cp->update, "%s: cannot resolve %s (%s)\n", change->name,
		 sym->label,
		 n > 1 ? "several candidates, none confirmed by matching" :
			 "not matched and not in System.map");
	return -ENOENT;
}

/* ------------------------------------------------------------ relocations */

static u64 field_mask(const struct ksplice_reloc_howto *h)
{
	return h->size >= 8 ? ~0ULL : (1ULL << (h->size * 8)) - 1;
}

static u64 field_read(const void *p, const struct ksplice_reloc_howto *h)
{
	u64 v = 0;

	memcpy(&v, p, min_t(u32, h->size, sizeof(v)));
	v &= field_mask(h) & h->dst_mask;
	if (h->signed_addend && h->size < 8)
		v = sign_extend64(v, h->size * 8 - 1);
	return v;
}

static int reloc_cmp(const void *a, const void *b)
{
	const struct ksplice_reloc *x = a, *y = b;

	if (x->blank_addr != y->blank_addr)
		return x->blank_addr < y->blank_addr ? -1 : 1;
	return 0;
}

/* The first relocation of code at or after addr (relocs sorted). */
static const struct ksplice_reloc *
first_reloc(const struct ksplice_code *code, unsigned long addr)
{
	const struct ksplice_reloc *lo = code->relocs, *hi = code->relocs_end;

	while (lo < hi) {
		const struct ksplice_reloc *mid = lo + (hi - lo) / 2;

		if (mid->blank_addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ------------------------------------------------------------ run-pre matching */

struct learnt {
	const char *label;
	unsigned long val;
};

/*
 * Compares the old code of sect with the running bytes run[] at address
 * addr. Relocated fields are not compared: the symbol value they imply is
 * checked against what is already known and, into new[], what this
 * section implies. Returns 0 on a match, 1 on a mismatch (described in
 * why), or a negative errno.
 */
static int cmp_section(struct ksplice_mod_change *change,
		       const struct ksplice_section *sect, unsigned long addr,
		       const u8 *run, struct learnt *new, size_t *nr_new,
		       char *why, size_t whylen)
{
	struct change_priv *cp = change->priv;
	const u8 *old = (const u8 *)sect->address;
	const struct ksplice_reloc *r = first_reloc(&change->old_code, sect->address);
	unsigned long off = 0;
	unsigned long cands[16];
	size_t i;

	*nr_new = 0;
	while (off < sect->size) {
		const struct ksplice_reloc_howto *h;
		const struct ksplice_symbol *sym;
		unsigned long val;
		struct value *known;
		int n, k;

		while (r < change->old_code.relocs_end && r->blank_addr < sect->address + off)
			r++;
		if (r >= change->old_code.relocs_end || r->blank_addr != sect->address + off) {
			if (old[off] != run[off]) {
				snprintf(why, whylen, "byte %#lx: %02x, running %02x",
					 off, old[off], run[off]);
				return 1;
			}
			off++;
			continue;
		}
		h = r->howto;
		sym = r->symbol;
		if (!h || !sym || !sym->label || h->size > 8 || off + h->size > sect->size)
			return -EINVAL;
		if (!h->size) {
			/* A marker (KSPLICE_HOWTO_SYMBOL): no field. */
			r++;
			continue;
		}
		off += h->size;
		if (h->type != KSPLICE_HOWTO_RELOC && h->type != KSPLICE_HOWTO_RELOC_PATCH)
			continue;
		if (field_read(old + off - h->size, h) !=
		    field_read(&(u64){ KSPLICE_CANARY }, h)) {
			/*
			 * Rewritten when the module was loaded (alternatives,
			 * applied for the same CPU as the running kernel's):
			 * the bytes themselves must match.
			 */
			if (memcmp(old + off - h->size, run + off - h->size, h->size)) {
				snprintf(why, whylen,
					 "field %#lx (%s) rewritten at load time differs",
					 off - h->size, sym->label);
				return 1;
			}
			continue;
		}
		val = field_read(run + off - h->size, h) - r->insn_addend - r->target_addend;
		if (h->pcrel)
			val += addr + off - h->size;
		known = value_find(cp, sym->label);
		if (known && known->val != val) {
			snprintf(why, whylen, "field %#lx refers to %s at %#lx, known at %#lx",
				 off - h->size, sym->label, val, known->val);
			return 1;
		}
		for (i = 0; i < *nr_new; i++) {
			if (strcmp(new[i].label, sym->label))
				continue;
			if (new[i].val != val) {
				snprintf(why, whylen, "field %#lx refers to %s at %#lx and %#lx",
					 off - h->size, sym->label, val, new[i].val);
				return 1;
			}
			break;
		}
		if (known || i < *nr_new)
			continue;
		n = candidates(change, sym, cands, ARRAY_SIZE(cands));
		if (n > 0 && n < ARRAY_SIZE(cands)) {
			for (k = 0; k < n && cands[k] != val; k++)
				;
			if (k == n) {
				snprintf(why, whylen,
					 "field %#lx refers to %s at %#lx, not a System.map address of it",
					 off - h->size, sym->label, val);
				return 1;
			}
		}
		new[*nr_new].label = sym->label;
		new[*nr_new].val = val;
		(*nr_new)++;
	}
	return 0;
}

static size_t relocs_in(const struct ksplice_code *code,
			const struct ksplice_section *sect)
{
	const struct ksplice_reloc *r = first_reloc(code, sect->address);
	size_t n = 0;

	while (r < code->relocs_end && r->blank_addr < sect->address + sect->size) {
		n++;
		r++;
	}
	return n;
}

enum { SECT_UNTRIED, SECT_MATCHED, SECT_FAILED, SECT_AMBIGUOUS, SECT_NO_CANDIDATE };

/* Tries every candidate address of one old section. */
static int match_section(struct ksplice_mod_change *change, size_t idx,
			 int *state)
{
	struct change_priv *cp = change->priv;
	struct update *u = cp->update;
	const struct ksplice_section *sect = change->old_code.sections + idx;
	unsigned long cands[16], found = 0;
	struct value *known = value_find(cp, sect->symbol->label);
	struct learnt *new, *best = NULL;
	size_t nr_new = 0, nr_best = 0, cap = relocs_in(&change->old_code, sect) + 1;
	char why[160] = "";
	int n, i, ok = 0, ret = 0;
	u8 *run;

	if (known) {
		cands[0] = known->val;
		n = 1;
	} else {
		n = candidates(change, sect->symbol, cands, ARRAY_SIZE(cands));
	}
	if (n <= 0) {
		*state = SECT_NO_CANDIDATE;
		return 0;
	}
	run = kvmalloc(sect->size ?: 1, GFP_KERNEL);
	new = kvmalloc_array(cap, sizeof(*new), GFP_KERNEL);
	best = kvmalloc_array(cap, sizeof(*best), GFP_KERNEL);
	if (!run || !new || !best) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		int r;

		if (copy_from_kernel_nofault(run, (void *)cands[i], sect->size)) {
			ks_debug(u, "  %s: candidate %#lx unreadable\n",
				 sect->symbol->label, cands[i]);
			continue;
		}
		r = cmp_section(change, sect, cands[i], run, new, &nr_new,
				why, sizeof(why));
		if (r < 0) {
			ret = r;
			goto out;
		}
		if (r) {
			ks_debug(u, "  %s: candidate %#lx: %s\n",
				 sect->symbol->label, cands[i], why);
			continue;
		}
		ok++;
		found = cands[i];
		swap(new, best);
		nr_best = nr_new;
	}
	if (ok == 1) {
		for (i = 0; i < nr_best && !ret; i++)
			ret = value_learn(cp, best[i].label, best[i].val);
		if (!ret)
			ret = value_learn(cp, sect->symbol->label, found);
		if (ret)
			goto out;
		cp->run[idx] = found;
		*state = SECT_MATCHED;
		ks_debug(u, "  %s: matched at %#lx (%lu bytes)\n",
			 sect->symbol->label, found, sect->size);
	} else {
		*state = ok ? SECT_AMBIGUOUS : SECT_FAILED;
	}
out:
	kvfree(run);
	kvfree(new);
	kvfree(best);
	return ret;
}

static bool must_match(const struct ksplice_section *sect)
{
	return sect->flags & (KSPLICE_SECTION_TEXT | KSPLICE_SECTION_RODATA |
			      KSPLICE_SECTION_STRING);
}

/*
 * Run-pre matching of one change: rounds over the old sections until no
 * more can be matched (a match teaches values that narrow the candidates
 * of others).
 */
static int run_pre_match(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	struct update *u = cp->update;
	size_t nr = change->old_code.sections_end - change->old_code.sections;
	size_t i, matched = 0;
	bool progress = true;
	int *state, ret = 0;

	state = kvcalloc(nr ?: 1, sizeof(*state), GFP_KERNEL);
	if (!state)
		return ks_abort(u, OUT_OF_MEMORY);
	ks_debug(u, "%s: run-pre matching of %zu sections of %s\n", change->name,
		 nr, change->target_name);
	while (progress) {
		progress = false;
		for (i = 0; i < nr; i++) {
			const struct ksplice_section *s = change->old_code.sections + i;

			if (!must_match(s) || !s->symbol || !s->symbol->label ||
			    state[i] == SECT_MATCHED || state[i] == SECT_FAILED)
				continue;
			ret = match_section(change, i, &state[i]);
			if (ret == -ENOMEM) {
				ret = ks_abort(u, OUT_OF_MEMORY);
				goto out;
			}
			if (ret) {
				ks_debug(u, "  %s: malformed metadata\n", s->symbol->label);
				ret = ks_abort(u, UNEXPECTED);
				goto out;
			}
			if (state[i] == SECT_MATCHED) {
				matched++;
				progress = true;
			}
		}
	}
	for (i = 0; i < nr; i++) {
		const struct ksplice_section *s = change->old_code.sections + i;

		if (must_match(s) && s->symbol && state[i] != SECT_MATCHED)
			ks_debug(u, "  %s: not matched (%s)\n", s->symbol->label,
				 state[i] == SECT_FAILED ? "no candidate matches" :
				 state[i] == SECT_AMBIGUOUS ? "several candidates match" :
				 "no candidate address");
	}
	ks_debug(u, "%s: %zu sections matched\n", change->name, matched);
out:
	kvfree(state);
	return ret;
}

/* The matched old section of the running code holding [addr, addr + len). */
static bool in_matched_section(struct ksplice_mod_change *change,
			       unsigned long addr, size_t len,
			       unsigned long *start, unsigned long *size)
{
	struct change_priv *cp = change->priv;
	size_t i, nr = change->old_code.sections_end - change->old_code.sections;

	for (i = 0; i < nr; i++) {
		const struct ksplice_section *s = change->old_code.sections + i;

		if (cp->run[i] && addr >= cp->run[i] &&
		    addr + len <= cp->run[i] + s->size) {
			*start = cp->run[i];
			*size = s->size;
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------ new code */

/* Whether addr is the oldaddr field of one of the change's patches. */
static bool is_patch_target(struct ksplice_mod_change *change, unsigned long addr)
{
	const struct ksplice_patch *p;

	for (p = change->patches; p < change->patches_end; p++)
		if (addr == (unsigned long)&p->oldaddr)
			return true;
	return false;
}

/*
 * Fills every ksplice relocation of the new code from the values found. The
 * place of a patch that cannot be found means the running code is not what
 * the update was built against: no_match.
 */
static int resolve_new_code(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	const struct ksplice_reloc *r;

	for (r = change->new_code.relocs; r < change->new_code.relocs_end; r++) {
		const struct ksplice_reloc_howto *h = r->howto;
		unsigned long val;
		u64 field, mask;
		s64 sval;

		if (!h || !r->symbol || !r->symbol->label || h->size > 8)
			return ks_abort(cp->update, UNEXPECTED);
		if (!h->size ||
		    (h->type != KSPLICE_HOWTO_RELOC && h->type != KSPLICE_HOWTO_RELOC_PATCH))
			continue;
		if (resolve_label(change, r->symbol, &val))
			return ks_abort(cp->update, is_patch_target(change, r->blank_addr) ?
					NO_MATCH : FAILED_TO_FIND);
		val += r->insn_addend + r->target_addend;
		if (h->pcrel)
			val -= r->blank_addr;
		sval = (s64)val;
		if (h->size < 8 &&
		    (h->signed_addend ? sval != sign_extend64(val, h->size * 8 - 1) :
					val > field_mask(h))) {
			ks_debug(cp->update, "%s: %s out of range for a %u-byte field\n",
				 change->name, r->symbol->label, h->size);
			return ks_abort(cp->update, UNEXPECTED);
		}
		memcpy(&field, (void *)r->blank_addr, min_t(u32, h->size, 8));
		mask = field_mask(h) & h->dst_mask;
		field = (field & ~mask) | (val & mask);
		if (ks_poke(r->blank_addr, &field, h->size))
			return ks_abort(cp->update, OUT_OF_MEMORY);
	}
	return 0;
}

static void ksplice_deleted(void)
{
	WARN(1, "ksplice: a function deleted by an update was called\n");
}

/* Where the jump of a text patch goes. */
static unsigned long jump_target(const struct ksplice_patch *p)
{
	return p->repladdr ?: (unsigned long)ksplice_deleted;
}

/* The bytes a patch has once applied: its jump (built in jmp), or its data. */
static const void *patch_new(const struct ksplice_patch *p, u8 *jmp)
{
	s32 rel;

	if (p->type != KSPLICE_PATCH_TEXT)
		return p->contents;
	rel = (s32)(jump_target(p) - (p->oldaddr + KSPLICE_JMP_SIZE));
	jmp[0] = 0xe9;
	memcpy(jmp + 1, &rel, sizeof(rel));
	return jmp;
}

/*
 * Maps a writable alias of every patch of a change (cp->alias, one per
 * patch): 0 or -ENOMEM.
 */
static int map_aliases(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	size_t nr = change->patches_end - change->patches, i;

	cp->alias = kvcalloc(nr ?: 1, sizeof(*cp->alias), GFP_KERNEL);
	if (!cp->alias)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		const struct ksplice_patch *p = change->patches + i;

		cp->alias[i] = ks_map_alias(p->oldaddr, p->size);
		if (!cp->alias[i])
			return -ENOMEM;
	}
	return 0;
}

/*
 * Checks every patch of a change against the matched code and prepares it:
 * the bytes it replaces are saved and a writable alias of them mapped.
 */
static int prepare_patches(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	struct update *u = cp->update;
	size_t nr = change->patches_end - change->patches, i, total = 0;
	unsigned long start, size;

	for (i = 0; i < nr; i++) {
		struct ksplice_patch *p = change->patches + i;

		if (p->type == KSPLICE_PATCH_EXPORT) {
			ks_debug(u, "%s: export changes are not supported\n", change->name);
			return ks_abort(u, UNEXPECTED);
		}
		if (p->type == KSPLICE_PATCH_TEXT)
			p->size = KSPLICE_JMP_SIZE;
		if (!p->size || p->size > PAGE_SIZE ||
		    (p->type == KSPLICE_PATCH_DATA && !p->contents))
			return ks_abort(u, UNEXPECTED);
		if (!in_matched_section(change, p->oldaddr, p->size, &start, &size)) {
			ks_debug(u, "%s: patched code at %#lx was not matched with the running kernel\n",
				 change->name, p->oldaddr);
			return ks_abort(u, NO_MATCH);
		}
		if (p->type == KSPLICE_PATCH_TEXT) {
			long rel = (long)(jump_target(p) - (p->oldaddr + KSPLICE_JMP_SIZE));

			if (rel != (s32)rel)
				return ks_abort(u, UNEXPECTED);
			if (p->oldaddr + KSPLICE_JMP_SIZE > start + size) {
				ks_debug(u, "%s: function at %#lx too short for a jump\n",
					 change->name, p->oldaddr);
				return ks_abort(u, UNEXPECTED);
			}
		}
		total += p->size;
	}
	cp->saved = kvzalloc(total ?: 1, GFP_KERNEL);
	if (!cp->saved)
		return ks_abort(u, OUT_OF_MEMORY);
	total = 0;
	for (i = 0; i < nr; i++) {
		struct ksplice_patch *p = change->patches + i;

		if (copy_from_kernel_nofault(cp->saved + total, (void *)p->oldaddr, p->size))
			return ks_abort(u, UNEXPECTED);
		total += p->size;
	}
	if (map_aliases(change))
		return ks_abort(u, OUT_OF_MEMORY);
	return 0;
}

static void unprepare_patches(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	size_t nr = change->patches_end - change->patches, i;

	if (cp->alias) {
		for (i = 0; i < nr; i++)
			if (cp->alias[i])
				vunmap(cp->alias[i]);
		kvfree(cp->alias);
		cp->alias = NULL;
	}
}

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
static int run_hooks(struct update *u, enum ksplice_hook_kind kind)
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

/* ------------------------------------------------------------ stopping the machine */

static bool busy_word(struct update *u, unsigned long w)
{
	size_t i;

	for (i = 0; i < u->nr_busy_ranges; i++)
		if (w > u->busy_ranges[2 * i] && w <= u->busy_ranges[2 * i + 1])
			return true;
	return false;
}

/*
 * Whether any task's kernel stack, from its saved stack pointer up, holds
 * an address inside a range being replaced. Conservative: any word counts.
 */
static bool stacks_busy(struct update *u)
{
	struct task_struct *g, *t;
	unsigned long buf[64];
	bool busy = false;

	rcu_read_lock();
	for_each_process_thread(g, t) {
		unsigned long base = (unsigned long)READ_ONCE(t->stack);
		unsigned long sp = READ_ONCE(t->thread.sp);
		unsigned long top = base + THREAD_SIZE;

		/* The tasks on a CPU now are the stopper threads, this one included. */
		if (!base || t == current || READ_ONCE(t->on_cpu))
			continue;
		if (sp < base || sp >= top)
			sp = base;
		sp &= ~(sizeof(long) - 1);
		while (sp < top && !busy) {
			size_t len = min_t(size_t, sizeof(buf), top - sp), i;

			if (copy_from_kernel_nofault(buf, (void *)sp, len))
				break;
			for (i = 0; i < len / sizeof(long); i++) {
				if (busy_word(u, buf[i])) {
					pr_info("ksplice: %s: %s[%d] is using replaced code (%pS)\n",
						kobject_name(&u->kobj), t->comm,
						task_pid_nr(t), (void *)buf[i]);
					busy = true;
					break;
				}
			}
			sp += len;
		}
		if (busy)
			break;
	}
	rcu_read_unlock();
	return busy;
}

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

	if (run_hooks(u, reverse ? KSPLICE_HOOK_CHECK_REVERSE : KSPLICE_HOOK_CHECK_APPLY))
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
			if (reverse) {
				/* Data may have been written since: only jumps are checked. */
				if (p->type != KSPLICE_PATCH_TEXT)
					continue;
				want = patch_new(p, jmp);
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

			memcpy(cp->alias[i] + offset_in_page(p->oldaddr),
			       reverse ? cp->saved + off : patch_new(p, jmp), p->size);
			off += p->size;
		}
		cp->applied = !reverse;
	}
	sync_core();
	run_hooks(u, reverse ? KSPLICE_HOOK_REVERSE : KSPLICE_HOOK_APPLY);
	return 0;
}

static int apply_stopped(void *data)
{
	return patch_stopped(data, false);
}

static int reverse_stopped(void *data)
{
	return patch_stopped(data, true);
}

/*
 * Runs fn with the machine stopped, retrying while the code is busy.
 * Returns 0 or an abort cause.
 */
static enum abort_cause stop_and_run(struct update *u, int (*fn)(void *))
{
	int tries, ret = -EBUSY;

	for (tries = 0; tries < KSPLICE_TRIES && ret == -EBUSY; tries++) {
		if (tries)
			msleep(200 * tries);
		ret = stop_machine(fn, u, NULL);
	}
	on_each_cpu(ks_sync_core, NULL, 1);
	switch (ret) {
	case 0:
		return OK;
	case -EBUSY:
		ks_debug(u, "code busy after %d tries\n", KSPLICE_TRIES);
		return CODE_BUSY;
	case -ECANCELED:
		return CALL_FAILED;
	case -EEXIST:
		ks_debug(u, "the code changed under us (another update?)\n");
		return UNEXPECTED;
	default:
		return UNEXPECTED;
	}
}

/*
 * The ranges no task may be inside: the matched old functions patched
 * (apply) or the new code (reverse).
 */
static int busy_ranges(struct update *u, bool reverse)
{
	struct ksplice_mod_change *change;
	size_t n = 0, cap = 0;

	list_for_each_entry(change, &u->changes, list)
		cap += reverse ? change->new_code.sections_end - change->new_code.sections :
				 change->patches_end - change->patches;
	kvfree(u->busy_ranges);
	u->nr_busy_ranges = 0;
	u->busy_ranges = kvmalloc_array(2 * (cap ?: 1), sizeof(long), GFP_KERNEL);
	if (!u->busy_ranges)
		return -ENOMEM;
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;
		const struct ksplice_section *s;
		const struct ksplice_patch *p;
		unsigned long start, size;

		if (reverse ? !cp->applied : cp->skipped)
			continue;
		if (reverse) {
			for (s = change->new_code.sections;
			     s < change->new_code.sections_end; s++) {
				if (!(s->flags & KSPLICE_SECTION_TEXT))
					continue;
				u->busy_ranges[2 * n] = s->address;
				u->busy_ranges[2 * n + 1] = s->address + s->size;
				n++;
			}
			continue;
		}
		for (p = change->patches; p < change->patches_end; p++) {
			if (p->type != KSPLICE_PATCH_TEXT ||
			    !in_matched_section(change, p->oldaddr, 1, &start, &size))
				continue;
			u->busy_ranges[2 * n] = p->oldaddr < start + KSPLICE_JMP_SIZE ?
						start : p->oldaddr;
			u->busy_ranges[2 * n + 1] = start + size;
			n++;
		}
	}
	u->nr_busy_ranges = n;
	return 0;
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

	values_free(cp);
	kvfree(cp->run);
	cp->run = NULL;
	unprepare_patches(change);
	if (!cp->applied) {
		kvfree(cp->saved);
		cp->saved = NULL;
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
				ks_debug(u, "%s: target %s not loaded, skipped (partial)\n",
					 change->name, change->target_name);
				cp->skipped = true;
				return 0;
			}
			ks_debug(u, "%s: target module %s is not loaded\n", change->name,
				 change->target_name);
			return ks_abort(u, TARGET_NOT_LOADED);
		}
	}
	if (!change->map_printk) {
		ks_debug(u, "%s: built without the address of _printk in System.map\n",
			 change->name);
		return ks_abort(u, BAD_SYSTEM_MAP);
	}
	cp->kaslr = (unsigned long)&_printk - change->map_printk;
	if (cp->kaslr % PAGE_SIZE) {
		ks_debug(u, "%s: KASLR offset %#lx is not page aligned (System.map _printk %#lx)\n",
			 change->name, cp->kaslr, change->map_printk);
		return ks_abort(u, BAD_SYSTEM_MAP);
	}
	cp->run = kvcalloc(nr ?: 1, sizeof(*cp->run), GFP_KERNEL);
	if (!cp->run)
		return ks_abort(u, OUT_OF_MEMORY);
	ret = run_pre_match(change);
	if (ret)
		return ret;
	ret = resolve_new_code(change);
	if (ret)
		return ret;
	return prepare_patches(change);
}

/*
 * The part apply and reverse share: the busy ranges, the pre hooks, the
 * stopped machine (the fail hooks if it refused). 0 or an abort.
 */
static int switch_code(struct update *u, bool reverse)
{
	enum abort_cause cause;

	if (busy_ranges(u, reverse))
		return ks_abort(u, OUT_OF_MEMORY);
	if (run_hooks(u, reverse ? KSPLICE_HOOK_PRE_REVERSE : KSPLICE_HOOK_PRE_APPLY))
		return ks_abort(u, CALL_FAILED);
	cause = stop_and_run(u, reverse ? reverse_stopped : apply_stopped);
	if (cause != OK) {
		run_hooks(u, reverse ? KSPLICE_HOOK_FAIL_REVERSE : KSPLICE_HOOK_FAIL_APPLY);
		return ks_abort(u, cause);
	}
	return 0;
}

static int apply_update(struct update *u)
{
	struct ksplice_mod_change *change;
	bool any = false;
	int ret = 0;

	u->cause = OK;
	u->debug_len = 0;
	list_for_each_entry(change, &u->changes, list) {
		if (!change->old_code.sections) {
			ks_debug(u, "%s: the old code module is gone\n", change->name);
			ret = ks_abort(u, UNEXPECTED);
			goto out;
		}
		ret = prepare_change(u, change);
		if (ret)
			goto out;
		any |= !((struct change_priv *)change->priv)->skipped;
	}
	if (!any) {
		ks_debug(u, "no target of the update is loaded\n");
		ret = ks_abort(u, TARGET_NOT_LOADED);
		goto out;
	}
	ret = switch_code(u, false);
	if (ret)
		goto out;
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;

		if (cp->applied)
			__module_get(change->new_code_mod);
	}
	run_hooks(u, KSPLICE_HOOK_POST_APPLY);
	u->stage = STAGE_APPLIED;
	ks_debug(u, "applied\n");
	pr_info("ksplice: update %s applied\n", kobject_name(&u->kobj));
out:
	list_for_each_entry(change, &u->changes, list)
		change_release_match(change);
	return ret;
}

static int reverse_update(struct update *u)
{
	struct ksplice_mod_change *change;
	int ret = 0;

	u->cause = OK;
	list_for_each_entry(change, &u->changes, list) {
		if (((struct change_priv *)change->priv)->applied && map_aliases(change)) {
			ret = ks_abort(u, OUT_OF_MEMORY);
			goto out;
		}
	}
	ret = switch_code(u, true);
	if (ret)
		goto out;
	run_hooks(u, KSPLICE_HOOK_POST_REVERSE);
	list_for_each_entry(change, &u->changes, list) {
		struct change_priv *cp = change->priv;

		if (cp->skipped)
			continue;
		module_put(change->new_code_mod);
		if (cp->target)
			module_put(cp->target);
		cp->target = NULL;
		kvfree(cp->saved);
		cp->saved = NULL;
	}
	u->stage = STAGE_REVERSED;
	ks_debug(u, "reversed\n");
	pr_info("ksplice: update %s reversed, %zu shadow blocks freed\n",
		kobject_name(&u->kobj), shadow_free_matching(0, true));
out:
	list_for_each_entry(change, &u->changes, list)
		unprepare_patches(change);
	return ret;
}

/* ------------------------------------------------------------ sysfs */

static ssize_t stage_show(struct update *update, char *buf)
{
	return sysfs_emit(buf, "%s\n", stage_names[update->stage]);
}

static ssize_t stage_store(struct update *update, const char *buf, size_t len)
{
	ssize_t ret = len;

	mutex_lock(&ksplice_mutex);
	if (sysfs_streq(buf, "apply")) {
		if (update->stage == STAGE_PREPARING && apply_update(update))
			ret = -EINVAL;
	} else if (sysfs_streq(buf, "reverse")) {
		if (update->stage != STAGE_APPLIED) {
			update->cause = ALREADY_REVERSED;
			ret = -EINVAL;
		} else if (reverse_update(update)) {
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
	return sysfs_emit(buf, "%s\n", cause_names[update->cause]);
}

static ssize_t conflicts_show(struct update *update, char *buf)
{
	return sysfs_emit(buf, "\n");
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
	kfree(u);
}

static struct kobj_type update_ktype = {
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
	     sizeof(*change->old_code.relocs), reloc_cmp, NULL);
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

	list_del(&change->list);
	change->priv = NULL;
	if (cp->target)
		module_put(cp->target);
	values_free(cp);
	kvfree(cp->run);
	kvfree(cp->saved);
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
	/* The layout ksplice-obj writes (docs/FORMAT.md). */
	BUILD_BUG_ON(sizeof(struct ksplice_symbol) != 32);
	BUILD_BUG_ON(sizeof(struct ksplice_reloc) != 40);
	BUILD_BUG_ON(sizeof(struct ksplice_reloc_howto) != 32);
	BUILD_BUG_ON(sizeof(struct ksplice_section) != 48);
	BUILD_BUG_ON(sizeof(struct ksplice_patch) != 48);
	BUILD_BUG_ON(sizeof(struct ksplice_system_map) != 24);

	ksplice_kobj = ksplice_dir();
	return ksplice_kobj ? 0 : -ENOMEM;
}

static void __exit ksplice_exit(void)
{
	shadow_free_matching(0, true);
	kobject_put(ksplice_kobj);
}

module_init(ksplice_init);
module_exit(ksplice_exit);
MODULE_DESCRIPTION("Ksplice core: rebootless kernel updates");
MODULE_VERSION(KSPLICE_VERSION);
MODULE_LICENSE("GPL");
