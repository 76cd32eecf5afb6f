"""pspnet_edu: PSPNet (Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017) for learning.

One concept per module; the notebooks in ``notebooks/`` teach them in order:

receptive_field (01), dilation (02), backbone (03), ppm (04), pspnet / loss / convert (05),
data (06), schedule / training (07), metrics / inference (08), experiments (09),
training.distributed / convert (10); checks holds the exercises' self-checks, assignments the
student notebooks, cli the ``pspnet-edu`` command.
"""

from pspnet_edu.pspnet import PSPNet, PSPNetConfig, build_pspnet

__all__ = ["PSPNet", "PSPNetConfig", "build_pspnet"]
__version__ = "0.1.0"
