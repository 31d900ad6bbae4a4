"""The mitmproxy addon scripts users load with ``mitmdump -s``; installed with the package, so
that a program finds them where Python does (:func:`decoders.addon.script.script_path`)."""
