"""A quick scalar look at the start of a capture: DTLS-SRTP profile and an RTP sample.

The bulk path needs two facts before it starts (which header-extension id is the audio level,
when there is no SDP; which SRTP profile was negotiated, to tell the auth-tag length). Both are
settled in the first seconds of a call, so a few thousand frames through the scalar path answer
them at a fraction of the full scan's cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Final

from decoders.wire import demux, dtls, rtp
from decoders.wire.capture import CaptureReader
from decoders.wire.demux import PacketKind
from decoders.wire.net import Unwrapper

HEAD_FRAMES = 5000
HEAD_BYTES = 32 << 20  # and at most this much of the file: 5,000 frames of a call are ~1 MB
ENOUGH_RTP = 400  # packets: plenty to infer the audio-level id (~4 s of one audio stream)
DTLS_WINDOW = 1000  # frames: the DTLS handshake comes right after the first ICE checks


@dataclass
class HeadSample:
    rtp_packets: list[rtp.RtpPacket] = field(default_factory=list)
    srtp_profile: int | None = None
    offered_profiles: tuple[int, ...] = ()

    @property
    def srtp_auth_tag_length(self) -> int | None:
        if self.srtp_profile is None:
            return None
        suite = dtls.suite_by_dtls_id(self.srtp_profile)
        return suite.rtp_tag_length if suite else None

    @property
    def srtp_profile_name(self) -> str | None:
        if self.srtp_profile is None:
            return None
        suite = dtls.suite_by_dtls_id(self.srtp_profile)
        return suite.dtls_name if suite else f"0x{self.srtp_profile:04x}"


def probe_head(fileobj: BinaryIO, max_frames: int = HEAD_FRAMES) -> HeadSample:
    """Read up to ``max_frames`` frames (and :data:`HEAD_BYTES`) of an open capture with the
    scalar path."""
    sample = HeadSample()
    reader = CaptureReader(fileobj)
    unwrapper = Unwrapper()
    for frame in reader:
        if frame.number > max_frames or reader.offset > HEAD_BYTES:
            break
        if len(sample.rtp_packets) >= ENOUGH_RTP and (
            sample.srtp_profile is not None or frame.number > DTLS_WINDOW
        ):
            break
        for datagram in unwrapper.feed(frame):
            opened = demux.open_payload(datagram.payload, parse=_SAMPLED, srtp=True)
            if opened.turn_error is not None or opened.error is not None:
                continue
            if opened.rtp is not None:
                sample.rtp_packets.append(opened.rtp)
            elif opened.dtls is not None:
                _note_dtls(sample, opened.dtls)
    return sample


_SAMPLED: Final = (PacketKind.RTP, PacketKind.DTLS)


def _note_dtls(sample: HeadSample, records: tuple[dtls.DtlsRecord, ...]) -> None:
    for record in records:
        if not record.srtp_profiles:
            continue
        if record.handshake_type == 2:  # ServerHello: the profile chosen
            sample.srtp_profile = record.srtp_profiles[0]
        elif record.handshake_type == 1:  # ClientHello: the profiles offered
            sample.offered_profiles = record.srtp_profiles
