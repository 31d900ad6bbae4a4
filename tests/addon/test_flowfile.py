# mitmproxy's test helpers (tflow) and FlowWriter/FlowReader carry no annotations:
# mypy: disable-error-code="no-untyped-call"
"""Tests for decoders.addon.flowfile: flows.mitm written by a writer process.

The yardstick is mitmproxy's own ``FlowWriter`` (what ``save_stream_file`` runs): the file must be
the same bytes, for the real flows the lab recorded and for every kind of flow mitmproxy makes.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.corpus import CAPTURES, lab_session
from helpers.killed import kill_proxy_after
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import certs, flow
from mitmproxy.io import FlowReader, FlowWriter
from mitmproxy.test import tflow

from decoders.addon.flowfile import FlowFile, FrameEncoder, write_stream

ROOT = Path(__file__).resolve().parent.parent.parent


def mitmproxy_bytes(flows: list[flow.Flow]) -> bytes:
    out = io.BytesIO()
    writer = FlowWriter(out)
    for item in flows:
        writer.add(item)
    return out.getvalue()


def lab_flows() -> list[flow.Flow]:
    flows = []
    for folder in sorted(CAPTURES.glob("chromium-*")):
        session = lab_session(folder.name.removeprefix("chromium-"), needs="flows.mitm")
        with (session / "flows.mitm").open("rb") as stream:
            flows.extend(FlowReader(stream).stream())
    return flows


def kinds_of_flows() -> list[flow.Flow]:
    """One of each flow mitmproxy makes, with the parts that need care: certificates, errors,
    WebSocket messages, metadata, a body that is not UTF-8."""
    _, ca = certs.create_ca("mutecheck test", "mutecheck test CA", 2048)
    cert = certs.Cert(ca)
    tls = tflow.tflow(resp=True)
    tls.server_conn.certificate_list = [cert, cert]
    tls.client_conn.certificate_list = [cert]
    tls.request.content = bytes(range(256))
    tls.metadata["note"] = {"a": [1, 2.5, None, b"x"]}
    return [
        tls,
        tflow.tflow(resp=True),
        tflow.tflow(err=True),
        tflow.tflow(),
        tflow.twebsocketflow(),
        tflow.ttcpflow(),
        tflow.ttcpflow(err=True),
        tflow.tudpflow(),
        tflow.tdnsflow(resp=True),
        tflow.tdnsflow(err=True),
    ]


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "session" / "flows.mitm"


def test_real_lab_flows_are_written_byte_for_byte_as_mitmproxy_writes_them(out: Path) -> None:
    flows = lab_flows()
    assert len(flows) > 50
    saver = FlowFile(out)
    for item in flows:
        saver.add(item)
    assert not saver.in_process
    saver.close()
    assert saver.problem is None
    assert saver.saved == len(flows)
    assert out.read_bytes() == mitmproxy_bytes(flows)


def test_every_kind_of_flow_round_trips(out: Path) -> None:
    flows = kinds_of_flows()
    saver = FlowFile(out)
    for item in flows:
        saver.add(item)
    saver.close()
    assert saver.problem is None
    assert out.read_bytes() == mitmproxy_bytes(flows)
    with out.open("rb") as stream:
        back = list(FlowReader(stream).stream())
    assert [type(item) for item in back] == [type(item) for item in flows]
    assert back[0].server_conn.certificate_list == flows[0].server_conn.certificate_list


def test_a_flow_that_does_not_pickle_is_saved_from_its_state(out: Path) -> None:
    class Local(bytes):  # a class defined here cannot be pickled by name
        pass

    item = tflow.tflow(resp=True)
    item.metadata["local"] = Local(b"kept")
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(item)
    saver = FlowFile(out)
    saver.add(item)
    saver.add(tflow.tflow(resp=True))
    saver.close()
    assert saver.problem is None
    with out.open("rb") as stream:
        back = list(FlowReader(stream).stream())
    assert back[0].metadata["local"] == b"kept" and len(back) == 2


def test_a_snapshot_is_saved_not_later_changes(out: Path) -> None:
    item = tflow.tflow(resp=True)
    saver = FlowFile(out)
    saver.add(item)
    expected = mitmproxy_bytes([item])
    item.request.content = b"changed afterwards"
    saver.close()
    assert out.read_bytes() == expected


def test_appends_to_an_existing_file(out: Path) -> None:
    first, second = tflow.tflow(resp=True), tflow.twebsocketflow()
    for item in (first, second):
        saver = FlowFile(out)
        saver.add(item)
        saver.close()
    assert out.read_bytes() == mitmproxy_bytes([first, second])


def test_in_process_writing_is_the_same(out: Path) -> None:
    flows = kinds_of_flows()
    saver = FlowFile(out, writer_process=False)
    assert saver.in_process
    for item in flows:
        saver.add(item)
    saver.close()
    assert out.read_bytes() == mitmproxy_bytes(flows)


def test_a_writer_that_cannot_start_falls_back_to_writing_in_process(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")
    saver = FlowFile(out)
    flows = kinds_of_flows()
    for item in flows:
        saver.add(item)
    saver.close()
    assert saver.problem == "the flow writer process did not start"
    assert out.read_bytes() == mitmproxy_bytes(flows)


def test_a_writer_that_dies_loses_nothing_after_it_died(out: Path) -> None:
    flows = kinds_of_flows()
    saver = FlowFile(out)
    saver.add(flows[0])
    assert saver._process is not None
    saver._process.kill()
    saver._process.wait()
    for item in flows[1:]:
        saver.add(item)  # the first one after the death finds the pipe closed
    saver.close()
    assert saver.in_process
    assert saver.problem is not None and "went away" in saver.problem
    assert out.read_bytes().endswith(mitmproxy_bytes(flows[2:]))


def test_flows_handed_over_survive_the_proxy_being_killed(tmp_path: Path) -> None:
    """kill -9 of the proxy: the writer still writes every flow it was given, then exits."""
    out = tmp_path / "flows.mitm"
    kill_proxy_after(
        f"""
        from mitmproxy.test import tflow
        from decoders.addon.flowfile import FlowFile
        saver = FlowFile({str(out)!r})
        for number in range(300):
            item = tflow.tflow(resp=True)
            item.request.path = f"/{{number}}"
            saver.add(item)
        """,
        "saver._process",
    )
    with out.open("rb") as stream:
        paths = [item.request.path for item in FlowReader(stream).stream()]
    assert paths == [f"/{number}" for number in range(300)]


def test_a_ctrl_c_for_the_proxy_does_not_stop_the_writer(out: Path) -> None:
    saver = FlowFile(out)
    saver.add(tflow.tflow(resp=True))
    assert saver._process is not None
    assert os.getpgid(saver._process.pid) != os.getpgid(os.getpid())
    saver._process.send_signal(signal.SIGINT)
    last = tflow.twebsocketflow()
    saver.add(last)
    saver.close()
    assert saver.problem is None
    assert out.read_bytes().endswith(mitmproxy_bytes([last]))


# --- the writer's side: frames from the pipe ----------------------------------------------------


def frames(flows: list[flow.Flow]) -> bytes:
    encode = FrameEncoder()
    return b"".join(encode(item) for item in flows)


class Trickle(io.RawIOBase):
    """A pipe that hands out at most ``sizes[i]`` bytes per read, as a real pipe may."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.at, self.reads = data, sizes, 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = self.sizes[self.reads % len(self.sizes)] if self.sizes else len(buffer)
        self.reads += 1
        chunk = self.data[self.at : self.at + min(size, len(buffer))]
        buffer[: len(chunk)] = chunk
        self.at += len(chunk)
        return len(chunk)


