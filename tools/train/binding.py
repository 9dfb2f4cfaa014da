"""Training-only word-binding supervision for the zoe-tiny text encoder. A linear probe of the
run-4 encoder found each colour word's output knew its object's shape (100%) but its motion only
52% of the time (chance between the prompt's two motions), and the motion word knew its colour
44%: with two objects, the DiT could not tell which object moves which way. Here small linear
heads on the encoder's output predict, for each object of the prompt: at its colour word, its
shape and motion; at its shape and motion words, its colour. The heads are dropped at export.
"""
import numpy as np
import torch.nn as nn
import torch.nn.functional as F

IGNORE = -100


def token_labels(world, tokenizer, prompts, ids):
    """-> int64 [N, 3, L] labels per token (shape, motion, colour), IGNORE where none applies.
    ids: [N, L] token ids of the prompts (every world word is one token of the zoe-tiny tokenizer)."""
    vocab = [p for p, _ in tokenizer.vocab]
    word = [p.lstrip("\u2581") for p in vocab]
    colours, shapes = world.colour_names, world.shape_names
    # an object's words end where the grammar joins the next object or names the background
    g = world.grammar
    stops = {g["join"].split()[0], g["scene"].split("{objects}")[1].split()[0]}
    out = np.full((len(prompts), 3, ids.shape[1]), IGNORE, np.int64)
    for n, p in enumerate(prompts):
        spec = world.parse(p)
        if spec is None:
            continue
        toks = [word[t] for t in ids[n].tolist()]
        cpos = [j for j, t in enumerate(toks) if t in colours]
        spos = [j for j, t in enumerate(toks) if t in shapes]
        if len(cpos) != len(spec["objects"]) or len(spos) != len(spec["objects"]):
            continue
        for k, (col, shp, mot) in enumerate(spec["objects"]):
            out[n, 0, cpos[k]] = shapes.index(shp)
            out[n, 1, cpos[k]] = world.motion_names.index(mot)
            j = spos[k]
            while j < len(toks) and toks[j] not in stops:
                out[n, 2, j] = colours.index(col)
                j += 1
    return out


class BindingHead(nn.Module):
    def __init__(self, dim, world):
        super().__init__()
        self.sizes = (len(world.shape_names), len(world.motion_names), len(world.colour_names))
        self.net = nn.Linear(dim, sum(self.sizes))

    def forward(self, ctx):
        return self.net(ctx.float()).split(self.sizes, dim=-1)


def binding_loss(preds, labels):
    """Mean cross-entropy of the three heads over the tokens that have a label."""
    return sum(F.cross_entropy(p.reshape(-1, p.shape[-1]), labels[:, i].reshape(-1), ignore_index=IGNORE)
               for i, p in enumerate(preds)) / len(preds)
