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

#endif /* KSPLICE_COMPAT_H */
