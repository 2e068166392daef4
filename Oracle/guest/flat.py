#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Packs the guest program (a static riscv64 ELF linked with flat.ld) as a bFLT v4 file, the
format Linux 6.1 loads on a no-MMU riscv (fs/binfmt_flat.c).

The 64-byte header is big-endian: "bFLT", rev 4, entry, data_start, data_end, bss_end,
stack_size, reloc_start, reloc_count, flags, build_date, filler. The text segment is the
file's bytes [0, data_start), header included, and entry is a file offset; with
FLAT_FLAG_RAM text, data, bss and stack share one allocation, so PC-relative references from
code to data hold. Everything initialised goes in as "text" (data_start = data_end); the
kernel clears bss and the stack. There are no relocations: the program must have no
absolute ones (checked here from --emit-relocs).

usage: flat.py PROGRAM.elf OUT.bflt (with riscv64-linux-gnu- binutils on PATH)"""
import os
import struct
import subprocess
import sys
import tempfile

FLAT_FLAG_RAM = 0x1
STACK_SIZE = 64 * 1024
PREFIX = "riscv64-linux-gnu-"


def symbols(elf):
    out = subprocess.run([PREFIX + "nm", elf], check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = int(parts[0], 16)
    return table


def absolute_relocations(elf):
    out = subprocess.run([PREFIX + "readelf", "-rW", elf], check=True, capture_output=True, text=True).stdout
    bad = []
    section = ""
    for line in out.splitlines():
        if line.startswith("Relocation section"):
            section = line.split("'")[1]
            continue
        if any(k in line for k in ("R_RISCV_64", "R_RISCV_32", "R_RISCV_HI20", "R_RISCV_LO12")):
            if not section.startswith((".rela.debug", ".rela.comment")):
                bad.append(f"{section}: {line.strip()}")
    return bad


def main():
    elf, out = sys.argv[1], sys.argv[2]
    bad = absolute_relocations(elf)
    if bad:
        sys.exit("absolute relocations (bFLT would need them relocated):\n" + "\n".join(bad[:20]))
    sym = symbols(elf)
    entry, data_end, bss_end = sym["_start"], sym["_data_end"], sym["_bss_end"]
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "image")
        subprocess.run([PREFIX + "objcopy", "-O", "binary", "-j", ".text", "-j", ".rodata", "-j", ".data", elf, raw],
                       check=True)
        with open(raw, "rb") as f:
            image = f.read()
    body = image.ljust(data_end - 0x40, b"\0")
    if len(body) != data_end - 0x40:
        sys.exit(f"image of {len(body)} bytes does not end at _data_end {data_end:#x}")
    header = struct.pack(">4s10I", b"bFLT", 4, entry, data_end, data_end, bss_end, STACK_SIZE, data_end, 0,
                         FLAT_FLAG_RAM, 0).ljust(64, b"\0")
    with open(out, "wb") as f:
        f.write(header + body)


if __name__ == "__main__":
    main()
