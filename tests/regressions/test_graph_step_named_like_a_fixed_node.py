"""A wizard whose state is named ``back``, ``cancel``, ``start``-like or a Mermaid keyword
(``end``) drew a broken flowchart: the step's node id was the state name, so the ``/back`` and
``/cancel`` notes redeclared (and relabelled) the step's node, and a node named ``end`` closes
a Mermaid block. Such a step gets its own id (``step_<name>``); its label still names the
state, and the web playground finds the current step by that label."""

from __future__ import annotations

from enum import Enum, auto

from aiostep_dialogs import Wizard, step
from aiostep_dialogs.flowchart import parse_flowchart


class Awkward(Wizard):
    """Steps named like the flowchart's own nodes and a Mermaid keyword."""

    class State(Enum):
        back = auto()
        cancel = auto()
        end = auto()
        step_x = auto()
        NAME = auto()

    @step(State.back, prompt="Where to go back to?")
    async def back(self, text: str) -> None: ...

    @step(State.cancel, prompt="Cancel what?")
    async def cancel(self, text: str) -> None: ...

    @step(State.end, prompt="The end?")
    async def end(self, text: str) -> None: ...

    @step(State.step_x, prompt="x?")
    async def step_x(self, text: str) -> None: ...

    @step(State.NAME, prompt="Name?")
    async def name(self, text: str) -> None: ...


def test_a_step_named_like_a_fixed_node_or_a_mermaid_keyword_gets_its_own_node() -> None:
    source = Awkward.to_mermaid()
    lines = [line.strip() for line in source.splitlines()]
    ids = [line.split("[", 1)[0].split("(", 1)[0] for line in lines if "[" in line or "((" in line]
    assert len(ids) == len(set(ids)), f"a node is declared twice: {ids}"
    assert not any(line.split(" ", 1)[0] == "end" for line in lines)
    chart = parse_flowchart(source)
    steps = [node for node in chart.nodes if node.shape == "step"]
    assert [node.title for node in steps] == ["back", "cancel", "end", "step_x", "NAME"]
    assert [node.detail for node in steps] == [
        "Where to go back to?",
        "Cancel what?",
        "The end?",
        "x?",
        "Name?",
    ]
    assert "NAME" in [node.id for node in steps]  # an ordinary name stays the id
    by_title = {node.title: node.id for node in steps}
    edges = {(edge.src, edge.dst) for edge in chart.edges}
    assert ("start", by_title["back"]) in edges
    assert (by_title["back"], by_title["cancel"]) in edges
    assert (by_title["cancel"], by_title["end"]) in edges
    assert (by_title["NAME"], "finish") in edges
    notes = [node for node in chart.nodes if node.shape == "note"]
    assert {node.id for node in notes} == {"back", "cancel"}
