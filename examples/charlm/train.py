"""Train the character transformer with token-level cross-entropy; a checkpoint every 25 steps.

    python train.py                 # writes ckpt/step_0000.pt, ckpt/step_0025.pt, ...
    lossvista import --checkpoints 'ckpt/step_*.pt' --model mymodels:CharTransformer --data mydata:splits --out runs/charlm
    lossvista run --out runs/charlm

The checkpoints count steps, so the run's path is labelled by step; the surface is the per-token
mean cross-entropy over the training windows, as the loop below reports it.
"""
import argparse
import os

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mydata import splits
from mymodels import CharTransformer

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--every", type=int, default=25)
args = parser.parse_args()

torch.manual_seed(0)
train_set, test_set = splits()
loader = DataLoader(train_set, batch_size=32, shuffle=True)
model = CharTransformer()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
os.makedirs("ckpt", exist_ok=True)
step = 0
torch.save({"step": 0, "model": model.state_dict()}, "ckpt/step_0000.pt")
while step < args.steps:
    for x, y in loader:
        model.train()
        logits = model(x)  # (batch, 64, vocab)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % args.every == 0:
            print(f"step {step}: loss {loss.item():.3f}")
            torch.save({"step": step, "model": model.state_dict()}, f"ckpt/step_{step:04d}.pt")
        if step >= args.steps:
            break
