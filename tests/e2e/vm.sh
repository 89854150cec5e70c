# Helpers of tests/e2e/run for the VM steps: a busybox initramfs carrying a
# script and its files, booted with the test kernel under qemu.
# Sourced, not run.

# vm_run KERNEL LOG SCRIPT [FILE...]: boots KERNEL with an initramfs whose
# /init runs SCRIPT (with the FILEs in /payload); the console goes to LOG.
# Returns SCRIPT's exit status, 124 when the VM did not finish in time, and
# 125 when the kernel log shows an Oops, BUG or WARNING.
vm_run() {
	local kernel=$1 log=$2 script=$3
	shift 3
	local dir
	dir=$(mktemp -d)
	mkdir -p "$dir/root/bin" "$dir/root/proc" "$dir/root/sys" "$dir/root/dev" \
		"$dir/root/tmp" "$dir/root/payload"
	cp /usr/bin/busybox "$dir/root/bin/busybox"
	for a in $(/usr/bin/busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$dir/root/bin/$a"
	done
	local f
	for f in "$@"; do
		cp -a "$f" "$dir/root/payload/"
	done
	cp "$script" "$dir/root/payload/run.sh"
	cat > "$dir/root/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/payload
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
cd /payload
sh ./run.sh
echo "KSPLICE-VM-EXIT $?"
dmesg > /tmp/dmesg
if grep -qE 'Oops|BUG:|WARNING:' /tmp/dmesg; then
	echo "KSPLICE-VM-KERNEL-COMPLAINED"
	grep -E -A5 'Oops|BUG:|WARNING:' /tmp/dmesg
fi
reboot -f
INIT
	chmod +x "$dir/root/init"
	(cd "$dir/root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$dir/initrd.gz"
	# Software emulation by default: /dev/kvm may exist and not work (nested).
	# KSPLICE_VM_CPU picks qemu's CPU model, KSPLICE_VM_APPEND adds to the
	# kernel command line (for example a mitigation the default CPU lacks).
	local accel=()
	[ "${KSPLICE_VM_KVM:-0}" = 1 ] && accel=(-enable-kvm)
	[ -n "${KSPLICE_VM_CPU:-}" ] && accel+=(-cpu "$KSPLICE_VM_CPU")
	timeout "${KSPLICE_VM_TIMEOUT:-180}" qemu-system-x86_64 "${accel[@]}" -smp 2 -m 256 -nographic -no-reboot \
		-kernel "$kernel" -initrd "$dir/initrd.gz" \
		-append "console=ttyS0 panic=-1${KSPLICE_VM_APPEND:+ $KSPLICE_VM_APPEND}" > "$log" 2>&1 < /dev/null
	local qrc=$?
	rm -rf "$dir"
	[ "$qrc" -eq 124 ] && return 124
	grep -q KSPLICE-VM-KERNEL-COMPLAINED "$log" && return 125
	local rc
	rc=$(sed -n 's/^KSPLICE-VM-EXIT \([0-9]*\).*/\1/p' "$log" | tr -d '\r' | tail -1)
	[ -n "$rc" ] || return 124
	return "$rc"
}
