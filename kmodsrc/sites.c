// SPDX-License-Identifier: GPL-2.0
/*
 * Run-pre matching at boot-time rewrite sites (x86-64). Where the running
 * kernel legitimately differs from the build (alternatives, paravirt,
 * retpolines, return thunks, jump labels, static calls, ftrace, sealed
 * endbr, lock prefixes, relaxed jumps, runtime constants), each rule
 * accepts exactly the encodings the kernel can have written there; anything
 * else is a mismatch whose trace names the site, the rule and both byte
 * strings.
 */
#include <linux/kallsyms.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>
#include "core.h"
#include "compat.h"

#define ALT_WHEN_ABSENT	0x8000
#define MAX_SITE_LEN	64

static const char *const site_names[] = {
	[KSPLICE_SITE_ALTERNATIVE] = "alternative",
	[KSPLICE_SITE_PARAVIRT] = "paravirt",
	[KSPLICE_SITE_RETPOLINE] = "retpoline",
	[KSPLICE_SITE_RETURN] = "return thunk",
	[KSPLICE_SITE_JUMP_LABEL] = "jump label",
	[KSPLICE_SITE_STATIC_CALL] = "static call",
	[KSPLICE_SITE_FENTRY] = "fentry",
	[KSPLICE_SITE_ENDBR] = "endbr",
	[KSPLICE_SITE_SMP_LOCK] = "lock prefix",
	[KSPLICE_SITE_RELAXABLE] = "relaxable jump",
	[KSPLICE_SITE_RUNTIME_CONST] = "runtime constant",
};

static const u8 nop5[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
static const u8 xor5rax[] = { 0x2e, 0x2e, 0x2e, 0x31, 0xc0 };
static const u8 endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };
static const u8 endbr_sealed[] = { 0x66, 0x0f, 0x1f, 0x00 };

