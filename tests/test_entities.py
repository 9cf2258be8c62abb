"""Entity-level P/R/F1 with conlleval semantics, on hand-made sequences."""

import pytest

from recurrentkit.metrics.entities import EntityScores, detect_scheme, entity_scores, extract_entities


@pytest.mark.parametrize("tags,entities", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
    (["O", "I-PER", "I-PER"], [("PER", 1, 2)]),                      # a stray I- opens an entity (conlleval)
    (["I-PER", "O"], [("PER", 0, 0)]),
    (["B-PER", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 1)]),             # a type change splits
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),    # B after B starts a new entity
    (["I-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),
    (["B-ORG", "I-ORG"], [("ORG", 0, 1)]),                            # the sentence end closes it
    (["O", "O"], []),
    (["S-PER", "B-LOC", "E-LOC", "S-LOC"], [("PER", 0, 0), ("LOC", 1, 2), ("LOC", 3, 3)]),  # BIOES
    (["B-X", "E-X", "E-X"], [("X", 0, 1), ("X", 2, 2)]),             # E after E starts a new one
    (["B-X", "I-X", "E-X", "I-X"], [("X", 0, 2), ("X", 3, 3)]),
])
def test_extract_entities(tags, entities):
    assert extract_entities(tags) == entities


def test_scores_count_exact_span_and_type():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"]]
    # predicted: PER(0,0) wrong span, LOC(3,3) right, LOC(0,0) wrong type -> 1 correct of 3 predicted, 3 gold
    scores = entity_scores(pred, gold)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3)


def test_scores_precision_and_recall_differ():
    gold = [["B-PER", "O", "B-LOC", "O"]]
    pred = [["B-PER", "O", "O", "O"]]
    assert entity_scores(pred, gold) == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})
    assert entity_scores([["O"]], [["O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_sentences_are_scored_separately():
    # I-PER opening sentence 2 is a new entity, not the continuation of sentence 1's last one
    gold = [["O", "B-PER"], ["I-PER", "O"]]
    assert entity_scores(gold, gold)["f1"] == 1.0
    assert entity_scores([["O", "B-PER", "I-PER", "O"]], [["O", "B-PER", "I-PER", "O"]])["precision"] == 1.0
    assert len(extract_entities(gold[0])) + len(extract_entities(gold[1])) == 2


def test_metric_accumulates_like_the_function():
    gold = [["B-PER", "I-PER", "O"], ["B-LOC"], ["O", "I-MISC"]]
    pred = [["B-PER", "I-PER", "O"], ["O"], ["O", "B-MISC"]]
    metric = EntityScores()
    for p, g in zip(pred, gold):
        metric.update([p], [g])
    got = {k: float(v) for k, v in metric.compute().items()}
    assert got == pytest.approx(entity_scores(pred, gold))
    assert got["precision"] == pytest.approx(1.0) and got["recall"] == pytest.approx(2 / 3)


def test_detect_scheme():
    assert detect_scheme(["O", "B-PER", "I-PER"]) == "BIO"
    assert detect_scheme(["O", "B-PER", "I-PER", "E-PER", "S-PER"]) == "BIOES"
    assert detect_scheme(["NOUN", "VERB", "ADP"]) is None
    assert detect_scheme(["O"]) is None


def test_bad_tags_and_lengths_raise():
    with pytest.raises(ValueError, match="neither 'O'"):
        extract_entities(["PER"])
    with pytest.raises(ValueError, match="sentence 0"):
        entity_scores([["O", "O"]], [["O"]])
