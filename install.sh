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
#   PREFIX/share/man/man1/ksplice-{obj,create,apply,undo,view}.1 and their
#   completions in PREFIX/share/bash-completion/completions,
#   PREFIX/share/zsh/site-functions and PREFIX/share/fish/vendor_completions.d,
#   written by ksplice-gen-docs (built, not installed; with KSPLICE_BIN_DIR
#   and no ksplice-gen-docs there, they are skipped with a warning)
#   PREFIX/lib/systemd/system/ksplice.service: applies the updates installed
#   with ksplice-apply --install at boot (enable it: systemctl enable ksplice)
#   (the Perl tool's DATADIR is PREFIX/share/ksplice, its LIBEXECDIR
#   PREFIX/libexec/ksplice: see docs/MIGRATING.md)
#   DESTDIR=DIR installs under DIR (a package's or an image's root) what
#   runs from PREFIX.
set -euo pipefail
cd "$(dirname "$0")"
run_prefix=${1:-/usr/local}
prefix="${DESTDIR:-}$run_prefix"
data="$prefix/share/ksplice"
tools="ksplice-obj ksplice-create ksplice-apply ksplice-undo ksplice-view"
helpers="ksplice-kernel-utsname ksplice-inspect"
libexec="$prefix/libexec/ksplice"
bin_dir=${KSPLICE_BIN_DIR:-}
if [ -z "$bin_dir" ]; then
    # shellcheck disable=SC2046
    cargo build --release --quiet $(for t in $tools $helpers ksplice-gen-docs; do echo --bin "$t"; done)
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
ln -sf "$run_prefix/bin/ksplice-obj" "$data/ksplice-obj.pl"
install -m 0755 ksplice-cc "$data/ksplice-cc"
install -m 0755 scripts/depmod "$data/depmod"
install -m 0644 scripts/ksplice-objects.mk "$data/scripts/ksplice-objects.mk"
for item in Makefile.ksplice kmodsrc; do
    rm -rf "${data:?}/$item"
    cp -R "$item" "$data/$item"
done
# The boot-time unit, pointing at the tools where they run from.
units="$prefix/lib/systemd/system"
install -d "$units"
sed "s|@BINDIR@|$run_prefix/bin|g" systemd/ksplice.service.in > "$units/ksplice.service"
chmod 0644 "$units/ksplice.service"
# Man pages and completions, generated from the tools' command lines.
gen_docs="$bin_dir/ksplice-gen-docs"
docs="no man pages or completions"
if [ -x "$gen_docs" ]; then
    man1="$prefix/share/man/man1"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$gen_docs" man "$tmp/man" >/dev/null
    "$gen_docs" completions "$tmp/completions" >/dev/null
    install -d "$man1" "$prefix/share/bash-completion/completions" \
        "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
    install -m 0644 "$tmp"/man/*.1 "$man1/"
    install -m 0644 "$tmp"/completions/bash/* "$prefix/share/bash-completion/completions/"
    install -m 0644 "$tmp"/completions/zsh/* "$prefix/share/zsh/site-functions/"
    install -m 0644 "$tmp"/completions/fish/* "$prefix/share/fish/vendor_completions.d/"
    docs="man pages in $man1 and bash, zsh and fish completions"
else
    echo "install.sh: warning: $gen_docs not found: man pages and completions not installed" >&2
fi
echo "installed $tools in $prefix/bin, $helpers in $libexec, $data, $units/ksplice.service, and $docs"
