"""Language-modelling data: loading through ``datasets``, batch layout, DDP shards, variable BPTT, resume, errors."""

import pathlib

import lightning as L
import pytest
import torch

from recurrentkit.data import LanguageModelingDataModule, load_vocab_and_tokenizer
from recurrentkit.data.lm import BPTTBatches, batchify, bptt_window_lengths
from recurrentkit.data.presets import BUNDLED_CORPUS

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "lm"
TINY = {s: str(FIXTURES / "tiny" / f"{f}.txt") for s, f in
        [("train", "train"), ("validation", "valid"), ("test", "test")]}


def tiny_dm(tmp_path, **kw):
    kw.setdefault("data_files", TINY)
    return LanguageModelingDataModule(cache_dir=str(tmp_path / "hf"), **kw)


# -- pure helpers ---------------------------------------------------------------------------------------------------
def test_batchify_layout_and_remainder():
    stream = torch.arange(23)
    rows = batchify(stream, 4)
    assert rows.shape == (4, 5)
    assert torch.equal(rows[1], torch.arange(5, 10))  # row b = stream[b*N:(b+1)*N]
    assert torch.equal(rows.flatten(), torch.arange(20))  # only the last 23 % 4 = 3 tokens are dropped


def test_batchify_two_ranks_are_disjoint_contiguous_shards():
    stream = torch.arange(103)
    r0, r1 = batchify(stream, 5, rank=0, world_size=2), batchify(stream, 5, rank=1, world_size=2)
    assert r0.shape == r1.shape == (5, 10)
    both = torch.cat([r0.flatten(), r1.flatten()])
    assert torch.equal(both, torch.arange(100))  # no token twice, none lost but the 103 % 10 remainder
    with pytest.raises(ValueError, match="rank"):
        batchify(stream, 5, rank=2, world_size=2)


def test_batchify_too_short_says_how_many_tokens_are_needed():
    with pytest.raises(ValueError, match="at least 16 tokens"):
        batchify(torch.arange(15), 4, world_size=2)


def _served_targets(batches):
    """(row, column) of every target served, checking targets are the next tokens."""
    seen = []
    streams = batches.streams
    for x, y in batches:
        assert x.shape == y.shape and x.shape[0] == streams.shape[0]
        # stream values are their own flat positions, so "next token" is +1 within each row
        assert torch.equal(y, x + 1)
        seen.extend(y.flatten().tolist())
    return seen


@pytest.mark.parametrize("variable", [False, True])
@pytest.mark.parametrize("n, bptt", [(41, 7), (40, 5), (9, 35), (300, 12)])
def test_bptt_batches_targets_are_next_tokens_and_cover_stream_once(n, bptt, variable):
    streams = batchify(torch.arange(n * 3), 3)
    batches = BPTTBatches(streams, bptt, variable=variable, seed=1)
    seen = _served_targets(batches)
    expected = sorted(streams[:, 1:].flatten().tolist())  # every token but the first of each row, once
    assert sorted(seen) == expected
    assert len(list(batches)) == len(batches)


def test_variable_bptt_is_seeded_per_epoch_and_exact():
    lens0 = bptt_window_lengths(10_000, 35, variable=True, seed=3, epoch=0)
    assert lens0 == bptt_window_lengths(10_000, 35, variable=True, seed=3, epoch=0)
    lens1 = bptt_window_lengths(10_000, 35, variable=True, seed=3, epoch=1)
    assert lens1 != lens0 and len(lens1) == len(lens0) == 286
    assert sum(lens0) == sum(lens1) == 10_000 and min(lens0) >= 1
    assert len(set(lens0)) > 10  # lengths really vary
    assert any(t < 35 * 0.75 for t in lens0)  # some half-length windows (p = 0.05 each, 286 draws)
    fixed = bptt_window_lengths(100, 35)
    assert fixed == [35, 35, 30]


