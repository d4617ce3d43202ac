"""The course's convolutional network: a LeNet-sized CNN with spatial BN on the 8×8 digits.

Chapters 2, 4 and 6 need a *trained* convolutional network (to measure the noise of spatial batch
statistics, to fine-tune and recompute statistics, to fold and time). It is the analogue of the
LeNet with batch normalization of *Dive into Deep Learning*, sized for scikit-learn's 8×8 digits:

    conv 3×3 (1 → 16)  → BN2d → ReLU
    conv 3×3 (16 → 32) → BN2d → ReLU → max-pool 2×2        (8×8 → 4×4)
    conv 3×3 (32 → 32) → BN2d → ReLU → max-pool 2×2        (4×4 → 2×2)
    flatten (128)      → linear 128 → 64 → BN1d → ReLU → linear 64 → 10

and the same network without its BN layers (its convolutions and linear layer then keep their
bias). Both are trained with three seeds, once: ``trained()`` loads the state dicts cached under
``_build/digits_cnn/<key>/`` and trains only when they are missing. ``<key>`` hashes this file's
source and ``SETTINGS``, so editing either retrains, and every chapter that imports the module sees
the same networks. Nothing is downloaded: the digits ship with scikit-learn.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SETTINGS = {
    "epochs": 12, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
    "seeds": [0, 1, 2], "split_seed": 0, "test_size": 0.3,
}
CACHE_ROOT = Path(__file__).resolve().parent.parent / "_build" / "digits_cnn"


def images():
    """The digits as ``(x_train, y_train, x_test, y_test)``, images of shape ``(n, 1, 8, 8)``.

    The same stratified 70/30 split as ``experiments.digits``. Pixels are scaled by one mean and
    one standard deviation, those of all training pixels: a convolution shares its weights over
    positions, so the input is not standardized position by position.
    """
    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.images, data.target, test_size=SETTINGS["test_size"],
        random_state=SETTINGS["split_seed"], stratify=data.target)
    mean, std = x_tr.mean(), x_tr.std()
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)[:, None]
    return as_x(x_tr), torch.tensor(y_tr), as_x(x_te), torch.tensor(y_te)


def cnn(batchnorm: bool = True) -> nn.Sequential:
    """The network above, as one flat ``nn.Sequential`` (so that a fold can walk it)."""
    def block(c_in, c_out, pool):
        layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm)]
        layers += [nn.BatchNorm2d(c_out)] if batchnorm else []
        layers += [nn.ReLU()] + ([nn.MaxPool2d(2)] if pool else [])
        return layers
    head = [nn.Flatten(), nn.Linear(32 * 2 * 2, 64, bias=not batchnorm)]
    head += [nn.BatchNorm1d(64)] if batchnorm else []
    head += [nn.ReLU(), nn.Linear(64, 10)]
    return nn.Sequential(*block(1, 16, False), *block(16, 32, True), *block(32, 32, True), *head)


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 540) -> float:
    """Test accuracy (%) in eval mode, in batches of ``batch_size``; the mode is restored."""
    was_training = net.training
    net.eval()
    pred = torch.cat([net(xb).argmax(1) for xb in x.split(batch_size)])
    net.train(was_training)
    return 100.0 * (pred == y).float().mean().item()


def train(net: nn.Module, data, seed: int, **overrides) -> list[float]:
    """SGD with momentum on the training images, whole batches in a seeded order; the losses."""
    s = {**SETTINGS, **overrides}
    x_tr, y_tr = data[0], data[1]
    opt = torch.optim.SGD(net.parameters(), lr=s["lr"], momentum=s["momentum"],
                          weight_decay=s["weight_decay"])
    order = torch.Generator().manual_seed(seed)
    n = len(x_tr) // s["batch_size"] * s["batch_size"]
    losses = []
    net.train()
    for _ in range(s["epochs"]):
        for idx in torch.randperm(len(x_tr), generator=order)[:n].split(s["batch_size"]):
            loss = F.cross_entropy(net(x_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


def cache_key() -> str:
    """Hash of this module's source and ``SETTINGS``: the cache folder's name."""
    text = Path(__file__).read_text() + json.dumps(SETTINGS, sort_keys=True) + torch.__version__
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trained(cache_root: Path | str | None = None) -> dict:
    """The six trained networks and what training measured, from the cache or trained now.

    Returns ``{"nets": {(batchnorm, seed): net}, "accuracy": {(batchnorm, seed): %},
    "seconds": {(batchnorm, seed): s}, "losses": {...}, "cached": bool, "folder": Path}``;
    every net is in eval mode. Training all six takes some seconds on one CPU thread.
    """
    folder = Path(cache_root or CACHE_ROOT) / cache_key()
    data = images()
    out = {"nets": {}, "accuracy": {}, "seconds": {}, "losses": {}, "folder": folder}
    meta_path = folder / "results.json"
    cached = meta_path.exists()
    meta = json.loads(meta_path.read_text()) if cached else {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # small networks: one thread is fastest and reproducible
    try:
        for batchnorm in (True, False):
            for seed in SETTINGS["seeds"]:
                name = f"{'bn' if batchnorm else 'plain'}-seed{seed}"
                torch.manual_seed(seed)
                net = cnn(batchnorm)
                if cached:
                    net.load_state_dict(torch.load(folder / f"{name}.pt", weights_only=True))
                    info = meta[name]
                else:
                    start = time.perf_counter()
                    losses = train(net, data, seed)
                    info = {"seconds": time.perf_counter() - start, "losses": losses,
                            "accuracy": accuracy(net, data[2], data[3])}
                    meta[name] = info
                    folder.mkdir(parents=True, exist_ok=True)
                    tmp = folder / f"{name}.pt.tmp"
                    torch.save(net.state_dict(), tmp)
                    os.replace(tmp, folder / f"{name}.pt")
                net.eval()
                key = (batchnorm, seed)
                out["nets"][key] = net
                out["accuracy"][key] = info["accuracy"]
                out["seconds"][key] = info["seconds"]
                out["losses"][key] = np.array(info["losses"])
    finally:
        torch.set_num_threads(threads)
    if not cached:
        tmp = folder / "results.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, meta_path)      # written last: its presence means the cache is complete
    out["cached"] = cached
    return out


@torch.no_grad()
def recompute_statistics(net: nn.Module, x: torch.Tensor, batch_size: int = 64) -> nn.Module:
    """Replace every BN layer's running statistics by their average over ``x`` ("precise BN").

    Resets the buffers, switches the layers to PyTorch's cumulative average (``momentum=None``),
    runs ``x`` through in training mode without gradients, in batches of ``batch_size``, and
    restores each layer's momentum. Weights, ``gamma`` and ``beta`` are not touched. Returns
    ``net`` in eval mode.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for xb in x.split(batch_size):
        net(xb)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return net.eval()
