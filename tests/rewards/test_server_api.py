"""The reward server over real HTTP: scores, order, every refusal, the OpenRLHF endpoint, metrics.

One `stvg serve-rewards` process (one worker, small limits) serves the whole module.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reward_items import items  # noqa: E402
from _reward_servers import HOST, REPO, metric_value, reward_server  # noqa: E402

from rewards import TASKS, score_batch  # noqa: E402
from rewards.parsing import MAX_COMPLETION_CHARS  # noqa: E402

MAX_ITEMS = 16
MAX_BODY = 256 * 1024
JUNK_CHARS = 4000


@pytest.fixture(scope="module")
def server():
    with reward_server("--max-items", str(MAX_ITEMS), "--max-body-bytes", str(MAX_BODY),
                       "--body-timeout-s", "1") as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def post_items(http, task, completions, targets, **extra):
    body = {"task": task, "items": [{"completion": c, "target": t} for c, t in zip(completions, targets)], **extra}
    return http.post("/v1/score", json=body)


def assert_same_as_local(response, task, completions, targets, weights=None):
    assert response.status_code == 200, response.text
    data = response.json()
    expected = score_batch(task, completions, targets, weights=weights)
    assert data["rewards"] == [r.total for r in expected]
    assert data["terms"] == [r.terms for r in expected]
    assert data["parsed"] == [r.parsed for r in expected]
    assert data["runaway"] == [r.runaway for r in expected]


@pytest.mark.parametrize("task", TASKS)
def test_scores_equal_score_batch_for_every_task(http, task):
    completions, targets = items(task, MAX_ITEMS)
    assert_same_as_local(post_items(http, task, completions, targets), task, completions, targets)


def test_vtg_reward_matches_hand_computation_and_malformed_scores_zero(http):
    # GT [2, 4], predicted [1, 3]: overlap 1 s over a 3 s union -> tIoU 1/3; format 1 -> total 4/3.
    target = {"t_start": 2.0, "t_end": 4.0}
    response = post_items(http, "vtg", ["<think>x</think><answer>1 to 3</answer>", "garbage <answer>"],
                          [target, target])
    data = response.json()
    assert response.status_code == 200
    assert data["rewards"][0] == pytest.approx(1 + 1 / 3)
    assert data["parsed"] == [True, False]
    assert data["rewards"][1] == 0.0


def test_results_keep_request_order_under_concurrency(http):
    completions, targets = items("stvg-o1", 40 * 8, malformed_every=7)
    expected = [r.total for r in score_batch("stvg-o1", completions, targets)]
    assert len(set(expected)) > 100  # the items really differ, so a swap would show

    def send(k):
        sl = slice(8 * k, 8 * k + 8)
        return k, post_items(http, "stvg-o1", completions[sl], targets[sl]).json()["rewards"]

    with ThreadPoolExecutor(16) as pool:
        for k, rewards in pool.map(send, range(40)):
            assert rewards == expected[8 * k: 8 * k + 8]


def test_weights_in_the_request_decide_the_total(http):
    completions, targets = items("vtg", 6, malformed_every=0)
    local = score_batch("vtg", completions, targets)
    weights = {name: 0.5 for name in local[0].terms}
    response = post_items(http, "vtg", completions, targets, weights=weights)
    assert_same_as_local(response, "vtg", completions, targets, weights=weights)
    # half of every weight: half of every default total, computed independently of the weights path
    assert response.json()["rewards"] == pytest.approx([0.5 * r.total for r in local])


def test_an_unknown_spatial_span_is_422_naming_the_choices(http):
    completions, targets = items("stvg-o1", 2)
    response = post_items(http, "stvg-o1", completions, targets, spatial_span="union")
    assert response.status_code == 422
    assert "intersection" in response.text and "ground_truth" in response.text


def test_a_weight_for_a_term_the_task_lacks_is_422(http):
    response = post_items(http, "vtg", ["x"], [{"t_start": 1.0, "t_end": 2.0}], weights={"think": 1.0})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("weights: unknown reward term 'think' for task vtg")


def test_malformed_json_is_400_naming_the_position(http):
    response = http.post("/v1/score", content=b'{"task": "vtg", "items": [', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "malformed JSON at character 26" in response.json()["detail"]


def test_unknown_task_is_422_listing_the_tasks(http):
    response = post_items(http, "stvg-o2", ["x"], [{"t_start": 1.0, "t_end": 2.0}])
    assert response.status_code == 422
    assert response.json()["detail"] == "unknown task 'stvg-o2'; choose one of: stvg-o1, stvg-r1, vtg"


def test_missing_target_field_names_item_index_and_field(http):
    completions, targets = items("stvg-o1", 4)
    del targets[2]["width"]
    response = post_items(http, "stvg-o1", completions, targets)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("items[2].target.width: Field required")


def test_nan_and_string_numbers_in_targets_are_refused(http):
    body = b'{"task": "vtg", "items": [{"completion": "x", "target": {"t_start": NaN, "t_end": 1}}]}'
    response = http.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("items[0].target.t_start: Input should be a finite number")
    response = post_items(http, "stvg-r1", ["x"], [{"t_start": 1.0, "t_end": 2.0, "instance_id": "3"}])
    assert response.status_code == 422
    assert response.json()["detail"].startswith("items[0].target.instance_id:")


def test_non_string_completion_is_refused(http):
    response = post_items(http, "vtg", [12], [{"t_start": 1.0, "t_end": 2.0}])
    assert response.status_code == 422
    assert response.json()["detail"] == "items[0].completion: Input should be a valid string"


def test_too_many_items_is_413_naming_the_limit(http):
    completions, targets = items("vtg", MAX_ITEMS + 1)
    response = post_items(http, "vtg", completions, targets)
    assert response.status_code == 413
    assert f"too many items: {MAX_ITEMS + 1}; the limit is {MAX_ITEMS}" in response.json()["detail"]


def test_declared_body_over_the_limit_is_413(http):
    response = http.post("/v1/score", content=b" " * (MAX_BODY + 1), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert f"over the limit of {MAX_BODY} bytes" in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413_without_reading_it_all(http):
    sent = 0

    def chunks():  # 100x the limit, stopped early if the server gives up reading
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b" " * MAX_BODY

    response = http.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "over the limit" in response.json()["detail"]


def test_body_that_never_finishes_arriving_is_408(server):
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"task\"")
        start = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - start < 5


def test_a_runaway_completion_scores_zero_flagged_and_the_rest_of_the_batch_scores(http):
    completions, targets = items("vtg", 4, malformed_every=0)
    completions[2] = completions[2] + " " * MAX_COMPLETION_CHARS  # would parse if it were shorter
    response = post_items(http, "vtg", completions, targets)
    assert_same_as_local(response, "vtg", completions, targets)
    data = response.json()
    assert data["runaway"] == [False, False, True, False]
    assert data["rewards"][2] == 0.0 and data["terms"][2] == {"tiou": 0.0, "format": 0.0}
    assert all(reward > 1.0 for i, reward in enumerate(data["rewards"]) if i != 2)


def test_hostile_bodies_never_take_the_worker_down(http):
    worker = http.post("/v1/score", json={"task": "vtg", "items": []}).headers["x-reward-worker"]
    hostile = [
        b"[" * 30000 + b"]" * 30000,                                  # nesting beyond the parser's stack
        b'{"task": "vtg", "items": [{"completion": "x", "target": {"t_start": 1' + b"1" * 5000 + b', "t_end": 2}}]}',
        b'{"task": "vtg", "items": [{"completion": "x", "target": {"t_start": Infinity, "t_end": 1e999}}]}',
        b"\xff\xfe not even utf-8",
        b"null",
    ]
    for body in hostile:
        response = http.post("/v1/score", content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (body[:40], response.text)
        assert response.json()["detail"]
    # pathological but legal completions still score, fast
    for task in TASKS:
        junk = ["<think>" * (JUNK_CHARS // 7), "<answer>" * (JUNK_CHARS // 8), "[" * JUNK_CHARS,
                "0." * (JUNK_CHARS // 2)]
        _, targets = items(task, len(junk))
        start = time.monotonic()
        response = post_items(http, task, junk, targets)
        assert response.status_code == 200 and response.json()["parsed"] == [False] * len(junk)
        assert time.monotonic() - start < 2
    assert http.get("/healthz").status_code == 200
    assert http.post("/v1/score", json={"task": "vtg", "items": []}).headers["x-reward-worker"] == worker


def test_openrlhf_endpoint_scores_the_query_minus_its_prompt(http):
    completions, targets = items("stvg-r1", 6)
    prompts = [f"<|im_start|>user\nFind object {i}<|im_end|>\n<|im_start|>assistant\n" for i in range(6)]
    queries = [p + c + "<|im_end|>" for p, c in zip(prompts, completions)]
    queries[1] = "<|endoftext|><|endoftext|>" + queries[1]  # left padding before the prompt
    response = http.post("/openrlhf/stvg-r1", json={"query": queries, "prompts": prompts,
                                                    "labels": [json.dumps(t) for t in targets], "metas": [{}] * 6})
    assert response.status_code == 200, response.text
    data = response.json()
    expected = score_batch("stvg-r1", [c.strip() for c in completions], targets)
    assert data["rewards"] == [r.total for r in expected]
    assert data["scores"] == data["rewards"]
    assert set(data["extra_logs"]) == {*expected[0].terms, "runaway"}
    for name in expected[0].terms:
        assert data["extra_logs"][name] == [r.terms[name] for r in expected]
    assert data["extra_logs"]["runaway"] == [0.0] * 6


def test_openrlhf_runaway_completion_scores_zero_and_is_logged(http):
    prompt = "<|im_start|>assistant\n"
    query = prompt + "<think>a</think><answer>2 to 4</answer>" + "!" * MAX_COMPLETION_CHARS
    response = http.post("/openrlhf/vtg", json={"query": [query, prompt + "<think>a</think><answer>2 to 4</answer>"],
                                                "prompts": [prompt, prompt], "labels": ['{"t_start": 2, "t_end": 4}'] * 2})
    assert response.status_code == 200, response.text
    assert response.json()["rewards"] == [0.0, 2.0]
    assert response.json()["extra_logs"]["runaway"] == [1.0, 0.0]


def test_openrlhf_query_without_its_prompt_is_scored_whole_and_counted(http):
    before = metric_value(http.get("/metrics").text, "stvg_reward_openrlhf_prompt_mismatch_total", task="vtg")
    completion = "<think>a</think><answer>2 to 4</answer>"
    response = http.post("/openrlhf/vtg", json={"query": [completion], "prompts": ["a prompt not in the query"],
                                                "labels": ['{"t_start": 2, "t_end": 4}']})
    assert response.status_code == 200
    assert response.json()["rewards"] == [2.0]  # exact span: tIoU 1 + format 1
    after = metric_value(http.get("/metrics").text, "stvg_reward_openrlhf_prompt_mismatch_total", task="vtg")
    assert after - before == 1


@pytest.mark.parametrize("payload, message", [
    ({"query": ["a", "b"], "prompts": ["a"], "labels": ["{}", "{}"]},
     "query, prompts and labels must have the same length; got 2, 1 and 2"),
    ({"query": ["pq"], "prompts": ["p"], "labels": ["{not json"]}, "labels[0] is not a JSON-encoded target"),
    ({"query": ["pq"], "prompts": ["p"], "labels": ['{"t_start": 1}']}, "labels[0].t_end: Field required"),
])
def test_openrlhf_bad_payloads_are_422_naming_the_sample(http, payload, message):
    response = http.post("/openrlhf/vtg", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


def test_openrlhf_unknown_task_in_the_path_is_422_listing_tasks(http):
    response = http.post("/openrlhf/detection", json={"query": [], "prompts": [], "labels": []})
    assert response.status_code == 422
    assert "choose one of: stvg-o1, stvg-r1, vtg" in response.json()["detail"]


def test_metrics_count_requests_items_parse_failures_and_runaways(http):
    def snapshot():
        text = http.get("/metrics").text
        return (metric_value(text, "stvg_reward_requests_total", endpoint="/v1/score", status="200"),
                metric_value(text, "stvg_reward_requests_total", endpoint="/v1/score", status="422"),
                metric_value(text, "stvg_reward_items_scored_total", task="stvg-r1"),
                metric_value(text, "stvg_reward_parse_failures_total", task="stvg-r1"),
                metric_value(text, "stvg_reward_runaway_completions_total", task="stvg-r1"),
                metric_value(text, "stvg_reward_request_duration_seconds_count", endpoint="/v1/score"))

    before = snapshot()
    completions, targets = items("stvg-r1", 10, malformed_every=5)  # items 4 and 9 are junk
    completions[0] += "\n" * MAX_COMPLETION_CHARS  # a runaway: a parse failure too
    for _ in range(3):
        assert post_items(http, "stvg-r1", completions, targets).status_code == 200
    assert post_items(http, "stvg-r1", ["x"], [{"t_start": 1.0}]).status_code == 422
    after = snapshot()
    assert [a - b for a, b in zip(after, before)] == [3, 1, 30, 9, 3, 4]


def test_probes_answer_and_schema_documents_targets_per_task(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json()["status"] == "ready"
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["StvgO1Target"]["required"]) == {"t_start", "t_end", "boxes", "width", "height"}
    assert set(schemas["StvgR1Target"]["required"]) == {"t_start", "t_end", "instance_id"}
    assert set(schemas["VtgTarget"]["required"]) == {"t_start", "t_end"}




def test_a_taken_port_refuses_to_start_in_one_line(server):
    result = subprocess.run([sys.executable, "-m", "infra.cli", "serve-rewards", "--host", HOST,
                             "--port", str(server.port)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"stvg serve-rewards: error: cannot listen on {HOST}:{server.port}: "
                                     "Address already in use (--host/--port)")
