"""LanguageModelTask: truncated BPTT with carried state, metrics, AR/TAR, generation, checkpoints and exact resume."""

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from recurrentkit.callbacks import NTASGD, TextSampleLogger
from recurrentkit.tasks import LanguageModelTask

V = 12


class StreamLoader:
    """B contiguous streams served as [B, T] windows in order; resumable mid-epoch (state_dict/load_state_dict)."""

    def __init__(self, tokens: torch.Tensor, batch_size: int, bptt: int) -> None:
        n = tokens.numel() // batch_size
        self.streams = tokens[: n * batch_size].view(batch_size, n)
        self.bptt = bptt
        self.num_batches = (n - 1) // bptt
        self.position = 0
        self._start = 0

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        start, self._start = self._start, 0
        for i in range(start, self.num_batches):
            self.position = i + 1
            s = i * self.bptt
            yield self.streams[:, s:s + self.bptt].clone(), self.streams[:, s + 1:s + 1 + self.bptt].clone()

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self._start = state["position"] % self.num_batches


def _corpus(n=600, seed=0):
    """A learnable stream: a repeating pattern with some noise."""
    g = torch.Generator().manual_seed(seed)
    pattern = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0])
    tokens = pattern.repeat(n // len(pattern) + 1)[:n].clone()
    noise = torch.rand(n, generator=g) < 0.1
    tokens[noise] = torch.randint(0, V, (int(noise.sum()),), generator=g)
    return tokens


def _task(**kw):
    defaults = dict(vocab_size=V, embedding_size=8, hidden_size=16, num_layers=2)
    defaults.update(kw)
    return LanguageModelTask(**defaults)


def _trainer(tmp_path, **kw):
    defaults = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False, default_root_dir=tmp_path, deterministic=True)
    defaults.update(kw)
    return L.Trainer(**defaults)


class LossRecorder(Callback):
    def __init__(self):
        self.losses = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses[trainer.global_step] = outputs["loss"].item()


def test_validation_over_carried_windows_equals_one_full_pass_and_metrics(tmp_path):
    torch.manual_seed(0)
    task = _task(char_level=True)
    loader = StreamLoader(_corpus(400), batch_size=4, bptt=7)
    trainer = _trainer(tmp_path)
    metrics = trainer.validate(task, loader, verbose=False)[0]
    # one pass over each whole stream (no windows) gives the same token-weighted mean NLL
    used = loader.num_batches * loader.bptt
    streams = loader.streams
    with torch.no_grad():
        hidden, _ = task.model.eval()(streams[:, :used])
        full = task.model.loss(hidden, streams[:, 1:used + 1]).item()
    assert metrics["val/loss"] == pytest.approx(full, rel=1e-5)
    assert metrics["val/ppl"] == pytest.approx(math.exp(metrics["val/loss"]), rel=1e-5)
    assert metrics["val/bpc"] == pytest.approx(metrics["val/loss"] / math.log(2), rel=1e-5)
    test_metrics = trainer.test(task, loader, verbose=False)[0]
    assert test_metrics["test/ppl"] == pytest.approx(math.exp(full), rel=1e-5)
    assert "test/bpc" in test_metrics