def test_bptt_batches_epochs_advance_and_resume_mid_epoch():
    streams = batchify(torch.arange(2 * 200), 2)
    a = BPTTBatches(streams, 9, variable=True, seed=0)
    epoch0 = [x.clone() for x, _ in a]
    epoch1 = [x.clone() for x, _ in a]
    assert len(epoch0) == len(epoch1) == len(a)
    assert [e.shape for e in epoch0] != [e.shape for e in epoch1]  # new draws each epoch

    b = BPTTBatches(streams, 9, variable=True, seed=0)
    it = iter(b)
    for _ in range(5):
        next(it)
    state = b.state_dict()
    assert (state["epoch"], state["batch"]) == (0, 5)
    c = BPTTBatches(streams, 9, variable=True, seed=0)
    c.load_state_dict(state)
    rest = [x for x, _ in c]
    assert len(rest) == len(epoch0) - 5
    assert all(torch.equal(r, e) for r, e in zip(rest, epoch0[5:]))
    assert all(torch.equal(r, e) for r, e in zip([x for x, _ in c], epoch1))  # then epoch 1 as usual

    done = BPTTBatches(streams, 9, variable=True, seed=0)
    done.load_state_dict({**state, "batch": len(done)})  # saved at the end of epoch 0: start epoch 1
    assert all(torch.equal(r, e) for r, e in zip([x for x, _ in done], epoch1))

    with pytest.raises(ValueError, match="cannot resume"):
        BPTTBatches(batchify(torch.arange(400), 4), 9, variable=True).load_state_dict(state)


# -- the data module on local files ---------------------------------------------------------------------------------
def test_word_level_local_files_through_datasets(tmp_path):
    dm = tiny_dm(tmp_path, batch_size=2, bptt=4)
    train_text = pathlib.Path(TINY["train"]).read_text()
    n_lines = len(train_text.splitlines())
    stream = dm.token_stream("train")
    assert stream.numel() == len(train_text.split()) + n_lines  # words + one <eos> per line (the empty one too)
    assert dm.vocab.tokens[0] == "<unk>" and dm.vocab.tokens[1] == "the"  # frequency order
    eos = dm.vocab.token_to_id("<eos>")
    assert int((stream == eos).sum()) == n_lines
    assert "zebra" not in dm.vocab  # vocab from the train split only
    assert dm.vocab.unk_id in dm.token_stream("test").tolist()
    assert dm.decode(stream) == "".join(" ".join(line.split()) + "\n" for line in train_text.splitlines())
    assert dm.char_level is False and dm.vocab_size == len(dm.vocab)


def test_char_level_keeps_newlines_exactly(tmp_path):
    path = FIXTURES / "verse.txt"
    dm = tiny_dm(tmp_path, data_files=str(path), tokenizer="char", batch_size=2, bptt=5)
    assert dm.char_level
    assert dm.decode(dm.token_stream("train")) == path.read_text()  # every newline is a character
    assert dm.val_dataloader() == [] and dm.test_dataloader() == []  # one file, no split_fractions


def test_bpe_level_round_trips_text(tmp_path):
    path = FIXTURES / "verse.txt"
    dm = tiny_dm(tmp_path, data_files=str(path), tokenizer="bpe",
                 tokenizer_kwargs={"vocab_size": 280, "min_frequency": 1}, batch_size=2, bptt=5)
    stream = dm.token_stream("train")
    assert stream.numel() < len(path.read_text())
    assert dm.decode(stream) == path.read_text()
    assert "model" in dm.state_dict()["tokenizer"]


def test_split_fractions_cut_by_characters(tmp_path):
    path = FIXTURES / "verse.txt"
    text = path.read_text()
    dm = tiny_dm(tmp_path, data_files=str(path), tokenizer="char", split_fractions=(0.8, 0.1, 0.1), batch_size=1)
    sizes = [dm.token_stream(s).numel() for s in ("train", "validation", "test")]
    cut = int(0.8 * len(text))
    assert sizes == [cut, int(0.9 * len(text)) - cut, len(text) - int(0.9 * len(text))]
    assert dm.decode(dm.token_stream("train")) == text[:cut]
    assert "<unk>" in dm.decode(dm.token_stream("test"))  # some test characters never occur in the train part


def test_datamodule_loaders_cover_train_split(tmp_path):
    dm = tiny_dm(tmp_path, batch_size=3, bptt=4, eval_batch_size=1)
    dm.setup("fit")
    stream = dm.token_stream("train")
    rows = batchify(stream, 3)
    served = torch.cat([y for _, y in dm.train_dataloader()], dim=1)
    assert torch.equal(served, rows[:, 1:])
    val = dm.val_dataloader()
    assert val.batch_size == 1 and val.streams.numel() == dm.token_stream("validation").numel()


