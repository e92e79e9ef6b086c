"""Ray token authentication in the chart's RayJob: on by default, valid for the oldest KubeRay the
docs require (v1.5.1, the first with authOptions), switchable off, refused for a Ray without it."""

from __future__ import annotations

import json

import pytest

from infra.k8s.validate import MIN_KUBERAY_SCHEMAS, validate_object
from tests.charts.conftest import CHECKPOINT_URI
from tests.charts.test_chart_render import CI, VARIANTS, _notes, one, values_for


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_asks_kuberay_for_token_auth_and_validates_against_kuberay_1_5_1(render, variant):
    rayjob = one(render(values_for(variant)), "RayJob")
    assert rayjob["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token"}
    validate_object(rayjob, schema_dir=MIN_KUBERAY_SCHEMAS)


def test_auth_can_be_switched_off_and_notes_warn_about_it(helm, render, tmp_path):
    rayjob = one(render(sets={"train.rayAuth": json.dumps("disabled")}), "RayJob")
    assert "authOptions" not in rayjob["spec"]["rayClusterSpec"]
    off = tmp_path / "off.yaml"
    off.write_text(f"train:\n  rayAuth: disabled\n  checkpointUri: {CHECKPOINT_URI}\n")
    assert "WARNING: train.rayAuth is disabled" in _notes(helm, tmp_path / "off", [off])
    assert "Ray token (the dashboard asks for it" in _notes(helm, tmp_path / "on", [CI["gpu"]])


def test_a_ray_without_token_auth_is_refused_naming_the_values(render_error):
    error = render_error(sets={"train.rayVersion": json.dumps("2.51.2")})
    assert "train.rayAuth=token needs Ray >= 2.52.0 in the image, but train.rayVersion=2.51.2" in error


def test_an_old_ray_is_accepted_with_auth_disabled(render):
    sets = {"train.rayVersion": json.dumps("2.51.2"), "train.rayAuth": json.dumps("disabled")}
    assert one(render(sets=sets), "RayJob")["spec"]["rayClusterSpec"]["rayVersion"] == "2.51.2"
