#!/usr/bin/env python3
"""The library exports exactly the functions npipe.h declares (nothing of the C++ inside), and,
on Windows, imports system DLLs only, and npipe.def (for MSVC users) lists exactly those functions
with npipe.lib importing each of them; on Linux it carries the SONAME libnpipe.so.<MAJOR>.

usage: check_exports.py --header include/npipe.h --lib BUILT_LIBRARY --objdump TOOL
                        [--windows --def npipe.def --implib npipe.lib]"""
import argparse
import re
import subprocess
import sys

SYSTEM_DLLS = re.compile(r"^(kernel32|advapi32|ntdll|msvcrt|ucrtbase|ws2_32|user32|bcrypt|api-ms-win-.*)\.dll$", re.I)

ap = argparse.ArgumentParser()
ap.add_argument("--header", required=True)
ap.add_argument("--lib", required=True)
ap.add_argument("--objdump", required=True)
ap.add_argument("--windows", action="store_true")
ap.add_argument("--def", dest="deffile")
ap.add_argument("--implib")
args = ap.parse_args()

declared = set(re.findall(r"NPIPE_CALL\s+(npipe_\w+)\s*\(", open(args.header, encoding="utf-8").read()))
dump = subprocess.run([args.objdump, "-p" if args.windows else "-T", args.lib], capture_output=True, text=True,
                      check=True).stdout
errors = []
if args.windows:
    table = dump.split("[Ordinal/Name Pointer] Table", 1)
    # The table's rows run until the first blank line.
    rows = table[1].lstrip("\n").split("\n\n", 1)[0] if len(table) == 2 else ""
    exported = set(re.findall(r"\[\s*\d+\]\s+(\S+)", rows))
    dlls = re.findall(r"DLL Name:\s*(\S+)", dump)
    foreign = [d for d in dlls if not SYSTEM_DLLS.match(d)]
    if foreign:
        errors.append(f"imports non-system DLLs: {foreign}")
    print(f"imports: {', '.join(dlls)}")
else:
    exported = {m.group(1) for m in re.finditer(r"\s(?:g|w)\s+DF\s+\.text\s+\S+\s+(?:\S+\s+)?(\S+)$", dump, re.M)}
    soname = re.search(r"SONAME\s+(\S+)", subprocess.run([args.objdump, "-p", args.lib], capture_output=True,
                                                           text=True, check=True).stdout)
    if not soname or not re.fullmatch(r"libnpipe\.so\.\d+", soname.group(1)):
        errors.append(f"SONAME is {soname.group(1) if soname else 'missing'}, expected libnpipe.so.<MAJOR>")
if args.deffile:
    text = open(args.deffile, encoding="utf-8").read()
    listed = re.findall(r"^\s+(\w+)(?:\s+@\d+)?\s*$", text.split("EXPORTS", 1)[-1], re.M)
    if sorted(listed) != sorted(declared):
        errors.append(f"{args.deffile} lists {sorted(set(listed) ^ declared)} differently from the header "
                      f"(or twice: {len(listed)} entries for {len(declared)} functions)")
    print(f"{args.deffile}: {len(listed)} exports")
if args.implib:
    symbols = subprocess.run([args.objdump, "-t", args.implib], capture_output=True, text=True, check=True).stdout
    imported = set(re.findall(r"\s__imp_(npipe_\w+)$", symbols, re.M))
    if imported != declared:
        errors.append(f"{args.implib} imports {sorted(imported ^ declared)} differently from the header")
    print(f"{args.implib}: {len(imported)} imports")
missing = declared - exported
extra = exported - declared
if missing:
    errors.append(f"declared but not exported: {sorted(missing)}")
if extra:
    errors.append(f"exported but not declared: {sorted(extra)}")
print(f"exports: {len(exported)} symbols, header declares {len(declared)}")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors or not declared else 0)
