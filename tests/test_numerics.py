"""Everything that changes numerics for speed keeps a test against the plain form in model.py.

Tolerances, stated:
  - explicit attention vs SDPA, fp32: logits within 1e-5 (same maths, different kernels)
  - bf16 autocast vs fp32: initial loss within 0.02 nats (bf16 keeps ~3 significant digits);
    after 40 identical training steps within 0.1 nats; logits within 3% of their largest magnitude
    (measured 0.3-0.7%)
  - fast kernels (fast/kernels.py) vs model.py: fp32 forward equal within 1e-6 (eval), training
    losses within 1e-5; fast RMSNorm's outputs and gradients within 1e-5 (fp32), exact gradients
    (gradcheck, fp64); bf16 fast attention within 3% of fp32 like the plain one
  - fast dropout: drop rate p within 0.005 over 10^6 elements, mean preserved within 0.01, masks repeatable
"""

import pytest
import torch
import torch.nn.functional as F

from tinygpt_tui.config import GPTConfig
from tinygpt_tui.engine.device import autocast
from tinygpt_tui.fast import kernels as K
from tinygpt_tui.model import GPT, Attention, RMSNorm

POS = ["learned", "sinusoidal", "rope", "alibi", "none"]
CPU = torch.device("cpu")


def tiny(seed=0, fast=False, **kw):
    base = dict(vocab_size=29, block_size=32, n_layer=2, n_head=4, n_embd=64)
    base.update(kw)
    torch.manual_seed(seed)
    return K.accelerate(GPT(GPTConfig(**base)), on=fast)


def batch(seed=1, B=4, T=32, V=29):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)


# ------------------------------------------------------------------ attention paths
@pytest.mark.parametrize("pos", POS)
def test_explicit_attention_equals_sdpa_in_fp32(pos):
    model = tiny(pos_encoding=pos).eval()
    x, _ = batch()
    with torch.no_grad():
        sdpa, _ = model(x)
        explicit, _, _ = model(x, return_attention=True)
        assert (sdpa - explicit).abs().max() < 1e-5
        # the cached path too: prefill, then one token at a time, both ways
        c1, c2 = model.new_cache(), model.new_cache()
        a = [model(x[:, :7], cache=c1)[0]]
        b = [model(x[:, :7], cache=c2, return_attention=True)[0]]
        for t in range(7, 32):
            a.append(model(x[:, t : t + 1], cache=c1)[0])
            b.append(model(x[:, t : t + 1], cache=c2, return_attention=True)[0])
    assert (torch.cat(a, 1) - torch.cat(b, 1)).abs().max() < 1e-5


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("pos", ["learned", "rope", "alibi"])
def test_bf16_attention_is_close_to_fp32_sdpa(pos, fast):
    """On a CPU in bf16 the fast kernels write attention out (faster there than SDPA's flash
    kernel); model.py takes SDPA: both stay close to fp32."""
    model = tiny(pos_encoding=pos, n_embd=64, fast=fast).eval()
    for p in model.parameters():  # larger weights than the init, so logits are not all near zero
        p.data.mul_(2)
    x, _ = batch()
    with torch.no_grad():
        ref, _ = model(x)
        with autocast(CPU, "bf16"):
            low, _ = model(x)
    assert low.dtype == torch.bfloat16
    scale = ref.abs().max()
    assert scale > 1.0
    assert (low.float() - ref).abs().max() < 0.03 * scale  # measured: 0.6-0.7% of the scale


# ------------------------------------------------------------------ bf16 training
def train_losses(dtype: str, steps: int, **kw):
    model = tiny(**kw).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = batch(B=8)
    losses = []
    for _ in range(steps):
        with autocast(CPU, dtype):
            _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def test_bf16_autocast_training_loss_matches_fp32():
    fp32 = train_losses("fp32", 40)
    bf16 = train_losses("bf16", 40)
    assert abs(fp32[0] - bf16[0]) < 0.02
    assert fp32[-1] < fp32[0] - 1.0  # it really learns (one fixed batch)
    assert abs(fp32[-1] - bf16[-1]) < 0.1


# ------------------------------------------------------------------ fast kernels vs model.py
@pytest.mark.parametrize("pos", POS)
def test_accelerate_swaps_the_layers_and_keeps_weights_and_results(pos):
    plain = tiny(pos_encoding=pos, norm="rmsnorm", dropout=0.1)
    keys = list(plain.state_dict())
    fast = K.accelerate(tiny(pos_encoding=pos, norm="rmsnorm", dropout=0.1))
    assert list(fast.state_dict()) == keys
    assert isinstance(fast.blocks[0].attn, K.FastAttention) and isinstance(fast.norm, K.FastRMSNorm)
    assert isinstance(fast.blocks[0].ffn.drop, K.FastDropout) and type(plain.norm) is RMSNorm
    x, y = batch()
    with torch.no_grad():  # eval, fp32: the same numbers
        assert (fast.eval()(x)[0] - plain.eval()(x)[0]).abs().max() < 1e-6
    K.accelerate(fast, on=False)
    assert type(fast.blocks[0].attn) is Attention and type(fast.norm) is RMSNorm and type(fast.drop) is torch.nn.Dropout


