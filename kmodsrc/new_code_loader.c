// SPDX-License-Identifier: GPL-2.0
/*
 * The new code module of one target: the replacement code and its metadata,
 * described for the core by a struct ksplice_mod_change that the matching
 * old code module hands to the core.
 */
#include <linux/module.h>
#include <linux/stringify.h>
#include "ksplice.h"

#define HOOK(kind, name) \
	[KSPLICE_HOOK_##kind] = { ksplice_call_##name, ksplice_call_##name##_end }

struct ksplice_mod_change change = {
	.name = "ksplice_" __stringify(KSPLICE_MID),
	.kid = __stringify(KSPLICE_KID),
	.target_name = __stringify(KSPLICE_TARGET),
	.map_printk = MAP_PRINTK,
	.new_code_mod = THIS_MODULE,
	.new_code = {
		.relocs = ksplice_relocs,
		.relocs_end = ksplice_relocs_end,
		.sections = ksplice_sections,
		.sections_end = ksplice_sections_end,
		.symbols = ksplice_symbols,
		.symbols_end = ksplice_symbols_end,
		.system_map = ksplice_system_map,
		.system_map_end = ksplice_system_map_end,
		.sites = ksplice_sites,
		.sites_end = ksplice_sites_end,
	},
	.patches = ksplice_patches,
	.patches_end = ksplice_patches_end,
	.label_space = ksplice_label_space,
	.label_space_end = ksplice_label_space_end,
	.hooks = {
		HOOK(PRE_APPLY, pre_apply),
		HOOK(CHECK_APPLY, check_apply),
		HOOK(APPLY, apply),
		HOOK(POST_APPLY, post_apply),
		HOOK(FAIL_APPLY, fail_apply),
		HOOK(PRE_REVERSE, pre_reverse),
		HOOK(CHECK_REVERSE, check_reverse),
		HOOK(REVERSE, reverse),
		HOOK(POST_REVERSE, post_reverse),
		HOOK(FAIL_REVERSE, fail_reverse),
	},
};
EXPORT_SYMBOL_GPL(change);

static void __exit new_code_exit(void)
{
	ksplice_new_code_gone(&change);
}

module_exit(new_code_exit);
MODULE_DESCRIPTION("Ksplice update: new code");
MODULE_LICENSE("GPL");
