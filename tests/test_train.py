"""graphc.train: fit (minibatches, history, early stopping), plot_history, checkpoints
(atomic, checksummed, resumable to the same losses)."""

import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc import data, nn, optim, train
from graphc.checkpoint import CheckpointError


@pytest.fixture(scope="module")
def digits():
    x, y = data.load_digits()
    return data.train_val_test_split(x, y, val=0.2, test=0.1, seed=0)


def mlp(seed=0, dropout=0.0, batchnorm=False):
    layers = [nn.Dense(64, 16, seed=seed)]
    if batchnorm:
        layers.append(nn.BatchNorm(16))
    layers += [nn.ReLU(), nn.Dropout(dropout), nn.Dense(16, 10, seed=seed + 1)]
    return nn.Sequential(layers)


def test_fit_learns_the_digits_and_records_a_history(digits, tmp_path):
    train_set, val_set, _ = digits
    model = mlp()
    opt = optim.SGD(0.1, momentum=0.9, nesterov=True)
    history = train.fit(model, train_set, 4, 32, opt, validation=val_set, progress=False)
    assert history.epoch == [1, 2, 3, 4]
    assert len(history.step_losses) == 4 * int(np.ceil(len(train_set[0]) / 32))
    assert opt.iterations == len(history.step_losses)
    assert history.loss[-1] < history.loss[0] and history.val_accuracy[-1] > 0.85
    assert all(s > 0 for s in history.step_seconds)
    png = train.plot_history(history, tmp_path / "loss.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_early_stopping_keeps_the_best_parameters(digits):
    train_set, val_set, _ = digits
    model = mlp()
    opt = optim.SGD(0.6, momentum=0.9)  # too fast: the validation loss soon stops improving
    history = train.fit(
        model, train_set, 30, 64, opt, validation=val_set, early_stopping=2, progress=False
    )
    assert history.stopped_early and len(history.epoch) < 30
    best = int(np.argmin(history.val_loss))
    assert history.best_epoch == best + 1
    assert len(history.epoch) == history.best_epoch + 2  # patience epochs without progress
    loss, _ = train.Evaluator(model, (64,))(*val_set)
    np.testing.assert_allclose(loss, history.val_loss[best], rtol=1e-6)


def test_fit_refuses_bad_arguments(digits):
    train_set, val_set, _ = digits
    with pytest.raises(ValueError, match="early_stopping"):
        train.fit(mlp(), train_set, 1, 32, optim.SGD(0.1), early_stopping=2, progress=False)
    with pytest.raises(ValueError, match="targets"):
        train.fit(mlp(), (train_set[0], train_set[1][:5]), 1, 32, optim.SGD(0.1))


def test_checkpoint_round_trip_restores_everything(tmp_path):
    model, opt = mlp(seed=3, batchnorm=True), optim.SGD(0.1, momentum=0.9)
    step = train.TrainStep(model, opt, (64,), seed=0)
    xs = np.random.default_rng(0).random((8, 64), dtype=np.float32)
    step(xs, np.arange(8) % 10)
    generator = np.random.default_rng(42)
    path = train.save_checkpoint(tmp_path / "c.npz", model, opt, 7, {"g": generator})
    tensors = model.parameters() + model.states() + opt.velocities(model.parameters())
    saved = [t.value.copy() for t in tensors]
    draws = generator.random(3)
    assert len(tensors) == 6 + 2 + 6 and np.abs(saved[-1]).sum() > 0
    for t in tensors:
        t.value = np.zeros_like(t.value)
    opt.iterations = 0
    restored = train.load_checkpoint(path, model, opt, {"g": generator})
    assert restored.epoch == 7 and opt.iterations == 1
    for t, want in zip(tensors, saved):
        np.testing.assert_array_equal(t.value, want)
    np.testing.assert_array_equal(generator.random(3), draws)


def _saved(tmp_path):
    model, opt = mlp(seed=5), optim.SGD(0.1, momentum=0.5)
    opt.velocities(model.parameters())
    return train.save_checkpoint(tmp_path / "c.npz", model, opt, 1), model, opt


def test_truncated_and_corrupt_checkpoints_are_refused(tmp_path):
    path, model, opt = _saved(tmp_path)
    blob = path.read_bytes()
    before = model.parameters()[0].value.copy()
    (tmp_path / "short.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train.load_checkpoint(tmp_path / "short.npz", model, opt)
    flipped = bytearray(blob)
    flipped[len(blob) // 3] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt|checksum"):
        train.load_checkpoint(tmp_path / "flip.npz", model, opt)
    np.testing.assert_array_equal(model.parameters()[0].value, before)


def test_checksum_catches_a_changed_array_in_a_valid_zip(tmp_path):
    path, model, opt = _saved(tmp_path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["param/0"] = arrays["param/0"] + 1
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        train.load_checkpoint(tmp_path / "edited.npz", model, opt)
    with pytest.raises(CheckpointError, match="another model"):
        train.load_checkpoint(path, mlp(seed=1, batchnorm=True), opt)
    with pytest.raises(CheckpointError, match="shape"):
        wider = nn.Sequential([nn.Dense(64, 17), nn.ReLU(), nn.Dense(17, 10)])
        train.load_checkpoint(path, wider, optim.SGD(0.1, momentum=0.5))


def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path, model, opt = _saved(tmp_path)
    good = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        train.save_checkpoint(path, model, opt, 2)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left
    assert zipfile.is_zipfile(path)


def test_a_resumed_fit_gives_the_losses_of_an_uninterrupted_one(digits, tmp_path, backend="numpy"):
    train_set, val_set, _ = digits
    small = (train_set[0][:300], train_set[1][:300])

    def run(epochs, checkpoint=None, seed=0):
        model = mlp(seed=seed, dropout=0.3, batchnorm=True)
        opt = optim.SGD(optim.StepDecay(0.1, 0.5, every=10), momentum=0.9, nesterov=True)
        history = train.fit(
            model,
            small,
            epochs,
            32,
            opt,
            validation=val_set,
            early_stopping=5,
            backend=backend,
            checkpoint=checkpoint,
            progress=False,
        )
        return history, model

    whole, whole_model = run(4)
    path = tmp_path / "run.npz"
    run(2, path)
    resumed, resumed_model = run(4, path, seed=9)  # other initial weights: all come from the file
    assert resumed.step_losses == whole.step_losses
    assert resumed.val_loss == whole.val_loss
    for a, b in zip(
        whole_model.parameters() + whole_model.states(),
        resumed_model.parameters() + resumed_model.states(),
    ):
        np.testing.assert_array_equal(a.value, b.value)
    assert gc.train.load_checkpoint(path, resumed_model).epoch == 4


def test_dropout_masks_come_from_the_seeded_generator(digits):
    xs, ts = digits[0][0][:64], digits[0][1][:64]

    def losses(seed):
        model = mlp(seed=0, dropout=0.5)
        step = train.TrainStep(model, optim.SGD(0.1), (64,), seed=seed)
        return [step(xs, ts)[0] for _ in range(3)]

    assert losses(1) == losses(1)
    assert losses(1) != losses(2)
    masks = train.TrainStep(mlp(dropout=0.5), optim.SGD(0.1), (64,)).draw_masks(xs)
    assert len(masks) == 1 and masks[0].shape == (64, 16)
    assert set(np.unique(masks[0])) == {0.0, 1.0} and 0.35 < masks[0].mean() < 0.65


def test_an_l2_regularizer_is_weight_decay(digits):
    xs, ts = digits[0][0][:32], digits[0][1][:32]
    a, b = mlp(seed=4), mlp(seed=4)
    train.TrainStep(a, optim.SGD(0.1), (64,), regularizer=lambda ps: nn.l2(ps, 0.01))(xs, ts)
    train.TrainStep(b, optim.SGD(0.1, weight_decay=0.01), (64,))(xs, ts)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p.value, q.value, rtol=1e-5, atol=1e-7)
    assert not np.allclose(a.parameters()[0].value, mlp(seed=4).parameters()[0].value)


def test_batch_norm_models_skip_a_last_batch_of_one(digits):
    xs, ts = digits[0][0][:65], digits[0][1][:65]
    model = mlp(batchnorm=True)
    history = train.fit(model, (xs, ts), 1, 32, optim.SGD(0.1), progress=False)
    assert len(history.step_losses) == 2
    assert np.all(np.isfinite(model.states()[1].value))
