"""A small Python encoder for T5/umT5-style Unigram tokenizer.json files (what Hugging Face
tokenizers does, for the parts our files use):

  added tokens (exact match, split out first) -> normalizer Sequence[Precompiled charsmap,
  Replace] -> Metaspace (prepend, split, merged with next) -> Unigram Viterbi (unk edges at
  min_score - 10, consecutive unks fused) -> TemplateProcessing (append </s>).

Limit: the Precompiled normalizer is applied per character (HF applies it per extended grapheme
cluster; the two agree unless a combining sequence itself has an entry in the charsmap).
Checked against the HF library (npm @anush008/tokenizers) by tools/train/check_tokenizer.py.

    tok = Tokenizer("models/zoe-tiny/tokenizer.json")
    ids = tok.encode("a red circle moving left on a white background")   # ends with 1 (</s>)
    ids, mask = tok.batch([...], length=32)                               # padded with 0
"""
import base64
import json
import re
import struct


class Precompiled:
    def __init__(self, blob):
        trie_size = struct.unpack("<I", blob[:4])[0]
        n = trie_size // 4
        self.units = struct.unpack("<%dI" % n, blob[4:4 + trie_size])
        self.normalized = blob[4 + trie_size:]
        self.cache = {}

    def _prefix_values(self, key):
        u = self.units
        pos = 0

        def offset(x):
            return (x >> 10) << ((x & (1 << 9)) >> 6)

        def label(x):
            return x & ((1 << 31) | 0xff)

        def has_leaf(x):
            return (x >> 8) & 1

        def value(x):
            return x & 0x7fffffff
        out = []
        node = u[pos]
        pos ^= offset(node)
        for c in key:
            if c == 0:
                break
            pos ^= c
            node = u[pos]
            if label(node) != c:
                return out
            pos ^= offset(node)
            if has_leaf(node):
                out.append(value(u[pos]))
        return out

    def _replacement(self, idx):
        end = self.normalized.index(b"\0", idx)
        return self.normalized[idx:end].decode("utf-8")

    def normalize(self, text):
        out = []
        for ch in text:
            r = self.cache.get(ch)
            if r is None:
                vals = self._prefix_values(ch.encode("utf-8"))
                r = self._replacement(vals[0]) if vals else ch
                self.cache[ch] = r
            out.append(r)
        return "".join(out)


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        self.json = tj
        m = tj["model"]
        assert m["type"] == "Unigram"
        self.vocab = [(p, s) for p, s in m["vocab"]]
        self.piece_to_id = {p: i for i, (p, _) in enumerate(self.vocab)}
        self.unk_id = m["unk_id"]
        self.min_score = min(s for _, s in self.vocab)
        self.max_len = max(len(p) for p, _ in self.vocab)
        self.added = sorted(tj.get("added_tokens", []), key=lambda a: -len(a["content"]))
        self.norms = []
        nz = tj.get("normalizer")
        for n in (nz["normalizers"] if nz and nz["type"] == "Sequence" else ([nz] if nz else [])):
            if n["type"] == "Precompiled":
                self.norms.append(Precompiled(base64.b64decode(n["precompiled_charsmap"])).normalize)
            elif n["type"] == "Replace":
                pat = n["pattern"]
                rx = re.compile(pat["Regex"]) if "Regex" in pat else re.compile(re.escape(pat["String"]))
                self.norms.append(lambda s, rx=rx, c=n["content"]: rx.sub(c, s))
            elif n["type"] == "Strip":
                self.norms.append(lambda s, n=n: (s.lstrip() if n.get("strip_left") else s).rstrip()
                                  if n.get("strip_right") else (s.lstrip() if n.get("strip_left") else s))
            else:
                raise ValueError("unsupported normalizer " + n["type"])
        pt = tj["pre_tokenizer"]
        assert pt["type"] == "Metaspace"
        self.repl = pt["replacement"]
        if "prepend_scheme" in pt:
            self.prepend = pt["prepend_scheme"] in ("always", "first")
        else:
            self.prepend = pt.get("add_prefix_space", True)
        self.eos = None
        pp = tj.get("post_processor")
        if pp and pp["type"] == "TemplateProcessing":
            for item in pp["single"]:
                if "SpecialToken" in item:
                    self.eos = pp["special_tokens"][item["SpecialToken"]["id"]]["ids"][0]
        self.pad_id = 0

    def _viterbi(self, word):
        n = len(word)
        best = [None] * (n + 1)   # (score, prev_start, id)
        best[0] = (0.0, -1, -1)
        unk_score = self.min_score - 10.0
        for s in range(n):
            if best[s] is None:
                continue
            single = False
            for e in range(s + 1, min(n, s + self.max_len) + 1):
                pid = self.piece_to_id.get(word[s:e])
                if pid is None:
                    continue
                if e == s + 1:
                    single = True
                sc = best[s][0] + self.vocab[pid][1]
                if best[e] is None or sc > best[e][0]:
                    best[e] = (sc, s, pid)
            if not single:
                sc = best[s][0] + unk_score
                if best[s + 1] is None or sc > best[s + 1][0]:
                    best[s + 1] = (sc, s, self.unk_id)
        ids = []
        e = n
        while e > 0:
            _, s, pid = best[e]
            ids.append(pid)
            e = s
        ids.reverse()
        fused = []
        for i in ids:
            if i == self.unk_id and fused and fused[-1] == self.unk_id:
                continue
            fused.append(i)
        return fused

    def _encode_text(self, text):
        for f in self.norms:
            text = f(text)
        if not text:
            return []
        text = text.replace(" ", self.repl)
        if self.prepend and not text.startswith(self.repl):
            text = self.repl + text
        words = []
        cur = ""
        for ch in text:
            if ch == self.repl and cur:
                words.append(cur)
                cur = ""
            cur += ch
        if cur:
            words.append(cur)
        ids = []
        for w in words:
            ids += self._viterbi(w)
        return ids

    def encode(self, text, add_special_tokens=True):
        ids = []
        rest = text
        while rest:
            hit = None
            for a in self.added:
                i = rest.find(a["content"])
                if i >= 0 and (hit is None or i < hit[0]):
                    hit = (i, a)
            if hit is None:
                ids += self._encode_text(rest)
                break
            i, a = hit
            ids += self._encode_text(rest[:i])
            ids.append(a["id"])
            rest = rest[i + len(a["content"]):]
        if add_special_tokens and self.eos is not None:
            ids.append(self.eos)
        return ids

    def batch(self, texts, length):
        """-> (ids [B][length], mask [B][length]); truncated to length-1 tokens + </s> like HF."""
        all_ids, masks = [], []
        for t in texts:
            ids = self.encode(t)
            if len(ids) > length:
                ids = ids[:length - 1] + [self.eos]
            m = [1] * len(ids) + [0] * (length - len(ids))
            ids = ids + [self.pad_id] * (length - len(ids))
            all_ids.append(ids)
            masks.append(m)
        return all_ids, masks
