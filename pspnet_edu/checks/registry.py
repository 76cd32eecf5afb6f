"""Every self-check of the package, what it hides, and two learners it must refuse.

For each public ``check_*`` function of ``pspnet_edu/checks/*.py`` an :class:`Entry` gives

- ``hides``: the references the check hides while the learner's code runs (the package's own
  version of the exercise and its obvious aliases, see :func:`pspnet_edu.checks._core.hidden`;
  each check module says why it hides what it hides);
- ``stub``: builds the learner of the student notebook, still ``raise NotImplementedError()``;
  the check must answer "not implemented yet";
- ``shortcuts``: build learners that only call the package's own version (a wrapper function,
  for a class also a subclass or a factory); the check must answer "write it yourself", naming
  the reference the shortcut reaches for.

``tests/test_checks.py`` runs every entry, and fails for a ``check_*`` function that has none,
so a new check comes with its entry here. The shortcuts look the package's objects up *by
name when called*, as a learner's code does (``schedule.poly_lr(...)``), not through a handle
kept in advance. Importing this module imports every check and the trainer: it is for tests,
not for the notebooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision import transforms as torchvision_v1
from torchvision.transforms import v2 as torchvision_v2

import pspnet_edu.backbone as backbone
import pspnet_edu.checks.ablate as checks_ablate
import pspnet_edu.checks.backbone as checks_backbone
import pspnet_edu.checks.data as checks_data
import pspnet_edu.checks.dilation as checks_dilation
import pspnet_edu.checks.inference as checks_inference
import pspnet_edu.checks.metrics as checks_metrics
import pspnet_edu.checks.ppm as checks_ppm
import pspnet_edu.checks.pspnet as checks_pspnet
import pspnet_edu.checks.receptive_field as checks_receptive_field
import pspnet_edu.checks.scaling as checks_scaling
import pspnet_edu.checks.schedule as checks_schedule
import pspnet_edu.checks.training as checks_training
import pspnet_edu.data.labels as labels
import pspnet_edu.data.transforms as transforms
import pspnet_edu.dilation as dilation
import pspnet_edu.experiments.stats as stats
import pspnet_edu.inference as inference
import pspnet_edu.loss as loss
import pspnet_edu.metrics as metrics
import pspnet_edu.ppm as ppm
import pspnet_edu.pspnet as pspnet
import pspnet_edu.receptive_field as receptive_field
import pspnet_edu.schedule as schedule
import pspnet_edu.training.optim as training_optim
import pspnet_edu.training.sampling as sampling
import pspnet_edu.training.step as training_step


@dataclass(frozen=True)
class Shortcut:
    """A learner that only uses the package's ``reference``; ``build()`` makes it."""

    reference: Any
    build: Callable[[], Any]


@dataclass(frozen=True)
class Entry:
    """One check: what it hides, its student stub, and the shortcuts it must refuse."""

    check: Callable[[Any], None]
    hides: tuple[Any, ...]
    stub: Callable[[], Any]
    shortcuts: tuple[Shortcut, ...]

    @property
    def name(self) -> str:
        return self.check.__name__


def _named(name: str, learner: Callable[..., Any]) -> Callable[..., Any]:
    """``learner`` under the learner-style ``name`` that the messages will show."""
    learner.__name__ = learner.__qualname__ = name
    return learner


