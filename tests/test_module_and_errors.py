"""Module bookkeeping (parameters, modes, state dicts, devices) and user-facing error messages."""
import numpy as np
import pytest

from rlkit import DeviceUnavailableError, Tensor, is_grad_enabled, no_grad, nn, resolve_device
from rlkit.backend import cuda_available


def test_state_dict_names_round_trip_and_npz_without_pickle(tmp_path):
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias",
                           "1.running_mean", "1.running_var"]
    path = tmp_path / "net.npz"
    np.savez(path, **state)
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    with np.load(path, allow_pickle=False) as loaded:
        other.load_state_dict(dict(loaded))
    x = Tensor(np.ones((5, 3), np.float32))
    net.eval(), other.eval()
    np.testing.assert_array_equal(net(x).numpy(), other(x).numpy())


def test_load_state_dict_names_missing_unexpected_and_misshaped_entries():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    state = net.state_dict()
    bad = dict(state)
    del bad["2.bias"]
    bad["9.weight"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['2.bias'\].*unexpected keys \['9.weight'\]"):
        net.load_state_dict(bad)
    wrong = dict(state, **{"0.weight": np.zeros((4, 5))})
    with pytest.raises(ValueError, match=r"0.weight: expected \(4, 3\), got \(4, 5\)"):
        net.load_state_dict(wrong)


def test_load_state_dict_copies_in_place():
    layer = nn.Linear(2, 2)
    before = layer.weight.data
    layer.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    assert layer.weight.data is before and layer.weight.data.dtype == np.float32
    np.testing.assert_array_equal(before, np.eye(2))


def test_linear_wrong_input_shape_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Linear\(in_features=3136, out_features=512.*\(\.\.\., 3136\).*\(32, 3000\)"):
        nn.Linear(3136, 512)(Tensor(np.zeros((32, 3000), np.float32)))


def test_conv2d_fed_nhwc_says_so():
    conv = nn.Conv2d(4, 32, kernel_size=8, stride=4)
    with pytest.raises(ValueError, match="NHWC"):
        conv(Tensor(np.zeros((2, 84, 84, 4), np.float32)))
    with pytest.raises(ValueError, match="4-D NCHW"):
        conv(Tensor(np.zeros((84, 84), np.float32)))


def test_train_eval_modes_reach_every_submodule():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(2)))
    net.eval()
    assert not any(m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())


def test_parameters_are_found_in_nested_modules_once():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.Sequential(nn.Linear(2, 3)))
    assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.0.weight", "1.0.bias"]
    assert net.num_parameters() == 2 * 2 + 2 + 2 * 3 + 3


def test_no_grad_records_nothing_and_detach_cuts_the_graph():
    w = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = w * 2
    assert not y.requires_grad
    z = (w * 3).detach() * w
    z.sum().backward()
    np.testing.assert_array_equal(w.grad, [3, 3, 3])


def test_no_grad_on_one_thread_leaves_another_thread_recording():
    # DQN-style overlap: targets under no_grad on a worker while the main thread records
    import threading
    inside, release = threading.Event(), threading.Event()
    w = Tensor(np.ones(3), requires_grad=True)
    seen = {}

    def worker():
        with no_grad():
            inside.set()
            release.wait(5)
            seen["worker"] = (w * 2).requires_grad

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(5)
    recorded = w * 3
    release.set()
    thread.join(5)
    assert recorded.requires_grad and seen["worker"] is False
    recorded.sum().backward()
    np.testing.assert_array_equal(w.grad, [3, 3, 3])


def test_no_grad_as_a_decorator_restores_recording_after_nested_calls():
    @no_grad()
    def depth(n):
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(3) == 3 and is_grad_enabled()
    assert (Tensor(np.ones(2), requires_grad=True) * 2).requires_grad


def test_gradients_accumulate_across_backward_calls():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * w).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [2 + 3, 4 + 3])


def test_shared_subexpression_gradient_and_freed_graph():
    a = Tensor(np.array(3.0), requires_grad=True)
    b = a * a
    c = b + b * a          # c = a^2 + a^3, dc/da = 2a + 3a^2 = 33
    c.backward()
    assert a.grad == pytest.approx(33.0)
    with pytest.raises(RuntimeError, match="already freed"):
        c.backward()


def test_backward_on_non_scalar_needs_a_gradient():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2, 4, 6])


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating point"):
        Tensor(np.arange(3), requires_grad=True)


def test_python_numbers_default_to_float32():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    x = Tensor(np.ones(2, np.float32))
    assert (x * 2.5 + 1).dtype == np.float32


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(cuda_available(), reason="this machine has a usable GPU: the no-GPU error cannot happen")
def test_cuda_without_a_gpu_raises_one_clear_error(monkeypatch):
    with pytest.raises(DeviceUnavailableError, match="device 'cuda' was requested but"):
        resolve_device("cuda")
    monkeypatch.setenv("RLKIT_DEVICE", "cuda")
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        resolve_device()
    with pytest.raises(DeviceUnavailableError):
        nn.Linear(2, 2).to("cuda")
