"""The kiosk's Textual side: the app, its screens and the launcher (``storyteller kiosk``).

The rules live in the UI-free :mod:`storyteller.kiosk`; importing this package (or its ``cli``
and ``run`` modules) does not import Textual, so the main command can register the kiosk cheaply.
"""

from __future__ import annotations
