"""`plot_model`: draw a model's layer graph to PNG, SVG or PDF.

Needs matplotlib, the ``plot`` extra (``pip install 'jaxlayers[plot]'``). The layout is
computed here (layers ranked by their longest path from the inputs, ordered within a rank
by their parents' positions), so no Graphviz binary is needed: everything installs
with pip.
"""
from __future__ import annotations

import os

from .core import Shape, as_layer

_MISSING = ("jl.plot_model needs matplotlib, which is not installed: "
            "pip install 'jaxlayers[plot]' (or: pip install matplotlib)")


def _graph(model, input_shape):
    """``(boxes, edges)``: boxes ``[(title, type, shape)]``, edges ``[(i, j)]``."""
    from .summary import summary
    result = summary(model, input_shape, print_fn=None)
    if model.graph is not None:
        graph = model.graph
        index = {r.layer: i for i, r in enumerate(result.rows)}
        edges = []
        for node in graph.nodes:
            for t in node.input_tensors():
                e = (index[t.node.layer], index[node.layer])
                if e not in edges:
                    edges.append(e)
        rows = result.rows
    else:
        rows = [r for r in result.rows if r.depth == 0]
        edges = [(i, i + 1) for i in range(len(rows) - 1)]
    boxes = [(r.label, r.layer.name, _fmt(r.output_shape)) for r in rows]
    return boxes, edges


def _fmt(shape):
    if isinstance(shape, Shape):
        return repr(shape)
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in shape.items()) + "}"
    if isinstance(shape, (tuple, list)):
        return "[" + ", ".join(_fmt(s) for s in shape) + "]"
    return repr(shape)


def layout(n: int, edges) -> list:
    """``(rank, position)`` of each of `n` boxes: rank = longest path from a source,
    positions within a rank ordered by the mean position of the box's parents."""
    parents = [[a for a, b in edges if b == j and a != j] for j in range(n)]
    rank = [0] * n
    for _ in range(n):  # longest paths; capped, as a shared layer can close a loop
        new = [max((rank[a] + 1 for a in parents[j]), default=0) for j in range(n)]
        if new == rank:
            break
        rank = [min(r, n - 1) for r in new]
    pos = [0.0] * n
    for r in range(max(rank, default=-1) + 1):
        members = [j for j in range(n) if rank[j] == r]
        key = {j: (sum(pos[a] for a in parents[j]) / len(parents[j]) if parents[j] else j)
               for j in members}
        for i, j in enumerate(sorted(members, key=lambda j: (key[j], j))):
            pos[j] = i - (len(members) - 1) / 2
    return list(zip(rank, pos))


def plot_model(model, input_shape=None, to_file: str = "model.png", show_shapes: bool = True,
               show_layer_names: bool = True, dpi: int = 96) -> str:
    """Draw `model`'s graph to `to_file` (PNG, SVG or PDF, by its extension).

    One box per layer with its name, type and (with `show_shapes`) output shape; arrows
    follow the data. A functional Model shows its graph; any other layer its top-level
    children as a chain (a `serial`) or a single box. `input_shape` is as for `summary`
    (a functional Model needs none). Returns `to_file`.

    Raises ImportError with what to install when matplotlib is missing.
    """
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyBboxPatch
    except ImportError:
        raise ImportError(_MISSING) from None
    ext = os.path.splitext(to_file)[1].lower().lstrip(".")
    if ext not in ("png", "svg", "pdf"):
        raise ValueError(f"plot_model: to_file must end in .png, .svg or .pdf, got {to_file!r}")
    model = as_layer(model)
    boxes, edges = _graph(model, input_shape)
    texts = []
    for title, kind, shape in boxes:
        lines = [f"{title}  ({kind})" if show_layer_names and title else kind]
        if show_shapes:
            lines.append(f"output: {shape}")
        texts.append("\n".join(lines))
    places = layout(len(boxes), edges)
    char_w, line_h = 0.075, 0.2  # inches at font size 9
    box_w = max(len(line) for t in texts for line in t.split("\n")) * char_w + 0.3
    box_h = (2 if show_shapes else 1) * line_h + 0.2
    gap_x, gap_y = 0.4, 0.55
    width = max((sum(1 for r, _ in places if r == rank) for rank in {r for r, _ in places}),
                default=1)
    ranks = max((r for r, _ in places), default=0) + 1
    long_edges = any(abs(places[b][0] - places[a][0]) > 1 for a, b in edges)
    fig_w = (width + (2 if long_edges else 0)) * (box_w + gap_x) + gap_x
    fig_h = ranks * (box_h + gap_y) + gap_y
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, fig_w)
    ax.set_ylim(0, fig_h)
    ax.axis("off")
    centre = [(fig_w / 2 + p * (box_w + gap_x), fig_h - gap_y - box_h / 2 - r * (box_h + gap_y))
              for r, p in places]
    for (x, y), text in zip(centre, texts):
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0,rounding_size=0.06",
                                    facecolor="#eef3fb", edgecolor="#3d5a80", linewidth=1))
        ax.text(x, y, text, ha="center", va="center", fontsize=9, family="monospace")
    for a, b in edges:
        if a == b:  # a shared layer fed by its own output
            continue
        (xa, ya), (xb, yb) = centre[a], centre[b]
        start, end = (xa, ya - box_h / 2), (xb, yb + box_h / 2)
        rad = 0.0
        if abs(places[b][0] - places[a][0]) > 1:  # a long edge bends around the boxes between
            length = ((end[0] - start[0]) ** 2 + (end[1] - start[1]) ** 2) ** 0.5
            side = 1 if (xa + xb) / 2 <= fig_w / 2 else -1
            rad = side * (box_w + gap_x / 2) / length * (1 if end[1] < start[1] else -1)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="#3d5a80", linewidth=1,
                                    shrinkA=0, shrinkB=1, connectionstyle=f"arc3,rad={rad}"))
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text
        fig.savefig(to_file, format=ext)
    return to_file