def test_two_simulated_ranks_share_the_train_stream_without_overlap(tmp_path):
    from types import SimpleNamespace

    served = []
    for rank in (0, 1):
        dm = tiny_dm(tmp_path, batch_size=2, bptt=3)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)  # what a DDP Trainer exposes
        dm.setup("fit")
        loader = dm.train_dataloader()
        first = torch.cat([x[:, :1] for x, _ in loader][:1], dim=1)  # first input token of each row
        rows = torch.cat([first] + [y for _, y in loader], dim=1)  # rebuild each row from what was served
        served.append(rows.flatten())
    stream = dm.token_stream("train")
    usable = stream.numel() - stream.numel() % 4
    assert torch.equal(torch.cat(served), stream[:usable])  # rank 0 then rank 1: contiguous, disjoint, complete


def test_state_dict_checks_tokenizer_and_vocab(tmp_path):
    dm = tiny_dm(tmp_path)
    state = dm.state_dict()
    fresh = tiny_dm(tmp_path)
    fresh.load_state_dict(state)  # same data: accepted
    assert fresh.vocab == dm.vocab

    lazy = tiny_dm(tmp_path, data_files={"train": str(FIXTURES / "verse.txt")})
    lazy.load_state_dict(state)  # nothing built yet: the checkpoint's vocab is adopted
    assert lazy.vocab == dm.vocab

    other = tiny_dm(tmp_path, min_freq=2)
    other.vocab  # noqa: B018 - build it
    with pytest.raises(ValueError, match="vocab mismatch"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="tokenizer mismatch"):
        tiny_dm(tmp_path, tokenizer="char").load_state_dict(state)


