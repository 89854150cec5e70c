# The corpus part of tests/e2e/run (sourced by it): a suite of real fixes
# (../shared/real-fixes/<base>/, one directory per fix with patch, README,
# files) run the way a distribution ships them. For each fix: ksplice-create,
# then in the VM the smoke workload, apply, the workload, ksplice-view, undo,
# the workload again and the kernel log. One line per fix:
#   PASS name[: note]          applied and undone cleanly (or nothing to patch)
#   REFUSED name: reason       the tool refused, and the refusal is right
#   FAIL name: stage: cause
# Then every fix that applied is applied again, one update after another on
# one running kernel, and undone in reverse order (the stacked run). The
# figures go into a table: $KSPLICE_E2E_CORPUS_MD (default CORPUS.md), one
# section per suite.
#
# Uses run's globals (work, tools, plain, root, create, smoke_files,
# smoke_module, the pass/fail counters) and helpers (run_create, vm_run,
# insmod_line, tree_intact).

corpus_rows=()       # one markdown table row per fix
corpus_applied=()    # "kid tarball name" of every fix that applied
corpus_mods=()       # the module targets of the current fix
corpus_all_mods=()   # those of every fix that applied
corpus_start=$(date +%s)

refuse() { echo "REFUSED $1: $2"; passed=$((passed + 1)); }

# readme_field DIR FIELD: the value of "FIELD: value" in the fix's README.
readme_field() {
	tr '\n' ' ' < "$1/README" | sed -n "s|.*$2: \([A-Za-z0-9_()]*\).*|\1|p"
}

# fix_kind DIR: the kind of change, from the fix's README.
fix_kind() {
	local d=$1 k=()
	[ "$(readme_field "$d" 'Struct layout change')" = yes ] && k+=("struct layout")
	[ "$(readme_field "$d" 'Global/static variable initial value change')" = yes ] && k+=("data initializer")
	[ "$(readme_field "$d" 'Touches a header')" = yes ] && k+=("header")
	[ "$(readme_field "$d" 'Touches an inline function')" = yes ] && k+=("inline")
	case "$(readme_field "$d" 'Adds function(s)')" in no | "") ;; *) k+=("new function") ;; esac
	grep -qi 'signature' "$d/README" && k+=("signature")
	grep -q '__init' "$d/README" && k+=("__init")
	grep -q 'noinstr' "$d/README" && k+=("noinstr")
	[ ${#k[@]} -eq 0 ] && k=("code only")
	local IFS=,
	echo "${k[*]}" | sed 's/,/, /g'
}

# corpus_row NAME DIR OUTCOME REASON CREATE_S OBJECTS FUNCTIONS APPLY
corpus_row() {
	local files
	files=$(tr '\n' ' ' < "$2/files" 2>/dev/null | sed 's/ $//')
	corpus_rows+=("| $(basename "$1") | $files | $(fix_kind "$2") | $3 | ${4//|/\\|} | $5 | $6 | $7 | $8 |")
}

# create_refusal NAME DIR OUT: the tool's one-line reason when its refusal
# is the right outcome for this fix, else nothing.
create_refusal() {
	local line
	# A layout refusal is right when the fix changes a structure's layout.
	if line=$(grep -m1 'changed layout' "$3"); then
		[ "$(readme_field "$2" 'Struct layout change')" = yes ] && echo "$line"
		return 0
	fi
	# A writable-data refusal is right when the fix changes an initial value.
	if line=$(grep -m1 'writable data .* changed' "$3"); then
		[ "$(readme_field "$2" 'Global/static variable initial value change')" = yes ] && echo "$line"
	fi
	return 0
}

# target_modules TARBALL KID: the .ko files (of the plain build) of the
# update's targets that are loadable modules: they are loaded in the VM
# before the update is applied, as on a machine that uses them.
target_modules() {
	local t f b
	for t in $(tar -xzOf "$1" "ksplice-$2/contents" | awk '$1 == "change" && $2 != "vmlinux" {print $2}'); do
		while read -r f; do
			b=$(basename "$f" .ko)
			[ "${b//-/_}" = "$t" ] && { echo "$f"; break; }
		done < <(find "$plain" -name '*.ko')
	done
}

# undo_line KID STEP: the VM step that undoes an update, with the tool's reason.
undo_line() {
	echo "ksplice-undo $1 2> /tmp/undo.err || { cat /tmp/undo.err; echo \"KSPLICE-REASON \$(head -1 /tmp/undo.err)\"; step '$2'; exit 1; }"
}

# vm_failure RC LOG VMLOG: "stage: cause" of a VM run that failed (LOG is
# VMLOG without carriage returns).
vm_failure() {
	local step reason
	step=$(sed -n 's/^KSPLICE-STEP //p' "$2" | tail -1)
	reason=$(sed -n 's/^KSPLICE-REASON //p' "$2" | tail -1)
	[ -z "$reason" ] && reason=$(grep -a '^smoke: ' "$2" | tail -1)
	case $1 in
	124) echo "vm: the VM did not finish (timeout)" ;;
	125) echo "kernel log: Oops, BUG or WARNING (see $3)" ;;
	*) echo "${step:-vm}: ${reason:-$(grep -av '^\s*$' "$2" | grep -v 'KSPLICE-\|^reboot:' | tail -1)}" ;;
	esac
}

