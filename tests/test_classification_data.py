"""ClassificationDataModule (files, presets, hub-style folders, errors) and the length-bucketing sampler."""

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch

from recurrentkit.data.bucketing import BucketBatchSampler
from recurrentkit.data.classification import ClassificationDataModule
from recurrentkit.data.presets import default_data_dir
from recurrentkit.data.resumable import ResumableBatches

FIXTURES = Path(__file__).parent / "fixtures" / "cls"



def _rows(path):
    lines = Path(path).read_text().splitlines()[1:]
    return [(line.rsplit("\t", 1)[0], int(line.rsplit("\t", 1)[1])) for line in lines]


def test_glue_tsv_preset_batches_and_vocab_from_train_only():
    dm = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), batch_size=8)
    assert dm.vocab is None  # nothing is read before it is needed
    assert dm.num_classes == 2 and dm.label_names == ["negative", "positive"]
    train = _rows(FIXTURES / "sst2/glue/train.tsv")
    train_words = {w for text, _ in train for w in text.split()}
    assert dm.vocab_size == len(train_words) + 2
    assert dm.vocab.tokens[:2] == ["<pad>", "<unk>"] and dm.pad_id == 0
    dm.setup("fit")
    seen = []
    for batch in dm.train_dataloader():
        ids, lengths, labels, index = batch["input_ids"], batch["lengths"], batch["labels"], batch["index"]
        assert ids.shape == (len(labels), int(lengths.max()))  # batch-first, padded to the longest
        for row, i in enumerate(index.tolist()):
            text, label = train[i]
            assert lengths[row] == len(text.split())
            assert dm.vocab.decode(ids[row, :lengths[row]]) == text.split()
            assert (ids[row, lengths[row]:] == dm.pad_id).all()
            assert labels[row] == label
        seen += index.tolist()
    assert sorted(seen) == list(range(len(train)))
    # a word seen only in dev maps to <unk>
    dev_words = {w for text, _ in _rows(FIXTURES / "sst2/glue/dev.tsv") for w in text.split()}
    dev_ids = torch.cat([b["input_ids"].flatten() for b in dm.val_dataloader()])
    assert (dm.vocab.unk_id in dev_ids.tolist()) == bool(dev_words - train_words)
    assert not dm.has_split("test")  # GLUE test has no labels
    with pytest.raises(ValueError, match=r"no test split is configured: set test_file \(preset 'sst2'.*no labels"):
        dm.test_dataloader()


def test_label_space_preset_has_labelled_test():
    dm = ClassificationDataModule(preset="sst2-sentence", data_dir=str(FIXTURES), batch_size=4)
    dm.setup("test")
    lines = (FIXTURES / "sst2/sentence_binary/stsa.binary.test").read_text().splitlines()
    labels = torch.cat([b["labels"] for b in dm.test_dataloader()])
    index = torch.cat([b["index"] for b in dm.test_dataloader()])
    expected = torch.tensor([int(line.split(" ", 1)[0]) for line in lines])
    assert torch.equal(labels, expected[index])
    assert dm.encoded("test").texts[0] == lines[0].split(" ", 1)[1]


@pytest.mark.parametrize("preset", ["sst2", "sst2-sentence"])
def test_state_dict_round_trip_keeps_encoding(preset):
    """What Lightning does when it restores a checkpoint: the new data module adopts the saved vocab and labels."""
    trained = ClassificationDataModule(preset=preset, data_dir=str(FIXTURES))
    state = trained.state_dict()
    fresh = ClassificationDataModule(preset=preset, data_dir=str(FIXTURES), min_freq=2)  # a different vocab
    fresh.load_state_dict(state)
    assert fresh.vocab == trained.vocab and fresh.label_names == trained.label_names
    assert fresh.encoded("val").ids == trained.encoded("val").ids
    assert fresh.encoded("val").labels == trained.encoded("val").labels


