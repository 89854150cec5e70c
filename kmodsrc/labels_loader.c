// SPDX-License-Identifier: GPL-2.0
/*
 * The labels module of an update: empty. While it loads, the update's core
 * gives it the jump table of the new code (labels.c); the kernel keeps that
 * table's jump labels in step with their keys while it stays loaded.
 */
#include <linux/module.h>

MODULE_DESCRIPTION("Ksplice update: jump labels of the new code");
MODULE_LICENSE("GPL");
