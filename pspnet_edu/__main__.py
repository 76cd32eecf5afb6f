"""``python -m pspnet_edu`` is the same as ``pspnet-edu``."""

import sys

from pspnet_edu.cli import console

sys.exit(console())
