/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the kernels and configurations the core supports
 * (Linux 6.1 and later long-term kernels, with and without paravirt): the
 * one place for version and configuration conditionals.
 */
#ifndef KSPLICE_COMPAT_H
#define KSPLICE_COMPAT_H

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

/* Moving the instruction pointer from an ftrace handler (redirect.c). */
#define ks_set_ip(fregs, ip) ftrace_instruction_pointer_set(fregs, ip)
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

#endif /* KSPLICE_COMPAT_H */
