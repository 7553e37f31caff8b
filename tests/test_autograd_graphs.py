"""Property test: autograd on random computation graphs (shared sub-expressions, fan-out,
broadcasting) agrees with centred differences. This is what caught the topological-order bug
where a node reached by two paths was differentiated before all its consumers."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rlkit import gradcheck

UNARY = [lambda a: a.tanh(), lambda a: a.sigmoid(), lambda a: a * a, lambda a: a.exp() * 0.1,
         lambda a: a.sum(axis=0, keepdims=True), lambda a: a.softmax(axis=-1)]
BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b * 0.5]

steps = st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 100), st.integers(0, 100)),
                 min_size=1, max_size=8)


def build(program):
    """A function of two inputs that applies ``program``: each step reads earlier nodes."""
    def fn(x, y):
        nodes = [x, y]
        for is_unary, op, i, j in program:
            a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
            nodes.append(UNARY[op](a) if is_unary else BINARY[op % len(BINARY)](a, b))
        return sum(nodes[2:], nodes[-1])   # every intermediate feeds the output
    return fn


@settings(max_examples=60, deadline=None)
@given(program=steps, seed=st.integers(0, 2**16))
def test_random_graphs_match_numerical_gradients(program, seed):
    rng = np.random.default_rng(seed)
    assert gradcheck(build(program), rng.standard_normal((3, 4)) * 0.5, rng.standard_normal((1, 4)) * 0.5)
