#!/usr/bin/env python3
"""
Checks imp's quantization formats against PyPI gguf's numpy implementations (gguf/quants.py), an
independent port of ggml's reference code.  Run as: python3 py_quant_ref.py BUILD_DIR

BUILD_DIR/tests/helper_quant_dump writes, for every type imp's table can compute, random blocks
with imp's dequantization of them, and float inputs with imp's quantization (see the helper's
header for the files).  For each type this test checks:

 1. dequantize: gguf.quants.dequantize of the same random blocks must equal imp's output bit for
    bit (float32 bits; NaN matches NaN).  gguf has no Q8_1 or Q8_K class (and its
    GGML_QUANT_SIZES still says 40 bytes for Q8_1; ggml-common.h has 36), so those two are checked
    against the few-line numpy definition below instead (x = d * q), marked "local".
 2. quantize, where gguf has a quantizer (it raises NotImplementedError otherwise): the same floats
    through gguf; imp's round-trip RMSE must be at most 1.05x gguf's, and for these reference
    quantizers the bytes must be identical (the number of differing blocks is reported; any is a
    failure, since imp evaluates the same float expressions).  imp's stored bytes must also
    dequantize in gguf to exactly imp's own dequantization.

Exit status: 0 pass, 1 fail, 77 skipped (gguf or numpy missing).  No network access.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as QT
except Exception as e:  # noqa: BLE001 - any import problem means "reference unavailable"
    print(f"SKIPPED: the reference needs numpy and gguf (pip install gguf numpy): {e}")
    sys.exit(77)


def local_dequantize(name, blocks):
    """Reference dequantization for the activation formats gguf lacks: x = d * q."""
    if name == "Q8_1":  # fp16 d, fp16 s (= d * sum q, unused here), int8 qs[32]
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        return d * blocks[:, 4:36].copy().view(np.int8).astype(np.float32)
    if name == "Q8_K":  # fp32 d, int8 qs[256], int16 bsums[16] (unused here)
        d = blocks[:, 0:4].copy().view(np.float32)
        return d * blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
    return None


def same_bits(a, b):
    """Number of float32 elements whose bits differ, counting NaN == NaN."""
    a = np.ascontiguousarray(a, dtype=np.float32).ravel()
    b = np.ascontiguousarray(b, dtype=np.float32).ravel()
    if a.shape != b.shape:
        return max(a.size, b.size)
    diff = a.view(np.uint32) != b.view(np.uint32)
    diff &= ~(np.isnan(a) & np.isnan(b))
    return int(diff.sum())


def rmse(x, y):
    d = x.astype(np.float64) - y.astype(np.float64)
    return float(np.sqrt(np.mean(d * d)))


def main():
    if len(sys.argv) != 2:
        print("usage: py_quant_ref.py BUILD_DIR")
        return 1
    helper = os.path.join(sys.argv[1], "tests", "helper_quant_dump")
    if not os.path.exists(helper):
        print(f"FAIL: {helper} not found (build the tests first)")
        return 1

    failures = []
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([helper, tmp], capture_output=True, text=True)
        if proc.stderr:
            sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            print(f"FAIL: helper_quant_dump exited {proc.returncode}")
            return 1
        with open(os.path.join(tmp, "manifest.txt")) as f:
            manifest = [ln.split() for ln in f if ln.strip()]

        for name, tid, bs, ts, nb, rows, cols in manifest:
            tid, bs, ts, nb, rows, cols = int(tid), int(bs), int(ts), int(nb), int(rows), int(cols)
            path = lambda ext: os.path.join(tmp, f"{name}.{ext}")  # noqa: E731
            blocks = np.fromfile(path("blocks"), dtype=np.uint8).reshape(nb, ts)
            ours_deq = np.fromfile(path("deq"), dtype=np.float32)
            x = np.fromfile(path("x"), dtype=np.float32).reshape(rows, cols)
            ours_q = np.fromfile(path("q"), dtype=np.uint8).reshape(rows, -1)
            ours_qdeq = np.fromfile(path("qdeq"), dtype=np.float32).reshape(rows, cols)
            qt = QT[name] if name in QT.__members__ else None
            # helper rows with index % 16 < 4 are plain N(0,1): a figure comparable across types
            normal = np.arange(rows) % 16 < 4
            r = {"name": name, "blocks": nb, "deq_ref": "-", "deq": "n/a", "q": "n/a",
                 "diff": "-", "rmse_ours": rmse(x, ours_qdeq), "rmse_ref": None,
                 "n01_ours": rmse(x[normal], ours_qdeq[normal]), "n01_ref": None}

            # 1. dequantization of random blocks
            ref = None
            if qt is not None:
                try:
                    ref = gguf.quants.dequantize(blocks, qt)
                    r["deq_ref"] = "gguf"
                except NotImplementedError:
                    ref = None
            if ref is None:
                ref = local_dequantize(name, blocks)
                if ref is not None:
                    r["deq_ref"] = "local"
            if ref is not None:
                bad = same_bits(ours_deq, ref)
                r["deq"] = "yes" if bad == 0 else f"NO ({bad} values)"
                if bad:
                    failures.append(f"{name}: dequantize differs from {r['deq_ref']} in {bad} values")

            # 2. quantization against gguf's reference quantizer
            if qt is not None:
                try:
                    ref_q = np.ascontiguousarray(gguf.quants.quantize(x, qt)).view(np.uint8).reshape(rows, -1)
                except NotImplementedError:
                    ref_q = None
                if ref_q is not None:
                    ref_qdeq = gguf.quants.dequantize(ref_q, qt).reshape(rows, cols)
                    r["rmse_ref"] = rmse(x, ref_qdeq)
                    r["n01_ref"] = rmse(x[normal], ref_qdeq[normal])
                    if ref_q.shape != ours_q.shape:
                        failures.append(f"{name}: row bytes {ours_q.shape} vs gguf {ref_q.shape}")
                        r["q"] = "NO (shape)"
                    else:
                        nd = int(np.any((ref_q != ours_q).reshape(-1, ts), axis=1).sum())
                        r["diff"] = f"{nd}/{ref_q.size // ts}"
                        r["q"] = "yes" if nd == 0 else "NO"
                        if nd:
                            failures.append(f"{name}: {nd} quantized blocks differ from gguf's")
                    for k in ("rmse", "n01"):
                        if r[k + "_ours"] > 1.05 * r[k + "_ref"]:
                            failures.append(f"{name}: {k} {r[k + '_ours']:.6g} > 1.05 * gguf {r[k + '_ref']:.6g}")
                    # gguf reading imp's bytes must see exactly what imp sees.
                    bad = same_bits(gguf.quants.dequantize(ours_q, qt), ours_qdeq)
                    if bad:
                        failures.append(f"{name}: gguf dequantizes imp's quantized bytes differently ({bad} values)")
            rows_out.append(r)

    print("rmse all: over every input row (dominated by the x1000 row); rmse N(0,1): the plain normal rows")
    print(f"{'type':8} {'blocks':>7} {'deq ref':>7} {'deq bit-exact':>14} {'q bytes equal':>14} "
          f"{'blocks differ':>14} {'rmse all imp':>12} {'gguf':>10} {'rmse N(0,1) imp':>15} {'gguf':>10}")
    fmt = lambda v: "-" if v is None else f"{v:.5g}"  # noqa: E731
    for r in rows_out:
        print(f"{r['name']:8} {r['blocks']:7d} {r['deq_ref']:>7} {r['deq']:>14} {r['q']:>14} "
              f"{r['diff']:>14} {fmt(r['rmse_ours']):>12} {fmt(r['rmse_ref']):>10} "
              f"{fmt(r['n01_ours']):>15} {fmt(r['n01_ref']):>10}")
    unchecked = [r["name"] for r in rows_out if r["deq"] == "n/a"]
    if unchecked:
        print("no dequantization reference for: " + ", ".join(unchecked))
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    print(f"py_quant_ref: {len(rows_out)} types checked, all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
