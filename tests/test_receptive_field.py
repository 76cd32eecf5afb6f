"""Tests for pspnet_edu.receptive_field.

Reference values and where they come from:

* Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
  Distill 2019, Table 1: alexnet_v2 195, vgg_16 212, resnet_v1_50 483, resnet_v1_101 1027
  (field of the last feature map). VGG-16 and AlexNet have the same geometry in TF-slim and
  torchvision (only the paddings differ), so their sizes must match exactly.
* torchvision's ResNets differ from TF-slim's resnet_v1: torchvision puts the stride-2 3x3 conv
  in the FIRST block of a stage ("ResNet V1.5"), TF-slim in the LAST block of the previous
  stage, so in TF-slim more 3x3 convs run at the larger jump. Hand recurrence for torchvision
  ResNet-50 (r += (k-1)*j, j *= s, p += pad*j):
      conv1 7x7/2 p3:  r=7   j=2  p=3      maxpool 3x3/2 p1: r=11  j=4  p=5
      layer1 3 x 3x3:  r=11+3*8=35                          j=4   p=5+3*4=17
      layer2 3x3/2 then 3 x 3x3 at j=8:   r=35+8+3*16=91    j=8   p=17+4+3*8=45
      layer3 3x3/2 then 5 x 3x3 at j=16:  r=91+16+5*32=267  j=16  p=45+8+5*16=133
      layer4 3x3/2 then 2 x 3x3 at j=32:  r=267+32+2*64=427 j=32  p=133+16+2*32=213
  The same walk in TF-slim order gives 483, Distill's number (stride at the end of blocks 1-3:
  11 -> 27 -> 35 (j=8) -> 83 -> 99 (j=16) -> 259 -> 291 (j=32) -> 483), which confirms the
  bookkeeping. ResNet-101 ([3, 4, 23, 3]): torchvision 971 (TF-slim 1027 the same way);
  ResNet-18: 435; dilated ResNet-50/101 ([False, True, True]): the same 427/971 with jump 8,
  because dilation 2 and 4 exactly replace the lost strides.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from pspnet_edu.receptive_field import (
    Box,
    Layer,
    ReceptiveField,
    effective_receptive_field,
    input_pixels,
    input_region,
    node_names,
    receptive_field,
    receptive_field_of,
    receptive_field_table,
    sequential_receptive_field_naive,
)
from pspnet_edu.receptive_field.recurrence import conv_layers, pool_layers

DILATED = [False, True, True]  # torchvision's replace_stride_with_dilation for output stride 8


def _meta_model(name: str, **kwargs: object) -> nn.Module:
    """A torchvision model built on the meta device: the analysis needs no weights, and
    VGG-16's 138M random parameters would take seconds to initialise."""
    with torch.device("meta"):
        return getattr(torchvision.models, name)(weights=None, **kwargs)


# ---------------------------------------------------------------- layer lists, by hand


def test_three_3x3_convs_see_7_pixels() -> None:
    fields = receptive_field([(3, 1, 1)] * 3)
    assert [(f.size, f.stride, f.padding) for f in fields] == [(3, 1, 1), (5, 1, 2), (7, 1, 3)]


def test_stride_2_then_3x3_sees_7_with_jump_2() -> None:
    # r = 3 + (3-1)*2 = 7, j = 2, p = 1 + 1*2 = 3
    assert receptive_field([(3, 2, 1), (3, 1, 1)])[-1] == ReceptiveField(7, 2, 3)


def test_dilated_stack() -> None:
    # rates 1, 2, 4 with 'same' padding d: r = 1 + 2*(1+2+4) = 15, p = 1+2+4 = 7
    fields = receptive_field([(3, 1, 1, 1), Layer(3, 1, 2, 2), (3, 1, 4, 4)])
    assert fields[-1] == ReceptiveField(15, 1, 7)
    # a dilated conv after a stride: (d(k-1)) * j = 4 * 2 more pixels
    assert receptive_field([(2, 2, 0), (3, 1, 2, 2)])[-1] == ReceptiveField(2 + 8, 2, 4)