def test_state_is_carried_detached_and_reset_per_epoch(tmp_path):
    task = _task()
    seen = []

    class Spy(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(module.states["train"])

    trainer = _trainer(tmp_path, max_epochs=2, callbacks=[Spy()], limit_val_batches=0)
    loader = StreamLoader(_corpus(200), batch_size=4, bptt=10)
    trainer.fit(task, loader)
    n = loader.num_batches
    assert seen[0] is None and seen[n] is None  # reset at each epoch start
    carried = seen[1]
    assert len(carried) == 2 and carried[0].h.shape == (4, 16)
    assert all(not t.requires_grad for s in carried for t in s)


def test_loss_decreases_with_clipping_and_scheduler(tmp_path):
    torch.manual_seed(0)
    task = _task(optimizer=lambda p: torch.optim.Adam(p, lr=0.02),
                 lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5))
    recorder = LossRecorder()
    trainer = _trainer(tmp_path, max_epochs=4, gradient_clip_val=0.5, callbacks=[recorder])
    loader = StreamLoader(_corpus(600), batch_size=4, bptt=10)
    val = StreamLoader(_corpus(200, seed=1), batch_size=2, bptt=10)
    before = trainer.validate(task, val, verbose=False)[0]["val/loss"]
    trainer.fit(task, loader, val)
    after = trainer.callback_metrics["val/loss"].item()
    assert after < 0.6 * before
    assert trainer.lr_scheduler_configs[0].scheduler.get_last_lr()[0] == pytest.approx(0.02 * 0.5 ** 4)
    assert "train/tokens_per_s" in trainer.callback_metrics


def test_plateau_scheduler_gets_monitor():
    task = _task(lr_scheduler=lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.25))
    config = task.configure_optimizers()
    assert config["lr_scheduler"]["monitor"] == "val/ppl"
    assert isinstance(config["optimizer"], torch.optim.SGD) and config["optimizer"].defaults["lr"] == 1.0


def test_ar_and_tar_change_the_training_loss():
    batch = (_corpus(40)[:36].view(3, 12), _corpus(41)[1:37].view(3, 12))
    losses = {}
    for name, kw in {"none": {}, "ar": {"ar": 2.0}, "tar": {"tar": 1.0}}.items():
        torch.manual_seed(0)
        task = _task(dropout=0.2, **kw)
        torch.manual_seed(1)
        losses[name] = task._step(batch, "train")
    base = losses["none"][0].item()
    for name in ("ar", "tar"):
        loss, nll, _ = losses[name]
        assert loss.item() > base  # the penalty is added to the loss ...
        assert nll.item() == pytest.approx(base, rel=1e-6)  # ... but the NLL (and ppl) is unchanged


def _vocab_and_tokenizer():
    from recurrentkit.data.tokenizers import build_tokenizer
    from recurrentkit.data.vocab import Vocab

    tokens = ["<unk>", *"abcdefghijk"]
    return Vocab(tokens, unk_token="<unk>"), build_tokenizer({"name": "char"})


def test_generation_never_samples_tokens_unseen_in_training():
    from recurrentkit.data.tokenizers import build_tokenizer
    from recurrentkit.data.vocab import Vocab

    torch.manual_seed(0)
    task = _task()
    with torch.no_grad():  # make <unk> (id 0) the most likely token everywhere
        task.model.decoder.decoder.bias[0] = 50.0
    tokens = ["<unk>", *"abcdefghijk"]
    task.attach_vocabulary(Vocab(tokens, counts=[0] + [5] * 11), build_tokenizer({"name": "char"}))
    assert task.unseen_ids() == [0]
    ids = task.generate_ids(task.vocab.encode(list("abc")), max_new_tokens=50, temperature=2.0, seed=0)
    assert 0 not in ids
    allowed = task.generate_ids(task.vocab.encode(list("abc")), max_new_tokens=50, temperature=2.0, seed=0,
                                exclude_ids=[])
    assert allowed != ids  # without the exclusion the same seed does sample <unk>
    task.attach_vocabulary(Vocab(tokens), build_tokenizer({"name": "char"}))  # no counts: nothing is excluded
    assert task.unseen_ids() == []


