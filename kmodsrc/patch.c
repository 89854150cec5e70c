// SPDX-License-Identifier: GPL-2.0
/*
 * The new code and the patches: the new code's ksplice relocations are
 * filled from the values run-pre matching found, the bytes each patch
 * replaces are saved, and writable aliases of the patched pages are mapped,
 * through which the stopped machine writes the jumps (stop.c).
 */
#include <linux/bug.h>
#include <linux/jump_label.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include "core.h"

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

/* A jump label of the new code, set as its key is now (jump or nop). */
static int new_jump_label(const struct ksplice_site *s)
{
	struct static_key *key = (struct static_key *)s->aux;
	unsigned long to = s->addr + (s16)s->feature;
	static const u8 nop2[] = { 0x66, 0x90 }, nop5[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	u8 buf[5];
	long rel;

	if (!key || (s->len != 2 && s->len != 5))
		return -EINVAL;
	if (static_key_enabled(key) == !!(s->aux_len & 1))
		return ks_poke(s->addr, s->len == 5 ? nop5 : nop2, s->len);
	rel = (long)to - (long)(s->addr + s->len);
	if (s->len == 2 && rel != (s8)rel)
		return -ERANGE;
	buf[0] = s->len == 5 ? 0xe9 : 0xeb;
	if (s->len == 5)
		memcpy(buf + 1, &(s32){ rel }, sizeof(s32));
	else
		buf[1] = (s8)rel;
	return ks_poke(s->addr, buf, s->len);
}

/*
 * Processes the sites of the new code the module loader left to the core
 * (docs/FORMAT.md, ksplice_site): as the kernel processed the original.
 */
static int new_code_sites(struct ksplice_mod_change *change)
{
	const struct ksplice_site *s = change->new_code.sites, *next;
	int ret = 0;

	while (s && s < change->new_code.sites_end && !ret) {
		next = s + 1;
		if (s->kind == KSPLICE_SITE_ALTERNATIVE)
			ret = new_alternative(change, s, &next);
		else if (s->kind == KSPLICE_SITE_JUMP_LABEL)
			ret = new_jump_label(s);
		if (ret)
			ksplice_debug(((struct change_priv *)change->priv)->update,
				      "%s: new code site at %#lx: error %d\n", change->name, s->addr, ret);
		s = next;
	}
	return ret;
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
int ksplice_resolve_new_code(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	const struct ksplice_reloc *r;

	for (r = change->new_code.relocs; r < change->new_code.relocs_end; r++) {
		const struct ksplice_reloc_howto *h = r->howto;
		unsigned long val;
		u64 field, mask;
		s64 sval;

		if (!h || !r->symbol || !r->symbol->label || h->size > 8)
			return ksplice_abort(cp->update, UNEXPECTED);
		if (!h->size ||
		    (h->type != KSPLICE_HOWTO_RELOC && h->type != KSPLICE_HOWTO_RELOC_PATCH))
			continue;
		if (ksplice_resolve_label(change, r->symbol, &val))
			return ksplice_abort(cp->update, is_patch_target(change, r->blank_addr) ?
					     NO_MATCH : FAILED_TO_FIND);
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
static unsigned long jump_target(const struct ksplice_patch *p)
{
	return p->repladdr ?: (unsigned long)ksplice_deleted;
}

/* The bytes a patch has once applied: its jump (built in jmp), or its data. */
const void *ksplice_patch_bytes(const struct ksplice_patch *p, u8 *jmp)
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
int ksplice_map_aliases(struct ksplice_mod_change *change)
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
int ksplice_prepare_patches(struct ksplice_mod_change *change)
{
	struct change_priv *cp = change->priv;
	struct update *u = cp->update;
	size_t nr = change->patches_end - change->patches, i, total = 0;
	const struct ksplice_section *s;
	unsigned long start;

	for (i = 0; i < nr; i++) {
		struct ksplice_patch *p = change->patches + i;

		if (p->type == KSPLICE_PATCH_EXPORT) {
			ksplice_debug(u, "%s: export changes are not supported\n", change->name);
			return ksplice_abort(u, UNEXPECTED);
		}
		if (p->type == KSPLICE_PATCH_TEXT)
			p->size = KSPLICE_JMP_SIZE;
		if (!p->size || p->size > PAGE_SIZE ||
		    (p->type == KSPLICE_PATCH_DATA && !p->contents))
			return ksplice_abort(u, UNEXPECTED);
		s = ksplice_matched_section(change, p->oldaddr, p->size, &start);
		if (!s) {
			ksplice_debug(u, "%s: patched code at %#lx was not matched with the running kernel\n",
				      change->name, p->oldaddr);
			return ksplice_abort(u, NO_MATCH);
		}
		if (p->type == KSPLICE_PATCH_TEXT) {
			long rel = (long)(jump_target(p) - (p->oldaddr + KSPLICE_JMP_SIZE));

			if (rel != (s32)rel)
				return ksplice_abort(u, UNEXPECTED);
			if (p->oldaddr + KSPLICE_JMP_SIZE > start + s->size) {
				ksplice_debug(u, "%s: function at %#lx too short for a jump\n",
					      change->name, p->oldaddr);
				return ksplice_abort(u, UNEXPECTED);
			}
		}
		total += p->size;
	}
	cp->saved = kvzalloc(total ?: 1, GFP_KERNEL);
	if (!cp->saved)
		return ksplice_abort(u, OUT_OF_MEMORY);
	total = 0;
	for (i = 0; i < nr; i++) {
		struct ksplice_patch *p = change->patches + i;

		if (copy_from_kernel_nofault(cp->saved + total, (void *)p->oldaddr, p->size))
			return ksplice_abort(u, UNEXPECTED);
		total += p->size;
	}
	if (ksplice_map_aliases(change))
		return ksplice_abort(u, OUT_OF_MEMORY);
	return 0;
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
