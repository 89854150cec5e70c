# Sourced by tests/e2e/run and bench/run: where a kernel config fragment is.
# The repository carries its own fragments (tests/e2e/configs); the
# workspace's ../shared/e2e, when present, takes precedence for the same name.

# config_dirs ROOT: the directories searched for a fragment, in order.
config_dirs() {
	local d
	for d in "$1/../shared/e2e" "$1/tests/e2e/configs"; do
		[ -d "$d" ] && echo "$d"
	done
}

# resolve_config ROOT FRAG: the absolute path of FRAG, a path or a name
# (kernel-distro.config, or just "distro"); empty when there is none.
resolve_config() {
	local root=$1 frag=$2 d f
	if [ -f "$frag" ]; then
		echo "$(cd "$(dirname "$frag")" && pwd)/$(basename "$frag")"
		return
	fi
	for d in $(config_dirs "$root"); do
		for f in "$d/$frag" "$d/kernel-$frag.config"; do
			if [ -f "$f" ]; then
				echo "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"
				return
			fi
		done
	done
}
