#!/usr/bin/env python3
"""GGUF files written by imp, read by PyPI gguf; files written by PyPI gguf, read by imp.

1. helper_gguf_write writes the compatibility file (every metadata type, nested arrays, eight
   tensors of various types/shapes) with general.alignment unset, 1, 64 and 256. gguf's
   GGUFReader must read it without complaint and see exactly EXPECTED_KV (keys in order, types,
   values bit for bit) and the tensors (names, types, shapes with ne[0] first, bytes, aligned
   offsets). imp's own reader (helper_gguf_write dump) must see the same as GGUFReader.
2. gguf's GGUFWriter writes a file with every value type, nested arrays, float/int numpy tensors
   and raw quantized tensors (default and custom alignment); imp's reader must see exactly what
   GGUFReader sees.
Usage: py_gguf_compat.py BUILD_DIR. Exit 77 (skip) when gguf/numpy are not installed.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import gguf
    from gguf import GGUFReader, GGUFWriter, GGUFValueType as VT, GGMLQuantizationType as QT
except Exception as e:  # noqa: BLE001
    print(f"SKIPPED: PyPI gguf/numpy not available ({e}); scripts/bootstrap.sh installs them")
    sys.exit(77)

build = sys.argv[1]
helper = os.path.join(build, "tests", "helper_gguf_write")
checks = 0
failures = 0


def check(cond, msg):
    global checks, failures
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", msg)
    return cond


TYPE_NAMES = {VT.UINT8: "uint8", VT.INT8: "int8", VT.UINT16: "uint16", VT.INT16: "int16",
              VT.UINT32: "uint32", VT.INT32: "int32", VT.FLOAT32: "float32", VT.BOOL: "bool",
              VT.STRING: "string", VT.ARRAY: "array", VT.UINT64: "uint64", VT.INT64: "int64",
              VT.FLOAT64: "float64"}


# ---- canonical values: ("uint8", 255), ("float32", <double bits>), ("string", b"..."),
#      ("array", elem_type_name, [canonical elements]) -------------------------------------

def scalar(t, v):
    if t in ("float32", "float64"):
        return (t, struct.pack("<d", float(v)))  # bit-exact (-0.0, denormals)
    if t == "bool":
        return (t, bool(v))
    if t == "string":
        return (t, v.encode() if isinstance(v, str) else bytes(v))
    return (t, int(v))


def arr(et, items):
    if et == "array":
        return ("array", "array", list(items))
    return ("array", et, [scalar(et, x) for x in items])


def decode_parts(parts, i, vtype):
    """Canonical value of a GGUFReader field from its raw parts, starting at parts[i]."""
    vtype = VT(int(vtype))
    if vtype == VT.STRING:
        return scalar("string", parts[i + 1].tobytes()), i + 2
    if vtype == VT.ARRAY:
        et, n = VT(int(parts[i][0])), int(parts[i + 1][0])
        i += 2
        elems = []
        for _ in range(n):
            e, i = decode_parts(parts, i, et)
            elems.append(e)
        return ("array", TYPE_NAMES[et], elems), i
    return scalar(TYPE_NAMES[vtype], parts[i][0]), i + 1


def reader_view(path):
    """(alignment, data_offset, [(key, value)], [tensor dicts]) as PyPI gguf sees the file."""
    r = GGUFReader(path)
    kv = []
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        v, end = decode_parts(f.parts, 3, f.parts[2][0])
        check(end == len(f.parts), f"{name}: {len(f.parts) - end} parts left over")
        kv.append((name.encode(), v))
    tensors = []
    for t in r.tensors:
        tensors.append({"name": t.name.encode(), "type": int(t.tensor_type),
                        "ne": [int(x) for x in t.shape], "offset": int(t.data_offset - r.data_offset),
                        "size": int(t.n_bytes), "data": t.data.tobytes()})
    return int(r.alignment), int(r.data_offset), kv, tensors


def canon_dump(v):
    t = v["t"]
    if t == "array":
        return ("array", v["et"], [canon_dump(e) for e in v["v"]])
    if t == "string":
        return scalar(t, bytes.fromhex(v["v"]))
    if t in ("float32", "float64"):
        return scalar(t, float.fromhex(v["v"]))
    return scalar(t, v["v"])


def imp_view(path):
    """The same, as imp's reader sees it (helper_gguf_write dump)."""
    out = subprocess.run([helper, "dump", path], capture_output=True, text=True)
    if not check(out.returncode == 0, f"imp dump of {path} failed: {out.stderr.strip()}"):
        return None
    d = json.loads(out.stdout)
    check(d["version"] == 3, f"{path}: version {d['version']}")
    kv = [(bytes.fromhex(e["key"]), canon_dump(e["value"])) for e in d["kv"]]
    tensors = [{"name": bytes.fromhex(t["name"]), "type": t["type"], "ne": t["ne"],
                "offset": t["offset"], "size": t["size"], "data": bytes.fromhex(t["data"])}
               for t in d["tensors"]]
    return d["alignment"], d["data_offset"], kv, tensors


