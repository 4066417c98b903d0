#!/usr/bin/env python3
"""
Checks imp's chat templates against the real models' own Jinja templates.
Run as: python3 py_chat_ref.py BUILD_DIR

For each model of the list below present in the source tree's models/ (scripts/get-models.sh
fetches them), this reads the GGUF's tokenizer.chat_template with PyPI gguf (GGUFReader), renders
conversations with jinja2 the way transformers' apply_chat_template does (sandboxed environment,
trim_blocks, lstrip_blocks, loopcontrols, raise_exception, tojson with ensure_ascii=False), and
runs BUILD_DIR/tests/helper_chat_render auto --template-from MODEL on the same messages. It
requires the family imp detects to be the expected one and the two outputs to be byte-identical.

BOS: imp's output never starts with the BOS text (the tokenizer adds BOS from the vocab's add_bos
flag). The reference renders with a sentinel bos_token, drops it at the start and puts the real
BOS text anywhere else -- the same as bos_token='' for templates that only open with BOS.

Compared only where the outputs are meant to match: SmolLM2's template adds a default system turn
("You are a helpful AI assistant named SmolLM, ...") when the conversation has none; imp's chatml
family does not (llama.cpp does not either; a caller who wants it passes it). For those
conversations the check is exactly that: reference == that one system turn + imp's output.
A model whose GGUF has no chat template (gemma-3-270m is the base model) is checked for the
"no chat template; using chatml" fallback instead.

Exit status: 0 pass, 1 fail, 77 skipped (no model present, or jinja2/gguf missing).
"""
import os
import subprocess
import sys

try:
    from gguf import GGUFReader
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    import json
except Exception as e:  # noqa: BLE001 - any import problem means "reference unavailable"
    print(f"SKIPPED: the reference needs the jinja2 and gguf packages (pip install jinja2 gguf): {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "models"))

# file -> family imp must detect from the file's own template
MODELS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "chatml",
    "gemma-3-270m-q4_k_m.gguf": "gemma",
}

BOS_SENTINEL = "\x01BOS\x01"

SYS = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = [
    # (name, messages, add_generation_prompt)
    ("three-turn + system", [
        SYS,
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": " Who are you? "},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "Another question\n"},
    ], True),
    ("two-turn + system, ends with assistant", [
        SYS,
        {"role": "user", "content": "caf\u00e9 \u2603\n\ttabs"},
        {"role": "assistant", "content": "  ok  "},
    ], False),
    ("tool result + system", [
        SYS,
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Checking."},
        {"role": "tool", "content": "{\"temp\": 21}", "tool_call_id": "call12345"},
    ], True),
    ("three-turn, no system", [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Another question"},
    ], True),
    ("one user message, no system", [{"role": "user", "content": "Hi"}], False),
]


def jinja_env():
    def raise_exception(msg):
        raise ValueError(msg)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def field_str(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    return bytes(f.parts[f.data[0]]).decode("utf-8")


def field_int(reader, key):
    f = reader.fields.get(key)
    return None if f is None else int(f.parts[f.data[0]][0])


def token_text(reader, tid):
    f = reader.fields.get("tokenizer.ggml.tokens")
    if f is None or tid is None or tid < 0 or tid >= len(f.data):
        return ""
    return bytes(f.parts[f.data[tid]]).decode("utf-8", "replace")


def reference(template, bos, eos, msgs, gen):
    s = jinja_env().from_string(template).render(messages=msgs, add_generation_prompt=gen,
                                                 bos_token=BOS_SENTINEL, eos_token=eos)
    if s.startswith(BOS_SENTINEL):
        s = s[len(BOS_SENTINEL):]
    return s.replace(BOS_SENTINEL, bos)


def encode(msgs):
    def esc(s):
        return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    out = ""
    for m in msgs:
        out += m["role"] + "\t" + esc(m["content"])
        if "tool_call_id" in m:
            out += "\t" + m["tool_call_id"]
        out += "\n"
    return out.encode("utf-8")


def run_helper(helper, model, msgs, gen):
    args = [helper, "auto", "--template-from", model] + ([] if gen else ["--no-generation-prompt"])
    p = subprocess.run(args, input=encode(msgs), capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def is_system_turn(s):
    """True when s is one whole chatml system turn: <|im_start|>system\\n...<|im_end|>\\n."""
    return (s.startswith("<|im_start|>system\n") and s.endswith("<|im_end|>\n")
            and s.count("<|im_start|>") == 1)


def check_model(helper, path, want_family):
    name = os.path.basename(path)
    reader = GGUFReader(path)
    template = field_str(reader, "tokenizer.chat_template")
    failures = 0
    if template is None:
        rc, out, err = run_helper(helper, path, CONVERSATIONS[0][1], True)
        ok = rc == 0 and "no chat template in the model; using chatml" in err
        print(f"{name}: no tokenizer.chat_template in the file; imp falls back to chatml: "
              f"{'ok' if ok else 'FAIL'} ({err.strip()})")
        return 0 if ok else 1
    bos = token_text(reader, field_int(reader, "tokenizer.ggml.bos_token_id"))
    eos = token_text(reader, field_int(reader, "tokenizer.ggml.eos_token_id"))
    for conv_name, msgs, gen in CONVERSATIONS:
        rc, got, err = run_helper(helper, path, msgs, gen)
        if rc != 0 or f"picked {want_family} " not in err:
            print(f"FAIL {name} / {conv_name}: helper rc={rc}, detection: {err.strip()} "
                  f"(want {want_family})")
            failures += 1
            continue
        try:
            want = reference(template, bos, eos, msgs, gen)
        except Exception as e:  # noqa: BLE001 - the template itself refuses this conversation
            print(f"{name} / {conv_name}: the model's template raises ({e}); not compared")
            continue
        if got == want:
            print(f"{name} / {conv_name}: identical ({len(got)} bytes)")
        elif (want_family == "chatml" and msgs[0]["role"] != "system" and want.endswith(got)
              and is_system_turn(want[:len(want) - len(got)])):
            print(f"{name} / {conv_name}: identical after the template's default system turn "
                  f"{want[:len(want) - len(got)]!r} (imp adds none, by design)")
        else:
            print(f"FAIL {name} / {conv_name}:\n  want {want!r}\n  got  {got!r}")
            failures += 1
    return failures


def main():
    if len(sys.argv) != 2:
        print("usage: py_chat_ref.py BUILD_DIR")
        return 2
    helper = os.path.join(sys.argv[1], "tests", "helper_chat_render")
    if not os.access(helper, os.X_OK):
        print(f"FAIL: {helper} is missing (build the helper_chat_render target)")
        return 1
    present = [(os.path.join(MODELS_DIR, f), fam) for f, fam in MODELS.items()
               if os.path.isfile(os.path.join(MODELS_DIR, f))]
    if not present:
        print(f"SKIPPED: none of {', '.join(MODELS)} is in {MODELS_DIR} "
              "(scripts/get-models.sh fetches them)")
        return 77
    failures = sum(check_model(helper, path, fam) for path, fam in present)
    print(f"py_chat_ref: {len(present)} model(s), {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