def test_label_space_through_csv_with_a_separator(tmp_path):
    """The same "label sentence" lines read as a headerless two-column table (the other way the format can be
    loaded); both give the same examples."""
    src = FIXTURES / "sst2/sentence_binary/stsa.binary.train"
    table = tmp_path / "train.tsv"
    table.write_text("label\tsentence\n" + "".join(line.replace(" ", "\t", 1) + "\n"
                                                   for line in src.read_text().splitlines()))
    by_text = ClassificationDataModule(train_file=str(src), format="label-space")
    by_csv = ClassificationDataModule(train_file=str(table), format="tsv")
    by_text.prepare_vocab()
    by_csv.prepare_vocab()
    assert by_text.vocab == by_csv.vocab and by_text.label_names == by_csv.label_names == ["0", "1"]
    assert by_text.encoded("train").ids == by_csv.encoded("train").ids
    assert by_text.encoded("train").labels == by_csv.encoded("train").labels


def test_string_labels_from_data_json_lines_and_truncation():
    dm = ClassificationDataModule(train_file=str(FIXTURES / "train.jsonl"), text_column="text",
                                  label_column="sentiment", max_length=3)
    assert dm.label_names == ["neg", "pos"]
    rows = [json.loads(line) for line in (FIXTURES / "train.jsonl").read_text().splitlines()]
    data = dm.encoded("train")
    assert data.labels == [["neg", "pos"].index(r["sentiment"]) for r in rows]
    assert max(data.lengths) == 3 and all(n == min(3, len(r["text"].split())) for n, r in zip(data.lengths, rows))


def test_dataset_folder_through_load_dataset_with_named_splits():
    """A dataset name/folder goes through ``load_dataset(dataset)`` (a hub id works the same way online)."""
    dm = ClassificationDataModule(dataset=str(FIXTURES / "csv_dataset"), test_split=None, batch_size=4)
    dm.setup("fit")
    assert dm.label_names == ["0", "1"]
    assert len(dm.encoded("train")) == 12 and len(dm.encoded("val")) == 6


def test_data_dir_default_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RK_DATA_DIR", str(FIXTURES))
    assert default_data_dir() == FIXTURES
    assert ClassificationDataModule(preset="sst2").vocab_size > 2
    monkeypatch.delenv("RK_DATA_DIR")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert default_data_dir() is None  # no ../shared/data here: no data directory
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert default_data_dir() == tmp_path / "shared" / "data"


def test_predict_file_of_plain_lines():
    dm = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), predict_file=str(FIXTURES / "predict.txt"))
    texts = (FIXTURES / "predict.txt").read_text().splitlines()
    assert dm.predict_texts == texts
    batch = next(iter(dm.predict_dataloader()))
    assert "labels" not in batch and batch["index"].tolist() == list(range(len(texts)))


@pytest.mark.parametrize("name, message", [
    ("missing_label.tsv", r"missing_label\.tsv: no label column 'label'"),
    ("bad_label.tsv", r"bad_label\.tsv, row 3 \(line 4\): label 7 is not in the label set"),
    ("empty_text.tsv", r"empty_text\.tsv, row 2 \(line 3\): empty text"),
    ("empty.tsv", r"empty\.tsv: the train split is empty"),
])
def test_bad_training_files_name_file_and_row(name, message):
    dm = ClassificationDataModule(train_file=str(FIXTURES / name), label_names=["negative", "positive"])
    with pytest.raises(ValueError, match=message):
        dm.prepare_vocab()


def test_bad_validation_file_names_file_and_row():
    dm = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), val_file=str(FIXTURES / "bad_label.tsv"),
                                  train_file="sst2/glue/train.tsv")
    with pytest.raises(ValueError, match=r"bad_label\.tsv, row 3 \(line 4\): label 7"):
        dm.setup("fit")
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        ClassificationDataModule(train_file=str(FIXTURES / "nope.tsv")).prepare_vocab()
    with pytest.raises(ValueError, match="unknown preset"):
        ClassificationDataModule(preset="sst5")


