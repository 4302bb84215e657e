"""Params of the wrong structure or shape, and a stateful model called in the stateless form,
are clear errors that name the place (issue 14, items 1 and 8)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)
X = jnp.ones((5, 4))


@pytest.fixture(scope="module")
def chain():
    model = jl.serial(jl.Dense(3), jl.relu, jl.Dense(2))
    return model, model.init(KEY, (None, 4))[1]


def test_serial_with_too_few_params_entries(chain):
    model, params = chain
    with pytest.raises(jl.ShapeError, match=r"serial: expects 3 params entries .*got 2"):
        model.apply(params[:2], X)
    with pytest.raises(jl.ShapeError, match=r"expects 3 params entries .*got 0"):
        jax.jit(model.apply)((), X)


def test_leaf_weights_checked_against_its_construction(chain):
    model, params = chain
    wrong = (params[0], (), {"kernel": jnp.ones((4, 4)), "bias": jnp.ones(4)})
    with pytest.raises(jl.ShapeError, match=r"serial\[2\] Dense\(2\): params\['bias'\] has "
                                            r"shape \(4,\), expected \(2,\)"):
        jax.jit(model.apply)(wrong, X)
    with pytest.raises(jl.ShapeError, match=r"Dense\(3\): params\['kernel'\] has shape "
                                            r"\(4, 4\), expected \(4, 3\)"):
        jl.Dense(3).apply({"kernel": jnp.ones((4, 4)), "bias": jnp.ones(3)}, X)
    with pytest.raises(jl.ShapeError, match=r"missing params\['bias'\]"):
        jl.Dense(3).apply({"kernel": jnp.ones((4, 3))}, X)


def test_right_params_still_run_under_jit_grad_and_vmap(chain):
    model, params = chain
    y = jax.jit(model.apply)(params, X)
    assert y.shape == (5, 2)
    g = jax.grad(lambda p: model.apply(p, X).sum())(params)
    assert g[0]["kernel"].shape == (4, 3)
    stacked = jax.vmap(lambda k: model.init(k, (None, 4))[1])(jax.random.split(KEY, 3))
    assert jax.vmap(model.apply, in_axes=(0, None))(stacked, X).shape == (3, 5, 2)
    # bfloat16 params are the same structure: the dtype is not checked
    half = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), params)
    assert model.apply(half, X.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_parallel_branch_and_model_check_their_entries():
    par = jl.parallel(jl.Dense(2), jl.Dense(3))
    _, p = par.init(KEY, ((None, 4), (None, 4)))
    with pytest.raises(jl.ShapeError, match=r"parallel: expects 2 params entries"):
        par.apply(p[:1], (X, X))
    br = jl.branch(jl.Dense(2), jl.Dense(3))
    _, p = br.init(KEY, (None, 4))
    with pytest.raises(jl.ShapeError, match=r"branch\[1\] parallel: expects 2 params"):
        br.apply((p[0], p[1][:1]), X)
    inp = jl.Input((4,))
    model = jl.Model(inp, jl.Dense(2)(jl.Dense(3)(inp)))
    _, p = model.init(KEY)
    with pytest.raises(jl.ShapeError, match=r"functional: expects params as a dict .*"
                                            r"\['dense', 'dense_1'\], got \['dense'\]"):
        model.apply({"dense": p["dense"]}, X)
    swapped = {"dense": p["dense_1"], "dense_1": p["dense"]}
    with pytest.raises(jl.ShapeError,
                       match=r"dense Dense\(3\): params\['bias'\] has shape \(2,\), expected \(3,\)"):
        model.apply(swapped, X)


def test_stateful_model_called_statelessly_says_how_to_call_it():
    model = jl.serial(jl.Dense(3), jl.BatchNormalization(), jl.Dense(2))
    _, params, state = model.init(KEY, (None, 4))
    with pytest.raises(TypeError, match=r"serial is stateful \(its BatchNormalization\(\) "
                                        r"carries state\).*apply\(params, state, x.*with_state"):
        model.apply(params, X)
    y, _ = model.apply(params, state, X)
    assert y.shape == (5, 2)
    bn = jl.BatchNormalization()
    _, p, s = bn.init(KEY, (None, 4))
    with pytest.raises(TypeError, match=r"BatchNormalization\(\) is stateful"):
        bn.apply(p, X)
    np.testing.assert_allclose(bn.apply(p, s, X)[0], X / np.sqrt(1 + 1e-3), rtol=1e-6)


def test_the_check_stages_nothing_into_the_traced_step():
    """The check runs init under eval_shape on its own: the first trace of a jitted apply
    (when the check's cache is cold) holds no random key from it, only the model's work."""
    model = jl.serial(jl.Dense(3), jl.LayerNormalization(), jl.Dense(2))
    params = model.init(KEY, (None, 6))[1]
    first = jax.make_jaxpr(model.apply)(params, jnp.ones((5, 6)))
    again = jax.make_jaxpr(model.apply)(params, jnp.ones((5, 6)))
    assert not [e for e in first.jaxpr.eqns if "random" in e.primitive.name]
    assert len(first.jaxpr.eqns) == len(again.jaxpr.eqns)