def test_generation_seeded_greedy_and_streamed():
    torch.manual_seed(0)
    task = _task()
    vocab, tokenizer = _vocab_and_tokenizer()
    with pytest.raises(RuntimeError, match="attach_vocabulary"):
        task.generate("abc")
    task.attach_vocabulary(vocab, tokenizer)
    a = task.generate("abc", max_new_tokens=30, seed=3)
    b = task.generate("abc", max_new_tokens=30, seed=3)
    c = task.generate("abc", max_new_tokens=30, seed=4)
    assert a == b and a != c and a.startswith("abc")
    g1 = task.generate("abc", max_new_tokens=20, temperature=0)
    g2 = task.generate("abc", max_new_tokens=20, temperature=0, seed=99)
    assert g1 == g2
    # greedy streaming equals arg-max over a full recomputation of the whole sequence
    ids = vocab.encode(list("abc"))
    out = task.generate_ids(ids, max_new_tokens=8, temperature=0)
    seq = ids + out
    with torch.no_grad():
        hidden, _ = task.model.eval()(torch.tensor([seq[:-1]]))
        argmax = task.model.log_probs(hidden)[0].argmax(-1).tolist()
    assert argmax[len(ids) - 1:] == out
    top1 = task.generate_ids(ids, max_new_tokens=8, temperature=1.0, top_k=1, seed=5)
    assert top1 == out
    with pytest.raises(ValueError, match="vocab has"):
        task.attach_vocabulary(type(vocab)(["<unk>", "a"]), tokenizer)
    with pytest.raises(ValueError, match="temperature"):
        task.generate_ids(ids, temperature=-1)


def test_checkpoint_carries_vocabulary_for_generation(tmp_path):
    torch.manual_seed(0)
    task = _task()
    task.attach_vocabulary(*_vocab_and_tokenizer())
    trainer = _trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(task, StreamLoader(_corpus(200), batch_size=2, bptt=5))
    path = tmp_path / "lm.ckpt"
    trainer.save_checkpoint(path)
    torch.manual_seed(42)
    _task()
    expected_rng = torch.get_rng_state()
    torch.manual_seed(42)
    loaded = LanguageModelTask.load_from_checkpoint(path, weights_only=True)
    assert torch.equal(torch.get_rng_state(), expected_rng)  # plain loading does not restore the training RNG
    assert loaded.generate("ab", 10, seed=1) == task.generate("ab", 10, seed=1)
    assert loaded.hparams.hidden_size == 16


@pytest.mark.parametrize("resume_step", [5, 11])  # mid-epoch 0 and mid-epoch 1 (7 batches per epoch)
def test_resume_reproduces_uninterrupted_losses_exactly(tmp_path, resume_step):
    def run(ckpt_path=None, seed=0):
        L.seed_everything(seed, verbose=False)
        task = _task(dropout=0.3, weight_drop=0.2, embedding_dropout=0.1)
        recorder = LossRecorder()
        ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", every_n_train_steps=1,
                               save_top_k=-1)
        trainer = _trainer(tmp_path, max_epochs=2, callbacks=[recorder, ckpt], enable_checkpointing=True)
        trainer.fit(task, StreamLoader(_corpus(300), batch_size=4, bptt=10),
                    StreamLoader(_corpus(100, seed=2), batch_size=2, bptt=10), ckpt_path=ckpt_path)
        return recorder.losses

    full = run()
    assert len(full) == 14
    resumed = run(ckpt_path=tmp_path / "ckpt" / f"step={resume_step}.ckpt", seed=123)
    assert sorted(resumed) == list(range(resume_step + 1, 15))
    for step, loss in resumed.items():
        assert loss == full[step], f"step {step}: resumed {loss} != uninterrupted {full[step]}"


class ScriptedTask(LanguageModelTask):
    """Logs a scripted validation metric, so the NT-ASGD trigger is known in advance."""

    script = [3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9]

    def on_validation_epoch_end(self):
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:
            self.log("scripted", self.script[self.current_epoch])


