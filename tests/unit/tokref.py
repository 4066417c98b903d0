#!/usr/bin/env python3
"""
Independent reference tokenizers built from a GGUF file's vocabulary, for checking imp's tokenizer.

imp implements the tokenizers itself (src/tokenizer/, following llama.cpp's semantics).  This module
rebuilds the same vocabulary in two widely used implementations that share no code with imp or with
llama.cpp, so that a token-id mismatch points at a real difference:

  tokenizer.ggml.model == "gpt2" (byte-level BPE)  ->  HF `tokenizers` (Rust), models.BPE built from
      tokenizer.ggml.tokens (already in the GPT-2 byte-to-unicode alphabet) and tokenizer.ggml.merges
      (rank = position), no dropout / unk / byte fallback / ignore_merges, and the pre-tokenizer that
      the original model's tokenizer.json uses for that tokenizer.ggml.pre value (_BPE_PRE below).

      "smollm": Sequence[Digits(individual_digits=True),
                         ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)],
      no normalizer, ByteLevel decoder.  Evidence: a public exporter pinned to
      HuggingFaceTB/SmolLM2-135M @ 93efa2f097d58c2a74874c7e644dbc9b0cee75a2 refuses any
      tokenizer.json whose pre_tokenizer differs from exactly that Sequence or whose normalizer is
      not null, and requires model BPE with dropout/unk_token null, fuse_unk/byte_fallback/
      ignore_merges false; SmolLM2's tokenizer_config.json (HF hub mirrors) has add_prefix_space
      false and all 17 added tokens (<|endoftext|> .. ) special, lstrip/rstrip/normalized false.
      llama.cpp (src/llama-vocab.cpp) maps pre "smollm" to the regex list {"\\p{N}", GPT-2's
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"}, i.e. the
      same two stages (Rust's char::is_numeric is \\p{N}, up to the Unicode version of the tables).
      "gpt2": ByteLevel(add_prefix_space=False, use_regex=True) alone (GPT-2's own tokenizer.json).

      GGUF token_type 3 (control) and 4 (user-defined) become added tokens (normalized=False,
      special=True for control).  llama.cpp matches user-defined tokens in the text always and
      control tokens only when asked to parse specials, so there are two HF tokenizers: one with
      the user-defined tokens only (plain text) and one with both (parse_special=True).

  tokenizer.ggml.model == "llama" (SentencePiece)  ->  the real `sentencepiece` library, loaded
      from a ModelProto rebuilt here: trainer_spec.model_type BPE, byte_fallback true, the pieces in
      id order with the GGUF scores, types mapped 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED,
      5 UNUSED, 6 BYTE (the tokenizer.ggml.unknown_token_id piece is forced to UNKNOWN: SentencePiece
      needs exactly one, and llama.cpp's converter writes Gemma's <unk> as CONTROL);
      normalizer_spec "identity" (empty precompiled_charsmap: no NFKC), add_dummy_prefix =
      tokenizer.ggml.add_space_prefix (default true, as llama.cpp), remove_extra_whitespaces false,
      escape_whitespaces true (SentencePiece rewrites " " as U+2581 before matching).

      Gemma 3 findings: its tokenizer.model (google/gemma-3-*-it) has 255474 NORMAL, 6410
      USER_DEFINED, 256 BYTE, 3 CONTROL (<pad> <eos> <bos>) and 1 UNKNOWN piece, and <start_of_turn>
      (105), <unused*>, the "\\n"/space/tab runs and the HTML tags are USER_DEFINED with score 0
      (DhruvPatel01.github.io, content/posts/gemma3_tokenizer/index.md, which loads it with
      sentencepiece); normal-piece scores there ('He' -1715, 'el' -41, 'll' -365, 'lo' -350) equal the
      GGUF's.  Its normalizer keeps escape_whitespaces = true (huggingface/transformers#46202) and has
      add_dummy_prefix false (the GGUF's add_space_prefix false; a public SentencePiece rebuild of the
      Gemma 4 vocabulary states name "identity", add_dummy_prefix false, byte_fallback true, and the
      Gemma 3 report describes "split digits, preserved whitespace, and byte-level encodings": the
      vocabulary has no multi-digit ASCII piece).  split_digits / allow_whitespace_only_pieces are
      trainer options that do not change encoding; they are set as Gemma has them for fidelity.
      llama.cpp's converter (convert_hf_to_gguf.py, _create_vocab_sentencepiece) overrides the
      types from tokenizer_config.json's added_tokens_decoder: "special" ones become CONTROL (so
      <start_of_turn>, <unused*>, <mask>, <start_of_image> are CONTROL in the GGUF, USER_DEFINED in
      the original) and the others USER_DEFINED with U+2581 replaced by " " ("pre-normalize
      user-defined spaces", added for Gemma).  Here that replacement is undone (" " -> U+2581) for
      USER_DEFINED pieces so that SentencePiece's matcher, which runs after whitespace escaping,
      finds them.  The GGUF types are followed (not the original ones) because imp follows
      llama.cpp: without parse_special, "<start_of_turn>" is text; the original Gemma tokenizer
      would give 105 for that text.  For parse_special a second model is built in which the
      CONTROL pieces are USER_DEFINED, so SentencePiece's own longest-prefix matcher emits them.
      Remaining caveat: the UNKNOWN piece's text ("<unk>") is not matched as a special there.

Both references must also reproduce outputs of the original tokenizers published elsewhere
(PUBLISHED below; self_check()): for SmolLM2, HF AutoTokenizer ids recorded in public fixtures,
including "In 2026, the weather" -> 788 216 34 32 34 38 28 260 3947 where the lone 216 "G-space" and
the split digits are the Digits stage's doing; for Gemma 3, sentencepiece's pieces on the real
tokenizer.model (<start_of_turn> chat text, <unused10>, "<bos>Heyllo", byte fallback of U+1FAE9).

Cross-check with transformers (`tokref.py crosscheck`; transformers 5.23.0 was used, tokenizers
0.23.3).  AutoTokenizer.from_pretrained(dir, gguf_file=...) needs torch there (its GGUF reader
imports it), so without torch the same converter, convert_gguf_tokenizer() from
transformers/integrations/gguf/gguf_tokenizer_mapping.py, is fed the same metadata.
  SmolLM2: transformers builds GPT2Tokenizer with plain ByteLevel(use_regex=True) and has no split
      for pre "smollm" (its table knows llama3/qwen2/tekken/gpt-4o...), i.e. no Digits stage.  It
      agrees on code.txt and disagrees on GPL-3 (first at id 795, "\\n\\n  0.": reference "\\n\\n  " + "0",
      transformers "\\n\\n " + " " + "0") and on multilingual.txt (a space before Arabic-Indic digits).
      The reference is right: the published HF ids above need the Digits stage, and llama.cpp's
      smollm regex list has it too.  Whitespace before a digit is where the two differ.
  Gemma 3: transformers uses GemmaTokenizer (normalizer Replace(" ", U+2581), BPE with merges
      regenerated from the vocabulary order, byte fallback) and agrees on GPL-3 and multilingual.txt,
      but on code.txt's run of 40 spaces gives 16 + 24 spaces where the reference gives 31 + 9: its
      gemma builder respells the space-run tokens as U+2581 runs, after which they are no longer
      added (user-defined) tokens and BPE merge ranks split the run.  The reference is right: in
      the original tokenizer.model those runs are USER_DEFINED (longest match, as SentencePiece and
      llama.cpp do).

Usage as a module:
    ref = tokref.load("model.gguf")
    ids = ref.encode("text", parse_special=False, add_bos=False)
    raw = ref.decode_bytes(ids)         # bytes (the reference's own detokenization, llama.cpp rules)
    ref.piece(i)                        # the token's text as the GGUF stores it
Command line:
    tokref.py encode MODEL.gguf FILE [--parse-special] [--add-bos]     ids of FILE's text
    tokref.py crosscheck MODELS_DIR NAME.gguf [FILE...]                vs transformers (if installed)
"""
import os
import re
import sys

