"""Cross-cutting checks run on every registry entry (DESIGN.md section 4)."""
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.core import Shape, is_free
from tests.cases import all_cases

CASES = all_cases()
KEY = jax.random.key(0)
RNG = jax.random.key(42)


def _is_shape(s):
    return isinstance(s, Shape)


def concrete(shape, batch):
    return tuple(batch if is_free(d) else d for d in shape)


def make_input(case, key=jax.random.key(1)):
    shapes = jax.tree_util.tree_leaves(case.input_shape, is_leaf=lambda s: isinstance(s, tuple)
                                       and all(d is None or isinstance(d, int) for d in s))
    keys = jax.random.split(key, len(shapes))
    make = case.make_input or (lambda k, s: jax.random.normal(k, s, jnp.float32))
    xs = [make(k, concrete(s, case.batch)) for k, s in zip(keys, shapes)]
    return tuple(xs) if len(xs) > 1 or _is_multi(case.input_shape) else xs[0]


def _is_multi(shape):
    return isinstance(shape, tuple) and shape and all(isinstance(s, tuple) for s in shape)


def setup(case):
    layer = case.make()
    model = jl.with_state(layer)
    out_shape, params, state = model.init(KEY, case.input_shape)
    return layer, model, out_shape, params, state, make_input(case)


def run(model, params, state, x, train=False):
    return model.apply(params, state, x, rng=RNG if train else None, train=train)


def modes(case):
    return (False, True) if case.train else (False,)


def cast(tree, dtype):
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def assert_tree_close(a, b, atol=1e-5, rtol=1e-5):
    jax.tree_util.tree_map(
        lambda u, v: np.testing.assert_allclose(np.asarray(u, np.float32),
                                                np.asarray(v, np.float32), atol=atol, rtol=rtol),
        a, b)


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request):
    return request.param


def test_init_form_matches_stateful_flag(case):
    layer = case.make()
    out = layer.init(KEY, case.input_shape)
    assert len(out) == (3 if layer.stateful else 2)
    init, apply = layer
    assert init is layer.init and apply is layer.apply


def test_output_shape_agrees_with_eval_shape(case):
    _, model, out_shape, params, state, x = setup(case)
    traced = jax.eval_shape(lambda p, s, x: run(model, p, s, x)[0], params, state, x)
    flat_out = jax.tree_util.tree_leaves(out_shape, is_leaf=_is_shape)
    flat_traced = jax.tree_util.tree_leaves(traced)
    assert len(flat_out) == len(flat_traced)
    for o, t in zip(flat_out, flat_traced):
        assert isinstance(o, Shape)
        assert len(o) == len(t.shape), (o, t.shape)
        assert all(is_free(d) or d == e for d, e in zip(o, t.shape)), (o, t.shape)
    # Batch-free dims stay free: the batch axis of every output is None.
    if not case.carries_state:
        assert all(o[0] is None for o in flat_out if len(o))


def test_init_under_jit_and_vmap(case):
    layer = case.make()
    model = jl.with_state(layer)
    eager = model.init(KEY, case.input_shape)
    jitted = jax.jit(model.init, static_argnums=1)(KEY, case.input_shape)
    assert jitted[0] == eager[0]
    assert_tree_close(jitted[1:], eager[1:])
    keys = jax.random.split(KEY, 3)
    shapes, params, state = jax.vmap(model.init, in_axes=(0, None))(keys, case.input_shape)
    assert shapes == eager[0]
    for leaf, ref in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(eager[1])):
        assert leaf.shape == (3,) + ref.shape


def test_jit_matches_eager(case):
    _, model, _, params, state, x = setup(case)
    for train in modes(case):
        eager = run(model, params, state, x, train)
        jitted = jax.jit(lambda p, s, x: run(model, p, s, x, train))(params, state, x)
        assert_tree_close(jitted, eager, atol=1e-5)


