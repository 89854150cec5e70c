#!/usr/bin/env bash
# Installs ksplice-obj (also as ksplice-obj.pl, for an unmodified Perl
# ksplice-create), Makefile.ksplice and kmodsrc.
# Usage: ./install.sh [PREFIX]        (default /usr/local)
#   KSPLICE_OBJ_BIN=path installs that binary instead of building one.
#   PREFIX/bin/ksplice-obj
#   PREFIX/share/ksplice/{ksplice-obj.pl, Makefile.ksplice, kmodsrc/}
set -euo pipefail
cd "$(dirname "$0")"
prefix=${1:-/usr/local}
data="$prefix/share/ksplice"
bin=${KSPLICE_OBJ_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet --bin ksplice-obj
    bin=target/release/ksplice-obj
fi
install -d "$prefix/bin" "$data"
install -m 0755 "$bin" "$prefix/bin/ksplice-obj"
ln -sf "$prefix/bin/ksplice-obj" "$data/ksplice-obj.pl"
for item in Makefile.ksplice kmodsrc; do
    if [ -e "$item" ]; then
        rm -rf "${data:?}/$item"
        cp -R "$item" "$data/$item"
    else
        echo "install.sh: $item is not part of this version yet; skipped" >&2
    fi
done
echo "installed ksplice-obj in $prefix/bin and $data"
