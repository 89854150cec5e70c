#!/usr/bin/env bash
# Installs ksplice-obj (also as ksplice-obj.pl, for an unmodified Perl
# ksplice-create), Makefile.ksplice and kmodsrc.
# Usage: ./install.sh [PREFIX]        (default /usr/local)
#   KSPLICE_OBJ_BIN / KSPLICE_CREATE_BIN install those binaries instead of building.
#   PREFIX/bin/ksplice-obj, PREFIX/bin/ksplice-create
#   PREFIX/share/ksplice/{ksplice-obj.pl, Makefile.ksplice, ksplice-cc,
#                         scripts/ksplice-objects.mk, kmodsrc/}
set -euo pipefail
cd "$(dirname "$0")"
prefix=${1:-/usr/local}
data="$prefix/share/ksplice"
obj_bin=${KSPLICE_OBJ_BIN:-}
create_bin=${KSPLICE_CREATE_BIN:-}
if [ -z "$obj_bin" ] || [ -z "$create_bin" ]; then
    cargo build --release --quiet --bin ksplice-obj --bin ksplice-create
fi
obj_bin=${obj_bin:-target/release/ksplice-obj}
create_bin=${create_bin:-target/release/ksplice-create}
install -d "$prefix/bin" "$data/scripts"
install -m 0755 "$obj_bin" "$prefix/bin/ksplice-obj"
install -m 0755 "$create_bin" "$prefix/bin/ksplice-create"
ln -sf "$prefix/bin/ksplice-obj" "$data/ksplice-obj.pl"
install -m 0755 ksplice-cc "$data/ksplice-cc"
install -m 0644 scripts/ksplice-objects.mk "$data/scripts/ksplice-objects.mk"
for item in Makefile.ksplice kmodsrc; do
    rm -rf "${data:?}/$item"
    cp -R "$item" "$data/$item"
done
echo "installed ksplice-obj in $prefix/bin and $data"
