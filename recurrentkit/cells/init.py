"""Weight initialisers shared by the cells: torch-default uniform, orthogonal, identity, seeded sparse reservoir."""

from __future__ import annotations

import math

import torch
from torch import Tensor

RECURRENT_INITS = ("uniform", "orthogonal", "identity", "xavier")
_MAX_DRAWS = 100


def uniform_(tensor: Tensor, hidden_size: int) -> Tensor:
    """``U(-1/sqrt(H), 1/sqrt(H))``: what ``torch.nn.RNN/LSTM/GRU`` use for every weight and bias."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


def init_recurrent_(weight: Tensor, scheme: str, hidden_size: int, *, gates: int = 1, gain: float = 1.0) -> Tensor:
    """Initialise a hidden-to-hidden matrix ``[gates * H, H]`` block by block.

    ``identity`` gives the IRNN of Le et al. (2015): ``U = gain * I`` (use with ``relu``).
    """
    if scheme not in RECURRENT_INITS:
        raise ValueError(f"unknown recurrent init {scheme!r}; choose one of {RECURRENT_INITS}")
    with torch.no_grad():
        for block in weight.chunk(gates, dim=0):
            if scheme == "uniform":
                uniform_(block, hidden_size)
            elif scheme == "orthogonal":
                torch.nn.init.orthogonal_(block, gain=gain)
            elif scheme == "identity":
                if block.shape[0] != block.shape[1]:
                    raise ValueError(f"identity init needs a square block, got {tuple(block.shape)}")
                block.copy_(torch.eye(block.shape[0], dtype=block.dtype) * gain)
            else:
                torch.nn.init.xavier_uniform_(block, gain=gain)
    return weight


def spectral_radius(matrix: Tensor) -> float:
    """Largest absolute eigenvalue of a square matrix (computed in float64)."""
    return float(torch.linalg.eigvals(matrix.detach().to(torch.float64).cpu()).abs().max())


def sparse_reservoir(size: int, *, density: float, radius: float, generator: torch.Generator,
                     distribution: str = "normal") -> Tensor:
    """A ``size x size`` matrix with a fraction ``density`` of non-zeros, rescaled to spectral radius ``radius``."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    nnz = max(1, round(density * size * size))
    for _ in range(_MAX_DRAWS):  # a very sparse (small) matrix can be nilpotent: draw again from the same generator
        flat = torch.zeros(size * size, dtype=torch.float64)
        positions = torch.randperm(size * size, generator=generator)[:nnz]
        if distribution == "normal":
            values = torch.randn(nnz, generator=generator, dtype=torch.float64)
        elif distribution == "uniform":
            values = torch.rand(nnz, generator=generator, dtype=torch.float64) * 2 - 1
        else:
            raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")
        flat[positions] = values
        matrix = flat.view(size, size)
        current = spectral_radius(matrix)
        if current > 1e-12:
            return matrix * (radius / current)
    raise ValueError(f"every sampled {size}x{size} reservoir with density {density} was nilpotent (spectral radius 0) "
                     f"in {_MAX_DRAWS} draws; raise the density")
