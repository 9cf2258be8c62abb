"""TaggingDataModule: CoNLL-U / CoNLL / datasets readers, vocabularies, batches, errors, prediction files."""

from pathlib import Path

import pytest
import torch

from recurrentkit.data.tagging import TaggingDataModule, from_dataset, read_conll, read_conllu

FIXTURES = Path(__file__).parent / "fixtures" / "tagging"
FAKE_EWT = Path(__file__).parent / "fixtures" / "fake_data" / "ud-ewt"


def test_conllu_skips_comments_multiword_tokens_and_empty_nodes():
    split = read_conllu(FIXTURES / "edge.conllu")
    assert split.tokens == [["I", "do", "n't", "know", "."], ["Go", "home"]]
    assert split.tags == [["PRON", "AUX", "PART", "VERB", "PUNCT"], ["VERB", "ADV"]]
    assert split.lines == [[4, 6, 7, 8, 9], [13, 15]]  # 1-based file lines of the kept tokens
    xpos = read_conllu(FIXTURES / "edge.conllu", column="xpos")
    assert xpos.tags == [["PRP", "VBP", "RB", "VB", "."], ["VB", "RB"]]


def test_conllu_bad_line_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.conllu"
    bad.write_text("# c\n1\tThe\tthe\tDET\tDT\t_\t0\troot\t_\t_\n2\tcat\tcat\tNOUN\n")
    with pytest.raises(ValueError, match=rf"{bad}:3: .*10 tab-separated columns, this one has 4"):
        read_conllu(bad)
    with pytest.raises(ValueError, match="column must be"):
        read_conllu(bad, column="lemma")


def test_unknown_dev_tag_names_file_and_line():
    dm = TaggingDataModule(train_file=str(FAKE_EWT / "en_ewt-ud-train.conllu"),
                           val_file=str(FIXTURES / "unknown_tag.conllu"))
    with pytest.raises(ValueError, match=r"unknown_tag\.conllu:6: tag 'INTJ' is not in the tag set"):
        dm.setup("fit")


def test_conll_columns_with_docstart():
    split = read_conll(FIXTURES / "ner.conll")
    assert split.tokens[0] == ["John", "Smith", "lives", "in", "New", "York", "."]
    assert split.tags[0] == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    assert split.tags[1] == ["B-PER", "O", "B-LOC"]
    assert read_conll(FIXTURES / "ner.conll", tag_column=2).tags[1] == ["B-NP", "B-VP", "B-NP"]
    assert split.where(1, 2) == f"{FIXTURES / 'ner.conll'}:13"


def test_jsonl_through_datasets_and_classlabel_ids():
    dm = TaggingDataModule(train_file=str(FIXTURES / "ner.jsonl"), characters=False)
    assert dm.label_names == ["B-LOC", "B-PER", "I-PER", "O"]
    batch = next(iter(dm.train_dataloader()))
    assert "chars" not in batch and dm.char_vocab_size == 0
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features({"tokens": Sequence(Value("string")),
                         "ner_tags": Sequence(ClassLabel(names=["O", "B-PER", "I-PER"]))})
    ds = Dataset.from_dict({"tokens": [["Ann", "Lee", "ran"]], "ner_tags": [[1, 2, 0]]}, features=features)
    split = from_dataset(ds, "mem", "tokens", "ner_tags")
    assert split.tags == [["B-PER", "I-PER", "O"]]
    assert split.where(0, 1) == "mem, row 1, token 2"
    with pytest.raises(ValueError, match="no tag column 'tags'"):
        from_dataset(ds, "mem", "tokens", "tags")


def test_vocabularies_come_from_train_and_batches_are_padded():
    dm = TaggingDataModule(preset="ud-ewt", data_dir=str(FAKE_EWT.parent), lowercase=True, batch_size=4,
                           max_word_length=4)
    dm.setup("fit")
    assert dm.vocab.tokens[:2] == ["<pad>", "<unk>"]
    assert "the" in dm.vocab and "The" not in dm.vocab  # lowercased words
    assert "T" in dm.char_vocab  # characters keep their case
    assert dm.num_classes == len(dm.label_names) == 11
    batch = next(iter(dm.val_dataloader()))
    tokens, lengths, labels, chars = batch["input_ids"], batch["lengths"], batch["labels"], batch["chars"]
    assert chars.shape[:2] == tokens.shape and chars.shape[2] <= 4
    mask = torch.arange(tokens.shape[1]) < lengths.unsqueeze(1)
    assert (tokens[~mask] == 0).all() and (labels[~mask] == -100).all() and (chars[~mask] == 0).all()
    assert (labels[mask] >= 0).all() and (tokens[mask] > 0).all()
    ids, _ = dm.encode_tokens([["the", "zebra"]])
    assert ids == [[dm.vocab.token_to_id("the"), dm.vocab.unk_id]]


def test_prediction_files(tmp_path):
    """Predicting the gold tags writes back a byte-identical CoNLL-U file; other input gives token<TAB>tag."""
    source = tmp_path / "in.conllu"
    source.write_text((FIXTURES / "edge.conllu").read_text())
    dm = TaggingDataModule(train_file=str(FIXTURES / "edge.conllu"), predict_file=str(source))
    dm.setup("predict")
    gold = read_conllu(source)

    def batch(rows):
        tags = torch.zeros(len(rows), 5, dtype=torch.long)
        for r, i in enumerate(rows):
            tags[r, :len(gold.tags[i])] = torch.tensor([dm.label_names.index(t) for t in gold.tags[i]])
        return {"tags": tags, "lengths": torch.tensor([len(gold.tags[i]) for i in rows]), "index": torch.tensor(rows)}

    written = dm.write_predictions([batch([1]), batch([0])])
    assert written == str(tmp_path / "in.predictions.conllu")
    assert Path(written).read_text() == source.read_text()
    with pytest.raises(ValueError, match="no predictions for 1 of 2"):
        dm.write_predictions([batch([0])])

    text = tmp_path / "plain.txt"
    text.write_text("I know\n\nGo home .\n")
    dm2 = TaggingDataModule(train_file=str(FIXTURES / "edge.conllu"), predict_file=str(text))
    tags = torch.tensor([[3, 4, 0], [4, 0, 1]])
    out = dm2.write_predictions([{"tags": tags, "lengths": torch.tensor([2, 3]), "index": torch.tensor([0, 1])}])
    names = dm2.label_names
    assert Path(out).read_text() == (f"I\t{names[3]}\nknow\t{names[4]}\n\n"
                                     f"Go\t{names[4]}\nhome\t{names[0]}\n.\t{names[1]}\n\n")


def test_argument_errors():
    with pytest.raises(ValueError, match="give a preset"):
        TaggingDataModule()
    with pytest.raises(ValueError, match="unknown preset"):
        TaggingDataModule(preset="nope")
    with pytest.raises(ValueError, match="preset 'ptb' is a language-modelling data set"):
        TaggingDataModule(preset="ptb")
    with pytest.raises(ValueError, match="unknown format"):
        TaggingDataModule(train_file="x", format="xml")
    with pytest.raises(FileNotFoundError, match="train file not found"):
        TaggingDataModule(train_file="/nonexistent/train.conllu").setup("fit")

