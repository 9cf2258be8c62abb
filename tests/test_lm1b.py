"""One Billion Word data module and recipes, on a tiny fake directory in the release layout (tests/fixtures/lm1b)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from recurrentkit import cli
from recurrentkit.data.lm1b import EOS, HELDOUT_DIR, SPECIALS, TRAIN_DIR, UNK, OneBillionWordDataModule, lm1b_files

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fixtures" / "lm1b"
RECIPES = sorted((ROOT / "recipes" / "lm1b").glob("*.yaml"))
TRAIN_FILES = sorted((FAKE / TRAIN_DIR).glob("news.en-*-of-00100"))


def _words(paths):
    return [w for p in paths for line in p.read_text().splitlines() for w in line.split() + [EOS]]


def _dm(tmp_path, **kw):
    kw.setdefault("batch_size", 4)
    kw.setdefault("bptt", 5)
    return OneBillionWordDataModule(str(FAKE), cache_dir=str(tmp_path / "cache"), **kw)


def test_release_layout_loads_and_splits(tmp_path):
    dm = _dm(tmp_path)
    files = dm.files
    assert [p.name for p in files["train"]] == [f"news.en-0000{i}-of-00100" for i in (1, 2, 3)]
    assert files["test"] == [FAKE / HELDOUT_DIR / "news.en.heldout-00000-of-00050"]
    assert files["validation"] == [FAKE / HELDOUT_DIR / "news.en.heldout-00001-of-00050"]
    vocab = dm.vocab
    for split, paths in files.items():
        expected = vocab.encode(_words(paths))  # every line: its words then </S>
        assert dm.token_stream(split).long().tolist() == expected
    assert dm.token_stream("train").dtype == torch.uint32


def test_vocab_count_threshold(tmp_path):
    counts = Counter(_words(TRAIN_FILES))
    for min_count in (1, 3):
        vocab = _dm(tmp_path, min_count=min_count).vocab
        kept = {w for w, c in counts.items() if c >= min_count} - set(SPECIALS)
        assert vocab.tokens[:3] == list(SPECIALS)
        assert set(vocab.tokens[3:]) == kept
        assert len(vocab) == len(kept) + 3
        body = vocab.counts[3:]
        assert body == sorted(body, reverse=True)  # ids by decreasing frequency after the specials
    vocab3 = _dm(tmp_path, min_count=3).vocab
    rare = [w for w, c in counts.items() if c < 3]
    assert rare and all(vocab3.token_to_id(w) == vocab3.token_to_id(UNK) for w in rare)
    assert vocab3.counts[vocab3.token_to_id(UNK)] == sum(counts[w] for w in rare)
    assert _dm(tmp_path, max_vocab_size=10).vocab_size == 10


def test_memmap_written_once_and_reused(tmp_path, monkeypatch):
    dm = _dm(tmp_path)
    size = dm.vocab_size
    paths = dm.cache_paths()
    mtimes = {k: paths[k].stat().st_mtime_ns for k in ("vocab", "meta", "train", "test", "validation")}
    assert paths["train"].stat().st_size == 4 * len(_words(TRAIN_FILES))  # uint32 on disk
    again = _dm(tmp_path)
    monkeypatch.setattr(OneBillionWordDataModule, "_encode", lambda *a: pytest.fail("re-encoded a cached corpus"))
    monkeypatch.setattr(OneBillionWordDataModule, "_count_vocab", lambda *a: pytest.fail("re-counted"))
    assert again.vocab_size == size
    stream = again.token_stream("train")
    assert {k: paths[k].stat().st_mtime_ns for k in mtimes} == mtimes
    mapped = again._memmaps["train"]
    assert isinstance(mapped, np.memmap) and Path(mapped.filename) == paths["train"].resolve()
    assert stream.data_ptr() == mapped.ctypes.data  # the tensor is a view of the map, not a copy


def test_ranks_read_disjoint_contiguous_shards(tmp_path):
    class FakeTrainer:
        world_size = 2

        def __init__(self, rank):
            self.global_rank = rank

    stream = _dm(tmp_path).token_stream("train").long()
    B, T = 3, 4
    per_row = stream.numel() // (2 * B)
    seen = []
    for rank in (0, 1):
        dm = _dm(tmp_path, batch_size=B, bptt=T)
        dm.trainer = FakeTrainer(rank)
        dm.setup("fit")
        loader = dm.train_dataloader()
        xs, ys = zip(*loader)
        rows_x = torch.cat(xs, dim=1)
        rows_y = torch.cat(ys, dim=1)
        assert torch.equal(rows_y[:, :-1], rows_x[:, 1:])  # targets are the next tokens
        shard = stream[rank * B * per_row:(rank + 1) * B * per_row].view(B, per_row)
        assert torch.equal(rows_x, shard[:, :-1]) and torch.equal(rows_y, shard[:, 1:])  # contiguous, in order
        seen.append((rank * B * per_row, (rank + 1) * B * per_row))
        assert xs[0].dtype == torch.long
    assert seen[0][1] == seen[1][0]  # disjoint and adjacent: together they cover the stream minus the remainder
    assert stream.numel() - seen[1][1] < 2 * B


def test_bad_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="root not found"):
        lm1b_files(tmp_path / "nope")
    (tmp_path / "r" / TRAIN_DIR).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=HELDOUT_DIR):
        lm1b_files(tmp_path / "r")
    (tmp_path / "r" / HELDOUT_DIR).mkdir()
    with pytest.raises(FileNotFoundError, match="no training shards"):
        lm1b_files(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="news.en-00042-of-00100"):
        lm1b_files(FAKE, train_shards=[42])
    with pytest.raises(ValueError, match="overlap"):
        lm1b_files(FAKE, validation_shards=[0])
    with pytest.raises(ValueError, match="min_count"):
        OneBillionWordDataModule(str(FAKE), min_count=0)


def test_state_dict_roundtrip_and_mismatch(tmp_path):
    dm = _dm(tmp_path)
    state = dm.state_dict()
    fresh = _dm(tmp_path / "other")
    fresh.load_state_dict(state)
    assert fresh.vocab.tokens == dm.vocab.tokens
    other = _dm(tmp_path, min_count=1)
    other.vocab_size  # noqa: B018 - build it
    with pytest.raises(ValueError, match="vocab mismatch"):
        other.load_state_dict(state)


# --- recipes -------------------------------------------------------------------------------------------------------
def _shrink(config: dict) -> list[str]:
    init = config["model"]["init_args"]
    args = ["--model.init_args.embedding_size=16", "--model.init_args.hidden_size=16"]
    if init.get("output") in ("sampled", "blackout"):
        args.append("--model.init_args.num_samples=8")  # fewer than the fake vocab, so sampling really happens
    if init.get("output") == "adaptive":
        args.append("--model.init_args.cutoffs=[10, 20, 40]")
    if (init.get("cell_kwargs") or {}).get("proj_size"):
        args.append("--model.init_args.cell_kwargs={proj_size: 8}")
    return args


@pytest.mark.parametrize("recipe", [p for p in RECIPES if p.stem != "kn5"], ids=lambda p: p.stem)
def test_recipe_runs_on_fake_data(recipe, tmp_path, monkeypatch):
    config = yaml.safe_load(recipe.read_text())
    header = recipe.read_text().split("\n", 12)[:12]
    assert any(line.startswith("# Run:") and "recurrentkit fit" in line for line in header)
    assert any("Target" in line for line in header) and any("Params:" in line for line in header)
    assert config["data"]["class_path"] == "recurrentkit.data.lm1b.OneBillionWordDataModule"
    monkeypatch.chdir(tmp_path)
    argv = ["fit", "-c", str(recipe), f"--data.init_args.root={FAKE}", f"--data.init_args.cache_dir={tmp_path}/c",
            "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=4", "--trainer.fast_dev_run=3",
            "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            *_shrink(config)]
    assert cli.main(argv) == 0


def test_kn5_recipe_command_runs_on_fake_data(tmp_path, capsys):
    """The documented `cat shards > train; recurrentkit ngram ...` on a fake release big enough for KN discounts
    (the fixture's few hundred words give count-of-counts too irregular for modified-KN discounts)."""
    import random

    from recurrentkit.cli.ngram import ngram_main

    config = yaml.safe_load((ROOT / "recipes" / "lm1b" / "kn5.yaml").read_text())
    args = config["args"]
    assert config["command"] == "ngram" and args["order"] == 5 and args["test_shard"] == 0
    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]
    zipf = [1 / (i + 1) for i in range(3000)]
    successors = {w: rng.choices(words, zipf, k=3) for w in words}  # a Markov chain: n-grams repeat at every order

    def line() -> str:
        w = rng.choices(words, zipf)[0]
        out = [w]
        for _ in range(rng.randint(3, 15)):
            w = rng.choices(successors[w], (6, 3, 1))[0] if rng.random() < 0.85 else rng.choices(words, zipf)[0]
            out.append(w)
        return " ".join(out)

    root = tmp_path / "release"
    for folder, name in ((TRAIN_DIR, "news.en-00001-of-00100"), (TRAIN_DIR, "news.en-00002-of-00100"),
                         (HELDOUT_DIR, "news.en.heldout-00000-of-00050")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text("\n".join(line() for _ in range(1500)) + "\n")
    files = lm1b_files(root, validation_shards=[])
    train = tmp_path / "lm1b-train.txt"
    train.write_text("".join(p.read_text() for p in files["train"]))  # the header's `cat` of the train shards
    test = files["test"][0]
    assert ngram_main(["--train", str(train), "--test", str(test), "--order", str(args["order"]),
                       "--mode", args["mode"], "--unk", args["unk"]]) == 0
    assert "perplexity" in capsys.readouterr().out
