// SPDX-License-Identifier: GPL-2.0
/*
 * The new code and the patches: the new code's ksplice relocations are
 * filled from the values run-pre matching found, the bytes each patch
 * replaces are saved, and writable aliases of the patched pages are mapped,
 * through which the stopped machine writes the jumps (stop.c).
 */
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include "core.h"
#include "compat.h"

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

/* ------------------------------------------------------------ new code sites */

/*
 * The alternatives at s->addr of the new code, once its relocations are
 * filled: the last replacement that applies on this CPU, moved there (a
 * leading call or jump keeps its target) and padded with nops.
 */
static int new_alternative(struct ksplice_mod_change *change,
			   const struct ksplice_site *s, const struct ksplice_site **next)
{
	const struct ksplice_site *t, *chosen = NULL;
	u8 buf[U8_MAX];
	long delta;

	for (t = s; t < change->new_code.sites_end && t->addr == s->addr &&
	     t->kind == KSPLICE_SITE_ALTERNATIVE; t++)
		if (ksplice_alt_applies(t))
			chosen = t;
	/* A paravirt call here comes first in its ALTERNATIVE_2: overridden. */
	while (chosen && t < change->new_code.sites_end && t->addr == s->addr &&
	       t->kind == KSPLICE_SITE_PARAVIRT)
		t++;
	*next = t;
	if (!chosen)
		return 0;
	if (chosen->aux_len > chosen->len || (chosen->aux_len && !chosen->aux))
		return -EINVAL;
	memcpy(buf, (const void *)chosen->aux, chosen->aux_len);
	memset(buf + chosen->aux_len, 0x90, chosen->len - chosen->aux_len);
	delta = (long)chosen->aux - (long)chosen->addr;
	if (chosen->aux_len >= 5 && (buf[0] == 0xe8 || buf[0] == 0xe9)) {
		s32 rel;

		memcpy(&rel, buf + 1, sizeof(rel));
		if ((long)rel + delta != (s32)(rel + delta))
			return -ERANGE;
		rel += delta;
		memcpy(buf + 1, &rel, sizeof(rel));
	} else if (chosen->aux_len && buf[0] == 0xeb) {
		return -ERANGE;
	}
	return ks_poke(chosen->addr, buf, chosen->len);
}

/*
 * A 5-byte call (0xe8) or jump (0xe9) at address at to address to, into
 * buf; -ERANGE when to is out of a 32-bit displacement's reach.
 */
static int branch_insn(u8 *buf, u8 opcode, unsigned long at, unsigned long to)
{
	long rel = (long)to - (long)(at + 5);
	s32 rel32 = rel;

	if (rel32 != rel)
		return -ERANGE;
	buf[0] = opcode;
	memcpy(buf + 1, &rel32, sizeof(rel32));
	return 0;
}

/*
 * A paravirt call of the new code (6.3+: an alternative with a direct
 * call), set as boot set the original's: a call to the function in its
 * pv_ops slot, padded with nops, or only nops when that function does
 * nothing.
 */
static int new_paravirt(const struct ksplice_site *s)
{
	unsigned long fn = ks_pv_op(s->feature);
	u8 buf[U8_MAX];

	if (!fn || s->len < 5)
		return -EINVAL;
	memset(buf, 0x90, s->len);
	if (!ksplice_pv_is_nop(fn) && branch_insn(buf, 0xe8, s->addr, fn))
		return -ERANGE;
	return ks_poke(s->addr, buf, s->len);
}

/*
 * A return of the new code, a jump to the default return thunk as built,
 * set as boot set the original's (apply_returns): a jump to the thunk boot
 * chose, read from the variable at aux, when the CPU wants return thunks;
 * else a return, padded with int3.
 */
static int new_return(const struct ksplice_site *s)
{
	unsigned long thunk = 0;
	u8 buf[5];

	if (s->len != sizeof(buf) || !s->aux)
		return -EINVAL;
	memset(buf, 0xcc, sizeof(buf));
	if (!boot_cpu_has(X86_FEATURE_RETHUNK)) {
		buf[0] = 0xc3;
		return ks_poke(s->addr, buf, s->len);
	}
	if (copy_from_kernel_nofault(&thunk, (const void *)s->aux, sizeof(thunk)) || !thunk)
		return -EFAULT;
	if (branch_insn(buf, 0xe9, s->addr, thunk))
		return -ERANGE;
	return ks_poke(s->addr, buf, s->len);
}

