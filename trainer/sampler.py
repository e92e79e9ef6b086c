"""Deterministic prompt order, so a resumed run sees exactly the prompts it would have seen.

The order is a permutation of the dataset per epoch, seeded by (seed, epoch); the position is just
the number of prompts consumed so far, which the checkpoint stores. No hidden iterator state.
"""

from __future__ import annotations

import numpy as np


class PromptSampler:
    def __init__(self, dataset_size: int, seed: int, position: int = 0):
        if dataset_size <= 0:
            raise ValueError("cannot sample prompts from an empty dataset")
        self.dataset_size = dataset_size
        self.seed = seed
        self.position = position

    def _epoch_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.dataset_size)

    def indices_at(self, position: int, count: int) -> list[int]:
        """Dataset indices of prompts position .. position+count-1 (crossing epochs as needed)."""
        out: list[int] = []
        while len(out) < count:
            epoch, offset = divmod(position + len(out), self.dataset_size)
            order = self._epoch_order(epoch)
            out.extend(int(i) for i in order[offset: offset + count - len(out)])
        return out

    def next(self, count: int) -> list[int]:
        indices = self.indices_at(self.position, count)
        self.position += count
        return indices