def test_vmap_over_batches(case):
    _, model, _, params, state, x = setup(case)
    xs = jax.tree_util.tree_map(lambda a: jnp.stack([a, a * 0.5 + 1.0]).astype(a.dtype), x)
    batched = jax.vmap(lambda x: run(model, params, state, x)[0])(xs)
    for i in range(2):
        xi = jax.tree_util.tree_map(lambda a: a[i], xs)
        assert_tree_close(jax.tree_util.tree_map(lambda a: a[i], batched),
                          run(model, params, state, xi)[0], atol=1e-5)


def test_vmap_over_stacked_params(case):
    layer = case.make()
    model = jl.with_state(layer)
    x = make_input(case)
    keys = jax.random.split(KEY, 3)
    params, state = jax.vmap(lambda k: model.init(k, case.input_shape)[1:])(keys)
    ys = jax.vmap(lambda p, s: run(model, p, s, x)[0], axis_size=3)(params, state)
    for i in range(3):
        p_i = jax.tree_util.tree_map(lambda a: a[i], params)
        s_i = jax.tree_util.tree_map(lambda a: a[i], state)
        assert_tree_close(jax.tree_util.tree_map(lambda a: a[i], ys),
                          run(model, p_i, s_i, x)[0], atol=1e-5)
    if jax.tree_util.tree_leaves(params):
        first = jax.tree_util.tree_leaves(ys)[0]
        assert not np.allclose(first[0], first[1]), "members with different keys agree"


def test_check_grads(case):
    if not case.grad:
        pytest.skip("not differentiable (declared in the registry)")
    _, model, _, params, state, x = setup(case)
    with jax.enable_x64(True):
        p64, s64, x64 = cast(params, jnp.float64), cast(state, jnp.float64), cast(x, jnp.float64)
        for train in modes(case):
            if case.grad_wrt_input:
                f = lambda p, x: run(model, p, s64, x, train)[0]
                args = (p64, x64)
            else:
                f = lambda p: run(model, p, s64, x64, train)[0]
                args = (p64,)
            jax.test_util.check_grads(f, args, order=1, modes=("rev",), atol=1e-4, rtol=1e-4,
                                      eps=1e-6)


def test_bfloat16(case):
    if not case.bf16:
        pytest.skip("no bfloat16 path (declared in the registry)")
    _, model, _, params, state, x = setup(case)
    y32 = run(model, params, state, x)[0]
    y16 = run(model, cast(params, jnp.bfloat16), cast(state, jnp.bfloat16),
              cast(x, jnp.bfloat16))[0]
    for a, b in zip(jax.tree_util.tree_leaves(y16), jax.tree_util.tree_leaves(y32)):
        if jnp.issubdtype(b.dtype, jnp.floating):
            assert a.dtype == jnp.bfloat16, a.dtype
        scale = float(jnp.max(jnp.abs(b))) + 1e-3
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b), atol=case.bf16_tol
                                   * scale, rtol=0)


def test_eval_leaves_state_unchanged(case):
    _, model, _, params, state, x = setup(case)
    _, new_state = run(model, params, state, x, train=False)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
    if case.carries_state:   # a stateful RNN advances in inference too: same shapes, dtypes
        for a, b in zip(jax.tree_util.tree_leaves(new_state), jax.tree_util.tree_leaves(state)):
            assert a.shape == b.shape and a.dtype == b.dtype
    else:
        assert_tree_close(new_state, state, atol=0, rtol=0)
    if case.train:
        _, trained = run(model, params, state, x, train=True)
        assert jax.tree_util.tree_structure(trained) == jax.tree_util.tree_structure(state)
        for a, b in zip(jax.tree_util.tree_leaves(trained), jax.tree_util.tree_leaves(state)):
            assert a.shape == b.shape and a.dtype == b.dtype


@pytest.mark.parametrize("case", [c for c in CASES if c.train], ids=lambda c: c.id)
def test_training_needs_rng_only_when_random(case):
    _, model, _, params, state, x = setup(case)
    run(model, params, state, x, train=False)  # no rng needed in inference
    with pytest.raises(ValueError, match="rng"):
        model.apply(params, state, x, train=True)
