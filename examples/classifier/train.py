"""Train the classifier on a DataLoader with label smoothing, recording the run as it goes.

    python train.py                 # trains, and writes runs/classifier with pipeline.Recorder
    lossvista run --out runs/classifier

The Recorder takes the loss as training uses it (cross-entropy with label smoothing 0.1), so the
landscape shows that loss, not plain cross-entropy.
"""
import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mydata import datasets
from mymodels import Classifier
from pipeline import LossSpec, Recorder

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--out", default="runs/classifier")
args = parser.parse_args()

torch.manual_seed(0)
train_set, test_set = datasets()
loader = DataLoader(train_set, batch_size=64, shuffle=True)
model = Classifier()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
rec = Recorder(args.out, model, data="mydata:loaders",
               loss=LossSpec("cross_entropy", {"label_smoothing": 0.1}))
rec.save(0)  # the initial weights
for epoch in range(1, args.epochs + 1):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        xt, yt = test_set.tensors
        accuracy = (model(xt).argmax(1) == yt).float().mean().item()
    print(f"epoch {epoch}: test accuracy {accuracy:.3f}")
    rec.save(epoch)
