"""``flows.mitm`` without making the proxy wait: mitmproxy's own flow writer, in a writer process.

mitmproxy's ``save_stream_file`` serialises every flow on the proxy's event loop, inside the
``response`` hook: ``Flow.get_state()`` plus the pure-Python tnetstring encoder cost about 200 us
for a small HTTP flow (measured with ``bench/bench_addon.py``'s traffic), an eighth of what
mitmdump spends proxying the request, paid before the response goes back to the browser.
:class:`FlowFile` writes the same file, byte for byte (tests/addon/test_flowfile.py holds it to
``mitmproxy.io.FlowWriter``), but the proxy only pickles the flow (C, about 30 us) and hands it
through a pipe to a writer process (``python -m decoders.addon.flowfile OUT``) that rebuilds
it and runs mitmproxy's ``FlowWriter.add`` on it. That is the one thing done differently from
mitmproxy; which flows are saved and when (the ``Save`` addon's hooks, ``save_stream_filter``) is
the addon's business, not this module's.

Nothing is lost when the proxy dies: the writer writes every flow it receives as it receives it
and exits at the end of the pipe. When the writer process cannot be started (a frozen mitmproxy
binary, a system without POSIX pipes) or dies, flows are written in-process as mitmproxy would,
and :attr:`FlowFile.problem` says why. When the writer falls behind, the pipe (up to 1 MiB) fills
and the proxy waits for it: memory stays flat. Certificates (which do not pickle) travel as PEM,
cached per certificate object.
"""

from __future__ import annotations

import contextlib
import copyreg
import io
import os
import pickle
import select
import signal
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any, BinaryIO

from mitmproxy import certs, flow
from mitmproxy.io import FlowWriter, tnetstring

from decoders.addon import helper

READY = b"ready\n"
READY_TIMEOUT = 20.0
CERT_CACHE = 256


