"""Compare tools/tokenizer.py with the Hugging Face tokenizers library (npm @anush008/tokenizers,
run by tools/train/hf_tokenize.js) on the world's prompts and on varied strings.

    NODE_PATH=/tmp/npmtok/node_modules /usr/bin/python3 tools/train/check_tokenizer.py models/zoe-tiny/tokenizer.json
"""
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from tokenizer import Tokenizer  # noqa: E402
from world import World  # noqa: E402


def main():
    path = sys.argv[1]
    w = World()
    texts = [w.make(s)[0] for s in range(300)]
    texts += ["", "a", "A Red CIRCLE, moving left!", "  two   spaces ", "tabs\tand\nnewlines", "café naïve ﬁ ①",
              "zoetrope 123 + 4.5%", "</s> inside", "a red circle moving left on a white background</s>",
              "日本語のテキスト", "emoji 🙂 here", "a blue square moving up and a green triangle shrinking"]
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABC,.!?-'0123456789é"
    for _ in range(100):
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    p = subprocess.run(["node", os.path.join(HERE, "hf_tokenize.js"), path],
                       input="\n".join(json.dumps(t) for t in texts) + "\n", capture_output=True, text=True, check=True)
    ref = [json.loads(l) for l in p.stdout.strip().split("\n")]
    tok = Tokenizer(path)
    bad = 0
    for t, r in zip(texts, ref):
        ids = tok.encode(t)
        if ids != r:
            bad += 1
            print("DIFF", repr(t), ids, r)
    print(f"{len(texts) - bad}/{len(texts)} strings give the same ids as HF tokenizers")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