/* What the compiler leaves in a runtime constant's immediate (runtime-const.h). */
#define RUNTIME_PTR_PLACEHOLDER		0x0123456789abcdefULL
#define RUNTIME_SHIFT_PLACEHOLDER	12

/*
 * A runtime constant of the new code, set as boot set the original's: the
 * first len bytes of the variable at aux (its value; for a shift, the low
 * byte of its value) written into the immediate at addr. The immediate
 * holds the placeholder, or that value already (prepared before).
 */
static int new_runtime_const(struct ksplice_mod_change *change,
			     const struct ksplice_site *s)
{
	u64 val = 0, cur = 0;
	u64 placeholder = s->len == 1 ? RUNTIME_SHIFT_PLACEHOLDER : RUNTIME_PTR_PLACEHOLDER;

	if ((s->len != 1 && s->len != sizeof(u64)) || !s->aux)
		return -EINVAL;
	if (copy_from_kernel_nofault(&val, (const void *)s->aux, s->len))
		return -EFAULT;
	memcpy(&cur, (const void *)s->addr, s->len);
	if (cur != placeholder && cur != val)
		return -EINVAL;
	ksplice_debug(((struct change_priv *)change->priv)->update,
		      "%s: runtime constant at %#lx: %#llx from %#lx\n",
		      change->name, s->addr, val, s->aux);
	return ks_poke(s->addr, &val, s->len);
}

/*
 * Processes the sites of the new code the module loader left to the core
 * (docs/FORMAT.md, ksplice_site) as the kernel processed the original:
 * its alternatives, paravirt calls, returns and runtime constants here; its jump labels through the
 * labels module (labels.c), which keeps them in step with their keys.
 */
static int new_code_sites(struct ksplice_mod_change *change)
{
	const struct ksplice_site *s = change->new_code.sites, *next;
	int ret = 0;

	while (s && s < change->new_code.sites_end && !ret) {
		next = s + 1;
		if (s->kind == KSPLICE_SITE_ALTERNATIVE)
			ret = new_alternative(change, s, &next);
		else if (s->kind == KSPLICE_SITE_RUNTIME_CONST)
			ret = new_runtime_const(change, s);
		else if (s->kind == KSPLICE_SITE_PARAVIRT)
			ret = new_paravirt(s);
		else if (s->kind == KSPLICE_SITE_RETURN)
			ret = new_return(s);
		if (ret)
			ksplice_debug(((struct change_priv *)change->priv)->update,
				      "%s: new code site at %#lx: error %d\n",
				      change->name, s->addr, ret);
		s = next;
	}
	return ret;
}

/* ------------------------------------------------------------ new code */

/* The patch whose oldaddr field is at addr, or NULL. */
static struct ksplice_patch *patch_at(struct ksplice_mod_change *change, unsigned long addr)
{
	struct ksplice_patch *p;

	for (p = change->patches; p < change->patches_end; p++)
		if (addr == (unsigned long)&p->oldaddr)
			return p;
	return NULL;
}

/* ------------------------------------------------------------ bug-line patches */

/*
 * A bug-line patch rewrites the line of one running __bug_table entry. Its
 * label names the entry in the old code, whose BUG marker relocation with
 * that label sits at the entry's instruction. When the old section holding
 * it was matched, the running entry is the one of the running bug table at
 * that instruction's running address. Otherwise the entry is left alone: a
 * line number never blocks an update.
 */
#ifdef CONFIG_GENERIC_BUG
static unsigned long bug_insn(const struct bug_entry *b)
{
#ifdef CONFIG_GENERIC_BUG_RELATIVE_POINTERS
	return (unsigned long)&b->bug_addr_disp + b->bug_addr_disp;
#else
	return b->bug_addr;
#endif
}

