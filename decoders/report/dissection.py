"""Wireshark's own dissection of each finding's first frames, through pyshark.

mutecheck reads captures with its own decoder (the fast path); for the handful of frames a
finding points at, the reports also show what Wireshark makes of them, so a reader can check
mutecheck against the tool they trust without opening the capture. :func:`dissect` runs one
tshark pass (pyshark's ``FileCapture``) over the capture with a display filter on the frame
numbers (:func:`decoders.report.wireshark.frame_filter`, passed in) and the same dissection
options as ``--engine tshark`` (:func:`decoders.wire.tshark.dissection_args`: the RTP
heuristics on UDP and STUN), and stops as soon as the last wanted frame has been read.
:func:`finding_frames` chooses the frames: at most :data:`PER_FINDING` per finding,
:data:`MAX_FRAMES` in all.

What is kept: for each protocol layer, its fields as tshark names them (``rtp.ssrc``), the
value tshark shows (``0x08d5a265``) and Wireshark's line for it (``Synchronization Source
identifier: 0x08d5a265 (148218469)``). What is left out (privacy: no payload bytes, no key
material in a report): payload and data fields whatever their size (``udp.payload``,
``srtp.enc_payload``, ``tcp.segment_data``, ``data.data``; RTP header extensions excepted),
any field whose name says key or password (:data:`LEFT_OUT_WORDS`), any byte
string longer than :data:`MAX_BYTES` bytes (payloads, auth tags, certificates, randoms, HMACs),
and the fields tshark hides (the ``ip.addr``-style duplicates). Values are cut at
:data:`MAX_VALUE` characters.

pyshark drives tshark from an asyncio event loop of its own: :func:`dissect` runs it in a
worker thread with a new loop, so it works the same from a plain script, from a thread, and
from code already inside a running loop (where ``run_until_complete`` would fail), and it never
replaces the caller's loop or child watcher. When tshark is missing or fails, the result holds
no frame (or those read before a failure) and one line saying why (:attr:`Dissection.note`);
the reports show that line and everything else.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from decoders.wire.tshark import dissection_args

if TYPE_CHECKING:
    from decoders.audit.flags import Finding

PER_FINDING: Final = 3
"""Frames dissected per finding (its first ones)."""
MAX_FRAMES: Final = 30
"""Frames dissected in all."""
MAX_BYTES: Final = 8
"""A byte-string field longer than this is left out (payloads, auth tags, certificates)."""
MAX_VALUE: Final = 200
"""Characters of a value or of Wireshark's line shown; the rest is cut."""
LEFT_OUT_WORDS: Final = frozenset(
    {"payload", "data", "key", "keys", "password", "passwd", "secret", "psk", "premaster", "master"}
)
"""A field whose name holds one of these words (between dots, underscores or dashes) is never
shown, whatever its size: payloads and data (``tcp.segment_data``, ``tls.app_data``), keys and
passwords; except under :data:`HEADER_EXTENSIONS`."""
HEADER_EXTENSIONS: Final = "rtp.ext."
"""RTP header extensions are header, sent in the clear even with SRTP, and the audio level's
evidence (``rtp.ext.rfc5285.data``): their fields are shown (byte strings up to
:data:`MAX_BYTES`)."""
LEFT_OUT_LAYERS: Final = frozenset({"data"})
"""Layers whose fields are never shown: undissected bytes (``data.data``, ``data.text``)."""
_BYTES: Final = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})+$")
_NOT_SHOWN: Final = ("_resolved", ".oui")
"""Name resolution echoes of another field (``eth.dst_resolved``, ``eth.src.oui``)."""


@dataclass(frozen=True)
class DissectedField:
    name: str
    """tshark's field name: ``rtp.ssrc``."""
    value: str
    """The value as tshark shows it: ``0x08d5a265``."""
    line: str
    """Wireshark's line in the packet details: ``Synchronization Source identifier: ...``."""


