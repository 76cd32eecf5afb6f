"""The poly learning-rate policy (Zhao et al. 2017, Sec. 5.1; Chen et al., DeepLab, 2016).

PSPNet trains with ``lr = base_lr * (1 - iteration / max_iterations) ** power`` and
``power = 0.9``, updated after every step (hszhao/semseg ``poly_learning_rate``). The rate
starts at ``base_lr``, falls slowly at first and fast at the end, and reaches 0 at
``max_iterations``.

This module holds the formula as a pure function so that it can be read, plotted and
tested. The trainer (``pspnet_edu.training``) does not call it: it uses the library's
``torch.optim.lr_scheduler.PolynomialLR(total_iters=max_iterations, power=0.9)``, and
``tests/test_schedule.py`` shows that the two agree at every step, for every parameter group
(the backbone at 1x and the PPM and heads at 10x the base rate).

Taught in ``notebooks/07_training.ipynb``.
"""

from __future__ import annotations


def poly_lr(base_lr: float, iteration: int, max_iterations: int, power: float = 0.9) -> float:
    """The learning rate after ``iteration`` optimizer steps under the poly policy.

    ``power=0.9`` is the paper's value (Sec. 5.1). At ``iteration >= max_iterations`` the rate
    is 0 (the schedule is over).

    >>> poly_lr(0.01, 0, 100)
    0.01
    >>> round(poly_lr(0.01, 50, 100), 6)   # 0.01 * 0.5 ** 0.9
    0.005359
    >>> poly_lr(0.01, 100, 100)
    0.0
    >>> poly_lr(0.1, 10, 100, power=1.0)   # power 1 is a straight line
    0.09000000000000001
    """
    if max_iterations <= 0:
        raise ValueError(f"max_iterations must be positive, got {max_iterations}")
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    progress = min(iteration, max_iterations) / max_iterations
    return base_lr * (1.0 - progress) ** power
