#!/usr/bin/python3
"""Makes the changed pairs of the benchmark: every object of the test kernel
with one change injected into one function.

    mkpairs.py --snap DIR --src DIR --orig-src DIR --cache DIR --out DIR \
               --jobs N --list FILE

For each object OBJ named in FILE (relative to the snap build DIR), the
object before the change (`pre`) is the snap build's; the object after it
(`post`) is a real recompile: the object's own Kbuild command (from
`.OBJ.cmd`, objtool included) run again in the snap build on a copy of its
C source in which one function's opening brace `{` becomes
`{ __asm__ __volatile__("nop");` (same line, so no line number moves; the
function is the middle one of the file's non-inline, non-__init functions
with their brace in column 0 that the object has as a `.text.NAME`
section). The copy keeps the source's name
in `__FILE__` (-fmacro-prefix-map), and the original directory stays on the
include path. Objects whose source is assembly, or whose injected copy
does not compile or does not change, get the fallback instead: the last
byte of their largest code section flipped (init code last; their largest
section when they have no code).

Posts are cached in the cache DIR under the SHA-1 of the pre object, with
how they were made; `OUT/OBJ` (post) and `OUT/OBJ.KSPLICE_pre` (pre) are
written for every object. Prints one line per object to OUT/pairs.tsv:
`OBJ SIZE METHOD DETAIL`.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys

VERSION = "pairs-v2"
INJECT = '{ __asm__ __volatile__("nop");'
SKIP_WORDS = re.compile(
    r"\b(__init|__exit|__initdata|__ref|__meminit|__head|__naked|inline|__always_inline|"
    r"__attribute_const__|noinline_for_stack)\b")


def function_name(lines, j):
    """The name of the function whose declarator ends on line j: the
    identifier before the parenthesis that the last `)` closes."""
    text = " ".join(l.strip() for l in lines[max(0, j - 8):j + 1])
    depth = 0
    for k in range(len(text) - 1, -1, -1):
        if text[k] == ")":
            depth += 1
        elif text[k] == "(":
            depth -= 1
            if depth == 0:
                m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", text[:k])
                return m.group(1) if m else None
    return None


def candidates(lines, compiled):
    """(line, name) of the `{` of each function body (kernel style) whose
    function the object has as a section `.text.NAME` (compiled, not
    inlined away, not init code)."""
    out = []
    for i, line in enumerate(lines):
        if line.rstrip() != "{":
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j < 0:
            continue
        prev = lines[j].rstrip()
        if not prev.endswith(")") or prev.lstrip().startswith("#") or prev.endswith("\\"):
            continue
        head = " ".join(lines[max(0, j - 3):j + 1])
        if SKIP_WORDS.search(head) or "=" in prev:
            continue
        name = function_name(lines, j)
        if name and ".text." + name in compiled:
            out.append((i, name))
    return out


def section_headers(data):
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = hdrs[shstrndx]

    def name(off):
        s = strtab[4] + off
        return data[s:data.index(b"\0", s)].decode(errors="replace")

    return [(name(h[0]),) + h[1:] for h in hdrs]


def flip(pre_bytes):
    """The fallback change: the last byte of the largest code section
    (largest section of contents when there is no code) flipped."""
    data = bytearray(pre_bytes)
    best = None
    for name, typ, flags, _addr, off, size, *_ in section_headers(data):
        if typ != 1 or size == 0:  # SHT_PROGBITS with contents
            continue
        # Code first (SHF_EXECINSTR), init and exit code (which Ksplice
        # leaves out) last.
        init = name.startswith((".init", ".exit"))
        rank = (0 if init else 1, 1 if flags & 4 else 0, size)
        if best is None or rank > best[0]:
            best = (rank, name, off, size)
    if best is None:
        return None, "no section to change"
    _, name, off, size = best
    data[off + size - 1] ^= 0xFF
    return bytes(data), f"flipped the last byte of {name}"


def cmd_of(snap, obj):
    d, base = os.path.split(obj)
    path = os.path.join(snap, d, f".{base}.cmd")
    cmd = source = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith(f"cmd_{obj} := "):
                    cmd = line[len(f"cmd_{obj} := "):].rstrip("\n")
                elif line.startswith(f"source_{obj} := "):
                    source = line[len(f"source_{obj} := "):].strip()
    except OSError:
        return None, None
    return cmd, source


def source_rel(args, source):
    """The source's path relative to the tree (or to the build, when generated)."""
    return os.path.relpath(source, args.orig_src) if os.path.isabs(source) else source