@dataclass(frozen=True)
class DissectedLayer:
    name: str
    """tshark's protocol name: ``frame``, ``eth``, ``ip``, ``udp``, ``rtp``."""
    fields: tuple[DissectedField, ...]


@dataclass(frozen=True)
class DissectedFrame:
    number: int
    layers: tuple[DissectedLayer, ...]
    left_out: int
    """Fields not shown (payload, long byte strings, keys)."""

    @property
    def protocols(self) -> str:
        return ":".join(layer.name for layer in self.layers)

    def value(self, name: str) -> str | None:
        """The first shown value of the field ``name`` (``rtp.ssrc``), or None."""
        for layer in self.layers:
            for item in layer.fields:
                if item.name == name:
                    return item.value
        return None


@dataclass(frozen=True)
class Dissection:
    """Wireshark's dissection of some frames, or why there is none."""

    frames: tuple[DissectedFrame, ...] = ()
    note: str | None = None
    """One line when some or all frames could not be dissected (tshark missing, failed)."""
    wanted: tuple[int, ...] = field(default=())

    def of(self, numbers: Iterable[int]) -> tuple[DissectedFrame, ...]:
        """The dissected frames among ``numbers``, in their order."""
        by_number = {frame.number: frame for frame in self.frames}
        return tuple(by_number[n] for n in numbers if n in by_number)


def finding_frames(findings: Sequence[Finding]) -> list[tuple[int, ...]]:
    """Per finding, the first frames to dissect: at most :data:`PER_FINDING` each and
    :data:`MAX_FRAMES` distinct frames in all (later findings get what is left)."""
    chosen: set[int] = set()
    out: list[tuple[int, ...]] = []
    for finding in findings:
        frames: list[int] = []
        for number in finding.first_frames[:PER_FINDING]:
            if number in chosen or len(chosen) < MAX_FRAMES:
                chosen.add(number)
                frames.append(number)
        out.append(tuple(frames))
    return out


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "\u2026"


def shown(name: str, value: str, size: int) -> bool:
    """Whether a field of this name, shown value and size in bytes goes into a report."""
    if not name or any(name.endswith(end) for end in _NOT_SHOWN):
        return False
    words = re.split(r"[._-]", name.lower())
    if words[0] in LEFT_OUT_LAYERS:
        return False
    if not name.startswith(HEADER_EXTENSIONS) and LEFT_OUT_WORDS.intersection(words):
        return False
    return not (_BYTES.match(value) and (value.count(":") + 1 > MAX_BYTES or size > MAX_BYTES))


def _int(text: object) -> int:
    try:
        return int(str(text))
    except ValueError:
        return 0


def _layer(layer: Any) -> tuple[DissectedLayer, int]:
    """A pyshark XML layer as kept (fields in tshark's order), and how many were left out."""
    fields: list[DissectedField] = []
    left_out = 0
    for container in layer._all_fields.values():  # the parsed PDML: every <field>, in order
        for item in container.all_fields:
            name = str(item.name or "")
            if item.hide or not name:
                continue
            value = str(item.show if item.show is not None else "")
            if not shown(name, value, _int(item.size)):
                left_out += 1
                continue
            line = str(item.showname or value)
            fields.append(DissectedField(name, _cut(value), _cut(line)))
    return DissectedLayer(str(layer.layer_name), tuple(fields)), left_out


def _frame(packet: Any) -> DissectedFrame:
    layers: list[DissectedLayer] = []
    left_out = 0
    for layer in [packet.frame_info, *packet.layers]:
        kept, dropped = _layer(layer)
        layers.append(kept)
        left_out += dropped
    return DissectedFrame(int(packet.number), tuple(layers), left_out)


