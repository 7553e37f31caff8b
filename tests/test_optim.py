"""Optimisers against their update formulas, gradient clipping and learning-rate schedules."""
import numpy as np
import pytest

from rlkit import Tensor, nn, optim


def params_with_grads():
    p = nn.Parameter(np.array([1.0, -2.0, 3.0], np.float32))
    q = nn.Parameter(np.array([[0.5], [-0.5]], np.float32))
    return p, q, np.array([0.1, 0.2, -0.3], np.float32), np.array([[1.0], [-1.0]], np.float32)


def run_steps(optimizer_cls, steps=3, **kwargs):
    p, q, gp, gq = params_with_grads()
    opt = optimizer_cls([p, q], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        p.grad += gp
        q.grad += gq
        opt.step()
    return p.data.copy(), q.data.copy()


def test_sgd_plain_and_nesterov_with_weight_decay():
    p, _ = run_steps(optim.SGD, steps=1, lr=0.1)
    np.testing.assert_allclose(p, [1 - 0.01, -2 - 0.02, 3 + 0.03], rtol=1e-6)
    x0, g, lr, mu, wd = np.array([1.0, -2.0, 3.0]), np.array([0.1, 0.2, -0.3]), 0.1, 0.9, 0.01
    x, v = x0.copy(), np.zeros(3)
    for _ in range(3):
        d = g + wd * x
        v = mu * v + d
        x = x - lr * (d + mu * v)
    p, _ = run_steps(optim.SGD, steps=3, lr=lr, momentum=mu, nesterov=True, weight_decay=wd)
    np.testing.assert_allclose(p, x, rtol=1e-5)


def test_rmsprop_formula():
    x, g, s = np.array([1.0, -2.0, 3.0]), np.array([0.1, 0.2, -0.3]), np.zeros(3)
    for _ in range(3):
        s = 0.99 * s + 0.01 * g * g
        x = x - 0.01 * g / (np.sqrt(s) + 1e-5)
    p, _ = run_steps(optim.RMSProp, steps=3, lr=0.01, alpha=0.99, eps=1e-5)
    np.testing.assert_allclose(p, x, rtol=1e-5)


def test_adam_formula_and_first_step_size_is_lr():
    x, g = np.array([1.0, -2.0, 3.0]), np.array([0.1, 0.2, -0.3])
    m, v = np.zeros(3), np.zeros(3)
    for t in range(1, 4):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    p, q = run_steps(optim.Adam, steps=3, lr=0.01)
    np.testing.assert_allclose(p, x, rtol=1e-5)
    np.testing.assert_allclose(q, [[0.5 - 0.03], [-0.5 + 0.03]], rtol=1e-4)  # constant grads: lr per step


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_updates_compute_in_the_parameters_dtype(dtype):
    """The numba passes of Adam and RMSProp give bit for bit the array-op form evaluated in
    the parameters' own dtype (float32 stays float32, as in PyTorch)."""
    rng = np.random.default_rng(3)
    x0, g = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
    c = dtype  # every constant a scalar of the dtype, as the optimisers pass them
    for cls, kwargs in ((optim.Adam, dict(lr=1e-3, eps=1e-8)), (optim.RMSProp, dict(lr=1e-2, alpha=0.99, eps=1e-5))):
        p = nn.Parameter(x0.copy())
        opt = cls([p], **kwargs)
        x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
        for t in range(1, 4):
            p.grad[...] = g
            opt.step()
            if cls is optim.Adam:
                m = c(0.9) * m + c(1 - 0.9) * g
                v = c(0.999) * v + c(1 - 0.999) * g * g
                x -= c(1e-3 / (1 - 0.9 ** t)) * m / (np.sqrt(v) * c(1 / np.sqrt(1 - 0.999 ** t)) + c(1e-8))
            else:
                v = c(0.99) * v + c(1 - 0.99) * g * g
                x -= c(1e-2) * g / (np.sqrt(v) + c(1e-5))
        assert p.data.dtype == dtype
        np.testing.assert_array_equal(p.data, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, slots, kwargs", [
    (optim.Adam, ("exp_avg", "exp_avg_sq"), dict(lr=1e-3)),
    (optim.RMSProp, ("square_avg",), dict(lr=1e-2, alpha=0.99)),
    (optim.SGD, ("velocity",), dict(lr=0.1, momentum=0.9)),  # the array-op flush, as on CuPy
])
def test_state_decaying_below_the_smallest_normal_is_stored_as_zero(cls, slots, kwargs, dtype):
    """Under a zero gradient the optimiser state decays geometrically; a value that falls below
    the dtype's smallest normal number (a subnormal, slow on Intel CPUs) is stored as 0, while
    values above it decay by the formula and a NaN stays NaN."""
    tiny = np.finfo(dtype).tiny
    p = nn.Parameter(np.ones(4, dtype))
    opt = cls([p], **kwargs)
    # just above the threshold, far above it, 0, and a NaN (which must stay visible)
    start = np.array([tiny * 1.0001, 1e-3, 0, np.nan], dtype)
    for name in slots:
        getattr(opt, name)[...] = start
    opt.zero_grad()
    with np.errstate(invalid="ignore"):
        opt.step()
    decay = {"exp_avg": 0.9, "exp_avg_sq": 0.999, "square_avg": 0.99, "velocity": 0.9}
    for name in slots:
        state = getattr(opt, name)
        assert state[0] == 0 and state[2] == 0 and np.isnan(state[3]), (name, state)
        np.testing.assert_allclose(state[1], decay[name] * 1e-3, rtol=1e-6)


