# Helpers of tests/e2e/run for the Debian-userland check: a minimal Debian
# bookworm root filesystem (debootstrap, built once and cached), made into
# an ext4 disk image with the tools installed as an administrator installs
# them (install.sh into /usr/local), booted with systemd as init.
# Sourced, not run.

# The packages of the cached root filesystem (and its cache key).
debian_suite=bookworm
debian_packages=systemd,systemd-sysv,udev,kmod,procps,iproute2

# debian_rootfs CACHE: the path of the cached root filesystem, built with
# debootstrap the first time (under a lock; a failed build leaves none).
debian_rootfs() {
	local cache=$1 key dir
	key=$(echo "$debian_suite minbase $debian_packages" | sha256sum | cut -c1-12)
	dir=$cache/debian-$key
	mkdir -p "$cache"
	(
		flock 8
		[ -f "$dir/.done" ] && exit 0
		command -v debootstrap > /dev/null || {
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > /dev/null
		} || exit 1
		rm -rf "$dir"
		mkdir -p "$dir"
		debootstrap --variant=minbase --include="$debian_packages" "$debian_suite" \
			"$dir/rootfs" http://deb.debian.org/debian > "$dir/debootstrap.log" 2>&1 || {
			tail -5 "$dir/debootstrap.log" >&2
			exit 1
		}
		touch "$dir/.done"
	) 8> "$cache/.debian.lock" || return 1
	echo "$dir/rootfs"
}

# debian_image ROOTFS DIR SETUP: copies ROOTFS to DIR/root, lets the
# function named SETUP (called with the new root) install what the check
# needs, and writes DIR/disk.img (ext4, the root's contents).
debian_image() {
	local rootfs=$1 dir=$2 setup=$3
	rm -rf "$dir"
	mkdir -p "$dir"
	cp -a "$rootfs" "$dir/root" || return 1
	echo ksplice-test > "$dir/root/etc/hostname"
	echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$dir/root/etc/fstab"
	# No login prompt needed.
	rm -f "$dir/root/etc/systemd/system/getty.target.wants/"*
	"$setup" "$dir/root" || return 1
	mkfs.ext4 -q -F -L root -d "$dir/root" "$dir/disk.img" 2G || return 1
	rm -rf "$dir/root"
}

# debian_boot KERNEL IMAGE LOG: boots KERNEL with IMAGE as its root disk
# (systemd as init) until the machine powers off; the console goes to LOG.
# Returns 124 when it did not power off in time.
debian_boot() {
	local kernel=$1 image=$2 log=$3
	local accel=()
	[ "${KSPLICE_VM_KVM:-0}" = 1 ] && accel=(-enable-kvm)
	timeout "${KSPLICE_DEBIAN_TIMEOUT:-600}" qemu-system-x86_64 "${accel[@]}" -smp 2 -m 1024 \
		-nographic -no-reboot -kernel "$kernel" \
		-drive "file=$image,if=virtio,format=raw" \
		-append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=1" \
		> "$log" 2>&1 < /dev/null
}
