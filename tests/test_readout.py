"""RidgeReadout: closed form vs lstsq, shard statistics, washout, masks, a 2-process gloo run."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from recurrentkit.nn.readout import RidgeReadout, ridge_solve


def _data(n=300, features=6, outputs=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g, dtype=torch.float64)
    w = torch.randn(features, outputs, generator=g, dtype=torch.float64)
    y = x @ w + 0.7 + 0.1 * torch.randn(n, outputs, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("ridge", [0.0, 1e-3, 2.5])
def test_closed_form_equals_lstsq_on_augmented_system(ridge):
    x, y = _data()
    readout = RidgeReadout(6, 2, ridge=ridge).double()
    readout.fit(x, y)
    # min ||[X 1] W - Y||² + λ||W_x||²  ==  lstsq of [[X, 1], [sqrt(λ) I, 0]] against [[Y], [0]]
    n, f = x.shape
    design = torch.cat([torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], 1),
                        torch.cat([ridge ** 0.5 * torch.eye(f, dtype=x.dtype), torch.zeros(f, 1, dtype=x.dtype)], 1)])
    rhs = torch.cat([y, torch.zeros(f, 2, dtype=y.dtype)])
    solution = torch.linalg.lstsq(design, rhs).solution
    torch.testing.assert_close(readout.weight.detach(), solution[:-1].T, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(readout.bias.detach(), solution[-1], atol=1e-9, rtol=1e-9)


def test_bias_is_not_regularised():
    x, y = _data()
    readout = RidgeReadout(6, 2, ridge=1e6).double().fit(x, y)
    # a huge ridge shrinks the weights to ~0, the bias goes to the target mean
    assert readout.weight.abs().max() < 1e-3
    torch.testing.assert_close(readout.bias.detach(), y.mean(0), atol=1e-3, rtol=0)


def test_shard_statistics_sum_to_full_statistics():
    x, y = _data(n=301)
    full = RidgeReadout(6, 2, ridge=0.1)
    full.accumulate(x, y)
    shards = [RidgeReadout(6, 2, ridge=0.1) for _ in range(3)]
    for shard, idx in zip(shards, torch.arange(301).tensor_split(3)):
        shard.accumulate(x[idx], y[idx])
    torch.testing.assert_close(sum(s.xtx for s in shards), full.xtx, atol=1e-10, rtol=1e-12)
    torch.testing.assert_close(sum(s.xty for s in shards), full.xty, atol=1e-10, rtol=1e-12)
    assert sum(s.num_samples for s in shards) == full.num_samples == 301


def test_batches_accumulate_like_one_pass():
    x, y = _data(n=200)
    one = RidgeReadout(6, 2, ridge=0.1).fit(x, y)
    many = RidgeReadout(6, 2, ridge=0.1)
    for idx in torch.arange(200).split(37):
        many.accumulate(x[idx], y[idx])
    many.solve()
    torch.testing.assert_close(many.weight, one.weight)
    torch.testing.assert_close(many.bias, one.bias)


def test_washout_drops_exactly_the_first_steps():
    g = torch.Generator().manual_seed(1)
    states = torch.randn(20, 3, 4, generator=g)  # [T, B, H]
    targets = torch.randn(20, 3, 1, generator=g)
    washed = RidgeReadout(4, 1, washout=5)
    assert washed.accumulate(states, targets) == 15 * 3
    manual = RidgeReadout(4, 1)
    manual.accumulate(states[5:].reshape(-1, 4), targets[5:].reshape(-1, 1))
    torch.testing.assert_close(washed.xtx, manual.xtx)
    torch.testing.assert_close(washed.xty, manual.xty)
    # one step more or less changes the statistics
    off_by_one = RidgeReadout(4, 1, washout=4)
    off_by_one.accumulate(states, targets)
    assert not torch.allclose(off_by_one.xtx, manual.xtx)


def test_mask_and_input_to_readout():
    g = torch.Generator().manual_seed(2)
    states, inputs = torch.randn(10, 2, 4, generator=g), torch.randn(10, 2, 3, generator=g)
    targets = torch.randn(10, 2, 2, generator=g)
    mask = torch.rand(10, 2, generator=g) > 0.3
    readout = RidgeReadout(4, 2, input_features=3)
    rows = readout.accumulate(states, targets, inputs, mask=mask)
    assert rows == int(mask.sum())
    feats = torch.cat([states, inputs], -1)[mask].double()
    feats = torch.cat([feats, torch.ones(len(feats), 1, dtype=feats.dtype)], 1)
    torch.testing.assert_close(readout.xtx, feats.T @ feats)
    readout.solve()
    assert readout(states, inputs).shape == (10, 2, 2)
    with pytest.raises(ValueError, match="takes the input"):
        readout(states)


def test_errors():
    readout = RidgeReadout(3, 1)
    with pytest.raises(ValueError, match="no samples"):
        readout.solve()
    with pytest.raises(TypeError, match="float64"):
        ridge_solve(torch.eye(4), torch.zeros(4, 1), 0.1)
    with pytest.raises(ValueError, match="features"):
        readout.accumulate(torch.randn(5, 4), torch.randn(5, 1))
    with pytest.raises(ValueError, match="ridge"):
        RidgeReadout(3, 1, ridge=-1.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, path: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, y = _data(n=257)
        readout = RidgeReadout(6, 2, ridge=0.05)
        idx = torch.arange(257).tensor_split(world)[rank]  # unequal shards
        readout.accumulate(x[idx], y[idx])
        readout.solve()  # all-reduces the statistics first
        if rank == 1:
            torch.save({"weight": readout.weight.detach(), "bias": readout.bias.detach(), "n": readout.num_samples},
                       path)
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_run_gives_the_single_process_readout(tmp_path):
    path = str(tmp_path / "rank1.pt")
    mp.spawn(_worker, args=(2, _free_port(), path), nprocs=2, join=True)
    result = torch.load(path)
    x, y = _data(n=257)
    single = RidgeReadout(6, 2, ridge=0.05).fit(x, y)
    assert result["n"] == 257  # rank 1 holds the all-reduced statistics
    torch.testing.assert_close(result["weight"], single.weight.detach(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(result["bias"], single.bias.detach(), atol=1e-6, rtol=1e-6)


def test_rank_deficient_without_ridge_gives_the_least_squares_fit():
    x, y = _data(n=120, features=4)
    x = torch.cat([x, x[:, :1]], dim=1)  # a duplicated column: XᵀX is singular
    readout = RidgeReadout(5, 2, ridge=0.0).double().fit(x, y)
    design = torch.cat([x, torch.ones(120, 1, dtype=x.dtype)], 1)
    fitted = design @ torch.linalg.lstsq(design, y, driver="gelsd").solution
    assert torch.isfinite(readout.weight).all()
    torch.testing.assert_close(readout(x), fitted, atol=1e-6, rtol=1e-6)
