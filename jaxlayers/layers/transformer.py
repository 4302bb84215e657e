"""TransformerEncoder and TransformerDecoder: keras_hub's blocks, built from this package's
MultiHeadAttention, LayerNormalization, Dense and Dropout.

Params are a dict keyed by keras_hub's sublayer names (``self_attention_layer`` /
``self_attention``, ``cross_attention``, ``*_layer_norm``, ``feedforward_intermediate_dense``,
``feedforward_output_dense``), each the sublayer's own params, so keras_hub weights map one
to one. Masks follow keras_hub: the time-step mask (and ``padding_mask`` keywords) mask the
attended keys; the encoder's attention also sees the query's mask, as Keras'
MultiHeadAttention does; the decoder's self-attention is causal by default.
"""
from __future__ import annotations

import jax

from .. import activations as _activations
from .. import initializers as _initializers
from ..core import Layer, Shape, ShapeError, as_shape, child_rng, describe, makes_mask
from .args import boolean, fraction, keras_layer, number, positive_int
from .attention_shapes import attention_mask as _combine_masks
from .core import Dense, Dropout
from .kv_cache import cached_attention
from .multi_head_attention import MultiHeadAttention
from .normalization import LayerNormalization

__all__ = ["TransformerEncoder", "TransformerDecoder"]


def _check(kind, intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon,
           kernel_initializer, bias_initializer, normalize_first):
    positive_int(kind, "intermediate_dim", intermediate_dim)
    positive_int(kind, "num_heads", num_heads)
    dropout = fraction(kind, "dropout", dropout, include_one=False)
    number(kind, "layer_norm_epsilon", layer_norm_epsilon, minimum=0, open_min=True)
    boolean(kind, "normalize_first", normalize_first)
    for arg, getter, value in (("activation", _activations.get, activation),
                               ("kernel_initializer", _initializers.get, kernel_initializer),
                               ("bias_initializer", _initializers.get, bias_initializer)):
        try:
            getter(value)
        except ValueError as e:
            raise ValueError(f"{kind}: {arg}: {e}") from None
    return dropout


