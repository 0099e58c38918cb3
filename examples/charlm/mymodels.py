"""A small character-level transformer language model (about 50k parameters)."""
import torch
from torch import nn

from mydata import WINDOW, vocabulary


class CharTransformer(nn.Module):
    def __init__(self, width=48, layers=2, heads=4):
        super().__init__()
        vocab = len(vocabulary())
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(WINDOW, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(WINDOW), persistent=False)

    def forward(self, tokens):  # (batch, T) int64 -> (batch, T, vocab) logits
        t = tokens.shape[1]
        h = self.embed(tokens) + self.position[:t]
        return self.head(self.blocks(h, mask=self.causal[:t, :t], is_causal=True))
