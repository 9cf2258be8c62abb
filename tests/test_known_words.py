"""known_word_rate: the share of a sample's words found in a reference text."""

import pytest

from recurrentkit.metrics import known_word_rate, split_words


def test_split_on_whitespace_and_punctuation():
    assert split_words("I'll go,  my lord--now!\nKING_HENRY 4") == ["I", "ll", "go", "my", "lord", "now", "KING",
                                                                     "HENRY", "4"]


def test_rate_counts_every_occurrence_case_sensitively():
    reference = "To be, or not to be: that is the question."
    assert known_word_rate("to be or xyzzy", reference) == pytest.approx(3 / 4)
    assert known_word_rate("be be be qq", reference) == pytest.approx(3 / 4)  # repeats count each time
    assert known_word_rate("TO", reference) == 0.0  # case-sensitive
    assert known_word_rate(["not", "qq zz"], {"not"}) == pytest.approx(1 / 3)  # several samples, a ready word set


def test_no_words_is_an_error():
    with pytest.raises(ValueError, match="no words"):
        known_word_rate(" ,.; \n", "anything")