def compare_views(what, a, b):
    """a: PyPI gguf's view, b: imp's view."""
    if b is None:
        return
    check(a[0] == b[0], f"{what}: alignment {a[0]} vs {b[0]}")
    check(a[1] == b[1], f"{what}: data offset {a[1]} vs {b[1]}")
    check([k for k, _ in a[2]] == [k for k, _ in b[2]], f"{what}: keys differ:\n  {[k for k, _ in a[2]]}\n  {[k for k, _ in b[2]]}")
    for (ka, va), (kb, vb) in zip(a[2], b[2]):
        check(va == vb, f"{what}: key {ka!r}: gguf {va} vs imp {vb}")
    check(len(a[3]) == len(b[3]), f"{what}: {len(a[3])} vs {len(b[3])} tensors")
    for ta, tb in zip(a[3], b[3]):
        for f in ("name", "type", "ne", "offset", "size", "data"):
            check(ta[f] == tb[f], f"{what}: tensor {ta['name']!r} {f}: gguf {str(ta[f])[:80]} vs imp {str(tb[f])[:80]}")


# ---- 1. imp writes, gguf reads -------------------------------------------------------------

def f32(x):
    return float(np.float32(x))


def expected_kv(alignment):
    kv = [
        ("general.architecture", scalar("string", "llama")),
        ("general.name", scalar("string", "imp compat \u2713")),
        ("c.u8", scalar("uint8", 255)), ("c.i8", scalar("int8", -128)),
        ("c.u16", scalar("uint16", 65535)), ("c.i16", scalar("int16", -32768)),
        ("c.u32", scalar("uint32", 2**32 - 1)), ("c.i32", scalar("int32", -2**31)),
        ("c.u64", scalar("uint64", 2**64 - 1)), ("c.i64", scalar("int64", -2**63)),
        ("c.f32", scalar("float32", f32(0.1))), ("c.f32_denormal", scalar("float32", f32(1e-40))),
        ("c.f64", scalar("float64", 0.1)), ("c.f64_negzero", scalar("float64", -0.0)),
        ("c.true", scalar("bool", True)), ("c.false", scalar("bool", False)),
        ("c.empty", scalar("string", "")),
        ("a.u8", arr("uint8", [0, 1, 254, 255])), ("a.i8", arr("int8", [-128, 0, 127])),
        ("a.u16", arr("uint16", [0, 65535])), ("a.i16", arr("int16", [-32768, 32767])),
        ("a.u32", arr("uint32", [0, 2**32 - 1])), ("a.i32", arr("int32", [-2**31, 2**31 - 1])),
        ("a.u64", arr("uint64", [0, 2**64 - 1])), ("a.i64", arr("int64", [-2**63, 2**63 - 1])),
        ("a.f32", arr("float32", [0.5, -1.25, f32(3.4e38)])), ("a.f64", arr("float64", [1e-300, -2.5])),
        ("a.bool", arr("bool", [True, False, True])),
        ("a.str", arr("string", ["", "a", "h\u00e9llo", "tab\there", "new\nline"])),
        ("a.empty", arr("uint32", [])),
        ("a.nested_i32", arr("array", [arr("int32", [1, 2, 3]), arr("int32", [-4])])),
        ("a.nested_str", arr("array", [arr("string", ["a", "b"]), arr("string", ["c"])])),
        ("a.nested3_u8", arr("array", [arr("array", [arr("uint8", [1]), arr("uint8", [2, 3])]),
                                       arr("array", [arr("uint8", [4])])])),
    ]
    if alignment:
        kv.append(("general.alignment", scalar("uint32", alignment)))
    return [(k.encode(), v) for k, v in kv]