# GGUF token types (llama.cpp's llama_token_type == SentencePiece's ModelProto.SentencePiece.Type).
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6


def library_versions():
    """{'tokenizers': v, 'sentencepiece': v, 'gguf': v} for what is importable (for messages)."""
    out = {}
    for name in ("tokenizers", "sentencepiece", "gguf", "google.protobuf"):
        try:
            mod = __import__(name, fromlist=["__version__"])
            out[name] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001
            pass
    if "gguf" in out and out["gguf"] == "?":
        try:
            from importlib.metadata import version
            out["gguf"] = version("gguf")
        except Exception:  # noqa: BLE001
            pass
    return out


class GGUFVocab:
    """The tokenizer.* metadata of a GGUF file, read with PyPI gguf (not imp's reader)."""

    def __init__(self, path):
        import gguf
        reader = gguf.GGUFReader(path)  # parses every key; ~20 s for a 262k vocabulary
        fields = reader.fields

        def get(key, default=None):
            f = fields.get(key)
            if f is None:
                return default
            return f.contents()

        self.path = path
        self.model = get("tokenizer.ggml.model")
        self.pre = get("tokenizer.ggml.pre", "default")
        f = fields["tokenizer.ggml.tokens"]
        self.token_bytes = [bytes(f.parts[i]) for i in f.data]
        self.tokens = [b.decode("utf-8", errors="surrogateescape") for b in self.token_bytes]
        n = len(self.tokens)
        self.types = list(get("tokenizer.ggml.token_type", [TT_NORMAL] * n))
        self.scores = list(get("tokenizer.ggml.scores", [0.0] * n))
        self.merges = get("tokenizer.ggml.merges", [])
        self.bos = get("tokenizer.ggml.bos_token_id")
        self.eos = get("tokenizer.ggml.eos_token_id")
        self.unk = get("tokenizer.ggml.unknown_token_id")
        self.pad = get("tokenizer.ggml.padding_token_id")
        self.add_bos = bool(get("tokenizer.ggml.add_bos_token", self.model == "llama"))
        self.add_space_prefix = bool(get("tokenizer.ggml.add_space_prefix", self.model == "llama"))
        self.charsmap = get("tokenizer.ggml.precompiled_charsmap")
        if len(self.types) != n or len(self.scores) != n:
            raise ValueError(f"{path}: token_type/scores length differ from tokens ({n})")


