"""Safety limits for reading untrusted card files.

Every reader in :mod:`storyteller.cards` checks these before it allocates or decodes anything,
so a hostile or broken file costs bounded time and memory and ends in one
:class:`~storyteller.errors.LimitExceededError` (a :class:`~storyteller.errors.FormatError`)
that says which limit was hit.

=========================  ===========  ====================================================
limit                      default      what it bounds
=========================  ===========  ====================================================
``max_file_bytes``         64 MiB       the whole input file (PNG, JSON, YAML, CHARX)
``max_text_chunk_bytes``   16 MiB       one PNG text chunk, before and after zTXt/iTXt
                                        decompression (the card JSON lives in one)
``max_text_total_bytes``   64 MiB       all card text chunks of one PNG together, after
                                        decompression (200 asset chunks of 15 MiB each
                                        would pass the per-chunk limit)
``max_png_chunks``         100 000      chunks walked in one PNG
``max_image_pixels``       64 Mpx       width x height of a PNG avatar (from IHDR) and of
                                        any image Pillow opens (decompression bombs)
``max_zip_members``        2 000        members in a CHARX archive
``max_zip_member_bytes``   64 MiB       one CHARX member, counted while inflating
``max_zip_total_bytes``    256 MiB      all CHARX members together, counted while inflating
``max_nesting``            100          depth of nested JSON/YAML objects and lists
=========================  ===========  ====================================================

Other rules that are not numbers: CHARX member names with ``..`` parts, absolute paths,
drive letters or backslashes, and symlink members are refused; ``load_card`` refuses a path
that is a symbolic link or not a regular file (a FIFO or ``/dev/zero`` would never end);
YAML anchors/aliases are refused (billion-laughs expansion).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds applied while reading a card; see the module docstring.

    Attributes:
        max_file_bytes: Largest input file accepted.
        max_text_chunk_bytes: Largest PNG text chunk, compressed or inflated.
        max_text_total_bytes: Largest total of all card text chunks of a PNG, inflated.
        max_png_chunks: Most PNG chunks walked.
        max_image_pixels: Largest image (width x height) accepted.
        max_zip_members: Most members in a CHARX archive.
        max_zip_member_bytes: Largest inflated CHARX member.
        max_zip_total_bytes: Largest inflated CHARX total.
        max_nesting: Deepest nesting of JSON/YAML containers.
    """

    max_file_bytes: int = 64 * MIB
    max_text_chunk_bytes: int = 16 * MIB
    max_text_total_bytes: int = 64 * MIB
    max_png_chunks: int = 100_000
    max_image_pixels: int = 64 * 1000 * 1000
    max_zip_members: int = 2_000
    max_zip_member_bytes: int = 64 * MIB
    max_zip_total_bytes: int = 256 * MIB
    max_nesting: int = 100


DEFAULT_LIMITS = Limits()
