/* SPDX-License-Identifier: GPL-2.0 */
/*
 * For authors of Ksplice patches: include <ksplice-patch.h> in a patched
 * source file (ksplice-create's builds find it) to run code when the update
 * is applied or reversed, and to attach new state to existing objects
 * without changing their layout (shadow data). See docs/PATCH-AUTHORS.md.
 */
#ifndef KSPLICE_PATCH_H
#define KSPLICE_PATCH_H

#include <linux/compiler.h>
#include <linux/gfp.h>
#include <linux/types.h>

/*
 * Hooks. Each macro registers a function of this file, run by the core for
 * the update it belongs to:
 *   ksplice_pre_apply(fn)	int fn(void), before the machine is stopped;
 *				non-zero cancels the update (call_failed)
 *   ksplice_check_apply(fn)	int fn(void), machine stopped; non-zero cancels
 *   ksplice_apply(fn)		void fn(void), machine stopped, jumps written
 *   ksplice_post_apply(fn)	void fn(void), once the update is applied
 *   ksplice_fail_apply(fn)	void fn(void), when applying failed after
 *				the pre_apply hooks ran
 * and the same five for reverse (ksplice_pre_reverse, ...). Functions run
 * with the machine stopped must not sleep.
 */
typedef int (*ksplice_int_hook_t)(void);
typedef void (*ksplice_void_hook_t)(void);

#define __ksplice_int_hook(kind, fn)					\
	static ksplice_int_hook_t __ksplice_##kind##_##fn __used		\
	__section(".ksplice_call_" #kind) = fn
#define __ksplice_void_hook(kind, fn)					\
	static ksplice_void_hook_t __ksplice_##kind##_##fn __used		\
	__section(".ksplice_call_" #kind) = fn

#define ksplice_pre_apply(fn)		__ksplice_int_hook(pre_apply, fn)
#define ksplice_check_apply(fn)		__ksplice_int_hook(check_apply, fn)
#define ksplice_apply(fn)		__ksplice_void_hook(apply, fn)
#define ksplice_post_apply(fn)		__ksplice_void_hook(post_apply, fn)
#define ksplice_fail_apply(fn)		__ksplice_void_hook(fail_apply, fn)
#define ksplice_pre_reverse(fn)		__ksplice_int_hook(pre_reverse, fn)
#define ksplice_check_reverse(fn)	__ksplice_int_hook(check_reverse, fn)
#define ksplice_reverse(fn)		__ksplice_void_hook(reverse, fn)
#define ksplice_post_reverse(fn)	__ksplice_void_hook(post_reverse, fn)
#define ksplice_fail_reverse(fn)	__ksplice_void_hook(fail_reverse, fn)

/*
 * Shadow data: a zeroed block of @size bytes attached to the object at
 * @obj under the number @id (choose one per kind of state). The core keeps
 * it in a hash table; every block of the update is freed when the update is
 * reversed. Safe from any context (process, softirq, hardirq) when @gfp
 * suits it (GFP_ATOMIC where sleeping is not allowed).
 *
 * ksplice_shadow_get():	the block, or NULL if none.
 * ksplice_shadow_get_or_alloc(): the block, allocated (zeroed, then @ctor
 *				run on it with @arg, under the table's lock, so
 *				@ctor must not sleep; non-zero from @ctor frees
 *				it and returns NULL) if there is none; NULL when
 *				out of memory.
 * ksplice_shadow_free():	frees the block of @obj and @id, if any.
 * ksplice_shadow_free_all():	frees every block with @id.
 *
 * A block stays valid until it is freed: free it where the object itself is
 * freed (patch the function that frees it), or rely on the reverse.
 */
void *ksplice_shadow_get(const void *obj, unsigned long id);
void *ksplice_shadow_get_or_alloc(const void *obj, unsigned long id,
				  size_t size, gfp_t gfp,
				  int (*ctor)(void *shadow, void *arg), void *arg);
void ksplice_shadow_free(const void *obj, unsigned long id);
void ksplice_shadow_free_all(unsigned long id);

#endif /* KSPLICE_PATCH_H */
