/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Ksplice update metadata, as ksplice-obj writes it (docs/FORMAT.md), and
 * the interface between the update modules and the core module.
 *
 * The records, their sizes and every constant below are also written by
 * src/engine/meta.rs; tests/kmodsrc_abi.rs reads this header and fails when
 * the two sides differ. Keep the simple forms it reads: "#define NAME VALUE",
 * enums of "NAME," or "NAME = VALUE," and one member per line in the records.
 */
#ifndef KSPLICE_H
#define KSPLICE_H

#include <linux/build_bug.h>
#include <linux/types.h>
#include <linux/list.h>

struct module;

struct ksplice_symbol {
	const char *name;
	const char *label;
	struct list_head *candidate_vals;
	unsigned long value;
};

struct ksplice_reloc_howto {
	u32 type;
	u32 pcrel;
	u32 size;
	u32 pad;
	u64 dst_mask;
	u32 rightshift;
	u32 signed_addend;
};

struct ksplice_reloc {
	unsigned long blank_addr;
	struct ksplice_symbol *symbol;
	const struct ksplice_reloc_howto *howto;
	long insn_addend;
	long target_addend;
};

struct ksplice_section {
	struct ksplice_symbol *symbol;
	unsigned long address;
	unsigned long size;
	unsigned int flags;
	const unsigned char **match_map;
	int unmatched;
};

struct ksplice_patch {
	unsigned long oldaddr;
	unsigned long repladdr;
	u32 type;
	u32 size;
	void *contents;
	void *vaddr;
	void *saved;
};

struct ksplice_system_map {
	const char *label;
	unsigned long nr_candidates;
	const unsigned long *candidates;
};

/* A place of the old code the running kernel may have rewritten at boot. */
struct ksplice_site {
	unsigned long addr;
	unsigned long aux;
	u16 kind;
	u8 len;
	u8 aux_len;
	u16 feature;
	u16 seq;
};

/* The size of each record in its section. */
#define KSPLICE_SYMBOL_SIZE	32
#define KSPLICE_RELOC_SIZE	40
#define KSPLICE_HOWTO_SIZE	32
#define KSPLICE_SECTION_SIZE	48
#define KSPLICE_PATCH_SIZE	48
#define KSPLICE_SYSTEM_MAP_SIZE	24
#define KSPLICE_SITE_SIZE	24

static_assert(sizeof(struct ksplice_symbol) == KSPLICE_SYMBOL_SIZE);
static_assert(sizeof(struct ksplice_reloc) == KSPLICE_RELOC_SIZE);
static_assert(sizeof(struct ksplice_reloc_howto) == KSPLICE_HOWTO_SIZE);
static_assert(sizeof(struct ksplice_section) == KSPLICE_SECTION_SIZE);
static_assert(sizeof(struct ksplice_patch) == KSPLICE_PATCH_SIZE);
static_assert(sizeof(struct ksplice_system_map) == KSPLICE_SYSTEM_MAP_SIZE);
static_assert(sizeof(struct ksplice_site) == KSPLICE_SITE_SIZE);

/* ksplice_reloc_howto.type */
enum ksplice_reloc_howto_type {
	KSPLICE_HOWTO_RELOC = 0,	/* an ordinary relocation */
	KSPLICE_HOWTO_RELOC_PATCH = 1,	/* the oldaddr of a patch */
	KSPLICE_HOWTO_DATE = 2,		/* a __DATE__ string */
	KSPLICE_HOWTO_TIME = 3,		/* a __TIME__ string */
	KSPLICE_HOWTO_BUG = 4,		/* a __bug_table entry */
	KSPLICE_HOWTO_EXTABLE = 5,	/* an __ex_table entry */
	KSPLICE_HOWTO_SYMBOL = 6,	/* a marker: no field */
};

/* ksplice_section.flags */
#define KSPLICE_SECTION_TEXT	0x1
#define KSPLICE_SECTION_RODATA	0x2
#define KSPLICE_SECTION_DATA	0x4
#define KSPLICE_SECTION_STRING	0x8
#define KSPLICE_SECTION_REWRITTEN	0x10	/* writable data rewritten in place */

/* ksplice_patch.type */
enum ksplice_patch_type {
	KSPLICE_PATCH_TEXT = 0,		/* a jump at oldaddr */
	KSPLICE_PATCH_DATA = 1,		/* contents written at oldaddr */
	KSPLICE_PATCH_EXPORT = 2,	/* an export renamed (unsupported) */
	KSPLICE_PATCH_BUGLINE = 3,	/* a __bug_table line: skipped if unmatched */
};

/*
 * ksplice_site.kind: what the running kernel may have done at addr (len
 * bytes). aux: an alternative's replacement (aux_len bytes), a jump
 * label's target, or in new code a runtime constant's variable; feature:
 * an alternative's CPU feature (bit 15: applied when absent) or a paravirt
 * call's slot in pv_ops; seq: the order of the records of one object (of
 * alternatives at one place, the last applies).
 */
