"""tinygpt: train and play with tiny GPT models (characters or subword tokens), in the terminal."""

__version__ = "0.1.0"
