"""Bearer-token auth of the reward server: token from an env var or a file; probes stay open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reward_servers import REPO, reward_server  # noqa: E402

TOKEN = "s3cret-token-for-tests"
BODY = {"task": "vtg", "items": [{"completion": "<think>a</think><answer>2 to 4</answer>",
                                  "target": {"t_start": 2.0, "t_end": 4.0}}]}


def check_auth(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        missing = http.post("/v1/score", json=BODY)
        assert missing.status_code == 401
        assert missing.json()["detail"].startswith("missing bearer token")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = http.post("/v1/score", json=BODY, headers={"authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401 and wrong.json()["detail"].startswith("wrong bearer token")
        prefix = http.post("/v1/score", json=BODY, headers={"authorization": f"Bearer {TOKEN[:-1]}"})
        assert prefix.status_code == 401
        other_scheme = http.post("/v1/score", json=BODY, headers={"authorization": f"Basic {TOKEN}"})
        assert other_scheme.status_code == 401
        openrlhf = http.post("/openrlhf/vtg", json={"query": [], "prompts": [], "labels": []})
        assert openrlhf.status_code == 401
        good = http.post("/v1/score", json=BODY, headers={"authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and good.json()["rewards"] == [2.0]
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert http.get(probe).status_code == 200, probe


@pytest.mark.slow
def test_token_from_env_is_required_and_never_logged():
    with reward_server("--token-env", "MY_REWARD_TOKEN", "--access-log",
                       env={"MY_REWARD_TOKEN": TOKEN}) as server:
        check_auth(server.url)
        log = server.log()
    assert "GET /healthz" in log  # the access log was on
    assert TOKEN not in log


@pytest.mark.slow
def test_token_from_file_ignores_trailing_newline(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # as a Kubernetes Secret file often ends
    with reward_server("--token-file", str(token_file)) as server:
        check_auth(server.url)


@pytest.mark.parametrize("args, message", [
    (["--token-env", "STVG_TEST_UNSET_TOKEN_VAR"], "--token-env STVG_TEST_UNSET_TOKEN_VAR: that environment "
                                                   "variable is unset or empty"),
    (["--token-file", "/nonexistent/token"], "--token-file '/nonexistent/token' cannot be read"),
])
def test_configured_but_missing_token_refuses_to_start(args, message):
    result = subprocess.run([sys.executable, "-m", "infra.cli", "serve-rewards", "--port", "1", *args],
                            cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "STVG_TEST_UNSET_TOKEN_VAR"})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
