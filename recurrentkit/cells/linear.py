"""``LinearRecurrentCell``: the base of cells whose recurrence is linear in the state, run by a parallel scan.

A cell whose update is ``h_t = a_t ⊙ h_{t-1} + b_t``, with ``a_t`` and ``b_t`` computed from the input alone,
needs no time loop: :meth:`~LinearRecurrentCell.project_input` computes every step's gates in one matmul and
:func:`~recurrentkit.cells.scan.linear_scan` computes every state. A subclass only declares its coefficients::

    @register_cell("ema")
    class EMACell(LinearRecurrentCell):
        '''h_t = λ h_{t-1} + (1 - λ) W x_t, one learned decay λ = σ(θ) per unit.'''

        def __init__(self, input_size, hidden_size, scan="linear"):
            super().__init__(input_size, hidden_size, scan=scan)
            self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size) / input_size**0.5)
            self.decay_logit = nn.Parameter(torch.zeros(hidden_size))

        def project_input(self, x):
            return F.linear(x, self.weight_ih)

        def coefficients(self, u):
            decay = torch.sigmoid(self.decay_logit).expand_as(u)
            return decay, (1 - decay) * u

and gets :meth:`step` (generation, state streaming), the scan for whole sequences (declared as its
:attr:`~recurrentkit.RecurrentCell.kernel`), padded batches, reversed directions and every option of
:class:`~recurrentkit.Recurrent` for free.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import min_kernels
from .base import RecurrentCell
from .init import uniform_
from .kernels import SequenceKernel
from .scan import log_linear_scan, scan_coefficients

SCAN_MODES = ("linear", "log")


class LinearState(NamedTuple):
    h: Tensor


class ScanKernel(SequenceKernel):
    """The whole-sequence kernel of every :class:`LinearRecurrentCell`: one scan instead of ``T`` steps, with and
    without autograd (the scan has its own backward), padded batches included."""

    when: ClassVar[str] = "always"

    @classmethod
    def run(cls, cell: LinearRecurrentCell, u: Tensor, state: LinearState, mask: Tensor | None
            ) -> tuple[Tensor, LinearState]:
        return cell.scan_projected(u, state, mask)


class LinearRecurrentCell(RecurrentCell):
    """Base of cells with ``h_t = a_t ⊙ h_{t-1} + b_t``, ``(a_t, b_t) = coefficients(u_t)``, output ``y_t = h_t``.

    Subclasses implement :meth:`project_input` and :meth:`coefficients` (elementwise over time: the same function
    serves one step ``[B, G]`` and a whole sequence ``[T, B, G]``), and may override :meth:`log_coefficients`
    with a numerically stable form for ``scan="log"``.

    Args:
        scan: ``"linear"`` (the chunked scan of :func:`~recurrentkit.cells.scan.linear_scan`, hand-written
            backward; any sign) or ``"log"`` (Heinsen's log-space scan,
            :func:`~recurrentkit.cells.scan.log_linear_scan`; needs ``a, b > 0``; several times slower on CPU).
        chunk_size: steps per chunk of the scan (``None``: chosen from the sequence length and width).

    Class attributes:
        kernel: :class:`ScanKernel`, the declaration :func:`~recurrentkit.cells.kernels.choose_path` reads: the
            layer (and :meth:`forward_sequence`) runs the scan for whole sequences, padded batches and both
            directions, with or without autograd; ``Recurrent(compile=True)`` and a caller under ``torch.compile``
            take the step loop instead.
        linear_recurrence: ``True``: ``h_t`` is linear in ``h_{t-1}``.
    """

    kernel = ScanKernel
    linear_recurrence: ClassVar[bool] = True
    #: Name of a compiled whole-sequence pass in :mod:`~recurrentkit.cells.min_kernels` (``"min_gru"``,
    #: ``"min_lstm"``) that replaces the generic scan on CPU with Numba installed, float32 state, ``scan="linear"``
    #: and the default ``chunk_size``; ``None``: always the generic scan.
    compiled_pass: ClassVar[str | None] = None
    state_type = LinearState

    def __init__(self, input_size: int, hidden_size: int, scan: str = "linear", chunk_size: int | None = None
                 ) -> None:
        super().__init__(input_size, hidden_size)
        if scan not in SCAN_MODES:
            raise ValueError(f"scan must be one of {SCAN_MODES}, got {scan!r}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
        self.scan, self.chunk_size = scan, chunk_size

    # --- what a subclass declares ---------------------------------------------------------------------------------
    def coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``(a, b)``, each shaped like the state (``[..., hidden_size]``), from the projected input ``u``."""
        raise NotImplementedError(f"{type(self).__name__} must implement coefficients(u) -> (a, b)")

    #: Optional hand-written ``coefficients_backward(u, grad_a, grad_b, out)``: writes ``dL/du`` into ``out`` given
    #: ``dL/da`` and ``dL/db``. Only for coefficients that read no parameter; ``None``: autograd (recomputed per block).
    coefficients_backward = None

    def log_coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a, log b)`` for ``scan="log"``; the default takes the log of :meth:`coefficients` (``a, b > 0``)."""
        a, b = self.coefficients(u)
        return torch.log(a), torch.log(b)

    # --- what the base provides -----------------------------------------------------------------------------------
    def step(self, u_t: Tensor, state: LinearState) -> tuple[Tensor, LinearState]:
        """One step: ``h_t = a_t ⊙ h_{t-1} + b_t`` (generation, streaming; the reference for the scan)."""
        a, b = self.coefficients(u_t)
        h = torch.addcmul(b, a, state[0])
        return h, self.state_type(h)

    def scan_projected(self, u: Tensor, state: LinearState, mask: Tensor | None = None
                       ) -> tuple[Tensor, LinearState]:
        """The whole sequence from ``u = project_input(x)`` [T, B, G] by a parallel scan; ``mask`` [T, B]
        (``True`` = real step) makes padded steps identities (``a = 1, b = 0``: the state is kept) with zero output.
        This is :class:`ScanKernel`'s body; call :meth:`forward_sequence` (or the layer) rather than this."""
        h0 = state[0]
        if (self.compiled_pass is not None and self.scan == "linear" and self.chunk_size is None
                and min_kernels.applies(u, h0)):
            outputs, last = min_kernels.run(self.compiled_pass, u, h0, mask)
            return outputs, self.state_type(last)
        keep = None if mask is None else mask.unsqueeze(-1)
        if self.scan == "log":
            log_a, log_b = self.log_coefficients(u)
            if keep is not None:
                log_a = torch.where(keep, log_a, 0.0)
                log_b = torch.where(keep, log_b, float("-inf"))
            h = log_linear_scan(log_a.to(h0.dtype), log_b.to(h0.dtype), h0,
                                **({} if self.chunk_size is None else {"chunk_size": self.chunk_size}))
        else:
            h = scan_coefficients(self, u, h0, mask, chunk_size=self.chunk_size)
        final = self.state_type(h[-1])
        return (h if keep is None else h * keep.to(h.dtype)), final

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + (", scan='log'" if self.scan == "log" else "")


class ProjectedLinearCell(LinearRecurrentCell):
    """A :class:`LinearRecurrentCell` whose gates all come from one input projection ``u_t = W x_t + b``,
    ``W`` [``num_projections * hidden_size``, ``input_size``] (``weight_ih``, ``bias_ih``); there is no
    hidden-to-hidden matrix. Subclasses set :attr:`num_projections` and implement :meth:`coefficients`."""

    num_projections: ClassVar[int] = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, scan: str = "linear",
                 chunk_size: int | None = None) -> None:
        super().__init__(input_size, hidden_size, scan=scan, chunk_size=chunk_size)
        size = self.num_projections * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            uniform_(p, self.input_size)  # nn.Linear's bound 1/sqrt(fan_in): there is no hidden-to-hidden matrix

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)