def test_span_and_center_of_a_unit() -> None:
    rf = receptive_field([(3, 2, 1), (3, 1, 1)])[-1]
    assert rf.span(0) == (-3, 3) and rf.span(5) == (7, 13) and rf.center(5) == 10.0


def _vgg16_layers() -> list[tuple[int, int, int]]:
    conv, pool = (3, 1, 1), (2, 2, 0)
    return [conv] * 2 + [pool] + [conv] * 2 + [pool] + ([conv] * 3 + [pool]) * 3


def test_vgg16_layer_list_matches_distill() -> None:
    fields = receptive_field(_vgg16_layers())
    assert fields[-1].size == 212  # pool5, Distill 2019 Table 1 (vgg_16)
    assert fields[-2].size == 196  # conv5_3
    assert (fields[-1].stride, fields[-1].padding) == (32, 90)  # torchvision paddings, by hand


def test_alexnet_layer_list_matches_distill() -> None:
    # torchvision AlexNet features: conv 11/4 p2, pool 3/2, conv 5 p2, pool 3/2, 3 x conv 3 p1, pool
    layers = [(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0)] + [(3, 1, 1)] * 3 + [(3, 2, 0)]
    fields = receptive_field(layers)
    assert fields[-1].size == 195  # pool5, Distill 2019 Table 1 (alexnet_v2)
    assert fields[-2].size == 163  # conv5: 67 (pool2) + 3 * 2 * 16


@pytest.mark.parametrize(
    "layer",
    [(0, 1, 0), (3, 0, 1), (3, 1, -1), (3, 1, 1, 0), (3.0, 1, 1), (True, 1, 0)],
)
def test_bad_layers_raise(layer: tuple) -> None:
    with pytest.raises(ValueError, match="must be"):
        receptive_field([(3, 1, 1), layer])


def test_malformed_layer_raises() -> None:
    with pytest.raises(ValueError, match=r"\(kernel, stride, padding"):
        receptive_field([(3, 1)])


# ---------------------------------------------------------------- torchvision networks


def _resnet_main_path(blocks: list[int], bottleneck: bool, dilated: bool) -> list[tuple]:
    """The longest path of a torchvision ResNet as a layer list (an independent derivation:
    the shortcut of each block sees a field nested inside the main path's)."""
    layers: list[tuple] = [(7, 2, 3), (3, 2, 1)]
    dilation = 1
    for stage, count in enumerate(blocks):
        stride = 1 if stage == 0 else 2
        previous = dilation
        if dilated and stage >= 2:  # torchvision: the stride becomes dilation
            dilation, stride = dilation * 2, 1
        for block in range(count):
            d = previous if block == 0 else dilation  # the first block keeps the old rate
            s = stride if block == 0 else 1
            if bottleneck:
                layers += [(1, 1, 0), (3, s, d, d), (1, 1, 0)]
            else:
                layers += [(3, s, d, d), (3, 1, dilation, dilation)]
    return layers


@pytest.mark.parametrize(
    ("name", "blocks", "bottleneck", "dilated", "expected"),
    [
        ("resnet18", [2, 2, 2, 2], False, False, (435, 32, 217)),
        ("resnet50", [3, 4, 6, 3], True, False, (427, 32, 213)),
        ("resnet101", [3, 4, 23, 3], True, False, (971, 32, 485)),
        ("resnet50", [3, 4, 6, 3], True, True, (427, 8, 213)),
        ("resnet101", [3, 4, 23, 3], True, True, (971, 8, 485)),
    ],
)
def test_torchvision_resnets_layer4(
    name: str, blocks: list[int], bottleneck: bool, dilated: bool, expected: tuple
) -> None:
    dilation = DILATED if dilated else [False] * 3
    model = _meta_model(name, replace_stride_with_dilation=dilation)
    rf = receptive_field_of(model, (224, 224), "layer4")
    assert (rf.size, rf.stride, rf.padding) == tuple((v, v) for v in expected)
    main_path = _resnet_main_path(blocks, bottleneck, dilated)
    assert receptive_field(main_path)[-1] == ReceptiveField(*expected)