class FlowFile:
    """Append flows to ``path`` in mitmproxy's format; serialisation happens in a writer process.

    ``writer_process=False`` writes in-process (mitmproxy's way, for comparison and fallback).
    """

    def __init__(self, path: Path, *, writer_process: bool = True) -> None:
        self.path = path
        self.saved = 0
        self.problem: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._starting: IO[bytes] | None = None
        self._local: tuple[IO[bytes], FlowWriter] | None = None
        self._frame = FrameEncoder()
        if writer_process:
            self._start()
        else:
            self._open_local()

    @property
    def in_process(self) -> bool:
        """True when flows are serialised by the proxy itself (no writer process)."""
        return self._pipe is None

    def add(self, item: flow.Flow) -> None:
        """Save one flow as it is now (a snapshot: later changes to the flow are not saved)."""
        if self._starting is not None:
            self._confirm(self._starting)
        if self._pipe is not None:
            data = self._frame(item)
            try:
                self._pipe.write(data)
                self._pipe.flush()
            except (OSError, ValueError) as error:
                self._writer_lost(f"the flow writer process went away ({error})")
            else:
                self.saved += 1
                return
        self._local_writer().add(item)
        self.saved += 1

    def close(self, timeout: float = 60.0) -> None:
        """Let the writer write everything it was given, then close the file."""
        if self._starting is not None:
            self._starting.close()
            self._starting = None
        if self._pipe is not None:
            pipe, self._pipe = self._pipe, None
            try:
                pipe.close()
            except OSError as error:
                self.problem = f"the flow writer process went away ({error})"
        if self._process is not None:
            process, self._process = self._process, None
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.problem = f"the flow writer did not finish within {timeout:.0f} s"
            else:
                if code != 0:
                    self.problem = f"the flow writer process ended with status {code}"
        if self._local is not None:
            self._local[0].close()
            self._local = None

    # --- the proxy's side -------------------------------------------------------------------

    def _start(self) -> None:
        if getattr(sys, "frozen", False) or os.name != "posix":
            self.problem = (
                "a frozen mitmproxy cannot start the flow writer process"
                if getattr(sys, "frozen", False)
                else "the flow writer process needs a POSIX system"
            )
            self._open_local()
            return
        try:
            process = helper.start("decoders.addon.flowfile", str(self.path))
        except OSError as error:
            self.problem = f"the flow writer process cannot start ({error})"
            self._open_local()
            return
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._pipe = process.stdin
        self._starting = process.stdout

    def _confirm(self, starting: IO[bytes]) -> None:
        """Wait (once, at the first flow) until the writer has its file open: a writer that
        could not start is found before any flow is handed to it. Starting takes ~0.2 s (it
        imports mitmproxy), so the proxy's start-up does not wait for it."""
        self._starting = None
        ready, _, _ = select.select([starting], [], [], READY_TIMEOUT)
        line = starting.readline() if ready else b""
        starting.close()
        if line != READY:
            self._writer_lost(
                "the flow writer process did not start"
                if ready
                else f"the flow writer process was not ready within {READY_TIMEOUT:.0f} s"
            )

    def _writer_lost(self, why: str) -> None:
        self.problem = why
        self._pipe = None
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def _open_local(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        out = self.path.open("ab")
        writer = FlowWriter(out)  # type: ignore[no-untyped-call]
        self._local = (out, writer)

    def _local_writer(self) -> FlowWriter:
        if self._local is None:
            self._open_local()
        assert self._local is not None
        return self._local[1]


class FrameEncoder:
    """A flow as one frame for the writer: its pickle, after the pickle's length (4 bytes, LE)."""

    def __init__(self) -> None:
        self._pem: OrderedDict[int, tuple[certs.Cert, bytes]] = OrderedDict()
        self._table = copyreg.dispatch_table.copy()
        self._table[certs.Cert] = self._reduce_cert

    def __call__(self, item: flow.Flow) -> bytes:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = self._table
        try:
            pickler.dump(item)
        except Exception:  # an addon put something in flow.metadata that does not pickle:
            serialised = tnetstring.dumps(item.get_state())  # this one here, as mitmproxy would
            return helper.frame(pickle.dumps(serialised, pickle.HIGHEST_PROTOCOL))
        return helper.frame(buffer.getvalue())

    def _reduce_cert(self, cert: certs.Cert) -> tuple[Any, tuple[bytes]]:
        """A certificate travels as its PEM (what its get_state is); each is encoded once."""
        cached = self._pem.get(id(cert))
        if cached is None or cached[0] is not cert:
            cached = (cert, cert.to_pem())
            self._pem[id(cert)] = cached
            if len(self._pem) > CERT_CACHE:
                self._pem.popitem(last=False)
        return certs.Cert.from_pem, (cached[1],)


# --- the writer process ------------------------------------------------------------------------


def write_stream(source: BinaryIO, out: BinaryIO) -> tuple[int, int]:
    """Write the pickled flows of ``source`` to ``out`` until it ends; (written, failed)."""
    writer = FlowWriter(out)  # type: ignore[no-untyped-call]
    written = failed = 0
    while True:
        data = helper.read_frame(source)
        if data is None:  # the end, or the proxy died in the middle of handing a flow over
            return written, failed
        try:
            item = pickle.loads(data)
            if isinstance(item, bytes):
                out.write(item)  # a flow that did not pickle, serialised by the proxy
            else:
                writer.add(item)
        except Exception as error:  # one bad flow must not cost the others
            failed += 1
            if failed <= 10:
                print(
                    f"mutecheck: a flow could not be saved to flows.mitm: {error}", file=sys.stderr
                )
        else:
            written += 1
        out.flush()


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m decoders.addon.flowfile OUT.mitm  (flows come on stdin)")
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ends with its input, not with a Ctrl-C
    try:
        path = Path(arguments[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as out:
            with contextlib.suppress(BrokenPipeError):  # the proxy closed before any flow
                os.write(sys.stdout.fileno(), READY)
            write_stream(sys.stdin.buffer, out)
    except OSError as error:
        print(f"mutecheck: cannot write {arguments[0]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
