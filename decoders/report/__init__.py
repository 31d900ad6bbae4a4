"""What people read of an audit: the terminal summary, report.json, the HTML page and the
Wireshark companion, each written from the analysis (:class:`decoders.audit.analysis.Analysis`).

- The terminal: :mod:`~decoders.report.summary` (the verdict first, then each finding with its
  numbers), :mod:`~decoders.report.text` (the stream table in Wireshark's RTP Streams column
  order), :mod:`~decoders.report.style` (colour, only where wanted).
- JSON: :mod:`~decoders.report.analysis_json` (``report.json``, docs/report-schema.md),
  :mod:`~decoders.report.jsonout` (``mutecheck streams --json``, docs/streams-json.md).
- HTML: :mod:`~decoders.report.html` (one self-contained page, template ``report.html``),
  :mod:`~decoders.report.plots` (its timeline charts), :mod:`~decoders.report.svg` (the
  charts drawn as inline SVG), :mod:`~decoders.report.browser` (the page opened in headless
  Chromium: a screenshot, its console, its requests).
- Wireshark: :mod:`~decoders.report.wireshark` (annotated capture, filters, profile and the
  ``mutecheck.lua`` plugin).
"""
