"""Execution graphs as text: Mermaid flowcharts and Graphviz digraphs.

:func:`render_mermaid` and :func:`render_dot` write a laid-out
:class:`~durable_server.views.graph.Graph`. Pure and deterministic: the same graph always
gives the same text. Nodes are coloured by state (see
:data:`~durable_server.views.graph.STATES`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from durable_server.views.graph import STATES, Cluster, Graph, GraphNode

__all__ = ["render_dot", "render_mermaid"]

_COLORS: Final[dict[str, tuple[str, str, str]]] = {
    # state: (fill, stroke, text)
    "completed": ("#d3f9d8", "#2b8a3e", "#1b4332"),
    "running": ("#d0ebff", "#1971c2", "#0b3d91"),
    "waiting": ("#fff3bf", "#e67700", "#5c3c00"),
    "failed": ("#ffe3e3", "#c92a2a", "#7d1414"),
    "skipped": ("#f1f3f5", "#adb5bd", "#868e96"),
    "pending": ("#ffffff", "#868e96", "#495057"),
}

_MERMAID_SHAPES: Final[dict[str, tuple[str, str]]] = {
    "start": ('(["', '"])'),
    "end": ('(["', '"])'),
    "step": ('["', '"]'),
    "into": ('[["', '"]]'),
    "compensation": ('{{"', '"}}'),
    "decision": ('{"', '"}'),
    "fork": ('(("', '"))'),
    "join": ('(("', '"))'),
}


def _walk(items: Sequence[str | Cluster]) -> Iterator[str]:
    for item in items:
        if isinstance(item, Cluster):
            yield from _walk(item.items)
        else:
            yield item


def _mermaid_text(text: str) -> str:
    text = " ".join(text.splitlines())
    for raw, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, code)
    return text


def render_mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart (``flowchart TD``), one classDef per state used."""
    title = _mermaid_text(graph.title or graph.name)
    lines = ["---", f"title: {title}", "---", "flowchart TD"]

    def emit(items: Sequence[str | Cluster], indent: str) -> None:
        for item in items:
            if isinstance(item, Cluster):
                lines.append(f'{indent}subgraph {item.id} ["{_mermaid_text(item.title)}"]')
                emit(item.items, indent + "    ")
                lines.append(f"{indent}end")
                continue
            node = graph.nodes[item]
            opening, closing = _MERMAID_SHAPES[node.shape]
            label = "<br/>".join(_mermaid_text(line) for line in node.lines)
            lines.append(f"{indent}{node.id}{opening}{label}{closing}")

    emit(graph.items, "    ")
    for edge in graph.edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.src} {arrow}{label} {edge.dst}")
    ids_by_state: dict[str, list[str]] = {}
    for node_id in _walk(graph.items):
        state = graph.nodes[node_id].state
        if state is not None:
            ids_by_state.setdefault(state, []).append(node_id)
    for state in STATES:
        if state in ids_by_state:
            fill, stroke, color = _COLORS[state]
            dash = ",stroke-dasharray:4 3" if state == "skipped" else ""
            lines.append(f"    classDef {state} fill:{fill},stroke:{stroke},color:{color}{dash}")
    for state in STATES:
        if state in ids_by_state:
            lines.append(f"    class {','.join(ids_by_state[state])} {state}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _dot_attrs(attrs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f'{k}="{_dot_text(v)}"' for k, v in attrs)


_DOT_SHAPES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    # shape: (Graphviz shape, style)
    "start": ("oval", ()),
    "end": ("oval", ()),
    "step": ("box", ("rounded",)),
    "into": ("box", ("rounded", "bold")),
    "compensation": ("hexagon", ("dashed",)),
    "decision": ("diamond", ()),
    "fork": ("box", ("filled",)),
    "join": ("box", ("filled",)),
}


def _dot_node(node: GraphNode) -> str:
    shape, base_style = _DOT_SHAPES[node.shape]
    style = list(base_style)
    attrs: list[tuple[str, str]] = []
    if node.shape in ("fork", "join"):
        attrs.append(("label", ""))
        attrs += [("shape", shape), ("width", "1.2"), ("height", "0.08"), ("fixedsize", "true")]
        fill = _COLORS[node.state][1] if node.state is not None else "black"
        attrs += [("style", ",".join(style)), ("fillcolor", fill), ("color", fill)]
        return f"{node.id} [{_dot_attrs(attrs)}];"
    label = "\\n".join(_dot_text(line) for line in node.lines)
    attrs.append(("shape", shape))
    if node.state is not None:
        fill, stroke, color = _COLORS[node.state]
        style.append("filled")
        if node.state == "skipped" and "dashed" not in style:
            style.append("dashed")
        attrs += [("fillcolor", fill), ("color", stroke), ("fontcolor", color)]
    if style:
        attrs.insert(1, ("style", ",".join(style)))
    # The label is escaped already (its \n line breaks must stay as they are).
    return f'{node.id} [label="{label}", {_dot_attrs(attrs)}];'


def render_dot(graph: Graph) -> str:
    """The graph as a Graphviz digraph: clusters for groups, fill colours per state."""
    name, title = _dot_text(graph.name), _dot_text(graph.title or graph.name)
    lines = [
        f'digraph "{name}" {{',
        f'  graph [label="{title}", labelloc="t", fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize="11"];',
        '  edge [fontname="Helvetica", fontsize="10"];',
    ]

    def emit(items: Sequence[str | Cluster], indent: str) -> None:
        for item in items:
            if isinstance(item, Cluster):
                lines.append(f"{indent}subgraph cluster_{item.id} {{")
                lines.append(f'{indent}  label="{_dot_text(item.title)}";')
                lines.append(f'{indent}  style="rounded,dashed";')
                lines.append(f'{indent}  labeljust="l";')
                emit(item.items, indent + "  ")
                lines.append(f"{indent}}}")
                continue
            lines.append(f"{indent}{_dot_node(graph.nodes[item])}")

    emit(graph.items, "  ")
    for edge in graph.edges:
        attrs: list[tuple[str, str]] = []
        if edge.label:
            attrs.append(("label", edge.label))
        if edge.dashed:
            attrs += [("style", "dashed"), ("arrowhead", "empty")]
        suffix = f" [{_dot_attrs(attrs)}]" if attrs else ""
        lines.append(f"  {edge.src} -> {edge.dst}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"
