"""Entity-level metrics (seqeval's entity reading, offline) against hand-computed values, the per-type
report, and the one-line refusals of bad tags (scheme, transitions, lengths, tag sets between splits)."""

from __future__ import annotations

import random
import warnings

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2, IOBES

from hftl import ConfigError, DataError
from hftl.data.builtin import load_builtin
from hftl.tasks._token_metrics import (
    check_tag_sequences,
    check_tag_set,
    detect_scheme,
    entity_metrics,
    entity_report,
)


def _close(got: dict, expected: dict):
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_an_i_tag_opening_an_entity_counts_in_default_mode_only():
    references = [["B-PER", "I-PER", "O", "B-LOC"]]
    predictions = [["I-PER", "I-PER", "O", "B-LOC"]]
    # conlleval reads I-PER after the sentence start as the start of a PER: both entities found
    _close(entity_metrics(references, predictions), {"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 0.75})
    # strict IOB2: that PER is ill-formed, so only LOC is predicted
    _close(entity_metrics(references, predictions, "strict"), {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "accuracy": 0.75})


def test_micro_scores_count_entities_across_sentences_and_types():
    references = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "B-PER"]]
    predictions = [["B-PER", "O", "O"], ["B-LOC", "O", "B-LOC"]]
    # true PER(0:2), LOC, PER; predicted PER(0:1), LOC, LOC: one hit in three each way; 4 of 6 tokens right
    third = {"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "accuracy": 4 / 6}
    for mode in ("default", "strict"):
        _close(entity_metrics(references, predictions, mode), third)


@pytest.mark.parametrize("tags", [("S", "B", "I", "E"), ("U", "B", "I", "L")], ids=["BIOES", "BILOU"])
def test_bioes_and_bilou_entities_must_match_their_whole_span(tags):
    single, begin, inside, end = tags
    references = [[f"{single}-PER", "O", f"{begin}-ORG", f"{inside}-ORG", f"{end}-ORG"]]
    predictions = [[f"{single}-PER", "O", f"{begin}-ORG", f"{end}-ORG", "O"]]
    for mode in ("default", "strict"):
        _close(entity_metrics(references, predictions, mode), {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.6})


def test_no_entities_anywhere_scores_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # seqeval's UndefinedMetricWarning would fail here
        for mode in ("default", "strict"):
            _close(entity_metrics([["O", "O"]], [["O", "O"]], mode), {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 1.0})
            _close(entity_metrics([["O"]], [["B-PER"]], mode), {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.0})
            text, table = entity_report([["O"]], [["O"]], mode)
            assert table["micro avg"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
            assert "micro avg" in text


def test_the_report_has_a_row_per_entity_type_and_the_averages():
    references = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "B-PER"]]
    predictions = [["B-PER", "O", "O"], ["B-LOC", "O", "B-LOC"]]
    text, table = entity_report(references, predictions)
    assert list(table) == ["LOC", "PER", "micro avg", "macro avg"]
    _close(table["LOC"], {"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1})
    _close(table["PER"], {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 2})
    _close(table["micro avg"], {"precision": 1 / 3, "recall": 1 / 3, "f1-score": 1 / 3, "support": 3})
    _close(table["macro avg"], {"precision": 0.25, "recall": 0.5, "f1-score": 1 / 3, "support": 3})
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["LOC", "0.500", "1.000", "0.667", "1"]
    assert lines[-1].split() == ["macro", "avg", "0.250", "0.500", "0.333", "3"]


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_scores_and_report_equal_seqevals_own_on_messy_predictions(mode):
    rng = random.Random(0)
    for tags, scheme in (
        (["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"], IOB2),
        (["O", "B-PER", "I-PER", "E-PER", "S-PER", "S-LOC", "B-LOC", "E-LOC"], IOBES),
    ):
        references = [[rng.choice(tags) for _ in range(rng.randint(1, 9))] for _ in range(60)]
        if scheme is IOB2:  # well-formed references, ill-formed predictions
            references = [[t if not t.startswith("I-") or i and s[i - 1][2:] == t[2:] else "O" for i, t in enumerate(s)] for s in references]
        predictions = [[rng.choice(tags) if rng.random() < 0.3 else t for t in s] for s in references]
        options = {"mode": "strict", "scheme": scheme} if mode == "strict" else {}
        got = entity_metrics(references, predictions, mode)
        assert got["precision"] == pytest.approx(precision_score(references, predictions, zero_division=0, **options))
        assert got["recall"] == pytest.approx(recall_score(references, predictions, zero_division=0, **options))
        assert got["f1"] == pytest.approx(f1_score(references, predictions, zero_division=0, **options))
        _, table = entity_report(references, predictions, mode)
        expected = classification_report(references, predictions, output_dict=True, zero_division=0, **options)
        for name, row in table.items():
            _close(row, {key: expected[name][key] for key in row})


def test_an_unknown_mode_is_one_line():
    with pytest.raises(ConfigError, match="Entity metric mode 'lenient' is not one of default, strict"):
        entity_metrics([["O"]], [["O"]], "lenient")


@pytest.mark.parametrize(
    ("sequences", "scheme"),
    [
        ([["B-PER", "I-PER", "O"], ["O"]], "IOB2"),
        ([["O", "O"]], "IOB2"),
        ([["B-PER", "E-PER"], ["S-LOC"]], "BIOES"),
        ([["B-PER", "L-PER"], ["U-LOC"]], "BIOES"),
        ([["B-geo-loc", "I-geo-loc"]], "IOB2"),
    ],
)
def test_the_scheme_is_read_from_the_prefixes(sequences, scheme):
    assert detect_scheme(sequences) == scheme


@pytest.mark.parametrize(
    ("sequences", "message"),
    [
        ([["PER", "O"]], "The data has tag 'PER' without a B-/I-/E-/S- prefix; token classification tags must be BIO/IOB2 (B-PER I-PER for a two-word name, O outside entities) or BIOES (S-PER, B-PER I-PER E-PER, O)."),
        ([[3, 0]], "The data has tag 0 (int), not a tag name (strings such as 'B-PER'); token classification tags must be"),
        ([["b-per"]], "tag 'b-per' without a B-/I-/E-/S- prefix"),
        ([["S-PER", "U-LOC"]], "The tags mix BIOES (E-, S-) and BILOU (L-, U-) prefixes; use one scheme: rename L- to E- and U- to S-."),
    ],
)
def test_tags_without_a_scheme_are_one_line(sequences, message):
    with pytest.raises(DataError) as caught:
        detect_scheme(sequences)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


GOOD = ["Paris", "is", "nice"]


@pytest.mark.parametrize(
    ("tokens", "tags", "scheme", "message"),
    [
        ([GOOD, GOOD], [["B-LOC", "O", "O"], ["B-LOC", "O"]], "IOB2",
         "Row 1 of the train split ('Paris is nice') has 3 tokens but 2 tags; give every token exactly one tag."),
        ([GOOD], [None], "IOB2", "Row 0 of the train split ('Paris is nice') has 3 tokens but no tags"),
        ([GOOD, []], [["B-LOC", "O", "O"], []], "IOB2", "Row 1 of the train split ('') has no tokens; drop empty sentences from the data."),
        ([["in", "New", "York"]], [["O", "I-LOC", "I-LOC"]], "IOB2",
         "Row 0 of the train split ('in New York'): tag 'I-LOC' at token 1 ('New') does not continue a B-LOC or I-LOC; "
         "start each entity with B-LOC (IOB1 data: convert to IOB2)."),
        ([GOOD], [["B-PER", "I-LOC", "O"]], "IOB2", "tag 'I-LOC' at token 1 ('is') does not continue a B-LOC or I-LOC"),
        ([GOOD], [["S-LOC", "O", "O"]], "IOB2", "tag 'S-LOC' at token 0 ('Paris') is a BIOES tag in IOB2 data; use one scheme in every split."),
        ([GOOD], [["B-LOC", "I-LOC", "O"]], "BIOES",
         "tag 'O' at token 2 ('nice') comes inside the LOC entity, which must go on with I-LOC or end with E-LOC."),
        ([GOOD], [["B-LOC", "B-LOC", "E-LOC"]], "BIOES", "tag 'B-LOC' at token 1 ('is') comes inside the LOC entity"),
        ([GOOD], [["O", "E-LOC", "O"]], "BIOES",
         "tag 'E-LOC' at token 1 ('is') has no B-LOC before it; in BIOES an entity is S-LOC alone or B-LOC (I-LOC...) E-LOC."),
        ([GOOD], [["O", "B-LOC", "I-LOC"]], "BIOES",
         "Row 0 of the train split ('Paris is nice') ends inside a LOC entity; close it with E-LOC (or S-LOC for a one-token entity)."),
        ([GOOD], [["O", 1, "O"]], "IOB2",
         "has tag 1 (int), not a tag name (strings such as 'B-PER') at token 1; tags must be BIO/IOB2"),
        ([GOOD], [["O", None, "O"]], "IOB2", "has tag None (NoneType), not a tag name"),
        ([GOOD], [["O", "LOC", "O"]], "IOB2", "has tag 'LOC' without a B-/I-/E-/S- prefix at token 1"),
        (["Paris is nice"], [["B-LOC", "O", "O"]], "IOB2",
         "Row 0 of the train split ('Paris is nice') holds its tokens as one string, not a list; split it into one token per word."),
        ([list("abcdefgh")], [["I-X"] + ["O"] * 7], "IOB2", "Row 0 of the train split ('a b c d e f ...'): tag 'I-X' at token 0"),
    ],
)  # fmt: skip
def test_a_bad_row_is_one_line_naming_it(tokens, tags, scheme, message):
    with pytest.raises(DataError) as caught:
        check_tag_sequences(tokens, tags, "train", scheme)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("tags", "scheme"),
    [
        ([["B-LOC", "I-LOC", "O"], ["O", "B-PER", "B-LOC"]], "IOB2"),
        ([["B-LOC", "E-LOC", "S-PER"], ["B-LOC", "I-LOC", "E-LOC"]], "BIOES"),
        ([["B-LOC", "L-LOC", "U-PER"], ["O", "O", "U-LOC"]], "BIOES"),
    ],
)
def test_good_rows_pass(tags, scheme):
    check_tag_sequences([GOOD] * len(tags), tags, "validation", scheme)


def test_the_wnut16_splits_pass_every_check():
    data = load_builtin("wnut16")
    scheme = detect_scheme(data["train"]["ner_tags"])
    assert scheme == "IOB2"
    train_tags = {tag for row in data["train"]["ner_tags"] for tag in row}
    for name, split in data.items():
        check_tag_sequences(split["tokens"], split["ner_tags"], name, scheme)
        check_tag_set(train_tags, {tag for row in split["ner_tags"] for tag in row}, name)


def test_evaluation_tags_the_training_split_lacks_are_one_line():
    check_tag_set({"O", "B-PER"}, {"O"}, "test")
    with pytest.raises(DataError) as caught:
        check_tag_set({"O", "B-PER"}, {"O", "I-LOC", "B-LOC"}, "test")
    assert str(caught.value) == (
        "The test split has tag(s) B-LOC, I-LOC that the train split lacks, so the model can't predict them; "
        "add training sentences with them, or fix those tags in the test split."
    )
    with pytest.raises(DataError, match=r"has tag\(s\) B-0, B-1, B-2, B-3, B-4, B-5, B-6, B-7 and 2 more that"):
        check_tag_set({"O"}, {f"B-{i}" for i in range(10)}, "validation")
