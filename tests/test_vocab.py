"""Vocab: specials first, frequency order with alphabetical ties, min_freq/max_size, unk handling, save/load."""

import json

import pytest
import torch

from recurrentkit.data.vocab import Vocab

LINES = [["b", "a", "c", "b"], ["d", "a", "b", "e"], ["c", "e", "f"]]  # b:3 a:2 c:2 e:2 d:1 f:1


def test_build_orders_specials_then_frequency_then_alphabet():
    v = Vocab.build(LINES, specials=("<unk>", "<pad>"))
    assert v.tokens == ["<unk>", "<pad>", "b", "a", "c", "e", "d", "f"]
    assert v.counts == [0, 0, 3, 2, 2, 2, 1, 1]
    assert v.unk_id == 0 and v.pad_id == 1
    assert len(v) == 8 and "e" in v and "zz" not in v


def test_special_seen_in_data_keeps_its_count_and_place():
    v = Vocab.build([["<unk>", "x", "<unk>", "y", "x", "x"]])
    assert v.tokens == ["<unk>", "x", "y"] and v.counts == [2, 3, 1]


def test_min_freq_and_max_size():
    assert Vocab.build(LINES, min_freq=2).tokens == ["<unk>", "b", "a", "c", "e"]
    v = Vocab.build(LINES, max_size=3)
    assert v.tokens == ["<unk>", "b", "a"]  # max_size counts the specials
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build(LINES, max_size=0)
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(LINES, min_freq=0)


def test_encode_decode_and_unknowns():
    v = Vocab.build(LINES)
    ids = v.encode(["a", "zzz", "f"])
    assert ids == [v.token_to_id("a"), v.unk_id, v.token_to_id("f")]
    assert v.decode(ids) == ["a", "<unk>", "f"]
    assert v.decode(torch.tensor(ids)) == ["a", "<unk>", "f"]
    assert v.id_to_token(v.token_to_id("c")) == "c"
    with pytest.raises(IndexError, match="out of range"):
        v.id_to_token(len(v))


def test_no_unk_raises_keyerror_naming_the_token():
    v = Vocab.build(LINES, specials=())
    assert v.unk_id is None and v.pad_id is None
    with pytest.raises(KeyError, match="zzz"):
        v.encode(["a", "zzz"])
    with pytest.raises(KeyError, match="zzz"):
        v.token_to_id("zzz")


def test_constructor_validation():
    with pytest.raises(ValueError, match="duplicate token 'a'"):
        Vocab(["<unk>", "a", "a"])
    with pytest.raises(ValueError, match="unk_token"):
        Vocab(["a", "b"])
    with pytest.raises(ValueError, match="counts"):
        Vocab(["<unk>", "a"], counts=[1])


def test_from_counts_equals_build_and_pickles():
    import pickle
    from collections import Counter

    counts = Counter(t for line in LINES for t in line)
    v = Vocab.from_counts(counts, min_freq=1, max_size=5)
    assert v == Vocab.build(LINES, max_size=5)
    w = pickle.loads(pickle.dumps(v))
    assert w == v and w.encode(["b", "??"]) == v.encode(["b", "??"])


def test_from_counts_other_unk_token_and_folded_counts():
    counts = {"the": 5, "cat": 3, "sat": 1, "on": 1, "<UNK>": 2}
    v = Vocab.from_counts(counts, min_freq=2, specials=("</S>", "<UNK>"), unk_token="<UNK>", fold_pruned=True)
    assert v.tokens == ["</S>", "<UNK>", "the", "cat"] and v.unk_token == "<UNK>"
    assert v.counts == [0, 2 + 1 + 1, 5, 3]  # <UNK> counts itself and the two pruned words
    assert v.encode(["sat", "dog"]) == [v.unk_id, v.unk_id]
    assert Vocab.from_counts(counts, min_freq=2, specials=("<UNK>",), unk_token="<UNK>").counts[0] == 2  # not folded


def test_state_dict_and_save_load(tmp_path):
    v = Vocab.build(LINES, min_freq=1, specials=("<unk>", "<pad>"))
    state = json.loads(json.dumps(v.state_dict()))
    assert Vocab.from_state_dict(state) == v
    path = tmp_path / "vocab.json"
    v.save(path)
    w = Vocab.load(path)
    assert w == v and w.tokens == v.tokens and w.counts == v.counts and w.unk_token == v.unk_token
    with pytest.raises(FileNotFoundError, match="nope.json"):
        Vocab.load(tmp_path / "nope.json")
