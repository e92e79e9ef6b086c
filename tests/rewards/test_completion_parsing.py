"""Parsers: the three formats on worked examples, and on hostile input (never raise, bounded time)."""

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards.parsing import (MAX_COMPLETION_CHARS, ParsedStvgR1, ParsedVtg, answer_format_ok, last_answer,
                             parse_stvg_o1, parse_stvg_r1, parse_vtg)

PAPER_EXAMPLE = ("<time> 5 - 7 </time> <think_bbox> 5. [271, 30, 395, 212], 6. [267, 24, 393, 216], "
                 "7. [270, 18, 395, 221] </think_bbox> <pred_bbox> 5. [278, 35, 399, 234], "
                 "6. [1, 2, 3, 4], 7. [5, 6, 7, 8] </pred_bbox>")


def test_o1_parses_the_paper_example():
    parsed = parse_stvg_o1(PAPER_EXAMPLE)
    assert (parsed.t_start, parsed.t_end) == (5, 7)
    assert parsed.think == ((5, (271.0, 30.0, 395.0, 212.0)), (6, (267.0, 24.0, 393.0, 216.0)),
                            (7, (270.0, 18.0, 395.0, 221.0)))
    assert parsed.pred == ((5, (278.0, 35.0, 399.0, 234.0)), (6, (1.0, 2.0, 3.0, 4.0)), (7, (5.0, 6.0, 7.0, 8.0)))
    assert parsed.consistent


def test_o1_allows_text_around_and_whitespace_between_parts():
    text = "Let me look.\n<time>5-5</time>\n\n<think_bbox>5.[1,2,3,4]</think_bbox>\t<pred_bbox>\n5. [1,2,3,4],\n</pred_bbox> done"
    parsed = parse_stvg_o1(text)
    assert (parsed.t_start, parsed.t_end, parsed.pred) == (5, 5, ((5, (1.0, 2.0, 3.0, 4.0)),))


def test_o1_number_forms_signs_and_decimals():
    parsed = parse_stvg_o1("<time>0 - 0</time><think_bbox>0. [-3.5, +2, 4., .25]</think_bbox><pred_bbox>"
                           "00. [0012, 1.125, -0, 7]</pred_bbox>")
    assert parsed.think == ((0, (-3.5, 2.0, 4.0, 0.25)),)
    assert parsed.pred == ((0, (12.0, 1.125, 0.0, 7.0)),)


def test_o1_entries_may_be_separated_by_newlines_only_and_lists_may_be_empty():
    parsed = parse_stvg_o1("<time>1 - 2</time><think_bbox></think_bbox><pred_bbox>1. [1,2,3,4]\n2. [5,6,7,8]</pred_bbox>")
    assert parsed.think == ()
    assert [i for i, _ in parsed.pred] == [1, 2]


def test_o1_keeps_repeats_and_order_as_written():
    parsed = parse_stvg_o1("<time>1 - 2</time><think_bbox>2. [1,1,1,1], 1. [2,2,2,2], 2. [3,3,3,3]</think_bbox>"
                           "<pred_bbox></pred_bbox>")
    assert [i for i, _ in parsed.think] == [2, 1, 2]
    assert not parsed.consistent


def test_o1_uses_the_last_pred_bbox_block():
    text = ("<time>1 - 1</time><think_bbox>1. [0,0,1,1]</think_bbox><pred_bbox>1. [0,0,1,1]</pred_bbox> again: "
            "<time>4 - 4</time><think_bbox>4. [0,0,2,2]</think_bbox><pred_bbox>4. [0,0,2,2]</pred_bbox>")
    assert parse_stvg_o1(text).t_start == 4


