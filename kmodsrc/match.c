// SPDX-License-Identifier: GPL-2.0
/*
 * Run-pre matching: every old code section of a change is looked for in the
 * running kernel (System.map candidates shifted by the KASLR offset, or the
 * target module's symbols) and compared byte for byte; relocated fields are
 * compared through the symbol values they imply, which are learnt and then
 * resolve the new code's relocations.
 */
#include <linux/kallsyms.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/stringhash.h>
#include <linux/uaccess.h>
#include "core.h"

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

void ksplice_values_free(struct change_priv *cp)
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
int ksplice_resolve_label(struct ksplice_mod_change *change,
			  const struct ksplice_symbol *sym, unsigned long *val)
{
	struct change_priv *cp = change->priv;
	struct value *v = value_find(cp, sym->label);
	unsigned long cands[2];
	void *core;
	int n;

	if (v) {
		*val = v->val;
		return 0;
	}
	core = sym->name ? ksplice_core_symbol(sym->name) : NULL;
	if (core) {
		*val = (unsigned long)core;
		return 0;
	}
	n = candidates(change, sym, cands, ARRAY_SIZE(cands));
	if (n == 1) {
		*val = cands[0];
		return 0;
	}
	ksplice_debug(cp->update, "%s: cannot resolve %s (%s)\n", change->name,
		      sym->label,
		      n > 1 ? "several candidates, none confirmed by matching" :
			      "not matched and not in System.map");
	return -ENOENT;
}

/* ------------------------------------------------------------ relocations */

u64 ksplice_field_mask(const struct ksplice_reloc_howto *h)
{
	return h->size >= 8 ? ~0ULL : (1ULL << (h->size * 8)) - 1;
}

static u64 field_read(const void *p, const struct ksplice_reloc_howto *h)
{
	u64 v = 0;

	memcpy(&v, p, min_t(u32, h->size, sizeof(v)));
	v &= ksplice_field_mask(h) & h->dst_mask;
	if (h->signed_addend && h->size < 8)
		v = sign_extend64(v, h->size * 8 - 1);
	return v;
}

int ksplice_reloc_cmp(const void *a, const void *b)
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
			ksplice_debug(u, "  %s: candidate %#lx unreadable\n",
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
			ksplice_debug(u, "  %s: candidate %#lx: %s\n",
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
		ksplice_debug(u, "  %s: matched at %#lx (%lu bytes)\n",
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
int ksplice_run_pre_match(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	struct update *u = cp->update;
	size_t nr = change->old_code.sections_end - change->old_code.sections;
	size_t i, matched = 0;
	bool progress = true;
	int *state, ret = 0;

	state = kvcalloc(nr ?: 1, sizeof(*state), GFP_KERNEL);
	if (!state)
		return ksplice_abort(u, OUT_OF_MEMORY);
	ksplice_debug(u, "%s: run-pre matching of %zu sections of %s\n", change->name,
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
				ret = ksplice_abort(u, OUT_OF_MEMORY);
				goto out;
			}
			if (ret) {
				ksplice_debug(u, "  %s: malformed metadata\n", s->symbol->label);
				ret = ksplice_abort(u, UNEXPECTED);
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
			ksplice_debug(u, "  %s: not matched (%s)\n", s->symbol->label,
				      state[i] == SECT_FAILED ? "no candidate matches" :
				      state[i] == SECT_AMBIGUOUS ? "several candidates match" :
				      "no candidate address");
	}
	ksplice_debug(u, "%s: %zu sections matched\n", change->name, matched);
out:
	kvfree(state);
	return ret;
}

/*
 * The matched old section of the running code holding [addr, addr + len),
 * or NULL; its running address in start.
 */
const struct ksplice_section *
ksplice_matched_section(struct ksplice_mod_change *change, unsigned long addr,
			size_t len, unsigned long *start)
{
	struct change_priv *cp = change->priv;
	size_t i, nr = change->old_code.sections_end - change->old_code.sections;

	for (i = 0; i < nr; i++) {
		const struct ksplice_section *s = change->old_code.sections + i;

		if (cp->run[i] && addr >= cp->run[i] &&
		    addr + len <= cp->run[i] + s->size) {
			*start = cp->run[i];
			return s;
		}
	}
	return NULL;
}