def recompile(args, obj, workdir, make_source):
    """Recompiles obj from a changed copy of its source: make_source(path,
    rel) gives the copy's text and a description, or None and why not.
    Returns (post bytes, detail) or (None, why not)."""
    cmd, source = cmd_of(args.snap, obj)
    if not cmd or not source:
        return None, "no Kbuild command"
    if not source.endswith(".c"):
        return None, f"source {os.path.basename(source)} is not C"
    src_path = source if os.path.isabs(source) else os.path.join(args.snap, source)
    if src_path.startswith(args.orig_src + "/"):
        src_path = args.src + src_path[len(args.orig_src):]
    rel = source_rel(args, source)
    text, detail = make_source(src_path, rel)
    if text is None:
        return None, detail
    moddir = os.path.join(workdir, "src")
    mod = os.path.join(moddir, rel)
    os.makedirs(os.path.dirname(mod), exist_ok=True)
    with open(mod, "w", errors="surrogateescape") as f:
        f.write(text)
    out = os.path.join(workdir, "post.o")
    toks = []
    for t in cmd.split(" "):
        if t == "ksplice-cc" and not toks:
            continue
        if t.startswith("-Wp,-MMD,"):
            continue
        if t == obj:
            t = out
        elif t == source:
            t = mod
        toks.append(t)
    # The copy is named as the original in __FILE__ (the kernel's own map
    # covers the tree, this one the copy).
    first = toks.index("-c") if "-c" in toks else len(toks)
    toks.insert(first, f"-fmacro-prefix-map={moddir}/=")
    line = " ".join(toks).replace(args.orig_src, args.src)
    r = subprocess.run(["bash", "-c", line], cwd=args.snap, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if r.returncode != 0 or not os.path.exists(out):
        err = r.stderr.decode(errors="replace").strip().splitlines()
        return None, "compile failed: " + (err[-1][:120] if err else f"exit {r.returncode}")
    with open(out, "rb") as f:
        return f.read(), detail


def injector(pre):
    """A make_source for recompile(): the source with a nop injected into
    one function the pre object has (see the top)."""
    compiled = {h[0] for h in section_headers(pre)}

    def inject(src_path, rel):
        try:
            with open(src_path, errors="surrogateescape") as f:
                lines = f.read().split("\n")
        except OSError as e:
            return None, f"cannot read source: {e}"
        cands = candidates(lines, compiled)
        if not cands:
            return None, "no function of the object to change in the source"
        at, name = cands[len(cands) // 2]
        lines[at] = INJECT
        return "\n".join(lines), f"injected a nop into {name} ({rel}:{at + 1})"

    return inject


def write_pair(out, obj, pre, post):
    """Writes the pair as the diff pass finds it: OUT/OBJ (after) and
    OUT/OBJ.KSPLICE_pre (before)."""
    dst = os.path.join(out, obj)
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    with open(dst, "wb") as f:
        f.write(post)
    with open(dst + ".KSPLICE_pre", "wb") as f:
        f.write(pre)


def make_one(args, obj):
    snap_obj = os.path.join(args.snap, obj)
    pre_path = snap_obj + ".KSPLICE_pre" if os.path.exists(snap_obj + ".KSPLICE_pre") else snap_obj
    with open(pre_path, "rb") as f:
        pre = f.read()
    key = hashlib.sha1(pre + VERSION.encode()).hexdigest()
    cached = os.path.join(args.cache, key + ".o")
    info_path = os.path.join(args.cache, key + ".json")
    if os.path.exists(cached) and os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        with open(cached, "rb") as f:
            post = f.read()
    else:
        workdir = os.path.join(args.out, ".work", hashlib.sha1(obj.encode()).hexdigest()[:16])
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        post, detail = recompile(args, obj, workdir, injector(pre))
        if post is not None and post != pre:
            info = {"method": "recompiled", "detail": detail}
        else:
            why = detail if post is None else "the recompile changed nothing"
            post, fdetail = flip(pre)
            info = {"method": "flipped" if post else "none", "detail": f"{fdetail} ({why})"}
            if post is None:
                post = pre
        shutil.rmtree(workdir, ignore_errors=True)
        tmp = cached + f".tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(post)
        os.replace(tmp, cached)
        with open(info_path + ".tmp", "w") as f:
            json.dump(info, f)
        os.replace(info_path + ".tmp", info_path)
    write_pair(args.out, obj, pre, post)
    return obj, len(pre), info


def patched_pairs(args, objs):
    """--patch: pairs of the objects compiled from the files the patch
    changes, the post compiled from the patched file (no cache, no fallback)."""
    with open(args.patch, errors="replace") as f:
        files = sorted({l[6:].split("\t")[0].strip() for l in f if l.startswith("+++ b/")})
    work = os.path.join(args.out, ".work")
    shutil.rmtree(work, ignore_errors=True)
    tree = os.path.join(work, "patched")
    for rel in files:
        os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
        shutil.copyfile(os.path.join(args.src, rel), os.path.join(tree, rel))
    r = subprocess.run(["patch", "-s", "-p1", "-d", tree, "-i", os.path.abspath(args.patch)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise SystemExit(f"mkpairs: {args.patch} does not apply: {r.stdout.decode()[:200]}")

    def from_patch(_src_path, rel):
        if rel not in files:
            return None, "not patched"
        with open(os.path.join(tree, rel), errors="surrogateescape") as f:
            return f.read(), f"{rel} patched"

    results = []
    for obj in objs:
        _, source = cmd_of(args.snap, obj)
        if not source or source_rel(args, source) not in files:
            continue
        snap_obj = os.path.join(args.snap, obj)
        with open(snap_obj, "rb") as f:
            pre = f.read()
        wd = os.path.join(work, "obj")
        shutil.rmtree(wd, ignore_errors=True)
        os.makedirs(wd)
        post, detail = recompile(args, obj, wd, from_patch)
        if post is None:
            raise SystemExit(f"mkpairs: {obj}: {detail}")
        write_pair(args.out, obj, pre, post)
        results.append((obj, len(pre), {"method": "patched", "detail": detail}))
    shutil.rmtree(work, ignore_errors=True)
    return results


def main():
    p = argparse.ArgumentParser()
    for a in ("--snap", "--src", "--orig-src", "--out", "--list"):
        p.add_argument(a, required=True)
    p.add_argument("--cache")
    p.add_argument("--patch")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    args.orig_src = args.orig_src.rstrip("/")
    args.src = args.src.rstrip("/")
    os.makedirs(args.out, exist_ok=True)
    with open(args.list) as f:
        objs = [l.strip() for l in f if l.strip()]
    if args.patch:
        results = patched_pairs(args, objs)
    else:
        if not args.cache:
            raise SystemExit("mkpairs: --cache is required without --patch")
        os.makedirs(args.cache, exist_ok=True)
        results = []
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
            futs = [ex.submit(make_one, args, o) for o in objs]
            for n, fut in enumerate(concurrent.futures.as_completed(futs)):
                results.append(fut.result())
                if (n + 1) % 100 == 0 or n + 1 == len(futs):
                    print(f"  pairs: {n + 1}/{len(futs)}", file=sys.stderr, flush=True)
        shutil.rmtree(os.path.join(args.out, ".work"), ignore_errors=True)
    results.sort()
    with open(os.path.join(args.out, "pairs.tsv"), "w") as f:
        for obj, size, info in results:
            f.write(f"{obj}\t{size}\t{info['method']}\t{info['detail']}\n")


if __name__ == "__main__":
    main()
