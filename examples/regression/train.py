"""Train the MLP on the diabetes data with MSE: a plain PyTorch loop that saves a checkpoint per epoch.

    python train.py                 # writes ckpt/epoch0.pt ... ckpt/epoch30.pt
    lossvista import --checkpoints 'ckpt/epoch*.pt' --model mymodels:MLP --data mydata:splits --loss mse --out runs/diabetes
    lossvista run --out runs/diabetes
"""
import argparse
import os

import torch
import torch.nn.functional as F

from mydata import splits
from mymodels import MLP

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=30)
args = parser.parse_args()

torch.manual_seed(0)
(x, y), (xt, yt) = splits()
model = MLP()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
os.makedirs("ckpt", exist_ok=True)
for epoch in range(args.epochs + 1):
    if epoch > 0:
        model.train()
        for idx in torch.randperm(len(x)).split(32):
            optimizer.zero_grad()
            loss = F.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        train_mse, test_mse = F.mse_loss(model(x), y).item(), F.mse_loss(model(xt), yt).item()
    print(f"epoch {epoch}: train mse {train_mse:.4f}, test mse {test_mse:.4f}")
    torch.save({"epoch": epoch, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict()}, f"ckpt/epoch{epoch}.pt")
