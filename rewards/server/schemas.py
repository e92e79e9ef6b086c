"""Request and response bodies of the reward server (they generate its OpenAPI schema).

Targets follow docs/conventions.md: times in seconds, boxes `[t, x1, y1, x2, y2]` in pixels of the
frame the model sees. Numbers are strict (a JSON string is not a number) and must be
finite, so NaN/Infinity (which Python's JSON parser accepts) are rejected with the field named.
Unknown extra keys in a target are ignored; the reward functions receive only the fields below.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from rewards.schema import SPATIAL_SPANS

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
Box = tuple[Finite, Finite, Finite, Finite, Finite]


class VtgTarget(BaseModel):
    """Ground truth of a temporal-grounding query: a span in seconds."""

    model_config = ConfigDict(extra="ignore")
    t_start: Finite = Field(description="Ground-truth start, seconds.")
    t_end: Finite = Field(description="Ground-truth end, seconds.")


class StvgR1Target(VtgTarget):
    """Ground truth of an STVG-R1 query: the span and the target's drawn instance id."""

    instance_id: int = Field(strict=True, description="ID drawn on the target object in the frames.")


class StvgO1Target(VtgTarget):
    """Ground truth of an STVG-o1 query: the span and one box per integer second t_start..t_end."""

    boxes: list[Box] = Field(description="[t, x1, y1, x2, y2] per GT index, pixels of the frame the model sees.")
    width: Positive = Field(description="Width of the frame the model sees, pixels.")
    height: Positive = Field(description="Height of the frame the model sees, pixels.")


Weights = Optional[dict[str, Finite]]
_WEIGHTS_DOC = ("Per-term weights for this request (term name -> weight); omitted or null = the reward "
                "functions' defaults. Lets the client's config decide the weighting.")


class _Item(BaseModel):
    completion: str = Field(strict=True, description="The model's raw output text (malformed text still scores).")


class StvgO1Item(_Item):
    target: StvgO1Target


class StvgR1Item(_Item):
    target: StvgR1Target


class VtgItem(_Item):
    target: VtgTarget


class StvgO1Request(BaseModel):
    task: Literal["stvg-o1"]
    items: list[StvgO1Item]
    weights: Weights = Field(default=None, description=_WEIGHTS_DOC)
    spatial_span: Literal[SPATIAL_SPANS] = Field(
        default="intersection",
        description="GT indices the spatial term averages over: the spans' intersection (the paper's rule, 0 "
                    "when they do not meet) or the whole GT span (a GT index the answer does not box inside "
                    "its own span scores -2).")


class StvgR1Request(BaseModel):
    task: Literal["stvg-r1"]
    items: list[StvgR1Item]
    weights: Weights = Field(default=None, description=_WEIGHTS_DOC)


class VtgRequest(BaseModel):
    task: Literal["vtg"]
    items: list[VtgItem]
    weights: Weights = Field(default=None, description=_WEIGHTS_DOC)


ScoreRequest = Annotated[Union[StvgO1Request, StvgR1Request, VtgRequest], Field(discriminator="task")]

TARGET_MODELS: dict[str, type[BaseModel]] = {
    "stvg-o1": StvgO1Target,
    "stvg-r1": StvgR1Target,
    "vtg": VtgTarget,
}

TARGET_SHAPES: dict[str, str] = {
    "stvg-o1": '{"t_start", "t_end", "boxes": [[t, x1, y1, x2, y2], ...], "width", "height"}',
    "stvg-r1": '{"t_start", "t_end", "instance_id"}',
    "vtg": '{"t_start", "t_end"}',
}


class ScoreResponse(BaseModel):
    rewards: list[float] = Field(description="Weighted total reward per item, in request order.")
    terms: list[dict[str, float]] = Field(description="Reward terms per item (name -> value), in request order.")
    parsed: list[bool] = Field(description="Whether each completion parsed (the reward functions' `parsed` flag).")
    runaway: list[bool] = Field(description="Whether each completion was over the reward functions' length limit "
                                            "(rewards.parsing.MAX_COMPLETION_CHARS): scored 0 without being parsed.")


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward payload. Extra keys it may add (e.g. `metas`) are ignored."""

    model_config = ConfigDict(extra="ignore")
    query: list[Annotated[str, Field(strict=True)]] = Field(description="Prompt + response text per sample.")
    prompts: list[Annotated[str, Field(strict=True)]] = Field(description="Prompt text per sample.")
    labels: list[Annotated[str, Field(strict=True)]] = Field(description="JSON-encoded target per sample.")


class OpenRLHFResponse(BaseModel):
    rewards: list[float] = Field(description="Total reward per sample (used for advantages).")
    scores: list[float] = Field(description="Same totals (OpenRLHF uses them for dynamic filtering).")
    extra_logs: dict[str, list[float]] = Field(description="Per-term values per sample, logged by OpenRLHF, and "
                                                           "`runaway` (1.0 for a completion over the length limit).")
