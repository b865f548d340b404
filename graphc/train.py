"""Training: a compiled step (forward, backward, update in one call), evaluation, fit with
shuffled minibatches, a progress bar, early stopping and checkpoints, and plot_history.

TrainStep compiles `loss(model(x), t) [+ regularizer(params)]` with its gradient and the
optimizer's updates (parameters, velocities, BatchNorm's running averages) into one
Function of (x, t, lr, *dropout masks); calling it draws the masks from its seeded
generator, feeds the schedule's learning rate and counts the update.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import graphc as gc
from graphc.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from graphc.nn import losses
from graphc.nn.module import Module
from graphc.shapes import Bindings


def _target_input(loss: Any, output: Any, dtype: str) -> Any:
    """t: int32 labels (N,) for cross-entropy, else values of the output's shape."""
    if loss in ("cross_entropy",) or loss is losses.softmax_cross_entropy:
        return gc.input("t", output.shape[:-1], "int32")
    return gc.input("t", output.shape, dtype)


def _accuracy(loss: Any, output: np.ndarray, target: np.ndarray) -> float | None:
    if loss in ("cross_entropy",) or loss is losses.softmax_cross_entropy:
        return float(np.mean(np.argmax(output, axis=-1) == target))
    if loss in ("bce",) or loss is losses.binary_cross_entropy_with_logits:
        return float(np.mean((output > 0) == (target > 0.5)))
    return None


class _Compiled:
    """What TrainStep and Evaluator share: the model built on x (N, *input_shape)."""

    def __init__(self, model: Module, input_shape: Sequence[int], loss: Any, mode: str) -> None:
        self.model, self.loss_name = model, loss
        self.dtype = model.dtype
        self.x = gc.input("x", (gc.dim("N"), *(int(d) for d in input_shape)), self.dtype)
        self.built = model.build(self.x, mode)
        self.t = _target_input(loss, self.built.output, self.dtype)
        self.data_loss = losses.get(loss)(self.built.output, self.t)

    def accuracy(self, output: np.ndarray, target: np.ndarray) -> float | None:
        return _accuracy(self.loss_name, output, target)


class TrainStep(_Compiled):
    """One SGD step as one compiled call: step(x, t) -> (loss, model output).

    loss: "cross_entropy" (int labels), "mse", "bce" or a function (output, t) -> scalar;
    regularizer: a function params -> scalar Tensor (e.g. lambda ps: nn.l2(ps, 1e-4));
    seed: the generator of the dropout masks (its state is in `rng`, saved by checkpoints).
    """

    def __init__(
        self,
        model: Module,
        optimizer: Any,
        input_shape: Sequence[int],
        loss: Any = "cross_entropy",
        regularizer: Callable | None = None,
        backend: str = "numpy",
        seed: int | None = 0,
    ) -> None:
        super().__init__(model, input_shape, loss, "train")
        self.optimizer = optimizer
        self.rng = np.random.default_rng(seed)
        params = model.parameters()
        objective = self.data_loss
        if regularizer is not None:
            objective = objective + regularizer(params)
        self.lr = gc.input("lr", (), self.dtype)
        grads = gc.grad(objective, params)
        updates = dict(self.built.updates)
        updates.update(optimizer.updates(params, grads, self.lr))
        self.masks = self.built.masks
        inputs = [self.x, self.t, self.lr] + [m.input for m in self.masks]
        self.function = gc.compile(
            inputs, [objective, self.built.output], updates=updates, backend=backend
        )

    def draw_masks(self, batch: np.ndarray) -> list:
        """A 0/1 mask per Dropout layer for this batch (1 with probability 1 - rate)."""
        if not self.masks:
            return []
        bindings = Bindings()
        bindings.bind("x", self.x.shape, batch.shape)
        out = []
        for mask in self.masks:
            shape = bindings.evaluate_shape(mask.input.shape)
            keep = self.rng.random(shape) >= mask.rate
            out.append(keep.astype(self.dtype))
        return out

    def __call__(self, x: np.ndarray, t: np.ndarray) -> tuple:
        lr = self.optimizer.learning_rate()
        loss, output = self.function(x, t, lr, *self.draw_masks(x))
        self.optimizer.iterations += 1
        return float(loss), output


