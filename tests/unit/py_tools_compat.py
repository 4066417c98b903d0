#!/usr/bin/env python3
"""imp-synth and imp-quantize output, read by an independent reader (PyPI gguf).

For every tiny-* preset and every mix: the file written by imp-synth opens in gguf's GGUFReader,
the tensor set / shapes / types are what the preset and mix imply, weights dequantized by gguf
have std ~0.02 and norms are F32 within 1 +- 0.25. imp-quantize of an F32 synthetic model gives the same
per-tensor types as imp-synth with that mix, and gguf's dequantization of the result is close to
the F32 source (relative RMSE bounded per type).
Exit 77 (skip) when gguf/numpy are not installed.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import gguf
    from gguf import GGUFReader
    from gguf.quants import dequantize
except Exception as e:  # noqa: BLE001
    print(f"SKIPPED: PyPI gguf/numpy not available ({e}); scripts/bootstrap.sh installs them")
    sys.exit(77)

build = sys.argv[1]
synth = os.path.join(build, "imp-synth")
quantize = os.path.join(build, "imp-quantize")
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} -> {r.returncode}: {r.stderr}")
    return r


MIXES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M",
         "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"]
PRESETS = ["tiny", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3", "tiny-phi3", "tiny-moe"]
# worst-case relative RMSE of a round trip through each type (N(0, 0.02) weights)
REL_RMSE = {"F32": 1e-7, "F16": 1e-3, "BF16": 5e-3, "Q8_0": 0.01, "Q6_K": 0.03, "Q5_0": 0.07,
            "Q5_1": 0.07, "Q5_K": 0.06, "Q4_0": 0.13, "Q4_1": 0.13, "Q4_K": 0.12, "IQ4_NL": 0.12,
            "IQ4_XS": 0.12, "Q3_K": 0.25, "Q2_K": 0.5}


def tensors_of(path):
    r = GGUFReader(path)
    return r, {t.name: t for t in r.tensors}


with tempfile.TemporaryDirectory() as tmp:
    checked = 0
    for preset in PRESETS:
        for mix in MIXES:
            path = os.path.join(tmp, f"{preset}-{mix}.gguf")
            try:
                run(synth, preset, path, "--type", mix, "--seed", "5")
                r, ts = tensors_of(path)
            except Exception as e:  # noqa: BLE001
                fail(f"{preset} {mix}: {e}")
                continue
            arch = str(r.fields["general.architecture"].contents())
            n_embd = int(r.fields[f"{arch}.embedding_length"].contents())
            n_vocab = len(r.fields["tokenizer.ggml.tokens"].contents())
            if list(ts["token_embd.weight"].shape) != [n_embd, n_vocab]:
                fail(f"{preset} {mix}: token_embd shape {list(ts['token_embd.weight'].shape)}")
            for name, t in ts.items():
                w = dequantize(t.data, t.tensor_type).astype(np.float64).ravel()
                if name.endswith("norm.weight"):
                    # 1 +- 0.25, not constant: a norm weight applied wrongly shows in the tests
                    if (t.tensor_type != gguf.GGMLQuantizationType.F32 or not np.all(np.abs(w - 1.0) <= 0.25)
                            or np.all(w == w[0])):
                        fail(f"{preset} {mix}: {name} is not F32 within 1 +- 0.25")
                elif name.endswith(".weight") and w.size >= 4096:
                    std = float(np.std(w))
                    if not (0.017 < std < 0.023):
                        fail(f"{preset} {mix}: {name} ({t.tensor_type.name}) std {std:.4f}")
                checked += 1
    print(f"synth: {len(PRESETS)} presets x {len(MIXES)} mixes, {checked} tensors read by gguf")

    # imp-quantize: F32 source -> each mix; types equal synth's, values close to the source
    for preset in ["tiny", "tiny-moe"]:
        src = os.path.join(tmp, f"{preset}-F32.gguf")
        _, src_ts = tensors_of(src)
        for mix in MIXES[1:]:
            out = os.path.join(tmp, f"{preset}-q-{mix}.gguf")
            try:
                run(quantize, src, out, mix, "--threads", "2")
                _, q_ts = tensors_of(out)
                _, s_ts = tensors_of(os.path.join(tmp, f"{preset}-{mix}.gguf"))
            except Exception as e:  # noqa: BLE001
                fail(f"quantize {preset} {mix}: {e}")
                continue
            worst = 0.0
            for name, t in q_ts.items():
                if t.tensor_type != s_ts[name].tensor_type:
                    fail(f"quantize {preset} {mix}: {name} is {t.tensor_type.name}, synth gives "
                         f"{s_ts[name].tensor_type.name}")
                a = dequantize(src_ts[name].data, src_ts[name].tensor_type).astype(np.float64)
                b = dequantize(t.data, t.tensor_type).astype(np.float64)
                if a.shape != b.shape:
                    fail(f"quantize {preset} {mix}: {name} shape {b.shape} != {a.shape}")
                    continue
                denom = float(np.sqrt(np.mean(a * a))) or 1.0
                rel = float(np.sqrt(np.mean((a - b) ** 2))) / denom
                tname = t.tensor_type.name
                bound = REL_RMSE.get(tname, 0.5)
                if rel > bound:
                    fail(f"quantize {preset} {mix}: {name} ({tname}) rel rmse {rel:.4f} > {bound}")
                worst = max(worst, rel)
            print(f"quantize {preset} F32 -> {mix:7s}: {len(q_ts)} tensors, worst rel rmse {worst:.4f}")

print(f"py_tools_compat: {failures} failed")
sys.exit(1 if failures else 0)
