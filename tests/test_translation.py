"""TranslationDataModule (files and HF datasets through one path, BPE shared or per side, bucketing) and
Seq2SeqTask (loss, sacreBLEU equal to the sacrebleu package's, checkpoints carrying the tokenizers, `recurrentkit
predict` writing translations)."""

import json
from pathlib import Path

import lightning as L
import pytest
import sacrebleu
import torch

from recurrentkit import cli
from recurrentkit.data.translation import SPECIALS, TranslationDataModule
from recurrentkit.models.seq2seq import BOS_ID, EOS_ID, PAD_ID
from recurrentkit.tasks.seq2seq import Seq2SeqTask, corpus_bleu

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "fixtures" / "fake_data" / "multi30k"
RECIPE = ROOT / "recipes" / "multi30k" / "gru-attention.yaml"
TINY = dict(cell="gru", embedding_size=16, hidden_size=16, decoder_hidden_size=24, attention="additive")


def _data(**kw):
    defaults = dict(source_lang="de", target_lang="en", data_dir=str(DATA), train_prefix="train", val_prefix="val",
                    test_prefix="test_2016_flickr", vocab_size=300, batch_size=16, eval_batch_size=10)
    return TranslationDataModule(**{**defaults, **kw})


def _lines(name):
    return (DATA / name).read_text(encoding="utf-8").splitlines()


def _trainer(tmp_path, **kw):
    defaults = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                    default_root_dir=str(tmp_path), use_distributed_sampler=False)
    return L.Trainer(**{**defaults, **kw})


def test_batches_hold_padded_ids_with_specials_and_raw_text():
    data = _data()
    data.setup("fit")
    assert [data.src_vocab.token_to_id(t) for t in SPECIALS] == [PAD_ID, 1, BOS_ID, EOS_ID]
    assert data.src_vocab is data.tgt_vocab  # shared by default
    batch = next(iter(data.val_dataloader()))
    src, lengths, tgt_in, tgt_out = batch["src"], batch["src_lengths"], batch["tgt_in"], batch["tgt_out"]
    assert src.shape[0] == lengths.shape[0] == 10 and int(lengths.max()) == src.shape[1]
    assert torch.all(src[torch.arange(src.shape[1]) >= lengths.unsqueeze(1)] == PAD_ID)
    assert torch.all(tgt_in[:, 0] == BOS_ID)
    shifted = tgt_out[:, :-1]
    assert torch.equal(tgt_in[:, 1:], shifted.masked_fill(shifted == EOS_ID, PAD_ID))  # y shifted right
    assert torch.equal((tgt_out == EOS_ID).sum(1), torch.ones(10, dtype=torch.long))
    refs = _lines("val.en")
    for i, text, row in zip(batch["index"].tolist(), batch["tgt_text"], tgt_out):
        assert text == refs[i]
        ids = [t for t in row.tolist() if t not in (PAD_ID, EOS_ID)]
        assert data.tgt_tokenizer.detokenize(data.tgt_vocab.decode(ids)) == text  # lossless subwords


def test_per_side_vocabularies_and_max_length_filter():
    data = _data(shared_vocab=False, max_length=14)
    data.setup("fit")
    assert data.src_vocab is not data.tgt_vocab
    assert set(data.src_vocab.tokens) != set(data.tgt_vocab.tokens)
    assert data.src_tokenizer.tokenize("Ein Hund") != data.tgt_tokenizer.tokenize("Ein Hund")
    train = data.encoded("train")
    assert 0 < len(train) < 240 and max(train.lengths) <= 15  # pairs longer than 14 subwords are dropped
    assert len(data.encoded("val")) == 24  # evaluation sentences are never dropped


def test_hf_dataset_with_translation_column_gives_the_same_pairs(tmp_path):
    for split, prefix in (("train", "train"), ("validation", "val")):
        rows = [{"translation": {"de": d, "en": e}} for d, e in zip(_lines(f"{prefix}.de"), _lines(f"{prefix}.en"))]
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = {s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation")}
    hf = _data(dataset="json", dataset_kwargs={"data_files": files}, test_split=None)
    hf.setup("fit")
    local = _data()
    local.setup("fit")
    assert hf.raw_split("val") == local.raw_split("val")
    assert hf.src_vocab.tokens == local.src_vocab.tokens


def test_bad_files_raise_errors_naming_them(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\n")
    (tmp_path / "train.en").write_text("a\n")
    with pytest.raises(ValueError, match=r"train.de has 2 lines but .*train.en has 1"):
        _data(data_dir=str(tmp_path)).setup("fit")
    (tmp_path / "train.en").write_text("a\n\n")
    with pytest.raises(ValueError, match=r"train.en:2: empty sentence"):
        _data(data_dir=str(tmp_path)).setup("fit")
    with pytest.raises(ValueError, match="both 'de'"):
        _data(target_lang="de")


def test_bleu_is_sacrebleu_corpus_bleu():
    refs = _lines("test_2016_flickr.en")
    hyps = [" ".join(r.split()[:-1]) if i % 3 else r.replace("A ", "The ") for i, r in enumerate(refs)]
    assert corpus_bleu(hyps, refs) == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert 0 < corpus_bleu(hyps, refs) < 100


def test_task_trains_logs_bleu_of_detokenised_output_and_translates_from_a_checkpoint(tmp_path):
    L.seed_everything(0)
    data = _data()
    data.setup("fit")
    task = Seq2SeqTask(data.src_vocab_size, data.tgt_vocab_size, beam_size=3, label_smoothing=0.1,
                       optimizer=lambda p: torch.optim.Adam(p, lr=0.01), **TINY)
    trainer = _trainer(tmp_path, max_epochs=6, enable_checkpointing=False)
    trainer.fit(task, datamodule=data)
    assert float(trainer.callback_metrics["val/loss"]) < 2.5
    result = trainer.test(task, datamodule=data, verbose=False)[0]
    hyps, refs = task.last_hypotheses["test"], _lines("test_2016_flickr.en")
    assert result["test/bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-4)
    assert result["test/bleu"] > 5  # learnt something about the toy grammar (a random model scores ~0)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = Seq2SeqTask.load_from_checkpoint(ckpt, map_location="cpu")
    sources = _lines("test_2016_flickr.de")
    assert loaded.translate(sources, beam_size=3) == hyps  # the checkpoint carries tokenizers and vocabularies


def test_recipe_fits_and_predict_writes_translations_in_input_order(tmp_path, monkeypatch):
    monkeypatch.setenv("RK_DATA_DIR", str(DATA.parent))
    monkeypatch.chdir(tmp_path)
    small = ["--model.init_args.hidden_size=16", "--model.init_args.embedding_size=16",
             "--model.init_args.decoder_hidden_size=16", "--data.init_args.vocab_size=300",
             "--trainer.enable_progress_bar=false", "--trainer.logger=false"]
    assert cli.main(["fit", "-c", str(RECIPE), "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
                     "--trainer.limit_val_batches=1", *small]) == 0
    ckpt = tmp_path / "runs" / "multi30k" / "gru-attention" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    out = tmp_path / "out.txt"
    assert cli.main(["predict", "-c", str(RECIPE), f"--ckpt_path={ckpt}", f"--predictions_file={out}",
                     f"--data.init_args.predict_file={DATA / 'predict.de'}", "--model.init_args.beam_size=2",
                     *small]) == 0
    task = Seq2SeqTask.load_from_checkpoint(ckpt, map_location="cpu")
    assert out.read_text(encoding="utf-8").splitlines() == task.translate(_lines("predict.de"), beam_size=2)
