"""Tests for decoders.addon.observer: the monitor in a process of its own gives what it gives in
the proxy (the real lab signaling, telemetry and the browser's RTP), answers marks and state
questions, hands its monitor back, and keeps what it was given when the proxy dies."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.corpus import lab_session
from helpers.hostile_bodies import hostile_bodies
from helpers.killed import kill_proxy_after
from helpers.turn_stream import browser_rtp, cut, lab_peer, turn_call

from decoders.addon.observer import Observer
from decoders.session.events import Event, EventWriter, encode_event, read_events
from decoders.session.monitor import FlowRef, Message, Monitor, Settings

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "signaling"

T0 = 1_795_989_000.0
"""Event times are plausible epoch times (the reader refuses times before 1990)."""


def msg(body: bytes, endpoint: str = "https://call.example.org/api", sent: bool = True) -> Message:
    return Message(
        flow=FlowRef(id=f"f{len(body)}", type="http", url=endpoint, method="POST"),
        endpoint=endpoint,
        sent=sent,
        content=body,
        label=f"POST {endpoint}",
    )


def script() -> list[tuple[str, tuple[object, ...]]]:
    """A call: offer, app signals, telemetry unmuted and muted, the browser's RTP, marks."""
    session = lab_session("ui-only")
    steps: list[tuple[str, tuple[object, ...]]] = [
        ("observe", (msg((FIXTURES / "rtc_offer.json").read_bytes()), T0 + 10.0)),
        ("observe", (msg((FIXTURES / "jitsi_presence_unmuted.xml").read_bytes()), T0 + 10.5)),
        ("observe", (msg(b'{"stats": {"audio": {"level": 0.2}}}'), T0 + 11.0)),
        ("mark", (T0 + 12.0, True)),
        ("observe", (msg((FIXTURES / "webex_metrics.json").read_bytes()), T0 + 13.0)),
    ]
    for n in range(6):
        body = json.dumps({"stats": {"audio": {"level": n / 10, "energy": n}}}).encode()
        steps.append(("observe", (msg(body), T0 + 14.0 + n)))
    browser = json.loads((session / "session.json").read_text())["network"]["browser"]["address"]
    from decoders.wire.capture import open_capture
    from decoders.wire.demux import PacketKind, classify
    from decoders.wire.net import Unwrapper

    unwrapper = Unwrapper()
    with open_capture(session / "capture.pcapng") as reader:
        for frame in reader:
            for datagram in unwrapper.feed(frame):
                rtp = classify(datagram.payload) is PacketKind.RTP
                if datagram.src == browser and rtp and len(steps) < 400:
                    ref = FlowRef(id="u1", type="udp")
                    at = T0 + 20.0 + len(steps)
                    steps.append(("datagram", (ref, datagram.payload, True, at)))
    relayed = [(t, payload) for t, payload in browser_rtp(session)[300:340]]
    call = turn_call(relayed, lab_peer(session))
    tcp = FlowRef(id="t1", type="tcp", client="127.0.0.1:5", server="10.77.0.3:3478")
    for n, (_, piece) in enumerate(cut(call.client, seed=1)):
        steps.append(("stream", (tcp, piece, True, T0 + 450.0 + n / 100, "turn-tls")))
    steps.append(("stream_end", ("t1", T0 + 499.0)))
    steps.append(("mark", (T0 + 500.0, False)))
    steps.append(("observe", (msg(b'{"audioLevel": 0.5}'), T0 + 501.0)))
    return steps


def inline(steps: list[tuple[str, tuple[object, ...]]], settings: Settings) -> list[Event]:
    monitor = Monitor(settings)
    events = [monitor.start(T0 + 1.0, note="x")]
    for kind, args in steps:
        if kind == "observe":
            events += monitor.observe(*args).events  # type: ignore[arg-type]
        elif kind == "datagram":
            events += monitor.observe_datagram(*args).events  # type: ignore[arg-type]
        elif kind == "stream":
            events += monitor.observe_stream(*args).events  # type: ignore[arg-type]
        elif kind == "stream_end":
            events += monitor.end_stream(*args).events  # type: ignore[arg-type]
        else:
            events += monitor.mark(args[0], args[1], via="test").events  # type: ignore[arg-type]
    events += monitor.finish(T0 + 999.0).events
    return events


