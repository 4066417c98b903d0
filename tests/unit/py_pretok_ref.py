#!/usr/bin/env python3
"""
Checks imp's pre-tokenizer rows (src/tokenizer/pretok.c, run by PCRE2) against HF `tokenizers`
(Rust, Oniguruma regexes): the same patterns, applied the same way (each pattern splits every
piece the previous one made, matches and gaps both kept = tokenizers' Split behavior
"isolated"), must cut the same texts into the same pieces.  Run as:
    python3 py_pretok_ref.py BUILD_DIR

Texts: GPL-3, tests/data/tokenizer/*.txt and short edge strings (contractions in every case,
digit runs, whitespace runs before words and at the end, CR/LF mixes, scripts and emoji).

Also checked: where a row's pattern differs in spelling from the model's published tokenizer.json
pattern — imp writes the case-insensitive contraction group (?i:'s|'t|...) with ASCII classes —
both spellings give the same pieces under tokenizers on every text.

Unicode versions: PCRE2's property tables are those of the system library (Debian 12 and Ubuntu
24.04 ship PCRE2 10.42 = Unicode 14); tokenizers' Oniguruma is newer.  A mismatch whose differing
pieces hold a code point unassigned in this Python's Unicode database (3.11 = Unicode 14) is
reported as a Unicode-version difference and not counted as a failure.

Exit status: 0 pass, 1 fail, 77 skipped (tokenizers missing or helper not built).
"""
import os
import subprocess
import sys
import tempfile
import unicodedata

try:
    from tokenizers import Regex, pre_tokenizers
except Exception as e:  # noqa: BLE001
    print(f"SKIPPED: needs the PyPI package tokenizers: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))

ROWS = ["default", "gpt2", "llama3", "dbrx", "qwen2", "smollm", "deepseek-llm", "deepseek-coder",
        "deepseek-v3", "falcon", "gpt-4o", "tekken", "poro-chat", "viking", "seed-coder", "bailingmoe"]

# Published tokenizer.json spellings (Llama 3, Qwen2, GPT-4o/o200k) whose case-insensitive group
# imp spells with ASCII classes.
CONTR = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
ORIGINALS = {
    "llama3": [CONTR + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "qwen2": [CONTR + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "gpt-4o": [r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+" + CONTR +
               r"?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*" + CONTR +
               r"?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
}

EDGE = [
    "", " ", "   ", "a", " a", "a ", "  a  b   c    ", "\n", "\n\n\n", "\r\n\r\n", " \n \n", "\t\tx\t",
    "Hello world!", "I'm you're we've he'll she'd it's don't", "I'M YOU'RE WE'VE HE'LL SHE'D IT'S DON'T",
    "1234567890 12 3.14159 1,000,000 $9.99 +1-555", "x=1+2^3|4~5<6>7", "CamelCaseWord HTTPServer iPhone",
    "naïve café Ångström Straße", "Привет мир", "Γειά σου", "你好，世界。", "こんにちは世界",
    "안녕하세요", "مرحبا بالعالم", "नमस्ते दुनिया", "😀👍🏽👨‍👩‍👧 🇫🇷", "e\u0301 a\u0308",
    "trailing   ", "   leading", "tab\there", "mixed \t \n words", "a/b/c\n/path/to/file.c",
    "<|im_end|> <start_of_turn>user", "ſs long s", "'''quotes'''", "....!!!???", "ｆｕｌｌｗｉｄｔｈ　ｓｐａｃｅ",
]


def texts():
    out = [("edge%d" % i, s) for i, s in enumerate(EDGE)]
    for path in ["/usr/share/common-licenses/GPL-3",
                 os.path.join(SRC, "tests/data/tokenizer/multilingual.txt"),
                 os.path.join(SRC, "tests/data/tokenizer/code.txt")]:
        if os.path.exists(path):
            with open(path, "rb") as f:
                out.append((os.path.basename(path), f.read().decode("utf-8")))
    return out


def hf_split(patterns, text):
    seq = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(p), behavior="isolated") for p in patterns])
    return [p for p, _ in seq.pre_tokenize_str(text)]


def imp_split(helper, row, path):
    r = subprocess.run([helper, row, path], capture_output=True, check=True)
    return [bytes.fromhex(line).decode("utf-8") for line in r.stdout.decode().split("\n") if line]


def main():
    if len(sys.argv) != 2:
        print("usage: py_pretok_ref.py BUILD_DIR")
        return 2
    helper = os.path.join(sys.argv[1], "tests", "helper_pretok")
    if not os.path.exists(helper):
        print(f"SKIPPED: {helper} not built")
        return 77
    failures = 0
    checks = 0
    samples = texts()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, t in samples:
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(t.encode("utf-8"))
            paths.append(p)
        for row in ROWS:
            pats = subprocess.run([helper, "--patterns", row], capture_output=True, check=True,
                                  text=True).stdout.rstrip("\n").split("\n")
            n_pieces = 0
            row_failures = 0
            for (name, t), p in zip(samples, paths):
                want = hf_split(pats, t)
                got = imp_split(helper, row, p)
                checks += 1
                n_pieces += len(want)
                if got != want:
                    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                             min(len(got), len(want)))
                    window = "".join(got[i:i + 4]) + "".join(want[i:i + 4])
                    newer = [c for c in window if unicodedata.category(c) == "Cn"]
                    what = "FAIL"
                    if newer:
                        what = f"note (U+{ord(newer[0]):04X} is newer than Unicode {unicodedata.unidata_version})"
                    else:
                        failures += 1
                        row_failures += 1
                    print(f"{what} {row} on {name}: piece {i}: imp {got[i:i+4]!r} tokenizers {want[i:i+4]!r}")
                if row in ORIGINALS:
                    orig = hf_split(ORIGINALS[row], t)
                    checks += 1
                    if orig != want:
                        failures += 1
                        row_failures += 1
                        print(f"FAIL {row}: imp's spelling and the published pattern differ on {name}")
            print(f"{row:15s} {len(pats)} pattern(s), {n_pieces} pieces over {len(samples)} texts: "
                  f"{'ok' if not row_failures else 'FAILED'}")
    print(f"py_pretok_ref: {checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
