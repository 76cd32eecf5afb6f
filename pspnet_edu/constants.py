"""Constants that the model side and the data side share, so that neither imports the other.

``NUM_CLASSES`` and ``IGNORE_INDEX`` are Cityscapes' conventions (Cordts et al. 2016): 19
trained classes ("trainIds" 0..18) and 255 for every pixel that is not scored (void classes,
padding). The loss and the metrics need them as much as the dataset does; keeping them here
lets ``pspnet_edu.loss`` stay free of ``pspnet_edu.data`` (data flows image -> model -> loss,
never back).
"""

NUM_CLASSES = 19  # Cityscapes trainIds 0..18: the benchmark's 19 classes
IGNORE_INDEX = 255  # the trainId of every pixel that is not trained or scored
