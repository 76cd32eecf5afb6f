"""The paper's ablation tables (Zhao et al. 2017, Sec. 5.2, Tables 1 and 2), as the lessons plot them.

ADE20K val, ResNet-50, single scale: (mIoU %, pixel accuracy %). "DR" is the dimension
reduction after pooling: the 1x1 conv that brings each pyramid level to 1/N of the channels.
The PPM of the author's code, and of this course, has that conv, so its counterparts are the
"+ DR" rows; the table reports B1 only without DR. The tables are transcribed in
docs/paper_notes.md, sections 1.3 and 1.4.
"""

from __future__ import annotations

# Table 1: every row includes data augmentation and the auxiliary loss ("DA + AL").
PAPER_TABLE1: dict[str, tuple[float, float]] = {
    "baseline": (37.23, 78.01),  # dilated FCN, no PPM
    "B1 + MAX": (39.94, 79.46),
    "B1 + AVE": (40.07, 79.52),
    "B1236 + MAX": (40.18, 79.45),
    "B1236 + AVE": (41.07, 79.97),
    "B1236 + MAX + DR": (40.87, 79.61),
    "B1236 + AVE + DR": (41.68, 80.04),
}
# The paper's row that corresponds to each variant of the course's PPM ablation (all with DR
# where the paper has a DR row; the capacity control has no counterpart in the paper).
PAPER_ROW_OF_VARIANT: dict[str, str] = {
    "none": "baseline",
    "B1-max": "B1 + MAX",
    "B1-avg": "B1 + AVE",
    "B1236-max": "B1236 + MAX + DR",
    "B1236-avg": "B1236 + AVE + DR",
}
# Table 2: the weight alpha of the auxiliary loss, on the dilated FCN *without* PPM.
PAPER_TABLE2: dict[float, tuple[float, float]] = {
    0.0: (35.82, 77.07),
    0.3: (37.01, 77.87),
    0.4: (37.23, 78.01),
    0.6: (37.09, 77.84),
    0.9: (36.99, 77.87),
}
PAPER_SOURCE = "Zhao et al. 2017 (PSPNet), Sec. 5.2: ADE20K val, ResNet-50"
TRANSCRIPTION_NOTE = ("Baseline, B1 + AVE, B1236 + AVE + DR, no-aux and alpha = 0.4 rows are confirmed by the paper's "
                      "prose; the other rows come from one transcription of the tables.")
