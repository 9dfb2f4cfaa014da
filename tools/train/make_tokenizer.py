"""Train the zoe-tiny tokenizer: a SentencePiece Unigram model (Debian's spm_train) on the world's
prompts, with T5 ids (pad 0, eos 1, unk 2, no bos), converted to tokenizer.json by
tools/spm_to_tokenizer_json.py.

    /usr/bin/python3 tools/train/make_tokenizer.py OUT_DIR [world.json]

Writes OUT_DIR/spm.model, OUT_DIR/spm.vocab, OUT_DIR/tokenizer.json. Deterministic (fixed corpus
order, --random_seed, one thread).
"""
import os
import random
import shutil
import string
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from world import World, DEFAULT_WORLD  # noqa: E402
import spm_to_tokenizer_json as conv  # noqa: E402

VOCAB_SIZE = 256


def corpus_lines(world):
    rng = random.Random(1234)
    lines = []
    phrases = world.all_object_phrases()
    for bg in world.background_names:
        for c, s, m in phrases:
            lines.append(world.prompt(dict(background=bg, objects=[dict(colour=c, shape=s, motion=m)])))
    for _ in range(6000):
        bg = rng.choice(world.background_names)
        a, b = rng.sample(phrases, 2)
        objs = [dict(colour=a[0], shape=a[1], motion=a[2]), dict(colour=b[0], shape=b[1], motion=b[2])]
        lines.append(world.prompt(dict(background=bg, objects=objs)))
    # every world word also followed by punctuation: sentencepiece seeds only substrings with several
    # right contexts, and in the prompts alone each word is always followed by a space
    words = sorted({w for line in lines for w in line.split()})
    for w in words:
        lines.append(" ".join(w + p for p in ".,!?;:") + " " + w.capitalize() + ".")
    # every printable ASCII character, so that text outside the world still gets pieces, not <unk>
    chars = string.ascii_letters + string.digits + string.punctuation
    for i in range(20):
        lines.append(" ".join(chars[j::7] for j in range(7)))
        lines.append(chars)
    return lines


def main():
    out = sys.argv[1]
    wpath = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_WORLD
    os.makedirs(out, exist_ok=True)
    world = World(wpath)
    corpus = os.path.join(out, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(corpus_lines(world)) + "\n")
    spm = shutil.which("spm_train")
    if spm is None:
        sys.exit("spm_train not found: apt-get install sentencepiece")
    cmd = [spm, f"--input={corpus}", f"--model_prefix={os.path.join(out, 'spm')}", "--model_type=unigram",
           f"--vocab_size={VOCAB_SIZE}", "--hard_vocab_limit=false", "--character_coverage=1.0",
           "--pad_id=0", "--eos_id=1", "--unk_id=2", "--bos_id=-1", "--pad_piece=<pad>", "--eos_piece=</s>",
           "--unk_piece=<unk>", "--random_seed=7", "--num_threads=1", "--minloglevel=2",
           "--normalization_rule_name=nmt_nfkc"]
    subprocess.run(cmd, check=True)
    tj = conv.convert(conv.read_spm_model(os.path.join(out, "spm.model")))
    import json
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"tokenizer: {len(tj['model']['vocab'])} pieces -> {os.path.join(out, 'tokenizer.json')}")


if __name__ == "__main__":
    main()
