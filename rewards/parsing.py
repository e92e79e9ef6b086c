"""Parsers for the three completion formats. Any string returns a result or None; nothing raises.

Work is bounded on hostile input: a completion longer than MAX_COMPLETION_CHARS characters is
unparseable (None) without being scanned; tags are located with str.find/rfind (linear); every
regular expression is anchored or starts at a literal, and its quantifiers are separated by
characters they cannot both match, so a failed match backtracks at most linearly (no nested or
adjacent overlapping repeats); digit runs are capped where they are converted to numbers.
Digits are ASCII 0-9. Whitespace is Unicode whitespace (str.isspace) between tags and in the
STVG-R1/VTG rules, but ASCII whitespace (space, tab, newline, CR, FF, VT) inside `<time>` and the
box lists.

STVG-o1 (`<time> ts - te </time> <think_bbox> i. [x1, y1, x2, y2], ... </think_bbox>
<pred_bbox> i. [...], ... </pred_bbox>`):
- the three parts are located from the LAST `<pred_bbox>`: its first `</pred_bbox>` closes it;
  before it only whitespace, then `</think_bbox>` closing the last `<think_bbox>` before it; before
  that only whitespace, then `</time>` closing the last `<time>` before it. Text before `<time>` and
  after `</pred_bbox>` is free.
- time: `ts - te`, two unsigned integers of at most 9 digits (ts > te parses; the rewards score it).
- box list: entries `i. [x1, y1, x2, y2]`, each optionally followed by whitespace and/or one comma
  (so `5. [..], 6. [..]`, one entry per line, and a trailing comma all parse); an empty list parses.
  `i` is an unsigned integer of at most 9 digits written directly before the dot; a coordinate is
  an optionally signed decimal (`12`, `-3.5`, `4.`, `.5`) of at most 16 digits before and 16 after
  the point (no exponent, no nan/inf).
STVG-R1 / VTG: format and answer parsing in parse_stvg_r1, parse_vtg and answer_format_ok.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional

Box = tuple[float, float, float, float]

MAX_COMPLETION_CHARS = 100_000
"""Longer completions are unparseable: every parser returns None, every reward term is 0 and the
result says `runaway` (rewards.scoring). The one limit of both reward modes: the server has none of
its own, so a completion scores the same in-process and over HTTP."""

_NUM = r"[-+]?(?:[0-9]{1,16}(?:\.[0-9]{0,16})?|\.[0-9]{1,16})"
_ENTRY = rf"([0-9]{{1,9}})\.\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]"  # index, x1, y1, x2, y2
_ENTRY_GROUPS = re.compile(_ENTRY, re.ASCII)
_BOX_LIST = re.compile(rf"\s*(?:{_ENTRY}\s*(?:,\s*)?)*", re.ASCII)
_TIME = re.compile(r"\s*([0-9]{1,9})\s*-\s*([0-9]{1,9})\s*", re.ASCII)
# After validation, turning brackets, commas and ASCII whitespace into spaces leaves exactly the
# numbers, space-separated (what np.fromstring(sep=" ") and str.split read).
_TO_SPACES = str.maketrans("[],\t\n\r\f\v", "        ")


@dataclass(frozen=True)
class ParsedStvgO1:
    t_start: int
    t_end: int
    think: tuple[tuple[int, Box], ...]
    """(index, box) in the order written, repeats kept (the reward uses the first)."""
    pred: tuple[tuple[int, Box], ...]

    @property
    def consistent(self) -> bool:
        """Rc: each index t_start..t_end exactly once in both lists, and nothing else."""
        count = self.t_end - self.t_start + 1
        if count <= 0 or len(self.think) != count or len(self.pred) != count:  # also bounds the range below
            return False
        wanted = list(range(self.t_start, self.t_end + 1))
        return all(sorted(i for i, _ in part) == wanted for part in (self.think, self.pred))


@dataclass(frozen=True)
class ParsedStvgR1:
    instance_id: int
    t_start: float
    t_end: float


@dataclass(frozen=True)
class ParsedVtg:
    t_start: float
    t_end: float


def parse_stvg_o1(text: Any) -> Optional[ParsedStvgO1]:
    """The STVG-o1 answer, or None when the format is not met (Rf = 0)."""
    fields = o1_fields(text)
    if fields is None:
        return None
    start, end, think, _, pred, _ = fields
    return ParsedStvgO1(start, end, _entries(think), _entries(pred))


def o1_fields(text: Any) -> Optional[tuple[int, int, str, int, str, int]]:
    """(ts, te, think numbers, think entry count, pred numbers, pred entry count), where the
    numbers are one space-separated string of 5 numbers per entry (index, x1, y1, x2, y2), ready
    for a single bulk conversion over a whole batch; None when the format is not met."""
    parts = _o1_parts(text)
    if parts is None:
        return None
    time, think, pred = parts
    match = _TIME.fullmatch(time)
    if match is None or _BOX_LIST.fullmatch(think) is None or _BOX_LIST.fullmatch(pred) is None:
        return None
    return (int(match.group(1)), int(match.group(2)), think.translate(_TO_SPACES), think.count("["),
            pred.translate(_TO_SPACES), pred.count("["))


def _o1_parts(text: Any) -> Optional[tuple[str, str, str]]:
    spans = o1_part_spans(text)
    return None if spans is None else tuple(text[start:end] for start, end in spans)


def o1_part_spans(text: Any) -> Optional[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
    """Character spans (start, end) in `text` of the insides of `<time>`, `<think_bbox>` and
    `<pred_bbox>`, located as the module docstring says; None when the tags are not in place (the
    insides are not validated here: o1_fields does that)."""
    if not isinstance(text, str) or len(text) > MAX_COMPLETION_CHARS:
        return None
    pred_open = text.rfind("<pred_bbox>")
    if pred_open < 0:
        return None
    pred_close = text.find("</pred_bbox>", pred_open + 11)
    if pred_close < 0:
        return None
    head = text[:pred_open].rstrip()
    if not head.endswith("</think_bbox>"):
        return None
    think_close = len(head) - 13
    think_open = head.rfind("<think_bbox>", 0, think_close)
    if think_open < 0:
        return None
    head_time = head[:think_open].rstrip()
    if not head_time.endswith("</time>"):
        return None
    time_close = len(head_time) - 7
    time_open = head_time.rfind("<time>", 0, time_close)
    if time_open < 0:
        return None
    return (time_open + 6, time_close), (think_open + 12, think_close), (pred_open + 11, pred_close)


def o1_box_entries(text: Any) -> Optional[list[tuple[str, int, int, int, Box]]]:
    """Every box entry of a well-formed STVG-o1 answer as (part, index, start, end, box), in the
    order written: part is "think" or "pred", start:end the entry's characters in `text`
    (`i. [x1, y1, x2, y2]`). None when the answer does not parse (format 0)."""
    spans = o1_part_spans(text)
    if spans is None or o1_fields(text) is None:
        return None
    entries = []
    for part, (start, end) in zip(("think", "pred"), spans[1:]):
        for match in _ENTRY_GROUPS.finditer(text, start, end):
            index, *coords = match.groups()
            entries.append((part, int(index), match.start(), match.end(), tuple(float(c) for c in coords)))
    return entries


def _entries(numbers: str) -> tuple[tuple[int, Box], ...]:
    values = [float(n) for n in numbers.split()]
    return tuple((int(values[k]), (values[k + 1], values[k + 2], values[k + 3], values[k + 4]))
                 for k in range(0, len(values), 5))


# ---- STVG-R1 and VTG: <think>...</think><answer>...</answer> ---------------------------------

_THINK_TO_ANSWER = re.compile(r"</think>\s*<answer>")
_TARGET_ID = re.compile(r"Target ID:\s*([0-9]+)", re.IGNORECASE)
_SPAN_NUM = r"([0-9]+(?:\.[0-9]*)?)"
_TIME_RANGE = re.compile(rf"Time range:\s*{_SPAN_NUM}\s*(?:to|and)\s*{_SPAN_NUM}", re.IGNORECASE)
# A VTG span may start anywhere, but not inside a number: that keeps the search linear.
_VTG_SPAN = re.compile(rf"(?<![0-9.]){_SPAN_NUM}\s*(?:to|and)\s*{_SPAN_NUM}", re.IGNORECASE)
_MAX_ID_DIGITS = 18
_MAX_TIME_CHARS = 32


def answer_format_ok(text: Any) -> bool:
    """STVG-R1's released format rule: the stripped text fully matches
    `<think>.*?</think>\\s*<answer>.*?</answer>` (DOTALL). Decided in linear time: it starts with
    <think>, ends with </answer>, and `</think>\\s*<answer>` occurs in between."""
    if not isinstance(text, str) or len(text) > MAX_COMPLETION_CHARS:
        return False
    text = text.strip()
    if not (text.startswith("<think>") and text.endswith("</answer>")):
        return False
    return _THINK_TO_ANSWER.search(text, 7, len(text) - 9) is not None


def last_answer(text: Any) -> Optional[str]:
    """Content of the last non-overlapping `<answer>...</answer>` block (as re.findall finds them)."""
    if not isinstance(text, str) or len(text) > MAX_COMPLETION_CHARS:
        return None
    found, pos = None, 0
    while True:
        start = text.find("<answer>", pos)
        if start < 0:
            return found
        end = text.find("</answer>", start + 8)
        if end < 0:
            return found
        found, pos = text[start + 8:end], end + 9


def parse_stvg_r1(text: Any) -> Optional[ParsedStvgR1]:
    """`Target ID: N` and `Time range: s to e` (or `s and e`, case-insensitive) from the last
    <answer> block; None when either is missing (the format term is scored separately)."""
    answer = last_answer(text)
    if answer is None:
        return None
    ident = _TARGET_ID.search(answer)
    span = _TIME_RANGE.search(answer)
    if ident is None or span is None or len(ident.group(1)) > _MAX_ID_DIGITS:
        return None
    times = _times(span)
    return None if times is None else ParsedStvgR1(int(ident.group(1)), *times)


def parse_vtg(text: Any) -> Optional[ParsedVtg]:
    """The first `s to e` (or `s and e`) in the last <answer> block, or None."""
    answer = last_answer(text)
    if answer is None:
        return None
    span = _VTG_SPAN.search(answer)
    times = None if span is None else _times(span)
    return None if times is None else ParsedVtg(*times)


def _times(match: re.Match) -> Optional[tuple[float, float]]:
    if max(len(match.group(1)), len(match.group(2))) > _MAX_TIME_CHARS:
        return None
    start, end = float(match.group(1)), float(match.group(2))
    return (start, end) if math.isfinite(start) and math.isfinite(end) else None
