"""Factories used as user models ('tests.user_models:tiny_mlp') in the tests."""
import torch
from torch import nn


def tiny_mlp(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))


def not_a_model():
    return 42


class Tokens(nn.Module):
    """A user's token model: (B, T) int64 -> (B, T, V) logits, classes last (as language models)."""

    def __init__(self, vocab: int = 11, width: int = 8):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens):
        return self.head(torch.tanh(self.embed(tokens)))
