"""Where `fit`'s arrays live: the default device, or a `jax.sharding.Mesh`."""
from __future__ import annotations

import jax


class Placement:
    """The default device, or a `Mesh` (batch split over its first axis, everything else
    replicated unless it already has a `NamedSharding` on the mesh)."""

    def __init__(self, mesh=None, batch_size=None):
        self.mesh = mesh
        if mesh is not None:
            from jax.sharding import NamedSharding, PartitionSpec as P
            self.axis = mesh.axis_names[0]
            self.data = NamedSharding(mesh, P(self.axis))
            self.replicated = NamedSharding(mesh, P())
            n = mesh.shape[self.axis]
            if batch_size is not None and batch_size % n:
                raise ValueError(f"batch_size {batch_size} must be divisible by the {n} "
                                 f"devices of mesh axis {self.axis!r}")

    def batch(self, tree):
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, self.data)

    def state(self, tree, like=None):
        if self.mesh is None:
            return jax.device_put(tree)
        from jax.sharding import NamedSharding

        def place(a, ref):
            s = getattr(ref, "sharding", None)
            if isinstance(s, NamedSharding) and s.mesh.shape == self.mesh.shape:
                return jax.device_put(a, s)
            return jax.device_put(a, self.replicated)
        return jax.tree_util.tree_map(place, tree, tree if like is None else like)