def _stub(name: str) -> Callable[[], Callable[..., Any]]:
    """A factory of the student notebook's function: ``# YOUR CODE HERE`` + ``raise NotImplementedError()``."""

    def build() -> Callable[..., Any]:
        def stub(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError()

        return _named(name, stub)

    return build


def _wrapper(name: str, reference: Any, call: Callable[..., Any]) -> Shortcut:
    """A shortcut function ``name`` that only runs ``call`` (which looks ``reference`` up by name)."""
    return Shortcut(reference, lambda: _named(name, lambda *args, **kwargs: call(*args, **kwargs)))


# ------------------------------------------------------------------ the module exercise (a class)


def _pyramid_pooling_stub() -> type[nn.Module]:
    class MyPyramidPooling(nn.Module):
        def __init__(self, in_channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
            super().__init__()
            raise NotImplementedError()

    return MyPyramidPooling


def _pyramid_pooling_subclass() -> type[nn.Module]:
    class MyPyramidPooling(ppm.PyramidPoolingModule):
        """The package's module under another name."""

    return MyPyramidPooling


def _pyramid_pooling_factory() -> Callable[..., nn.Module]:
    def my_pyramid_pooling(in_channels: int, bins: tuple[int, ...]) -> nn.Module:
        return ppm.PyramidPoolingModule(in_channels, bins)

    return my_pyramid_pooling


def _pyramid_pooling_from_branches() -> type[nn.Module]:
    class MyPyramidPooling(nn.Module):
        """Its own forward, but the package's branches."""

        def __init__(self, in_channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
            super().__init__()
            self.branches = nn.ModuleList(
                ppm.PyramidBranch(in_channels, in_channels // len(bins), b, "avg") for b in bins)

        def forward(self, x: Any) -> Any:
            raise AssertionError("never reached: the constructor uses the package's branch")

    return MyPyramidPooling


def _pspnet_stub() -> type[nn.Module]:
    class MyPSPNet(nn.Module):
        def __init__(self, backbone: nn.Module, ppm: nn.Module, head: nn.Module, aux_head: nn.Module | None = None,
                     align_corners: bool = False) -> None:
            super().__init__()
            raise NotImplementedError()

    return MyPSPNet


def _pspnet_subclass() -> type[nn.Module]:
    class MyPSPNet(pspnet.PSPNet):
        """The package's model under another name."""

    return MyPSPNet


def _pspnet_factory() -> Callable[..., nn.Module]:
    def my_pspnet(backbone: nn.Module, ppm: nn.Module, head: nn.Module, aux_head: nn.Module | None = None,
                  align_corners: bool = False) -> nn.Module:
        return pspnet.build_pspnet("tiny", align_corners=align_corners)

    return my_pspnet


def _pspnet_borrowed_forward() -> type[nn.Module]:
    class MyPSPNet(nn.Module):
        """Its own parts, the package's forward."""

        def __init__(self, backbone: nn.Module, ppm: nn.Module, head: nn.Module, aux_head: nn.Module | None = None,
                     align_corners: bool = False) -> None:
            super().__init__()
            self.backbone, self.ppm, self.head, self.aux_head = backbone, ppm, head, aux_head

        def forward(self, x: Any) -> Any:
            return pspnet.PSPNet.forward(self, x)

    return MyPSPNet


# ------------------------------------------------------------------ wrappers that need a few lines


def _compare_with_paired_t(results: Any, a: str, b: str, classes: Any) -> tuple[float, float]:
    """A shortcut that does the pairing itself but hands the statistics to the package."""
    runs = {n: {r["seed"]: r for r in results["settings"][n]["runs"]} for n in (a, b)}
    seeds = sorted(set(runs[a]) & set(runs[b]))
    pair = [[sum(runs[n][s]["iou"][c] for c in classes) / len(classes) for s in seeds] for n in (a, b)]
    t = stats.paired_t(*pair)
    return sum(x - y for x, y in zip(*pair)) / len(seeds), t


def _fields_from_the_package_class(layers: Any) -> list[tuple[int, int, int]]:
    field, fields = receptive_field.ReceptiveField(1, 1, 0), []  # its .then is the recurrence itself
    for layer in layers:
        field = field.then(receptive_field.Layer(*layer))
        fields.append((field.size, field.stride, field.padding))
    return fields


def _offsets_from_gridding_pattern(dilations: Any, kernel: int = 3) -> list[int]:
    pattern = dilation.gridding_pattern(list(dilations), kernel)  # (S, S)
    row = pattern[pattern.shape[0] // 2]
    return [i - row.shape[0] // 2 for i in row.nonzero().flatten().tolist()]


def _erf_from_the_package(features: Any, x: Any) -> Any:
    last = list(features.named_children())[-1][0]
    return receptive_field.effective_receptive_field(features, tuple(x.shape[1:]), last, inputs=x).gradient


def _sizes_from_resnet(input_size: int, output_stride: int) -> list[int]:
    net = backbone.ResNet(depth=18, output_stride=output_stride, width=0.125)
    x = torch.empty(1, 3, input_size, input_size)
    sides = [net.stem(x).shape[-1]]  # never reached: ResNet is hidden, so the line above raises
    return sides


def _augment_with_torchvision_steps(image: Any, mask: Any, crop_size: Any, scale: Any = (0.5, 2.0)) -> Any:
    """Its own scale, then torchvision's flip and padded crop."""
    from torchvision import tv_tensors

    factor = float(torch.empty(1).uniform_(*scale))
    size = [max(1, round(image.shape[-2] * factor)), max(1, round(image.shape[-1] * factor))]
    pair = torchvision_v2.functional.resize(tv_tensors.Image(image), size), torchvision_v2.functional.resize(
        tv_tensors.Mask(mask), size)
    steps = torchvision_v2.Compose([torchvision_v2.RandomHorizontalFlip(), torchvision_v2.RandomCrop(
        crop_size, pad_if_needed=True, fill={tv_tensors.Image: list(transforms.IMAGENET_MEAN), tv_tensors.Mask: 255})])
    return steps(*pair)


def _augment_with_torchvision_v1(image: Any, mask: Any, crop_size: Any, scale: Any = (0.5, 2.0)) -> Any:
    """Its own scale, then the first API's flip and padded crop on an image + mask stack."""
    factor = float(torch.empty(1).uniform_(*scale))
    size = [max(1, round(image.shape[-2] * factor)), max(1, round(image.shape[-1] * factor))]
    stack = torch.cat([torchvision_v2.functional.resize(image, size),
                       torchvision_v2.functional.resize(mask[None], size, torchvision_v2.InterpolationMode.NEAREST)])
    stack = torchvision_v1.RandomCrop(crop_size, pad_if_needed=True)(torchvision_v1.RandomHorizontalFlip()(stack))
    return stack[:3], stack[3].to(mask.dtype)


# ------------------------------------------------------------------ lessons 07, 08, 10: optimiser, step, windows, torchrun


def _optimizer_from_param_groups(model: Any, config: Any) -> tuple[Any, Any]:
    groups = [{k: v for k, v in g.items() if k != "names"}
              for g in training_optim.param_groups(model, config.lr, config.head_lr_mult)]
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return optimizer, torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=config.power)


def _step_with_pspnet_loss(model: Any, images: Any, masks: Any, optimizer: Any, scheduler: Any, alpha: float) -> float:
    total, _ = loss.pspnet_loss(model(images), masks, aux_weight=alpha)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    scheduler.step()
    return total.item()


def _plan_from_sampler(world_size: int, epochs: int, dataset_size: int, global_batch: int = 16,
                       base_lr: float = 0.01) -> dict[str, Any]:
    per_process = global_batch // world_size
    batches = sampling.EndlessBatches(dataset_size, per_process, seed=0, world_size=world_size)
    return {"per_process_batch": per_process, "lr": base_lr, "iters": epochs * batches.per_epoch}


def _sharded_with_evaluate(model: Any, dataset: Any, world_size: int, num_classes: int,
                           batch_size: int = 2) -> dict[str, Any]:
    per_rank = [inference.evaluate(model, torch.utils.data.Subset(dataset, range(rank, len(dataset), world_size)),
                                   num_classes=num_classes, batch_size=batch_size)["confusion_matrix"]
                for rank in range(world_size)]
    return {"per_rank": per_rank, "confusion_matrix": sum(per_rank), "miou": metrics.mean_iou(sum(per_rank))}


def _sharded_with_predict(model: Any, dataset: Any, world_size: int, num_classes: int,
                          batch_size: int = 2) -> dict[str, Any]:
    per_rank = []
    for rank in range(world_size):  # the sharding and the counting done right, the prediction not
        pairs = [dataset[i] for i in range(rank, len(dataset), world_size)]
        per_rank.append(sum((metrics.confusion_matrix(inference.predict(model.eval(), image), mask, num_classes)
                             for image, mask in pairs), torch.zeros(num_classes, num_classes, dtype=torch.int64)))
    total = metrics.reduce_confusion_matrices(per_rank)
    return {"per_rank": per_rank, "confusion_matrix": total, "miou": metrics.mean_iou(total)}


def _overfit_with_the_trainer(model: Any, images: Any, masks: Any, config: Any) -> list[float]:
    optimizer, scheduler = training_optim.build_optimizer(model, config)
    return [training_step.train_step(model, images, masks, optimizer, scheduler, config.alpha)["loss"].item()
            for _ in range(config.iters)]


def _overfit_with_pspnet_loss(model: Any, images: Any, masks: Any, config: Any) -> list[float]:
    optimizer, scheduler = _optimizer_from_sgd(model, config)
    return [_step_with_pspnet_loss(model, images, masks, optimizer, scheduler, config.alpha)
            for _ in range(config.iters)]


def _optimizer_from_sgd(model: Any, config: Any) -> tuple[Any, Any]:
    """The two groups and the schedule by hand (the part of the exercise this shortcut does itself)."""
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    new = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    optimizer = torch.optim.SGD([{"params": backbone, "lr": config.lr},
                                 {"params": new, "lr": config.lr * config.head_lr_mult}],
                                lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return optimizer, torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=config.power)


_LESSONS_07_08_10 = (
    Entry(checks_training.check_optimizer, checks_training.OPTIMIZER_HIDDEN, _stub("my_optimizer"), (
        _wrapper("my_optimizer", training_optim.build_optimizer,
                 lambda model, config: training_optim.build_optimizer(model, config)),
        _wrapper("my_optimizer", training_optim.param_groups, _optimizer_from_param_groups),
    )),
    Entry(checks_training.check_training_step, checks_training.TRAINING_STEP_HIDDEN, _stub("my_training_step"), (
        _wrapper("my_training_step", loss.pspnet_loss, _step_with_pspnet_loss),
        _wrapper("my_training_step", training_step.train_step,
                 lambda model, images, masks, optimizer, scheduler, alpha: training_step.train_step(
                     model, images, masks, optimizer, scheduler, alpha)["loss"].item()),
    )),
    Entry(checks_training.check_accumulated_step, checks_training.ACCUMULATION_HIDDEN, _stub("my_accumulated_step"), (
        _wrapper("my_accumulated_step", loss.pspnet_loss,
                 lambda model, images, masks, optimizer, scheduler, alpha, chunks: _step_with_pspnet_loss(
                     model, images, masks, optimizer, scheduler, alpha)),
        _wrapper("my_accumulated_step", training_step.train_step,
                 lambda model, images, masks, optimizer, scheduler, alpha, chunks: training_step.train_step(
                     model, images, masks, optimizer, scheduler, alpha)["loss"].item()),
    )),
    Entry(checks_training.check_overfit_one_batch, checks_training.OVERFIT_HIDDEN, _stub("my_overfit_one_batch"), (
        _wrapper("my_overfit_one_batch", training_optim.build_optimizer, _overfit_with_the_trainer),
        _wrapper("my_overfit_one_batch", loss.pspnet_loss, _overfit_with_pspnet_loss),
    )),
    Entry(checks_inference.check_sliding_window, checks_inference.SLIDING_WINDOW_HIDDEN, _stub("my_sliding_window"), (
        _wrapper("my_sliding_window", inference.predict_probs,
                 lambda model, images, crop, stride: inference.predict_probs(
                     model, images, mode="sliding", crop=crop, stride_rate=stride[0] / crop[0])),
        _wrapper("my_sliding_window", inference.sliding_window_probs,
                 lambda model, images, crop, stride: inference.sliding_window_probs(model, images, crop, stride)),
    )),
    Entry(checks_scaling.check_sharded_evaluate, checks_scaling.sharded_evaluate_hidden(),
          _stub("my_sharded_evaluate"), (
        _wrapper("my_sharded_evaluate", inference.evaluate, _sharded_with_evaluate),
        _wrapper("my_sharded_evaluate", inference.predict, _sharded_with_predict),
        _wrapper("my_sharded_evaluate", checks_scaling.sharded_evaluate,
                 lambda *args, **kwargs: checks_scaling.sharded_evaluate(*args, **kwargs)),
    )),
    Entry(checks_scaling.check_torchrun_plan, checks_scaling.torchrun_plan_hidden(), _stub("my_torchrun_plan"), (
        _wrapper("my_torchrun_plan", sampling.EndlessBatches, _plan_from_sampler),
        _wrapper("my_torchrun_plan", checks_scaling.torchrun_plan,
                 lambda *args, **kwargs: checks_scaling.torchrun_plan(*args, **kwargs)),
    )),
)


CHECKS: tuple[Entry, ...] = (
    # ---- lessons 01-05: receptive fields, dilation, the dilated ResNet, the PPM, PSPNet
    Entry(checks_receptive_field.check_receptive_field, checks_receptive_field.RECEPTIVE_FIELD_HIDDEN,
          _stub("my_receptive_field"), (
              _wrapper("my_receptive_field", receptive_field.receptive_field,
                       lambda layers: [(f.size, f.stride, f.padding) for f in receptive_field.receptive_field(layers)]),
              _wrapper("my_receptive_field", receptive_field.ReceptiveField, _fields_from_the_package_class),
          )),
    Entry(checks_receptive_field.check_input_region, checks_receptive_field.REGION_HIDDEN,
          _stub("my_input_region"), (
              _wrapper("my_input_region", receptive_field.input_region,
                       lambda layers, row, col, h, w: receptive_field.input_region(layers, (row, col), (h, w))),
              _wrapper("my_input_region", receptive_field.input_pixels,
                       lambda layers, row, col, h, w: (lambda r, c: (r[0], c[0], r[-1], c[-1]))(
                           receptive_field.input_pixels(layers, row, h), receptive_field.input_pixels(layers, col, w))),
              _wrapper("my_input_region", receptive_field.receptive_field,
                       lambda layers, row, col, h, w: (lambda f: (
                           max(f.span(row)[0], 0), max(f.span(col)[0], 0), min(f.span(row)[1], h - 1),
                           min(f.span(col)[1], w - 1)))(receptive_field.receptive_field(layers)[-1])),
              _wrapper("my_input_region", checks_receptive_field.gradient_window,
                       lambda *args: checks_receptive_field.gradient_window(*args)),
          )),
    Entry(checks_receptive_field.check_residual_field, checks_receptive_field.RESIDUAL_FIELD_HIDDEN,
          _stub("my_residual_field"), (
              _wrapper("my_residual_field", checks_receptive_field.residual_field,
                       lambda before, main, shortcut: checks_receptive_field.residual_field(before, main, shortcut)),
          )),
    Entry(checks_receptive_field.check_erf_gradient, checks_receptive_field.ERF_GRADIENT_HIDDEN,
          _stub("my_erf_gradient"), (
              _wrapper("my_erf_gradient", receptive_field.effective_receptive_field, _erf_from_the_package),
          )),
    Entry(checks_dilation.check_atrous_conv, checks_dilation.ATROUS_CONV_HIDDEN, _stub("my_atrous_conv"), (
        _wrapper("my_atrous_conv", dilation.atrous_by_subsampling,
                 lambda *args, **kwargs: dilation.atrous_by_subsampling(*args, **kwargs)),
    )),
    Entry(checks_dilation.check_reachable_offsets, checks_dilation.REACHABLE_OFFSETS_HIDDEN,
          _stub("my_reachable_offsets"), (
              _wrapper("my_reachable_offsets", dilation.gridding_pattern, _offsets_from_gridding_pattern),
              _wrapper("my_reachable_offsets", checks_dilation.reachable_offsets,
                       lambda *args, **kwargs: checks_dilation.reachable_offsets(*args, **kwargs)),
          )),
    Entry(checks_backbone.check_feature_sizes, checks_backbone.FEATURE_SIZES_HIDDEN, _stub("my_feature_sizes"), (
        _wrapper("my_feature_sizes", backbone.feature_size,
                 lambda n, os: [backbone.feature_size(n, min(s, os)) for s in (2, 4, 8, 16, 32)]),
        _wrapper("my_feature_sizes", backbone.ResNet, _sizes_from_resnet),
        _wrapper("my_feature_sizes", checks_backbone.feature_sizes,
                 lambda n, os: checks_backbone.feature_sizes(n, os)),
    )),
    Entry(checks_backbone.check_dilate, checks_backbone.dilate_hidden(), _stub("my_dilate_"), (
        _wrapper("my_dilate_", backbone.ResNet,
                 lambda resnet, output_stride: backbone.ResNet(depth=50, output_stride=output_stride)),
        _wrapper("my_dilate_", checks_backbone.dilated_reference,
                 lambda resnet, output_stride: checks_backbone.dilated_reference(50, output_stride)),
        _wrapper("my_dilate_", backbone.dilation_plan,
                 lambda resnet, output_stride: backbone.dilation_plan(output_stride, "torchvision", (2, 2, 2, 2))),
    )),
    Entry(checks_ppm.check_adaptive_windows, checks_ppm.ADAPTIVE_WINDOWS_HIDDEN, _stub("my_adaptive_windows"), (
        _wrapper("my_adaptive_windows", ppm.adaptive_pool_windows,
                 lambda size, bins: ppm.adaptive_pool_windows(size, bins)),
    )),
    Entry(checks_ppm.check_bilinear_resize, checks_ppm.BILINEAR_RESIZE_HIDDEN, _stub("my_bilinear_resize"), (
        _wrapper("my_bilinear_resize", torch.nn.functional.interpolate,
                 lambda x, size, align_corners: torch.nn.functional.interpolate(
                     x, size, mode="bilinear", align_corners=align_corners)),
        _wrapper("my_bilinear_resize", nn.Upsample,
                 lambda x, size, align_corners: nn.Upsample(size, mode="bilinear", align_corners=align_corners)(x)),
    )),
    Entry(checks_ppm.check_pyramid_pooling, checks_ppm.PYRAMID_POOLING_HIDDEN, _pyramid_pooling_stub, (
        Shortcut(ppm.PyramidPoolingModule, _pyramid_pooling_subclass),
        Shortcut(ppm.PyramidPoolingModule, _pyramid_pooling_factory),
        Shortcut(ppm.PyramidBranch, _pyramid_pooling_from_branches),
    )),
    Entry(checks_pspnet.check_pspnet_forward, checks_pspnet.PSPNET_FORWARD_HIDDEN, _pspnet_stub, (
        Shortcut(pspnet.PSPNet, _pspnet_subclass),
        Shortcut(pspnet.PSPNet, _pspnet_factory),
        Shortcut(pspnet.PSPNet, _pspnet_borrowed_forward),
    )),
    Entry(checks_pspnet.check_head_parameters, checks_pspnet.HEAD_PARAMETERS_HIDDEN, _stub("my_head_parameters"), (
        _wrapper("my_head_parameters", pspnet.SegmentationHead,
                 lambda c, m, k: sum(p.numel() for p in pspnet.SegmentationHead(c, m, k, dropout=0.1).parameters())),
        _wrapper("my_head_parameters", checks_pspnet.head_parameters,
                 lambda c, m, k: checks_pspnet.head_parameters(c, m, k)),
    )),
    # ---- end of lessons 01-05
    Entry(checks_data.check_label_ids_to_train_ids, checks_data.LABEL_IDS_TO_TRAIN_IDS_HIDDEN,
          _stub("my_label_ids_to_train_ids"), (
              _wrapper("my_label_ids_to_train_ids", labels.label_ids_to_train_ids,
                       lambda ids: labels.label_ids_to_train_ids(ids)),
              _wrapper("my_label_ids_to_train_ids", labels.LABEL_TO_TRAIN_TABLE,
                       lambda ids: labels.LABEL_TO_TRAIN_TABLE[np.asarray(ids).astype(np.int64)]),
              _wrapper("my_label_ids_to_train_ids", labels._lookup_table,
                       lambda ids: labels._lookup_table()[np.asarray(ids).astype(np.int64)]),
          )),
    Entry(checks_data.check_joint_augment, checks_data.JOINT_AUGMENT_HIDDEN, _stub("my_joint_augment"), (
        _wrapper("my_joint_augment", transforms.TrainTransforms,
                 lambda image, mask, crop_size, scale=(0.5, 2.0): transforms.TrainTransforms(
                     crop_size, scale, normalize=False)(image, mask)),
        _wrapper("my_joint_augment", torchvision_v2.RandomHorizontalFlip, _augment_with_torchvision_steps),
        _wrapper("my_joint_augment", torchvision_v1.RandomCrop, _augment_with_torchvision_v1),
    )),
    Entry(checks_schedule.check_poly_lr, checks_schedule.POLY_LR_HIDDEN, _stub("my_poly_lr"), (
        _wrapper("my_poly_lr", schedule.poly_lr, lambda *args, **kwargs: schedule.poly_lr(*args, **kwargs)),
    )),
    Entry(checks_metrics.check_confusion_matrix, checks_metrics.CONFUSION_MATRIX_HIDDEN,
          _stub("my_confusion_matrix"), (
              _wrapper("my_confusion_matrix", metrics.confusion_matrix,
                       lambda *args, **kwargs: metrics.confusion_matrix(*args, **kwargs)),
          )),
    Entry(checks_metrics.check_iou_per_class, checks_metrics.IOU_PER_CLASS_HIDDEN, _stub("my_iou_per_class"), (
        _wrapper("my_iou_per_class", metrics.iou_per_class, lambda cm: metrics.iou_per_class(cm)),
    )),
    Entry(checks_ablate.check_paired_t, checks_ablate.PAIRED_T_HIDDEN, _stub("my_paired_t"), (
        _wrapper("my_paired_t", stats.paired_t, lambda a, b: stats.paired_t(a, b)),
    )),
    Entry(checks_ablate.check_fisher_exact, checks_ablate.fisher_exact_hidden(), _stub("my_fisher_exact"), (
        _wrapper("my_fisher_exact", stats.fisher_exact, lambda a, n, b, m: stats.fisher_exact(a, n, b, m)),
        *(() if checks_ablate.scipy_stats() is None else (  # scipy is no dependency: its shortcut only where installed
            _wrapper("my_fisher_exact", checks_ablate.scipy_stats().fisher_exact,
                     lambda a, n, b, m: checks_ablate.scipy_stats().fisher_exact([[a, n - a], [b, m - b]],
                                                                                 alternative="greater")[1]),)),
    )),
    Entry(checks_ablate.check_sign_flip_p, checks_ablate.sign_flip_hidden(), _stub("my_sign_flip_p"), (
        _wrapper("my_sign_flip_p", stats.sign_flip_p, lambda a, b: stats.sign_flip_p(a, b)),
        *(() if checks_ablate.scipy_stats() is None else (
            _wrapper("my_sign_flip_p", checks_ablate.scipy_stats().permutation_test,
                     lambda a, b: checks_ablate.scipy_stats().permutation_test(
                         (a, b), lambda x, y: sum(x - y) / len(x), permutation_type="samples",
                         alternative="greater").pvalue),)),
    )),
    Entry(checks_ablate.check_fisher_power, checks_ablate.FISHER_POWER_HIDDEN, _stub("my_fisher_power"), (
        _wrapper("my_fisher_power", stats.fisher_power,
                 lambda a_rate, b_rate, runs, alpha=0.05: stats.fisher_power(a_rate, b_rate, runs, alpha)),
    )),
    Entry(checks_ablate.check_compare_settings, checks_ablate.COMPARE_HIDDEN, _stub("my_compare"), (
        _wrapper("my_compare", stats.compare_settings,
                 lambda results, a, b, classes: (stats.compare_settings(results, a, b, classes).mean,
                                                 stats.compare_settings(results, a, b, classes).t)),
        _wrapper("my_compare", stats.paired_t, _compare_with_paired_t),
    )),
    *_LESSONS_07_08_10,
)