def test_dilated_resnet_keeps_stride_8() -> None:
    model = _meta_model("resnet50", replace_stride_with_dilation=DILATED)
    rows = receptive_field_table(model, (224, 224), ["layer2", "layer3", "layer4"])
    assert [row.field.stride for row in rows] == [(8, 8)] * 3
    assert [row.output_size for row in rows] == [(28, 28)] * 3


def test_vgg16_and_alexnet_graphs_match_layer_lists() -> None:
    vgg = _meta_model("vgg16")
    assert receptive_field_of(vgg, (224, 224), "features.30").size == (212, 212)  # pool5
    assert receptive_field_of(vgg, (224, 224), "features.28").size == (196, 196)  # conv5_3
    alexnet = _meta_model("alexnet")
    assert receptive_field_of(alexnet, (224, 224), "features.12").size == (195, 195)
    assert receptive_field_of(alexnet, (224, 224), "features.10").size == (163, 163)


def test_naive_sequential_walk_is_wrong_on_resnet50() -> None:
    model = _meta_model("resnet50")
    right = receptive_field_of(model, (224, 224), "layer4")
    naive = sequential_receptive_field_naive(model)
    # each downsample 1x1/2 is counted as one more stride-2 layer: jump 2*4*2^3*2^3 = 256
    assert naive.stride == 256 and right.stride == (32, 32)
    assert naive.size == 1963 and right.size == (427, 427)
    # on a true chain it agrees
    vgg = _meta_model("vgg16")
    assert sequential_receptive_field_naive(vgg) == receptive_field(_vgg16_layers())[-1]


# ---------------------------------------------------------------- graph handling


