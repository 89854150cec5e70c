/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the files of the core module (ksplice-<kid>.ko) share:
 *   ksplice.c	sysfs, registration, apply and reverse
 *   match.c	symbol values, relocations, run-pre matching
 *   patch.c	writable aliases, new code relocations, jumps
 *   stop.c	hooks, stopping the machine, the stack check
 *   shadow.c	shadow data for the new code
 * Every update carries its own core: the non-static names below are
 * private to one core module (never exported) and prefixed ksplice_.
 */
#ifndef KSPLICE_CORE_H
#define KSPLICE_CORE_H

#include <linux/hashtable.h>
#include <linux/kobject.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include "ksplice.h"

struct ftrace_ops;
struct redirect;

#define KSPLICE_JMP_SIZE	5
#define KSPLICE_TRIES		5
#define KSPLICE_DEBUG_MAX	(256 * 1024)
/* The conflicts report: at most a page, with room for its last line. */
#define KSPLICE_CONFLICTS_MAX	PAGE_SIZE
#define KSPLICE_CONFLICTS_CUT	"(truncated)\n"
/* Functions named per busy task in the report. */
#define KSPLICE_CONFLICT_SYMS	8

enum ksplice_stage {
	STAGE_PREPARING,
	STAGE_APPLIED,
	STAGE_REVERSED,
};

/* Why an apply or reverse failed: the abort_cause attribute, by name. */
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
	FTRACE_FAILED,
	NO_LABELS,
};

/*
 * The names the tools know the causes by (src/update explains each); used
 * by ksplice.c only, kept next to the causes.
 */
__maybe_unused static const char *const cause_names[] = {
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
	[FTRACE_FAILED] = "ftrace_failed",
	[NO_LABELS] = "no_labels",
};

struct update {
	struct kobject kobj;
	enum ksplice_stage stage;
	enum abort_cause cause;
	bool partial;
	bool prepared;			/* matched, new code resolved ("prepare") */
	struct list_head changes;
	char *debug;
	size_t debug_len;
	/* address ranges no task may be inside while the machine is stopped */
	unsigned long *busy_ranges;
	/* the function of each range, for the conflicts report */
	const char **busy_names;
	size_t nr_busy_ranges;
	/* "COMM PID FUNCTION..." per busy task of the last code_busy */
	char *conflicts;
	size_t conflicts_len;
	bool conflicts_cut;
	/* when the stopped machine's work began and ended (stop.c) */
	u64 stopped_start, stopped_end;
	/* redirect.c: the ftrace_ops of the redirected functions */
	struct ftrace_ops *fops;
	struct redirect *redirects;
	size_t nr_redirects;
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
	unsigned long *redirect_ip;	/* per patch: ftrace site redirected, or 0 */
	bool *rewritten;		/* per patch: writable data rewritten in place */
	void **alias;			/* writable alias of each patch */
	unsigned long *alias_base;
};

/* ksplice.c */
__printf(2, 3) void ksplice_debug(struct update *u, const char *fmt, ...);
int ksplice_abort(struct update *u, enum abort_cause cause);
struct update *ksplice_the_update(void);
void ksplice_lock(void);
void ksplice_unlock(void);

/* The number of kinds of rewrite sites (enum ksplice_site_kind). */
#define KSPLICE_SITE_KINDS (KSPLICE_SITE_RUNTIME_CONST + 1)

/* A symbol value the compared code implies. */
struct learnt {
	const char *label;
	unsigned long val;
};

/* One comparison of old code with running code (match.c, sites.c). */
struct cmp_ctx {
	struct ksplice_mod_change *change;
	struct learnt *new;		/* values the code compared implies */
	size_t nr_new, cap;
	char *why;			/* why it does not match */
	size_t whylen;
	const char *label;		/* the section compared */
	unsigned long old_base;		/* its start in the old code */
	unsigned long run_base;		/* its start in the running kernel */
	unsigned int seen[KSPLICE_SITE_KINDS];	/* rewrite sites accepted, by kind */
};

/* What a rewrite rule says of a site (sites.c). */
enum { SITE_SAME, SITE_OK, SITE_BAD };

/* match.c */
int ksplice_reloc_cmp(const void *a, const void *b);
const struct ksplice_reloc *
ksplice_first_reloc(const struct ksplice_code *code, unsigned long addr);
int ksplice_map_address(struct ksplice_mod_change *change, const char *label,
			unsigned long *addr);
int ksplice_learn(struct cmp_ctx *c, const struct ksplice_symbol *sym,
		  unsigned long val, unsigned long at);
int ksplice_cmp_range(struct cmp_ctx *c, unsigned long old, size_t len,
		      const u8 *run, unsigned long run_addr, size_t avail,
		      size_t *used, bool skip_alt);
u64 ksplice_field_mask(const struct ksplice_reloc_howto *h);
void ksplice_values_free(struct change_priv *cp);
int ksplice_resolve_label(struct ksplice_mod_change *change,
			  const struct ksplice_symbol *sym, unsigned long *val);
int ksplice_run_pre_match(struct ksplice_mod_change *change);
const struct ksplice_section *
ksplice_matched_section(struct ksplice_mod_change *change, unsigned long addr,
			size_t len, unsigned long *start);

/* sites.c */
int ksplice_site_order(const void *a, const void *b);
const struct ksplice_site *
ksplice_first_site(const struct ksplice_code *code, unsigned long addr);
int ksplice_sites_cmp(struct cmp_ctx *c, const struct ksplice_site *s,
		      bool skip_alt, const u8 *run, unsigned long run_addr,
		      size_t avail, size_t *old_len, size_t *run_len);
bool ksplice_is_nops(const u8 *p, size_t len);
bool ksplice_alt_applies(const struct ksplice_site *s);
bool ksplice_pv_is_nop(unsigned long fn);
void ksplice_sites_summary(const struct cmp_ctx *c, char *buf, size_t len);

/* redirect.c (stubs in compat.h without dynamic ftrace) */
#ifdef CONFIG_DYNAMIC_FTRACE_WITH_REGS
unsigned long ksplice_fentry_ip(struct ksplice_mod_change *change,
				const struct ksplice_section *s, unsigned long start);
int ksplice_redirect_start(struct update *u);
void ksplice_redirect_stop(struct update *u);
#endif

/* patch.c */
unsigned long ksplice_jump_target(const struct ksplice_patch *p);
bool ksplice_patch_written(struct ksplice_mod_change *change, size_t i);
void ksplice_free_saved(struct change_priv *cp);
int ksplice_resolve_new_code(struct ksplice_mod_change *change);
bool ksplice_patch_skipped(const struct ksplice_patch *p);
const void *ksplice_patch_bytes(const struct ksplice_patch *p, u8 *jmp);
int ksplice_map_aliases(struct ksplice_mod_change *change);
int ksplice_prepare_patches(struct ksplice_mod_change *change);
void ksplice_unprepare_patches(struct ksplice_mod_change *change);

/* stop.c */
int ksplice_run_hooks(struct update *u, enum ksplice_hook_kind kind);
int ksplice_switch_code(struct update *u, bool reverse);

/* labels.c */
int ksplice_labels_missing(struct update *u);
bool ksplice_labels_loaded(struct update *u);
int ksplice_labels_init(void);
void ksplice_labels_exit(void);

/* shadow.c */
void *ksplice_core_symbol(const char *name);
size_t ksplice_shadow_free_matching(unsigned long id, bool all);

#endif /* KSPLICE_CORE_H */