def test_the_observer_writes_what_the_monitor_writes_in_the_proxy(tmp_path: Path) -> None:
    settings = Settings(grace=0.0)
    steps = script()
    expected = [json.loads(encode_event(event)) for event in inline(steps, settings)]
    monitor = Monitor(settings)
    with (tmp_path / "events.jsonl").open("ab", buffering=0) as stream:  # as the addon does
        EventWriter(stream).write(monitor.start(T0 + 1.0, note="x"))
    logged: list[tuple[list[str], list[str]]] = []
    observer = Observer(tmp_path / "events.jsonl", monitor, lambda w, n: logged.append((w, n)))
    states = []
    for kind, args in steps:
        if kind == "observe":
            observer.observe(*args)  # type: ignore[arg-type]
        elif kind == "datagram":
            observer.datagram(*args)  # type: ignore[arg-type]
        elif kind == "stream":
            observer.stream(*args)  # type: ignore[arg-type]
        elif kind == "stream_end":
            observer.stream_end(*args)  # type: ignore[arg-type]
        else:
            states.append(observer.mark(args[0], args[1], via="test"))  # type: ignore[arg-type]
    muted, since, state = observer.state()
    assert (muted, since) == (False, T0 + 500.0) and state == states[-1]
    observer.finish(T0 + 999.0)
    with (tmp_path / "events.jsonl").open("rb") as stream:
        written = list(read_events(stream))
    assert written == expected
    kinds = {event["kind"] for event in written}
    relayed = [e for e in written if e["kind"] == "media" and e["flow"]["type"] == "tcp"]
    assert [e["phase"] for e in relayed][:1] == ["stream"] and relayed[-1]["phase"] == "relay"
    assert (
        relayed[-1]["sent"]["messages"] == 2 + 40
    )  # Allocate, ChannelBind, 40 RTP and relayed[0]["transport"] == "turn-tls"
    assert {"session_start", "sdp", "mute", "telemetry", "warning", "media"} <= kinds
    warnings = [line for lines, _ in logged for line in lines]
    assert any("MUTED but volume telemetry left" in line for line in warnings)
    assert any("not silent" in line or "audio" in line for line in warnings[1:])


def test_hand_over_gives_back_what_the_observer_learned(tmp_path: Path) -> None:
    observer = Observer(tmp_path / "events.jsonl", Monitor(), lambda w, n: None)
    observer.observe(msg((FIXTURES / "jitsi_presence_muted.xml").read_bytes()), T0 + 5.0)
    monitor = observer.hand_over()
    assert monitor.muted and monitor.timeline.changed_at == T0 + 5.0
    assert not observer.alive
    assert [e["kind"] for e in read_events((tmp_path / "events.jsonl").open("rb"))] == ["mute"]


def test_what_was_handed_over_is_written_when_the_proxy_is_killed(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    kill_proxy_after(
        f"""
        from pathlib import Path
        from decoders.session.monitor import FlowRef, Message, Monitor
        from decoders.addon.observer import Observer
        observer = Observer(Path({str(events)!r}), Monitor(), lambda w, n: None)
        ref = FlowRef(id="f", type="http", url="http://h/m")
        for n in range(200):
            body = b'{{"audioLevel": %d}}' % n
            message = Message(flow=ref, endpoint="http://h/m", sent=True, content=body, label="P")
            observer.observe(message, 1795989010.0 + n)
        """,
        "observer._process",
    )
    with events.open("rb") as stream:
        values = [e["fields"][0]["value"] for e in read_events(stream)]
    assert values == list(range(200))


def test_hostile_bodies_give_the_same_events_in_the_observer(tmp_path: Path) -> None:
    """The bodies of issue 13 (limits and numbers no float holds): the observer process writes
    what the monitor writes in the proxy, scan-limit warnings and raw texts included."""
    steps: list[tuple[str, tuple[object, ...]]] = [("mark", (T0 + 1.0, True))]
    for n, (name, (body, coding)) in enumerate(sorted(hostile_bodies().items())):
        message = Message(
            flow=FlowRef(id=f"h{n}", type="http", url=f"https://h/{name}", method="POST"),
            endpoint=f"https://h/{name}",
            sent=True,
            content=body,
            label=f"POST https://h/{name}",
            content_encoding=coding,
        )
        steps.append(("observe", (message, T0 + 2.0 + n)))
    settings = Settings(grace=0.0)
    expected = [json.loads(encode_event(event)) for event in inline(steps, settings)][1:]
    observer = Observer(tmp_path / "events.jsonl", Monitor(settings), lambda w, n: None)
    for kind, args in steps:
        if kind == "observe":
            observer.observe(*args)  # type: ignore[arg-type]
        else:
            observer.mark(args[0], args[1], via="test")  # type: ignore[arg-type]
    observer.finish(999.0)
    with (tmp_path / "events.jsonl").open("rb") as stream:
        written = list(read_events(stream))
    assert written == expected
    codes = [e.get("code") for e in written if e["kind"] == "warning"]
    assert codes.count("scan-limit") >= 10
    raws = {f.get("raw") for e in written if e["kind"] == "telemetry" for f in e["fields"]}
    assert {"NaN", "Infinity", "-Infinity", "1e999", "-1e999"} <= raws