# name, ggml type, ne (ne[0] first), bytes
EXPECTED_TENSORS = [
    ("token_embd.weight", QT.F16, [8, 4], 64),
    ("blk.0.attn_norm.weight", QT.F32, [8], 32),
    ("blk.0.ffn_down.weight", QT.Q8_0, [64, 3], 204),
    ("blk.0.ffn_up.weight", QT.Q4_K, [256, 2], 288),
    ("odd.i32", QT.I32, [3, 5], 60),
    ("x.4d", QT.BF16, [2, 3, 2, 2], 48),
    ("y.i16", QT.I16, [7], 14),
    ("z.q6k", QT.Q6_K, [256], 210),
]


def pattern(i, n):
    return bytes((k * 131 + i * 17 + 7) & 0xFF for k in range(n))


def test_imp_writes(tmp):
    for alignment in (0, 1, 64, 256):
        path = os.path.join(tmp, f"imp_{alignment}.gguf")
        out = subprocess.run([helper, "write", path, str(alignment)], capture_output=True, text=True)
        if not check(out.returncode == 0, f"helper write failed: {out.stderr.strip()}"):
            continue
        what = f"imp-written (alignment {alignment or 'default'})"
        try:
            view = reader_view(path)
        except Exception as e:  # noqa: BLE001
            check(False, f"{what}: GGUFReader raised {type(e).__name__}: {e}")
            continue
        align, data_offset, kv, tensors = view
        want_align = alignment or 32
        check(align == want_align, f"{what}: gguf alignment {align}")
        check(data_offset % want_align == 0, f"{what}: data offset {data_offset} unaligned")
        exp = expected_kv(alignment)
        check([k for k, _ in kv] == [k for k, _ in exp], f"{what}: keys {[k for k, _ in kv]}")
        for (k, v), (_, ev) in zip(kv, exp):
            check(v == ev, f"{what}: key {k!r}: {v} != expected {ev}")
        check(len(tensors) == len(EXPECTED_TENSORS), f"{what}: {len(tensors)} tensors")
        pos = 0
        for i, (t, (name, qt, ne, size)) in enumerate(zip(tensors, EXPECTED_TENSORS)):
            check(t["name"] == name.encode(), f"{what}: tensor {i} name {t['name']!r}")
            check(t["type"] == int(qt), f"{what}: {name} type {t['type']}")
            check(t["ne"] == ne, f"{what}: {name} shape {t['ne']} (want {ne})")
            check(t["size"] == size, f"{what}: {name} bytes {t['size']}")
            check(t["offset"] % want_align == 0 and t["offset"] == pos, f"{what}: {name} offset {t['offset']} (want {pos})")
            check(t["data"] == pattern(i, size), f"{what}: {name} data differs")
            pos = (pos + size + want_align - 1) // want_align * want_align
        check(os.path.getsize(path) == data_offset + pos, f"{what}: file size {os.path.getsize(path)} != {data_offset + pos}")
        compare_views(what + ", imp reader", view, imp_view(path))


# ---- 2. gguf writes, imp reads -------------------------------------------------------------