/* The running bug table of the target: the module's, or vmlinux's (System.map). */
static int running_bug_table(struct ksplice_mod_change *change,
			     const struct bug_entry **start, size_t *nr)
{
	static const struct ksplice_symbol first = {
		.name = "__start___bug_table",
		.label = "__start___bug_table",
	};
	static const struct ksplice_symbol last = {
		.name = "__stop___bug_table",
		.label = "__stop___bug_table",
	};
	struct change_priv *cp = change->priv;
	unsigned long a, b;

	if (cp->target) {
		*start = cp->target->bug_table;
		*nr = cp->target->num_bugs;
		return 0;
	}
	if (ksplice_resolve_label(change, &first, &a) ||
	    ksplice_resolve_label(change, &last, &b) || b < a)
		return -ENOENT;
	*start = (const struct bug_entry *)a;
	*nr = (b - a) / sizeof(struct bug_entry);
	return 0;
}

/* The running address of the instruction of an old entry's label, or 0. */
static unsigned long bug_running_insn(struct ksplice_mod_change *change, const char *label)
{
	struct change_priv *cp = change->priv;
	size_t i, nr = change->old_code.sections_end - change->old_code.sections;
	const struct ksplice_reloc *r;

	for (r = change->old_code.relocs; r < change->old_code.relocs_end; r++) {
		if (!r->howto || r->howto->type != KSPLICE_HOWTO_BUG || !r->symbol ||
		    !r->symbol->label || strcmp(r->symbol->label, label))
			continue;
		for (i = 0; i < nr; i++) {
			const struct ksplice_section *s = change->old_code.sections + i;

			if (r->blank_addr >= s->address && r->blank_addr < s->address + s->size)
				return cp->run[i] ? cp->run[i] + (r->blank_addr - s->address) : 0;
		}
	}
	return 0;
}

/*
 * The running entry of an old entry's label, which the size bytes at off
 * inside it rewrite: 0, or -ENOENT and why.
 */
static int bugline_entry(struct ksplice_mod_change *change, const char *label,
			 long off, u32 size, unsigned long *val, const char **why)
{
	unsigned long insn = bug_running_insn(change, label);
	const struct bug_entry *b, *found = NULL;
	size_t i, nr;

	*why = "the bytes rewritten are not inside one entry";
	if (off < 0 || off + size > sizeof(struct bug_entry))
		return -ENOENT;
	*why = "its code was not matched with the running kernel";
	if (!insn)
		return -ENOENT;
	*why = "the running bug table was not found";
	if (running_bug_table(change, &b, &nr))
		return -ENOENT;
	*why = "no single running entry is at its instruction";
	for (i = 0; i < nr; i++) {
		if (bug_insn(b + i) != insn)
			continue;
		if (found)
			return -ENOENT;
		found = b + i;
	}
	if (!found)
		return -ENOENT;
	*val = (unsigned long)found;
	return 0;
}
#else
static int bugline_entry(struct ksplice_mod_change *change, const char *label,
			 long off, u32 size, unsigned long *val, const char **why)
{
	*why = "the running kernel has no bug table";
	return -ENOENT;
}
#endif

bool ksplice_patch_skipped(const struct ksplice_patch *p)
{
	return p->type == KSPLICE_PATCH_BUGLINE && !p->oldaddr;
}

/*
 * The running entry of bug-line patch p (its oldaddr relocation r) in val:
 * 0; or 1 when the patch is left out: its oldaddr is then 0
 * (ksplice_patch_skipped), and the debug trace and the kernel log say so.
 */
static int resolve_bugline(struct ksplice_mod_change *change, struct ksplice_patch *p,
			   const struct ksplice_reloc *r, unsigned long *val)
{
	struct update *u = ((struct change_priv *)change->priv)->update;
	const char *why;

	if (!bugline_entry(change, r->symbol->label, r->insn_addend + r->target_addend,
			   p->size, val, &why)) {
		ksplice_debug(u, "%s: bug-line patch of %s: running entry at %#lx\n",
			      change->name, r->symbol->label, *val);
		return 0;
	}
	p->oldaddr = 0;
	ksplice_debug(u, "%s: bug-line patch of %s skipped (%s): the entry keeps its old line\n",
		      change->name, r->symbol->label, why);
	pr_info("ksplice: %s: %s keeps its old line number (%s)\n",
		kobject_name(&u->kobj), r->symbol->label, why);
	return 1;
}

