"""A scripted Qwen2.5-VL for the seed-method tests: the tiny model with weights set so that it always
answers the same text, whatever the prompt, so pipelines through the real pool can be checked
against hand-worked expectations.

How: every text layer's attention and MLP outputs are zeroed (o_proj, down_proj), so the hidden
state at a position is its token's embedding and the next token depends on the current token only
(a bigram model). The chain tokens get orthonormal embeddings, every other token one shared "start"
embedding, and lm_head row succ(t) is aligned with t's embedding: the start token leads to the first
chain token, each chain token to the next, the last one to <|im_end|>. The margin is about 110
logits, so sampling at temperature 1 follows the chain too. The tokens are chosen so that no token
repeats in a chain (a bigram cannot say what follows a repeated token).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

# "<answer>Target ID:\n2 Time range:4 to 9</answer>." : stvg-r1 parses id 2, span 4-9; vtg parses 4-9.
R1_ID2_4_TO_9 = ("<", "answer", ">Target", " ID", ":\n", "2", " Time", " range", ":", "4", " to", " ", "9",
                 "</", "answ", "e", "r", ">.")
# "<answer>yes:8 to 12</answer>." : the reflection answer "the event also happens at 8-12 s";
# as a VTG answer it is the span 8-12.
YES_8_TO_12 = ("<", "answer", ">", "y", "es", ":", "8", " to", " ", "1", "2", "</", "answ", "e", "r", ">.")


def chain_text(tokens: Sequence[str]) -> str:
    return "".join(tokens)


def write_scripted_model(tiny_dir: str | Path, out_dir: str | Path, tokens: Sequence[str], scale: float = 10.0) -> Path:
    """Copy the tiny model at `tiny_dir` to `out_dir` with weights that always answer `tokens`."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(tiny_dir, staging)
    processor = AutoProcessor.from_pretrained(str(staging))
    tokenizer = processor.tokenizer
    by_text = {tokenizer.decode([i]): i for i in sorted(tokenizer.get_vocab().values(), reverse=True)}
    ids = [by_text[t] for t in tokens] + [by_text["<|im_end|>"]]
    assert len(set(ids)) == len(ids), "a chain token repeats: a bigram model cannot say what follows it"
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(staging), dtype=torch.float32)
    text = model.model.language_model
    hidden = text.config.hidden_size
    with torch.no_grad():
        for layer in text.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        text.norm.weight.fill_(1.0)
        basis, _ = torch.linalg.qr(torch.randn(hidden, len(ids) + 1, generator=torch.Generator().manual_seed(0)))
        start, chain = basis[:, 0], basis[:, 1:]
        embed = text.embed_tokens.weight
        embed[:] = start
        head = model.lm_head.weight
        head.zero_()
        head[ids[0]] = scale * start
        for k, token in enumerate(ids):
            embed[token] = chain[:, k]
            if k + 1 < len(ids):
                head[ids[k + 1]] = scale * chain[:, k]
    model.save_pretrained(str(staging))
    staging.rename(out)
    return out
