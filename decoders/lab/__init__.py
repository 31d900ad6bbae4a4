"""The lab: record real browser calls (headless Chromium -> aiortc peer) as session folders.

``record_session(variant, out_dir)`` is the entry point; ``VARIANTS`` lists the page's mute
implementations; ``summarize(folder)`` measures a recorded session. ``mutecheck lab`` is the
command line (``decoders.lab.cli``). See ``captures/README.md`` for what a session folder holds.
"""

from decoders.lab.record import VARIANTS, LabError, record_session

__all__ = ["VARIANTS", "LabError", "record_session"]