/*
 * Fills every ksplice relocation of the new code from the values found. The
 * place of a patch that cannot be found means the running code is not what
 * the update was built against: no_match; a bug-line patch is left out.
 */
int ksplice_resolve_new_code(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	const struct ksplice_reloc *r;

	for (r = change->new_code.relocs; r < change->new_code.relocs_end; r++) {
		const struct ksplice_reloc_howto *h = r->howto;
		struct ksplice_patch *p;
		unsigned long val;
		u64 field, mask;
		s64 sval;

		if (!h || !r->symbol || !r->symbol->label || h->size > 8)
			return ksplice_abort(cp->update, UNEXPECTED);
		if (!h->size ||
		    (h->type != KSPLICE_HOWTO_RELOC && h->type != KSPLICE_HOWTO_RELOC_PATCH))
			continue;
		p = patch_at(change, r->blank_addr);
		if (p && p->type == KSPLICE_PATCH_BUGLINE) {
			if (resolve_bugline(change, p, r, &val))
				continue;
		} else if (ksplice_resolve_label(change, r->symbol, &val)) {
			return ksplice_abort(cp->update, p ? NO_MATCH : FAILED_TO_FIND);
		}
		val += r->insn_addend + r->target_addend;
		if (h->pcrel)
			val -= r->blank_addr;
		sval = (s64)val;
		if (h->size < 8 &&
		    (h->signed_addend ? sval != sign_extend64(val, h->size * 8 - 1) :
					val > ksplice_field_mask(h))) {
			ksplice_debug(cp->update, "%s: %s out of range for a %u-byte field\n",
				      change->name, r->symbol->label, h->size);
			return ksplice_abort(cp->update, UNEXPECTED);
		}
		memcpy(&field, (void *)r->blank_addr, min_t(u32, h->size, 8));
		mask = ksplice_field_mask(h) & h->dst_mask;
		field = (field & ~mask) | (val & mask);
		if (ks_poke(r->blank_addr, &field, h->size))
			return ksplice_abort(cp->update, OUT_OF_MEMORY);
	}
	if (new_code_sites(change))
		return ksplice_abort(cp->update, UNEXPECTED);
	return 0;
}

static void ksplice_deleted(void)
{
	WARN(1, "ksplice: a function deleted by an update was called\n");
}

/* Where the jump of a text patch goes. */
unsigned long ksplice_jump_target(const struct ksplice_patch *p)
{
	return p->repladdr ?: (unsigned long)ksplice_deleted;
}

/* The bytes a patch has once applied: its jump (built in jmp), or its data. */
const void *ksplice_patch_bytes(const struct ksplice_patch *p, u8 *jmp)
{
	s32 rel;

	if (p->type != KSPLICE_PATCH_TEXT)
		return p->contents;
	rel = (s32)(ksplice_jump_target(p) - (p->oldaddr + KSPLICE_JMP_SIZE));
	jmp[0] = 0xe9;
	memcpy(jmp + 1, &rel, sizeof(rel));
	return jmp;
}

/*
 * Maps a writable alias of every patch of a change (cp->alias, one per
 * patch; NULL for a bug-line patch left out): 0 or -ENOMEM.
 */
int ksplice_map_aliases(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	size_t nr = change->patches_end - change->patches, i;

	cp->alias = kvcalloc(nr ?: 1, sizeof(*cp->alias), GFP_KERNEL);
	if (!cp->alias)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		const struct ksplice_patch *p = change->patches + i;

		if (ksplice_patch_skipped(p))
			continue;
		cp->alias[i] = ks_map_alias(p->oldaddr, p->size);
		if (!cp->alias[i])
			return -ENOMEM;
	}
	return 0;
}

/*
 * Checks every patch of a change against the matched code and prepares it:
 * the bytes it replaces are saved and a writable alias of them mapped. A
 * bug-line patch is checked against the running bug table instead
 * (resolve_bugline); one left out keeps its place in the saved bytes,
 * unused.
 */
