/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the kernels and configurations the core supports
 * (Linux 6.1 and later long-term kernels, with and without paravirt): the
 * one place for version and configuration conditionals.
 */
#ifndef KSPLICE_COMPAT_H
#define KSPLICE_COMPAT_H

/*
 * The pv_ops function whose calls boot turns into nops: _paravirt_nop
 * until 6.7, nop_func since (both names are tried, no version test).
 */
#define KS_PV_NOP_NAMES { "_paravirt_nop", "nop_func" }

#include <asm/cpufeature.h>

/*
 * Call depth tracking (6.2+, X86_FEATURE_CALL_DEPTH): boot redirects
 * direct calls to an accounting thunk in the padding before the function.
 */
#ifdef X86_FEATURE_CALL_DEPTH
#define ks_call_depth_active() boot_cpu_has(X86_FEATURE_CALL_DEPTH)
#else
#define ks_call_depth_active() false
#endif
#ifdef CONFIG_FUNCTION_PADDING_BYTES
#define KS_CALL_PADDING CONFIG_FUNCTION_PADDING_BYTES
#else
#define KS_CALL_PADDING 16
#endif

#ifdef CONFIG_PARAVIRT
#include <asm/paravirt_types.h>

/* The function a paravirt call through pv_ops slot calls now (0: none). */
static inline unsigned long ks_pv_op(unsigned int slot)
{
	if (slot >= sizeof(pv_ops) / sizeof(void *))
		return 0;
	return (unsigned long)((void **)&pv_ops)[slot];
}
#else
static inline unsigned long ks_pv_op(unsigned int slot)
{
	return 0;
}
#endif

#ifdef CONFIG_DYNAMIC_FTRACE_WITH_REGS
#include <linux/ftrace.h>

/*
 * Moving the instruction pointer from an ftrace handler (redirect.c): the
 * helper's name since 6.5 (a macro on x86), and before.
 */
#ifdef ftrace_regs_set_instruction_pointer
#define ks_set_ip(fregs, ip) ftrace_regs_set_instruction_pointer(fregs, ip)
#else
#define ks_set_ip(fregs, ip) ftrace_instruction_pointer_set(fregs, ip)
#endif
#ifdef CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS
#define KS_REDIRECT_FLAGS \
	(FTRACE_OPS_FL_DYNAMIC | FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT)
#else
#define KS_REDIRECT_FLAGS (FTRACE_OPS_FL_DYNAMIC | FTRACE_OPS_FL_IPMODIFY | \
			   FTRACE_OPS_FL_PERMANENT | FTRACE_OPS_FL_SAVE_REGS)
#endif
#define KS_HAVE_REDIRECT 1
#else
/* Without dynamic ftrace every replaced function gets a jump. */
struct update;
struct ksplice_mod_change;
struct ksplice_section;
static inline unsigned long ksplice_fentry_ip(struct ksplice_mod_change *change,
					      const struct ksplice_section *s,
					      unsigned long start)
{
	return 0;
}

static inline int ksplice_redirect_start(struct update *u)
{
	return 0;
}

static inline void ksplice_redirect_stop(struct update *u)
{
}
#endif

#ifdef CONFIG_JUMP_LABEL
#include <linux/jump_label.h>

/* How many jump entries fit between start and end (labels.c). */
static inline size_t ks_jump_entries_fit(const void *start, const void *end)
{
	return (end - start) / sizeof(struct jump_entry);
}

/* Entry i of table: a jump label at code, jumping to target, of key. */
static inline void ks_jump_entry_set(void *table, size_t i, unsigned long code,
				     unsigned long target, unsigned long key,
				     unsigned int flags)
{
	struct jump_entry *e = (struct jump_entry *)table + i;

	flags &= 1;	/* the branch bit; the kernel sets the init bit */
#ifdef CONFIG_HAVE_ARCH_JUMP_LABEL_RELATIVE
	e->code = (s32)(code - (unsigned long)&e->code);
	e->target = (s32)(target - (unsigned long)&e->target);
	e->key = (long)(key - (unsigned long)&e->key) | flags;
#else
	e->code = code;
	e->target = target;
	e->key = key | flags;
#endif
}

static inline void ks_module_set_jump_entries(struct module *mod, void *table, size_t n)
{
	mod->jump_entries = table;
	mod->num_jump_entries = n;
}
#else
/* Without jump labels static keys are plain tests: the new code has no site. */
static inline size_t ks_jump_entries_fit(const void *start, const void *end)
{
	return 0;
}

static inline void ks_jump_entry_set(void *table, size_t i, unsigned long code,
				     unsigned long target, unsigned long key,
				     unsigned int flags)
{
}

static inline void ks_module_set_jump_entries(struct module *mod, void *table, size_t n)
{
}
#endif

#endif /* KSPLICE_COMPAT_H */
