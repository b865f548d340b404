"""graphc.optim: SGD, momentum and Nesterov against the textbook algorithms computed by hand
in numpy; velocities are state of the compiled step; schedules."""

import numpy as np
import pytest

import graphc as gc
from graphc import optim

rng = np.random.default_rng(5)
A = rng.normal(size=(6, 4))
B = rng.normal(size=6)
THETA0 = rng.normal(size=4)


def gradient(theta):
    # J(theta) = 1/2 |A theta - b|^2 + 1/4 sum(theta^4): gradient A^T (A theta - b) + theta^3
    return A.T @ (A @ theta - B) + theta**3


def compiled_steps(opt, steps, backend):
    theta = gc.param("theta", value=THETA0, dtype="float64")
    lr = gc.input("lr", (), "float64")
    residual = gc.constant(A) @ theta - B
    loss = 0.5 * gc.sum(residual * residual) + 0.25 * gc.sum(theta**4)
    (g,) = gc.grad(loss, [theta])
    f = gc.compile([lr], loss, updates=opt.updates([theta], [g], lr), backend=backend)
    path = []
    for _ in range(steps):
        f(opt.learning_rate())
        opt.iterations += 1
        path.append(theta.value.copy())
    return path, theta


def textbook(steps, lr, alpha=0.0, nesterov=False, decay=0.0, schedule=None):
    """Goodfellow et al. algorithms 8.1-8.3 as written (Nesterov: gradient at theta + alpha v)."""
    theta, v, path = THETA0.copy(), np.zeros(4), []
    for t in range(steps):
        eps = schedule(t) if schedule else lr
        point = theta + alpha * v if nesterov else theta
        g = gradient(point) + decay * point
        v = alpha * v - eps * g
        theta = theta + v
        path.append(theta + alpha * v if nesterov else theta.copy())
    return path


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
        {"momentum": 0.8, "weight_decay": 0.05},
    ],
    ids=["plain", "momentum", "nesterov", "nesterov-decay", "momentum-decay"],
)
def test_sgd_follows_the_textbook(options, backend):
    steps, lr = 25, 0.02
    path, theta = compiled_steps(optim.SGD(lr, **options), steps, backend)
    want = textbook(
        steps,
        lr,
        alpha=options.get("momentum", 0.0),
        nesterov=options.get("nesterov", False),
        decay=options.get("weight_decay", 0.0),
    )
    # Nesterov stores phi = theta + alpha v: compare with the textbook's theta + alpha v
    np.testing.assert_allclose(np.array(path), np.array(want), rtol=1e-12, atol=1e-12)


def test_velocities_are_state_updated_inside_the_compiled_call():
    opt = optim.SGD(0.1, momentum=0.9)
    _, theta = compiled_steps(opt, 2, "numpy")
    (v,) = opt.velocities([theta])
    g0 = gradient(THETA0)
    v1 = -0.1 * g0
    g1 = gradient(THETA0 + v1)
    np.testing.assert_allclose(v.value, 0.9 * v1 - 0.1 * g1, rtol=1e-12)
    assert v.op == "param" and opt.velocity(theta) is v
    assert optim.SGD(0.1).velocities([theta]) == []


def test_schedules_change_the_rate_without_recompiling():
    schedule = optim.StepDecay(0.05, factor=0.5, every=3)
    assert [schedule(t) for t in range(7)] == [0.05] * 3 + [0.025] * 3 + [0.0125]
    inverse = optim.InverseScaling(0.1, gamma=0.5, power=1.0)
    np.testing.assert_allclose([inverse(t) for t in range(3)], [0.1, 0.1 / 1.5, 0.05])
    assert optim.Constant(0.3)(1000) == 0.3
    path, _ = compiled_steps(optim.SGD(schedule, momentum=0.5), 8, "numpy")
    want = textbook(8, None, alpha=0.5, schedule=schedule)
    np.testing.assert_allclose(np.array(path), np.array(want), rtol=1e-12)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD(-1.0)
    with pytest.raises(ValueError, match="every"):
        optim.StepDecay(0.1, every=0)