int ksplice_prepare_patches(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	struct update *u = cp->update;
	size_t nr = change->patches_end - change->patches, i, total = 0;
	const struct ksplice_section *s;
	unsigned long start;

	kvfree(cp->redirect_ip);
	kvfree(cp->rewritten);
	cp->redirect_ip = kvcalloc(nr ?: 1, sizeof(*cp->redirect_ip), GFP_KERNEL);
	cp->rewritten = kvcalloc(nr ?: 1, sizeof(*cp->rewritten), GFP_KERNEL);
	if (!cp->redirect_ip || !cp->rewritten)
		return ksplice_abort(u, OUT_OF_MEMORY);
	for (i = 0; i < nr; i++) {
		struct ksplice_patch *p = change->patches + i;

		if (p->type == KSPLICE_PATCH_EXPORT) {
			ksplice_debug(u, "%s: export changes are not supported\n", change->name);
			return ksplice_abort(u, UNEXPECTED);
		}
		if (p->type == KSPLICE_PATCH_TEXT)
			p->size = KSPLICE_JMP_SIZE;
		if (!p->size || p->size > PAGE_SIZE ||
		    (p->type != KSPLICE_PATCH_TEXT && !p->contents))
			return ksplice_abort(u, UNEXPECTED);
		total += p->size;
		if (p->type == KSPLICE_PATCH_BUGLINE)
			continue;
		s = ksplice_matched_section(change, p->oldaddr, p->size, &start);
		if (!s) {
			ksplice_debug(u, "%s: patched code at %#lx was not matched with the running kernel\n",
				      change->name, p->oldaddr);
			return ksplice_abort(u, NO_MATCH);
		}
		cp->rewritten[i] = s->flags & KSPLICE_SECTION_REWRITTEN;
		if (p->type == KSPLICE_PATCH_TEXT) {
			long rel = (long)(ksplice_jump_target(p) - (p->oldaddr + KSPLICE_JMP_SIZE));

			if (rel != (s32)rel)
				return ksplice_abort(u, UNEXPECTED);
			if (p->oldaddr + KSPLICE_JMP_SIZE > start + s->size) {
				ksplice_debug(u, "%s: function at %#lx too short for a jump\n",
					      change->name, p->oldaddr);
				return ksplice_abort(u, UNEXPECTED);
			}
			if (p->oldaddr == start)
				cp->redirect_ip[i] = ksplice_fentry_ip(change, s, start);
			if (cp->redirect_ip[i])
				ksplice_debug(u, "%s: %#lx redirected through ftrace at %#lx\n",
					      change->name, p->oldaddr, cp->redirect_ip[i]);
		}
	}
	cp->saved = kvzalloc(total ?: 1, GFP_KERNEL);
	if (!cp->saved)
		return ksplice_abort(u, OUT_OF_MEMORY);
	total = 0;
	for (i = 0; i < nr; i++) {
		struct ksplice_patch *p = change->patches + i;

		if (!ksplice_patch_skipped(p) &&
		    copy_from_kernel_nofault(cp->saved + total, (void *)p->oldaddr, p->size))
			return ksplice_abort(u, UNEXPECTED);
		total += p->size;
	}
	if (ksplice_map_aliases(change))
		return ksplice_abort(u, OUT_OF_MEMORY);
	return 0;
}

/*
 * Whether patch i of a change is written in memory: not a bug-line patch
 * that was skipped, not a function redirected through ftrace.
 */
bool ksplice_patch_written(struct ksplice_mod_change *change, size_t i)
{
	struct change_priv *cp = change->priv;

	return !ksplice_patch_skipped(change->patches + i) &&
	       !(cp->redirect_ip && cp->redirect_ip[i]);
}

/* The saved bytes and redirections of a change that is not applied. */
void ksplice_free_saved(struct change_priv *cp)
{
	kvfree(cp->saved);
	cp->saved = NULL;
	kvfree(cp->redirect_ip);
	cp->redirect_ip = NULL;
	kvfree(cp->rewritten);
	cp->rewritten = NULL;
}

void ksplice_unprepare_patches(struct ksplice_mod_change *change)
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
