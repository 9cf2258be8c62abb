"""Tokenizers: char keeps newlines, word gives one eos per line, BPE round-trips and survives a config round trip."""

import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recurrentkit.data.tokenizers import BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer, build_tokenizer

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "lm"


def test_char_tokenizer_keeps_newlines_and_round_trips():
    text = (FIXTURES / "verse.txt").read_text()
    toks = CharTokenizer().tokenize(text)
    assert toks.count("\n") == text.count("\n") > 0
    assert len(toks) == len(text)
    assert CharTokenizer().detokenize(toks) == text


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_char_tokenizer_round_trip_property(text):
    assert CharTokenizer().detokenize(CharTokenizer().tokenize(text)) == text


@pytest.mark.parametrize(
    "text, n_lines",
    [("a b", 1), ("a b\n", 1), ("a b\nc", 2), ("a\n\nb\n", 3), ("", 1), ("\n", 1), ("x\n\n", 2)],
)
def test_word_tokenizer_one_eos_per_line(text, n_lines):
    toks = WordTokenizer().tokenize(text)
    assert toks.count("<eos>") == n_lines
    assert toks[-1] == "<eos>"
    assert [t for t in toks if t != "<eos>"] == text.split()


def test_word_tokenizer_matches_line_by_line_reading():
    text = (FIXTURES / "tiny" / "train.txt").read_text()
    expected = []
    for line in text.splitlines():  # pytorch/examples: line.split() + ['<eos>'] for every line read
        expected += line.split() + ["<eos>"]
    assert WordTokenizer().tokenize(text) == expected


def test_word_tokenizer_options_and_detokenize():
    assert WordTokenizer(eos=None).tokenize("A b\nc") == ["A", "b", "c"]
    assert WordTokenizer(lower=True).tokenize("A B") == ["a", "b", "<eos>"]
    assert WordTokenizer(eos="</s>").tokenize("x") == ["x", "</s>"]
    tok = WordTokenizer()
    assert tok.detokenize(tok.tokenize(" the  cat \n sat ")) == "the cat\nsat\n"
    with pytest.raises(ValueError, match="eos"):
        WordTokenizer(eos="a b")


@pytest.fixture(scope="module")
def bpe():
    tok = BPETokenizer(vocab_size=300, min_frequency=1)
    texts = (FIXTURES / "verse.txt").read_text().splitlines(keepends=True)
    tok.train(texts * 5)
    return tok


def test_bpe_learns_merges_and_round_trips(bpe):
    text = (FIXTURES / "verse.txt").read_text()
    toks = bpe.tokenize(text)
    assert len(toks) < len(text.encode())  # merges were learned: fewer tokens than bytes
    assert bpe.detokenize(toks) == text  # byte-level BPE is lossless, newlines included


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=60))
def test_bpe_round_trip_any_text(bpe, text):
    assert bpe.detokenize(bpe.tokenize(text)) == text


def test_bpe_config_round_trips_through_json(bpe):
    cfg = json.loads(json.dumps(bpe.config()))
    assert cfg["name"] == "bpe" and isinstance(cfg["model"], str)
    rebuilt = build_tokenizer(cfg)
    text = "Whether 'tis nobler, to be or not"
    assert rebuilt.tokenize(text) == bpe.tokenize(text)
    assert rebuilt == bpe


def test_bpe_untrained_raises():
    with pytest.raises(RuntimeError, match="not trained"):
        BPETokenizer().tokenize("abc")
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer(vocab_size=10)


@pytest.mark.parametrize("cfg", [{"name": "char"}, {"name": "word", "eos": None, "lower": True}])
def test_build_tokenizer_from_name_and_config(cfg):
    tok = build_tokenizer(cfg)
    assert isinstance(tok, Tokenizer)
    assert tok.config() == {**tok.config(), **cfg}
    assert build_tokenizer(tok.config()) == tok
    assert build_tokenizer(cfg["name"]).name == cfg["name"]


def test_build_tokenizer_errors():
    with pytest.raises(ValueError, match="unknown tokenizer 'sentencepiece'"):
        build_tokenizer("sentencepiece")
    with pytest.raises(ValueError, match="'name'"):
        build_tokenizer({"eos": "x"})
    with pytest.raises(TypeError, match="word"):
        build_tokenizer("word", vocab_size=3)


# -- pre-spaced character files: "w i l l _ e x p a n d" --------------------------------------------------------
def _spaced(text):
    """A natural text written as a pre-spaced character file: symbols separated by spaces, ``_`` for a space."""
    return "\n".join(" ".join("_" if c == " " else c for c in line) for line in text.split("\n"))


def test_word_tokenizer_reads_pre_spaced_characters_back_as_text():
    tok = WordTokenizer(join="", space="_")
    tokens = tok.tokenize("w i l l _ e x p a n d\nn o w\n")
    assert tokens[:5] == ["w", "i", "l", "l", "_"] and tokens.count("<eos>") == 2
    assert tok.detokenize(tokens) == "will expand\nnow\n"
    assert WordTokenizer().detokenize(tokens) == "w i l l _ e x p a n d\nn o w\n"  # the default keeps the spacing


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="abcXYZ.,'!? \n"))
def test_pre_spaced_round_trip_property(text):
    tok = WordTokenizer(join="", space="_")
    assert tok.detokenize(tok.tokenize(_spaced(text))) == (text if text.endswith("\n") else text + "\n")


def test_word_tokenizer_join_and_space_config_and_errors():
    tok = WordTokenizer(join="", space="_")
    assert tok.config() == {"name": "word", "eos": "<eos>", "lower": False, "join": "", "space": "_"}
    assert build_tokenizer(json.loads(json.dumps(tok.config()))) == tok
    assert WordTokenizer().config() == {"name": "word", "eos": "<eos>", "lower": False}  # unchanged default
    with pytest.raises(ValueError, match="space must be a non-empty string"):
        WordTokenizer(space=" ")
    with pytest.raises(ValueError, match="space and eos must differ"):
        WordTokenizer(space="<eos>")
    with pytest.raises(ValueError, match="join must be a string without a line break"):
        WordTokenizer(join="\n")
