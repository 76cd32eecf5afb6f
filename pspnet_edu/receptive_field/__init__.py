"""Receptive fields: theoretical (Araujo et al. 2019) and effective (Luo et al. 2016).

Why: PSPNet's argument (Zhao et al. 2017, Sec. 3.2) is that the *empirical* receptive field of
a deep ResNet is far smaller than its theoretical one, so the network needs the pyramid
pooling module to see global context. To check that claim we need (1) the theoretical field,
computed right on networks with several paths (residual additions, concatenations), and (2)
the effective field of Luo et al., "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016: the gradient of one output unit with respect to
the input.

Five modules, one idea each:

    recurrence  one axis, a chain of layers: receptive_field(layers) -> [ReceptiveField]
    region      the exact window one unit reads, clipped to the image: input_region(layers, unit, size)
    graph       any nn.Module, via torch.fx: receptive_field_of(model, input_shape, node)
    table       one row per layer, for lessons and the CLI: receptive_field_table(model, shape)
    effective   the gradient-based field: effective_receptive_field(model, shape, node)

``sequential_receptive_field_naive(model)`` is the WRONG sequential walk, kept as a
counter-example for lesson 01.

Taught in notebooks/01_receptive_fields.ipynb.

Deviation: none from the paper; the conventions follow Araujo et al. (pixel indices start at 0,
fields are closed intervals, "padding" is the left/top padding, which is what torch uses for
odd effective kernels and for ``padding="same"``).
"""

from pspnet_edu.receptive_field.effective import Box, EffectiveReceptiveField, effective_receptive_field
from pspnet_edu.receptive_field.graph import node_names, receptive_field_of
from pspnet_edu.receptive_field.recurrence import (
    Layer,
    ReceptiveField,
    ReceptiveField2d,
    receptive_field,
    sequential_receptive_field_naive,
)
from pspnet_edu.receptive_field.region import input_pixels, input_region
from pspnet_edu.receptive_field.table import ReceptiveFieldRow, receptive_field_table

__all__ = [
    "Box", "EffectiveReceptiveField", "Layer", "ReceptiveField", "ReceptiveField2d", "ReceptiveFieldRow",
    "effective_receptive_field", "input_pixels", "input_region", "node_names", "receptive_field",
    "receptive_field_of", "receptive_field_table", "sequential_receptive_field_naive",
]
