"""pspnet_edu: PSPNet (Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017) for learning.

One concept per module; the notebooks in ``notebooks/`` teach them in order.
"""

__version__ = "0.1.0"