class Evaluator(_Compiled):
    """The model in evaluation mode: evaluate(x, t) -> (mean loss, accuracy or None)."""

    def __init__(
        self,
        model: Module,
        input_shape: Sequence[int],
        loss: Any = "cross_entropy",
        backend: str = "numpy",
        batch_size: int = 1024,
    ) -> None:
        super().__init__(model, input_shape, loss, "eval")
        self.batch_size = batch_size
        self.function = gc.compile(
            [self.x, self.t], [self.data_loss, self.built.output], backend=backend
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's output for x, in batches."""
        outs = []
        for start in range(0, len(x), self.batch_size):
            xb = x[start : start + self.batch_size]
            dummy = np.zeros((len(xb),) + tuple(int(d) for d in self.t.shape[1:]), self.t.dtype)
            outs.append(self.function(xb, dummy)[1])
        return np.concatenate(outs)

    def __call__(self, x: np.ndarray, t: np.ndarray) -> tuple:
        total, outs = 0.0, []
        for start in range(0, len(x), self.batch_size):
            xb, tb = x[start : start + self.batch_size], t[start : start + self.batch_size]
            loss, output = self.function(xb, tb)
            total += float(loss) * len(xb)
            outs.append(output)
        return total / len(x), self.accuracy(np.concatenate(outs), t)


@dataclass
class History:
    """Per-epoch records of a fit; `best_epoch` is the one early stopping kept."""

    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    step_seconds: list = field(default_factory=list)
    step_losses: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**d)


def _arrays(data: Any, what: str) -> tuple:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"fit: {what} must be a pair (x, t) of arrays")
    x, t = np.asarray(data[0]), np.asarray(data[1])
    if len(x) != len(t):
        raise ValueError(f"fit: {what} has {len(x)} examples but {len(t)} targets")
    if len(x) == 0:
        raise ValueError(f"fit: {what} is empty")
    return x, t


def _snapshot(model: Module) -> list:
    return [np.array(p.value, copy=True) for p in model.parameters() + model.states()]


def _restore(model: Module, values: list) -> None:
    for p, v in zip(model.parameters() + model.states(), values):
        p.value = v


