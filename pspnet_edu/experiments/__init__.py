"""The course's experiments: the paper's ablations at course scale, and the demo.

    sweeps      run_settings (settings x seeds), ablate_alpha (Table 2), ablate_ppm (Table 1)
    demo        DEMO_RECIPE and run_demo: `make demo`
    paper       the paper's Tables 1 and 2
    stats       mean and spread over seeds, paired t, confidence interval, context IoU
    plots       the figures of the sweeps and of the demo

Taught in notebooks/09_ablations.ipynb; the demo is `make demo` (README.md).
"""

from pspnet_edu.experiments.demo import DEMO_RECIPE, demo_config, run_demo
from pspnet_edu.experiments.sweeps import ALPHAS, PPM_VARIANTS, ablate_alpha, ablate_ppm, run_settings, with_model

__all__ = ["ALPHAS", "DEMO_RECIPE", "PPM_VARIANTS", "ablate_alpha", "ablate_ppm", "demo_config", "run_demo",
           "run_settings", "with_model"]
