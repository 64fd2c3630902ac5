"""cffi's view of csrc/agent_api.h agrees with src/agent/procfs/layout.py.

Sizes, every field's offset and type, the status codes, the ABI version,
NAME_MAX and each source's field enum against the `present` bit maps.
Skips where the extension is absent; fails instead under AGENT_REQUIRE_C=1."""

from __future__ import annotations

import re
import struct

import pytest

from agent.procfs import layout as L
from backends import load_backend

# struct name, its struct.Struct, its NamedTuple, its enum prefix, its bit map
SOURCES = [
    ("stat", L.STAT, L.Stat, "AGENT_STAT_", L.STAT_BIT),
    ("cpu", L.CPU, L.Cpu, "AGENT_CPU_", L.CPU_BIT),
    ("meminfo", L.MEMINFO, L.Meminfo, "AGENT_MEMINFO_", L.MEMINFO_BIT),
    ("diskstats", L.DISKSTATS, L.DiskStats, "AGENT_DISK_", L.DISK_BIT),
    ("netdev", L.NETDEV, L.NetDev, "AGENT_NETDEV_", L.NETDEV_BIT),
    ("loadavg", L.LOADAVG, L.LoadAvg, "AGENT_LOADAVG_", L.LOADAVG_BIT),
    ("uptime", L.UPTIME, L.Uptime, "AGENT_UPTIME_", L.UPTIME_BIT),
]
IDS = [s[0] for s in SOURCES]
C_TYPE = {"Q": "uint64_t", "d": "double"}
STATUS = ["OK", "ETRUNC", "EROWS", "EFORMAT", "ERANGE", "ENAME", "EMISSING", "EIO"]


@pytest.fixture(scope="module")
def c():
    load_backend("c")          # skip, or fail under AGENT_REQUIRE_C=1
    from agent._agent_c import ffi, lib
    return ffi, lib


def python_fields(st: struct.Struct, tup) -> list:
    """(C field name, offset, C type) for each field of a layout.py format,
    offsets computed from the format itself."""
    fmt = st.format
    assert fmt[0] == "="            # native order, no padding
    out, prefix, names = [], "=", iter(tup._fields)
    for count, code in re.findall(r"(\d*)([a-zA-Z])", fmt[1:]):
        n = int(count or 1)
        if code == "s":             # one char array of n bytes
            items = [(f"{n}s", f"char[{n}]")]
        else:
            items = [(code, C_TYPE[code])] * n
        for piece, ctype in items:
            name = next(names)
            out.append(("name" if name == "name_raw" else name, struct.calcsize(prefix), ctype))
            prefix += piece
    assert next(names, None) is None
    assert struct.calcsize(prefix) == st.size
    return out


def enum_name(prefix: str, field: str) -> str:
    for unit in ("_kb", "_seconds"):
        field = field.removesuffix(unit)
    return prefix + field.upper()


@pytest.mark.parametrize("source, st, tup, prefix, bits", SOURCES, ids=IDS)
def test_struct_size(c, source, st, tup, prefix, bits):
    ffi, _ = c
    assert ffi.sizeof(f"struct agent_{source}") == st.size


@pytest.mark.parametrize("source, st, tup, prefix, bits", SOURCES, ids=IDS)
def test_every_field_offset_and_type(c, source, st, tup, prefix, bits):
    ffi, _ = c
    c_fields = [(name, f.offset, f.type.cname) for name, f in ffi.typeof(f"struct agent_{source}").fields]
    assert c_fields == python_fields(st, tup)
    for name, offset, _ in c_fields:
        assert ffi.offsetof(f"struct agent_{source}", name) == offset


@pytest.mark.parametrize("source, st, tup, prefix, bits", SOURCES, ids=IDS)
def test_field_enum_matches_present_bits(c, source, st, tup, prefix, bits):
    _, lib = c
    for field, bit in bits.items():
        assert getattr(lib, enum_name(prefix, field)) == bit, field
    assert getattr(lib, prefix + "NFIELDS") == len(bits) <= 64
    c_enums = {n for n in dir(lib) if n.startswith(prefix)} - {prefix + "NFIELDS"}
    assert c_enums == {enum_name(prefix, f) for f in bits}


@pytest.mark.parametrize("source, st, tup, prefix, bits", SOURCES, ids=IDS)
def test_bits_follow_field_order(c, source, st, tup, prefix, bits):
    """Bit i is the i-th field in struct order (after `present`, after
    major and minor for diskstats, after the CPU number for cpu), as the C
    enum orders them."""
    start = tup._fields.index(next(iter(bits)))
    assert start == {"diskstats": 3, "cpu": 2}.get(source, 1)
    assert list(bits) == list(tup._fields[start:start + len(bits)])
    assert list(bits.values()) == list(range(len(bits)))


def test_status_codes(c):
    _, lib = c
    for name in STATUS:
        assert getattr(lib, "AGENT_" + name) == getattr(L, name), name
    c_codes = {n[len("AGENT_"):] for n in dir(lib) if re.fullmatch(r"AGENT_E[A-Z]+", n)}
    assert c_codes == set(STATUS) - {"OK"}
    assert set(L.ERROR_TEXT) == {getattr(L, n) for n in STATUS if n != "OK"}


def test_abi_version_name_max_and_max_cpus(c):
    ffi, lib = c
    assert lib.AGENT_ABI_VERSION == L.ABI_VERSION == lib.agent_abi_version()
    assert lib.AGENT_NAME_MAX == L.NAME_MAX
    assert lib.AGENT_MAX_CPUS == L.MAX_CPUS
    for source in ("diskstats", "netdev"):
        assert ffi.sizeof(ffi.typeof(f"struct agent_{source}").fields[-1][1].type) == L.NAME_MAX
    assert L.DISKSTATS.format.endswith(f"{L.NAME_MAX}s") and L.NETDEV.format.endswith(f"{L.NAME_MAX}s")


@pytest.mark.parametrize("source, st, tup, prefix, bits", SOURCES, ids=IDS)
def test_c_written_bytes_decode_in_python(c, source, st, tup, prefix, bits):
    """Distinct values set through cffi come back field for field through
    layout.py's decoder (byte order and field order, not just offsets)."""
    ffi, _ = c
    obj = ffi.new(f"struct agent_{source} *")
    want = {}
    for i, (name, f) in enumerate(ffi.typeof(f"struct agent_{source}").fields):
        if f.type.cname == "double":
            value = i + 0.25
        elif f.type.kind == "array":
            value = b"dev-\xff" + bytes([i])
        else:
            value = (0x0102030405060708 * (i + 1)) % 2**64
        setattr(obj, name, value)
        want["name_raw" if name == "name" else name] = value
    raw = bytes(ffi.buffer(obj))
    if source in ("diskstats", "netdev"):
        got = getattr(L, f"decode_{source}")(raw, 1)[0]._asdict()
        want["name_raw"] = want["name_raw"].ljust(L.NAME_MAX, b"\0")
    elif source == "cpu":  # the rows after a struct agent_stat
        got = L.decode_cpus(bytes(L.STAT.size) + raw)[0]._asdict()
    else:
        got = getattr(L, f"decode_{source}")(raw)._asdict()
    assert got == want
    assert st.pack(*tup(**want)) == raw