# corpus_vm_script NAME DIR TARBALL KID: the VM steps of one fix.
corpus_vm_script() {
	local dir=$2 tgz=$3 kid=$4 m
	echo 'step() { echo "KSPLICE-STEP $*"; }'
	for m in "${corpus_mods[@]}"; do insmod_line "$m"; done
	if [ -f "$dir/modules" ]; then
		while read -r m; do [ -n "$m" ] && insmod_line "$m"; done < "$dir/modules"
	fi
	[ -f "$dir/check-before" ] && echo "sh ./check-before || { step check-before; exit 1; }"
	echo "sh ./smoke.sh $smoke_module || { step smoke-before; exit 1; }"
	cat <<EOF
t0=\$(cut -d' ' -f1 /proc/uptime)
if ! ksplice-apply --debugfile=/tmp/apply.debug ./$(basename "$tgz") 2> /tmp/apply.err; then
	cat /tmp/apply.err
	echo "KSPLICE-REASON \$(grep -m1 -A1 '^ksplice-apply' /tmp/apply.err | tr '\n' ' ')"
	awk '/^Process /{if (l) print l; l=\$2" "\$4} /^  /{l=l" "\$1} END{if (l) print l}' /tmp/apply.err |
		tr -d '()' | sed 's/^/KSPLICE-BUSY /'
	step apply; exit 1
fi
t1=\$(cut -d' ' -f1 /proc/uptime)
echo "KSPLICE-TIME apply \$(echo "\$t0 \$t1" | awk '{printf "%d", (\$2 - \$1) * 1000}') ms"
echo "KSPLICE-TIME pause \$(sed -n 's/.*timing: stop_machine \([0-9]*\) ns.*/\1/p' /tmp/apply.debug | tail -1)"
ksplice-view | grep -q '^$kid' || { step view; exit 1; }
EOF
	[ -f "$dir/check-loaded" ] && echo "sh ./check-loaded || { step check-loaded; exit 1; }"
	echo "sh ./smoke.sh $smoke_module || { step smoke-loaded; exit 1; }"
	undo_line "$kid" undo
	[ -f "$dir/check-reverted" ] && echo "sh ./check-reverted || { step check-reverted; exit 1; }"
	echo "sh ./smoke.sh $smoke_module || { step smoke-reverted; exit 1; }"
	echo "! grep -q '^ksplice_$kid' /proc/modules || { step 'modules left after undo'; exit 1; }"
	echo 'exit 0'
}

