"""pspnet_edu: PSPNet (Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017) for learning.

One concept per module; the notebooks in ``notebooks/`` teach them in order:

receptive_field (01), dilation (02), backbone (03), ppm (04), pspnet / loss / convert (05),
data (06), schedule / training (07), metrics / inference (08), experiments (09),
training.distributed / convert (10); checks holds the exercises' self-checks, assignments the
student notebooks, cli the ``pspnet-edu`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pspnet_edu.pspnet import PSPNet, PSPNetConfig, build_pspnet

__all__ = ["PSPNet", "PSPNetConfig", "build_pspnet"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``pspnet_edu.PSPNet`` and the others, imported on first use (PEP 562).

    Importing the package imports no torch yet, so that the ``pspnet-edu`` program can import it
    with the garbage collector paused (:mod:`pspnet_edu.cli`).
    """
    if name in __all__:
        from pspnet_edu import pspnet

        return getattr(pspnet, name)
    raise AttributeError(f"module 'pspnet_edu' has no attribute {name!r}")