int ksplice_site_order(const void *a, const void *b)
{
	const struct ksplice_site *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/* The first site of code at or after addr (sites sorted). */
const struct ksplice_site *
ksplice_first_site(const struct ksplice_code *code, unsigned long addr)
{
	const struct ksplice_site *lo = code->sites, *hi = code->sites_end;

	while (lo < hi) {
		const struct ksplice_site *mid = lo + (hi - lo) / 2;

		if (mid->addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ------------------------------------------------------------ encodings */

/* The length of the nop the kernel writes that starts p (0: none). */
static size_t nop_len(const u8 *p, size_t max)
{
	static const struct {
		u8 len;
		u8 bytes[9];
	} nops[] = {
		{ 1, { 0x90 } },
		{ 2, { 0x66, 0x90 } },
		{ 3, { 0x0f, 0x1f, 0x00 } },
		{ 4, { 0x0f, 0x1f, 0x40, 0x00 } },
		{ 5, { 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
		{ 6, { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
		{ 7, { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 } },
		{ 8, { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	};
	size_t i;

	for (i = ARRAY_SIZE(nops); i-- > 0;)
		if (nops[i].len <= max && !memcmp(p, nops[i].bytes, nops[i].len))
			return nops[i].len;
	return 0;
}

/* Whether p[0..len) is a sequence of the kernel's nops. */
bool ksplice_is_nops(const u8 *p, size_t len)
{
	while (len) {
		size_t n = nop_len(p, len);

		if (!n)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

static bool is_int3s(const u8 *p, size_t len)
{
	return !len || (p[0] == 0xcc && !memcmp(p, p + 1, len - 1));
}

/* Where a relative jump or call of len bytes at addr, ending in rel, goes. */
static unsigned long branch_target(const u8 *insn, unsigned long addr, size_t len)
{
	s32 rel;

	if (len == 2)
		return addr + 2 + (s8)insn[1];
	memcpy(&rel, insn + len - 4, sizeof(rel));
	return addr + len + rel;
}

/* Whether addr starts a symbol whose name ends with suffix. */
static bool symbol_ends_with(unsigned long addr, const char *suffix)
{
	char *buf = kmalloc(KSYM_SYMBOL_LEN, GFP_KERNEL);
	char *plus;
	size_t n, k = strlen(suffix);
	bool ok = false;

	if (!buf)
		return false;
	sprint_symbol(buf, addr);
	plus = strchr(buf, '+');
	if (plus && !strncmp(plus, "+0x0/", 5)) {
		n = plus - buf;
		ok = n >= k && !memcmp(plus - k, suffix, k);
	}
	kfree(buf);
	return ok;
}

static int refuse(struct cmp_ctx *c, const struct ksplice_site *s,
		  const char *rule, const u8 *run, size_t avail)
{
	int n = min_t(int, s->len, 16), m = min_t(int, min_t(size_t, avail, s->len), 16);

	snprintf(c->why, c->whylen, "%s+%#lx: %s site refused (%s): old %*ph, running %*ph",
		 c->label, s->addr - c->old_base, site_names[s->kind], rule, n,
		 (const void *)s->addr, m, run);
	return SITE_BAD;
}

/* The ksplice relocation of the old code at addr, if any. */
static const struct ksplice_reloc *reloc_at(struct cmp_ctx *c, unsigned long addr)
{
	const struct ksplice_reloc *r = ksplice_first_reloc(&c->change->old_code, addr);

	if (r < c->change->old_code.relocs_end && r->blank_addr == addr && r->symbol &&
	    r->symbol->label && r->howto && r->howto->size == 4)
		return r;
	return NULL;
}

/* ------------------------------------------------------------ alternatives */

bool ksplice_alt_applies(const struct ksplice_site *s)
{
	u16 bit = s->feature & ~ALT_WHEN_ABSENT;

	if (bit >= (NCAPINTS + NBUGINTS) * 32)
		return false;
	return !boot_cpu_has(bit) == !!(s->feature & ALT_WHEN_ABSENT);
}

/*
 * Compares len old bytes at old (the alternatives at old left out when
 * skip_alt) with the start of the site's running bytes, the rest of which
 * must be the kernel's nops.
 */
static int cmp_padded(struct cmp_ctx *c, const struct ksplice_site *a, unsigned long old,
		      size_t len, bool skip_alt, const u8 *run, unsigned long run_addr,
		      const char *rule)
{
	size_t used;
	int ret = ksplice_cmp_range(c, old, len, run, run_addr, a->len, &used, skip_alt);

	if (ret)
		return ret < 0 ? ret : SITE_BAD;
	if (!ksplice_is_nops(run + used, a->len - used))
		return refuse(c, a, rule, run, a->len);
	return SITE_OK;
}

/*
 * A replacement that is one near jump: the kernel re-encodes it for the
 * site, short when the target is in reach, and pads it with nops (6.1) or
 * int3 (6.12). The target must be the replacement's.
 */
static int alt_jump(struct cmp_ctx *c, const struct ksplice_site *a,
		    const u8 *run, unsigned long run_addr)
{
	const struct ksplice_reloc *r = reloc_at(c, a->aux + 1);
	size_t n = run[0] == 0xeb ? 2 : run[0] == 0xe9 ? 5 : 0;
	unsigned long to, old_to;
	int ret;

	if (!n || n > a->len ||
	    !(ksplice_is_nops(run + n, a->len - n) || is_int3s(run + n, a->len - n)))
		return refuse(c, a, "not the replacement's jump", run, a->len);
	to = branch_target(run, run_addr, n);
	if (r) {
		ret = ksplice_learn(c, r->symbol, to - r->insn_addend - r->target_addend - 4,
				    r->blank_addr);
		return ret ? (ret < 0 ? ret : SITE_BAD) : SITE_OK;
	}
	old_to = branch_target((const u8 *)a->aux, a->aux, 5);
	if (old_to - c->old_base == to - c->run_base)
		return SITE_OK;
	return refuse(c, a, "the replacement's jump goes elsewhere", run, a->len);
}

/* The replacement, moved to the site: its relocated fields keep their target. */
static int alt_replacement(struct cmp_ctx *c, const struct ksplice_site *a,
			   const u8 *run, unsigned long run_addr)
{
	const u8 *repl = (const u8 *)a->aux;

	if (a->aux_len > a->len || (a->aux_len && !repl))
		return -EINVAL;
	if (a->aux_len == 5 && repl[0] == 0xe9)
		return alt_jump(c, a, run, run_addr);
	if (a->aux_len && repl[0] == 0xeb)
		return refuse(c, a, "replacement starts with a short jump", run, a->len);
	return cmp_padded(c, a, a->aux, a->aux_len, false, run, run_addr,
			  "replacement not padded with nops");
}

/* The original instructions, whose 0x90 padding the kernel optimizes. */
static int alt_original(struct cmp_ctx *c, const struct ksplice_site *a,
			const u8 *run, unsigned long run_addr)
{
	const u8 *o = (const u8 *)a->addr;
	size_t pad = 0;

	while (pad < a->len && o[a->len - 1 - pad] == 0x90)
		pad++;
	return cmp_padded(c, a, a->addr, a->len - pad, true, run, run_addr,
			  "original not padded with nops");
}

/* All alternatives at one place: the last that applies on this CPU wins. */
static int alt_rule(struct cmp_ctx *c, const struct ksplice_site *s,
		    const u8 *run, unsigned long run_addr, size_t avail)
{
	const struct ksplice_site *t, *chosen = NULL;

	if (avail < s->len)
		return refuse(c, s, "running code ends", run, avail);
	for (t = s; t < c->change->old_code.sites_end && t->addr == s->addr &&
	     t->kind == KSPLICE_SITE_ALTERNATIVE; t++) {
		if (t->len != s->len)
			return refuse(c, t, "alternatives of different lengths", run, avail);
		if (ksplice_alt_applies(t))
			chosen = t;
	}
	if (chosen)
		return alt_replacement(c, chosen, run, run_addr);
	return alt_original(c, s, run, run_addr);
}

/* ------------------------------------------------------------ indirect branches */

/* The register of a retpoline thunk, from its name (-1: unknown). */
static int thunk_reg(const char *name)
{
	static const char *const regs[] = {
		"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
		"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	};
	const char *prefix = "__x86_indirect_thunk_";
	int i;

	if (!name || strncmp(name, prefix, strlen(prefix)))
		return -1;
	for (i = 0; i < ARRAY_SIZE(regs); i++)
		if (!strcmp(name + strlen(prefix), regs[i]))
			return i;
	return -1;
}

/*
 * What the kernel writes for a retpoline site of len bytes (opcode at o)
 * when the CPU does not need the thunk: an inverted short Jcc over the
 * branch for a Jcc, an optional LFENCE, the indirect call or jump, an INT3
 * after a jump. Returns the length written to out; the rest are nops.
 */
static size_t retpoline_bytes(const u8 *o, size_t len, int reg, bool lfence, u8 *out)
{
	bool jump = o[0] != 0xe8;
	size_t i = 0;

	if (o[0] == 0x0f) {
		out[i++] = 0x70 + ((o[1] & 0xf) ^ 1);
		out[i++] = len - 2;
	}
	if (lfence) {
		out[i++] = 0x0f;
		out[i++] = 0xae;
		out[i++] = 0xe8;
	}
	if (reg >= 8)
		out[i++] = 0x41;
	out[i++] = 0xff;
	out[i++] = (jump ? 0xe0 : 0xd0) + (reg & 7);
	if (jump && i < len)
		out[i++] = 0xcc;
	return i <= len ? i : 0;
}

static int retpoline_rule(struct cmp_ctx *c, const struct ksplice_site *s,
			  const u8 *run)
{
	const u8 *o = (const u8 *)s->addr;
	size_t oplen = o[0] == 0x0f ? 2 : 1, n;
	const struct ksplice_reloc *r = reloc_at(c, s->addr + oplen);
	int reg = r ? thunk_reg(r->symbol->name) : -1;
	u8 want[16];
	int lfence;

	if (!memcmp(o, run, oplen))
		return SITE_SAME;
	if (reg < 0 || s->len > sizeof(want))
		return refuse(c, s, "not a thunk of a known register", run, s->len);
	for (lfence = 0; lfence < 2; lfence++) {
		n = retpoline_bytes(o, s->len, reg, lfence, want);
		if (n && !memcmp(run, want, n) && ksplice_is_nops(run + n, s->len - n))
			return SITE_OK;
	}
	return refuse(c, s, "neither the thunk nor the inline indirect branch", run, s->len);
}

static int return_rule(struct cmp_ctx *c, const struct ksplice_site *s,
		       const u8 *run, unsigned long run_addr)
{
	if (run[0] == 0xc3 && is_int3s(run + 1, s->len - 1))
		return SITE_OK;
	if (run[0] == 0xe9 && s->len == 5 &&
	    symbol_ends_with(branch_target(run, run_addr, 5), "return_thunk"))
		return SITE_OK;
	return refuse(c, s, "neither ret nor a jump to a return thunk", run, s->len);
}

/* ------------------------------------------------------------ calls and jumps */

/*
 * Whether a traced function's fentry call goes to ftrace: one of its
 * callers (System.map addresses the update carries), or a trampoline ftrace
 * made for an ops, which starts as a copy of one of them.
 */
static bool is_ftrace_caller(struct cmp_ctx *c, unsigned long to)
{
	static const char *const callers[] = { "ftrace_caller", "ftrace_regs_caller" };
	u8 at_to[16], at_fn[16];
	unsigned long fn;
	int i;

	for (i = 0; i < ARRAY_SIZE(callers); i++) {
		if (ksplice_map_address(c->change, callers[i], &fn))
			continue;
		if (to == fn)
			return true;
		if (!copy_from_kernel_nofault(at_to, (void *)to, sizeof(at_to)) &&
		    !copy_from_kernel_nofault(at_fn, (void *)fn, sizeof(at_fn)) &&
		    !memcmp(at_to, at_fn, sizeof(at_to)))
			return true;
	}
	return false;
}

static int fentry_rule(struct cmp_ctx *c, const struct ksplice_site *s,
		       const u8 *run, unsigned long run_addr)
{
	if (s->len == 5 && !memcmp(run, nop5, 5))
		return SITE_OK;
	if (s->len == 5 && run[0] == 0xe8) {
		unsigned long to = branch_target(run, run_addr, 5), fn = 0;
		u8 at[8] = {};
		char rule[96];

		if (is_ftrace_caller(c, to))
			return SITE_OK;
		ksplice_map_address(c->change, "ftrace_caller", &fn);
		if (copy_from_kernel_nofault(at, (void *)to, sizeof(at)))
			memset(at, 0, sizeof(at));
		snprintf(rule, sizeof(rule), "a call to %#lx (%*ph), not to ftrace at %#lx", to,
			 (int)sizeof(at), at, fn);
		return refuse(c, s, rule, run, s->len);
	}
	return refuse(c, s, "neither ftrace's nop nor a call to ftrace", run, s->len);
}

static int jump_label_rule(struct cmp_ctx *c, const struct ksplice_site *s,
			   const u8 *run, unsigned long run_addr)
{
	unsigned long want = c->run_base + (s->aux - c->old_base);

	if ((s->len == 5 && !memcmp(run, nop5, 5)) ||
	    (s->len == 2 && run[0] == 0x66 && run[1] == 0x90))
		return SITE_OK;
	if (((s->len == 5 && run[0] == 0xe9) || (s->len == 2 && run[0] == 0xeb)) &&
	    branch_target(run, run_addr, s->len) == want)
		return SITE_OK;
	return refuse(c, s, "neither a nop nor a jump to the label's target", run, s->len);
}

/* Where a static-call trampoline jumps (0: it returns). */
static unsigned long trampoline_dest(unsigned long tramp)
{
	u8 b[5];
	unsigned long to;

	if (copy_from_kernel_nofault(b, (void *)tramp, sizeof(b)) || b[0] != 0xe9)
		return 0;
	to = branch_target(b, tramp, 5);
	return symbol_ends_with(to, "return_thunk") ? 0 : to;
}

static int static_call_rule(struct cmp_ctx *c, const struct ksplice_site *s,
			    const u8 *run, unsigned long run_addr)
{
	const u8 *o = (const u8 *)s->addr;
	const struct ksplice_reloc *r = reloc_at(c, s->addr + 1);
	unsigned long tramp, dest;

	if (!r || s->len != 5)
		return refuse(c, s, "no trampoline", run, s->len);
	if (run[0] == o[0] && symbol_ends_with(branch_target(run, run_addr, 5), r->symbol->label))
		return SITE_SAME;
	if (ksplice_resolve_label(c->change, r->symbol, &tramp))
		return refuse(c, s, "trampoline not found", run, s->len);
	dest = trampoline_dest(tramp);
	if (dest && run[0] == o[0] && branch_target(run, run_addr, 5) == dest)
		return SITE_OK;
	/* A call of __static_call_return0 is inlined as xorl %eax, %eax with prefixes. */
	if (dest && o[0] == 0xe8 && !memcmp(run, xor5rax, 5) &&
	    symbol_ends_with(dest, "__static_call_return0"))
		return SITE_OK;
	if (!dest && ((o[0] == 0xe8 && !memcmp(run, nop5, 5)) ||
		      (o[0] == 0xe9 && run[0] == 0xc3 && is_int3s(run + 1, 4))))
		return SITE_OK;
	return refuse(c, s, "neither the trampoline nor its function", run, s->len);
}

/*
 * Whether a running call that lands at dest calls fn: dest is fn, or,
 * with call depth tracking, the accounting thunk in the padding before fn.
 */
static bool is_call_to(unsigned long dest, unsigned long fn)
{
	return dest == fn || (ks_call_depth_active() && dest < fn && fn - dest <= KS_CALL_PADDING);
}

/* Whether a pv_ops function does nothing: boot patches its calls to nops. */
bool ksplice_pv_is_nop(unsigned long fn)
{
	static const char * const names[] = KS_PV_NOP_NAMES;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (symbol_ends_with(fn, names[i]))
			return true;
	return false;
}

static int paravirt_rule(struct cmp_ctx *c, const struct ksplice_site *s,
			 const u8 *run, unsigned long run_addr)
{
	unsigned long fn = ks_pv_op(s->feature);

	if (!memcmp((const u8 *)s->addr, run, min_t(size_t, s->len, 2)))
		return SITE_SAME;
	if (fn && ksplice_is_nops(run, s->len) && ksplice_pv_is_nop(fn))
		return SITE_OK;
	if (fn && s->len >= 5 && run[0] == 0xe8 &&
	    is_call_to(branch_target(run, run_addr, 5), fn) &&
	    ksplice_is_nops(run + 5, s->len - 5))
		return SITE_OK;
	return refuse(c, s, "neither the indirect call, a call to its op nor nops", run, s->len);
}

/*
 * A jump to code of the same object that the running build's assembler
 * made short: the target must be the same; the bytes after it move.
 */
static int relaxable_rule(struct cmp_ctx *c, const struct ksplice_site *s,
			  const u8 *run, unsigned long run_addr, size_t *run_len)
{
	const u8 *o = (const u8 *)s->addr;
	size_t oplen = o[0] == 0x0f ? 2 : 1;
	const struct ksplice_reloc *r = reloc_at(c, s->addr + oplen);
	bool is_short = (o[0] == 0xe9 && run[0] == 0xeb) ||
			(o[0] == 0x0f && run[0] == 0x70 + (o[1] & 0xf));
	unsigned long to;
	int ret;

	if (!memcmp(o, run, oplen))
		return SITE_SAME;
	if (!r || !is_short)
		return refuse(c, s, "neither the same jump nor its short form", run, s->len);
	to = branch_target(run, run_addr, 2);
	ret = ksplice_learn(c, r->symbol, to - r->insn_addend - r->target_addend - 4,
			    r->blank_addr);
	if (ret)
		return ret < 0 ? ret : SITE_BAD;
	*run_len = 2;
	return SITE_OK;
}

/* ------------------------------------------------------------ dispatch */

/*
 * Applies the rule of the sites at s->addr (sorted: alternatives first) to
 * the running bytes run[] (at run_addr, avail readable). skip_alt: the
 * alternatives there are being compared already (their original). Returns
 * SITE_SAME (compare as ordinary code), SITE_OK (the old_len old bytes
 * correspond to the run_len running ones), SITE_BAD (c->why says why) or
 * -errno.
 */
static int site_rule(struct cmp_ctx *c, const struct ksplice_site *s,
		     const u8 *run, unsigned long run_addr, size_t avail,
		     size_t *old_len, size_t *run_len);

int ksplice_sites_cmp(struct cmp_ctx *c, const struct ksplice_site *s,
		      bool skip_alt, const u8 *run, unsigned long run_addr,
		      size_t avail, size_t *old_len, size_t *run_len)
{
	const struct ksplice_site *end = c->change->old_code.sites_end;
	unsigned long at = s->addr;
	int ret;

	if (s->kind == KSPLICE_SITE_ALTERNATIVE && !skip_alt) {
		*old_len = *run_len = s->len;
		ret = alt_rule(c, s, run, run_addr, avail);
	} else {
		while (s < end && s->addr == at && s->kind == KSPLICE_SITE_ALTERNATIVE)
			s++;
		if (s == end || s->addr != at)
			return SITE_SAME;
		ret = site_rule(c, s, run, run_addr, avail, old_len, run_len);
	}
	if ((ret == SITE_OK || ret == SITE_SAME) && s->kind < KSPLICE_SITE_KINDS)
		c->seen[s->kind]++;
	return ret;
}

/* "kind N, ..." of the sites a comparison accepted (for the debug trace). */
void ksplice_sites_summary(const struct cmp_ctx *c, char *buf, size_t len)
{
	size_t k, n = 0;

	buf[0] = 0;
	for (k = 0; k < KSPLICE_SITE_KINDS && n < len; k++)
		if (c->seen[k])
			n += scnprintf(buf + n, len - n, "%s%s %u", n ? ", " : "",
				       site_names[k], c->seen[k]);
}

static int site_rule(struct cmp_ctx *c, const struct ksplice_site *s,
		     const u8 *run, unsigned long run_addr, size_t avail,
		     size_t *old_len, size_t *run_len)
{
	if (!s->len || s->len > MAX_SITE_LEN || s->kind >= ARRAY_SIZE(site_names))
		return -EINVAL;
	if (avail < s->len)
		return refuse(c, s, "running code ends", run, avail);
	*old_len = *run_len = s->len;
	switch (s->kind) {
	case KSPLICE_SITE_PARAVIRT:
		return paravirt_rule(c, s, run, run_addr);
	case KSPLICE_SITE_RETPOLINE:
		return retpoline_rule(c, s, run);
	case KSPLICE_SITE_RETURN:
		return return_rule(c, s, run, run_addr);
	case KSPLICE_SITE_JUMP_LABEL:
		return jump_label_rule(c, s, run, run_addr);
	case KSPLICE_SITE_STATIC_CALL:
		return static_call_rule(c, s, run, run_addr);
	case KSPLICE_SITE_FENTRY:
		return fentry_rule(c, s, run, run_addr);
	case KSPLICE_SITE_ENDBR:
		if (!memcmp(run, endbr64, 4) || !memcmp(run, endbr_sealed, 4))
			return SITE_OK;
		return refuse(c, s, "neither endbr64 nor its sealed nop", run, s->len);
	case KSPLICE_SITE_SMP_LOCK:
		if (run[0] == 0xf0 || run[0] == 0x3e)
			return SITE_OK;
		return refuse(c, s, "neither lock nor ds", run, s->len);
	case KSPLICE_SITE_RELAXABLE:
		return relaxable_rule(c, s, run, run_addr, run_len);
	case KSPLICE_SITE_RUNTIME_CONST:
		/* the variable's value, written at boot: data, not code flow */
		return SITE_OK;
	}
	return -EINVAL;
}
