"""Opt-in speed: code that makes tinygpt faster, never changes what it computes, and is tested
equal to model.py's plain form: kernels.py (training layers on a CPU) and decode.py (the compiled
decoding step). TINYGPT_FAST=0 switches all of it off: model.py's layers and KV cache run.
"""

import os


def enabled() -> bool:
    return os.environ.get("TINYGPT_FAST", "1") != "0"