# -- bad input ------------------------------------------------------------------------------------------------------
def test_missing_file_names_it(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        tiny_dm(tmp_path, data_files={"train": TINY["train"], "validation": missing}).vocab  # noqa: B018


@pytest.mark.parametrize("name", ["empty.txt", "blank.txt"])
def test_empty_corpus(tmp_path, name):
    with pytest.raises(ValueError, match="empty corpus"):
        tiny_dm(tmp_path, data_files=str(FIXTURES / name)).vocab  # noqa: B018


def test_corpus_shorter_than_one_batch(tmp_path):
    dm = tiny_dm(tmp_path, batch_size=64)
    with pytest.raises(ValueError, match=r"train split of .*train.txt.*at least 128 tokens"):
        dm.setup("fit")


def test_bad_arguments():
    with pytest.raises(ValueError, match="data source"):
        LanguageModelingDataModule()
    with pytest.raises(ValueError, match="not both"):
        LanguageModelingDataModule(preset="ptb", data_files="x.txt")
    with pytest.raises(ValueError, match="unknown preset 'pennbank'"):
        LanguageModelingDataModule(preset="pennbank")
    with pytest.raises(ValueError, match="unknown split 'training'"):
        LanguageModelingDataModule(data_files={"training": TINY["train"]}).vocab  # noqa: B018


def test_preset_without_local_files_offline_names_the_paths(tmp_path):
    dm = LanguageModelingDataModule(preset="ptb", data_dir=str(tmp_path), cache_dir=str(tmp_path / "hf"))
    with pytest.raises(FileNotFoundError, match=r"ptb\.train\.txt.*ptb_text_only"):
        dm.vocab  # noqa: B018


# -- presets --------------------------------------------------------------------------------------------------------
def test_preset_data_dir_resolution(tmp_path, monkeypatch):
    from recurrentkit.data.presets import resolve_preset

    root = tmp_path / "shared" / "data" / "ptb"
    root.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (root / f"ptb.{split}.txt").write_text(" a b \n")
    work = tmp_path / "main"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("RK_DATA_DIR", raising=False)
    _, files = resolve_preset("ptb")  # ../shared/data relative to the working directory
    assert files == {s: str(root / f"ptb.{f}.txt") for s, f in [("train", "train"), ("validation", "valid"),
                                                                  ("test", "test")]}
    monkeypatch.setenv("RK_DATA_DIR", str(tmp_path / "elsewhere"))
    assert resolve_preset("ptb") == (resolve_preset("ptb")[0], None)  # RK_DATA_DIR wins, and has no files
    assert resolve_preset("ptb", data_dir=tmp_path / "shared" / "data")[1] == files  # data_dir wins over both


def test_bundled_tinyshakespeare_preset(tmp_path):
    dm = LanguageModelingDataModule(preset="tinyshakespeare-bundled", tokenizer="char", cache_dir=str(tmp_path))
    sizes = [dm.token_stream(s).numel() for s in ("train", "validation", "test")]
    n = BUNDLED_CORPUS.stat().st_size
    assert sum(sizes) == n == 1_115_394
    assert sizes == [int(0.9 * n), int(0.95 * n) - int(0.9 * n), n - int(0.95 * n)]
    assert dm.vocab_size == 65 + 1  # 65 characters + <unk>
    assert dm.decode(dm.token_stream("train")[:15]) == "First Citizen:\n"


def test_local_tinyshakespeare_preset_equals_bundled_copy(shared_data, tmp_path):
    local = LanguageModelingDataModule(preset="tinyshakespeare", data_dir=str(shared_data), tokenizer="char",
                                       cache_dir=str(tmp_path))
    bundled = LanguageModelingDataModule(preset="tinyshakespeare-bundled", tokenizer="char", cache_dir=str(tmp_path))
    assert local.vocab == bundled.vocab
    assert torch.equal(local.token_stream("test"), bundled.token_stream("test"))


def test_ptb_preset_counts(shared_data, tmp_path):
    dm = LanguageModelingDataModule(preset="ptb", data_dir=str(shared_data), cache_dir=str(tmp_path))
    assert [dm.token_stream(s).numel() for s in ("train", "validation", "test")] == [929_589, 73_760, 82_430]
    assert dm.vocab_size == 10_000  # the file's own <unk> is our special; <eos> included
    assert dm.vocab.counts[dm.vocab.unk_id] > 0
    assert dm.vocab.counts[1:] == sorted(dm.vocab.counts[1:], reverse=True)


@pytest.mark.slow
def test_wikitext2_preset_counts(shared_data, tmp_path):
    dm = LanguageModelingDataModule(preset="wikitext2", data_dir=str(shared_data), cache_dir=str(tmp_path))
    assert [dm.token_stream(s).numel() for s in ("train", "validation", "test")] == [2_088_628, 217_646, 245_569]
    assert dm.vocab_size == 33_278


# -- resume with a real Trainer ------------------------------------------------------------------------------------
class _Recorder(L.LightningModule):
    def __init__(self, vocab_size):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab_size, 4)
        self.out = torch.nn.Linear(4, vocab_size)
        self.seen = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen.append((self.current_epoch, x.tolist()))
        return torch.nn.functional.cross_entropy(self.out(self.emb(x)).flatten(0, 1), y.flatten())

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_checkpoint_resumes_mid_epoch_at_same_position(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    kw = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
              use_distributed_sampler=False, max_epochs=2, default_root_dir=tmp_path)
    dm = tiny_dm(tmp_path, batch_size=2, bptt=3, variable_bptt=True)
    model = _Recorder(dm.vocab_size)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=3, save_top_k=-1, filename="{step}")
    L.Trainer(callbacks=[ckpt], **kw).fit(model, dm)
    per_epoch = len(dm.train_dataloader())
    assert per_epoch == 8 and len(model.seen) == 2 * per_epoch
    assert [s[1] for s in model.seen[:per_epoch]] != [s[1] for s in model.seen[per_epoch:]]

    path = tmp_path / "ck" / "step=9.ckpt"  # 1 batch into epoch 1
    vocab, tokenizer = load_vocab_and_tokenizer(path)
    assert vocab == dm.vocab and tokenizer == dm.tokenizer
    dm2 = tiny_dm(tmp_path, batch_size=2, bptt=3, variable_bptt=True)
    model2 = _Recorder(dm2.vocab_size)
    L.Trainer(**kw).fit(model2, dm2, ckpt_path=path)
    assert model2.seen == model.seen[9:]


def test_pre_spaced_character_file_decodes_to_text(tmp_path):
    """A file of space-separated symbols with ``_`` for a space trains per character and decodes as plain text."""
    text = "will expand the\nnew rule now\n"
    path = tmp_path / "spaced.txt"
    path.write_text("".join(" ".join("_" if c == " " else c for c in line) + "\n" for line in text.splitlines()))
    dm = tiny_dm(tmp_path, data_files={"train": str(path)}, tokenizer="word",
                 tokenizer_kwargs={"join": "", "space": "_"})
    assert set(dm.vocab.tokens) == set("willexpandthenewrulenow") | {"_", "<eos>", "<unk>"}
    assert dm.decode(dm.token_stream("train")) == text
    assert dm.tokenizer.config()["space"] == "_"  # saved with the checkpoint's data-module state
    assert dm.char_level  # one token per symbol: the task reports bits per character
    assert not tiny_dm(tmp_path).char_level and tiny_dm(tmp_path, tokenizer="char").char_level
