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
