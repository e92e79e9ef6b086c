"""GPU models the plan knows: memory, dense bf16 throughput and memory bandwidth.

Figures are the vendors' datasheet numbers (NVIDIA A100, H100, H200, L40S and L4 product
briefs): memory as `nvidia-smi` reports it (MiB / 1024), peak dense bf16 tensor TFLOP/s (without
structured sparsity) and peak HBM/GDDR bandwidth. The plan only uses them through stated
assumptions (a model-FLOPs utilisation, a bandwidth efficiency), see docs/plan.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gib: float
    """Device memory as nvidia-smi reports it, in GiB."""
    bf16_tflops: float
    """Peak dense bf16 tensor throughput, TFLOP/s."""
    memory_gbps: float
    """Peak memory bandwidth, GB/s."""


GPUS: dict[str, GpuSpec] = {spec.name: spec for spec in (
    GpuSpec("a100-40gb", 40960 / 1024, 312, 1555),   # A100 SXM4 40GB (p4d)
    GpuSpec("a100-80gb", 81920 / 1024, 312, 2039),   # A100 SXM4 80GB (p4de)
    GpuSpec("h100-80gb", 81559 / 1024, 989, 3350),   # H100 SXM5 80GB HBM3 (p5)
    GpuSpec("h200-141gb", 143771 / 1024, 989, 4800),  # H200 SXM 141GB (p5e/p5en)
    GpuSpec("l40s-48gb", 46068 / 1024, 362, 864),    # L40S 48GB (g6e)
    GpuSpec("l4-24gb", 23034 / 1024, 121, 300),      # L4 24GB (g6)
)}
GPU_TYPES = tuple(GPUS)
DEFAULT_GPU_TYPE = "a100-80gb"
