"""Cross-cutting checks run on every registry entry (DESIGN.md section 4).

Each registry case is built, initialised and compiled once (`Built`, cached per case id) and
shared by every check: the eager outputs, the jitted apply, the jitted and vmapped init. The
checks compare a transformed path (jit, vmap, grad, bfloat16) against the eager one.
"""
import functools
import inspect

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
MEMBERS = 3  # ensemble size for the vmapped init


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


def run(model, params, state, x, train=False):
    return model.apply(params, state, x, rng=RNG if train else None, train=train)


def modes(case):
    return (False, True) if case.train else (False,)


def cast(tree, dtype):
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def member(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def assert_tree_close(a, b, atol=1e-5, rtol=1e-5):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    jax.tree_util.tree_map(
        lambda u, v: np.testing.assert_allclose(np.asarray(u, np.float32),
                                                np.asarray(v, np.float32), atol=atol, rtol=rtol),
        a, b)


class Built:
    """One registry case built and initialised once, its compiled functions made on first use.

    ``layer`` is the case's layer, ``model`` its stateful form, ``init`` the eager
    ``model.init(KEY, input_shape)`` (out_shape, params, state), ``x`` the example input.
    """

    def __init__(self, case):
        self.case = case
        self.layer = case.make()
        self.model = jl.with_state(self.layer)
        self.init = self.model.init(KEY, case.input_shape)
        _, self.params, self.state = self.init
        self.x = make_input(case)
        self.apply = jax.jit(functools.partial(run, self.model), static_argnames="train")

    @functools.cache
    def eager(self, train):
        """The eager ``(y, new_state)`` on the example input."""
        return run(self.model, self.params, self.state, self.x, train)

    @functools.cache
    def forward64(self, train):
        """``(F, args)``: the float64 problem of `_grad_problem`, `F` jitted once and shared
        by the gradient checks (its primal calls reuse one compile)."""
        f, args = _grad_problem(self, train)
        return jax.jit(f), args

    @functools.cached_property
    def stacked(self):
        """``jit(vmap(init))`` over `stacked_keys` (KEY first): (out_shape, params, state)
        stacked."""
        keys = stacked_keys()
        init = jax.vmap(self.model.init, in_axes=(0, None))
        return jax.jit(init, static_argnums=1)(keys, self.case.input_shape)


def stacked_keys():
    """MEMBERS keys, the first of them KEY: member 0 of a vmapped init is the eager init."""
    return jnp.concatenate([KEY[None], jax.random.split(jax.random.key(3), MEMBERS - 1)])


_BUILT = {}


def built_case(case):
    """The shared `Built` of `case`. Only the latest case is kept (the checks run case by
    case), so memory stays flat over the registry."""
    if case.id not in _BUILT:
        _BUILT.clear()
        _BUILT[case.id] = Built(case)
    return _BUILT[case.id]


# Module scope: pytest runs every check of one case before the next case.
@pytest.fixture(scope="module",
                params=[pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.id))
                        for c in CASES])
def case(request):
    return request.param


@pytest.fixture
def built(case):
    return built_case(case)


def test_init_form_matches_stateful_flag(built):
    layer = built.layer
    out = layer.init(KEY, built.case.input_shape)
    assert len(out) == (3 if layer.stateful else 2)
    init, apply = layer
    assert init is layer.init and apply is layer.apply


def test_output_shape_agrees_with_eval_shape(built):
    out_shape, params, state = built.init
    traced = jax.eval_shape(lambda p, s, x: run(built.model, p, s, x)[0], params, state, built.x)
    flat_out = jax.tree_util.tree_leaves(out_shape, is_leaf=_is_shape)
    flat_traced = jax.tree_util.tree_leaves(traced)
    assert len(flat_out) == len(flat_traced)
    for o, t in zip(flat_out, flat_traced):
        assert isinstance(o, Shape)
        assert len(o) == len(t.shape), (o, t.shape)
        assert all(is_free(d) or d == e for d, e in zip(o, t.shape)), (o, t.shape)
    # Batch-free dims stay free: the batch axis of every output is None.
    if not built.case.carries_state:
        assert all(o[0] is None for o in flat_out if len(o))


