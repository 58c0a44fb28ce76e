"""TIFF pages read with their costs bounded before anything is decoded (BPS microscopy:
tifffile; folders of images read TIFFs through PIL, whose libtiff caps each strip).

A TIFF's header declares its size and where its strips lie; a few hundred bytes can
declare gigabytes, and every strip may point at one small compressed bomb. So the first
page's size, its strips' places and each strip's decoded size are checked first."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from gan.data.limits import MAX_IMAGE_BYTES, bounded, check_pixels

# TIFF compressions whose decoded size is capped here, strip by strip, before tifffile
# decodes them (without imagecodecs it decodes these only, each strip whole however far it
# goes); any other is refused: its output cannot be bounded before it is made.
_CODECS = {1: "none", 8: "zlib", 32946: "zlib", 50013: "zlib", 34925: "lzma", 32773: "packbits"}


def _packbits_size(data: bytes, cap: int) -> int:
    """The bytes a PackBits stream decodes to, counted without decoding, up to past `cap`."""
    at = out = 0
    while at < len(data) and out <= cap:
        head = data[at]
        if head < 128:  # a literal run of head + 1 bytes
            out, at = out + head + 1, at + head + 2
        elif head > 128:  # one byte repeated 257 - head times
            out, at = out + 257 - head, at + 2
        else:  # 128: no operation
            at += 1
    return out


def _decoded_size(kind: str, data: bytes, cap: int) -> int:
    """What one compressed strip decodes to, counted up to past `cap` (a corrupt stream:
    0, which tifffile reports itself)."""
    import lzma
    import zlib

    if kind == "packbits":
        return _packbits_size(data, cap)
    inflater = zlib.decompressobj() if kind == "zlib" else lzma.LZMADecompressor()
    try:
        return len(inflater.decompress(data, cap + 1))
    except (zlib.error, lzma.LZMAError):
        return 0


def _check_segments(tif: Any, page: Any, limit: int) -> None:
    """Before tifffile decodes anything: the page's compression is one whose output is
    capped here; its strips (or tiles) are no more than its size has, lie in the file and
    do not overlap or repeat (so all of them together read at most the file once), a
    PackBits one stores no more than an encoder writes for its size, and each decodes to
    no more than its own declared size. Without this a page's strips may all point at one
    small bomb."""
    kind = _CODECS.get(int(page.compression))
    if kind is None:
        raise ValueError(
            f"its compression {page.compression.name} cannot be bounded before decoding; "
            "save it uncompressed or with deflate, LZMA or PackBits"
        )
    handle, count = tif.filehandle, len(page.dataoffsets)
    segment = math.prod(page.chunks) * page.dtype.itemsize  # one strip or tile, decoded
    if count > math.prod(page.chunked) or segment * count > limit:
        raise ValueError(
            f"the first page declares {count:,} strips or tiles of {segment:,} bytes, where "
            f"its size has {math.prod(page.chunked):,}, and the limit is {limit:,} bytes"
        )
    stored = segment + segment // 64 + 1024  # PackBits of incompressible bytes, and more
    end = 0
    for offset, size in sorted(zip(page.dataoffsets, page.databytecounts, strict=False)):
        if not size:
            continue  # an empty strip: tifffile fills it
        if offset < end or offset + size > handle.size:
            raise ValueError("its strips or tiles overlap, repeat or lie past the end of the file")
        if kind == "packbits" and size > stored:  # no-op bytes cost work and make nothing
            raise ValueError(f"a PackBits strip stores {size:,} bytes, more than its size needs")
        end = offset + size
        handle.seek(offset)
        if kind != "none" and _decoded_size(kind, handle.read(size), segment) > segment:
            raise ValueError(f"a compressed strip inflates past its {segment:,} bytes")


def first_tiff_page(file: Any) -> np.ndarray:
    """The TIFF's first page (never the rest of a multi-page file), its declared size checked
    before anything is decoded, decoded in this thread (files are decoded in a pool)."""
    import tifffile

    with (
        nullcontext(file) if isinstance(file, Path) else file.open("rb") as stream,
        tifffile.TiffFile(stream) as tif,
    ):
        page = tif.pages.first
        if page.dtype is None:
            raise ValueError("the first page has a sample format this reader does not know")
        check_pixels(page.imagewidth, page.imagelength * page.imagedepth, "the first page")
        limit = bounded(MAX_IMAGE_BYTES, 3)  # the page, its float copy, their resizing
        if page.nbytes > limit:
            raise ValueError(
                f"the first page declares {page.nbytes:,} bytes; the limit is {limit:,}"
            )
        _check_segments(tif, page, limit)
        return page.asarray(maxworkers=1)
