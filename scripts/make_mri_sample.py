"""Rebuild the MRI sample bundled in src/gan/data/mri_sample from the MNI ICBM152 volume.

    uv run python scripts/make_mri_sample.py [../shared/data/mri/mni_icbm152_...nii.gz]

Writes every brain-containing axial slice at 200x160 (HxW) as an 8-bit PNG, plus NOTICE.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from gan.data.mri import SAMPLE_DIR
from gan.data.nifti import axial_slices

DEFAULT = Path("../shared/data/mri/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")

NOTICE = """\
Brain MRI sample bundled with gan
=================================
These PNG files are axial slices (200x160, anterior at the top) of the
MNI ICBM152 2009a symmetric T1-weighted template, made by
scripts/make_mri_sample.py: intensities clipped to the 0.5-99.5th
percentiles of the non-zero voxels, slices with at least 2% tissue kept.

Source: V. Fonov, A. Evans, R. McKinstry, C. Almli, D. Collins, "Unbiased
nonlinear average age-appropriate brain templates from birth to adulthood",
NeuroImage 47 (2009) S102.

Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre,
Montreal Neurological Institute, McGill University. Permission to use, copy,
modify, and distribute this data for any purpose and without fee is granted,
provided that this copyright notice appears in all copies. The authors and
McGill University make no representations about the suitability of this data
for any purpose. It is provided "as is" without express or implied warranty.
"""


def main() -> None:
    volume = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    SAMPLE_DIR.mkdir(parents=True, exist_ok=True)
    for old in SAMPLE_DIR.glob("*.png"):
        old.unlink()
    slices = axial_slices(volume, (200, 160))
    for i, plane in enumerate(slices):
        Image.fromarray(plane[0], mode="L").save(SAMPLE_DIR / f"slice-{i:03d}.png", optimize=True)
    (SAMPLE_DIR / "NOTICE").write_text(NOTICE)
    print(f"wrote {len(slices)} slices to {SAMPLE_DIR}")


if __name__ == "__main__":
    main()