def test_sentence_level_sst2_counts(shared_data):
    dm = ClassificationDataModule(preset="sst2-sentence", data_dir=str(shared_data))
    dm.setup()
    assert [len(dm.encoded(s)) for s in ("train", "val", "test")] == [6920, 872, 1821]
    assert Counter(dm.encoded("test").labels).keys() == {0, 1}


# --- bucketing -----------------------------------------------------------------------------------------------------
LENGTHS = [int(x) for x in torch.randint(1, 60, (1003,), generator=torch.Generator().manual_seed(1))]


def test_bucketing_serves_every_example_once_per_epoch():
    sampler = BucketBatchSampler(LENGTHS, batch_size=16, pool_batches=8, seed=3)
    loader = torch.utils.data.DataLoader(range(len(LENGTHS)), batch_sampler=sampler)
    orders = []
    for epoch in range(3):
        _set_sampler_epoch(loader, epoch)  # what Lightning calls at the start of each epoch
        assert sampler.epoch == epoch
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(LENGTHS)))
        orders.append(flat)
    assert orders[0] != orders[1] != orders[2]  # reshuffled each epoch
    # batches hold similar lengths: far less spread than random batches
    spread = sum(max(LENGTHS[i] for i in b) - min(LENGTHS[i] for i in b) for b in batches) / len(batches)
    perm = torch.randperm(len(LENGTHS)).tolist()
    random_spread = sum(max(LENGTHS[i] for i in perm[s:s + 16]) - min(LENGTHS[i] for i in perm[s:s + 16])
                        for s in range(0, len(perm), 16)) / len(range(0, len(perm), 16))
    assert spread < random_spread / 4


def test_resumable_batches_continue_mid_epoch_where_the_state_was_taken():
    def loader():
        return ResumableBatches(range(len(LENGTHS)), BucketBatchSampler(LENGTHS, 16, pool_batches=8, seed=3))

    first = loader()
    _set_sampler_epoch(first, 2)  # Lightning reaches the sampler through batch_sampler.sampler
    whole = [b.tolist() for b in first]
    assert len(whole) == len(first) and first.state_dict()["batch"] == len(first)
    stopped = loader()
    _set_sampler_epoch(stopped, 2)
    served = iter(stopped)
    head = [next(served).tolist() for _ in range(5)]
    state = stopped.state_dict()
    assert state["epoch"] == 2 and state["batch"] == 5 and head == whole[:5]
    resumed = loader()
    resumed.load_state_dict(state)
    stream = iter(resumed)  # Lightning calls iter() before set_epoch: the position is taken at the first next()
    _set_sampler_epoch(resumed, 2)
    assert [b.tolist() for b in stream] == whole[5:]
    _set_sampler_epoch(resumed, 3)  # the next epoch starts at its beginning, in its own order
    assert len(list(resumed)) == len(resumed) and resumed.state_dict()["epoch"] == 3
    other = ResumableBatches(range(50), BucketBatchSampler(LENGTHS[:50], 16, seed=3))
    with pytest.raises(ValueError, match="cannot resume the training batches"):
        other.load_state_dict(state)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("n", [1003, 37])