def test_optimizer_state_round_trip_continues_identically():
    p1, q1 = run_steps(optim.Adam, steps=4, lr=0.01)
    p, q, gp, gq = params_with_grads()
    opt = optim.Adam([p, q], lr=0.01)
    for step in range(4):
        if step == 2:  # rebuild from a saved state midway, as a resumed run does
            saved_params, saved = [p.data.copy(), q.data.copy()], opt.state_dict()
            p, q = nn.Parameter(saved_params[0]), nn.Parameter(saved_params[1])
            opt = optim.Adam([p, q], lr=0.5)
            opt.load_state_dict(saved)
        opt.zero_grad()
        p.grad += gp
        q.grad += gq
        opt.step()
    np.testing.assert_array_equal(p.data, p1)
    np.testing.assert_array_equal(q.data, q1)


def test_optimizer_keeps_each_parameters_memory_layout_and_saves_in_parameter_order():
    """A parameter whose memory is transposed (as a convolution's weight is stored) keeps that
    layout inside the flat buffer, while checkpoints hold each parameter's values in the C order
    of its shape, so that they do not depend on layouts (and older ones still load)."""
    memory = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    w, b = nn.Parameter(memory.transpose(0, 2, 1)), nn.Parameter(np.array([5.0, 6.0], np.float32))
    logical = w.data.copy()
    opt = optim.Adam([w, b], lr=0.1)
    assert w.data.transpose(0, 2, 1).flags.c_contiguous and np.shares_memory(w.data, opt.flat)
    np.testing.assert_array_equal(w.data, logical)
    w.grad[...] = np.arange(24, dtype=np.float32).reshape(2, 4, 3)   # differs from w's memory order
    b.grad[...] = [1.0, -1.0]
    opt.step()
    state = opt.state_dict()
    expected_m = 0.1 * np.concatenate([np.arange(24, dtype=np.float32), [1.0, -1.0]])
    np.testing.assert_allclose(state["exp_avg"], expected_m, rtol=1e-6)
    np.testing.assert_array_equal(opt.to_parameter_order(opt.flat), np.concatenate([w.data.ravel(), b.data]))
    fresh = optim.Adam([nn.Parameter(w.data.copy()), nn.Parameter(b.data.copy())], lr=0.1)
    fresh.load_state_dict(state)                                # C-ordered parameters this time
    np.testing.assert_array_equal(fresh.to_parameter_order(fresh.exp_avg), state["exp_avg"])
    np.testing.assert_allclose(fresh.exp_avg[:24], expected_m[:24], rtol=1e-6)


def test_parameters_replaced_outside_the_optimizer_are_reattached():
    layer = nn.Linear(2, 1)
    opt = optim.SGD(layer.parameters(), lr=1.0)
    layer.weight.data = np.zeros((1, 2), np.float32)   # e.g. a target-network style copy
    layer.zero_grad()                                   # grads set to None
    out = layer(Tensor(np.ones((1, 2), np.float32))).sum()
    out.backward()
    opt.step()
    np.testing.assert_allclose(layer.weight.data, [[-1.0, -1.0]])


def test_gradients_computed_before_the_optimizer_exists_are_kept():
    w = nn.Parameter(np.array([1.0], np.float32))
    (w * 2).sum().backward()
    optim.SGD([w], lr=0.5).step()
    np.testing.assert_allclose(w.data, [0.0])


