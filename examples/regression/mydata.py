"""scikit-learn's diabetes data (442 patients, 10 features, a disease-progression score), split 80/20."""
import torch
from sklearn.datasets import load_diabetes


def splits():
    """(train, test) as (inputs, targets) tensors, standardized with the training split's statistics."""
    x, y = load_diabetes(return_X_y=True)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:354], order[354:]
    mx, sx = x[train].mean(0), x[train].std(0)
    my, sy = y[train].mean(), y[train].std()
    x, y = (x - mx) / sx, (y - my) / sy
    return (x[train], y[train]), (x[test], y[test])
