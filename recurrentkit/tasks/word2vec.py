"""``Word2VecTask``: word2vec (Mikolov et al., 2013): skip-gram and CBOW with negative sampling, as a LightningModule.

Each positive pair (input ``i``, output ``o``) and ``K`` noise words ``n_k ~ P_n`` give the loss
``-log σ(u_o·v_i) - Σ_k log σ(-u_{n_k}·v_i)``, with ``v`` the input ("syn0", the word vectors) and ``u`` the output
("syn1neg") embeddings. Skip-gram: ``v_i`` is the context word's vector and ``o`` the centre (word2vec.c's order).
CBOW: ``v_i`` is the mean of the context vectors and ``o`` the centre; the input gradient goes to every context word
unscaled, as in word2vec.c and gensim (``cbow_mean=1``).

The update is word2vec's plain SGD, done in closed form on a whole batch (no autograd): with
``g = α (label - σ(u·v))`` per (input, target) row, ``u += g v`` and ``v += Σ g u``; rows hit several times in a
batch get the sum (``index_add_``). ``α`` decays linearly from ``alpha`` to ``min_alpha`` over all epochs' tokens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..embeddings import sgns_kernel
from ..embeddings.vectors import WordVectors
from .base import Task


class Word2VecTask(Task):
    """Skip-gram / CBOW with negative sampling, trained by word2vec's SGD update.

    Args:
        vocab_size: number of words (link ``data.vocab_size``).
        vector_size: embedding width. mode: ``"sg"`` or ``"cbow"`` (must match the data).
        alpha, min_alpha: initial and final learning rate of the linear decay.
        cbow_mean: CBOW input is the mean (True) or the sum (False) of the context vectors.
        seed: seed of the input-vector initialisation; outputs start at zero.
        init_range: input vectors start at ``U(-r, r)``; default ``1/d`` (gensim 4's ``prep_vectors``); word2vec.c
            uses ``0.5/d``, which trains CBOW vectors about 9% worse on WikiText-2 analogies (docs/word2vec.md).
        vectors_path: if set, the trained vectors are written there (word2vec text format) when fitting ends.
        analogy_path: if set, analogy accuracy on this questions file is logged at the end of every epoch.
        restrict_vocab: vocabulary cut-off for the analogy evaluation.
        words: the vocabulary in id order; taken from the datamodule when not given.
        num_threads: if set, ``torch.set_num_threads`` at the start of fitting (the small batched ops of this
            update run best on one thread when the CPU is busy); with the compiled trainer, its Hogwild threads.
        backend: ``"auto"``: follow the data -- raw chunks (the data module's ``compiled``, on by default where
            Numba is installed) train with word2vec.c's loop compiled by Numba
            (:mod:`recurrentkit.embeddings.sgns_kernel`), pair batches with the batched update below;
            ``"numba"``: insist on the compiled loop; ``"torch"``: insist on the batched update.

    There is no ``optimizer`` argument: the update is word2vec's own closed-form SGD with a linear learning-rate
    decay. Logged: ``train/loss``, ``train/alpha``, ``train/words_per_s``, and with ``analogy_path``
    ``val/analogy`` (total accuracy), ``val/analogy_semantic``, ``val/analogy_syntactic`` after every epoch.
    Checkpoint extras: ``words`` (the vocabulary in id order).
    """

    def __init__(self, vocab_size: int, vector_size: int = 100, mode: str = "sg", alpha: float = 0.025,
                 min_alpha: float = 0.0001, cbow_mean: bool = True, seed: int = 1, vectors_path: str | None = None,
                 analogy_path: str | None = None, restrict_vocab: int = 30000,
                 words: list[str] | None = None, num_threads: int | None = None, backend: str = "auto",
                 init_range: float | None = None) -> None:
        super().__init__(optimizer=None)
        if init_range is not None and init_range <= 0:
            raise ValueError(f"init_range must be > 0, got {init_range}")
        if mode not in ("sg", "cbow"):
            raise ValueError(f"mode must be 'sg' or 'cbow', got {mode!r}")
        if vocab_size < 1 or vector_size < 1:
            raise ValueError(f"vocab_size and vector_size must be >= 1, got {vocab_size}, {vector_size}")
        if not 0 <= min_alpha <= alpha:
            raise ValueError(f"need 0 <= min_alpha <= alpha, got min_alpha={min_alpha}, alpha={alpha}")
        if backend not in ("auto", "numba", "torch"):
            raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
        if backend == "numba" and not sgns_kernel.available():
            raise ImportError('backend="numba" needs Numba: pip install "recurrentkit[fast]" (or backend="torch")')
        self.save_hyperparameters(ignore=["words"])
        self.automatic_optimization = False
        gen = torch.Generator().manual_seed(seed)
        half_width = 1.0 / vector_size if init_range is None else float(init_range)
        w_in = (torch.rand(vocab_size, vector_size, generator=gen) * 2 - 1) * half_width
        self.input_embeddings = nn.Embedding.from_pretrained(w_in, freeze=True)
        self.output_embeddings = nn.Embedding.from_pretrained(torch.zeros(vocab_size, vector_size), freeze=True)
        self.words = words
        self.words_seen = 0.0
        self.train_seconds = 0.0
        self._t0: float | None = None

    def current_alpha(self, progress: float) -> float:
        """``alpha - (alpha - min_alpha) * progress`` (word2vec's linear decay)."""
        a, m = self.hparams.alpha, self.hparams.min_alpha
        return max(m, a - (a - m) * float(progress))

    @torch.no_grad()
    def sgd_step(self, centre: Tensor, context: Tensor, negatives: Tensor, alpha: float) -> Tensor:
        """One word2vec update on a batch; returns the mean negative-sampling loss before the update.

        ``negatives`` is ``[B, K]`` (each pair its own noise words, word2vec's scheme) or ``[ceil(B / G), K]``:
        then each group of ``G`` consecutive pairs shares its ``K`` noise words (``negative_sharing`` in the data),
        which turns the noise scores and their updates into small matrix products and gathers ``G`` times fewer
        rows. Every pair still sees ``K`` draws from ``P_n``, so the expected update is word2vec's.
        """
        if self.hparams.mode == "sg":
            v = F.embedding(context, self.input_embeddings.weight)  # [B, D]
        else:
            w_in = self.input_embeddings.weight
            mask = context >= 0  # [B, 2W]
            n_ctx = mask.sum(1)
            v = torch.bmm(mask[:, None, :].to(w_in.dtype), F.embedding(context.clamp_min(0), w_in)).squeeze(1)
            if self.hparams.cbow_mean:
                v = v / n_ctx[:, None].clamp_min(1)
        if negatives.shape[0] == centre.shape[0]:
            loss, grad_v = self._update_outputs_per_pair(v, centre, negatives, alpha)
        else:
            loss, grad_v = self._update_outputs_shared(v, centre, negatives, alpha)
        w_in = self.input_embeddings.weight
        if self.hparams.mode == "sg":
            w_in.index_add_(0, context, grad_v)
        else:
            w_in.index_add_(0, context[mask], grad_v.repeat_interleave(n_ctx, dim=0))
        return loss

    def _update_outputs_per_pair(self, v: Tensor, centre: Tensor, negatives: Tensor, alpha: float
                                 ) -> tuple[Tensor, Tensor]:
        """word2vec's update of the output rows (own negatives per pair); returns ``(loss, grad_v)``."""
        w_out = self.output_embeddings.weight
        targets = torch.cat([centre[:, None], negatives], dim=1)  # [B, 1 + K]
        u = F.embedding(targets, w_out)  # [B, 1 + K, D]
        f = torch.bmm(v[:, None, :], u.transpose(1, 2)).squeeze(1)  # [B, 1 + K]: u_t . v
        valid = negatives != centre[:, None]  # word2vec skips a negative equal to the target
        loss = -(F.logsigmoid(f[:, 0]) + F.logsigmoid(-f[:, 1:]).masked_fill(~valid, 0.0).sum(1)).mean()
        g = torch.sigmoid(f).neg_()
        g[:, 0] += 1.0  # label - sigma(f)
        g[:, 1:].masked_fill_(~valid, 0.0)
        g.mul_(alpha)
        grad_v = torch.bmm(g[:, None, :], u).squeeze(1)  # [B, D] = sum_t g_t u_t
        w_out.index_add_(0, targets.reshape(-1), (g[:, :, None] * v[:, None, :]).reshape(-1, v.shape[1]))
        return loss, grad_v

    def _update_outputs_shared(self, v: Tensor, centre: Tensor, negatives: Tensor, alpha: float
                               ) -> tuple[Tensor, Tensor]:
        """The same update with ``K`` negatives shared by each group of ``G`` pairs; returns ``(loss, grad_v)``."""
        w_out = self.output_embeddings.weight
        batch, dim = v.shape
        groups, k = negatives.shape
        size = -(-batch // groups)  # G
        if groups * size - batch >= size:
            raise ValueError(f"negatives has {groups} rows: neither one per pair nor one per group of pairs for a "
                             f"batch of {batch}")
        pad = groups * size - batch
        u_pos = F.embedding(centre, w_out)  # [B, D]
        f_pos = (u_pos * v).sum(1)  # [B]
        vg = F.pad(v, (0, 0, 0, pad)).view(groups, size, dim)  # [n, G, D]
        u_neg = F.embedding(negatives, w_out)  # [n, K, D]
        f_neg = torch.bmm(vg, u_neg.transpose(1, 2))  # [n, G, K]
        centre_g = F.pad(centre, (0, pad), value=-1).view(groups, size)
        valid = (negatives[:, None, :] != centre_g[:, :, None]) & (centre_g >= 0)[:, :, None]
        loss = -(F.logsigmoid(f_pos).sum() + F.logsigmoid(-f_neg).masked_fill(~valid, 0.0).sum()) / batch
        g_pos = torch.sigmoid(f_pos).neg_().add_(1.0).mul_(alpha)  # alpha (1 - sigma)
        g_neg = torch.sigmoid(f_neg).masked_fill_(~valid, 0.0).mul_(-alpha)  # alpha (0 - sigma)
        grad_v = g_pos[:, None] * u_pos + torch.bmm(g_neg, u_neg).view(-1, dim)[:batch]
        w_out.index_add_(0, centre, g_pos[:, None] * v)
        w_out.index_add_(0, negatives.reshape(-1), torch.bmm(g_neg.transpose(1, 2), vg).reshape(-1, dim))
        return loss, grad_v

    def train_chunk(self, batch: dict[str, Any], alpha_start: float, alpha_end: float) -> Tensor:
        """word2vec.c's loop on a raw chunk (the data's ``compiled=True``), compiled and Hogwild over
        ``num_threads`` threads; returns the chunk's mean loss per example."""
        if self.hparams.get("backend", "auto") == "torch":
            raise ValueError("the data yields raw chunks for the compiled trainer (compiled=True) but backend='torch':"
                             " set the data's compiled=False or the task's backend to 'numba' or 'auto'")
        if batch["mode"] != self.hparams.mode:
            raise ValueError(f"the data's mode {batch['mode']!r} differs from the task's {self.hparams.mode!r}")
        w_in, w_out = self.input_embeddings.weight, self.output_embeddings.weight
        if w_in.device.type != "cpu":
            raise RuntimeError("the compiled trainer runs on the CPU: use the data's compiled=False on other devices")
        threads = int(self.hparams.num_threads or torch.get_num_threads())
        loss, count = sgns_kernel.train_chunk(
            w_in.numpy(), w_out.numpy(), batch["tokens"].numpy(), batch["sentences"].numpy(), batch["keep"].numpy(),
            batch["noise_cdf"].numpy(), mode=batch["mode"], window=batch["window"],
            shrink_windows=batch["shrink_windows"], negative=batch["negative"], alpha_start=alpha_start,
            alpha_end=alpha_end, seed=batch["seed"], cbow_mean=self.hparams.cbow_mean, threads=threads)
        return torch.tensor(loss / max(count, 1))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if self._t0 is None:
            self._t0 = time.perf_counter()
        alpha = self.current_alpha(batch["progress"])
        if "tokens" in batch:
            loss = self.train_chunk(batch, alpha, self.current_alpha(batch["progress_end"]))
        elif self.hparams.get("backend", "auto") == "numba":
            raise ValueError("backend='numba' trains on raw chunks: set the data module's compiled=True")
        else:
            loss = self.sgd_step(batch["centre"], batch["context"], batch["negatives"], alpha)
        self.words_seen += float(batch["words"])
        if batch_idx % 50 == 0 or "tokens" in batch:  # a raw chunk is 100k tokens: log its loss
            self.log("train/loss", loss, prog_bar=True)
        if batch_idx % 50 == 0:  # a Lightning log call costs about a millisecond: 4% of a CBOW chunk's time
            self.log("train/alpha", alpha)
        return loss

    def on_fit_start(self) -> None:
        self._saved_threads = torch.get_num_threads()
        if self.hparams.num_threads:
            torch.set_num_threads(int(self.hparams.num_threads))

    def on_train_epoch_start(self) -> None:
        dm = self.datamodule
        if dm is not None and hasattr(dm, "set_epoch"):
            dm.set_epoch(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        if self._t0 is not None:
            self.train_seconds += time.perf_counter() - self._t0
            self._t0 = None
        self.log("train/words_per_s", self.words_seen / max(self.train_seconds, 1e-9))
        if self.hparams.analogy_path:
            result = self.word_vectors().evaluate_analogies(self.hparams.analogy_path,
                                                            restrict_vocab=self.hparams.restrict_vocab).as_dict()
            self.log_dict({"val/analogy": result["total"], "val/analogy_semantic": result["semantic"],
                           "val/analogy_syntactic": result["syntactic"]})

    def on_fit_end(self) -> None:
        if getattr(self, "_saved_threads", None):
            torch.set_num_threads(self._saved_threads)  # restore the caller's setting
        if self.hparams.vectors_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.hparams.vectors_path)), exist_ok=True)
            self.word_vectors().save(self.hparams.vectors_path)

    def _resolve_words(self, words: Sequence[str] | Any | None) -> list[str]:
        if words is not None:
            from ..embeddings.vectors import vocab_tokens

            return vocab_tokens(words)
        if self.words is not None:
            return list(self.words)
        dm = self.datamodule
        if dm is not None and hasattr(dm, "words"):
            return list(dm.words)
        raise ValueError("the vocabulary is unknown: pass words= (a Vocab or a list) or train with a datamodule")

    def checkpoint_extras(self) -> dict[str, Any]:
        """``words``: the vocabulary in id order, so a loaded checkpoint gives :meth:`word_vectors` by itself."""
        extras = super().checkpoint_extras()
        try:
            extras["words"] = self._resolve_words(None)
        except ValueError:
            pass  # no vocabulary known yet
        return extras

    def load_checkpoint_extras(self, extras: dict[str, Any]) -> None:
        super().load_checkpoint_extras(extras)
        if extras.get("words") is not None:
            self.words = list(extras["words"])

    def word_vectors(self, words: Sequence[str] | Any | None = None) -> WordVectors:
        """The trained input vectors as :class:`WordVectors` (``words``: a Vocab or token list in id order)."""
        return WordVectors(self._resolve_words(words), self.input_embeddings.weight.detach().cpu().clone())


__all__ = ["Word2VecTask"]
