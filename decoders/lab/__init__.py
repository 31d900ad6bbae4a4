"""The lab: record real browser calls (headless Chromium -> aiortc peer) as session folders.

``decoders.lab.record.record_session(variant, out_dir)`` is the entry point and
``decoders.lab.record.VARIANTS`` lists the page's mute implementations;
``decoders.lab.summary.summarize(folder)`` measures a recorded session; ``decoders.lab.janus``
records the Janus demos. ``mutecheck lab`` is the command line (``decoders.cli.lab``). See
``captures/README.md`` for what a session folder holds.

This package imports none of its modules: ``decoders.lab.record`` imports ``decoders.lab.turn``
without loading the recorder through its own package (no circle), and importing one part of
the lab (the TURN relay, the reference signal) does not load the rest.
"""
