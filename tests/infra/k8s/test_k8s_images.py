"""The Dockerfiles under docker/ (no Docker engine here: their contracts are checked statically)
and the reward image's requirements (the server imports with only those distributions visible)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests._dockerfiles import DOCKER, DOCKERFILES, REPO, build_args, instructions


def test_the_three_images_exist():
    assert {p.name for p in DOCKERFILES} == {"Dockerfile.train", "Dockerfile.reward", "Dockerfile.mlflow"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_end_as_a_numeric_non_root_user(dockerfile):
    users = [args for word, args in instructions(dockerfile) if word == "USER"]
    assert users, "no USER instruction: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert int(uid) == 1000  # the chart's securityContext.runAsUser default


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_credentials_are_baked_in(dockerfile):
    secretish = re.compile(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|API_KEY|CREDENTIAL)", re.I)
    for word, args in instructions(dockerfile):
        if word in ("ENV", "ARG", "LABEL"):
            assert not secretish.search(args), f"{word} {args}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_sources_exist_and_are_let_through_the_ignore_file(dockerfile):
    ignore = (DOCKER / f"{dockerfile.name}.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for word, args in instructions(dockerfile):
        if word == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (REPO / source).exists(), source
                assert source.split("/")[0] in allowed, f"{source} is excluded by the .dockerignore"


def _commit_guard() -> str:
    """The train image's RUN that checks the STVG_GIT_COMMIT build argument."""
    runs = [args for word, args in instructions(DOCKER / "Dockerfile.train")
            if word == "RUN" and "STVG_GIT_COMMIT" in args]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize("commit, builds", [("0123456789abcdef0123456789abcdef01234567", True), ("", False),
                                            ("HEAD", False), ("0123456", False)])
def test_the_train_image_needs_the_full_commit_it_is_built_from(commit, builds):
    done = subprocess.run(["sh", "-c", _commit_guard()], env={"STVG_GIT_COMMIT": commit, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode == 0) == builds, done.stderr
    if not builds:
        assert "--build-arg STVG_GIT_COMMIT=$(git rev-parse HEAD)" in done.stderr


def test_the_train_image_hands_the_commit_to_runs():
    steps = instructions(DOCKER / "Dockerfile.train")
    assert "STVG_GIT_COMMIT" in build_args(DOCKER / "Dockerfile.train")
    assert ("ENV", "STVG_GIT_COMMIT=${STVG_GIT_COMMIT}") in steps  # what infra.tracking reads


# The reward server, imported with only the distributions of requirements-reward.txt (and what they
# depend on) importable, plus the two packages the reward image copies in: infra and rewards.
_IMPORT_CHECK = r'''
import importlib.abc, importlib.metadata as md, re, sys
from packaging.requirements import Requirement

def closure(names):
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen

wanted = [Requirement(l).name for l in open(sys.argv[1]).read().splitlines() if l.strip() and not l.startswith("#")]
dists = closure(wanted)
allowed = {"infra", "rewards"} | set(sys.stdlib_module_names) | {"_distutils_hack"}
for module, owners in md.packages_distributions().items():
    if any(re.sub(r"[-_.]+", "-", o).lower() in dists for o in owners):
        allowed.add(module)

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in allowed and not top.startswith("_"):
            raise ModuleNotFoundError(f"{name} is not in the reward image", name=name)
        return None

sys.meta_path.insert(0, Block())
import uvicorn
import infra.cli.serve_rewards
from rewards.server.app import create_app
from rewards.server.run import serve
create_app()
assert "torch" not in sys.modules
print("ok")
'''


def test_reward_server_imports_with_only_its_image_requirements():
    done = subprocess.run([sys.executable, "-c", _IMPORT_CHECK, str(DOCKER / "requirements-reward.txt")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