def test_bucketing_two_ranks_are_disjoint_and_even(shuffle, n):
    lengths = LENGTHS[:n]
    ranks = [BucketBatchSampler(lengths, 16, shuffle=shuffle, num_replicas=2, rank=r, seed=5) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(1)
    parts = [list(s) for s in ranks]
    assert len(parts[0]) == len(parts[1]) == len(ranks[0]) == len(ranks[1])  # DDP needs equal batch counts
    seen = [{i for b in p for i in b} for p in parts]
    assert not seen[0] & seen[1]
    assert sorted(i for p in parts for b in p for i in b) == list(range(n))


def test_bucketing_eval_order_sorted_and_errors():
    batches = list(BucketBatchSampler(LENGTHS[:50], 8, shuffle=False))
    flat = [LENGTHS[i] for b in batches for i in b]
    assert flat == sorted(flat)
    with pytest.raises(ValueError, match="no examples"):
        BucketBatchSampler([], 4)
    with pytest.raises(ValueError, match="rank must be"):
        BucketBatchSampler(LENGTHS, 4, num_replicas=2, rank=2)
    with pytest.raises(TypeError, match="use_distributed_sampler=False"):  # what Lightning's re-wrapping would do
        BucketBatchSampler(torch.utils.data.SequentialSampler(range(5)), 4)


# -- a validation split carved from the training file -------------------------------------------------------------
def test_val_fraction_carves_a_stratified_seeded_validation_split():
    train_file = str(FIXTURES / "sst2/glue/train.tsv")
    rows = _rows(train_file)  # 40 rows, 20 per label
    dm = ClassificationDataModule(train_file=train_file, val_fraction=0.25, seed=3, batch_size=8)
    dm.setup("fit")
    train, val = dm.raw_split("train"), dm.raw_split("val")
    assert len(val.texts) == 10 and len(train.texts) == 30
    assert Counter(val.labels) == Counter({0: 5, 1: 5})  # stratified: each label keeps its share
    assert sorted(train.rows + val.rows) == list(range(40))  # disjoint, complete
    assert [rows[i][0] for i in val.rows] == val.texts
    assert set(dm.vocab.tokens[2:]) == {w for t in train.texts for w in t.split()}  # vocab from the train part only
    assert len(dm.val_dataloader().dataset) == 10
    again = ClassificationDataModule(train_file=train_file, val_fraction=0.25, seed=3)
    assert again.raw_split("val").rows == val.rows  # same seed: same split
    other = ClassificationDataModule(train_file=train_file, val_fraction=0.25, seed=4)
    assert other.raw_split("val").rows != val.rows


def test_holdout_rows_keeps_label_shares_and_a_rare_label_in_train():
    from recurrentkit.data.classification import holdout_rows

    held = holdout_rows(["a"] * 30 + ["b"] * 10, 0.2, seed=0)
    assert len(held) == 8 and sum(i < 30 for i in held) == 6
    held = holdout_rows(["a"] * 9 + ["b"], 0.15, seed=0)  # round(1.5) = 2 rows; "b" has one example: it stays
    assert len(held) == 2 and 9 not in held
    assert holdout_rows(list("abab" * 5), 0.5, seed=1) == holdout_rows(list("abab" * 5), 0.5, seed=1)


def test_val_fraction_errors_name_the_problem(tmp_path):
    train_file = str(FIXTURES / "sst2/glue/train.tsv")
    with pytest.raises(ValueError, match="either a validation file or val_fraction, not both: val_file="):
        ClassificationDataModule(train_file=train_file, val_file=str(FIXTURES / "sst2/glue/dev.tsv"),
                                 val_fraction=0.1)
    with pytest.raises(ValueError, match="preset 'sst2' has its validation file"):
        ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), val_fraction=0.1)
    with pytest.raises(ValueError, match="set val_split=None"):
        ClassificationDataModule(dataset=str(FIXTURES / "csv_dataset"), val_fraction=0.1)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            ClassificationDataModule(train_file=train_file, val_fraction=bad)
    with pytest.raises(ValueError, match="0.01 of 40 training examples leaves an empty validation split"):
        ClassificationDataModule(train_file=train_file, val_fraction=0.01).setup("fit")
    with pytest.raises(ValueError, match="0.99 of 40 training examples leaves an empty training split"):
        ClassificationDataModule(train_file=train_file, val_fraction=0.99).setup("fit")


def test_val_fraction_errors_still_name_the_file_line(tmp_path):
    path = tmp_path / "train.tsv"
    good = [f"word{i} text\t{i % 2}" for i in range(10)]
    path.write_text("sentence\tlabel\n" + "\n".join(good + ["odd one\t7"]) + "\n")
    dm = ClassificationDataModule(train_file=str(path), val_fraction=0.3, label_names=["0", "1"])
    with pytest.raises(ValueError, match=r"train.tsv, row 11 \(line 12\): label 7 is not in the label set"):
        dm.setup("fit")  # wherever the bad row landed, the message points at its line in the file