enum ksplice_site_kind {
	KSPLICE_SITE_ALTERNATIVE = 0,	/* original or replacement */
	KSPLICE_SITE_PARAVIRT = 1,	/* indirect, direct call or nops */
	KSPLICE_SITE_RETPOLINE = 2,	/* thunk or inline indirect branch */
	KSPLICE_SITE_RETURN = 3,	/* return thunk jump or ret */
	KSPLICE_SITE_JUMP_LABEL = 4,	/* nop or jump to aux */
	KSPLICE_SITE_STATIC_CALL = 5,	/* trampoline or its function */
	KSPLICE_SITE_FENTRY = 6,	/* ftrace's nop or call */
	KSPLICE_SITE_ENDBR = 7,		/* endbr64 or its sealed nop */
	KSPLICE_SITE_SMP_LOCK = 8,	/* lock or ds prefix */
	KSPLICE_SITE_RELAXABLE = 9,	/* jump, maybe with an 8-bit displacement */
	KSPLICE_SITE_RUNTIME_CONST = 10, /* immediate boot set from a variable */
};

/* What every field a ksplice_reloc fills holds until it is filled. */
#define KSPLICE_CANARY		0x7777777777777777UL

/* Patch-author hooks, in the order they run (.ksplice_call_<name>). */
enum ksplice_hook_kind {
	KSPLICE_HOOK_PRE_APPLY,		/* int (*)(void), before stopping */
	KSPLICE_HOOK_CHECK_APPLY,	/* int (*)(void), machine stopped */
	KSPLICE_HOOK_APPLY,		/* void (*)(void), machine stopped */
	KSPLICE_HOOK_POST_APPLY,	/* void (*)(void), after */
	KSPLICE_HOOK_FAIL_APPLY,	/* void (*)(void), after a failure */
	KSPLICE_HOOK_PRE_REVERSE,
	KSPLICE_HOOK_CHECK_REVERSE,
	KSPLICE_HOOK_REVERSE,
	KSPLICE_HOOK_POST_REVERSE,
	KSPLICE_HOOK_FAIL_REVERSE,
	KSPLICE_NR_HOOKS,
};

struct ksplice_hooks {
	void **start;
	void **end;
};

/* The metadata of one module's worth of code (old or new). */
struct ksplice_code {
	struct ksplice_reloc *relocs, *relocs_end;
	struct ksplice_section *sections, *sections_end;
	struct ksplice_symbol *symbols, *symbols_end;
	struct ksplice_system_map *system_map, *system_map_end;
	struct ksplice_site *sites, *sites_end;
};

/* One target (vmlinux or a module) changed by an update. */
struct ksplice_mod_change {
	const char *name;
	const char *kid;
	const char *target_name;
	unsigned long map_printk;
	struct module *new_code_mod;
	struct ksplice_code old_code, new_code;
	struct ksplice_patch *patches, *patches_end;
	struct ksplice_hooks hooks[KSPLICE_NR_HOOKS];
	/* room for the jump table of the labels module (labels.c) */
	void *label_space, *label_space_end;
	/* private to the core */
	struct list_head list;
	void *priv;
};

#define KS_PASTE_(x, y) x##y
#define KS_PASTE(x, y) KS_PASTE_(x, y)
/* The core's entry points carry the update id: several cores can coexist. */
#define KSPLICE_KID_UNIQ(s) KS_PASTE(s##_, KSPLICE_KID)
#define init_ksplice_mod_change KSPLICE_KID_UNIQ(init_ksplice_mod_change)
#define cleanup_ksplice_mod_change KSPLICE_KID_UNIQ(cleanup_ksplice_mod_change)
#define ksplice_new_code_gone KSPLICE_KID_UNIQ(ksplice_new_code_gone)

/* Called by the old code module's init and exit. */
int init_ksplice_mod_change(struct ksplice_mod_change *change);
void cleanup_ksplice_mod_change(struct ksplice_mod_change *change);
/* Called by the new code module's exit. */
void ksplice_new_code_gone(struct ksplice_mod_change *change);

#ifdef KSPLICE_MID
/* Bounds of the metadata sections of an update module (ksplice.lds). */
extern struct ksplice_reloc ksplice_relocs[], ksplice_relocs_end[];
extern struct ksplice_section ksplice_sections[], ksplice_sections_end[];
extern struct ksplice_symbol ksplice_symbols[], ksplice_symbols_end[];
extern struct ksplice_patch ksplice_patches[], ksplice_patches_end[];
extern struct ksplice_system_map ksplice_system_map[], ksplice_system_map_end[];
extern struct ksplice_site ksplice_sites[], ksplice_sites_end[];
extern char ksplice_label_space[], ksplice_label_space_end[];
#define KSPLICE_HOOK_SECTION(name) \
	extern void *ksplice_call_##name[], *ksplice_call_##name##_end[]
KSPLICE_HOOK_SECTION(pre_apply);
KSPLICE_HOOK_SECTION(check_apply);
KSPLICE_HOOK_SECTION(apply);
KSPLICE_HOOK_SECTION(post_apply);
KSPLICE_HOOK_SECTION(fail_apply);
KSPLICE_HOOK_SECTION(pre_reverse);
KSPLICE_HOOK_SECTION(check_reverse);
KSPLICE_HOOK_SECTION(reverse);
KSPLICE_HOOK_SECTION(post_reverse);
KSPLICE_HOOK_SECTION(fail_reverse);

/* The change of this target, defined by its new code module. */
#define change KS_PASTE(ksplice_change_, KSPLICE_MID)
extern struct ksplice_mod_change change;
#endif

#endif /* KSPLICE_H */
