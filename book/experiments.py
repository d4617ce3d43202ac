"""Small training experiments on the 8×8 digits bundled with scikit-learn, shared by the chapters.

Chapters 1, 2, 3 and 5 compare networks with and without batch normalization (learning rate and
initialization sweeps, placement, regularization, batch size). They all use the data split, the
multilayer perceptron and the training loop below, so that a difference between two curves comes
from the one thing the figure varies. Everything is seeded: the same call gives the same numbers.
Nothing is downloaded; the networks are small enough to train in a fraction of a second on one
CPU thread.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from autograder.course import reference as R


def digits(n_train: int | None = None, seed: int = 0):
    """The digits as float32 tensors ``(x_train, y_train, x_test, y_test)``.

    A stratified 70/30 split (``random_state=0``); ``n_train`` keeps only the first ``n_train``
    training images (a smaller set overfits sooner). Pixels that are constant over the kept
    training images are dropped, and every other pixel is standardized with the training mean
    and standard deviation, as chapter 1 derives.
    """
    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.3,
                                              random_state=seed, stratify=data.target)
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    keep = x_tr.std(axis=0) > 0
    z_tr, z_te = R.standardize(x_tr[:, keep], x_te[:, keep])
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)
    return as_x(z_tr), torch.tensor(y_tr), as_x(z_te), torch.tensor(y_te)


def mlp(n_in: int, norm: str | None = None, *, widths=(100, 100, 100), activation: str = "relu",
        placement: str = "before", dropout: float = 0.0, init_std: float | None = None,
        groups: int = 8) -> nn.Sequential:
    """A multilayer perceptron for 10 classes.

    Each hidden layer is ``Linear -> norm -> activation`` (``placement="before"``: the norm before
    the nonlinearity, as in the BN paper) or ``Linear -> activation -> norm`` (``"after"``),
    followed by ``Dropout(dropout)`` when ``dropout > 0``. ``norm`` is ``None``, ``"BN"``
    (``BatchNorm1d``) or ``"GN"`` (``GroupNorm`` with ``groups`` groups). A linear layer directly
    followed by a norm has no bias (the norm's shift replaces it). ``init_std`` draws every
    weight from N(0, init_std²); ``None`` keeps PyTorch's default initialization.
    """
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[activation]

    def norm_layer(width):
        if norm == "BN":
            return nn.BatchNorm1d(width)
        if norm == "GN":
            return nn.GroupNorm(groups, width)
        raise ValueError(f"norm must be None, 'BN' or 'GN', not {norm!r}")

    layers, width_in = [], n_in
    for width in widths:
        linear = nn.Linear(width_in, width, bias=norm is None or placement == "after")
        if norm is None:
            layers += [linear, act()]
        elif placement == "before":
            layers += [linear, norm_layer(width), act()]
        elif placement == "after":
            layers += [linear, act(), norm_layer(width)]
        else:
            raise ValueError(f"placement must be 'before' or 'after', not {placement!r}")
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, 10))
    net = nn.Sequential(*layers)
    if init_std is not None:
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return net


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy (%) and mean cross-entropy (nats) in eval mode, as the network is deployed."""
    was_training = net.training
    net.eval()
    logits = net(x)
    net.train(was_training)
    loss = F.cross_entropy(logits, y).item()
    return 100.0 * (logits.argmax(1) == y).float().mean().item(), loss


def train(net: nn.Module, data, *, epochs: float = 5, batch_size: int = 64, lr: float = 0.1,
          momentum: float = 0.9, weight_decay: float = 0.0, seed: int = 0,
          on_step=None) -> dict:
    """Mini-batch SGD (with momentum) on ``data = (x_train, y_train, x_test, y_test)``.

    Batches are drawn without replacement, whole batches only, in an order fixed by ``seed``.
    ``on_step(step, net)``, when given, is called after every update (to record something).
    Returns the per-step training losses and the final training and test accuracy and loss in
    eval mode; ``diverged`` is True when the loss became NaN or infinite (training then stops).
    """
    x_tr, y_tr, x_te, y_te = data
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    order = torch.Generator().manual_seed(seed)
    n = len(x_tr) // batch_size * batch_size
    steps = int(round(epochs * (n // batch_size)))
    losses, diverged, step = [], False, 0
    net.train()
    while step < steps and not diverged:
        perm = torch.randperm(len(x_tr), generator=order)[:n]
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(net(x_tr[idx]), y_tr[idx])
            if not torch.isfinite(loss):
                diverged = True
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if on_step is not None:
                on_step(step, net)
            if step == steps:
                break
    result = {"losses": np.array(losses), "diverged": diverged, "steps": step}
    for split, (x, y) in (("train", (x_tr, y_tr)), ("test", (x_te, y_te))):
        acc, loss = evaluate(net, x, y) if not diverged else (float("nan"), float("nan"))
        result[f"{split}_accuracy"], result[f"{split}_loss"] = acc, loss
    return result


def run(seed: int, data, *, epochs: float = 5, batch_size: int = 64, lr: float = 0.1,
        momentum: float = 0.9, weight_decay: float = 0.0, on_step=None, **net_options) -> dict:
    """Build ``mlp(**net_options)`` with ``torch.manual_seed(seed)`` and train it: one seed of
    one configuration."""
    torch.manual_seed(seed)
    net = mlp(data[0].shape[1], **net_options)
    return train(net, data, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                 weight_decay=weight_decay, seed=seed, on_step=on_step)


def spread(values) -> tuple[float, float, float]:
    """Mean, minimum and maximum over seeds (NaN for a diverged run counts as missing)."""
    v = np.asarray(values, dtype=float)
    if np.all(np.isnan(v)):
        return float("nan"), float("nan"), float("nan")
    return float(np.nanmean(v)), float(np.nanmin(v)), float(np.nanmax(v))


def model_answers(assignment: str, names) -> dict:
    """The course's model answers (solutions/<assignment>) for the graded cells ``names``, run in
    a fresh namespace with NumPy: a chapter can time or test them without printing them."""
    from pathlib import Path

    import nbformat

    path = Path(__file__).resolve().parent.parent / "solutions" / assignment / f"{assignment}.ipynb"
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
             for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"}
    namespace = {"np": np}
    for name in names:
        exec(compile(cells[name], f"{path.name}:{name}", "exec"), namespace)
    return namespace


def compact_backward(dout, cache):
    """The compact (N, D) backward pass of chapter 3 (Eq. dx) on the exercise's cache layout
    (x, mu, xc, var, std, inv_std, x_hat, gamma, eps): what the timing section runs beside the
    staged model answer. Kept here, not on the page, so the page stays prose and math."""
    inv_std, x_hat, gamma = cache[5], cache[6], cache[7]
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    return gamma * inv_std / n * (n * dout - dbeta - x_hat * dgamma), dgamma, dbeta