def test_zero_grad_then_backward_leaves_exactly_the_new_gradient_in_the_flat_buffer():
    """zero_grad writes no zeros until a gradient is read: the next backward overwrites the
    buffer with its gradient, and a parameter it does not reach still reads (and steps) as
    zeros."""
    used, unused = nn.Parameter(np.array([1.0, 2.0], np.float32)), nn.Parameter(np.ones(3, np.float32))
    opt = optim.SGD([used, unused], lr=0.5)
    (used * used).sum().backward()
    (unused * 3.0).sum().backward()                  # a first round leaves both gradients non-zero
    opt.zero_grad()
    (used * Tensor(np.array([5.0, 7.0], np.float32))).sum().backward()
    np.testing.assert_array_equal(used.grad, [5.0, 7.0])
    assert np.shares_memory(used.grad, opt.flat_grad)
    opt.step()
    np.testing.assert_array_equal(used.data, [1.0 - 2.5, 2.0 - 3.5])
    np.testing.assert_array_equal(unused.data, np.ones(3))   # its stale 3s were never applied
    np.testing.assert_array_equal(opt.flat_grad, [5.0, 7.0, 0.0, 0.0, 0.0])
    opt.zero_grad()
    np.testing.assert_array_equal(unused.grad, np.zeros(3))  # read before any backward: zeros
    assert np.shares_memory(unused.grad, opt.flat_grad)


def _conv_net():
    return nn.Sequential(nn.Conv2d(2, 3, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4))


def test_weight_gradients_written_in_place_equal_the_copied_ones():
    """After zero_grad a Linear's and a Conv2d's weight gradients are computed straight into
    the optimiser's flat buffer (Function.gradient_buffer); every gradient equals the one a
    network without an optimiser gets (a copy of the op's own array), bit for bit."""
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2, 9, 9)).astype(np.float32))
    plain, optimised = _conv_net(), _conv_net()
    optimised.load_state_dict(plain.state_dict())
    opt = optim.SGD(optimised.parameters(), lr=0.1)
    (plain(x) ** 2).sum().backward()
    for _ in range(2):                            # the second round overwrites the first's
        opt.zero_grad()
        (optimised(x) ** 2).sum().backward()
        for p, q in zip(plain.parameters(), optimised.parameters()):
            np.testing.assert_array_equal(q.grad, p.grad)
            assert np.shares_memory(q.grad, opt.flat_grad)


def test_a_leaf_used_twice_by_one_op_gets_both_gradients():
    """x @ w.T with x = w: the op must not write one of w's two gradients into its buffer,
    where the other would overwrite it."""
    from rlkit import functions as F
    values = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    upstream = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)  # not symmetric: two different gradients
    w, reference = nn.Parameter(values.copy()), Tensor(values.copy(), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    opt.zero_grad()
    (F.Linear()(w, w) * Tensor(upstream)).sum().backward()
    (F.Linear()(reference, reference) * Tensor(upstream)).sum().backward()
    np.testing.assert_array_equal(w.grad, reference.grad)
    np.testing.assert_array_equal(w.grad, upstream @ values + upstream.T @ values)


def test_clip_grad_norm_scales_all_gradients_together():
    a, b = nn.Parameter(np.zeros(2, np.float32)), nn.Parameter(np.zeros(1, np.float32))
    a.grad, b.grad = np.array([3.0, 0.0], np.float32), np.array([4.0], np.float32)
    norm = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0, 0.8], rtol=1e-5)
    assert optim.clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)


def test_optimizer_clip_grad_norm_on_the_flat_buffer_matches_the_free_function():
    a, b = nn.Parameter(np.zeros(2, np.float32)), nn.Parameter(np.zeros(1, np.float32))
    opt = optim.SGD([a, b], lr=1.0)
    a.grad[...], b.grad[...] = [3.0, 0.0], [4.0]
    assert opt.clip_grad_norm(1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0, 0.8], rtol=1e-5)
    opt.step()
    np.testing.assert_allclose(np.concatenate([a.data, b.data]), [-0.6, 0, -0.8], rtol=1e-5)


def test_learning_rate_schedules():
    opt = optim.SGD([nn.Parameter(np.zeros(1, np.float32))], lr=1.0)
    step = optim.StepDecay(opt, step_size=2, gamma=0.5)
    assert [step.step() for _ in range(5)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt.lr = 1.0
    expo = optim.ExponentialDecay(opt, gamma=0.9)
    assert [round(expo.step(), 6) for _ in range(2)] == [0.9, 0.81]
    opt.lr = 1.0
    inverse = optim.InverseTimeDecay(opt, decay=0.5)
    assert [inverse.step() for _ in range(2)] == [1 / 1.5, 0.5]
    opt.lr = 1.0
    linear = optim.LinearDecay(opt, end_lr=0.1, total_steps=4)
    assert [round(linear.step(), 6) for _ in range(6)] == [0.775, 0.55, 0.325, 0.1, 0.1, 0.1]


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    p = nn.Parameter(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([p, p])
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([p], lr=-1.0)
