"""A small MLP for the diabetes regression."""
from torch import nn


class MLP(nn.Module):
    def __init__(self, features=10, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)  # (batch,): one score per patient
