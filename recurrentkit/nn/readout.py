"""Linear readout fitted in closed form by ridge regression, from statistics accumulated batch by batch."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def ridge_solve(xtx: Tensor, xty: Tensor, ridge: float, fit_bias: bool = True) -> tuple[Tensor, Tensor]:
    """Solve ``(X̃ᵀX̃ + λD) W̃ = X̃ᵀY`` for the augmented design ``X̃ = [X, 1]``; ``D = diag(1, ..., 1, 0)``.

    ``xtx`` is ``X̃ᵀX̃`` ``[F + 1, F + 1]`` (its last row/column hold the feature sums and the sample count), ``xty``
    is ``X̃ᵀY`` ``[F + 1, O]``. The bias (last row of ``W̃``) is not regularised. Returns ``(weight [O, F],
    bias [O])`` in float64. The system is solved centred (as reservoirpy does), which is the same solution with a
    better-conditioned matrix.
    """
    if xtx.dtype != torch.float64 or xty.dtype != torch.float64:
        raise TypeError("ridge statistics must be float64 (float32 is not accurate enough for X^T X)")
    features = xtx.shape[0] - 1
    count = xtx[-1, -1]
    if count <= 0:
        raise ValueError("no samples accumulated: call accumulate() before solve()")
    eye = torch.eye(features, dtype=xtx.dtype, device=xtx.device)
    sxx, sxy = xtx[:-1, :-1], xty[:-1]
    if fit_bias:
        mean_x, mean_y = xtx[:-1, -1] / count, xty[-1] / count
        sxx = sxx - count * torch.outer(mean_x, mean_x)
        sxy = sxy - count * torch.outer(mean_x, mean_y)
    system = sxx + ridge * eye
    factor, info = torch.linalg.cholesky_ex(system)  # symmetric positive definite when ridge > 0 or X has full rank
    if int(info) == 0:
        weight = torch.cholesky_solve(sxy, factor)
    else:  # singular (ridge 0, rank-deficient states): least-norm solution
        weight = torch.linalg.lstsq(system, sxy, driver="gelsd" if system.device.type == "cpu" else None).solution
    bias = mean_y - mean_x @ weight if fit_bias else torch.zeros(xty.shape[1], dtype=xty.dtype, device=xty.device)
    return weight.T.contiguous(), bias


class RidgeReadout(nn.Module):
    """``y = W [h; x] + b`` fitted in closed form (Tikhonov / ridge regression), or trained by SGD.

    Closed form: call :meth:`accumulate` on every batch (it adds ``X̃ᵀX̃`` and ``X̃ᵀY`` in float64, dropping the
    first ``washout`` steps of each sequence), then :meth:`solve`::

        (X̃ᵀX̃ + λ D) W̃ = X̃ᵀY,   X̃ = [X, 1],   D = diag(1, ..., 1, 0)   (the bias is not regularised)

    Statistics are sums, so shards add up: under DDP :meth:`solve` all-reduces them first (as reservoirpy splits
    its ridge into per-shard ``XXᵀ``, ``YXᵀ`` summed by a master). ``weight`` and ``bias`` are parameters, so the
    same readout can instead be trained by gradient descent.

    Args:
        in_features: reservoir features ``H``.
        out_features: outputs ``O``.
        ridge: the regularisation ``λ``.
        washout: steps at the start of each sequence left out of the statistics.
        input_features: when ``> 0``, the readout also sees the input ``x`` (``[h; x]``, "input to readout").
        fit_bias: learn the bias ``b`` (unregularised).
    """

    chunk_rows = 16384  # rows converted to float64 at a time in accumulate()

    def __init__(self, in_features: int, out_features: int, ridge: float = 0.0, washout: int = 0,
                 input_features: int = 0, fit_bias: bool = True) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"in_features and out_features must be positive, got {in_features}, {out_features}")
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        if washout < 0 or input_features < 0:
            raise ValueError(f"washout and input_features must be >= 0, got {washout}, {input_features}")
        self.in_features, self.out_features, self.input_features = in_features, out_features, input_features
        self.ridge, self.washout, self.fit_bias = float(ridge), int(washout), fit_bias
        total = in_features + input_features
        self.weight = nn.Parameter(torch.zeros(out_features, total))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_buffer("xtx", torch.zeros(total + 1, total + 1, dtype=torch.float64), persistent=False)
        self.register_buffer("xty", torch.zeros(total + 1, out_features, dtype=torch.float64), persistent=False)

    @property
    def num_samples(self) -> int:
        """Rows accumulated so far (on this process)."""
        return int(self.xtx[-1, -1])

    def features(self, states: Tensor, inputs: Tensor | None = None) -> Tensor:
        """``[h; x]`` when the readout sees the input, else ``h``."""
        if self.input_features:
            if inputs is None:
                raise ValueError(f"this readout takes the input too (input_features={self.input_features})")
            if inputs.shape[-1] != self.input_features:
                raise ValueError(f"inputs have {inputs.shape[-1]} features, expected {self.input_features}")
            states = torch.cat([states, inputs.to(states.dtype)], dim=-1)
        if states.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"readout expects {self.weight.shape[1]} features, got {states.shape[-1]}")
        return states

    def forward(self, states: Tensor, inputs: Tensor | None = None) -> Tensor:
        """``W [h; x] + b`` over any leading dimensions."""
        feats = self.features(states, inputs)
        return F.linear(feats, self.weight.to(feats.dtype), self.bias.to(feats.dtype))

    def reset_statistics(self) -> None:
        self.xtx.zero_()
        self.xty.zero_()

    @torch.no_grad()
    def accumulate(self, states: Tensor, targets: Tensor, inputs: Tensor | None = None, mask: Tensor | None = None,
                   washout: int | None = None) -> int:
        """Add one batch to ``X̃ᵀX̃`` and ``X̃ᵀY``; returns the number of rows used.

        ``states [T, B, H]`` and ``targets [T, B, O]`` are time-major (``inputs [T, B, I]`` likewise); 2-D
        ``[N, H]`` rows are taken as they are (no washout). ``mask [T, B]`` (or ``[N]``) keeps only ``True`` rows;
        the first ``washout`` steps (default: the readout's) of every sequence are dropped. A NaN or infinity in a
        row that enters the fit raises ``ValueError`` naming its position, and leaves the statistics unchanged.
        """
        feats = self.features(states, inputs)
        if targets.shape[:-1] != feats.shape[:-1] or targets.shape[-1] != self.out_features:
            raise ValueError(f"targets {tuple(targets.shape)} do not match states {tuple(states.shape)} with "
                             f"{self.out_features} outputs")
        washout = self.washout if washout is None else washout
        if feats.dim() == 3 and washout >= feats.shape[0]:
            raise ValueError(f"washout={washout} is not shorter than the sequence ({feats.shape[0]} steps): no step is "
                             "left to fit the readout; lower washout or use longer windows")
        if mask is not None and mask.shape != feats.shape[:-1]:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match {tuple(feats.shape[:-1])}")
        used_feats, used_targets, used_mask = feats, targets, mask
        if feats.dim() == 3 and washout:
            used_feats, used_targets = feats[washout:], targets[washout:]
            used_mask = None if mask is None else mask[washout:]
        used_feats = used_feats.reshape(-1, feats.shape[-1])
        used_targets = used_targets.reshape(-1, targets.shape[-1])
        if used_mask is not None:
            keep = used_mask.reshape(-1).to(feats.device, torch.bool)
            used_feats, used_targets = used_feats[keep], used_targets[keep]
        xtx, xty = torch.zeros_like(self.xtx), torch.zeros_like(self.xty)
        # X̃ = [X, 1] in float64, one chunk at a time (bounded memory) in one reused buffer: a single product gives
        # XᵀX, the feature sums and the count
        buffer = torch.ones(min(self.chunk_rows, used_feats.shape[0]), used_feats.shape[1] + 1, dtype=torch.float64,
                            device=used_feats.device)
        for rows in range(0, used_feats.shape[0], self.chunk_rows):
            chunk = used_feats[rows:rows + self.chunk_rows]
            design = buffer[:chunk.shape[0]]
            design[:, :-1] = chunk
            y = used_targets[rows:rows + self.chunk_rows].to(torch.float64)
            if design.device.type == "cpu":  # NumPy spots X̃ᵀX̃ and calls BLAS syrk: half the flops of a gemm
                dn = design.numpy()
                xtx += torch.from_numpy(dn.T @ dn)
                xty += torch.from_numpy(dn.T @ y.numpy())
            else:
                xtx.addmm_(design.T, design)
                xty.addmm_(design.T, y)
        # a NaN or infinity anywhere in the rows used reaches the diagonal (sums of squares) or the target sums;
        # checking those costs nothing, and only then are the inputs searched for the culprit's position
        if not (bool(torch.isfinite(xtx.diagonal()).all()) and bool(torch.isfinite(xty[-1]).all())):
            self._raise_non_finite(states, targets, inputs)
        self.xtx += xtx
        self.xty += xty
        return used_feats.shape[0]

    @staticmethod
    def _raise_non_finite(states: Tensor, targets: Tensor, inputs: Tensor | None) -> None:
        """Name the first NaN or infinite value of the batch (called once the statistics turned non-finite)."""
        for name, tensor in (("inputs", inputs), ("targets", targets), ("reservoir states", states)):
            if tensor is not None and not bool(torch.isfinite(tensor).all()):
                where = [int(i) for i in (~torch.isfinite(tensor)).nonzero()[0]]
                at = f"time step {where[0]}, sequence {where[1]}" if tensor.dim() == 3 else f"row {where[0]}"
                raise ValueError(f"the {name} contain NaN or infinite values (first at {at} of the batch); clean "
                                 "the series before fitting the ridge readout")
        raise ValueError("the ridge statistics overflowed float64: scale the states or targets down")

    def all_reduce_statistics(self) -> None:
        """Sum the statistics over all processes when ``torch.distributed`` is initialised (no-op otherwise)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self.xtx, op=dist.ReduceOp.SUM)
            dist.all_reduce(self.xty, op=dist.ReduceOp.SUM)

    @torch.no_grad()
    def solve(self, ridge: float | None = None, all_reduce: bool = True) -> None:
        """Fit ``weight`` and ``bias`` from the accumulated statistics (all-reduced first under DDP)."""
        if all_reduce:
            self.all_reduce_statistics()
        weight, bias = ridge_solve(self.xtx, self.xty, self.ridge if ridge is None else ridge, self.fit_bias)
        self.weight.copy_(weight.to(self.weight.dtype))
        self.bias.copy_(bias.to(self.bias.dtype))

    def fit(self, states: Tensor, targets: Tensor, inputs: Tensor | None = None, mask: Tensor | None = None
            ) -> RidgeReadout:
        """Reset, accumulate one batch and solve."""
        self.reset_statistics()
        self.accumulate(states, targets, inputs, mask)
        self.solve()
        return self

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, ridge={self.ridge}, "
                f"washout={self.washout}, input_features={self.input_features}")
