"""Media the proxy carries: RTP over UDP (UDP modes), and TURN over TCP or TLS through CONNECT."""

from __future__ import annotations

import time

from mitmproxy import flow as mitmflow
from mitmproxy import tcp, udp

from decoders.addon.guard import guarded
from decoders.addon.recorder import Recorder
from decoders.session.monitor import FlowRef, Transport, address_text, starts_turn_stream

MAX_OPEN_TCP = 4096
TURN_DECISION_BYTES = 4100
TURN_DECISION_MESSAGES = 8
"""A TCP flow whose first client bytes are too short to tell TURN from other TCP is decided
again on the next message, up to this many bytes and messages; then it is not TURN."""


class Media:
    """Each UDP datagram goes to the monitor; a TCP flow is decided once on its first client
    bytes, and only a TURN one is read (its pieces framed by the monitor, wherever it runs):
    any other TCP costs a dict lookup per message."""

    name = "mutecheck.media"  # mitmproxy's name for it (not the bare class name: no clash)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._tcp: dict[str, tuple[FlowRef, Transport] | None] = {}

    @guarded
    def udp_message(self, flow: udp.UDPFlow) -> None:
        if not flow.messages:
            return
        last = flow.messages[-1]
        reference = FlowRef(
            id=flow.id,
            type="udp",
            client=address_text(flow.client_conn.peername),
            server=address_text(flow.server_conn.address),
        )
        when = last.timestamp or time.time()
        out = self.recorder.datagram(reference, last.content, last.from_client, when)
        if out is not None:
            self.recorder.emit(out, flow)

    @guarded
    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        """TURN over TCP (or TLS the proxy terminated) through CONNECT."""
        if flow.id not in self._tcp:
            self._decide(flow)  # hands over the messages so far if it is TURN
            return
        known = self._tcp[flow.id]
        if known is not None:
            self._piece(flow, known, flow.messages[-1])

    @guarded
    def tcp_end(self, flow: mitmflow.Flow) -> None:
        if self._tcp.pop(flow.id, None) is None:
            return
        messages = getattr(flow, "messages", None)
        when = (messages[-1].timestamp if messages else None) or time.time()  # replays alike
        out = self.recorder.stream_end(flow.id, when)
        if out is not None:
            self.recorder.emit(out, flow)

    tcp_error = tcp_end

    def _decide(self, flow: tcp.TCPFlow) -> None:
        """Is a TCP flow TURN? Decided on its first client bytes (a few messages at most, while
        they are too short to tell), then remembered until it ends."""
        messages = flow.messages
        head = b""
        for message in messages:
            if not message.from_client:
                if not head:  # the server spoke first: not TURN
                    break
                continue
            head += message.content
            if len(head) >= TURN_DECISION_BYTES:
                break
        verdict = starts_turn_stream(head) if head else False
        if verdict is None and len(messages) < TURN_DECISION_MESSAGES:
            return  # too short to tell: the next message decides
        if len(self._tcp) >= MAX_OPEN_TCP:
            del self._tcp[next(iter(self._tcp))]
        if not verdict:
            self._tcp[flow.id] = None
            return
        transport: Transport = "turn-tls" if flow.client_conn.tls_established else "turn-tcp"
        reference = FlowRef(
            id=flow.id,
            type="tcp",
            client=address_text(flow.client_conn.peername),
            server=address_text(flow.server_conn.address),
        )
        known = (reference, transport)
        self._tcp[flow.id] = known
        self.recorder.relevant.add(flow.id)  # media evidence: saved to flows.mitm when it ends
        for message in messages:  # from its first byte (also after a script reload mid-call)
            self._piece(flow, known, message)

    def _piece(
        self, flow: tcp.TCPFlow, known: tuple[FlowRef, Transport], message: tcp.TCPMessage
    ) -> None:
        reference, transport = known
        when = message.timestamp or time.time()
        out = self.recorder.stream(reference, message.content, message.from_client, when, transport)
        if out is not None:
            self.recorder.emit(out, flow)
