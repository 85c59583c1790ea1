"""Chapter 1, disk images: create, inspect, convert and resize with the real ``qemu-img``.

The course's ``qemu-img create`` / ``convert`` lines, with the corrections a student would otherwise
learn the hard way (:mod:`labkit.logic.qemu_img`): ``create`` silently overwrites, so
:class:`CreateImage` verifies an existing image instead (the same format and size: left alone, a
pass; a different one: refused without ``overwrite=True``, which keeps a backup; running a cell
again costs nothing, see :meth:`labkit.steps.base.Step.satisfied`); ``-f vhd`` does not exist
(``vpc`` does) and a fixed VHD reads as raw without it; nothing is written in place (a temporary
sibling, renamed when complete). Checks read the result back (``qemu-img info``, ``compare``,
``check``: the plans' probes), so a *pass* means the image really has the format, size and content
it should. Backups of replaced images are hard links; before shrinking, a sparse copy.
"""

from labkit.steps.disk.common import read_info
from labkit.steps.disk.convert import ConvertImage
from labkit.steps.disk.fill import FillImage
from labkit.steps.disk.image import CreateImage, ImageInfo
from labkit.steps.disk.resize import ResizeImage

__all__ = ["ConvertImage", "CreateImage", "FillImage", "ImageInfo", "ResizeImage", "read_info"]