# ----------------------------------------------------------------------------------------------
# byte-level BPE ("gpt2") through HF tokenizers


def _gpt2_byte_alphabet():
    """GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100.. in order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _bpe_pre_tokenizer(pre):
    from tokenizers import pre_tokenizers as P
    table = {
        "smollm": lambda: P.Sequence([
            P.Digits(individual_digits=True),
            P.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]),
        "gpt2": lambda: P.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    }
    if pre not in table:
        raise NotImplementedError(f"no verified reference pre-tokenizer for tokenizer.ggml.pre={pre!r} "
                                  f"(known: {sorted(table)})")
    return table[pre]()


class BPEReference:
    def __init__(self, v):
        from tokenizers import AddedToken, Tokenizer, decoders, models
        import tokenizers
        self.v = v
        self.library = f"HF tokenizers {tokenizers.__version__} (BPE + pre-tokenizer for {v.pre!r})"
        vocab = {t: i for i, t in enumerate(v.tokens)}
        if len(vocab) != len(v.tokens):
            raise ValueError("duplicate token texts in a byte-level vocabulary")
        merges = []
        for m in v.merges:
            a, sep, b = m.partition(" ")
            if not sep:
                raise ValueError(f"bad merge {m!r}")
            merges.append((a, b))
        self._byte_of = {c: b for b, c in _gpt2_byte_alphabet().items()}

        def build(with_control):
            tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                                       fuse_unk=False, byte_fallback=False, ignore_merges=False))
            tok.pre_tokenizer = _bpe_pre_tokenizer(v.pre)
            tok.decoder = decoders.ByteLevel()
            added = []
            for i, (t, ty) in enumerate(zip(v.tokens, v.types)):
                if ty == TT_USER_DEFINED or (with_control and ty in (TT_CONTROL, TT_UNKNOWN)):
                    added.append(AddedToken(t, special=(ty != TT_USER_DEFINED), normalized=False,
                                            lstrip=False, rstrip=False, single_word=False))
            if added:
                tok.add_tokens(added)
                for a in added:  # an added token that is in the vocabulary keeps its id
                    if tok.token_to_id(a.content) != vocab[a.content]:
                        raise ValueError(f"added token {a.content!r} got a new id")
            return tok

        self._plain = build(False)
        self._special = build(True)

    def encode(self, text, parse_special=False, add_bos=False):
        tok = self._special if parse_special else self._plain
        ids = tok.encode(text, add_special_tokens=False).ids if text else []
        return ([self.v.bos] if add_bos else []) + list(ids)

    def decode_bytes(self, ids):
        out = bytearray()
        for i in ids:
            t, ty = self.v.tokens[i], self.v.types[i]
            if ty == TT_NORMAL:
                out += bytes(self._byte_of[c] for c in t)
            else:  # control / user-defined text is stored verbatim
                out += self.v.token_bytes[i]
        return bytes(out)


# ----------------------------------------------------------------------------------------------
# SentencePiece ("llama") through the sentencepiece library

SPACE = "\u2581"


def _sp_proto(v, specials_as_user_defined):
    from sentencepiece import sentencepiece_model_pb2 as pb
    if v.charsmap is not None and len(v.charsmap) > 0:
        raise NotImplementedError("tokenizer.ggml.precompiled_charsmap is set: a normalizing "
                                  "(nmt_nfkc-like) SentencePiece model, not covered by this reference")
    m = pb.ModelProto()
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = len(v.tokens)
    ts.byte_fallback = True
    ts.split_digits = True                  # training-only; as Gemma has it
    ts.allow_whitespace_only_pieces = True  # training-only; as Gemma has it
    ts.unk_id = v.unk if v.unk is not None else 0
    ts.bos_id = v.bos if v.bos is not None else -1
    ts.eos_id = v.eos if v.eos is not None else -1
    ts.pad_id = v.pad if v.pad is not None and v.pad not in (v.bos, v.eos, v.unk) else -1
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = v.add_space_prefix
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    T = pb.ModelProto.SentencePiece
    type_map = {TT_NORMAL: T.NORMAL, TT_UNKNOWN: T.UNKNOWN, TT_CONTROL: T.CONTROL,
                TT_USER_DEFINED: T.USER_DEFINED, TT_UNUSED: T.UNUSED, TT_BYTE: T.BYTE}
    for i, (text, score, ty) in enumerate(zip(v.tokens, v.scores, v.types)):
        p = m.pieces.add()
        t = type_map.get(ty, T.NORMAL)
        if i == v.unk:
            t = T.UNKNOWN
        elif ty == TT_UNKNOWN:
            t = T.CONTROL  # only one UNKNOWN allowed
        if t == T.CONTROL and specials_as_user_defined:
            t = T.USER_DEFINED
        if t == T.USER_DEFINED:
            text = text.replace(" ", SPACE)  # undo llama.cpp's "pre-normalize user-defined spaces"
        p.piece = text
        p.score = float(score)
        p.type = t
    return m.SerializeToString()


class SPMReference:
    def __init__(self, v):
        import sentencepiece as spm
        self.v = v
        self.library = f"sentencepiece {spm.__version__} (BPE ModelProto rebuilt from the GGUF)"
        self._plain = spm.SentencePieceProcessor(model_proto=_sp_proto(v, False))
        self._special = spm.SentencePieceProcessor(model_proto=_sp_proto(v, True))
        self._byte_re = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")

    def encode(self, text, parse_special=False, add_bos=False):
        sp = self._special if parse_special else self._plain
        ids = sp.encode(text, out_type=int) if text else []
        return ([self.v.bos] if add_bos else []) + list(ids)

    def decode_bytes(self, ids):
        """llama.cpp's token_to_piece rules: NORMAL U+2581 -> " ", BYTE -> the byte, USER_DEFINED
        verbatim, CONTROL as its text (what --parse-special put there)."""
        out = bytearray()
        for i in ids:
            ty = self.v.types[i]
            if ty == TT_BYTE:
                out.append(int(self._byte_re.match(self.v.tokens[i]).group(1), 16))
            elif ty == TT_NORMAL:
                out += self.v.tokens[i].replace(SPACE, " ").encode("utf-8", errors="surrogateescape")
            else:
                out += self.v.token_bytes[i]
        return bytes(out)


# ----------------------------------------------------------------------------------------------


class Reference:
    """encode / decode_bytes / piece over one of the two implementations above."""

    def __init__(self, path):
        self.vocab = GGUFVocab(path)
        v = self.vocab
        if v.model == "gpt2":
            self.impl = BPEReference(v)
        elif v.model == "llama":
            self.impl = SPMReference(v)
        else:
            raise NotImplementedError(f"no reference for tokenizer.ggml.model={v.model!r}")
        self.library = self.impl.library

    def encode(self, text, parse_special=False, add_bos=False):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return self.impl.encode(text, parse_special=parse_special, add_bos=add_bos)

    def decode_bytes(self, ids):
        return self.impl.decode_bytes(ids)

    def missing_bytes(self, raw):
        """Sorted byte values of raw that a byte-level vocabulary has no token for ([] for SPM)."""
        if self.vocab.model != "gpt2":
            return []
        have = set(self.vocab.tokens)
        alpha = _gpt2_byte_alphabet()
        return sorted({b for b in raw if alpha[b] not in have})

    def piece(self, i):
        if 0 <= i < len(self.vocab.tokens):
            return self.vocab.tokens[i]
        return f"<out of range {i}>"


def load(path):
    return Reference(path)


# Outputs of the ORIGINAL tokenizers, published elsewhere, that the rebuilt references must
# reproduce (ids, or pieces where the source printed pieces).  (text, parse_special, expected).
_CHATML_SYS = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
               "<|im_end|>\n")
PUBLISHED = {
    # HF AutoTokenizer for HuggingFaceTB/SmolLM2-135M(-Instruct), as recorded in public test
    # fixtures and llama-tokenize logs ("In 2026": the digit split and the lone 216 "Ġ" are the
    # Digits pre-tokenizer's doing).
    "SmolLM2-135M-Instruct.Q4_1.gguf": [
        ("The capital of France is", False, [504, 3575, 282, 4649, 314]),
        ("Once upon a time", False, [6403, 1980, 253, 655]),
        ("def add(a, b): return", False, [1604, 803, 24, 81, 28, 278, 727, 1003]),
        ("In 2026, the weather", False, [788, 216, 34, 32, 34, 38, 28, 260, 3947]),
        ("Hello world, this is", False, [19556, 905, 28, 451, 314]),
        (_CHATML_SYS + "<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n", True,
         [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
          19712, 8182, 2, 198, 1, 4093, 198, 28120, 905, 2, 198, 1, 520, 9531, 198]),
    ],
    # sentencepiece on Gemma 3's own tokenizer.model (DhruvPatel01.github.io,
    # content/posts/gemma3_tokenizer/index.md).  There <start_of_turn> and <unused*> are
    # USER_DEFINED, so they match in plain text; in the GGUF they are CONTROL, hence parse_special.
    "gemma-3-270m-q4_k_m.gguf": [
        ("<start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model", True,
         ["<start_of_turn>", "user", "\n", "Who", "\u2581are", "\u2581you", "?", "<end_of_turn>", "\n",
          "<start_of_turn>", "model"]),
        ("<unused10> blahblahblah", True, ["<unused10>", "\u2581blah", "blah", "blah"]),
        ("<bos>Heyllo", False, ["<", "bos", ">", "Hey", "llo"]),
        ("\U0001fae9", False, ["<0xF0>", "<0x9F>", "<0xAB>", "<0xA9>"]),
    ],
}


def self_check(ref):
    """Mismatches (strings) between ref and the published outputs for its file; [] if none or none known."""
    bad = []
    for text, ps, want in PUBLISHED.get(os.path.basename(ref.vocab.path), []):
        ids = ref.encode(text, parse_special=ps)
        got = [ref.piece(i) for i in ids] if want and isinstance(want[0], str) else ids
        if got != want:
            bad.append(f"{text!r} (parse_special={ps}): reference {got}, published {want}")
    return bad


def transformers_tokenizer(models_dir, name, vocab=None):
    """transformers' own GGUF tokenizer conversion, as (backend tokenizers.Tokenizer, how).

    AutoTokenizer.from_pretrained(models_dir, gguf_file=name) is tried first.  Its GGUF metadata
    reader imports torch; without torch, the same converter (convert_gguf_tokenizer in
    transformers/integrations/gguf/gguf_tokenizer_mapping.py) is fed the same fields, read here
    with PyPI gguf under transformers' names (GGUF_TOKENIZER_MAPPING)."""
    try:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(models_dir, gguf_file=name)
        return tok.backend_tokenizer, "AutoTokenizer.from_pretrained(gguf_file=...)"
    except ModuleNotFoundError as e:
        first_error = e
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer
    import gguf
    v = vocab or GGUFVocab(os.path.join(models_dir, name))
    arch = gguf.GGUFReader(os.path.join(models_dir, name)).fields["general.architecture"].contents()
    d = {"tokenizer_type": v.model, "pre_tokenizer_type": v.pre, "tokens": v.tokens,
         "scores": v.scores, "token_type": v.types, "bos_token_id": v.bos, "eos_token_id": v.eos,
         "unk_token_id": v.unk, "pad_token_id": v.pad, "add_prefix_space": v.add_space_prefix}
    if v.merges:
        d["merges"] = v.merges
    backend, _ = convert_gguf_tokenizer(arch, d)
    return backend, f"convert_gguf_tokenizer({arch!r}, ...) (AutoTokenizer path needs torch: {first_error})"


