"""Convert any SentencePiece Unigram .model (a protobuf ModelProto) into a Hugging Face
tokenizer.json of the T5/umT5 kind, as transformers' SpmConverter/T5Converter write it:

  normalizer     Sequence[Precompiled(precompiled_charsmap, base64), Replace(Regex " {2,}" -> " ")]
                 (no Precompiled when the model has no charsmap, e.g. --normalization_rule_name=identity)
  pre_tokenizer  Metaspace("▁", prepend_scheme "always" if add_dummy_prefix else "never", split true)
  model          Unigram(vocab = [[piece, score], ...] in id order, unk_id, byte_fallback)
  post_processor TemplateProcessing appending "</s>" (when the model has a "</s>" piece)
  decoder        Metaspace
  added_tokens   control and unknown pieces (special), user-defined pieces (not special)

    /usr/bin/python3 tools/spm_to_tokenizer_json.py in.model out.tokenizer.json [--old-metaspace]

--old-metaspace writes the older Metaspace spelling {"add_prefix_space": true} instead of
{"prepend_scheme": "always", "split": true}; both load in HF tokenizers with the same ids.

ModelProto fields used: 1 pieces (SentencePiece: 1 piece, 2 score (float), 3 type: 1 normal,
2 unknown, 3 control, 4 user defined, 5 unused, 6 byte), 2 trainer_spec (35 byte_fallback),
3 normalizer_spec (2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces).
"""
import base64
import json
import os
import struct
import sys

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _varint(buf, i):
    shift = 0
    val = 0
    while True:
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, i
        shift += 7


def parse_message(buf):
    """-> list of (field_number, wire_type, value) with value int (varint/fixed) or bytes."""
    out = []
    i = 0
    n = len(buf)
    while i < n:
        key, i = _varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            v = buf[i:i + ln]
            i += ln
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        out.append((field, wt, v))
    return out


def read_spm_model(path):
    with open(path, "rb") as f:
        buf = f.read()
    pieces = []
    charsmap = b""
    add_dummy_prefix = True
    remove_extra_ws = True
    byte_fallback = False
    model_type = 1  # UNIGRAM
    for field, wt, v in parse_message(buf):
        if field == 1 and wt == 2:
            piece, score, typ = "", 0.0, NORMAL
            for f2, wt2, v2 in parse_message(v):
                if f2 == 1:
                    piece = v2.decode("utf-8")
                elif f2 == 2:
                    score = struct.unpack("<f", v2)[0]
                elif f2 == 3:
                    typ = v2
            pieces.append((piece, score, typ))
        elif field == 2 and wt == 2:
            for f2, wt2, v2 in parse_message(v):
                if f2 == 35:
                    byte_fallback = bool(v2)
                elif f2 == 3:
                    model_type = v2
        elif field == 3 and wt == 2:
            for f2, wt2, v2 in parse_message(v):
                if f2 == 2:
                    charsmap = bytes(v2)
                elif f2 == 3:
                    add_dummy_prefix = bool(v2)
                elif f2 == 4:
                    remove_extra_ws = bool(v2)
    return dict(pieces=pieces, charsmap=charsmap, add_dummy_prefix=add_dummy_prefix,
                remove_extra_whitespaces=remove_extra_ws, byte_fallback=byte_fallback, model_type=model_type)


def convert(m, old_metaspace=False):
    if m["model_type"] != 1:
        raise ValueError("only Unigram sentencepiece models are supported (model_type %d)" % m["model_type"])
    pieces = m["pieces"]
    unk_ids = [i for i, p in enumerate(pieces) if p[2] == UNKNOWN]
    if not unk_ids:
        raise ValueError("the model has no unknown piece")
    unk_id = unk_ids[0]
    added = []
    for i, (piece, score, typ) in enumerate(pieces):
        if typ in (CONTROL, UNKNOWN, USER_DEFINED):
            added.append({"id": i, "content": piece, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": typ == USER_DEFINED, "special": typ != USER_DEFINED})
    normalizers = []
    if m["charsmap"]:
        normalizers.append({"type": "Precompiled", "precompiled_charsmap": base64.b64encode(m["charsmap"]).decode("ascii")})
    normalizers.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    if old_metaspace:
        meta = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": m["add_dummy_prefix"]}
    else:
        meta = {"type": "Metaspace", "replacement": "\u2581",
                "prepend_scheme": "always" if m["add_dummy_prefix"] else "never", "split": True}
    eos = next((i for i, p in enumerate(pieces) if p[0] == "</s>" and p[2] == CONTROL), None)
    post = None
    if eos is not None:
        a = {"Sequence": {"id": "A", "type_id": 0}}
        b = {"Sequence": {"id": "B", "type_id": 0}}
        s = {"SpecialToken": {"id": "</s>", "type_id": 0}}
        post = {"type": "TemplateProcessing", "single": [a, s], "pair": [a, s, b, s],
                "special_tokens": {"</s>": {"id": "</s>", "ids": [eos], "tokens": ["</s>"]}}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": meta,
        "post_processor": post,
        "decoder": dict(meta),
        "model": {"type": "Unigram", "unk_id": unk_id, "vocab": [[p[0], float(p[1])] for p in pieces],
                  "byte_fallback": m["byte_fallback"]},
    }


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    tj = convert(read_spm_model(args[0]), old_metaspace="--old-metaspace" in argv)
    tmp = args[1] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, args[1])


if __name__ == "__main__":
    main(sys.argv[1:])
