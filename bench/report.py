#!/usr/bin/python3
"""Writes BENCHMARKS.md and the engine plot from the results of bench/run.

    report.py RESULTS_DIR BENCHMARKS.md PLOT.svg NOTES.md
"""

import json
import math
import os
import statistics
import subprocess
import sys

res, out_md, out_svg, notes_path = sys.argv[1:5]


def load(name):
    path = os.path.join(res, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_kv(name):
    kv = {}
    with open(os.path.join(res, name)) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            kv[k] = v
    return kv


machine = read_kv("machine")
quick = bool(machine.get("quick"))
baseline = machine.get("baseline", "")


def med(xs):
    return statistics.median(xs)


def wall(runs):
    return [r[0] for r in runs]


def cpu(runs):
    return [r[1] + r[2] for r in runs]


def rss(runs):
    return max(r[3] for r in runs)


def ms(x):
    if x >= 10:
        return f"{x * 1000:.0f}"
    if x >= 1:
        return f"{x * 1000:.0f}"
    if x >= 0.1:
        return f"{x * 1000:.1f}"
    return f"{x * 1000:.2f}"


def secs(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def size(n):
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{n} B"


def mib(kb):
    return f"{kb / 1024:.1f}"


def ratio(x):
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def paired(runs_a, runs_b):
    """Ratios of the runs of one repetition (the runs are interleaved)."""
    return [a[0] / b[0] for a, b in zip(runs_a, runs_b) if b[0] > 0]


def trange(xs):
    return f"{ms(min(xs))}-{ms(max(xs))}"


md = []
aims = []  # (aim, measured, target, met, note)


def aim(name, measured, target, where):
    met = measured <= target
    how = "met" if met else f"missed by {100 * (measured / target - 1):.0f}%"
    aims.append((name, ratio(measured), ratio(target), how, where))


# ------------------------------------------------------------------ header
minutes = max(1, round(int(machine['duration']) / 60))
md.append("# Benchmarks\n")
md.append(f"Written by `bench/run{' --quick' if quick else ''}"
          f"{' --baseline=' + baseline if baseline else ''}` on {machine['date']} "
          f"(commit {machine['commit']}, {minutes} minute{'s' if minutes > 1 else ''}). "
          "Every figure is a ratio against a floor measured in the same run, the two "
          f"interleaved run by run{' (see *Method* below)' if os.path.exists(os.path.join(res, 'changed.json')) else ''}; "
          "times are wall-clock medians "
          "with their minimum-maximum range, peak memory is the largest resident "
          "set size of any run (`wait4`).\n")
md.append("| machine | |\n|---|---|")
for k, label in (("cpu", "CPU"), ("cores", "cores"), ("ram", "RAM"), ("os", "system"),
                 ("kernel", "kernel"), ("rustc", "rustc"), ("gcc", "gcc"),
                 ("config", "test kernel's configuration fragment"), ("only", "items run (all when empty)")):
    md.append(f"| {label} | {machine.get(k, '?')} |")
with open(os.path.join(res, "load")) as f:
    loads = [l.split() for l in f if l.strip()]
md.append(f"| load average (1, 5, 15 min) | at the start {' '.join(loads[0][1:])}, "
          f"at the end {' '.join(loads[-1][1:])}; highest 1-minute value "
          f"{max(float(l[1]) for l in loads):.2f} |")
md.append("")
AIMS_AT = len(md)

# ------------------------------------------------------------------ 1. plugin
plugin = load("plugin.json")
if plugin:
    runs = plugin["make"]["runs"]
    md.append("## 1. Plugin cost per invocation\n")
    md.append("A tree of 1000 generated C objects (one to four small functions each, "
              "compiled once with `-ffunction-sections -fdata-sections`) and one "
              "makefile rule per object, run by `make -j2`: the rules run `/bin/true` "
              "(the floor: starting a process), `ksplice-obj snap`, or `ksplice-obj "
              "diff` on the unchanged object (its `.KSPLICE_pre` copy made before each "
              "run, untimed). Per invocation = the whole make run / 1000; CPU = user + "
              "system time of the make run and everything it started.\n")
    md.append("| rules | make run: median (min-max) ms | per invocation, wall | per invocation, CPU "
              "| ratio to /bin/true: wall (per-run range) | ratio: CPU | peak memory MiB |")
    md.append("|---|---|---|---|---|---|---|")
    t = runs["true"]
    for name, label in (("true", "`/bin/true`"), ("snap", "`ksplice-obj snap`"),
                        ("diff", "`ksplice-obj diff`, unchanged")):
        r = runs[name]
        w, c = med(wall(r)), med(cpu(r))
        pr = paired(r, t)
        rw = w / med(wall(t))
        rc = c / med(cpu(t))
        rng = f" ({min(pr):.2f}-{max(pr):.2f})" if name != "true" else ""
        md.append(f"| {label} | {ms(w)} ({trange(wall(r))}) | {w:.2f} ms | "
                  f"{c:.2f} ms | {ratio(rw)}{rng} | {ratio(rc)} | {mib(rss(r))} |")
        if name == "snap":
            aim("`snap` per invocation, against `/bin/true`", rw, 2.0, "1")
        if name == "diff":
            aim("`diff` of an unchanged object per invocation, against `/bin/true`", rw, 2.0, "1 (no stated aim; snap's)")
    md.append("")

# ------------------------------------------------------------------ 2. engine
BUCKETS = [(0, 8 << 10), (8 << 10, 32 << 10), (32 << 10, 128 << 10), (128 << 10, 512 << 10),
           (512 << 10, 1 << 40)]


def bucket_name(lo, hi):
    if lo == 0:
        return f"< {size(hi)}"
    if hi >= 1 << 40:
        return f">= {size(lo)}"
    return f"{size(lo)} - {size(hi)}"


def per_object(data, cmd, floor):
    rows = []
    for oid, d in data.items():
        r = d["runs"]
        rows.append({
            "id": oid, "size": d["size"],
            "t": med(wall(r[cmd])), "tmin": min(wall(r[cmd])), "tmax": max(wall(r[cmd])),
            "f": med(wall(r[floor])), "rss": rss(r[cmd]), "frss": rss(r[floor]),
            "status": r[cmd][0][4],
            "ratio": med(wall(r[cmd])) / med(wall(r[floor])),
            "cratio": med(cpu(r[cmd])) / max(med(cpu(r[floor])), 1e-6),
            "runs": r,
        })
    return rows


def bucket_table(rows, floor_label, extra=None):
    out = ["| object size | objects | median size | engine: median time ms | "
           f"{floor_label}: median ms | ratio: median of objects (max) | CPU-time ratio | peak memory MiB |",
           "|---|---|---|---|---|---|---|---|"]
    for lo, hi in BUCKETS:
        b = [r for r in rows if lo <= r["size"] < hi]
        if not b:
            continue
        t = med([r["t"] for r in b])
        out.append(f"| {bucket_name(lo, hi)} | {len(b)} | {size(med([r['size'] for r in b]))} | "
                   f"{ms(t)} | {ms(med([r['f'] for r in b]))} | "
                   f"{ratio(med([r['ratio'] for r in b]))} ({ratio(max(r['ratio'] for r in b))}) | "
                   f"{ratio(med([r['cratio'] for r in b]))} | {mib(max(r['rss'] for r in b))} |")
    allr = rows
    out.append(f"| all | {len(allr)} | {size(med([r['size'] for r in allr]))} | "
               f"{ms(med([r['t'] for r in allr]))} | {ms(med([r['f'] for r in allr]))} | "
               f"{ratio(med([r['ratio'] for r in allr]))} ({ratio(max(r['ratio'] for r in allr))}) | "
               f"{ratio(med([r['cratio'] for r in allr]))} | {mib(max(r['rss'] for r in allr))} |")
    return out


ident = load("identical.json")
if ident:
    rows = per_object(ident, "diff", "cmp")
    md.append("## 2. The engine: `ksplice-obj diff`\n")
    md.append("Objects of the test kernel's snap build (`-ffunction-sections "
              "-fdata-sections`); `ksplice-obj diff OBJ.KSPLICE` run in a copy of the "
              "tree as Makefile.ksplice runs it, with `KSPLICE_CONFIG_DIR` (the "
              "System.map of the test kernel) and `KSPLICE_KID` set.\n")
    md.append(f"### (a) Identical pairs, against `cmp`\n")
    md.append(f"{len(rows)} objects, each with an identical `.KSPLICE_pre` copy (made "
              "again before every run, untimed); the floor is `cmp OBJ OBJ.KSPLICE_pre` "
              f"on the same files. {machine['reps']} runs of each.\n")
    md += bucket_table(rows, "cmp")
    md.append("")
    tot = sum(r["t"] for r in rows) / sum(r["f"] for r in rows)
    aim("identical pair, against `cmp` (median of objects)", med([r["ratio"] for r in rows]), 1.5, "2(a)")
    big_i = max(rows, key=lambda r: r["size"])
    aim(f"identical pair, against `cmp`, largest object ({big_i['id']})", big_i["ratio"], 1.5, "2(a)")
    line = f"Summed over the objects: {ratio(tot)} the time of `cmp`."
    if "baseline" in next(iter(ident.values()))["runs"]:
        brows = per_object(ident, "baseline", "cmp")
        bbig = max(brows, key=lambda r: r["size"])
        line += (f" The engine of {baseline}: median {ratio(med([r['ratio'] for r in brows]))}, "
                 f"{big_i['id']} {ratio(bbig['ratio'])} ({ms(bbig['t'])} ms, peak memory {mib(bbig['rss'])} MiB).")
    md.append(line + "\n")

cases = load("cases.json")
if cases:
    rows = per_object(cases, "diff", "cat")
    md.append("### (b) The changed pairs of the e2e cases\n")
    md.append("Each case's patch applied to a copy of its source file, the object "
              "recompiled with its Kbuild command (objtool included), against the "
              "snap build's object; the floor is reading both files (`cat OBJ "
              "OBJ.KSPLICE_pre`).\n")
    md.append("| case: object | size | diff: median (min-max) ms | cat ms | ratio | peak memory MiB | exit |")
    md.append("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["id"]):
        md.append(f"| {r['id'].replace(':', ': ')} | {size(r['size'])} | {ms(r['t'])} ({trange(wall(r['runs']['diff']))}) | "
                  f"{ms(r['f'])} | {ratio(r['ratio'])} | {mib(r['rss'])} | {r['status']} |")
    md.append("\nExit 1 is the engine refusing the change (the case expects it).\n")

changed = load("changed.json")
plot_rows = []
if changed:
    rows = per_object(changed, "diff", "cat")
    plot_rows = rows
    methods = {}
    with open(os.path.join(res, "pairs.tsv")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            methods[p[0]] = p[2]
    statuses = {}
    outputs = {}
    with open(os.path.join(res, "changed.status")) as f:
        for line in f:
            o, st, ob = line.split()
            statuses[o] = int(st)
            outputs[o] = int(ob)
    for r in rows:
        r["out"] = outputs.get(r["id"], 0)
    n_re = sum(1 for m in methods.values() if m == "recompiled")
    n_fl = sum(1 for m in methods.values() if m == "flipped")
    n_ref = sum(1 for s in statuses.values() if s != 0)
    md.append("### (c) Every object with one function changed\n")
    md.append(f"{len(rows)} objects{' (a sample evenly spaced by size)' if quick else ''}: "
              f"{n_re} recompiled from their C source with `{{ __asm__ __volatile__(\"nop\");` "
              "as the opening brace of one non-inline, non-init function (on the brace's own "
              "line, so no line number moves), "
              f"{n_fl} (assembly sources, or no function to change) with the last byte of their "
              "largest code section flipped (`bench/mkpairs.py`). The floor is reading both "
              f"files (`cat`). {machine['reps']} runs of each. The engine refused "
              f"{n_ref} of the changes (a changed byte in writable data).\n")
    md += bucket_table(rows, "cat")
    md.append("")
    largest = max(rows, key=lambda r: r["size"])
    md.append(f"The largest object, {largest['id']} ({size(largest['size'])}): "
              f"{ms(largest['t'])} ms ({trange(wall(largest['runs']['diff']))}), "
              f"{ratio(largest['ratio'])} the {ms(largest['f'])} ms of reading both files "
              f"({ratio(largest['cratio'])} in CPU time), "
              f"peak memory {mib(largest['rss'])} MiB.\n")
    aim(f"changed pair, largest object ({largest['id']}), against reading both files",
        largest["ratio"], 20.0, "2(c)")
    if baseline and "baseline" in next(iter(changed.values()))["runs"]:
        brows = per_object(changed, "baseline", "cat")
        md.append(f"The same pairs with the engine of {baseline} (before the fixes below):\n")
        md += bucket_table(brows, "cat")
        md.append("")

vml = load("vmlinux.json")
if vml:
    r = per_object(vml, "diff", "cat")[0]
    with open(os.path.join(res, "vmlinux.changed")) as f:
        big = f.read().strip()
    with open(os.path.join(res, "vmlinux.status")) as f:
        _, vst, vout = f.read().split()
    r["out"] = int(vout)
    md.append("### (d) vmlinux.o\n")
    md.append(f"`ksplice-obj diff` of vmlinux.o itself ({size(r['size'])}, every object of "
              f"vmlinux linked with `ld -r`) against vmlinux.o relinked with {big} "
              "replaced by its changed object of (c): the engine's largest input "
              "(Makefile.ksplice itself never diffs it).\n")
    md.append("| engine | diff: median (min-max) ms | cat ms | ratio | peak memory MiB | exit |")
    md.append("|---|---|---|---|---|---|")
    md.append(f"| this commit | {ms(r['t'])} ({trange(wall(r['runs']['diff']))}) | {ms(r['f'])} | "
              f"{ratio(r['ratio'])} | {mib(r['rss'])} | {vst} |")
    if "baseline" in r["runs"]:
        b = per_object(vml, "baseline", "cat")[0]
        md.append(f"| {baseline} | {ms(b['t'])} ({trange(wall(b['runs']['baseline']))}) | {ms(b['f'])} | "
                  f"{ratio(b['ratio'])} | {mib(b['rss'])} | |")
    md.append("")
    plot_rows = plot_rows + [dict(r, id="vmlinux.o")]

comb = load("combine.json")
if comb:
    md.append("`ksplice-obj combine vmlinux.o.KSPLICE` with the markers of all the "
              "parts of vmlinux (as the diff pass runs it), against its floor: reading "
              "the one changed part's new and old code (`cat`), or for several changed "
              "parts (those of (c) and of the e2e cases) the two `ld -r` it runs:\n")
    md.append("| changed parts | combine: median (min-max) ms | floor ms | ratio | peak memory MiB |")
    md.append("|---|---|---|---|---|")
    for oid, d in comb.items():
        r = d["runs"]
        md.append(f"| {oid} | {ms(med(wall(r['combine'])))} ({trange(wall(r['combine']))}) | "
                  f"{ms(med(wall(r['floor'])))} | {ratio(med(wall(r['combine'])) / med(wall(r['floor'])))} | "
                  f"{mib(rss(r['combine']))} |")
    md.append("")

# Growth with size. Every run has a fixed part (starting the process,
# reading System.map, writing four files): t0, the median time of the
# objects under 4 KiB. The rest, t - t0, should grow at most linearly with
# the input. The engine works per ELF entry (section, symbol, relocation),
# not per byte (a large object can be mostly data it copies): slopes of
# log(t - t0) on log(entries) and on log(size), least squares, over the
# objects of at least 1000 entries, vmlinux.o included.
def slope(pts):
    if len(pts) < 3:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    return sxy / sxx if sxx else None


gb = g_n = None
entries = {}
if os.path.exists(os.path.join(res, "elfstats.tsv")):
    with open(os.path.join(res, "elfstats.tsv")) as f:
        for line in f:
            p = line.split()
            entries[p[0]] = sum(int(x) for x in p[1:4])
ENTRY_BUCKETS = [(0, 100), (100, 300), (300, 1000), (1000, 3000), (3000, 30000), (30000, 1 << 40)]
have_base = bool(changed) and "baseline" in next(iter(changed.values()))["runs"]
if plot_rows:
    for r in plot_rows:
        r["n"] = entries.get(r["id"], 0)
        if have_base:
            src = vml if r["id"] == "vmlinux.o" else changed
            r["b"] = med(wall(src[r["id"]]["runs"]["baseline"]))
    small = [r for r in plot_rows if r["size"] < 4 << 10]
    t0 = med([r["t"] for r in small]) if small else 0.0
    b0 = med([r["b"] for r in small]) if small and have_base else 0.0
    md.append("### Engine time against object size\n")
    md.append("![engine time against object size](docs/bench-engine.svg)\n")
    md.append(f"Every run has a fixed part, whatever the object (starting the process, reading "
              f"System.map, writing four files): {ms(t0)} ms here, the median of the objects under "
              "4 KiB. The rest grows with what the engine works on, the ELF entries of the object "
              "(sections + symbols + relocations), more than with its bytes (a large object can be "
              "mostly data, copied as is; kernel/printk/printk.o is):\n")
    hdr = "| ELF entries | objects | median entries | median size | median time ms | (time - fixed part) per 1000 entries ms |"
    sep = "|---|---|---|---|---|---|"
    if have_base:
        hdr += f" the same, engine of {baseline} |"
        sep += "---|"
    md.append(hdr)
    md.append(sep)
    for lo, hi in ENTRY_BUCKETS:
        b = [r for r in plot_rows if lo <= r["n"] < hi]
        if not b:
            continue
        name = f"{lo}-{hi - 1}" if hi < 1 << 40 else f">= {lo}"
        line = (f"| {name} | {len(b)} | {med([r['n'] for r in b]):.0f} | {size(med([r['size'] for r in b]))} | "
                f"{ms(med([r['t'] for r in b]))} | {med([(r['t'] - t0) / r['n'] * 1e3 for r in b]) * 1e3:.2f} |")
        if have_base:
            line += f" {med([(r['b'] - b0) / r['n'] * 1e3 for r in b]) * 1e3:.2f} |"
        md.append(line)
    md.append("")
    large = [r for r in plot_rows if r["n"] >= 1000 and r["t"] > t0]
    g_n = slope([(math.log(r["n"]), math.log(r["t"] - t0)) for r in large])
    g_s = slope([(math.log(r["size"]), math.log(r["t"] - t0)) for r in large])
    line = (f"Least-squares slope of log(time - fixed part) over the {len(large)} objects of 1000 "
            "entries and more, vmlinux.o included (1 is linear growth): ")
    if g_n is not None:
        line += f"on log(entries) **{g_n:.2f}**, on log(size) {g_s:.2f}"
    if have_base:
        bl = [r for r in plot_rows if r["n"] >= 1000 and r["b"] > b0]
        gb = slope([(math.log(r["n"]), math.log(r["b"] - b0)) for r in bl])
        if gb is not None:
            line += f"; the engine of {baseline}: {gb:.2f} on log(entries)"
    md.append(line + ".\n")
    if g_n is not None:
        aim("engine time growth (slope of log(time - fixed part) on log(ELF entries))", g_n, 1.0,
            "2(c), 2(d)")
        aims[-1] = (aims[-1][0], f"{g_n:.2f}", "1.00", aims[-1][3], aims[-1][4])
    if g_s is not None:
        aim("the same on log(object size)", g_s, 1.0, "2(c), 2(d)")
        aims[-1] = (aims[-1][0], f"{g_s:.2f}", "1.00", aims[-1][3], aims[-1][4])

    # The plot: time against size, and against ELF entries.
    dat = os.path.join(res, "plot.dat")
    with open(dat, "w") as f:
        for r in plot_rows:
            f.write(f"{r['size']} {r['t'] * 1000} {r['f'] * 1000} {r['n']} "
                    f"{r.get('b', 0) * 1000} {r['id']}\n")
    vm_row = next((r for r in plot_rows if r["id"] == "vmlinux.o"), max(plot_rows, key=lambda r: r["n"]))
    base_plot = lambda xcol: (f'"{dat}" using {xcol}:5 with points pt 2 ps 0.45 lc rgb "#d62728" '
                              f'title "diff, engine of {baseline}", ') if have_base else ""
    gp = f"""
set terminal svg size 1100,520 dynamic font "sans,11" background "#ffffff"
set output "{out_svg}"
set multiplot layout 1,2 title "ksplice-obj diff, one function changed, against reading both files ({machine['date']}, {machine['reps']} runs each, medians)"
set logscale xy
set grid
set key top left
set ylabel "wall time (ms)"
fixed = {t0 * 1000}
set xlabel "object size (bytes)"
set format x "%.0s%cB"
lin_s(x) = fixed + ({vm_row['t'] * 1000} - fixed) * x / {vm_row['size']}
plot "{dat}" using 1:2 with points pt 7 ps 0.45 lc rgb "#1f77b4" title "ksplice-obj diff", \
     "{dat}" using 1:3 with points pt 6 ps 0.35 lc rgb "#999999" title "floor: cat of both files", \
     {base_plot(1)}lin_s(x) with lines dt 2 lc rgb "#2ca02c" title "fixed part + linear, through vmlinux.o"
set xlabel "ELF entries (sections + symbols + relocations)"
set format x "%.0s%c"
lin_n(x) = fixed + ({vm_row['t'] * 1000} - fixed) * x / {max(vm_row['n'], 1)}
plot "{dat}" using 4:2 with points pt 7 ps 0.45 lc rgb "#1f77b4" title "ksplice-obj diff", \
     "{dat}" using 4:3 with points pt 6 ps 0.35 lc rgb "#999999" title "floor: cat of both files", \
     {base_plot(4)}lin_n(x) with lines dt 2 lc rgb "#2ca02c" title "fixed part + linear, through vmlinux.o"
unset multiplot
"""
    subprocess.run(["gnuplot"], input=gp.encode(), check=True)

# ------------------------------------------------------------------ 3. ksplice-create
def launch_result(name):
    path = os.path.join(res, f"item3.{name}")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        w, u, s, m, st = f.read().split()
    return float(w), float(u) + float(s), int(m), int(st)


def stages(name):
    out = []
    path = os.path.join(res, f"item3.{name}.log")
    cur = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("[") and "]" in line and line.endswith("..."):
                cur = line.split("]", 1)[1].strip().rstrip(".")
            elif line.startswith("done in ") and cur:
                out.append((cur, float(line.split()[2])))
                cur = None
    return out


fb, pb, fr, up = (launch_result(n) for n in ("floor-build", "prebuild", "floor-rebuild", "update"))
if fr and up:
    md.append("## 3. ksplice-create on the test kernel\n")
    md.append("A copy of the test kernel's source, configuration and System.map; the "
              "patch `bench/one-function.patch` (one line more in `version_proc_show`). "
              "The floor is what building the kernel costs anyway: a plain build of the same "
              "targets (`vmlinux_o modules`) with the same flags (`KCFLAGS=-ffunction-sections "
              "-fdata-sections`) from scratch, then `make` again after applying the patch (the "
              f"changed file rebuilt and relinked). `-j{machine['cores']}`; one run of each "
              "(a build takes minutes).\n")
    md.append("| step | wall s | CPU s | peak memory MiB |")
    md.append("|---|---|---|---|")
    if fb and pb:
        md.append(f"| floor: plain build from scratch | {secs(fb[0])} | {secs(fb[1])} | {mib(fb[2])} |")
        md.append(f"| ksplice-create --prebuild (from scratch) | {secs(pb[0])} | {secs(pb[1])} | {mib(pb[2])} |")
        for st, t in stages("prebuild"):
            md.append(f"| &nbsp;&nbsp;stage: {st} | {secs(t)} | | |")
    md.append(f"| floor: make after the patch | {secs(fr[0])} | {secs(fr[1])} | {mib(fr[2])} |")
    md.append(f"| ksplice-create --skip-prebuild --patch | {secs(up[0])} | {secs(up[1])} | {mib(up[2])} |")
    for st, t in stages("update"):
        md.append(f"| &nbsp;&nbsp;stage: {st} | {secs(t)} | | |")
    md.append("")
    md.append("| ratio | wall | CPU |")
    md.append("|---|---|---|")
    if fb and pb:
        md.append(f"| prebuild / plain build | {ratio(pb[0] / fb[0])} | {ratio(pb[1] / fb[1])} |")
    md.append(f"| update / make after the patch | {ratio(up[0] / fr[0])} | {ratio(up[1] / fr[1])} |")
    if fb and pb:
        tot = (pb[0] + up[0]) / (fb[0] + fr[0])
        md.append(f"| **whole: prebuild + update / plain build + make after the patch** | "
                  f"**{ratio(tot)}** | {ratio((pb[1] + up[1]) / (fb[1] + fr[1]))} |")
        tot_cpu = (pb[1] + up[1]) / (fb[1] + fr[1])
        aim("ksplice-create (prebuild + update), against a plain build + the rebuild "
            "(the worse of the wall and CPU ratios)", max(tot, tot_cpu), 1.15, "3")
    else:
        md.append("\n(--quick: the full builds were not run; the whole-run ratio needs them.)")
    md.append("")
    rj = os.path.join(res, "item3.report.json")
    if os.path.exists(rj):
        with open(rj) as f:
            rep = json.load(f)
        names = sorted({e["name"] for o in rep.get("objects", []) for e in o.get("patched_functions", [])})
        md.append(f"The update replaces: {', '.join(names) or 'nothing'}.\n")
elif quick:
    md.append("## 3. ksplice-create on the test kernel\n\nNot measured: `--quick` runs it only "
              "after a full run has left its build trees.\n")

# ------------------------------------------------------------------ 4. in the VM
def item4():
    path = os.path.join(res, "item4.txt")
    if not os.path.exists(path):
        return None
    data, loads, accel = {}, {}, "0"
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 5 and w[2] == "timing:" and w[3] == "prepare":
                data.setdefault((w[0], w[1], "run-pre matching (prepare)"), []).append(int(w[4]))
            elif len(w) >= 9 and w[2] == "timing:" and w[3] == "stop_machine":
                data.setdefault((w[0], w[1], "stop_machine, whole call"), []).append(int(w[4]))
                data.setdefault((w[0], w[1], "work while stopped"), []).append(int(w[8]))
            elif len(w) >= 3 and w[0] == "load":
                loads[w[1]] = " ".join(w[2:5])
            elif w and w[0] == "accel":
                accel = w[1].split("=")[-1]
    return data, loads, accel


vm4 = item4()
if vm4:
    data, loads, accel = vm4
    how = "KVM" if accel == "1" else "qemu's software emulation (TCG, no KVM), 2 vCPUs"
    md.append("## 4. The update in the VM\n")
    md.append("The update of item 3 in the test kernel, booted in qemu "
              f"({how}, 256 MiB, busybox initramfs): `ksplice-apply` then `ksplice-undo`, "
              "repeatedly, first idle, then with both vCPUs busy (two shell loops and a loop "
              "starting processes). The figures are the core's own (`timing:` lines of its "
              "trace, `ktime`): run-pre matching with the new code's relocations (`prepare`), "
              "the `stop_machine` call as its caller sees it (waking the stopper threads, "
              "stopping every CPU, the work, restarting: the pause of the machine), and the "
              "work done while stopped (stack check, checks, writing the jumps). Per-update "
              "figures, not ratios: the floor of a pause is the emulated machine's own.\n")
    md.append("Under load, the whole call also waits for the stopper threads to preempt the busy "
              "loops on the emulated CPUs (the CPUs already stopped spin meanwhile, the others "
              "run); the work while stopped stays the same.\n")
    md.append("| load | operation | measure | median µs | min-max µs | runs |")
    md.append("|---|---|---|---|---|---|")
    for (mode, op, what), xs in sorted(data.items()):
        us = [x / 1000 for x in xs]
        md.append(f"| {mode} | {op} | {what} | {med(us):.0f} | {min(us):.0f}-{max(us):.0f} | {len(us)} |")
    md.append("")
    for mode, la in sorted(loads.items()):
        md.append(f"Load average in the VM after the {mode} runs: {la}.")
    md.append("")
    pause = data.get(("idle", "apply", "stop_machine, whole call"))
    if pause:
        aim("stop_machine pause of apply, idle (median), in ms against 1 ms "
            f"({'KVM' if accel == '1' else 'emulated CPU'})", med(pause) / 1e6, 1.0, "4")
    pause = data.get(("idle", "reverse", "stop_machine, whole call"))
    if pause:
        aim("stop_machine pause of reverse, idle (median), in ms against 1 ms "
            f"({'KVM' if accel == '1' else 'emulated CPU'})", med(pause) / 1e6, 1.0, "4")

# ------------------------------------------------------------------ aims
amd = ["## Aims\n", "| aim | measured | target | | item |", "|---|---|---|---|---|"]
for a in aims:
    amd.append(f"| {a[0]} | {a[1]} | {a[2]} | {a[3]} | {a[4]} |")
amd.append("")
md[AIMS_AT:AIMS_AT] = amd

# The before/after table of the notes, from the baseline columns.
fixes = []
if have_base and changed and vml:
    def row(label, before, after):
        fixes.append(f"| {label} | {before} | {after} |")
    v = vml["vmlinux.o"]["runs"]
    row("vmlinux.o with one function changed: wall, median", f"{med(wall(v['baseline'])):.2f} s",
        f"{med(wall(v['diff'])):.2f} s")
    row("the same: CPU", f"{med(cpu(v['baseline'])):.2f} s", f"{med(cpu(v['diff'])):.2f} s")
    row("the same: peak memory", f"{mib(rss(v['baseline']))} MiB", f"{mib(rss(v['diff']))} MiB")
    p = changed.get("kernel/printk/printk.o")
    if p:
        p = p["runs"]
        row("kernel/printk/printk.o (532 KiB) with one function changed: wall / CPU",
            f"{ms(med(wall(p['baseline'])))} / {ms(med(cpu(p['baseline'])))} ms",
            f"{ms(med(wall(p['diff'])))} / {ms(med(cpu(p['diff'])))} ms")
    allb = [med(wall(d["runs"]["baseline"])) for d in changed.values()]
    alln = [med(wall(d["runs"]["diff"])) for d in changed.values()]
    row(f"the {len(alln)} objects of (c): median wall", f"{ms(med(allb))} ms", f"{ms(med(alln))} ms")
    allb = [med(cpu(d["runs"]["baseline"])) for d in changed.values()]
    alln = [med(cpu(d["runs"]["diff"])) for d in changed.values()]
    row("the same: median CPU", f"{ms(med(allb))} ms", f"{ms(med(alln))} ms")
    allb = [rss(d["runs"]["baseline"]) for d in changed.values()]
    alln = [rss(d["runs"]["diff"]) for d in changed.values()]
    row("the same: median peak memory", f"{mib(med(allb))} MiB", f"{mib(med(alln))} MiB")
    if ident and "baseline" in next(iter(ident.values()))["runs"]:
        bi = max(ident.values(), key=lambda d: d["size"])["runs"]
        row("the largest identical pair (2(a)): wall / CPU / peak memory",
            f"{ms(med(wall(bi['baseline'])))} / {ms(med(cpu(bi['baseline'])))} ms / {mib(rss(bi['baseline']))} MiB",
            f"{ms(med(wall(bi['diff'])))} / {ms(med(cpu(bi['diff'])))} ms / {mib(rss(bi['diff']))} MiB")
    if gb is not None and g_n is not None:
        row("growth: slope of log(time - fixed part) on log(ELF entries)", f"{gb:.2f}", f"{g_n:.2f}")
with open(notes_path) as f:
    # The notes read the engine's figures (item 2).
    notes = f.read().rstrip() + "\n" if changed else ""
notes = notes.replace("FIXES_TABLE", "\n".join(fixes) if fixes else
                      "| (run `bench/run --baseline=REV` for this table) | | |")
md.append(notes)

with open(out_md, "w") as f:
    f.write("\n".join(md))