def test_init_under_jit_and_vmap(built):
    """One compiled ``jit(vmap(init))``: every member has the eager params' shapes, and the
    member made from KEY equals the eager init (vmap and jit change no number)."""
    eager = built.init
    shapes, params, state = built.stacked
    assert shapes == eager[0]
    for stacked, ref in [(params, eager[1]), (state, eager[2])]:
        for leaf, one in zip(jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(ref)):
            assert leaf.shape == (MEMBERS,) + one.shape
    assert_tree_close(member((params, state), 0), eager[1:])


def test_jit_matches_eager(built):
    for train in modes(built.case):
        jitted = built.apply(built.params, built.state, built.x, train=train)
        assert_tree_close(jitted, built.eager(train), atol=1e-5)


def test_vmap_over_batches(built):
    xs = jax.tree_util.tree_map(lambda a: jnp.stack([a, a * 0.5 + 1.0]).astype(a.dtype), built.x)
    f = jax.jit(jax.vmap(lambda x: built.apply(built.params, built.state, x)[0]))
    batched = f(xs)
    for i in range(2):
        assert_tree_close(member(batched, i),
                          built.apply(built.params, built.state, member(xs, i))[0], atol=1e-5)


def test_vmap_over_stacked_params(built):
    _, params, state = built.stacked
    f = jax.jit(jax.vmap(lambda p, s: built.apply(p, s, built.x)[0], axis_size=MEMBERS))
    ys = f(params, state)
    for i in range(MEMBERS):
        assert_tree_close(member(ys, i),
                          built.apply(member(params, i), member(state, i), built.x)[0],
                          atol=1e-5)
    if jax.tree_util.tree_leaves(params):
        first = jax.tree_util.tree_leaves(ys)[0]
        assert not np.allclose(first[0], first[1]), "members with different keys agree"


def _grad_problem(built, train):
    """(f, args) in float64: ``f(*args) -> (y, new_state)`` of the params (and the input, if
    the registry says so), the rest of apply's arguments fixed."""
    params, state, x = (cast(t, jnp.float64) for t in (built.params, built.state, built.x))
    if built.case.grad_wrt_input:
        return (lambda p, x: run(built.model, p, state, x, train)), (params, x)
    return (lambda p: run(built.model, p, state, x, train)), (params,)


def test_check_grads(built):
    """`check_grads` (reverse mode, float64) on the jitted apply: the gradient users take
    (under jit) against finite differences of every output."""
    if not built.case.grad:
        pytest.skip("not differentiable (declared in the registry)")
    with jax.enable_x64(True):
        for train in modes(built.case):
            f, args = built.forward64(train)
            jax.test_util.check_grads(lambda *a: f(*a)[0], args, order=1,
                                      modes=("rev",), atol=1e-4, rtol=1e-4, eps=1e-6)


def _loss_at(f, args, direction, t, weights):
    """The training-style loss at ``args + t * direction`` from the jitted forward `f`,
    summed in numpy (no compile): the projection of the outputs plus the activity losses."""
    moved = jax.tree_util.tree_map(
        lambda a, d: np.asarray(a) + t * d if jnp.issubdtype(a.dtype, jnp.floating) else a,
        args, direction)
    y, new_state = f(*moved)
    dots = sum(float(np.sum(np.asarray(u, np.float64) * np.asarray(w)))
               for u, w in zip(jax.tree_util.tree_leaves(y), jax.tree_util.tree_leaves(weights)))
    return dots + float(jl.activity_loss(new_state))


