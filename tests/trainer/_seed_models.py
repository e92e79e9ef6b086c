"""Scripted Qwen2.5-VLs for the seed-method tests: the tiny model with weights set by hand so that
pipelines through the real pool can be checked against hand-worked expectations.

- `write_scripted_model`: always answers the same text, whatever the prompt;
- `write_view_aware_model`: answers per temporal view of a colour-clock video (which it tells from
  the frames' colours) and per question (which it tells from a word of the instruction); how, in
  its docstring.

write_scripted_model: every text layer's attention and MLP outputs are zeroed (o_proj, down_proj), so the hidden
state at a position is its token's embedding and the next token depends on the current token only
(a bigram model). The chain tokens get orthonormal embeddings, every other token one shared "start"
embedding, and lm_head row succ(t) is aligned with t's embedding: the start token leads to the first
chain token, each chain token to the next, the last one to <|im_end|>. The margin is about 110
logits, so sampling at temperature 1 follows the chain too. The tokens are chosen so that no token
repeats in a chain (a bigram cannot say what follows a repeated token).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

# "<answer>yes:8 to 12</answer>." : the reflection answer "the event also happens at 8-12 s";
# as a VTG answer it is the span 8-12.
YES_8_TO_12 = ("<", "answer", ">", "y", "es", ":", "8", " to", " ", "1", "2", "</", "answ", "e", "r", ">.")


def chain_text(tokens: Sequence[str]) -> str:
    return "".join(tokens)


def _write_model(tiny_dir: str | Path, out_dir: str | Path, set_weights: Callable[[Any, dict[str, int]], None]) -> Path:
    """Copy the tiny model at `tiny_dir` to `out_dir` (once: an existing copy is reused) with its
    weights set by `set_weights(model, token_id)` under torch.no_grad(); `token_id` maps a token's
    decoded text to its id."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(tiny_dir, staging)
    tokenizer = AutoProcessor.from_pretrained(str(staging)).tokenizer
    token_id = {tokenizer.decode([i]): i for i in sorted(tokenizer.get_vocab().values(), reverse=True)}
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(staging), dtype=torch.float32)
    with torch.no_grad():
        set_weights(model, token_id)
    model.save_pretrained(str(staging))
    staging.rename(out)
    return out


def write_scripted_model(tiny_dir: str | Path, out_dir: str | Path, tokens: Sequence[str], scale: float = 10.0) -> Path:
    """Copy the tiny model at `tiny_dir` to `out_dir` with weights that always answer `tokens`."""
    import torch

    def set_weights(model, token_id):
        ids = [token_id[t] for t in tokens] + [token_id["<|im_end|>"]]
        assert len(set(ids)) == len(ids), "a chain token repeats: a bigram model cannot say what follows it"
        text = model.model.language_model
        hidden = text.config.hidden_size
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

    return _write_model(tiny_dir, out_dir, set_weights)


# ---- a scripted model that answers per view and per question -------------------------------------

VIEW_COLOURS = {"original": ("red", "green"), "reversed": ("green", "red"), "shifted": ("blue", "blue")}
"""The colours of the two frames of every temporal patch (Qwen2.5-VL pairs consecutive frames) that
each temporal view of a `colour_clock_video` shows: the video is red at whole seconds, green at
half seconds and blue in between, so sampled at 2 fps from 0 s the pairs are (red, green),
reversed they are (green, red) and shifted by 0.25 s they are (blue, blue)."""
_CHANNEL = {"red": 0, "green": 1, "blue": 2}
_RGB = {"red": (230, 20, 20), "green": (20, 230, 20), "blue": (20, 20, 230)}