@pytest.mark.parametrize("text", [
    "",
    "<time> 5 - 7 </time>",
    # parts out of order or missing
    "<think_bbox></think_bbox><time>1 - 2</time><pred_bbox></pred_bbox>",
    "<time>1 - 2</time><pred_bbox></pred_bbox>",
    # text between the parts
    "<time>1 - 2</time> so <think_bbox></think_bbox><pred_bbox></pred_bbox>",
    "<time>1 - 2</time><think_bbox></think_bbox> and <pred_bbox></pred_bbox>",
    # unclosed final part
    "<time>1 - 2</time><think_bbox></think_bbox><pred_bbox>1. [1,2,3,4]",
    # time not two unsigned integers
    "<time>1.5 - 2</time><think_bbox></think_bbox><pred_bbox></pred_bbox>",
    "<time>-1 - 2</time><think_bbox></think_bbox><pred_bbox></pred_bbox>",
    "<time>1 to 2</time><think_bbox></think_bbox><pred_bbox></pred_bbox>",
    "<time>1234567890 - 1234567891</time><think_bbox></think_bbox><pred_bbox></pred_bbox>",
    # a malformed entry anywhere
    "<time>1 - 1</time><think_bbox>1. [1,2,3]</think_bbox><pred_bbox></pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [1,2,3,4,5]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1 [1,2,3,4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1 . [1,2,3,4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [1,2,3,4], junk</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [1,2,3,4],, 2. [1,2,3,4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [nan, 2, 3, 4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [inf, 2, 3, 4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [1e3, 2, 3, 4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>-1. [1, 2, 3, 4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [12345678901234567, 2, 3, 4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1234567890. [1, 2, 3, 4]</pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [\u0661, 2, 3, 4]</pred_bbox>",  # Arabic-Indic 1
    "<time>1 - 1</time><think_bbox>1. [1,2,3,4]</pred_bbox></think_bbox><pred_bbox></pred_bbox>",
])
def test_o1_rejects_malformed_text(text):
    assert parse_stvg_o1(text) is None


def test_o1_accepts_largest_numbers_within_the_caps():
    parsed = parse_stvg_o1("<time>999999999 - 999999999</time><think_bbox></think_bbox><pred_bbox>"
                           "999999999. [9999999999999999.9999999999999999, 0, 0, 0]</pred_bbox>")
    assert parsed.t_end == 999_999_999
    assert parsed.pred[0][0] == 999_999_999 and parsed.pred[0][1][0] == pytest.approx(1e16)


def test_every_parser_returns_none_for_over_long_text():
    padding = " " * MAX_COMPLETION_CHARS
    assert parse_stvg_o1(padding + PAPER_EXAMPLE) is None
    assert parse_stvg_r1("<think></think><answer>Target ID: 1, Time range: 1 to 2</answer>" + padding) is None
    assert parse_vtg("<answer>1 to 2</answer>" + padding) is None
    assert not answer_format_ok("<think></think><answer>1 to 2</answer>" + padding)


@pytest.mark.parametrize("value", [None, 12, b"<time>1 - 1</time>", ["x"]])
def test_parsers_return_none_for_non_strings(value):
    assert parse_stvg_o1(value) is None and parse_stvg_r1(value) is None and parse_vtg(value) is None
    assert answer_format_ok(value) is False


# ---- STVG-R1 / VTG --------------------------------------------------------------------------

def test_r1_parses_id_and_range_from_the_last_answer_block():
    text = ("<think>maybe <answer>Target ID: 1, Time range: 0 to 1</answer></think>"
            "<answer>Target ID: 12, Time range: 3.25 to 7.5</answer>")
    assert parse_stvg_r1(text) == ParsedStvgR1(12, 3.25, 7.5)


def test_r1_accepts_and_separator_and_any_letter_case():
    assert parse_stvg_r1("<answer>target id:7 time RANGE: 1 AND 2.</answer>") == ParsedStvgR1(7, 1.0, 2.0)


@pytest.mark.parametrize("answer", [
    "Time range: 1 to 2",                       # no id
    "Target ID: 3",                             # no range
    "Target ID: 3, Time range: -1 to 2",        # negative time
    "Target ID: x3, Time range: 1 to 2",
    "Target ID: 3, Time range: 1 until 2",
    "Target ID: 1234567890123456789, Time range: 1 to 2",   # id beyond 18 digits
    "Target ID: 3, Time range: " + "9" * 40 + " to 2",      # a time beyond 32 characters
])
def test_r1_parse_fails_when_a_value_is_missing_or_malformed(answer):
    assert parse_stvg_r1(f"<think></think><answer>{answer}</answer>") is None


def test_r1_without_answer_tags_does_not_parse():
    assert parse_stvg_r1("Target ID: 3, Time range: 1 to 2") is None
    assert parse_stvg_r1("<answer>Target ID: 3, Time range: 1 to 2") is None


def test_last_answer_follows_findall_semantics():
    # findall('<answer>(.*?)</answer>') pairs each opening tag with the next closing tag.
    assert last_answer("<answer>a</answer><answer>b</answer>") == "b"
    assert last_answer("<answer>a<answer>b</answer>") == "a<answer>b"
    assert last_answer("<answer>a</answer><answer>unclosed") == "a"
    assert last_answer("no tags") is None


