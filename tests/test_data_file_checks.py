"""Bad local data files are named by file, line and column before ``datasets`` reads them."""

import pytest

from recurrentkit.data.checks import DataFileError
from recurrentkit.data.classification import load_file_split
from recurrentkit.data.lm import LanguageModelingDataModule


def test_a_non_utf8_text_file_is_named_with_line_and_column(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes("first line\nsecond line caf\xe9\n".encode("latin-1"))
    data = LanguageModelingDataModule(data_files={"train": str(path)}, tokenizer="char")
    with pytest.raises(DataFileError, match=r"train\.txt, line 2, column 16: byte 0xe9 is not valid UTF-8"):
        data.setup("fit")


def test_a_tab_inside_tsv_text_is_named_with_its_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\na fine film\t1\na dull\tslow film\t0\n")
    with pytest.raises(DataFileError, match=r"train\.tsv, line 3: 3 tab-separated fields, but the header has 2"):
        load_file_split(path, "train", "tsv", "sentence", "label")
