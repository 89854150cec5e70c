# The smoke workload of the test bed (busybox sh, in the VM): processes,
# signals, pipes, files, /proc, loopback TCP and UDP (./ksplice-udp, when
# given: tests/e2e/udp.c), and a module loaded
# and unloaded when one is given (sh smoke.sh MODULE.ko). Run before an update
# is applied, while it is, and after it is undone; exits non-zero, naming
# the part that failed, when anything does not behave.
fail() { echo "smoke: $*"; exit 1; }

# Processes: a few hundred forks and execs.
i=0
while [ $i -lt 200 ]; do /bin/true || fail "exec"; i=$((i + 1)); done
[ "$(seq 1 50 | while read -r n; do echo $((n * 2)); done | tail -1)" = 100 ] || fail "subshells"

# Signals: a trapped signal reaches a sleeping child, which exits on it.
(trap 'exit 7' USR1; while :; do sleep 1; done) &
pid=$!
sleep 1
kill -USR1 $pid || fail "kill"
wait $pid
[ $? = 7 ] || fail "signal not delivered"

# Pipes and FIFOs.
[ "$(dd if=/dev/zero bs=4096 count=256 2>/dev/null | md5sum | cut -c1-8)" = b6d81b36 ] || fail "pipe"
rm -f /tmp/smoke.fifo && mkfifo /tmp/smoke.fifo || fail "mkfifo"
(echo through-fifo > /tmp/smoke.fifo) &
[ "$(cat /tmp/smoke.fifo)" = through-fifo ] || fail "fifo"
wait
rm -f /tmp/smoke.fifo

# Files: write, read back, rename, remove.
# (Not /dev/urandom: the first reader makes the kernel's crng ready, and
# the 6.12 realfix kernel under qemu's emulation was seen to Oops, before
# any update, on the static-key flip that follows, inside that reader.)
seq 1 60000 > /tmp/smoke.a || fail "write"
sum=$(md5sum < /tmp/smoke.a)
mv /tmp/smoke.a /tmp/smoke.b && [ "$(md5sum < /tmp/smoke.b)" = "$sum" ] || fail "read back"
rm /tmp/smoke.b && [ ! -e /tmp/smoke.b ] || fail "remove"

# /proc: every process's status, stat and maps; the system files.
for f in /proc/[0-9]*/status /proc/[0-9]*/stat /proc/[0-9]*/maps; do cat "$f" > /dev/null 2>&1; done
for f in meminfo stat loadavg uptime version cpuinfo interrupts softirqs mounts filesystems; do
	[ -r /proc/$f ] && { cat /proc/$f > /dev/null || fail "/proc/$f"; }
done

# Loopback TCP and UDP.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
if [ -d /proc/sys/net/ipv4 ]; then
	# A port of this run: the last run's may still be in TIME_WAIT.
	port=$((20000 + $$ % 20000))
	rm -f /tmp/smoke.tcp /tmp/smoke.in
	# The server's stdin stays open (a fifo held by fd 3) until the data
	# is in: a server whose stdin is at EOF may quit before it reads.
	mkfifo /tmp/smoke.in
	nc -l -p $port < /tmp/smoke.in > /tmp/smoke.tcp &
	srv=$!
	exec 3> /tmp/smoke.in
	# The client connects once the server listens (state 0A in
	# /proc/net/tcp or tcp6: nc may listen on IPv6's any address).
	hex=$(printf '%04X' $port)
	t=0
	until cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":$hex [0-9A-F]*:0000 0A"; do
		[ $t -lt 100 ] || fail "tcp server does not listen on port $port"
		sleep 0.1; t=$((t + 1))
	done
	echo over-tcp | nc -w 5 127.0.0.1 $port || fail "tcp connect to port $port"
	t=0
	until [ "$(cat /tmp/smoke.tcp)" = over-tcp ]; do
		[ $t -lt 50 ] || fail "tcp over loopback: the server got '$(cat /tmp/smoke.tcp)'"
		sleep 0.1; t=$((t + 1))
	done
	exec 3>&-
	kill $srv 2>/dev/null
	wait $srv 2>/dev/null
	rm -f /tmp/smoke.in
	if [ -x ./ksplice-udp ]; then ./ksplice-udp || fail "udp over loopback"; fi
	rm -f /tmp/smoke.tcp
fi

# A module loaded and unloaded.
if [ -n "${1:-}" ]; then
	insmod "$1" || fail "insmod $1"
	m=$(basename "$1" .ko | tr - _)
	rmmod "$m" || fail "rmmod $m"
fi
exit 0
