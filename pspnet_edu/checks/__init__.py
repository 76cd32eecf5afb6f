"""Self-checks for the exercises in the notebooks: one module per concept.

An exercise cell defines the learner's own version of a piece of the package under its own
name (``my_atrous_conv``, ``my_ppm``, ...); the next cell passes it to a check::

    from pspnet_edu.checks.dilation import check_atrous_conv
    check_atrous_conv(my_atrous_conv)
    # ✓ my_atrous_conv matches F.conv2d(x, weight, padding=p, dilation=d) on 8 cases

The contract every check follows:

- it takes the learner's function (or module or class) and compares it with the package's
  reference on several cases, chosen to catch the usual mistakes;
- on success it prints ONE deterministic line, ``✓ <name> matches <reference> on <n> cases``
  (nbval compares it, so it holds no timings, addresses or float noise);
- on a mismatch it raises ``AssertionError`` naming the case, the expected and the received
  value, and a hint;
- if the learner's code still raises ``NotImplementedError`` (the student version of the
  notebook, see :mod:`pspnet_edu.assignments`), it raises ``AssertionError("<name> is not
  implemented yet: ...")``;
- it refuses a learner that only calls the package's own version: while the learner's code
  runs, the check *hides* that version and its obvious aliases from every loaded module
  (``__main__``, the notebook's namespace, included), so that ``def my_poly_lr(*a, **k):
  return poly_lr(*a, **k)`` raises ``AssertionError("my_poly_lr calls
  pspnet_edu.schedule.poly_lr, the function it is meant to replace: write it yourself ...")``;
  each check module lists what it hides (``*_HIDDEN``) and says why;
- it never modifies its arguments and does no I/O besides the verdict line.

The shared machinery is in :mod:`pspnet_edu.checks._core` (``check_cases`` runs a learner's
function against a reference on a list of ``Case``s; ``hidden``, ``learner_code``,
``refuse_reference``, ``call_learner``, ``differences``, ``fail`` and ``passed`` are the pieces
for checks that need more than that). :mod:`pspnet_edu.checks.registry` lists every check with
what it hides, its student stub and the shortcuts it must refuse; ``tests/test_checks.py`` runs
them all (the stub fails with "not implemented yet", each shortcut with "write it yourself",
the references are back afterwards) and fails for a check without an entry. Each check also
has unit tests in ``tests/test_checks_<concept>.py``: a right answer passes, and a plausible
wrong answer fails with a helpful message.

Modules, by lesson:

- ``receptive_field``: 01_receptive_fields (RF recurrences, the exact input window of a unit, the ERF gradient)
- ``dilation``: 02_dilated_convolutions (the à trous identity, the gridding pattern)
- ``backbone``: 03_dilated_resnet (feature-map sizes, dilating a built ResNet in place)
- ``ppm``: 04_pyramid_pooling_module (adaptive pooling windows, bilinear resizing, the module)
- ``pspnet``: 05_pspnet
- ``data``: 06_cityscapes_data
- ``schedule`` and ``training``: 07_training (the optimiser, one training step, gradient accumulation, overfitting one batch)
- ``metrics`` and ``inference``: 08_evaluation (confusion matrix, IoU, sliding window)
- ``ablate``: 09_ablations (paired t, a paired comparison, Fisher's exact test, the exact sign-flip test)
- ``scaling``: 10_scaling_up (the torchrun plan, an evaluation sharded over ranks)
"""
