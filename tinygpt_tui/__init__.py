"""tinygpt: train and play with tiny character-level GPT models, in the terminal."""

__version__ = "0.1.0"
