"""Read back the Mermaid flowchart that `aiostep_dialogs.graph.to_mermaid` writes, as
plain nodes and edges, so a page can draw it without a Mermaid renderer (no CDN, no bundle).

Only the subset ``to_mermaid`` emits is understood: ``id((label))``, ``id["label"]``,
``id[["label"]]`` (a called wizard) and ``id[/"label"/]`` nodes, and ``a --> b`` /
``a -.->|label| b`` edges. Anything else is skipped.
"""

from __future__ import annotations

import html
import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Edge", "Flowchart", "Node", "parse_flowchart"]

_NODE = re.compile(
    r"""^(?P<id>[A-Za-z_][\w-]*)\s*
        (?:\(\((?P<circle>.*)\)\)          # start((start))
          |\[/"(?P<note>.*)"/\]            # back[/"/back: ..."/]
          |\[\["(?P<call>.*)"\]\]          # call_address[["Address<br/><i>sub-wizard</i>"]]
          |\["(?P<box>.*)"\]               # NAME["NAME<br/><i>prompt</i>"]
        )$""",
    re.VERBOSE,
)
_EDGE = re.compile(
    r"^(?P<src>[A-Za-z_][\w-]*)\s*(?P<arrow>-->|-\.->)\s*(?:\|(?P<label>[^|]*)\|\s*)?"
    r"(?P<dst>[A-Za-z_][\w-]*)$"
)
_TAG = re.compile(r"<[^>]+>")


@dataclass
class Node:
    """A node of the flowchart.

    Attributes:
        id: the Mermaid id (a wizard state's name, ``start``, ``finish``, ``back``...).
        title: the first line of its label.
        detail: the rest of its label (a step's prompt), or ``""``.
        shape: ``"terminal"`` (start/finish), ``"step"``, ``"call"`` (another wizard a step
            calls or jumps to) or ``"note"`` (a command's note).
    """

    id: str
    title: str
    detail: str = ""
    shape: str = "step"


@dataclass
class Edge:
    """An edge: ``dashed`` for a branch or a command (``-.->``), with its label if any."""

    src: str
    dst: str
    label: str = ""
    dashed: bool = False


@dataclass
class Flowchart:
    """The nodes (in source order) and edges of a flowchart."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The flowchart as JSON-ready lists of node and edge dicts."""
        return {
            "nodes": [asdict(node) for node in self.nodes],
            "edges": [asdict(edge) for edge in self.edges],
        }


def _text(label: str) -> list[str]:
    """The lines of a Mermaid label: ``<br/>`` splits lines, other tags are dropped."""
    parts = re.split(r"<br\s*/?>", label)
    return [html.unescape(_TAG.sub("", part)).strip() for part in parts]


def parse_flowchart(source: str) -> Flowchart:
    """Parse the ``flowchart`` subset that ``to_mermaid`` writes into nodes and edges.

    An edge may name a node no line declared (Mermaid allows it): the node is added, titled
    by its id.
    """
    chart = Flowchart()
    known: dict[str, Node] = {}
    for raw in source.splitlines():
        line = raw.strip()
        if not line or line.startswith(("flowchart", "graph", "%%")):
            continue
        edge = _EDGE.match(line)
        if edge is not None:
            chart.edges.append(
                Edge(
                    src=edge["src"],
                    dst=edge["dst"],
                    label=(edge["label"] or "").strip(),
                    dashed=edge["arrow"] == "-.->",
                )
            )
            continue
        node = _NODE.match(line)
        if node is None or node["id"] in known:
            continue
        if node["circle"] is not None:
            lines, shape = _text(node["circle"]), "terminal"
        elif node["note"] is not None:
            lines, shape = _text(node["note"]), "note"
        elif node["call"] is not None:
            lines, shape = _text(node["call"]), "call"
        else:
            lines, shape = _text(node["box"]), "step"
        made = Node(id=node["id"], title=lines[0], detail=" ".join(lines[1:]), shape=shape)
        known[made.id] = made
        chart.nodes.append(made)
    for edge_ in chart.edges:
        for end in (edge_.src, edge_.dst):
            if end not in known:
                known[end] = Node(id=end, title=end)
                chart.nodes.append(known[end])
    return chart