def test_ntasgd_switches_and_evaluates_with_averaged_weights(tmp_path):
    torch.manual_seed(0)
    task = ScriptedTask(vocab_size=V, embedding_size=8, hidden_size=8, num_layers=1,
                        optimizer=lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-4))
    records = {"steps": [], "val": [], "train_start": []}
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()]).clone()  # noqa: E731

    class Recorder(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            records["train_start"].append((trainer.global_step, flat(module)))

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            records["steps"].append((trainer.global_step, flat(module), type(trainer.optimizers[0]).__name__))

        def on_validation_start(self, trainer, module):
            records["val"].append((trainer.global_step, flat(module)))

    ntasgd = NTASGD(monitor="scripted", nonmono=2)
    trainer = _trainer(tmp_path, max_epochs=7, callbacks=[ntasgd, Recorder()], num_sanity_val_steps=0)
    loader = StreamLoader(_corpus(120), batch_size=2, bptt=10)  # 5 batches per epoch
    trainer.fit(task, loader, StreamLoader(_corpus(60), batch_size=2, bptt=10))
    # history 3, 2, 2.5, 2.6 then 2.7 > min(3, 2): the switch comes at the 5th check (end of epoch 4, step 25)
    assert ntasgd.switched and ntasgd.switch_step == 25 and ntasgd.history == pytest.approx(ScriptedTask.script)
    assert {name for step, _, name in records["steps"] if step <= 25} == {"Adam"}
    assert {name for step, _, name in records["steps"] if step > 25} == {"SGD"}
    sgd = trainer.optimizers[0]
    assert sgd.defaults["lr"] == 0.01 and sgd.defaults["weight_decay"] == 1e-4 and sgd.defaults["momentum"] == 0
    # validation at the end of epoch 5 (step 30) sees the mean of the iterates of steps 26..30
    after_switch = [w for step, w, _ in records["steps"] if 25 < step <= 30]
    val_weights = dict(records["val"])[30]
    assert torch.allclose(val_weights, torch.stack(after_switch).mean(0), atol=1e-6)
    assert not torch.allclose(val_weights, after_switch[-1])
    # ... and training continues from the raw iterate, not the average
    resumed = [w for step, w in records["train_start"] if step == 30][0]
    assert torch.equal(resumed, after_switch[-1])
    # the final model holds the average of all iterates since the switch
    final = [w for step, w, _ in records["steps"] if step > 25]
    assert torch.allclose(flat(task), torch.stack(final).mean(0), atol=1e-6)


def test_ntasgd_rule():
    cb = NTASGD(nonmono=2)
    cb.history = [3.0, 2.0]
    assert not cb.should_switch(5.0)  # not enough history yet
    cb.history = [3.0, 2.0, 2.5]
    assert not cb.should_switch(2.9) and cb.should_switch(3.1)
    with pytest.raises(ValueError, match="nonmono"):
        NTASGD(nonmono=0)


def test_text_sample_logger_prints_and_logs(tmp_path, capsys):
    from lightning.pytorch.loggers import Logger

    class TextLogger(Logger):
        name, version = "text", 0

        def __init__(self, fail=False):
            super().__init__()
            self.fail, self.tables = fail, []

        @property
        def experiment(self):
            return None

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, params, *args, **kwargs):
            pass

        def log_text(self, key, columns, data, step=None):
            if self.fail:
                raise RuntimeError("no account")
            self.tables.append((key, columns, data))

    torch.manual_seed(0)
    task = _task()
    task.attach_vocabulary(*_vocab_and_tokenizer())
    good, bad = TextLogger(), TextLogger(fail=True)
    sampler = TextSampleLogger(prompt="ab", max_new_tokens=12, seed=7)
    trainer = _trainer(tmp_path, max_epochs=2, logger=[good, bad], callbacks=[sampler], num_sanity_val_steps=0)
    with pytest.warns(UserWarning, match="could not log the sample"):
        trainer.fit(task, StreamLoader(_corpus(100), 2, 10), StreamLoader(_corpus(60), 2, 10))
    assert len(sampler.samples) == 2 and len(good.tables) == 2
    key, columns, data = good.tables[-1]
    assert key == "val/samples" and columns == ["epoch", "step", "prompt", "text"]
    assert data[0][3] == task.generate("ab", 12, temperature=0.8, seed=7 + 1)
    assert data[0][3] in capsys.readouterr().out


