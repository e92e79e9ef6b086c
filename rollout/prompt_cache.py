"""Processed prompts kept between uses, least recently used evicted past a byte budget.

A prompt's frames and processor output depend only on the sample and the prompt settings, so a
worker that sees the same training sample again (every epoch) can skip decoding the video and
running the processor. On small models that work is a large share of a rollout (decoding alone is
~30-60 ms per 20-frame prompt on these CPUs, against ~100-200 ms to generate its group).
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Hashable

from rollout.types import PromptInputs


def prompt_bytes(prompt: PromptInputs) -> int:
    return sum(t.numel() * t.element_size() for t in (prompt.input_ids, prompt.pixel_values_videos))


class PromptCache:
    """`get(key, build)`: the cached PromptInputs of `key`, else `build()` cached. Holds at most
    `max_bytes` of tensors (the newest entry is always kept); 0 disables caching."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self._entries: collections.OrderedDict[Hashable, PromptInputs] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], PromptInputs]) -> PromptInputs:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return cached
        prompt = build()
        if self.max_bytes <= 0:
            return prompt
        with self._lock:
            if key not in self._entries:
                self._entries[key] = prompt
                self._bytes += prompt_bytes(prompt)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, old = self._entries.popitem(last=False)
                self._bytes -= prompt_bytes(old)
        return prompt

    def __len__(self) -> int:
        return len(self._entries)