def _read(
    capture: Path, wanted: tuple[int, ...], display_filter: str, tshark: str
) -> tuple[list[DissectedFrame], str | None]:
    """One tshark pass through pyshark, on a new event loop of this thread: the frames read and,
    when tshark or pyshark failed on the way, why (the frames read before stay)."""
    try:
        import pyshark  # imported here: only the reports' dissection needs it
    except ImportError as missing:
        return [], f"pyshark is not installed ({_reason(missing)})"
    loop = asyncio.new_event_loop()
    out: list[DissectedFrame] = []
    error: str | None = None
    try:
        source = pyshark.FileCapture(
            str(capture),
            display_filter=display_filter,
            keep_packets=False,
            tshark_path=tshark,
            eventloop=loop,
            custom_parameters=dissection_args(),
        )
        packets = iter(source)
        try:
            for packet in packets:
                out.append(_frame(packet))
                if out[-1].number >= wanted[-1]:
                    break  # the last wanted frame: tshark need not read the rest
        finally:
            try:
                packets.close()  # stops tshark when it is still reading
            finally:
                try:
                    source.close()
                finally:
                    # a tshark that failed stays listed, and pyshark's __del__ would close it
                    # again on this (then closed) loop: it has ended, forget it
                    source._running_processes.clear()
    except Exception as failure:  # pyshark or tshark failed: say so, the report goes on
        error = f"tshark (through pyshark) failed: {_reason(failure)}"
    finally:
        pending = asyncio.all_tasks(loop)  # pyshark's stderr readers, after a failure
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    return out, error


_LAST_LINE: Final = re.compile(r"Last error line: (.*?)(?: Try rerunning|$)")


def _reason(error: BaseException) -> str:
    """One line: tshark's own last error line when pyshark quotes it, else the exception."""
    text = " ".join(str(error).split())
    quoted = _LAST_LINE.search(text)
    if quoted and quoted.group(1).strip() not in ("", "None"):
        return quoted.group(1).strip()[:300]
    name = type(error).__name__
    return f"{name}: {text[:300]}" if text else name


NOT_SHOWN: Final = "Wireshark's dissection of the findings' frames is not shown"


@lru_cache(maxsize=8)
def _dissect(
    capture: Path,
    stamp: tuple[int, int],
    wanted: tuple[int, ...],
    display_filter: str,
    tshark: str,
) -> Dissection:
    with ThreadPoolExecutor(1, thread_name_prefix="mutecheck-pyshark") as pool:
        frames, error = pool.submit(_read, capture, wanted, display_filter, tshark).result()
    missing = [n for n in wanted if n not in {frame.number for frame in frames}]
    note = None
    if error is not None and not frames:
        note = f"{NOT_SHOWN}: {error}"
    elif error is not None or missing:
        note = (
            f"Wireshark's dissection is missing for frame(s) {', '.join(map(str, missing))}: "
            + (error or "tshark did not show them")
        )
    return Dissection(tuple(frames), note, wanted)


def dissect(capture: Path | None, frames: Iterable[int], display_filter: str) -> Dissection:
    """Wireshark's dissection of ``frames`` of ``capture``, read with ``display_filter`` (which
    selects those frames: :func:`decoders.report.wireshark.frame_filter`).

    Never raises for a missing tshark or a failing tshark or pyshark: the result's ``note`` says
    what happened. Results are cached per capture (path, size and modification time), frames and
    tshark, so the HTML report and the Wireshark companion of one analysis share one tshark pass.
    """
    wanted = tuple(sorted(set(frames)))
    if capture is None or not wanted:
        return Dissection(wanted=wanted)
    tshark = shutil.which("tshark")
    if tshark is None:
        return Dissection(
            note=f"{NOT_SHOWN}: tshark is not installed (apt-get install tshark).", wanted=wanted
        )
    try:
        info = capture.stat()
    except OSError as error:
        return Dissection(note=f"{NOT_SHOWN}: {error.strerror or error}", wanted=wanted)
    stamp = (info.st_size, info.st_mtime_ns)
    return _dissect(capture.resolve(), stamp, wanted, display_filter, tshark)