def test_jitted_loss_grad_matches_finite_differences(built):
    """The gradient of a training-style loss (a random projection of every output plus the
    activity losses carried in the state) taken as one compiled ``jit(grad(loss))``, as a
    training step takes it: not identically zero, and along a random direction equal to
    the loss' central difference (float64). Catches lowering bugs of the whole fused step
    and a state path (activity loss) that check_grads of the outputs does not see."""
    if not built.case.grad:
        pytest.skip("not differentiable (declared in the registry)")
    with jax.enable_x64(True):
        for train in modes(built.case):
            forward, args = built.forward64(train)
            draw = np.random.default_rng(7).standard_normal      # numpy: nothing to compile
            leaves, tree = jax.tree_util.tree_flatten(built.eager(train)[0])
            weights = tree.unflatten([draw(a.shape) for a in leaves])

            def loss(*a):
                y, new_state = forward(*a)
                dots = jax.tree_util.tree_map(lambda u, w: jnp.sum(u * w), y, weights)
                return sum(jax.tree_util.tree_leaves(dots)) + jl.activity_loss(new_state)

            grads = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))(*args)
            assert any(np.any(np.asarray(g) != 0) for g in jax.tree_util.tree_leaves(grads)), \
                "the gradient is identically zero: the check would compare nothing"
            arg_leaves, arg_tree = jax.tree_util.tree_flatten(args)
            direction = arg_tree.unflatten([draw(a.shape) for a in arg_leaves])
            along = sum(float(np.vdot(g, d)) for g, d in zip(
                jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction)))
            eps = 1e-6
            difference = (_loss_at(forward, args, direction, eps, weights)
                          - _loss_at(forward, args, direction, -eps, weights)) / (2 * eps)
            np.testing.assert_allclose(along, difference, rtol=1e-4, atol=1e-4)


def test_bfloat16(built):
    if not built.case.bf16:
        pytest.skip("no bfloat16 path (declared in the registry)")
    y32 = built.eager(False)[0]
    y16 = built.apply(cast(built.params, jnp.bfloat16), cast(built.state, jnp.bfloat16),
                      cast(built.x, jnp.bfloat16))[0]
    for a, b in zip(jax.tree_util.tree_leaves(y16), jax.tree_util.tree_leaves(y32)):
        if jnp.issubdtype(b.dtype, jnp.floating):
            assert a.dtype == jnp.bfloat16, a.dtype
        scale = float(jnp.max(jnp.abs(b))) + 1e-3
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b),
                                   atol=built.case.bf16_tol * scale, rtol=0)


def test_eval_leaves_state_unchanged(built):
    state = built.state
    _, new_state = built.eager(False)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
    if built.case.carries_state:   # a stateful RNN advances in inference too: same shapes
        for a, b in zip(jax.tree_util.tree_leaves(new_state), jax.tree_util.tree_leaves(state)):
            assert a.shape == b.shape and a.dtype == b.dtype
    else:
        assert_tree_close(new_state, state, atol=0, rtol=0)
    if built.case.train:
        _, trained = built.eager(True)
        assert jax.tree_util.tree_structure(trained) == jax.tree_util.tree_structure(state)
        for a, b in zip(jax.tree_util.tree_leaves(trained), jax.tree_util.tree_leaves(state)):
            assert a.shape == b.shape and a.dtype == b.dtype


@pytest.mark.parametrize("train_case", [pytest.param(c, id=c.id,
                                                     marks=pytest.mark.xdist_group(c.id))
                                        for c in CASES if c.train])
def test_training_needs_rng_only_when_random(train_case):
    b = built_case(train_case)
    b.eager(False)  # no rng needed in inference
    with pytest.raises(ValueError, match="rng"):
        b.model.apply(b.params, b.state, b.x, train=True)


def _public_constructors():
    """{name: function} for every public `jl` function documented to return a Layer or Cell."""
    found = {}
    for name in dir(jl):
        obj = getattr(jl, name)
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        returns = inspect.signature(obj).return_annotation
        if getattr(returns, "__name__", returns) in ("Layer", "Cell"):
            found[name] = obj
    return found


def test_every_public_layer_has_a_registry_entry(monkeypatch):
    constructors = _public_constructors()
    called = set()

    def recording(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            called.add(fn)
            return fn(*args, **kwargs)
        return wrapper

    for name, fn in constructors.items():
        monkeypatch.setattr(jl, name, recording(fn))
    for case in CASES:
        jl.with_state(case.make())
    missing = sorted(name for name, fn in constructors.items() if fn not in called)
    assert len(constructors) > 80, sorted(constructors)
    assert not missing, f"public layer constructors with no entry in tests/cases/: {missing}"