# vm_files [DIR]: the files a VM run needs besides its updates (and those of
# the fix in DIR).
vm_files() {
	local dir=${1:-} m
	printf '%s\n' "$tools/ksplice-apply" "$tools/ksplice-undo" "$tools/ksplice-view" "${smoke_files[@]}"
	[ -n "$dir" ] || return 0
	for m in check-before check-loaded check-reverted; do [ -f "$dir/$m" ] && echo "$dir/$m"; done
	if [ -f "$dir/modules" ]; then
		while read -r m; do [ -n "$m" ] && echo "$plain/$m"; done < "$dir/modules"
	fi
}

# busy_refusal LOG CHANGED: the reason when the apply aborted with code_busy
# and every function the conflicts name is one the update changes (tasks
# sleeping in replaced code: the update cannot be applied while they do).
busy_refusal() {
	local log=$1 changed=" $2 " line f ok=1 who=()
	grep -q '^KSPLICE-BUSY ' "$log" || return 0
	while read -r line; do
		set -- $line
		[ $# -ge 3 ] || { ok=; continue; }
		local fns=()
		for f in "${@:3}"; do
			f=${f%%<*}
			f=${f%%+*}
			fns+=("$f")
			case "$changed" in *" $f "*) ;; *) ok= ;; esac
		done
		who+=("$1 (pid $2) in ${fns[*]}")
	done < <(sed -n 's/^KSPLICE-BUSY //p' "$log")
	[ ${#who[@]} -gt 0 ] && [ -n "$ok" ] || return 0
	local IFS=';'
	echo "code_busy: tasks sleep in functions the fix changes: ${who[*]}" | sed 's/;/; /g'
}

# corpus_case NAME DIR N: one fix of the suite.
corpus_case() {
	local name=$1 dir=$2 n=$3 kid=e2e$3 start rc secs
	start=$(date +%s)
	run_create "$name" --id="$kid" --patch="$dir/patch"
	rc=$?
	secs=$(( $(date +%s) - start ))
	local out="$work/$name.out" tgz="$work/$name/ksplice-$kid.tar.gz"
	say "$name: ksplice-create took $secs s"
	if ! tree_intact; then
		fail "$name" "create: the source tree differs after ksplice-create"
		corpus_row "$name" "$dir" FAIL "the source tree differs after ksplice-create" "$secs" - - -
		return
	fi
	if [ "$rc" -eq 66 ]; then
		local why
		why=$(grep -m1 'nothing to patch' "$out" | sed 's/^ksplice-create: //')
		pass "$name: ${why:-nothing to patch at run time}"
		corpus_row "$name" "$dir" "PASS (nothing to patch)" "${why:-No changes detected}" "$secs" 0 0 -
		return
	fi
	if [ "$rc" -ne 0 ]; then
		local why line
		line=$(grep -v '^\[\|done in\|^  [A-Z]' "$out" | tail -1)
		why=$(create_refusal "$name" "$dir" "$out")
		if [ -n "$why" ]; then
			refuse "$name" "$why"
			corpus_row "$name" "$dir" REFUSED "$why" "$secs" - - -
		else
			fail "$name" "create: ksplice-create exited $rc: $line"
			corpus_row "$name" "$dir" FAIL "create: $line" "$secs" - - -
		fi
		return
	fi
	local summary objects functions data
	summary=$(tar -xzOf "$tgz" "ksplice-$kid/report.json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
objs = [o for o in r["objects"] if o.get("patched_functions") or o.get("new_functions")
        or o.get("patched_data") or o.get("rewritten_data") or o.get("new_data")]
fns = sorted({e["name"] for o in r["objects"] for k in ("patched_functions", "new_functions")
              for e in o.get(k, []) if not e["name"].startswith(".altinstr_aux<")})
data = sorted({e["name"] for o in r["objects"] for k in ("patched_data", "rewritten_data")
               for e in o.get(k, [])})
print(len(objs))
print(" ".join(fns))
print(" ".join(data))')
	objects=$(sed -n 1p <<< "$summary")
	functions=$(sed -n 2p <<< "$summary")
	data=$(sed -n 3p <<< "$summary")
	say "$name: changed functions: $functions"
	mapfile -t corpus_mods < <(target_modules "$tgz" "$kid")
	[ ${#corpus_mods[@]} -gt 0 ] && say "$name: module targets loaded first: ${corpus_mods[*]##*/}"
	corpus_vm_script "$name" "$dir" "$tgz" "$kid" > "$work/$name.vm.sh"
	local files=()
	mapfile -t files < <(vm_files "$dir")
	files+=("${corpus_mods[@]}")
	vm_run "$plain/arch/x86/boot/bzImage" "$work/$name.vm.log" "$work/$name.vm.sh" "$tgz" "${files[@]}"
	rc=$?
	local log="$work/$name.vm.clean" ms pause fcount
	tr -d '\r' < "$work/$name.vm.log" > "$log"
	ms=$(sed -n 's/^KSPLICE-TIME apply //p' "$log" | tail -1)
	pause=$(sed -n 's/^KSPLICE-TIME pause \([0-9][0-9]*\)$/\1/p' "$log" | tail -1)
	[ -n "$pause" ] && ms="$ms (pause $((pause / 1000)) µs)"
	fcount=$(wc -w <<< "$functions")
	# Data rewritten in place is named after the functions (not counted).
	[ -n "$data" ] && functions="${functions:+$functions }(data rewritten in place: $data)"
	case $rc in
	0)
		pass "$name"
		# ksplice-create's notes: boot-time functions not patched, noinstr ones.
		local notes
		notes=$(grep -o '^note: [^:]*: [^ ]* is [a-z-]*' "$out" | sed 's/^note: [^:]*: //' | paste -sd, - | sed 's/,/, /g')
		corpus_row "$name" "$dir" PASS "${notes:+note: $notes}" "$secs" "$objects" "$fcount: $functions" "${ms:--}"
		corpus_applied+=("$kid $tgz $name")
		corpus_all_mods+=("${corpus_mods[@]}")
		;;
	*)
		local why step
		why=$(busy_refusal "$log" "$functions")
		step=$(sed -n 's/^KSPLICE-STEP //p' "$log" | tail -1)
		if [ "$rc" -ne 125 ] && [ "$step" = apply ] && [ -n "$why" ]; then
			refuse "$name" "$why"
			corpus_row "$name" "$dir" REFUSED "$why" "$secs" "$objects" "$fcount: $functions" -
			return
		fi
		why=$(vm_failure "$rc" "$log" "$work/$name.vm.log")
		fail "$name" "$why"
		corpus_row "$name" "$dir" FAIL "$why" "$secs" "$objects" "$fcount: $functions" "${ms:--}"
		;;
	esac
}

# corpus_stacked SUITE: every fix that applied, applied one after another on
# one running kernel, then undone in reverse order.
corpus_stacked() {
	local suite=$1 name="$1/stacked" e kid tgz files=() order=() k
	[ ${#corpus_applied[@]} -ge 2 ] || return 0
	{
		echo 'step() { echo "KSPLICE-STEP $*"; }'
		local m
		for m in $(printf '%s\n' "${corpus_all_mods[@]}" | sort -u); do
			insmod_line "$m"
			files+=("$m")
		done
		echo "sh ./smoke.sh $smoke_module || { step smoke-before; exit 1; }"
		for e in "${corpus_applied[@]}"; do
			read -r kid tgz _ <<< "$e"
			echo "ksplice-apply ./$(basename "$tgz") 2> /tmp/apply.err || { cat /tmp/apply.err; echo \"KSPLICE-REASON \$(head -1 /tmp/apply.err)\"; step 'apply $kid'; exit 1; }"
			order=("$kid" "${order[@]}")
			files+=("$tgz")
		done
		echo "[ \"\$(ksplice-view | grep -c '^e2e')\" = ${#corpus_applied[@]} ] || { step 'ksplice-view lists every update'; exit 1; }"
		echo "sh ./smoke.sh $smoke_module || { step smoke-loaded; exit 1; }"
		for k in "${order[@]}"; do
			undo_line "$k" "undo $k"
		done
		echo "sh ./smoke.sh $smoke_module || { step smoke-reverted; exit 1; }"
		echo "! grep -q '^ksplice_' /proc/modules || { step 'modules left after undo'; exit 1; }"
		echo 'exit 0'
	} > "$work/stacked.vm.sh"
	mapfile -t -O "${#files[@]}" files < <(vm_files)
	KSPLICE_VM_TIMEOUT=$((180 + 20 * ${#corpus_applied[@]})) \
		vm_run "$plain/arch/x86/boot/bzImage" "$work/stacked.vm.log" "$work/stacked.vm.sh" "${files[@]}"
	local rc=$? log="$work/stacked.vm.clean"
	tr -d '\r' < "$work/stacked.vm.log" > "$log"
	if [ "$rc" -eq 0 ]; then
		pass "$name: ${#corpus_applied[@]} updates applied in order and undone in reverse"
		corpus_stacked_line="${#corpus_applied[@]} updates applied one after another on one kernel, then undone in reverse order: PASS"
	else
		local why
		why=$(vm_failure "$rc" "$log" "$work/stacked.vm.log")
		fail "$name" "$why"
		corpus_stacked_line="FAIL: $why"
	fi
}

# corpus_write SUITE: the suite's section of the corpus table.
corpus_write() {
	local suite=$1 md=${KSPLICE_E2E_CORPUS_MD:-$root/CORPUS.md} sec="$work/corpus-section.md" r
	{
		echo "<!-- suite $suite -->"
		echo "## $suite"
		echo
		echo "Kernel \`$kernel_spec\`, config \`$(basename "$config_frag")\`, $(gcc -dumpfullversion 2>/dev/null | sed 's/^/gcc /'), $(date -u +%Y-%m-%d)."
		echo "Command: \`KSPLICE_E2E_CASES=$corpus_cmd_dir KSPLICE_E2E_INTERNAL=0 tests/e2e/run\` ($(( ($(date +%s) - corpus_start) / 60 )) min on $(nproc) cores, kernels cached)."
		local np nn nr nf
		np=$(printf '%s\n' "${corpus_rows[@]}" | grep -c '| PASS |')
		nn=$(printf '%s\n' "${corpus_rows[@]}" | grep -c '| PASS (nothing to patch) |')
		nr=$(printf '%s\n' "${corpus_rows[@]}" | grep -c '| REFUSED |')
		nf=$(printf '%s\n' "${corpus_rows[@]}" | grep -c '| FAIL |')
		echo "Result: $passed passed, $failed failed (the fixes and the stacked run)."
		echo "Fixes: $((np + nn)) PASS ($np applied and undone, $nn with nothing to patch at run time), $nr REFUSED, $nf FAIL."
		echo "Stacked run: ${corpus_stacked_line:-not run (fewer than two updates applied)}."
		echo
		echo "| fix | files | kind | outcome | reason | create (s) | objects changed | functions patched | apply (ms) |"
		echo "|---|---|---|---|---|---|---|---|---|"
		for r in "${corpus_rows[@]}"; do echo "$r"; done
		echo "<!-- end $suite -->"
	} > "$sec"
	[ -f "$md" ] || printf '# The real-fix corpus\n\nWritten by tests/e2e/run on a suite of real fixes (see README.md, "Real fixes").\n\n' > "$md"
	python3 - "$md" "$sec" "$suite" <<'EOF'
import re, sys
md, sec, suite = sys.argv[1:]
text, new = open(md).read(), open(sec).read()
pat = re.compile(r"<!-- suite %s -->.*?<!-- end %s -->\n" % (re.escape(suite), re.escape(suite)), re.S)
text = pat.sub(lambda m: new, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + new
open(md, "w").write(text)
EOF
	say "corpus table: $md (section $suite)"
}
