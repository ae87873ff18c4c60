"""The report every importer returns beside what it read: lenient in, and honest about it."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ImportReport"]


class ImportReport(BaseModel):
    """What an import changed.

    Attributes:
        source_format: What was read, e.g. ``"png/ccv3 (chara_card_v3)"`` or ``"sillytavern-jsonl"``.
        repaired: Values changed into the right type or shape.
        defaulted: Missing values that were filled in.
        dropped: Values that could not be used and were left out, with the reason.
    """

    source_format: str = ""
    repaired: list[str] = Field(default_factory=list)
    defaulted: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing had to be changed."""
        return not (self.repaired or self.defaulted or self.dropped)

    def lines(self) -> list[str]:
        """The report as human-readable lines, one per change."""
        return (
            [f"repaired: {m}" for m in self.repaired]
            + [f"defaulted: {m}" for m in self.defaulted]
            + [f"dropped: {m}" for m in self.dropped]
        )
