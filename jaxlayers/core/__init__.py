"""The layer contract: `Layer`, the static `Shape`, `ShapeError`, masks, lifting, containers' routines.

A layer is a pair of pure functions (docs/design.md):

    stateless:  init(key, input_shape) -> (output_shape, params)
                apply(params, x, *, rng=None, train=False) -> y
    stateful:   init(key, input_shape) -> (output_shape, params, state)
                apply(params, state, x, *, rng=None, train=False) -> (y, new_state)

The contract is this small package; it imports nothing else from jaxlayers.
"""
from .shapes import Shape, ShapeError, as_shape, dummy_shape, is_free, located, shape_matches
from .masks import DROP, PASS, THREAD, MaskRule, consumes_mask, makes_mask
from .params_check import check_params, stateful_call_error
from .layer import Layer, describe, on_symbolic_call
from .lifting import (as_layer, function_layer, infer_shape, inference, named, stateful_init,
                      with_state)
from .children import Record, call_child, child_rng, from_stateful, init_child, recording

__all__ = ["DROP", "PASS", "THREAD", "Layer", "MaskRule", "Record", "Shape", "ShapeError",
           "as_layer", "as_shape", "call_child", "check_params", "child_rng", "consumes_mask",
           "describe", "dummy_shape", "from_stateful", "function_layer", "infer_shape",
           "inference", "init_child", "is_free", "located", "makes_mask", "named",
           "on_symbolic_call", "recording", "shape_matches", "stateful_call_error",
           "stateful_init", "with_state"]
