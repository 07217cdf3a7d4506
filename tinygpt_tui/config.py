"""The model configuration: a dataclass saved with every checkpoint.

Kept apart from model.py so that listing and validating model folders (the
app's sidebar, `tinygpt models`) never has to import torch.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import asdict, dataclass, fields

from tinygpt_tui.errors import SettingsError, not_one_of

POS_ENCODINGS = ("learned", "sinusoidal", "rope", "alibi", "none")
FFNS = ("gelu", "swiglu")
NORMS = ("layernorm", "rmsnorm")
RELATIVE = ("rope", "alibi", "none")  # encodings whose KV cache can slide past the window

# Hard limits: a config from a stranger must not exhaust memory before anything else is checked.
LIMITS = {"vocab_size": 2_000_000, "block_size": 65_536, "n_layer": 256, "n_head": 256, "n_embd": 16_384}


# ------------------------------------------- position tables: model.py's tensors, fast/decode.py's arrays
def sinusoidal_table(n: int, dim: int) -> list[list[float]]:
    """The fixed (n, dim) position table of 'Attention Is All You Need':
    column 2i holds sin(pos * f_i), column 2i + 1 cos(pos * f_i), with f_i = 10000^(-2i / dim)."""
    freqs = [math.exp(-math.log(10000.0) * i / dim) for i in range(0, dim, 2)]
    return [[(math.cos if c % 2 else math.sin)(pos * freqs[c // 2]) for c in range(dim)] for pos in range(n)]


def rope_frequencies(head_size: int, base: float) -> list[float]:
    """RoPE turns the pair (i, i + D/2) of a head's vector by pos * f_i, with f_i = 1 / base^(2i / D):
    in float32, each step rounded as Hugging Face's Llama computes it, as are the angles (model.py)."""
    f32 = lambda v: array("f", [v])[0]  # noqa: E731 (rounded to float32)
    return [f32(1.0 / f32(f32(base) ** f32(i / head_size))) for i in range(0, head_size, 2)]


def alibi_slope_list(n_head: int) -> list[float]:
    """ALiBi's head slopes (geometric, also for non powers of 2): head h adds -slope_h * distance to a score."""

    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_head).is_integer():
        return pow2(n_head)
    closest = 2 ** math.floor(math.log2(n_head))
    return pow2(closest) + pow2(2 * closest)[0::2][: n_head - closest]


class ConfigError(SettingsError, ValueError):
    """An impossible model configuration (one line, for the user)."""


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 128  # context length in tokens (characters)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    pos_encoding: str = "learned"  # fastest on a CPU; rope costs ~25% (docs/performance.md, "Why the defaults")
    ffn: str = "gelu"
    norm: str = "layernorm"  # F.layer_norm's fused kernels; rmsnorm is an option
    tie_weights: bool = True
    mlp_ratio: float = 4.0  # hidden size of the feed-forward, as a multiple of n_embd
    rope_base: float = 10000.0

    def validate(self) -> "GPTConfig":
        for name, limit in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
            if value > limit:
                raise ConfigError(f"{name} {value} is beyond the limit of {limit}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.pos_encoding == "rope" and (self.n_embd // self.n_head) % 2:
            raise ConfigError(f"rope needs an even head size, got {self.n_embd // self.n_head}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.mlp_ratio, (int, float)) or not 0.25 <= self.mlp_ratio <= 16:
            raise ConfigError(f"mlp_ratio must be between 0.25 and 16, got {self.mlp_ratio!r}")
        if not isinstance(self.rope_base, (int, float)) or self.rope_base <= 1:
            raise ConfigError(f"rope_base must be above 1, got {self.rope_base!r}")
        for name, allowed in (("pos_encoding", POS_ENCODINGS), ("ffn", FFNS), ("norm", NORMS)):
            if getattr(self, name) not in allowed:
                raise not_one_of(name, getattr(self, name), allowed, ConfigError)
        for name in ("bias", "tie_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        return self

    @property
    def ffn_hidden(self) -> int:
        hidden = int(self.mlp_ratio * self.n_embd)
        if self.ffn == "swiglu":  # same parameter count as gelu with 3 matrices instead of 2
            hidden = int(2 * hidden / 3)
        return max(8, (hidden + 7) // 8 * 8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        if not isinstance(d, dict):
            raise ConfigError("model config must be a JSON object")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**d).validate()

    def param_count(self) -> int:
        """Parameters of the model this config builds (without building it)."""
        C, h, V = self.n_embd, self.ffn_hidden, self.vocab_size
        up = h * (2 if self.ffn == "swiglu" else 1)  # outputs of the feed-forward's first layer
        norm = C * (2 if self.norm == "layernorm" and self.bias else 1)
        layer = 4 * C * C + C * up + h * C + 2 * norm + (5 * C + up if self.bias else 0)  # attention, feed-forward, norms
        emb = V * C * (1 if self.tie_weights else 2) + (self.block_size * C if self.pos_encoding == "learned" else 0)
        return emb + self.n_layer * layer + norm


class Window:
    """Which cached keys a decoder keeps, over a buffer whose live entries are [start, end): the one
    rule of both KV caches (model.KVCache, fast/decode.py's). ``pos``, the next token's position,
    sees itself and at most block_size - 1 keys before it. A relative encoding slides: older keys
    drop out, and a full buffer (two windows long) moves its live entries to the front (each cache's
    ``move(start, end)``). An absolute encoding stops at block_size: the sampler starts over."""

    def __init__(self, block_size: int, sliding: bool):
        self.block_size, self.sliding = block_size, sliding
        self.capacity = 2 * block_size if sliding else block_size
        self.reset()

    def reset(self) -> None:
        self.start = self.end = self.pos = 0

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def full(self) -> bool:
        """No room at the back for the next token: make_room moves the live entries, or refuses."""
        return self.end == self.capacity

    def make_room(self, T: int) -> tuple[int, int]:
        """Before T new tokens: (start, end), the first key they may see and where they go."""
        if T > self.block_size:
            raise ValueError(f"{T} tokens exceed block_size {self.block_size}")
        if not self.sliding and self.pos + T > self.block_size:
            raise ValueError(f"{self.pos + T} positions exceed block_size {self.block_size}")
        self.start = max(self.start, self.end - (self.block_size - 1))  # what the first new token still sees
        if self.end + T > self.capacity:  # full at the back (sliding only)
            self.move(self.start, self.end)
            self.start, self.end = 0, self.end - self.start
        return self.start, self.end

    def advance(self, T: int) -> None:
        """T tokens went in at [end, end + T)."""
        self.end += T
        self.pos += T
