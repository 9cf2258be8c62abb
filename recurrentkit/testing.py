"""``check_cell``: the generic checks the library runs on every registered cell, for users to run on theirs.

>>> from recurrentkit.testing import check_cell
>>> check_cell("lstm", peepholes=True)  # doctest: +ELLIPSIS
['valid class', 'shapes', ...]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .cells.base import RecurrentCell, detach_state
from .cells.kernels import kernel_applies, run_path
from .cells.registry import _lookup, validate_cell, validate_cell_class
from .nn.recurrent import Recurrent

__all__ = ["check_cell"]


def check_cell(cell: type[RecurrentCell] | str, input_size: int = 3, hidden_size: int = 4, *, batch: int = 3,
               steps: int = 5, gradcheck: bool = True, atol: float = 1e-5, rtol: float = 1e-5, seed: int = 0,
               **kwargs: Any) -> list[str]:
    """Run the generic cell checks on ``cell`` (a class, a registered name or an import path) built with ``kwargs``.

    Checks, each raising ``AssertionError`` naming the cell and the check:

    * **valid class**: what ``@register_cell`` checks (``state_type``, ``step`` or ``recurrent_weight`` +
      ``pointwise``, ...) and the built cell's ``state_size``/``output_size``;
    * **shapes**: state and outputs ``[T, B, output_size]``, finite; one call ``cell(x_t)`` equals the first step;
    * **paths**: every path the cell can take (its ``kernel``, ``HoistedLoop``) gives the step loop's outputs, final
      state and gradients (input, initial state, every parameter), in float64, on a full batch and on a mask with
      holes; with a ``fused_mode``, the fused ``torch.nn`` kernel gives the step loop's outputs and gradients;
    * **gradients**: every parameter and the input get a non-zero gradient, buffers none; ``torch.autograd.gradcheck``
      in float64 on the training path, padded batch included (``gradcheck=False`` skips it);
    * **state carry**: two halves with the carried state equal one pass (2 layers);
    * **padded batch**: a padded, bidirectional 2-layer batch equals each sequence run alone, with zero outputs and
      no effect of the values at padded steps, with and without gradients.

    Keep the sizes small: the checks run the cell a few dozen times. Returns the names of the checks that ran.
    """
    cls = _lookup(cell) if isinstance(cell, str) else cell
    name = getattr(cls, "__qualname__", repr(cls))
    if kwargs:
        name += "(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"
    tol = {"atol": atol, "rtol": rtol}
    done: list[str] = []

    def check(label: str, fn: Callable[[], None]) -> None:
        torch.manual_seed(seed)
        try:
            fn()
        except AssertionError as err:
            raise AssertionError(f"check_cell({name}): {label}: {err}") from err
        done.append(label)

    def build(dtype: torch.dtype = torch.float64) -> RecurrentCell:
        torch.manual_seed(seed)
        return validate_cell(cls(input_size, hidden_size, **kwargs)).to(dtype)

    def layer(**options: Any) -> Recurrent:
        torch.manual_seed(seed)
        return Recurrent(cls, input_size, hidden_size, **kwargs, **options).double()

    lengths = torch.tensor([steps] + [max(1, steps - 2 - i) for i in range(batch - 1)])
    holes = torch.rand(steps, batch, generator=torch.Generator().manual_seed(seed)) > 0.3
    holes[:, -1] = False  # a row that is padding throughout keeps its initial state

    def valid_class() -> None:
        assert isinstance(cls, type) and issubclass(cls, RecurrentCell), f"{cls!r} is not a RecurrentCell subclass"
        validate_cell_class(cls)
        build()

    def shapes() -> None:
        c = build()
        state = c.initial_state(batch)
        assert isinstance(state, c.state_type), f"initial_state returned {type(state).__name__}"
        assert [tuple(s.shape) for s in state] == [(batch, n) for n in c.state_size], "initial state shapes"
        assert all(s.dtype == torch.float64 for s in state), "initial_state follows the cell's dtype"
        x = torch.randn(steps, batch, input_size, dtype=torch.float64)
        out, final = c.forward_sequence(x, state)
        assert out.shape == (steps, batch, c.output_size), f"outputs {tuple(out.shape)}"
        assert isinstance(final, c.state_type) and [tuple(s.shape) for s in final] == [(batch, n) for n in c.state_size]
        assert torch.isfinite(out).all() and all(torch.isfinite(s).all() for s in final), "non-finite values"
        y0, s1 = c(x[0])
        assert isinstance(s1, c.state_type), "cell(x_t) returns the state type"
        torch.testing.assert_close(y0, out[0], **tol, msg=lambda m: f"cell(x[0]) differs from the first step: {m}")

    def run_and_grad(c: RecurrentCell, path: str, x: Tensor, start: list[Tensor], mask: Tensor | None,
                     weights: Tensor) -> list[Tensor]:
        c.zero_grad()
        xx, state = x.clone().requires_grad_(), [s.clone().requires_grad_() for s in start]
        out, final = run_path(path, c, xx, c.state_type(*state), mask)
        loss = (out * weights).sum() + sum(f.square().sum() for f in final)
        params = [p for p in c.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, [xx, *state, *params], allow_unused=True)
        return [out.detach(), *(f.detach() for f in final), *(torch.zeros(()) if g is None else g for g in grads)]

    def paths() -> None:
        c = build()
        x = torch.randn(steps, batch, input_size, dtype=torch.float64)
        start = [0.5 * torch.randn(batch, n, dtype=torch.float64) for n in c.state_size]
        weights = torch.randn(steps, batch, c.output_size, dtype=torch.float64)
        others = (["hoisted"] if c.recurrent_weight() is not None else []) + (
            ["kernel"] if kernel_applies(c, grad=True) else [])
        for mask in (None, holes):
            reference = run_and_grad(c, "loop", x, start, mask, weights)
            if mask is not None:
                assert reference[0][~mask].abs().max() == 0, "the step loop gives zero outputs at padded steps"
            for path in others:
                for ours, ref in zip(run_and_grad(c, path, x, start, mask, weights), reference):
                    torch.testing.assert_close(ours, ref, **tol, msg=lambda m, p=path, k=mask is not None:
                                               f"path {p!r}{' with a mask' if k else ''} differs from the step loop: "
                                               f"{m}")
            if kernel_applies(c, grad=False):
                with torch.no_grad():
                    ref_out, ref_final = run_path("loop", c, x, c.state_type(*start), mask)
                    out, final = run_path("kernel", c, x, c.state_type(*start), mask)
                for ours, ref in zip([out, *final], [ref_out, *ref_final]):
                    torch.testing.assert_close(ours, ref, **tol, msg=lambda m: f"no-grad kernel differs: {m}")
        if c.fused_mode is not None:
            for bidirectional in (False, True):
                fused, loop = layer(bidirectional=bidirectional), layer(bidirectional=bidirectional, force_loop=True)
                loop.load_state_dict(fused.state_dict())
                results = []
                for module in (fused, loop):
                    xx = x.clone().requires_grad_()
                    out, final = module(xx, lengths=lengths)
                    (out.square().sum() + sum(s.square().sum() for st in final for s in st)).backward()
                    results.append([out, *(s for st in final for s in st), xx.grad,
                                    *(p.grad for p in module.parameters())])
                for ours, ref in zip(*results):
                    torch.testing.assert_close(ours, ref, **tol, msg=lambda m: f"fused kernel differs from the step "
                                                                             f"loop: {m}")

    def gradients() -> None:
        c = build()
        x = torch.randn(steps, batch, input_size, dtype=torch.float64, requires_grad=True)
        out, final = c.forward_sequence(x, c.initial_state(batch))
        (out.square().sum() + sum(s.square().sum() for s in final)).backward()
        missing = [n for n, p in c.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
        assert not missing, f"no gradient reached {missing}"
        assert all(b.grad is None for b in c.buffers()), "a buffer got a gradient"
        assert x.grad is not None and x.grad.abs().sum() > 0, "no gradient reached the input"
        if not gradcheck:
            return
        small = layer(force_loop=True)
        names = [n for n, _ in small.named_parameters()]
        fields = len(small.cells()[0].state_size)
        cell_ = small.cells()[0]

        def f(x, *flat):
            params = dict(zip(names, flat[:len(names)]))
            state = [cell_.state_type(*flat[len(names):len(names) + fields])]
            out, final = torch.func.functional_call(small, params, (x,), {"state": state, "lengths": lengths})
            return (out, *final[0])

        xg = torch.randn(steps, batch, input_size, dtype=torch.float64, requires_grad=True)
        state = [(0.5 * torch.randn(batch, n, dtype=torch.float64)).requires_grad_() for n in cell_.state_size]
        params = [p.detach().clone().requires_grad_() for p in small.parameters()]
        assert torch.autograd.gradcheck(f, (xg, *params, *state), eps=1e-6, atol=1e-5), "gradcheck failed"

    def state_carry() -> None:
        two = layer(num_layers=2)
        x = torch.randn(steps + 2, batch, input_size, dtype=torch.float64)
        cut = (steps + 2) // 2
        full, full_state = two(x)
        first, state = two(x[:cut])
        second, second_state = two(x[cut:], detach_state(state))
        torch.testing.assert_close(torch.cat([first, second]), full, **tol)
        for a, b in zip(second_state, full_state):
            for ta, tb in zip(a, b):
                torch.testing.assert_close(ta, tb, **tol)

    def padded_batch() -> None:
        bi = layer(num_layers=2, bidirectional=True)
        x = torch.randn(steps, batch, input_size, dtype=torch.float64)
        pad = torch.arange(steps).unsqueeze(1) >= lengths
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                out, final = bi(x, lengths=lengths)
                assert out.shape == (steps, batch, bi.output_size), "bidirectional output size"
                assert out[pad].abs().max() == 0 if pad.any() else True, "non-zero outputs at padded steps"
                for b, n in enumerate(lengths.tolist()):
                    alone_out, alone_final = bi(x[:n, b:b + 1])
                    torch.testing.assert_close(out[:n, b:b + 1], alone_out, **tol,
                                               msg=lambda m, b=b: f"padded row {b} differs from the row alone: {m}")
                    for ours, alone in zip(final, alone_final):
                        for ta, tb in zip(ours, alone):
                            torch.testing.assert_close(ta[b:b + 1], tb, **tol,
                                                       msg=lambda m, b=b: f"final state of padded row {b}: {m}")
                noisy = x.clone()
                noisy[pad] = 1e3
                noisy_out, _ = bi(noisy, lengths=lengths)
                torch.testing.assert_close(noisy_out, out, **tol, msg=lambda m: f"padded values leak: {m}")

    check("valid class", valid_class)
    check("shapes", shapes)
    check("paths", paths)
    check("gradients", gradients)
    check("state carry", state_carry)
    check("padded batch", padded_batch)
    return done
