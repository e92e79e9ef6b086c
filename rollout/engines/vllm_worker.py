"""Loaded INSIDE vLLM's GPU worker (LLM(worker_extension_cls=...)); its methods become callable
through `llm.collective_rpc(name, args=...)`. Exercised on CPU against tests/rollout/fake_vllm only."""

from __future__ import annotations


class WeightLoader:
    def stvg_load_weights(self, named_tensors: list) -> int:
        """Copy (Hugging Face name, tensor) pairs into the running model; returns how many.
        `get_model()` unwraps the CUDA-graph wrapper that `model_runner.model` may be."""
        self.model_runner.get_model().load_weights(weights=named_tensors)
        return len(named_tensors)
