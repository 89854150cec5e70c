// SPDX-License-Identifier: GPL-2.0
/*
 * The old code module of one target: the code the running kernel must
 * match, byte for byte, before the update is applied. Loading it hands the
 * target's change to the core.
 */
#include <linux/module.h>
#include "ksplice.h"

static int __init old_code_init(void)
{
	change.old_code.relocs = ksplice_relocs;
	change.old_code.relocs_end = ksplice_relocs_end;
	change.old_code.sections = ksplice_sections;
	change.old_code.sections_end = ksplice_sections_end;
	change.old_code.symbols = ksplice_symbols;
	change.old_code.symbols_end = ksplice_symbols_end;
	change.old_code.system_map = ksplice_system_map;
	change.old_code.system_map_end = ksplice_system_map_end;
	change.old_code.sites = ksplice_sites;
	change.old_code.sites_end = ksplice_sites_end;
	return init_ksplice_mod_change(&change);
}

static void __exit old_code_exit(void)
{
	cleanup_ksplice_mod_change(&change);
}

module_init(old_code_init);
module_exit(old_code_exit);
MODULE_DESCRIPTION("Ksplice update: old code for run-pre matching");
MODULE_LICENSE("GPL");