class TwoPaths(nn.Module):
    """Two 3x3 convs on one path, a 1x1 conv on the other, joined by add or by cat."""

    def __init__(self, join: str) -> None:
        super().__init__()
        self.join = join
        self.a1, self.a2 = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
        self.b = nn.Conv2d(2, 2, 1)
        self.head = nn.Conv2d(4 if join == "cat" else 2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a2(F.relu(self.a1(x))), self.b(x)
        y = torch.cat([a, b], dim=1) if self.join == "cat" else a + b
        return self.head(y)


class Misaligned(nn.Module):
    """A ResNet-D-like shortcut: main path 3x3/2 with padding 1 (unit 0 centred on pixel 0),
    shortcut 2x2/2 average pooling (unit 0 centred on pixel 0.5): half a pixel apart."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.shortcut = nn.AvgPool2d(2)
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.main(x) + self.shortcut(x))


@pytest.mark.parametrize("join", ["add", "cat"])
def test_residual_and_concat_take_the_largest_aligned_field(join: str) -> None:
    model = TwoPaths(join)
    assert receptive_field_of(model, (16, 16), "a2").size == (5, 5)
    assert receptive_field_of(model, (16, 16), "b").size == (1, 1)
    assert receptive_field_of(model, (16, 16), "head").size == (7, 7)  # max(5, 1) + 2


def test_misaligned_paths_raise_naming_the_node() -> None:
    with pytest.raises(ValueError, match="paths meeting at 'add' .* are misaligned") as info:
        receptive_field_of(Misaligned(), (16, 16), "out")
    assert "from 'main': jump 2, unit 0 centred at input pixel 0;" in str(info.value)
    assert "from 'shortcut': jump 2, unit 0 centred at input pixel 0.5" in str(info.value)
    # the paths themselves are fine
    assert receptive_field_of(Misaligned(), (16, 16), "shortcut").size == (2, 2)


def test_resnet_downsample_paths_are_aligned() -> None:
    # layer2.0 adds conv3 (main path) and downsample (1x1/2); both centred alike
    model = _meta_model("resnet50")
    main = receptive_field_of(model, (64, 64), "layer2.0.conv3")
    shortcut = receptive_field_of(model, (64, 64), "layer2.0.downsample")
    assert main.stride == shortcut.stride == (8, 8)
    assert main.center(0, 0) == shortcut.center(0, 0)
    assert receptive_field_of(model, (64, 64), "layer2.0") == main


def test_conv_options_non_square_same_and_ceil_mode() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 1, (1, 7), stride=(2, 1), padding=(0, 3)),
        nn.Conv2d(1, 1, 3, dilation=2, padding="same"),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
    )
    rf = receptive_field_of(model, (20, 20), "0")
    assert (rf.size, rf.stride, rf.padding) == ((1, 7), (2, 1), (0, 3))
    rf = receptive_field_of(model, (20, 20), "1")  # 'same', d=2: p = 2
    assert (rf.size, rf.padding) == ((1 + 4 * 2, 7 + 4), (0 + 2 * 2, 3 + 2))
    floor = nn.Sequential(*list(model)[:2], nn.MaxPool2d(3, stride=2))
    ceil_row, floor_row = (receptive_field_table(m, (20, 20), ["2"])[0] for m in (model, floor))
    assert ceil_row.field == floor_row.field  # ceil_mode only adds a unit
    assert ceil_row.output_size == (5, 10) and floor_row.output_size == (4, 9)


def test_global_and_adaptive_pooling() -> None:
    resnet = _meta_model("resnet18")
    row = receptive_field_table(resnet, (224, 224), ["avgpool"])[0]
    assert row.field.size == (435 + 6 * 32, 435 + 6 * 32) and row.note.startswith("global")
    vgg = _meta_model("vgg16")  # avgpool: AdaptiveAvgPool2d((7, 7))
    assert receptive_field_of(vgg, (224, 224), "avgpool").size == (212, 212)  # 7 -> 7: identity
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d.*8x8 map into 7x7 bins of unequal"):
        receptive_field_of(vgg, (256, 256), "avgpool")
    with pytest.raises(ValueError, match="'flatten'.*collapses the spatial axes"):
        receptive_field_of(resnet, (224, 224), "fc")


def test_interpolation_raises_naming_it() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2), nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="'1' \\(Upsample\\) interpolates"):
        receptive_field_of(model, (16, 16), "2")


def test_unknown_node_lists_valid_names() -> None:
    model = _meta_model("resnet18")
    with pytest.raises(ValueError, match="unknown node 'layer5'") as info:
        receptive_field_of(model, (224, 224), "layer5")
    message = str(info.value)
    assert "Did you mean 'layer4'" in message or "'layer4'" in message
    assert "conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc" in message
    assert "layer4.1.conv2" in node_names(model)


def test_input_too_small_says_the_minimum() -> None:
    vgg = _meta_model("vgg16")
    with pytest.raises(ValueError, match="16x16 is too small.*smallest square input.*32x32"):
        receptive_field_of(vgg, (16, 16), "features.30")
    receptive_field_of(vgg, (32, 32), "features.30")  # works
    with pytest.raises(ValueError, match="too small"):
        receptive_field_of(vgg, (31, 31), "features.30")


@pytest.mark.parametrize("shape", [(0, 10), (10,), "224x224", (1, 2, 3, 4, 5), (2.0, 3)])
def test_bad_input_shape_raises(shape: object) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        receptive_field_of(nn.Conv2d(3, 3, 3), shape, "")  # type: ignore[arg-type]


def _a_function(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda model: receptive_field_of(model, (8, 8), "0"), "receptive_field_of"),
        (lambda model: receptive_field_of(model, (1, 8, 8), "0"), "receptive_field_of"),
        (lambda model: node_names(model), "node_names"),
        (lambda model: receptive_field_table(model, (8, 8)), "receptive_field_table"),
        (lambda model: effective_receptive_field(model, (8, 8), "0"), "effective_receptive_field"),
    ],
)
def test_a_plain_function_is_refused_with_how_to_wrap_it(call, name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name} needs an nn.Module \(its submodules are the nodes\), got the "
                                         r"function '_a_function'; wrap a function in a small module.*nn.Sequential"):
        call(_a_function)
    with pytest.raises(ValueError, match=rf"{name} needs an nn.Module instance, got the class Conv2d; build one "
                                         r"first, e.g. Conv2d\(...\)"):
        call(nn.Conv2d)
    with pytest.raises(ValueError, match=rf"{name} needs an nn.Module .*got a list"):
        call([nn.Conv2d(1, 1, 3)])


def test_untraceable_model_raises() -> None:
    class DataDependent(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match="cannot trace DataDependent with torch.fx"):
        receptive_field_of(DataDependent(), (8, 8), "x")


# ---------------------------------------------------------------- effective receptive field


@pytest.mark.parametrize(
    ("name", "node", "size"),
    [
        # centre unit (7, 7) of layer2's 16x16 map; r=99, p=49: pixels 7..105 of 128
        ("resnet18", "layer2", 128),
        # r=91, p=45: pixels 11..101 of 128 (bottlenecks and a downsample shortcut)
        ("resnet50", "layer2", 128),
        # VGG-16 pool3: centre unit (3, 3) of 8x8, r=44, j=8, p=18: pixels 6..49 of 64
        ("vgg16", "features.16", 64),
    ],
)
def test_linearized_gradient_support_equals_theoretical_field(
    name: str, node: str, size: int
) -> None:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    erf = effective_receptive_field(model, (size, size), node, linearize=True)
    theory = receptive_field_of(model, (size, size), node)
    (top, bottom), (left, right) = theory.span(*erf.unit)
    assert top >= 0 and bottom < size  # the field fits, so nothing is clipped
    assert erf.support_box == erf.theoretical_box
    assert erf.support_box.size == theory.size
    assert 0 < erf.effective_area_ratio < 1


def test_effective_field_of_a_random_resnet_is_inside_and_smaller() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    erf = effective_receptive_field(model, (96, 96), "layer1", seed=1)
    box = erf.theoretical_box
    assert erf.support_box is not None
    assert box.top <= erf.support_box.top and erf.support_box.bottom <= box.bottom
    assert box.left <= erf.support_box.left and erf.support_box.right <= box.right
    assert erf.gradient.shape == (96, 96) and erf.gradient.dtype == torch.float64
    assert erf.effective_area_ratio < 0.9  # Luo et al.: the mass concentrates near the centre
    # the user's model is untouched: same weights and statistics, still in training mode
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_effective_field_rejects_bad_arguments() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    with pytest.raises(ValueError, match="mass"):
        effective_receptive_field(model, (8, 8), "0", mass=1.5)
    with pytest.raises(ValueError, match="do not match input_shape"):
        effective_receptive_field(model, (8, 8), "0", inputs=torch.zeros(1, 1, 9, 9))


def test_radius_holding_a_share_of_the_gradient() -> None:
    """A linearized 5x5 field is a symmetric bump: the 100 % disc reaches its corner, smaller shares less far."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))
    erf = effective_receptive_field(model, (15, 15), "1", linearize=True)
    assert erf.unit == (7, 7)
    assert erf.radius(1.0) == pytest.approx(8 ** 0.5)  # the corner (2, 2) away of the 5x5 support
    assert erf.radius(0.5) < erf.radius(0.9) <= erf.radius(1.0)
    point = effective_receptive_field(nn.Sequential(nn.Conv2d(1, 1, 1)), (9, 9), "0", linearize=True)
    assert point.radius(1.0) == 0.0  # a 1x1 convolution reads one pixel
    with pytest.raises(ValueError, match="mass"):
        erf.radius(0.0)


# ---------------------------------------------------------------- the exact input window of one unit


def _one_channel_net(layers: list[tuple[str, int, int, int, int]]) -> nn.Sequential:
    """Convolutions with weights 1 and average poolings: every path positive, nothing cancels."""
    modules: list[nn.Module] = []
    for kind, k, s, p, d in layers:
        if kind == "avg":
            modules.append(nn.AvgPool2d(k, s, p))  # count_include_pad: padding adds zeros, not pixels
        else:
            conv = nn.Conv2d(1, 1, k, s, p, d, bias=False)
            nn.init.ones_(conv.weight)
            modules.append(conv)
    return nn.Sequential(*modules).double()


def _support_box(net: nn.Module, unit: tuple[int, int], size: tuple[int, int]) -> Box | None:
    x = torch.ones(1, 1, *size, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, unit[0], unit[1]].backward()
    reached = x.grad[0, 0] != 0
    if not reached.any():
        return None
    rows, cols = reached.any(dim=1).nonzero().flatten(), reached.any(dim=0).nonzero().flatten()
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1]))