def fit(
    model: Module,
    data: Any,
    epochs: int,
    batch_size: int,
    optimizer: Any,
    validation: Any = None,
    early_stopping: int | None = None,
    loss: Any = "cross_entropy",
    regularizer: Callable | None = None,
    backend: str = "numpy",
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train `model` on data = (x, t) for `epochs` epochs of shuffled minibatches.

    validation: (x, t) evaluated after every epoch (eval mode). early_stopping=patience:
    stop after `patience` epochs without a lower validation loss and restore the
    parameters of the best epoch (Goodfellow et al., algorithm 7.1). checkpoint=path:
    save everything after every epoch and, when the file exists, resume from it (the
    resumed run gives the losses of an uninterrupted one). seed: the shuffling and
    dropout generators. Returns a History; history.step_losses has every step's loss.
    A model with running averages (BatchNorm) skips a last minibatch of a single example.
    """
    x, t = _arrays(data, "data")
    if validation is not None:
        x_val, t_val = _arrays(validation, "validation")
    if early_stopping is not None and (validation is None or early_stopping < 1):
        raise ValueError("fit: early_stopping=patience (>= 1) needs validation data")
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: need epochs >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    input_shape = x.shape[1:]
    step = TrainStep(model, optimizer, input_shape, loss, regularizer, backend, seed=[seed, 1])
    evaluate = Evaluator(model, input_shape, loss, backend) if validation is not None else None
    shuffle = np.random.default_rng([seed, 0])
    rngs = {"shuffle": shuffle, "dropout": step.rng}
    history, start = History(), 0
    best_loss, best_values, waited = math.inf, None, 0
    if checkpoint is not None and Path(checkpoint).exists():
        restored = load_checkpoint(checkpoint, model, optimizer, rngs)
        start = restored.epoch
        history = History.from_dict(restored.extra["history"])
        best_loss, waited = restored.extra["best_loss"], restored.extra["waited"]
        if restored.arrays:
            best_values = [restored.arrays[f"best{k}"] for k in range(len(restored.arrays))]
        if progress:
            print(f"fit: resumed from {checkpoint} after epoch {start}")
    for epoch in range(start, epochs):
        if history.stopped_early:
            break
        order = shuffle.permutation(len(x))
        count = math.ceil(len(x) / batch_size)
        if model.states() and len(x) % batch_size == 1 and count > 1:
            count -= 1  # BatchNorm has no variance for a last batch of one example: skip it
        bar = _bar(count, f"epoch {epoch + 1}/{epochs}", progress)
        total, correct, seen, elapsed, lr = 0.0, 0.0, 0, 0.0, optimizer.learning_rate()
        for k in range(count):
            index = order[k * batch_size : (k + 1) * batch_size]
            xb, tb = x[index], t[index]
            started = time.perf_counter()
            value, output = step(xb, tb)
            elapsed += time.perf_counter() - started
            history.step_losses.append(value)
            total += value * len(xb)
            seen += len(xb)
            acc = step.accuracy(output, tb)
            if acc is not None:
                correct += acc * len(xb)
            shown = {"loss": f"{total / seen:.4f}"}
            if acc is not None:
                shown["acc"] = f"{correct / seen:.3f}"
            bar.set_postfix(shown, refresh=False)
            bar.update(1)
        bar.close()
        history.epoch.append(epoch + 1)
        history.loss.append(total / seen)
        history.accuracy.append(correct / seen if step.accuracy(output, tb) is not None else None)
        history.lr.append(lr)
        history.step_seconds.append(elapsed / count)
        if evaluate is not None:
            val_loss, val_acc = evaluate(x_val, t_val)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            if progress:
                shown = f" val accuracy {val_acc:.3f}" if val_acc is not None else ""
                print(f"epoch {epoch + 1}: loss {total / seen:.4f}, val loss {val_loss:.4f}{shown}")
            if early_stopping is not None:
                if val_loss < best_loss:
                    best_loss, waited = val_loss, 0
                    best_values = _snapshot(model)
                    history.best_epoch = epoch + 1
                else:
                    waited += 1
                    if waited >= early_stopping:
                        history.stopped_early = True
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                model,
                optimizer,
                epoch + 1,
                rngs,
                extra={"history": history.as_dict(), "best_loss": best_loss, "waited": waited},
                extra_arrays={f"best{k}": v for k, v in enumerate(best_values or [])},
            )
    if early_stopping is not None and best_values is not None:
        _restore(model, best_values)
    return history


class _NoBar:
    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, description: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="step", leave=False)


def plot_history(history: History, path: str | os.PathLike = "loss.png") -> Path:
    """Loss (and accuracy, when known) per epoch, training and validation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    has_acc = any(a is not None for a in history.accuracy)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 4))
    axes = np.atleast_1d(axes)
    axes[0].plot(history.epoch, history.loss, marker="o", label="training")
    if history.val_loss:
        axes[0].plot(history.epoch, history.val_loss, marker="o", label="validation")
    if history.best_epoch is not None:
        axes[0].axvline(history.best_epoch, color="grey", linestyle=":", label="best epoch")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0].legend()
    if has_acc:
        axes[1].plot(history.epoch, history.accuracy, marker="o", label="training")
        if history.val_accuracy:
            axes[1].plot(history.epoch, history.val_accuracy, marker="o", label="validation")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        axes[1].legend()
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = [
    "CheckpointError",
    "Evaluator",
    "History",
    "TrainStep",
    "fit",
    "load_checkpoint",
    "plot_history",
    "save_checkpoint",
]
