"""Every value is documented (a `# --` comment, as helm-docs reads them) and declared in
values.schema.json, so the schema's `additionalProperties: false` never rejects a default."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "stvg"
# The run config itself is checked by `stvg train`, not the chart; node selectors are label maps.
FREE_FORM = {"train.runConfig", "train.learner.nodeSelector", "train.rollout.nodeSelector",
             "networkPolicy.kuberayOperator.podLabels"}


def leaves(data, prefix=""):
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in FREE_FORM:
            yield from leaves(value, path + ".")
        else:
            yield path


def schema_node(schema: dict, path: str) -> dict:
    node = schema
    for part in path.split("."):
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]]
        assert node.get("additionalProperties") is False or "properties" in node, path
        assert part in node.get("properties", {}), f"{path}: {part!r} is not declared in values.schema.json"
        node = node["properties"][part]
    return node


def test_every_leaf_value_has_a_helm_docs_comment():
    lines = (CHART / "values.yaml").read_text().splitlines()
    missing = []
    list_indent = None  # keys inside a list item (e.g. a default toleration) belong to that item
    for index, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if line.strip().startswith("- "):
            list_indent = indent
            continue
        if list_indent is not None and line.strip() and not line.strip().startswith("#"):
            if indent > list_indent:
                continue
            list_indent = None
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):(\s|$)", line)
        if not match:
            continue
        rest = line[match.end():].strip()
        is_parent = rest == "" and index + 1 < len(lines) and lines[index + 1].startswith(match.group(1) + "  ")
        if is_parent and not lines[index + 1].strip().startswith("-"):
            continue
        above = lines[index - 1].strip() if index else ""
        if not above.startswith("# --"):
            missing.append(line.strip())
    # The run config's own keys sit under train.runConfig and are documented there.
    missing = [m for m in missing if m.split(":")[0] not in ("learner", "rollout", "resources_per_worker",
                                                              "stvg_learner", "stvg_rollout")]
    assert not missing, f"values without a '# --' comment: {missing}"


def test_every_value_is_declared_in_the_schema_and_the_schema_is_closed():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    for path in leaves(values):
        schema_node(schema, path)
