"""constraints.txt is the one version set: the environment running these tests holds exactly its
versions, vLLM's own requirements accept them, pyproject.toml admits them, and the setup script and
the images install through it and pin nothing else."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests._dockerfiles import DOCKER, REPO, build_args, instructions

CONSTRAINTS = REPO / "constraints.txt"
# what the GPU path needs the tests to run at the image's versions
CORE = ("torch", "torchvision", "transformers", "tokenizers", "deepspeed", "accelerate", "ray", "fastapi")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()
            if line.split("#", 1)[0].strip()]


def locked() -> dict[str, str]:
    """{name: version} of constraints.txt, every line an exact `name==version`."""
    pins = {}
    for line in requirement_lines(CONSTRAINTS):
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==" and not req.extras and req.marker is None, line
        assert normalise(req.name) not in pins, f"{req.name} is pinned twice"
        pins[normalise(req.name)] = spec.version
    return pins


def locked_python() -> str:
    return re.search(r"^# python: (\d+\.\d+)$", CONSTRAINTS.read_text(), re.M).group(1)


def target_environment() -> dict[str, str]:
    """PEP 508 marker values of the machines the set is for (the image and CI)."""
    return {"python_version": locked_python(), "python_full_version": f"{locked_python()}.0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def test_the_environment_running_the_tests_holds_exactly_the_locked_versions():
    pins = locked()
    installed = {normalise(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    assert set(CORE) <= set(installed), "the training stack is not installed"
    wrong = {name: f"{installed[name]} installed, {pins[name]} locked" for name in pins
             if name in installed and installed[name] != pins[name]}
    assert not wrong, f"run scripts/setup.sh (it installs constraints.txt): {wrong}"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == locked_python()


def test_the_chosen_training_stack_is_pinned():
    assert set(CORE) | {"vllm", "flash-attn"} <= set(locked())


def test_vllms_own_requirements_accept_the_locked_versions():
    pins = locked()
    text = (DOCKER / "vllm-requires.txt").read_text()
    release = re.search(r"^# release: vllm==(\S+)$", text, re.M).group(1)
    assert release == pins["vllm"], "docker/vllm-requires.txt is for another vLLM: run scripts/lock_versions.py"
    requirements = [Requirement(line) for line in requirement_lines(DOCKER / "vllm-requires.txt")]
    assert len(requirements) > 20
    environment = target_environment()
    refused = {}
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        name = normalise(req.name)
        assert name in pins, f"vLLM needs {req} but constraints.txt does not lock it: run scripts/lock_versions.py"
        if not req.specifier.contains(pins[name], prereleases=True):
            refused[name] = f"{pins[name]} locked, vLLM asks {req.specifier}"
    assert not refused, refused


def test_vllm_dictates_torch_and_torchvision_exactly():
    pins = locked()
    exact = {normalise(r.name): str(r.specifier) for r in map(Requirement, requirement_lines(DOCKER / "vllm-requires.txt"))
             if normalise(r.name) in ("torch", "torchvision")}
    assert exact == {"torch": f"=={pins['torch']}", "torchvision": f"=={pins['torchvision']}"}


def test_every_dependency_of_the_project_is_locked_inside_its_range():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    pins = locked()
    for req in map(Requirement, requirements):
        name = normalise(req.name)
        assert name in pins, f"pyproject.toml needs {req}, constraints.txt does not lock it: run scripts/lock_versions.py"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} refuses the locked {pins[name]}"


def test_the_setup_script_installs_only_through_the_constraints():
    script = (REPO / "scripts" / "setup.sh").read_text()
    helper = re.search(r"pip_install\(\) \{\n(.*?)\n\}", script, re.S).group(1)
    assert "pip install" in helper and "-c constraints.txt" in helper
    outside = script.replace(helper, "")
    assert "pip install" not in outside, "every install goes through pip_install (and so the constraints)"
    calls = re.findall(r"^pip_install (.*)$", script, re.M)
    assert calls and not any(re.search(r"[=<>~!]=|[<>]", call) for call in calls), calls


@pytest.mark.parametrize("name", ["Dockerfile.train", "Dockerfile.reward"])
def test_the_images_install_only_through_the_constraints(name):
    steps = instructions(DOCKER / name)
    copies = [args.split() for word, args in steps if word == "COPY" and args.split()[0] == "constraints.txt"]
    assert len(copies) == 1, "the image copies constraints.txt once"
    target = copies[0][1]
    installs = [part for word, args in steps if word == "RUN" for part in re.split(r"&&|\|\|", args)
                if "pip install" in part]
    assert installs
    for part in installs:
        assert f"-c {target}" in part, f"{name}: {part.strip()} ignores the constraints"
        words = part.split("pip install", 1)[1].split()
        assert not any(re.search(r"[=<>~!]=|[<>]", w) for w in words if not w.startswith("-")), part


def test_the_train_image_has_the_cuda_torch_was_built_for_and_the_sets_python():
    args = build_args(DOCKER / "Dockerfile.train")
    cuda = re.search(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn-devel-", args["CUDA_IMAGE"])
    assert cuda, args["CUDA_IMAGE"]
    toolkit = locked()["cuda-toolkit"].split(".")  # torch's own CUDA requirement, resolved into the set
    assert (cuda.group(1), cuda.group(2)) == (toolkit[0], toolkit[1])
    assert args["PYTHON_VERSION"] == locked_python()


def test_every_cluster_spec_names_the_locked_ray():
    from infra.k8s.config import ClusterConfig

    ray = locked()["ray"]
    values = yaml.safe_load((REPO / "charts" / "stvg" / "values.yaml").read_text())
    example = yaml.safe_load((REPO / "k8s" / "examples" / "grpo-7b" / "rayjob.yaml").read_text())
    assert values["train"]["rayVersion"] == ray
    assert str(example["spec"]["rayClusterSpec"]["rayVersion"]) == ray
    assert ClusterConfig().ray_version == ray