def test_vtg_parses_the_first_span_of_the_last_answer():
    assert parse_vtg("<think>3 to 4</think><answer>from 2.5 to 10 then 11 to 12</answer>") == ParsedVtg(2.5, 10.0)
    assert parse_vtg("<answer>4and5</answer>") == ParsedVtg(4.0, 5.0)
    assert parse_vtg("<answer>nothing</answer>") is None
    assert parse_vtg("<answer>.5 to 2</answer>") is None  # a number must start with a digit


RELEASED_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


@pytest.mark.parametrize("text,expected", [
    ("<think>a</think><answer>b</answer>", True),
    ("  <think>a</think>\n\n<answer>b</answer>\n", True),
    ("<think></think><answer></answer>", True),
    ("<think>a</think>x<answer>b</answer>", False),
    ("<think>a</think><answer>b</answer>tail", False),
    ("lead<think>a</think><answer>b</answer>", False),
    ("<think>a</think><answer>b</answer> <answer>c</answer>", True),
    ("<think><answer></think></answer>", False),
    ("<think></think><answer>", False),
])
def test_answer_format_rule_examples(text, expected):
    assert answer_format_ok(text) is expected
    assert bool(RELEASED_FORMAT.fullmatch(text.strip())) is expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x", "<", ">",
                                 "\u2003"]), max_size=14).map("".join))
def test_answer_format_rule_matches_the_released_regex(text):
    assert answer_format_ok(text) == bool(RELEASED_FORMAT.fullmatch(text.strip()))


# ---- hostile input --------------------------------------------------------------------------

TAG_PIECES = ["<time>", "</time>", "<think_bbox>", "</think_bbox>", "<pred_bbox>", "</pred_bbox>", "<think>",
              "</think>", "<answer>", "</answer>", "Target ID:", "Time range:", " to ", " and ", "1", "23.5", "-",
              ".", ",", "[", "]", " ", "\n", "nan", "inf", "1e308", "9" * 30, "\u00e9", "\U0001f600", "\x00"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.lists(st.sampled_from(TAG_PIECES), max_size=40).map("".join)))
def test_parsers_never_raise(text):
    for parse in (parse_stvg_o1, parse_stvg_r1, parse_vtg, answer_format_ok, last_answer):
        parse(text)
    parsed = parse_stvg_o1(text)
    if parsed is not None:
        assert all(len(box) == 4 for _, box in parsed.think + parsed.pred)


ADVERSARIAL = [
    " " * 99_000,
    "<time>" * 16_000,
    "<pred_bbox>" * 9_000,
    "</think_bbox><pred_bbox></pred_bbox>" * 2_700,
    "<time>1 - 1</time><think_bbox>" + "1. [1, 2, 3, 4] " * 6_000 + "x</think_bbox><pred_bbox></pred_bbox>",
    "<time>1 - 1</time><think_bbox>" + "1.[" + " " * 90_000 + "</think_bbox><pred_bbox></pred_bbox>",
    "<time>1 - 1</time><think_bbox></think_bbox><pred_bbox>1. [" + "1" * 90_000 + "</pred_bbox>",
    "<answer>Time range: " + "1" * 90_000 + "x</answer>",
    "<answer>" + "1" * 90_000 + "x</answer>",
    "<answer>" + "1 " * 45_000 + "</answer>",
    "<answer>" + "Time range: 1" * 7_000 + "</answer>",
    "<think>" + "</think>" * 12_000 + "<answer>",
    "<think>" + "</think> <answer>" * 5_000 + "x",
    "<answer>" * 12_000 + "</answer>",
]


@pytest.mark.parametrize("index", range(len(ADVERSARIAL)))
def test_parsers_finish_quickly_on_adversarial_input(index):
    text = ADVERSARIAL[index]
    assert len(text) <= MAX_COMPLETION_CHARS
    started = time.perf_counter()
    for parse in (parse_stvg_o1, parse_stvg_r1, parse_vtg, answer_format_ok):
        parse(text)
    assert time.perf_counter() - started < 0.5  # linear scans take milliseconds; backtracking takes minutes


def test_consistency_of_a_huge_span_is_decided_without_enumerating_it():
    parsed = parse_stvg_o1("<time>0 - 999999999</time><think_bbox>0. [1, 1, 2, 2]</think_bbox><pred_bbox></pred_bbox>")
    started = time.perf_counter()
    assert parsed.consistent is False
    assert time.perf_counter() - started < 0.1