def test_gguf_writes(tmp):
    for alignment in (None, 128):
        path = os.path.join(tmp, f"py_{alignment}.gguf")
        w = GGUFWriter(path, "llama")
        if alignment:
            w.add_custom_alignment(alignment)
        w.add_uint8("p.u8", 250)
        w.add_int8("p.i8", -7)
        w.add_uint16("p.u16", 40000)
        w.add_int16("p.i16", -20000)
        w.add_uint32("p.u32", 3000000000)
        w.add_int32("p.i32", -123456789)
        w.add_uint64("p.u64", 2**64 - 1)
        w.add_int64("p.i64", -2**63)
        w.add_float32("p.f32", 1.1)
        w.add_float64("p.f64", -1e-310)
        w.add_bool("p.true", True)
        w.add_bool("p.false", False)
        w.add_string("p.str", "gr\u00fc\u00dfe \U0001F600")
        w.add_key_value("p.empty", "", VT.STRING)
        for vt, vals in ((VT.UINT8, [1, 255]), (VT.INT8, [-128, 5]), (VT.UINT16, [65535]),
                         (VT.INT16, [-1, 2, -3]), (VT.UINT32, [7, 2**32 - 1]), (VT.INT32, [-2**31]),
                         (VT.UINT64, [2**63, 1]), (VT.INT64, [-5, 2**63 - 1]), (VT.FLOAT32, [0.25, -3.5]),
                         (VT.FLOAT64, [1e300, 2.0]), (VT.BOOL, [False, True, True])):
            w.add_key_value(f"p.arr_{TYPE_NAMES[vt]}", vals, VT.ARRAY, sub_type=vt)
        w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "\u2581the", "", "x" * 300])
        w.add_key_value("p.nested", [[1, 2, 3], [4]], VT.ARRAY)
        w.add_key_value("p.nested_str", [["a"], ["b", "cd"]], VT.ARRAY)
        w.add_key_value("p.nested_f32", [[0.5], [1.5, 2.5]], VT.ARRAY)
        rng = np.random.default_rng(7)
        w.add_tensor("t.f32", rng.standard_normal((3, 8)).astype(np.float32))
        w.add_tensor("t.f16", rng.standard_normal((2, 2, 16)).astype(np.float16))
        w.add_tensor("t.i8", np.arange(5, dtype=np.int8))
        w.add_tensor("t.i16", np.arange(14, dtype=np.int16).reshape(2, 7))
        w.add_tensor("t.i32", np.arange(16, dtype=np.int32).reshape(4, 4))
        w.add_tensor("t.i64", np.array([-1, 0, 2**62], dtype=np.int64))
        w.add_tensor("t.f64", rng.standard_normal((2, 3)))
        w.add_tensor("t.q8_0", rng.integers(0, 256, (2, 68), dtype=np.uint8), raw_dtype=QT.Q8_0)
        w.add_tensor("t.q4_k", rng.integers(0, 256, (1, 144), dtype=np.uint8), raw_dtype=QT.Q4_K)
        w.add_tensor("t.bf16", rng.integers(0, 256, (3, 16), dtype=np.uint8), raw_dtype=QT.BF16)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        what = f"gguf-written (alignment {alignment or 'default'})"
        view = reader_view(path)
        check(view[0] == (alignment or 32), f"{what}: gguf alignment {view[0]}")
        check(len(view[2]) == 30 + (1 if alignment else 0), f"{what}: {len(view[2])} keys")
        check(len(view[3]) == 10, f"{what}: {len(view[3])} tensors")
        check([t["ne"] for t in view[3][:2]] == [[8, 3], [16, 2, 2]], f"{what}: shapes {[t['ne'] for t in view[3][:2]]}")
        iv = imp_view(path)
        compare_views(what, view, iv)
        if iv:
            d = dict(iv[2])
            check(d.get(b"p.u64") == scalar("uint64", 2**64 - 1), f"{what}: p.u64 {d.get(b'p.u64')}")
            check(d.get(b"p.str") == scalar("string", "gr\u00fc\u00dfe \U0001F600"), f"{what}: p.str")
            check(d.get(b"p.nested") == arr("array", [arr("int32", [1, 2, 3]), arr("int32", [4])]), f"{what}: p.nested")


with tempfile.TemporaryDirectory() as tmp:
    if not os.path.exists(helper):
        print(f"FAIL: {helper} not built")
        sys.exit(1)
    test_imp_writes(tmp)
    test_gguf_writes(tmp)

print(f"py_gguf_compat: {checks} checks, {failures} failed")
sys.exit(1 if failures else 0)
