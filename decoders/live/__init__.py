"""The live audit: ``mutecheck audit URL`` and ``mutecheck watch CAPTURE``.

The engine only: orchestration of the proxy, the capture and the browser (:mod:`.audit`), the
live state fed by the growing capture and the addon's events (:mod:`.feed`, :mod:`.state`),
the alarm rules (:mod:`.alarm`), the screen (:mod:`.screen`). The click commands live in
:mod:`.commands`; nothing else here imports click.
"""
