"""The result of an evaluation: per-query rows, aggregates per group (in %), a printable table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class QueryResult:
    id: str
    sentence_type: Optional[str]
    predicted: bool
    """False when no prediction was given for the query (it scores 0)."""
    tiou: float
    """Temporal IoU as a fraction in [0, 1]."""
    viou: Optional[float]
    """vIoU as a fraction in [0, 1]; None for VTG datasets."""


@dataclass
class MetricsReport:
    dataset_kind: str
    rows: list[QueryResult]
    aggregates: dict[str, dict[str, float]]
    """group -> metric -> value in %; groups: "all", plus one per sentence type for VidSTG."""
    counts: dict[str, dict[str, int]]
    """group -> {"queries": n, "predicted": k}."""
    protocol: dict[str, Any] = field(default_factory=dict)
    """The knobs the numbers depend on (evaluation fps, frame cap, thresholds)."""

    def table(self) -> str:
        """Aggregates as an aligned text table, one line per group."""
        metrics = list(next(iter(self.aggregates.values()), {}))
        header = [self.dataset_kind, "queries", "predicted", *metrics]
        lines = [header]
        for group, values in self.aggregates.items():
            count = self.counts[group]
            lines.append([group, str(count["queries"]), str(count["predicted"]),
                          *(f"{values[m]:.2f}" for m in metrics)])
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                   for i, (cell, w) in enumerate(zip(row, widths))) for row in lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dataset, protocol, aggregates (in %), counts and per-query rows (fractions)."""
        return {"dataset": self.dataset_kind, "protocol": self.protocol, "aggregates": self.aggregates,
                "counts": self.counts, "queries": [asdict(row) for row in self.rows]}
