"""Task instructions: what the model is asked, and in which output format.

Three formats (docs/conventions.md, "Output formats"):
- `stvg-o1`: `<time> ts - te </time> <think_bbox> i. [x1, y1, x2, y2], ... </think_bbox>
  <pred_bbox> i. [x1, y1, x2, y2], ... </pred_bbox>`, one box per integer second i from ts to te,
  boxes in integer pixels of the frames as the model sees them (their size is stated).
- `stvg-r1`: STVG-R1's own instruction, quoted verbatim (the query lower-cased, trailing "."
  dropped), answering `<think>...</think><answer>Target ID: N, Time range: s to e</answer>`.
- `vtg`: `<think>...</think><answer>s to e</answer>` in seconds.

Every instruction starts with one line that states the frame size and the time in seconds of each
sampled frame, so the model can answer in seconds without knowing the sampling rule.

The wording is a knob (`rollout.instruction`, the same on the rollout workers and in SFT, which both
build prompts through rollout.prompting with the run's settings):
- `paper` (default): the texts above, the seed papers' wording; what real models are prompted with.
- `compact`: one short sentence per task asking for the same output format, and a short frames line
  (`20 frames of 56x56 px, 0 to 19 s every 1 s.`). A tiny model learns far sooner when the video
  tokens are not drowned in ~180 tokens of fixed instruction (docs/learning-run.md).
- a template: text holding `{query}` (and optionally `{width}`, `{height}`, `{frames}`); the frames
  line goes where `{frames}` is, else in front. A path to a file holding the template works too
  (RolloutConfig reads it once, so the run config carries the text to every worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from infra.errors import UserError

TASKS = ("stvg-o1", "stvg-r1", "vtg")

STVG_O1 = (
    'Find the target described by this query: "{query}". '
    "First give the time span in which it appears, in whole seconds: <time> ts - te </time>. "
    "Then, for every second i from ts to te, draft the box of the target at that second in "
    "<think_bbox> i. [x1, y1, x2, y2], ... </think_bbox>, and give the refined final boxes in "
    "<pred_bbox> i. [x1, y1, x2, y2], ... </pred_bbox>. "
    "Boxes are integer pixel coordinates in the {width}x{height} frames."
)

# STVG-R1's QUESTION_TEMPLATE, verbatim from its released code.
STVG_R1 = (
    "Each object in the video is marked with a red number at its center, representing its object ID. "
    'To accurately pinpoint the event "{query}" in the video:\n'
    "1.Determine the precise time period of the event occurs.\n"
    "2.Identify which object ID is corresponding to the described event.\n"
    "Output your thought process within the <think> </think> tags, including both a temporal analysis "
    '(e.g., specific timestamps "xx.xx" or time ranges "xx.xx to xx.xx") and a spatial analysis '
    '(e.g., object ID "xx").\n'
    "Then, provide the start and end times (in seconds, precise to two decimal places), and object ID in "
    'the format "Target ID: [ID], Time range: [start time to end time]" within the <answer> </answer> tags. '
    'For example: "Target ID: 1, Time range: 12.54 to 17.83".'
)

VTG = (
    'Find when this happens in the video: "{query}". '
    "Think it over inside <think> </think>, then give the start and end time in seconds, "
    "precise to two decimal places, inside <answer> </answer> as <answer>s to e</answer>, "
    "for example <answer>3.50 to 7.25</answer>."
)

FRAMES_LINE = (
    "The video is {count} frames of {width}x{height} pixels; "
    "the frames are at these seconds: {times}."
)

COMPACT = {
    "stvg-o1": 'Where and when is "{query}"? Answer <time> ts - te </time>, then one box [x1, y1, x2, y2] '
               'per second in <think_bbox> and <pred_bbox>.',
    "stvg-r1": 'Which numbered object is "{query}", and when? Answer <think> </think> '
               '<answer>Target ID: N, Time range: s to e</answer>.',
    "vtg": 'When is "{query}"? Answer <think> </think> <answer>s to e</answer> in seconds.',
}
"""`compact`: the same output formats asked for in one sentence (20-50 tokens instead of 60-200)."""

COMPACT_FRAMES_LINE = "{count} frames of {width}x{height} px, {times}."

STYLES = ("paper", "compact")
TEMPLATE_FIELDS = ("query", "width", "height", "frames")


@dataclass(frozen=True)
class Instruction:
    """The text of a prompt and where the video goes relative to it."""

    text: str
    video_first: bool
    """True: video then text (Qwen's convention); False: text then video (STVG-R1's order)."""


def format_seconds(t: float) -> str:
    """0.0 -> '0', 0.5 -> '0.5', 1.04 -> '1.04': at most two decimals, no trailing zeros."""
    text = f"{t:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def frames_line(timestamps: Sequence[float], frame_size: tuple[int, int], style: str = "paper") -> str:
    """The line stating the frames: every frame's time (paper), or a range when they are evenly
    spaced (compact and templates: `20 frames of 56x56 px, 0 to 19 s every 1 s.`)."""
    width, height = frame_size
    if style == "paper":
        times = ", ".join(format_seconds(t) for t in timestamps)
        return FRAMES_LINE.format(count=len(timestamps), width=width, height=height, times=times)
    return COMPACT_FRAMES_LINE.format(count=len(timestamps), width=width, height=height, times=_time_range(timestamps))


def _time_range(timestamps: Sequence[float]) -> str:
    """`0 to 19 s every 1 s` when the times are evenly spaced (to 0.01 s), else `at 0, 2.5, 9 s`."""
    times = [float(t) for t in timestamps]
    steps = [b - a for a, b in zip(times, times[1:])]
    if steps and steps[0] > 0 and all(abs(step - steps[0]) < 0.01 for step in steps):
        return f"{format_seconds(times[0])} to {format_seconds(times[-1])} s every {format_seconds(steps[0])} s"
    return f"at {', '.join(format_seconds(t) for t in times)} s"


def build_instruction(task: str, query: str, timestamps: Sequence[float], frame_size: tuple[int, int],
                      style: str = "paper") -> Instruction:
    """The instruction for one sample. `frame_size` is (width, height) of the frames as shown;
    `style` is rollout.instruction: paper, compact, or a template holding {query}."""
    width, height = frame_size
    query = " ".join(query.split())
    if not query:
        raise UserError("cannot build a prompt for an empty query")
    if task not in TASKS:
        raise UserError(f"task {task!r} is not known; choose one of: {', '.join(TASKS)}")
    if style == "compact":
        return Instruction(f"{frames_line(timestamps, frame_size, style)}\n{COMPACT[task].format(query=query)}", True)
    if style != "paper":
        return Instruction(fill_template(style, query, timestamps, frame_size), True)
    head = frames_line(timestamps, frame_size)
    if task == "stvg-o1":
        return Instruction(f"{head}\n{STVG_O1.format(query=query, width=width, height=height)}", True)
    if task == "vtg":
        return Instruction(f"{head}\n{VTG.format(query=query)}", True)
    event = query.lower().rstrip(".")
    return Instruction(f"{head}\n{STVG_R1.format(query=event)}", False)


def fill_template(template: str, query: str, timestamps: Sequence[float], frame_size: tuple[int, int]) -> str:
    """A user template with its fields filled; the frames line goes in front unless it has {frames}."""
    width, height = frame_size
    frames = frames_line(timestamps, frame_size, "template")
    text = template.strip().format(query=query, width=width, height=height, frames=frames)
    return text if "{frames}" in template else f"{frames}\n{text}"


def check_template(template: str) -> None:
    """Raise ValueError naming the problem when `template` is not a usable instruction template."""
    import string

    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:  # an unmatched brace
        raise ValueError(f"is not a valid template ({err}); write literal braces as {{{{ and }}}}") from None
    unknown = sorted(fields - set(TEMPLATE_FIELDS))
    if unknown:
        raise ValueError(f"uses unknown fields {unknown}; a template may use {{query}}, {{width}}, {{height}}, "
                         f"{{frames}}")
    if "query" not in fields:
        raise ValueError("must hold {query}: the model has to be told what to find")