def _sublayers(name, hidden, cross, *, intermediate_dim, num_heads, dropout, activation,
               layer_norm_epsilon, kernel_initializer, bias_initializer, attention_name,
               normalize_first):
    """keras_hub's sublayers in its build order: ``{name: Layer}``."""
    head_dim = hidden // num_heads
    if head_dim == 0:
        raise ShapeError(f"the feature size {hidden} must be at least num_heads={num_heads} "
                         f"(the head size is features // num_heads)", name)
    inits = dict(kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    def attention():
        return MultiHeadAttention(num_heads, head_dim, dropout=dropout, **inits)

    def norm():
        return LayerNormalization(epsilon=layer_norm_epsilon)
    subs = {attention_name: attention(), "self_attention_layer_norm": norm()}
    if cross:
        subs.update(cross_attention=attention(), cross_attention_layer_norm=norm())
    subs.update(feedforward_layer_norm=norm(),
                feedforward_intermediate_dense=Dense(intermediate_dim, activation, **inits),
                feedforward_output_dense=Dense(hidden, **inits))
    return subs


def _padding(padding_mask, mask):
    """keras_hub's `merge_padding_and_attention_mask`: an explicit padding mask replaces the
    input's time-step mask."""
    return padding_mask if padding_mask is not None else mask


def _block(kind, attention_name, decoder, config):
    dropout = _check(kind, **config)
    config = dict(config, dropout=dropout)
    name = describe(kind, config["intermediate_dim"], config["num_heads"],
                    **({"normalize_first": True} if config["normalize_first"] else {}))
    normalize_first = config["normalize_first"]
    drop = Dropout(dropout)

    def split(x):
        if decoder and isinstance(x, (tuple, list)) and not isinstance(x, Shape):
            if len(x) != 2:
                raise ShapeError(f"expected the decoder sequence or a tuple (decoder_sequence, "
                                 f"encoder_sequence), received a tuple of {len(x)}", name)
            return x[0], x[1]
        if isinstance(x, (tuple, list)) and not isinstance(x, Shape):
            raise ShapeError(f"expected one (batch, sequence, features) input, received a "
                             f"tuple of {len(x)}", name)
        return x, None

    def build(x_shape, encoder_shape):
        return _sublayers(name, x_shape[-1], encoder_shape is not None,
                          attention_name=attention_name, **config)

    def init(key, input_shape):
        shapes = as_shape(input_shape)
        x_shape, enc_shape = split(shapes)
        if len(x_shape) != 3 or x_shape[-1] is None:
            raise ShapeError(f"expected a (batch, sequence, features) input with known "
                             f"features, received {Shape(x_shape)!r}", name)
        if enc_shape is not None and len(enc_shape) != 3:
            raise ShapeError(f"expected a (batch, sequence, features) encoder sequence, "
                             f"received {Shape(enc_shape)!r}", name)
        subs = build(x_shape, enc_shape)
        inner = Shape(x_shape[:-1] + (config["intermediate_dim"],))
        params = {}
        for i, (n, layer) in enumerate(subs.items()):
            src = ((x_shape, enc_shape) if n == "cross_attention" else
                   inner if n == "feedforward_output_dense" else x_shape)
            params[n] = layer.init(jax.random.fold_in(key, i), src)[1]
        return x_shape, params

    def residual_step(subs, params, x, run, norm, i, rng, train):
        """keras_hub's pre- or post-norm residual: ``x + dropout(run(norm?(x)))``."""
        y = subs[norm].apply(params[norm], x) if normalize_first else x
        y, extra = run(y)
        if dropout > 0:
            y = drop.apply((), y, rng=child_rng(rng, i), train=train)
        y = x + y
        if not normalize_first:
            y = subs[norm].apply(params[norm], y)
        return y, extra

    def feedforward(subs, params, x, rng, train):
        def run(y):
            y = subs["feedforward_intermediate_dense"].apply(
                params["feedforward_intermediate_dense"], y)
            return subs["feedforward_output_dense"].apply(params["feedforward_output_dense"],
                                                          y), None
        return residual_step(subs, params, x, run, "feedforward_layer_norm", 9, rng, train)[0]

    def checked_inputs(params, x):
        x, enc = split(x)
        if getattr(x, "ndim", 0) != 3:
            raise ShapeError(f"expected a (batch, sequence, features) input, received shape "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        if decoder and ("cross_attention" in params) != (enc is not None):
            raise ValueError(
                f"{name}: the params were made "
                f"{'with' if 'cross_attention' in params else 'without'} cross-attention; "
                f"call it the same way it was initialized: apply(params, "
                f"{'(decoder_sequence, encoder_sequence)' if 'cross_attention' in params else 'decoder_sequence'})")
        return x, enc, build(x.shape, None if enc is None else enc.shape)

    return name, drop, split, init, residual_step, feedforward, checked_inputs


_DOC_ARGS = """
      intermediate_dim: the hidden size of the feedforward network, a positive int.
      num_heads: the number of attention heads; the head size is features // num_heads.
      dropout: the dropout rate of the attention weights and of each residual branch.
      activation: the feedforward network's activation (a name or a callable).
      layer_norm_epsilon: the epsilon of every LayerNormalization.
      kernel_initializer, bias_initializer: the initializers of every dense kernel / bias.
      normalize_first: pre-norm (normalize each branch's input) instead of post-norm
        (normalize after each residual sum)."""


def _with_args(constructor):
    constructor.__doc__ = constructor.__doc__.format(args=_DOC_ARGS)
    return constructor


def _options(intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon,
             kernel_initializer, bias_initializer, normalize_first):
    return dict(locals())


@keras_layer
@_with_args
def TransformerEncoder(intermediate_dim, num_heads, dropout=0, activation="relu",
                       layer_norm_epsilon=1e-05, kernel_initializer="glorot_uniform",
                       bias_initializer="zeros", normalize_first=False) -> Layer:
    """A transformer encoder block (Vaswani et al.): keras_hub's `TransformerEncoder`.

    Self-attention then a two-layer feedforward network, each a residual branch with
    dropout and LayerNormalization (after the sum, or before the branch with
    `normalize_first`).

    Args:{args}

    ``apply(params, x, *, rng, train, mask=None, padding_mask=None, attention_mask=None,
    return_attention_scores=False)``: `mask` / `padding_mask` ``(batch, T)`` mark real
    steps, `attention_mask` ``(batch, T, T)``; with `return_attention_scores` it returns
    ``(y, scores (batch, heads, T, T))``. The time-step mask passes through.

    Params: ``self_attention_layer`` (MultiHeadAttention), ``self_attention_layer_norm``,
    ``feedforward_layer_norm``, ``feedforward_intermediate_dense``,
    ``feedforward_output_dense``.

    Input shape: ``(batch, T, features)``. Output shape: the same.
    """
    config = _options(intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon,
                      kernel_initializer, bias_initializer, normalize_first)
    name, drop, split, init, residual_step, feedforward, checked_inputs = _block(
        "TransformerEncoder", "self_attention_layer", False, config)

    def apply(params, x, *, rng=None, train=False, mask=None, padding_mask=None,
              attention_mask=None, return_attention_scores=False):
        x, _, subs = checked_inputs(params, x)
        keys = _padding(padding_mask, mask)
        combined = _combine_masks(None, keys, None, attention_mask)

        def run(y):
            out = subs["self_attention_layer"].apply(
                params["self_attention_layer"], y, rng=child_rng(rng, 0), train=train,
                mask=mask, attention_mask=combined,
                return_attention_scores=return_attention_scores)
            return out if return_attention_scores else (out, None)
        x, scores = residual_step(subs, params, x, run, "self_attention_layer_norm", 1, rng,
                                  train)
        x = feedforward(subs, params, x, rng, train)
        return (x, scores) if return_attention_scores else x

    return Layer(init, apply, name=name, masking=makes_mask(_first_mask, takes=True))


def _first_mask(x, mask):
    """The (decoder) sequence's mask passes on, as keras_hub's `supports_masking`."""
    if mask is None or hasattr(mask, "shape"):
        return mask
    return mask[0] if isinstance(mask, (tuple, list)) and mask else None


@keras_layer
@_with_args
def TransformerDecoder(intermediate_dim, num_heads, dropout=0, activation="relu",
                       layer_norm_epsilon=1e-05, kernel_initializer="glorot_uniform",
                       bias_initializer="zeros", normalize_first=False) -> Layer:
    """A transformer decoder block: keras_hub's `TransformerDecoder`.

    Causal self-attention, then (when initialized on a tuple ``(decoder_sequence,
    encoder_sequence)``) cross-attention to the encoder sequence, then a two-layer
    feedforward network; each a residual branch with dropout and LayerNormalization.

    Args:{args}

    ``apply(params, x, *, rng, train, mask=None, decoder_padding_mask=None,
    decoder_attention_mask=None, encoder_padding_mask=None, encoder_attention_mask=None,
    use_causal_mask=True, cache=None)``: `x` is the decoder sequence or the tuple; `mask`
    the decoder's ``(batch, T)`` time-step mask or a tuple of both masks. With a `cache`
    (`jl.decoder_cache`) the new steps of `x` attend to the cached ones and apply returns
    ``(y, new_cache)``: the pure step of incremental decoding (docs/attention.md).

    Params: ``self_attention``, ``self_attention_layer_norm``, (``cross_attention``,
    ``cross_attention_layer_norm``), ``feedforward_intermediate_dense``,
    ``feedforward_output_dense``, ``feedforward_layer_norm``.

    Input shape: ``(batch, T, features)`` or a tuple with ``(batch, S, encoder_features)``.
    Output shape: ``(batch, T, features)``.
    """
    config = _options(intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon,
                      kernel_initializer, bias_initializer, normalize_first)
    name, drop, split, init, residual_step, feedforward, checked_inputs = _block(
        "TransformerDecoder", "self_attention", True, config)

    def apply(params, x, *, rng=None, train=False, mask=None, decoder_padding_mask=None,
              decoder_attention_mask=None, encoder_padding_mask=None,
              encoder_attention_mask=None, use_causal_mask=True, cache=None):
        x, enc, subs = checked_inputs(params, x)
        dec_mask, enc_mask = (mask, None) if enc is None or mask is None or hasattr(
            mask, "shape") else (tuple(mask) + (None,))[:2]
        if cache is not None:
            if (train and dropout > 0) or not use_causal_mask or any(
                    m is not None for m in (dec_mask, decoder_padding_mask,
                                            decoder_attention_mask)):
                raise ValueError(f"{name}: cached decoding is causal inference over unpadded "
                                 f"steps: it takes no decoder masks, use_causal_mask=False or "
                                 f"train=True with dropout")
        # The causal part stays a flag: MultiHeadAttention adds it to the other masks, and
        # with none of them it runs `is_causal` (no (T, T) mask built, nothing to compile).
        self_mask = None if cache is not None else _combine_masks(
            None, _padding(decoder_padding_mask, dec_mask), None, decoder_attention_mask)
        new_cache = []

        def self_attention(y):
            if cache is not None:
                out, c = cached_attention(name, params["self_attention"], y, cache)
                new_cache.append(c)
                return out, None
            return subs["self_attention"].apply(params["self_attention"], y,
                                                rng=child_rng(rng, 0), train=train,
                                                attention_mask=self_mask,
                                                use_causal_mask=use_causal_mask), None
        x, _ = residual_step(subs, params, x, self_attention, "self_attention_layer_norm", 1,
                             rng, train)
        if enc is not None:
            cross_mask = _combine_masks(None, _padding(encoder_padding_mask, enc_mask), None,
                                        encoder_attention_mask)

            def cross(y):
                return subs["cross_attention"].apply(
                    params["cross_attention"], (y, enc), rng=child_rng(rng, 2), train=train,
                    attention_mask=cross_mask), None
            x, _ = residual_step(subs, params, x, cross, "cross_attention_layer_norm", 3, rng,
                                 train)
        x = feedforward(subs, params, x, rng, train)
        return (x, new_cache[0]) if cache is not None else x

    return Layer(init, apply, name=name, masking=makes_mask(_first_mask, takes=True))