def test_with_data_module_resume_exact_and_checkpoint_generates(tmp_path):
    from recurrentkit.data.lm import LanguageModelingDataModule

    text = "the quick brown fox jumps over the lazy dog\n" * 12
    files = {}
    for split, body in (("train", text), ("validation", text[:200]), ("test", text[:200])):
        files[split] = str(tmp_path / f"{split}.txt")
        (tmp_path / f"{split}.txt").write_text(body)

    def run(ckpt_path=None, seed=0):
        L.seed_everything(seed, verbose=False)
        dm = LanguageModelingDataModule(data_files=files, tokenizer="char", batch_size=4, bptt=8,
                                        cache_dir=str(tmp_path / "cache"))
        dm.prepare_data()
        dm.setup("fit")
        task = _task(vocab_size=dm.vocab_size, dropout=0.2, char_level=dm.char_level)
        recorder = LossRecorder()
        ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", every_n_train_steps=4, save_top_k=-1)
        trainer = _trainer(tmp_path, max_epochs=2, callbacks=[recorder, ckpt], enable_checkpointing=True)
        trainer.fit(task, datamodule=dm, ckpt_path=ckpt_path)
        return recorder.losses, task, trainer

    full, task, trainer = run()
    steps_per_epoch = trainer.num_training_batches
    assert 4 < steps_per_epoch and steps_per_epoch % 4  # step 4 is mid-epoch
    assert "val/bpc" in trainer.callback_metrics
    resumed, _, _ = run(ckpt_path=tmp_path / "ckpt" / "step=4.ckpt", seed=7)
    assert sorted(resumed) == list(range(5, 2 * steps_per_epoch + 1))
    assert all(resumed[s] == full[s] for s in resumed)
    loaded = LanguageModelTask.load_from_checkpoint(tmp_path / "ckpt" / "step=4.ckpt", weights_only=True)
    sample = loaded.generate("the ", max_new_tokens=20, seed=0)
    ids = loaded.vocab.encode(list("the "))
    new = loaded.generate_ids(ids, max_new_tokens=20, seed=0)
    assert len(new) == 20
    assert sample == "the " + "".join(loaded.vocab.decode(new))


@pytest.mark.parametrize("resume_step", [27, 32])  # after the switch at step 25, mid-epoch
def test_ntasgd_resume_is_exact(tmp_path, resume_step):
    def run(ckpt_path=None, seed=0):
        L.seed_everything(seed, verbose=False)
        task = ScriptedTask(vocab_size=V, embedding_size=8, hidden_size=8, num_layers=1, dropout=0.2)
        recorder = LossRecorder()
        ntasgd = NTASGD(monitor="scripted", nonmono=2)
        ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", every_n_train_steps=1, save_top_k=-1)
        trainer = _trainer(tmp_path, max_epochs=7, callbacks=[ntasgd, recorder, ckpt], enable_checkpointing=True,
                           num_sanity_val_steps=0)
        trainer.fit(task, StreamLoader(_corpus(120), batch_size=2, bptt=10),
                    StreamLoader(_corpus(60), batch_size=2, bptt=10), ckpt_path=ckpt_path)
        return recorder.losses, task, ntasgd

    full, task, ntasgd = run()
    assert ntasgd.switch_step == 25
    resumed, task2, ntasgd2 = run(tmp_path / "ckpt" / f"step={resume_step}.ckpt", seed=5)
    assert sorted(resumed) == list(range(resume_step + 1, 36))
    assert all(resumed[s] == full[s] for s in resumed)
    assert ntasgd2.switched and ntasgd2.num_averaged == ntasgd.num_averaged
    for a, b in zip(task.parameters(), task2.parameters()):
        assert torch.equal(a, b)  # the same averaged final model
