#!/usr/bin/env bash
# Installs the Ksplice tools, ksplice-obj also as ksplice-obj.pl (for an
# unmodified Perl ksplice-create), Makefile.ksplice and kmodsrc, and the
# helper programs the Perl ksplice-create runs from its LIBEXECDIR.
# Usage: ./install.sh [PREFIX]        (default /usr/local)
#   KSPLICE_BIN_DIR=DIR installs the binaries found in DIR instead of building.
#   PREFIX/bin/ksplice-{obj,create,apply,undo,view}
#   PREFIX/share/ksplice/{ksplice-obj.pl, Makefile.ksplice, ksplice-cc,
#                         depmod, scripts/ksplice-objects.mk, kmodsrc/}
#   PREFIX/libexec/ksplice/{ksplice-kernel-utsname, ksplice-inspect}
#   (the Perl tool's DATADIR is PREFIX/share/ksplice, its LIBEXECDIR
#   PREFIX/libexec/ksplice: see docs/MIGRATING.md)
set -euo pipefail
cd "$(dirname "$0")"
prefix=${1:-/usr/local}
data="$prefix/share/ksplice"
tools="ksplice-obj ksplice-create ksplice-apply ksplice-undo ksplice-view"
helpers="ksplice-kernel-utsname ksplice-inspect"
libexec="$prefix/libexec/ksplice"
bin_dir=${KSPLICE_BIN_DIR:-}
if [ -z "$bin_dir" ]; then
    # shellcheck disable=SC2046
    cargo build --release --quiet $(for t in $tools $helpers; do echo --bin "$t"; done)
    bin_dir=target/release
fi
for t in $tools $helpers; do
    [ -x "$bin_dir/$t" ] || { echo "install.sh: $bin_dir/$t: not built" >&2; exit 1; }
done
install -d "$prefix/bin" "$data/scripts" "$libexec"
for t in $tools; do
    install -m 0755 "$bin_dir/$t" "$prefix/bin/$t"
done
for t in $helpers; do
    install -m 0755 "$bin_dir/$t" "$libexec/$t"
done
ln -sf "$prefix/bin/ksplice-obj" "$data/ksplice-obj.pl"
install -m 0755 ksplice-cc "$data/ksplice-cc"
install -m 0755 scripts/depmod "$data/depmod"
install -m 0644 scripts/ksplice-objects.mk "$data/scripts/ksplice-objects.mk"
for item in Makefile.ksplice kmodsrc; do
    rm -rf "${data:?}/$item"
    cp -R "$item" "$data/$item"
done
echo "installed $tools in $prefix/bin, $helpers in $libexec, and $data"
