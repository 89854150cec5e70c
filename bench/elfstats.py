#!/usr/bin/python3
"""elfstats.py DIR LIST: for each object OBJ of LIST (relative to DIR),
prints `OBJ SECTIONS SYMBOLS RELOCATIONS` of DIR/OBJ.KSPLICE_pre: the
entries of an ELF relocatable object that the engine's work grows with."""
import os
import struct
import sys

d, lst = sys.argv[1], sys.argv[2]
for obj in open(lst).read().split():
    with open(os.path.join(d, obj + ".KSPLICE_pre"), "rb") as f:
        data = f.read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = syms = rels = 0
    for i in range(shnum):
        _name, typ, _fl, _a, _off, size, _l, _i, _al, es = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        if typ == 2:  # SHT_SYMTAB
            syms += size // (es or 24)
        elif typ == 4:  # SHT_RELA
            rels += size // (es or 24)
        elif typ not in (0, 3):  # not NULL or STRTAB
            secs += 1
    print(obj, secs, syms, rels)
