"""Receptive-field tables: one row per layer of a network, for lesson 01 and ``pspnet-edu rf``.

Every node of the traced graph (or the named ones) with its operation, output size and field;
a node without a field gets a note saying why instead of an error, so that a whole network can
be tabulated. Taught in notebooks/01_receptive_fields.ipynb and 03_dilated_resnet.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from pspnet_edu.receptive_field.graph import analyse, is_feature_map, node_field, unknown_node_message
from pspnet_edu.receptive_field.recurrence import ReceptiveField2d, check_module


@dataclass(frozen=True)
class ReceptiveFieldRow:
    """One row of :func:`receptive_field_table`; ``field`` is None when ``note`` says why."""

    node: str
    op: str
    output_size: tuple[int, int] | None  # (H_out, W_out) of the node's feature map
    field: ReceptiveField2d | None
    note: str = ""


def receptive_field_table(
    model: nn.Module, input_shape: Sequence[int], nodes: Sequence[str] | None = None
) -> list[ReceptiveFieldRow]:
    """One row per node: name, op, output size, field (r, j, p per axis), and a note.

    ``nodes=None`` lists every leaf layer in the order it runs; otherwise the given names
    (containers such as ``"layer3"`` included). Nodes without a field get ``field=None`` and a
    note saying why, instead of an error, so that a whole network can be tabulated.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.MaxPool2d(2), nn.Flatten())
    >>> [(row.node, row.op, row.output_size, str(row.field)) for row in
    ...  receptive_field_table(net, (8, 8))]
    [('0', 'Conv2d', (6, 6), '3'), ('1', 'MaxPool2d', (3, 3), '4'), ('2', 'Flatten', None, 'None')]
    """
    check_module(model, "receptive_field_table")
    analysis = analyse(model, input_shape)
    if nodes is None:
        leaves = {n.target for n in analysis.gm.graph.nodes if n.op == "call_module"}
        nodes = [name for name in analysis.module_outputs if name in leaves]
    rows = []
    for name in nodes:
        if name not in analysis.module_outputs:
            raise ValueError(unknown_node_message(name, list(analysis.module_outputs), model))
        target = analysis.module_outputs[name]
        op = type(model.get_submodule(name)).__name__
        value = analysis.shapes[target]
        size = tuple(value.shape[-2:]) if is_feature_map(value) else None
        try:
            field, note = node_field(analysis, model, name), ""
        except ValueError as error:
            field, note = None, str(error)
        if field is not None:
            (top, bottom), (left, right) = field.span(0, 0)
            _, _, h, w = analysis.input_shape
            if size == (1, 1) and top <= 0 and left <= 0 and bottom >= h - 1 and right >= w - 1:
                note = "global: its unit sees the whole input"
        rows.append(ReceptiveFieldRow(name, op, size, field, note))  # type: ignore[arg-type]
    return rows
