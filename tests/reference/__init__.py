"""Independent reference implementations that tests compare pspnet_edu with."""