def test_input_region_is_the_support_of_autograd_on_random_stacks() -> None:
    generator = torch.Generator().manual_seed(0)

    def pick(*values: int) -> int:
        return values[int(torch.randint(len(values), (1,), generator=generator))]

    tried = 0
    while tried < 60:
        layers = []
        for _ in range(pick(1, 2, 3, 4)):
            if pick(0, 1, 2) == 0:  # an average pooling: padding at most half its kernel, no dilation
                k = pick(2, 3)
                layers.append(("avg", k, pick(1, 2, 3), pick(*range(k // 2 + 1)), 1))
            else:
                k, d = pick(1, 2, 3, 5), pick(1, 1, 2, 3)
                layers.append(("conv", k, pick(1, 1, 2, 3), pick(*range(d * (k - 1) + 2)), d))
        size = (pick(*range(6, 30)), pick(*range(6, 30)))
        geometry = [(k, s, p, d) for _, k, s, p, d in layers]
        net = _one_channel_net(layers)
        try:
            out = net(torch.zeros(1, 1, *size, dtype=torch.float64)).shape[-2:]
        except RuntimeError:  # an input too small for the stack
            continue
        tried += 1
        for unit in {(0, 0), (out[0] - 1, out[1] - 1), (out[0] // 2, 0), (pick(*range(out[0])), pick(*range(out[1])))}:
            assert input_region(geometry, unit, size) == _support_box(net, unit, size), (layers, unit, size)


def test_input_region_of_torchvisions_alexnet_leaves_out_what_no_window_reads() -> None:
    with torch.device("meta"):
        features = torchvision.models.alexnet().features
    layers = [conv_layers(m)[0] if isinstance(m, nn.Conv2d) else pool_layers(m)[0]
              for m in features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    # pool5 is 6x6 on 227 x 227; its last unit's field, clipped to the image, ends at pixel 226, but
    # the 3x3/2 pool1 never reads the last output of conv1 (56 outputs, 27 windows): rows 225 and 226
    # reach no unit.
    assert receptive_field(layers)[-1].span(5) == (94, 288)
    assert input_region(layers, (5, 5), (227, 227)) == Box(94, 94, 224, 224)
    assert input_region(layers, (0, 5), (227, 227)) == Box(0, 94, 128, 224)  # rows: the field -66 .. 128, clipped


def test_input_pixels_holes_and_padding() -> None:
    assert input_pixels([(1, 2, 0), (3, 1, 1)], 0, 8) == [0, 2]  # the stride-2 1x1 layer skips odd pixels
    assert input_pixels([(3, 1, 1, 2)], 0, 8) == [1, 3]  # taps -1, 1, 3
    assert input_pixels([(1, 1, 1)], 0, 8) == []  # unit 0 reads only padding
    assert input_region([(1, 1, 1)], (0, 3), (8, 8)) is None


def test_input_region_rejects_a_unit_or_an_input_that_does_not_exist() -> None:
    with pytest.raises(ValueError, match=r"unit 8 does not exist, the output has 8 units \(0 to 7\)"):
        input_region([(3, 1, 1)], (8, 0), (8, 8))
    with pytest.raises(ValueError, match="unit must be >= 0"):
        input_pixels([(3, 1, 1)], -1, 8)
    with pytest.raises(ValueError, match="layer 1 .* gets a map of 2 pixels"):
        input_pixels([(3, 2, 0), (5, 1, 0)], 0, 6)
