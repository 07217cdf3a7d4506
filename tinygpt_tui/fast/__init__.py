"""Opt-in speed: code that exists to make tinygpt faster, never to change what it computes.

kernels.py  faster training layers on a CPU (dropout, RMSNorm, bf16 attention)
decode.py   the compiled decoding step (numba) that generation uses on a CPU

Each is tested equal to the plain form in model.py. One switch turns all of it off:
TINYGPT_FAST=0 in the environment (training then runs model.py's own layers, and
generation the model's own KV cache).
"""

import os


def enabled() -> bool:
    return os.environ.get("TINYGPT_FAST", "1") != "0"