def _crosscheck(models_dir, name, files):
    ref = load(os.path.join(models_dir, name))
    hf, how = transformers_tokenizer(models_dir, name, ref.vocab)
    import transformers
    print(f"{name}: reference = {ref.library}")
    print(f"  transformers {transformers.__version__} via {how}")
    print(f"  transformers normalizer={hf.normalizer!r}")
    print(f"  transformers pre_tokenizer={hf.pre_tokenizer!r}")
    texts = [(f, open(f, "rb").read().decode("utf-8")) for f in files]
    for label, text in texts:
        for ps in (False, True):
            a = ref.encode(text, parse_special=ps)
            b = hf.encode(text, add_special_tokens=False).ids if text else []
            tag = f"{label}{' (parse_special)' if ps else ''}"
            if a == b:
                print(f"  agree    {tag}: {len(a)} ids")
                continue
            k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
            print(f"  DISAGREE {tag}: ref {len(a)} ids, transformers {len(b)} ids, first at {k}")
            print("    ref:          ", [(x, ref.piece(x)) for x in a[max(0, k - 2):k + 4]])
            print("    transformers: ", [(x, ref.piece(x)) for x in b[max(0, k - 2):k + 4]])


def main(argv):
    if len(argv) >= 3 and argv[1] == "encode":
        ref = load(argv[2])
        text = open(argv[3], "rb").read().decode("utf-8")
        print(" ".join(map(str, ref.encode(text, parse_special="--parse-special" in argv,
                                           add_bos="--add-bos" in argv))))
        return 0
    if len(argv) >= 4 and argv[1] == "crosscheck":
        _crosscheck(argv[2], argv[3], argv[4:])
        return 0
    print(__doc__.split("Command line:")[1])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
