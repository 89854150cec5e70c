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
#include "compat.h"

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

/* The running address of a System.map symbol the update carries: 0 or -ENOENT. */
int ksplice_map_address(struct ksplice_mod_change *change, const char *label,
			unsigned long *addr)
{
	const struct ksplice_system_map *m = map_find(&change->old_code, label);

	if (!m || m->nr_candidates != 1)
		return -ENOENT;
	*addr = map_shift(change->priv, m->candidates[0]);
	return 0;
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
const struct ksplice_reloc *
ksplice_first_reloc(const struct ksplice_code *code, unsigned long addr)
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

/*
 * Notes that the code compared implies value val for sym (a field at old
 * address at): it must agree with what is known, with what the code
 * compared so far implies and with System.map. 0, 1 (mismatch) or -errno.
 */
int ksplice_learn(struct cmp_ctx *c, const struct ksplice_symbol *sym,
		  unsigned long val, unsigned long at)
{
	struct value *known = value_find(c->change->priv, sym->label);
	unsigned long cands[16], off = at - c->old_base;
	size_t i;
	int n, k;

	if (!strcmp(sym->label, c->label)) {
		if (val == c->run_base)
			return 0;
		snprintf(c->why, c->whylen, "%s+%#lx refers to itself at %#lx, not %#lx",
			 c->label, off, val, c->run_base);
		return 1;
	}
	if (known && known->val != val) {
		snprintf(c->why, c->whylen, "%s+%#lx refers to %s at %#lx, known at %#lx",
			 c->label, off, sym->label, val, known->val);
		return 1;
	}
	for (i = 0; i < c->nr_new; i++) {
		if (strcmp(c->new[i].label, sym->label))
			continue;
		if (c->new[i].val == val)
			return 0;
		snprintf(c->why, c->whylen, "%s+%#lx refers to %s at %#lx and %#lx",
			 c->label, off, sym->label, val, c->new[i].val);
		return 1;
	}
	if (known)
		return 0;
	n = candidates(c->change, sym, cands, ARRAY_SIZE(cands));
	if (n > 0 && n < ARRAY_SIZE(cands)) {
		for (k = 0; k < n && cands[k] != val; k++)
			;
		if (k == n) {
			snprintf(c->why, c->whylen,
				 "%s+%#lx refers to %s at %#lx, not a System.map address of it",
				 c->label, off, sym->label, val);
			return 1;
		}
	}
	if (c->nr_new >= c->cap)
		return -E2BIG;
	c->new[c->nr_new].label = sym->label;
	c->new[c->nr_new].val = val;
	c->nr_new++;
	return 0;
}

/*
 * With call depth tracking (6.2+, retbleed=stuff), boot points direct
 * calls into the padding before their function, where it wrote a thunk
 * that accounts the call and runs on into the function. A running call
 * that lands less than a padding before an address the symbol has (known,
 * or in System.map) is a call to that address.
 */
static unsigned long call_thunk_dest(struct cmp_ctx *c, const struct ksplice_symbol *sym,
				     unsigned long to)
{
	struct value *known = value_find(c->change->priv, sym->label);
	unsigned long cands[16];
	int n, k, d;

	if (!ks_call_depth_active())
		return to;
	if (known)
		return known->val > to && known->val - to <= KS_CALL_PADDING ? known->val : to;
	n = candidates(c->change, sym, cands, ARRAY_SIZE(cands));
	for (k = 0; k < n; k++)
		if (cands[k] == to)
			return to;
	for (d = 1; d <= KS_CALL_PADDING; d++)
		for (k = 0; k < n; k++)
			if (cands[k] == to + d)
				return to + d;
	return to;
}

/*
 * One relocated field of the old code (at old) and its running bytes (at
 * run, address run_addr): the value it implies is learnt. Fields the module
 * loader filled (not the canary) must be the same bytes.
 */
static int cmp_field(struct cmp_ctx *c, const struct ksplice_reloc *r,
		     const u8 *old, const u8 *run, unsigned long run_addr)
{
	const struct ksplice_reloc_howto *h = r->howto;
	unsigned long val;

	if (h->type != KSPLICE_HOWTO_RELOC && h->type != KSPLICE_HOWTO_RELOC_PATCH)
		return 0;
	if (field_read(old, h) != field_read(&(u64){ KSPLICE_CANARY }, h)) {
		if (!memcmp(old, run, h->size))
			return 0;
		snprintf(c->why, c->whylen, "%s+%#lx: field of %s filled at load time differs",
			 c->label, r->blank_addr - c->old_base, r->symbol->label);
		return 1;
	}
	val = field_read(run, h) - r->insn_addend - r->target_addend;
	if (h->pcrel)
		val += run_addr;
	if (h->pcrel && h->size == 4 && r->blank_addr > c->old_base && old[-1] == 0xe8)
		val = call_thunk_dest(c, r->symbol, val);
	return ksplice_learn(c, r->symbol, val, r->blank_addr);
}

/*
 * Compares len bytes of old code at address old with the running bytes
 * run[] (at run_addr, avail bytes readable). Relocated fields imply symbol
 * values (cmp_field); boot-time rewrite sites follow their rule (sites.c),
 * and skip_alt leaves out the alternatives at old itself. *used: the
 * running bytes the old ones correspond to. 0 on a match, 1 on a mismatch
 * (described in c->why), or -errno.
 */
int ksplice_cmp_range(struct cmp_ctx *c, unsigned long old, size_t len,
		      const u8 *run, unsigned long run_addr, size_t avail,
		      size_t *used, bool skip_alt)
{
	const struct ksplice_code *code = &c->change->old_code;
	const struct ksplice_reloc *r = ksplice_first_reloc(code, old);
	const struct ksplice_site *s = ksplice_first_site(code, old);
	const u8 *o = (const u8 *)old;
	size_t i = 0, ri = 0, ol, rl;
	unsigned long tried = 0;
	int ret;

	while (i < len) {
		unsigned long at = old + i;

		while (s < code->sites_end && s->addr < at)
			s++;
		if (s < code->sites_end && s->addr == at && tried != at) {
			tried = at;
			ret = ksplice_sites_cmp(c, s, skip_alt && !i, run + ri, run_addr + ri,
						avail - ri, &ol, &rl);
			if (ret < 0 || ret == SITE_BAD)
				return ret < 0 ? ret : 1;
			if (ret == SITE_OK) {
				i += ol;
				ri += rl;
				continue;
			}
		}
		while (r < code->relocs_end && r->blank_addr < at)
			r++;
		if (r < code->relocs_end && r->blank_addr == at && r->howto &&
		    r->howto->size) {
			const struct ksplice_reloc_howto *h = r->howto;

			if (!r->symbol || !r->symbol->label || h->size > 8 || i + h->size > len)
				return -EINVAL;
			if (ri + h->size > avail)
				goto short_run;
			ret = cmp_field(c, r, o + i, run + ri, run_addr + ri);
			if (ret)
				return ret;
			i += h->size;
			ri += h->size;
			continue;
		}
		if (ri >= avail)
			goto short_run;
		if (o[i] != run[ri]) {
			int n = min3(len - i, avail - ri, (size_t)8);

			snprintf(c->why, c->whylen, "%s+%#lx: bytes differ: old %*ph, running %*ph",
				 c->label, at - c->old_base, n, o + i, n, run + ri);
			return 1;
		}
		i++;
		ri++;
	}
	*used = ri;
	return 0;
short_run:
	snprintf(c->why, c->whylen, "%s+%#lx: running code ends", c->label, old + i - c->old_base);
	return 1;
}

/*
 * Compares the old code of sect with the running bytes run[] at address
 * addr; what it implies goes to c->new. 0 on a match, 1 on a mismatch
 * (described in c->why), or a negative errno.
 */
static int cmp_section(struct cmp_ctx *c, const struct ksplice_section *sect,
		       unsigned long addr, const u8 *run)
{
	size_t used;

	c->nr_new = 0;
	memset(c->seen, 0, sizeof(c->seen));
	c->label = sect->symbol->label;
	c->old_base = sect->address;
	c->run_base = addr;
	return ksplice_cmp_range(c, sect->address, sect->size, run, addr, sect->size,
				 &used, false);
}

static size_t relocs_in(const struct ksplice_code *code,
			const struct ksplice_section *sect)
{
	const struct ksplice_reloc *r = ksplice_first_reloc(code, sect->address);
	size_t n = 0;

	while (r < code->relocs_end && r->blank_addr < sect->address + sect->size) {
		n++;
		r++;
	}
	return n;
}

enum { SECT_UNTRIED, SECT_MATCHED, SECT_FAILED, SECT_AMBIGUOUS, SECT_NO_CANDIDATE };

/* Tries every candidate address of one old section. */
/* Extra room for the values an alternative's replacement implies. */
#define EXTRA_VALUES 64

/* Tries every candidate address of one old section. */
static int match_section(struct ksplice_mod_change *change, size_t idx,
			 int *state)
{
	struct change_priv *cp = change->priv;
	struct update *u = cp->update;
	const struct ksplice_section *sect = change->old_code.sections + idx;
	unsigned long cands[16], found = 0;
	struct value *known = value_find(cp, sect->symbol->label);
	struct learnt *best = NULL;
	size_t nr_best = 0;
	char why[384] = "", sites[160] = "";
	struct cmp_ctx c = {
		.change = change,
		.cap = relocs_in(&change->old_code, sect) + EXTRA_VALUES,
		.why = why,
		.whylen = sizeof(why),
	};
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
	c.new = kvmalloc_array(c.cap, sizeof(*c.new), GFP_KERNEL);
	best = kvmalloc_array(c.cap, sizeof(*best), GFP_KERNEL);
	if (!run || !c.new || !best) {
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
		r = cmp_section(&c, sect, cands[i], run);
		if (r == -E2BIG) {
			snprintf(why, sizeof(why), "more values than expected");
			r = 1;
		}
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
		swap(c.new, best);
		nr_best = c.nr_new;
		ksplice_sites_summary(&c, sites, sizeof(sites));
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
		ksplice_debug(u, "  %s: matched at %#lx (%lu bytes%s%s)\n",
			      sect->symbol->label, found, sect->size,
			      sites[0] ? "; rewrite sites: " : "", sites);
	} else {
		*state = ok ? SECT_AMBIGUOUS : SECT_FAILED;
	}
out:
	kvfree(run);
	kvfree(c.new);
	kvfree(best);
	return ret;
}

/*
 * Code, constants, and the writable data the update rewrites in place: its
 * data patch is written only where the running bytes still equal the
 * build's (ksplice_prepare_patches requires a matched section).
 */
static bool must_match(const struct ksplice_section *sect)
{
	return sect->flags & (KSPLICE_SECTION_TEXT | KSPLICE_SECTION_RODATA |
			      KSPLICE_SECTION_STRING | KSPLICE_SECTION_REWRITTEN);
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
