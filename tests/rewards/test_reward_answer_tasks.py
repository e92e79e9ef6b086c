"""STVG-R1 and VTG rewards on hand-worked examples (the released STVG-R1 rules)."""

import pytest

from rewards import TERMS, score_batch

R1_TARGET = {"t_start": 2.0, "t_end": 5.0, "instance_id": 3}
VTG_TARGET = {"t_start": 2.0, "t_end": 5.0}


def r1(text, tgt=R1_TARGET, weights=None):
    [result] = score_batch("stvg-r1", [text], [tgt], weights)
    return result


def vtg(text, tgt=VTG_TARGET):
    [result] = score_batch("vtg", [text], [tgt])
    return result


def test_r1_full_answer():
    result = r1("<think>the man in red</think> <answer>Target ID: 3, Time range: 1.50 to 4.00</answer>")
    # tIoU = (min(4,5) - max(1.5,2)) / (max(4,5) - min(1.5,2)) = 2 / 3.5
    assert list(result.terms) == list(TERMS["stvg-r1"]) == ["tiou", "id", "format"]
    assert result.terms == pytest.approx({"tiou": 2 / 3.5, "id": 1.0, "format": 1.0})
    assert result.total == pytest.approx(2 + 2 / 3.5)
    assert result.parsed


def test_r1_and_separator_counts_like_to():
    result = r1("<think>x</think><answer>Target ID: 3, Time range: 2.00 and 5.00</answer>")
    assert result.terms == {"tiou": 1.0, "id": 1.0, "format": 1.0}


def test_r1_last_answer_block_wins():
    text = ("<think>x</think><answer>Target ID: 3, Time range: 2 to 5</answer> wait, no: "
            "<answer>Target ID: 4, Time range: 5 to 7</answer>")
    # format: the lazy fullmatch spans both blocks -> 1; last block: wrong id, [5,7] touches [2,5] -> tIoU 0
    assert r1(text).terms == {"tiou": 0.0, "id": 0.0, "format": 1.0}


def test_r1_missing_id_zeroes_tiou_and_id_but_keeps_format():
    result = r1("<think>x</think><answer>Time range: 2 to 5</answer>")
    assert result.terms == {"tiou": 0.0, "id": 0.0, "format": 1.0}
    assert result.total == 1.0 and not result.parsed


def test_r1_answer_without_think_scores_without_format():
    result = r1("<answer>Target ID: 3, Time range: 2 to 5</answer>")
    assert result.terms == {"tiou": 1.0, "id": 1.0, "format": 0.0}
    assert result.parsed


def test_r1_text_after_the_answer_breaks_only_the_format():
    result = r1("<think>x</think><answer>Target ID: 3, Time range: 2 to 5</answer> Done.")
    assert result.terms == {"tiou": 1.0, "id": 1.0, "format": 0.0}


def test_r1_reversed_span_has_zero_tiou():
    assert r1("<think>x</think><answer>Target ID: 3, Time range: 5 to 2</answer>").terms["tiou"] == 0.0


def test_r1_wrong_id_and_weights():
    result = r1("<think>x</think><answer>Target ID: 30, Time range: 3 to 4</answer>",
                weights={"tiou": 2.0, "id": 5.0})
    # tIoU = 1/3; id 0; total = 2 * 1/3 + 5 * 0 + 1 * 1
    assert result.terms == pytest.approx({"tiou": 1 / 3, "id": 0.0, "format": 1.0})
    assert result.total == pytest.approx(2 / 3 + 1)


def test_vtg_answer():
    result = vtg("<think>x</think><answer>3 to 6</answer>")
    # (5 - 3) / (6 - 2) = 0.5
    assert list(result.terms) == ["tiou", "format"]
    assert result.terms == {"tiou": 0.5, "format": 1.0} and result.total == 1.5


def test_vtg_without_think_and_with_and_separator():
    result = vtg("<answer>2.5 and 4.5</answer>")
    assert result.terms == pytest.approx({"tiou": 2 / 3, "format": 0.0})


def test_vtg_zero_length_spans_have_empty_union():
    assert vtg("<think></think><answer>3 to 3</answer>", {"t_start": 3, "t_end": 3}).terms["tiou"] == 0.0


def test_vtg_unparseable_answer_keeps_format():
    result = vtg("<think>x</think><answer>around the middle</answer>")
    assert result.terms == {"tiou": 0.0, "format": 1.0} and not result.parsed
