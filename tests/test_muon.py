"""The batched Muon is torch's Muon: same updates, same state, interchangeable checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch

from tinygpt_tui.engine.muon import BatchedMuon


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    shapes = [(48, 16), (16, 16), (48, 16), (16, 64), (64, 16), (16, 16)]  # repeated shapes, tall and wide
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]


def _grads(params, step):
    g = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust", [None, "match_rms_adamw"])
def test_batched_muon_matches_torch_muon(nesterov, adjust):
    a, b = _params(0), _params(0)
    kw = dict(lr=0.05, weight_decay=0.1, momentum=0.9, nesterov=nesterov, adjust_lr_fn=adjust)
    ours, theirs = BatchedMuon(a, **kw), torch.optim.Muon(b, **kw)
    for step in range(4):
        _grads(a, step)
        _grads(b, step)
        ours.step()
        theirs.step()
    for pa, pb in zip(a, b):
        moved = (pb.detach() - _params(0)[0].detach()).abs().max() if pa.shape == (48, 16) else None
        assert torch.allclose(pa, pb, atol=1e-4, rtol=0), (pa - pb).abs().max()  # updates are ~5e-3: a real difference shows
        assert moved is None or moved > 0.05  # the comparison is not vacuous: the weights did move
        assert torch.equal(ours.state[pa]["momentum_buffer"], theirs.state[pb]["momentum_buffer"])


def test_state_dicts_are_interchangeable():
    a, b = _params(1), _params(1)
    ours = BatchedMuon(a, lr=0.02)
    _grads(a, 0)
    ours.step()
    theirs = torch.optim.Muon(b, lr=0.02)
    theirs.load_state_dict(copy.deepcopy(ours.state_dict()))  # (a shallow load would share the buffers)
    with torch.no_grad():
        for pa, pb in zip(a, b):
            pb.copy_(pa)
    _grads(a, 1)
    _grads(b, 1)
    ours.step()
    theirs.step()
    for pa, pb in zip(a, b):
        assert torch.allclose(pa, pb, atol=1e-4, rtol=0)


def test_rejects_a_non_matrix():
    p = torch.nn.Parameter(torch.randn(5))
    opt = BatchedMuon([torch.nn.Parameter(torch.randn(3, 3))], lr=0.02)
    opt.param_groups[0]["params"].append(p)
    p.grad = torch.randn(5)
    with pytest.raises(ValueError, match="2-D"):
        opt.step()


def test_fp32_iterations_are_closer_to_the_exact_orthogonalization():
    """A CPU without fast bf16 runs the Newton-Schulz iterations in fp32 (engine/muon.py): the result is
    fp32, and nearer to the fp64 iteration than torch's bf16 one (the same algorithm, less rounding)."""
    from tinygpt_tui.engine.muon import newton_schulz

    g = torch.randn(3, 48, 16, generator=torch.Generator().manual_seed(5))
    coeff = (3.4445, -4.7750, 2.0315)
    exact = newton_schulz(g.double(), coeff, 5, 1e-7, torch.float64)
    fp32, bf16 = newton_schulz(g, coeff, 5, 1e-7, torch.float32), newton_schulz(g, coeff, 5, 1e-7)
    assert fp32.dtype == torch.float32 and bf16.dtype == torch.bfloat16
    err32, err16 = (fp32.double() - exact).abs().max(), (bf16.double() - exact).abs().max()
    assert err32 < 1e-4 < err16, (err32, err16)


@pytest.mark.parametrize("precision, want, ns_steps", [("fp32", torch.float32, None), ("bf16", torch.bfloat16, None), ("fp32", torch.float32, 4)])
def test_a_cpu_run_iterates_in_its_own_precision(precision, want, ns_steps):
    """build_optimizer: an fp32 run on a CPU updates exactly as fp32 iterations do; a bf16 run as torch's;
    with the run's number of iterations (5, torch's, unless the preset or the run says otherwise)."""
    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.engine.muon import adjust_lr, newton_schulz
    from tinygpt_tui.engine.presets import TrainConfig, build_optimizer
    from tinygpt_tui.model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, n_layer=1, n_head=2, n_embd=16, block_size=8).validate())
    opt = build_optimizer(model, TrainConfig(optimizer="muon", lr=1e-3, muon_lr=0.02, muon_ns_steps=ns_steps), precision)
    w = next(p for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2)
    before = w.detach().clone()
    for p in model.parameters():
        p.grad = torch.ones_like(p) if p is not w else torch.randn(p.shape, generator=torch.Generator().manual_seed(1))
    g = w.grad.clone()
    opt.step()
    update = g.lerp(g * (1 - 0.95), 0.95)  # nesterov momentum from a zero buffer
    o = newton_schulz(update[None], (3.4445, -4.7750, 2.0315), ns_steps or 5, 1e-7, want)[0]
    expect = before - adjust_lr(0.02, None, w.shape) * o.float()
    assert torch.allclose(w.detach(), expect, atol=1e-6, rtol=0)


def test_iterations_come_from_the_preset_and_are_checked():
    from tinygpt_tui.engine.presets import TrainConfig
    from tinygpt_tui.errors import SettingsError

    assert TrainConfig(name="m", preset="1min", max_steps=10).resolved().muon_ns_steps == 4
    assert TrainConfig(name="m", preset="small", max_steps=10).resolved().muon_ns_steps == 5
    assert TrainConfig(name="m", preset="1min", max_steps=10, muon_ns_steps=6).resolved().muon_ns_steps == 6
    for bad in (0, 21, 2.5, True):
        with pytest.raises(SettingsError, match="muon-ns-steps"):
            TrainConfig(name="m", preset="tiny", max_steps=10, muon_ns_steps=bad).resolved()
