// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel an update is built for: its release and version strings in
 * the section .ksplice_utsname, as "RELEASE\nVERSION\n" (read by
 * ksplice-kernel-utsname; never linked into a module).
 */
#include <generated/utsrelease.h>
#ifdef KSPLICE_UTSVERSION_H
#include KSPLICE_UTSVERSION_H
#endif
#ifndef UTS_VERSION
#define UTS_VERSION ""
#endif

static const char ksplice_utsname[] __section(".ksplice_utsname") __used =
	UTS_RELEASE "\n" UTS_VERSION "\n";