FLOWS = kinds_of_flows()
STREAM = frames(FLOWS)
ENDS = [0]
for _item in FLOWS:
    ENDS.append(ENDS[-1] + len(frames([_item])))


@settings(max_examples=60, deadline=None)
@given(
    cut=st.integers(0, len(STREAM)),
    sizes=st.lists(st.integers(1, 5000), max_size=8),
)
def test_write_stream_writes_every_whole_frame_however_the_pipe_splits_it(
    cut: int, sizes: list[int]
) -> None:
    out = io.BytesIO()
    written, failed = write_stream(Trickle(STREAM[:cut], sizes), out)  # type: ignore[arg-type]
    whole = sum(1 for end in ENDS[1:] if end <= cut)
    assert (written, failed) == (whole, 0)
    assert out.getvalue() == mitmproxy_bytes(FLOWS[:whole])


def test_write_stream_counts_a_bad_frame_and_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    bad = b"\x80\x05not a pickle"
    data = frames(FLOWS[:1]) + len(bad).to_bytes(4, "little") + bad + frames(FLOWS[1:2])
    out = io.BytesIO()
    assert write_stream(io.BytesIO(data), out) == (2, 1)
    assert out.getvalue() == mitmproxy_bytes(FLOWS[:2])
    assert "a flow could not be saved" in capsys.readouterr().err


def test_the_writer_command_names_its_usage_and_a_folder_it_cannot_make(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "decoders.addon.flowfile"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    usage = subprocess.run(run, capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 2 and "usage:" in usage.stdout
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = subprocess.run(
        [*run, str(blocker / "sub" / "flows.mitm")],
        capture_output=True,
        text=True,
        env=env,
        input="",
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "cannot write" in bad.stderr
    assert "Traceback" not in bad.stderr