def colour_clock_colour(frame: int, fps: int) -> str:
    """The colour of frame `frame` of a colour-clock video at `fps` (a multiple of 4)."""
    phase = (4 * frame // fps) % 4  # quarter seconds
    return {0: "red", 2: "green"}.get(phase, "blue")


def write_colour_clock_video(path: str | Path, *, seconds: int = 20, fps: int = 4, width: int = 112,
                             height: int = 112) -> Path:
    """An H.264 video whose frames are uniformly red at whole seconds, green at half seconds and
    blue at the quarters in between (see VIEW_COLOURS)."""
    from fractions import Fraction

    import av
    import numpy as np

    if fps % 4:
        raise ValueError(f"fps must be a multiple of 4 (quarter seconds), got {fps}")
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12"}
        for f in range(seconds * fps):
            frame = np.empty((height, width, 3), dtype=np.uint8)
            frame[:] = _RGB[colour_clock_colour(f, fps)]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_view_aware_model(tiny_dir: str | Path, out_dir: str | Path, chains: dict[tuple[str, str], Sequence[str]],
                           triggers: dict[str, str], scale: float = 10.0) -> Path:
    """Copy the tiny model at `tiny_dir` to `out_dir` with weights that answer `chains[(view, question)]`:
    the view is read from the video (the colours of each temporal patch of a colour-clock video,
    VIEW_COLOURS) and the question from its instruction (`triggers[question]` is a token only that
    instruction holds, e.g. " happens" for VTG's). Every chain is a sequence of tokens, none repeated
    within a chain; chains may share tokens.

    How (hidden size 128, a few dozen orthonormal directions: one, start, each chain token, each
    view and question as seen in the video/prompt and as context):
    - vision: the patch embedding's channel v measures "the pair's first frame has view v's first
      colour and its second frame view v's second colour" (+1 on that channel, -1 on the others,
      averaged over the patch, after the processor's normalisation); the vision blocks are
      identities (attention and MLP outputs zeroed); the merger's RMSNorm keeps the proportions,
      its GELU keeps the positive detector only, and its output is that view's direction + one;
    - text layer 0, attention: one head has a constant query (q bias) on the slowest rotary pair
      (so the rotation over a few thousand positions is negligible) and keys only on video tokens:
      it averages their view direction, and writes the view's context direction; a second head
      does the same with the trigger tokens and writes the question's context direction. The
      other heads are silenced in o_proj;
    - text layer 0, MLP: one SwiGLU neuron per (token, view, question) step of a chain fires only
      when the current token, the view and the question all match (gate = 1 + 1 + 1 - 2.5 in
      units of the normalised directions), and writes the next token's direction;
    - layer 1 is an identity; lm_head row of each chain token is its direction (scaled), every
      other row zero. Every non-chain, non-trigger token embeds as start + one.
    The margin of the chosen token is about 110 logits, as in write_scripted_model."""
    import torch

    def set_weights(model, token_id):
        end = token_id["<|im_end|>"]
        views = sorted({view for view, _ in chains})
        questions = sorted(triggers)
        chain_ids = {key: [token_id[t] for t in tokens] + [end] for key, tokens in chains.items()}
        assert {q for _, q in chains} <= set(triggers), "every question needs a trigger token"
        for key, ids in chain_ids.items():
            assert len(set(ids)) == len(ids), f"chain {key}: a token repeats"
        trigger_ids = {q: token_id[t] for q, t in triggers.items()}
        tokens = sorted({i for ids in chain_ids.values() for i in ids})
        assert not set(trigger_ids.values()) & set(tokens), "a trigger token is also a chain token"

        text, vision = model.model.language_model, model.model.visual
        hidden, head_dim = text.config.hidden_size, text.config.hidden_size // text.config.num_attention_heads
        names = (["one", "start"] + [("token", t) for t in tokens] + [("seen", v) for v in views]
                 + [("view", v) for v in views] + [("asked", q) for q in questions]
                 + [("question", q) for q in questions])
        basis, _ = torch.linalg.qr(torch.randn(hidden, len(names), generator=torch.Generator().manual_seed(0)))
        d = {name: basis[:, k] for k, name in enumerate(names)}
        one = d["one"]
        slow = head_dim // 2 - 1  # the slowest rotary frequency's first dim
        # vision: view detectors in the patch embedding, identity blocks, merger -> "seen" + one
        embed = vision.patch_embed.proj.weight  # [C_out, 3, 2, 14, 14]
        embed.zero_()
        pixels = embed.shape[-1] * embed.shape[-2]
        for k, view in enumerate(views):
            for slot, colour in enumerate(VIEW_COLOURS[view]):
                for channel in range(3):
                    embed[k, channel, slot] = (1.0 if channel == _CHANNEL[colour] else -1.0) / pixels
        for block in vision.blocks:
            for linear in (block.attn.proj, block.mlp.down_proj):
                linear.weight.zero_()
                linear.bias.zero_()
        vision.merger.ln_q.weight.fill_(1.0)
        fc1, fc2 = vision.merger.mlp[0], vision.merger.mlp[2]
        fc1.weight.zero_(), fc1.bias.zero_(), fc2.weight.zero_(), fc2.bias.zero_()
        context_dim = fc1.in_features // 4  # the merger concatenates 2 x 2 patches
        for k, view in enumerate(views):
            for patch in range(4):
                fc1.weight[k, patch * context_dim + k] = 1.0
            fc2.weight[:, k] = d[("seen", view)] + one

        # embeddings and lm_head
        emb, head = text.embed_tokens.weight, model.lm_head.weight
        emb[:] = d["start"] + one
        head.zero_()
        for t in tokens:
            emb[t] = d[("token", t)] + one
            head[t] = scale * d[("token", t)]
        for q, t in trigger_ids.items():
            emb[t] = d[("asked", q)] + one
        text.norm.weight.fill_(1.0)

        # layer 0 attention: head 0 reads the video's view, head 2 the question's trigger
        layer = text.layers[0]
        attn = layer.self_attn
        layer.input_layernorm.weight.fill_(1.0)
        norm = math.sqrt(hidden / 2)  # RMSNorm of (unit direction + one)
        query = key = math.sqrt(40.0 * math.sqrt(head_dim) / norm)  # score 40 on a matching key
        for linear in (attn.q_proj, attn.k_proj, attn.v_proj):
            linear.weight.zero_()
            linear.bias.zero_()
        attn.o_proj.weight.zero_()
        groups = text.config.num_attention_heads // text.config.num_key_value_heads
        for q_head, seen in ((0, [d[("seen", v)] for v in views]), (groups, [d[("asked", q)] for q in questions])):
            kv_head = q_head // groups
            attn.q_proj.bias[q_head * head_dim + slow] = query
            attn.k_proj.weight[kv_head * head_dim + slow] = key * sum(seen)
            targets = [d[("view", v)] for v in views] if q_head == 0 else [d[("question", q)] for q in questions]
            for k, (source, target) in enumerate(zip(seen, targets)):
                attn.v_proj.weight[kv_head * head_dim + k] = source / norm
                attn.o_proj.weight[:, q_head * head_dim + k] = target

        # layer 0 MLP: one neuron per chain step
        layer.post_attention_layernorm.weight.fill_(1.0)
        mlp = layer.mlp
        mlp.gate_proj.weight.zero_(), mlp.up_proj.weight.zero_(), mlp.down_proj.weight.zero_()
        after = math.sqrt(hidden / 4)  # RMSNorm of token + one + view + question
        steps = [(view, question, current, following) for (view, question), ids in sorted(chain_ids.items())
                 for current, following in zip(["start"] + ids[:-1], ids)]
        room = mlp.gate_proj.out_features
        assert len(steps) <= room, f"{len(steps)} chain steps, room for {room}"
        gain, written = 40.0, 50.0
        for j, (view, question, current, following) in enumerate(steps):
            now = d["start"] if current == "start" else d[("token", current)]
            pattern = now + d[("view", view)] + d[("question", question)] - 2.5 * one
            mlp.gate_proj.weight[j] = gain * pattern / after
            mlp.up_proj.weight[j] = one / after
            mlp.down_proj.weight[:, j] = written * d[("token", following)] / (gain / 2)  # silu(gain / 2) ~ gain / 2

        # layer 1: identity
        for later in text.layers[1:]:
            later.self_attn.o_proj.weight.zero_()
            later.mlp.down_proj.weight.zero_()

    return _write_model(tiny_dir, out_dir, set_weights)
