"""What real runs log, held against docs/tracking.md.

The tables under "## Metric names" and "## Artifacts" of docs/tracking.md list, in backticks in
their first column, every metric and artifact name a run logs. An entry may hold placeholders:
`<term>` (a reward term, rewards.TERMS), `<step>` (six digits), `<i>` (a number), `<time>` (a UTC
time stamp) and `<name>` (one path segment, no slash).

The end-to-end tests hand every MLflow run they start to `LoggedNames.check`: a name that no entry
matches fails that test at once. The collector also remembers which entries the runs matched;
tests/e2e/test_tracking_docs.py, which runs after all the others, fails when an entry was matched
by no run of the session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rewards import TERMS

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"
SECTIONS = {"## Metric names": "metric", "## Artifacts": "artifact"}
PLACEHOLDERS = {
    "<term>": "(?:" + "|".join(sorted({re.escape(t) for terms in TERMS.values() for t in terms})) + ")",
    "<step>": r"\d{6}",
    "<i>": r"\d+",
    "<time>": r"\d{8}T\d{6}Z",
    "<name>": r"[^/]+",
}

# The runs the end-to-end tests start, by the label they check them under; the docs check needs all.
RUNS = ("grpo-http-resumed", "grpo-async", "sft", "grpo-from-sft", "grpo-stvg-r1", "grpo-videotg-curated")


@dataclass(frozen=True)
class Entry:
    kind: str  # "metric" or "artifact"
    text: str  # as written in the docs, e.g. "reward/<term>"
    pattern: re.Pattern


def documented_entries(doc: Path = DOC) -> list[Entry]:
    entries, kind = [], None
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            kind = SECTIONS.get(line.strip())
        elif kind and line.startswith("| `"):
            first_cell = line.split("|")[1]
            for text in first_cell.split("`")[1::2]:
                unknown = [p for p in re.findall(r"<[^>]*>", text) if p not in PLACEHOLDERS]
                if unknown:
                    raise ValueError(f"{doc}: unknown placeholder {unknown[0]} in {text!r}; "
                                     f"known: {', '.join(PLACEHOLDERS)}")
                regex = re.escape(text)
                for placeholder, part in PLACEHOLDERS.items():
                    regex = regex.replace(re.escape(placeholder), part)
                entries.append(Entry(kind, text, re.compile(regex)))
    if not any(e.kind == "metric" for e in entries) or not any(e.kind == "artifact" for e in entries):
        raise ValueError(f"{doc}: no '## Metric names' or '## Artifacts' table found")
    return entries


def logged_names(client, run_id: str) -> dict[str, set[str]]:
    """{"metric": metric keys, "artifact": artifact file paths} of one MLflow run."""
    files, folders = set(), [None]
    while folders:
        for info in client.list_artifacts(run_id, folders.pop()):
            (folders.append if info.is_dir else files.add)(info.path)
    return {"metric": set(client.get_run(run_id).data.metrics), "artifact": files}


@dataclass
class LoggedNames:
    """Checks runs against the docs and remembers which entries they matched, per run label."""

    entries: list[Entry] = field(default_factory=documented_entries)
    matched: dict[str, set[str]] = field(default_factory=dict)

    def check(self, tracking_uri: str, run_id: str, label: str) -> dict[str, set[str]]:
        """Fail (AssertionError) when the run logged a name docs/tracking.md does not list."""
        from mlflow.tracking import MlflowClient

        names = logged_names(MlflowClient(tracking_uri=tracking_uri), run_id)
        unlisted, matched = [], set()
        for kind, values in names.items():
            for value in sorted(values):
                hits = [e.text for e in self.entries if e.kind == kind and e.pattern.fullmatch(value)]
                matched.update(hits)
                if not hits:
                    unlisted.append(f"{kind} {value!r}")
        assert not unlisted, (f"run {label} logged names that docs/tracking.md does not list (add them to its "
                              f"'## Metric names' or '## Artifacts' table): {', '.join(unlisted)}")
        self.matched[label] = self.matched.get(label, set()) | matched
        return names

    def never_logged(self) -> list[str]:
        seen = set().union(*self.matched.values()) if self.matched else set()
        return [f"{e.kind} `{e.text}`" for e in self.entries if e.text not in seen]
