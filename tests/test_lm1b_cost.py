"""The cost floor of the One Billion Word recipes (``benchmarks/lm1b_throughput.py --flops``)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lm1b_throughput", ROOT / "benchmarks" / "lm1b_throughput.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_flops_per_token_equal_six_times_the_multiply_adds():
    """Forward 2 and backward 4 FLOPs per multiply-add, less the gradient of the (constant) zero initial state."""
    batch, bptt, emb, hidden, vocab = 3, 7, 8, 16, 50
    model = bench.build_model(dict(embedding_size=emb, hidden_size=hidden, num_layers=1, cell="lstm",
                                   output="softmax"), vocab, "meta")
    macs_per_token = 4 * hidden * (emb + hidden) + hidden * vocab
    expected = 6 * macs_per_token * batch * bptt - 2 * 4 * hidden * hidden * batch
    assert bench.training_flops_per_token(model, batch, bptt) == pytest.approx(expected / (batch * bptt))


def test_adaptive_count_follows_the_synthetic_cluster_shares():
    cutoffs, vocab = [10, 30], 50
    shares = [bench.log_uniform_fraction(a, b, vocab) for a, b in zip([0, *cutoffs], [*cutoffs, vocab])]
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] > shares[1] > shares[2]  # frequent ids first
    kwargs = dict(embedding_size=8, hidden_size=16, num_layers=1, cell="lstm", cutoffs=cutoffs)
    adaptive = bench.training_flops_per_token(bench.build_model({**kwargs, "output": "adaptive"}, vocab, "meta"))
    full = bench.training_flops_per_token(bench.build_model({**kwargs, "output": "softmax"}, vocab, "meta"))
    head_macs = 16 * (cutoffs[0] + 2)
    tail_macs = [16 * 4 + 4 * 20, 16 * 1 + 1 * 20]  # div_value 4: projections 16/4 and 16/16
    expected_output = 6 * (head_macs + shares[1] * tail_macs[0] + shares[2] * tail_macs[1])
    # rel: each cluster gets round(share * 2560) rows of the default 128 x 20 batch, not the exact share
    assert adaptive - full == pytest.approx(expected_output - 6 * 16 * vocab, rel=0.02)


def test_optimizer_traffic():
    assert bench.optimizer_bytes_per_step(10, {"class_path": "torch.optim.Adagrad"}) == 10 * 4 * 6
    assert bench.optimizer_bytes_per_step(10, {"class_path": "torch.optim.Adam"}) == 10 * 4 * 8
    assert bench.optimizer_bytes_per_step(10, {}) == 10 * 4 * 4
    with pytest.raises(ValueError, match="no state count"):
        bench.optimizer_bytes_per_step(10, {"class_path": "torch.optim.LBFGS"})


def test_flops_mode_prints_a_floor_for_every_recipe(capsys):
    bench.main(["--flops", "--vocab-size", "250000"])
    lines = capsys.readouterr().out.strip().splitlines()
    names = sorted(p.stem for p in (ROOT / "recipes" / "lm1b").glob("*.yaml") if p.stem != "kn5")
    assert [line.split()[0] for line in lines] == names
    assert all("floor >=" in line and "MFLOP/token" in line for line in lines)