def test_fast_rmsnorm_matches_f_rms_norm_forward_and_backward():
    torch.manual_seed(0)
    x = torch.randn(3, 17, 48, requires_grad=True)
    w = (torch.rand(48) + 0.5).requires_grad_()
    g = torch.randn(3, 17, 48)
    fast = K.RMSNormFunction.apply(x, w, 1e-6)
    gx, gw = torch.autograd.grad(fast, (x, w), g)
    plain = F.rms_norm(x, (48,), w, 1e-6)
    px, pw = torch.autograd.grad(plain, (x, w), g)
    assert (fast - plain).abs().max() < 1e-5
    assert (gx - px).abs().max() < 1e-5
    assert (gw - pw).abs().max() < 1e-4 * pw.abs().max()
    x64 = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    w64 = torch.randn(12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: K.RMSNormFunction.apply(a, b, 1e-6), (x64, w64))


def test_rmsnorm_model_trains_the_same_with_the_fast_kernels():
    fast = train_losses("fp32", 5, norm="rmsnorm", fast=True)
    plain = train_losses("fp32", 5, norm="rmsnorm")
    assert max(abs(a - b) for a, b in zip(fast, plain)) < 1e-5


def test_bf16_training_with_the_fast_kernels_follows_the_plain_model():
    """Dropout on: masks differ (other random bits), so the losses agree as two runs of one recipe."""
    fast = train_losses("bf16", 30, fast=True, dropout=0.1)
    plain = train_losses("bf16", 30, dropout=0.1)
    assert abs(fast[0] - plain[0]) < 0.05 and fast[-1] < fast[0] - 1.0
    assert abs(fast[-1] - plain[-1]) < 0.15


def test_fast_attention_equals_the_plain_one_in_bf16_within_rounding():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=10, block_size=16, n_head=4, n_embd=64)
    plain, fast = Attention(cfg), K.accelerate(Attention(cfg))
    fast.load_state_dict(plain.state_dict())
    q, k, v = (torch.randn(2, 4, 16, 16).bfloat16() for _ in range(3))
    bias = -torch.rand(4, 16, 16) * 3
    for mask in (None, bias):
        a, _ = plain.eval().attend(q, k, v, mask)
        b, _ = fast.eval().attend(q, k, v, mask)
        assert (a.float() - b.float()).abs().max() < 0.03


# ------------------------------------------------------------------ fast dropout
def test_fast_dropout_rate_scale_and_repeatability():
    x = torch.ones(1000, 1000)
    for p in (0.1, 0.2, 0.5):
        torch.manual_seed(3)
        y = K.fast_dropout(x, p)
        kept = (y != 0).float().mean().item()
        assert abs(kept - (1 - p)) < 0.005
        assert abs(y.mean().item() - 1.0) < 0.01  # kept elements are scaled by 1/keep
        assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], y[y != 0][0].item()))
        torch.manual_seed(3)
        assert torch.equal(K.fast_dropout(x, p), y)  # same seed, same mask (resumed runs replay it)
    assert K.fast_dropout(x, 0.0) is x
    # the gradient flows through the same mask
    xr = torch.randn(64, 64, requires_grad=True)
    torch.manual_seed(4)
    y = K.fast_dropout(xr, 0.3)
    (g,) = torch.autograd.grad(y.sum(), xr)
    assert torch.allclose(g * xr.detach(), y.detach(), atol=1e-6)


def test_fast_dropout_module_is_identity_in_eval_and_drops_p_in_training():
    x = torch.randn(200, 300)
    for d in (torch.nn.Dropout(0.25), K.FastDropout(0.25)):  # the plain one, for comparison
        assert torch.equal(d.eval()(x), x)
        y = d.train()(x)
        assert abs((y == 0).float().mean().item() - 0.25) < 0.01


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_activation_checkpointing_gives_the_same_loss_and_gradients(pos, fast):
    """--checkpoint-activations recomputes each block in the backward pass: with dropout on (its masks
    must be drawn again identically, the fast ones too) the loss and every gradient equal the plain step's."""
    model = tiny(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.2, pos_encoding=pos, fast=fast)
    x = torch.randint(0, 30, (4, 16))
    grads = []
    for recompute in (False, True):
        model.checkpointing = recompute
        model.zero_grad()
        torch.manual_seed(1)
        _, loss = model(x, x)
        loss.backward()
        grads.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (l0, g0), (l1, g1) = grads
    assert l0 == pytest.approx(l1, abs=1e-6)
    for n in g0:
        assert torch.allclose(g0[n], g1[n], atol=1e-6), n
    assert any(g0[n].abs().sum() > 0 for n in g0)
