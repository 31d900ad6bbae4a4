"""mutecheck for mitmproxy: what the browser tells a call service while you are muted.

    mitmdump -s addons/mutecheck.py --set mutecheck_dir=SESSION_DIR

Records SDP offers and answers, the mute state (your marks, the app's own signals, your rules)
and volume telemetry in ``SESSION_DIR/events.jsonl`` (docs/session-format.md); prints one warning
line when volume telemetry, or RTP audio that is not silent (over UDP, or relayed through a TURN
server over TCP or TLS by way of the proxy), leaves while you are muted; with
``mutecheck_block`` it stops such telemetry. Mark mute and unmute with the command
``mutecheck.mark muted|unmuted`` or by requesting ``http://mutecheck.mark/muted`` (``/unmuted``)
through the proxy. The logic lives in :mod:`decoders.session.monitor`; the classes below, one
feature each in mitmproxy's style (:mod:`decoders.addon`), only adapt mitmproxy's flows to it and
share one :class:`~decoders.addon.recorder.Recorder`. Unless blocking, the monitor runs in an
observer process (:mod:`decoders.addon.observer`), so that parsing a message never holds up the
proxy. No hook lets an exception out: a failure becomes a ``warning`` event and the flow passes
untouched.

Events carry the time mitmproxy recorded for each message, so saved flows can be analysed again
offline: ``mitmdump -n -r SESSION_DIR/flows.mitm -s addons/mutecheck.py --set
mutecheck_dir=NEW_DIR --set mutecheck_save_flows=none``. ``flows.mitm`` holds the flows that gave
events (``mutecheck_save_flows``), written by :mod:`decoders.addon.flowfile`.
"""

from __future__ import annotations

from decoders.addon.blocking import Blocking
from decoders.addon.folder import SessionFolder
from decoders.addon.judging import Judging
from decoders.addon.marks import Marks
from decoders.addon.media import Media
from decoders.addon.recorder import Recorder
from decoders.addon.saving import FlowSaving
from decoders.addon.signaling import Signaling

recorder = Recorder()
# The order is the order of each hook's calls: the mark host is answered before anything reads
# the flow, blocking acts on what signaling judged, a flow is saved once all have seen it, the
# options are checked before the monitor's settings are made of them, and the session folder
# closes last.
addons = [
    Marks(recorder),
    Signaling(recorder),
    Media(recorder),
    Blocking(recorder),
    FlowSaving(recorder),
    Judging(recorder),
    SessionFolder(recorder),
]
