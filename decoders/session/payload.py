"""What a message body holds as data: content decoding, structure, and a walk over its values.

Signaling (SDP, mute state) and telemetry both look at the same bodies, so each body is decoded
once here and walked by both:

1. :func:`decode_content` removes ``Content-Encoding`` layers (gzip, deflate, br, zstd; RFC 9110
   §8.4) and compression recognised by its magic bytes (gzip RFC 1952 §2.3.1, zlib RFC 1950 §2.2,
   zstd RFC 8878 §3.1.1), never producing more than ``limit`` bytes: a body beyond the scan limit
   (or a decompression bomb) is cut there and marked ``truncated``.
2. :func:`parse_document` says what the bytes are: JSON (also Socket.IO's ``42[...]`` packets,
   SignalR's ``\\x1e``-separated records and the ``)]}'`` XSSI prefix), an HTML form
   (``application/x-www-form-urlencoded``), a whole body that is base64 of JSON, XML, other text,
   or binary.
3. :func:`walk` visits every scalar value with its path, also inside strings that hold JSON
   (``"{\\"a\\":1}"``, escaped once or more) or base64 of JSON: ``payload(base64).levels.gain``.
4. :func:`rewrite` sets chosen values to ``null`` and serialises the body again (redaction).

Everything is bounded: nesting depth, number of values visited, bytes decoded; what a bound cuts
off is said (``Decoded.truncated``, ``Document.too_deep``, :class:`Cuts`), never dropped silently.
Numbers JSON can write but a float cannot hold (``NaN``, ``Infinity``, ``1e999``, an integer of
5,000 digits) are read as :class:`Unreadable`, which keeps their text. Nothing here does I/O,
reads a clock or logs.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
import math
import re
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, urlencode

import brotli  # type: ignore[import-untyped]

try:  # Python 3.14 has it in the standard library; mitmproxy depends on the backport before that
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        zstd = None

_DECODE_ERRORS: tuple[type[Exception], ...] = (
    zlib.error,
    brotli.error,
    EOFError,
    ValueError,
    RuntimeError,
    *((zstd.ZstdError,) if zstd is not None else ()),
)

MAX_DEPTH = 40
MAX_LEAVES = 20_000
MIN_BASE64_LENGTH = 12

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

Syntax = Literal["empty", "json", "form", "base64-json", "xml", "text", "binary"]
Scalar = str | int | float | bool | None

RAW_TEXT_LENGTH = 64
"""How much of an unreadable number's text is kept."""


class Unreadable(float):
    """A number written in the body that no float holds: ``NaN``, ``Infinity``, ``-Infinity``,
    ``1e999``, an integer beyond the float range or of more digits than ``int()`` reads.

    A float (NaN) to everything that does arithmetic on it, so the other recognisers see a
    number that compares unequal to everything; ``raw`` keeps its text (the first
    :data:`RAW_TEXT_LENGTH` characters, ``…`` when longer).
    """

    __slots__ = ("raw",)
    raw: str

    def __new__(cls, raw: str) -> Unreadable:
        self = super().__new__(cls, "nan")
        self.raw = raw if len(raw) <= RAW_TEXT_LENGTH else raw[:RAW_TEXT_LENGTH] + "…"
        return self

    def __reduce__(self) -> tuple[type[Unreadable], tuple[str]]:
        return Unreadable, (self.raw,)

    def __repr__(self) -> str:
        return f"Unreadable({self.raw!r})"


def _exact_int(text: str) -> int | Unreadable:
    if len(text) > 310:  # beyond 1.8e308 (or beyond what int() reads at all)
        try:
            value = int(text)
        except ValueError:
            return Unreadable(text)
        if not -sys.float_info.max <= value <= sys.float_info.max:
            return Unreadable(text)
        return value
    return int(text)


def _exact_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else Unreadable(text)


_DECODER = json.JSONDecoder(parse_constant=Unreadable)
"""``NaN``/``Infinity``/``-Infinity`` become :class:`Unreadable` (the hook runs only for those
literals: every other value takes the C scanner's fast path)."""
_EXACT_DECODER = json.JSONDecoder(
    parse_constant=Unreadable, parse_int=_exact_int, parse_float=_exact_float
)
"""Also ``1e999`` and huge integers; a Python call per number, so only when needed."""


def loads(text: str) -> Any:
    """JSON (RFC 8259, plus the NaN/Infinity literals JavaScript writes) -> Python values.

    Raises ValueError when it is not JSON, RecursionError when it nests deeper than Python's
    stack. An integer longer than ``int()`` reads (4,300 digits) does not fail the document: it
    is read again with every number checked, the integer an :class:`Unreadable`.
    """
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        return _EXACT_DECODER.decode(text)


def loads_exact(text: str) -> Any:
    """:func:`loads` where every number that overflows a float (``1e999``) is Unreadable too."""
    return _EXACT_DECODER.decode(text)


class Embedded(enum.Enum):
    """A path step into a string that holds a document of its own."""

    JSON = "json"
    BASE64 = "base64"


Segment = str | int | Embedded
"""One path step: an object key, a list index, or a step into an embedded document."""


class Decoded(NamedTuple):
    """Bytes with their content coding removed.

    ``layers`` names each coding removed, outermost first, the ``sniffed`` ones (found by their
    magic bytes, not declared) last; ``truncated`` says the limit cut the data; ``error`` says a
    declared coding did not decode (``data`` is then the raw bytes). A named tuple: one is made
    for every message the proxy sees, and tuples are the cheapest immutable records.
    """

    data: bytes
    layers: tuple[str, ...]
    truncated: bool
    error: str | None = None
    sniffed: tuple[str, ...] = ()


@dataclass(slots=True)
class Document:
    """A body as data. ``records`` are the JSON values (one per record), the form as one dict,
    or the JSON inside a base64 body; ``text`` is the decoded text ("" for binary).

    ``prefix``/``separator``/``suffix`` let :func:`rewrite` put JSON records back in their frame
    (``42`` for Socket.IO, ``\\x1e`` for SignalR). ``error`` says the body claimed to be JSON
    (by content type or first character) and did not parse; ``too_deep`` that it did not parse
    because it nests deeper than the parser goes (Python's stack).
    """

    syntax: Syntax
    text: str
    records: list[Any] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None
    prefix: str = ""
    separator: str = ""
    suffix: str = ""
    urlsafe: bool = False
    padded: bool = True
    too_deep: bool = False


class Leaf(NamedTuple):
    """One scalar value of a document: where it is and the object that holds it (a named tuple:
    a body can have thousands)."""

    record: int
    path: tuple[Segment, ...]
    key: str | None
    value: Scalar
    parent: dict[str, Any] | None


# --- content codings ---------------------------------------------------------------------------


def decode_content(raw: bytes, content_encoding: str | None, limit: int) -> Decoded:
    """Remove the codings of RFC 9110 §8.4 (listed in the order applied), then sniffed ones.

    At most ``limit`` bytes come out. A declared coding that fails gives ``error`` and the raw
    bytes; a sniffed one that fails is left alone (the magic bytes were a coincidence).
    """
    if not content_encoding and sniff_compression(raw) is None:  # the common case, kept cheap
        if len(raw) > limit:
            return Decoded(raw[:limit], (), True)
        return Decoded(raw, (), False)
    codings = [
        coding.strip().lower()
        for coding in (content_encoding or "").split(",")
        if coding.strip().lower() not in ("", "identity")
    ]
    data = raw
    layers: list[str] = []
    truncated = False
    for coding in reversed(codings):
        try:
            data, cut = _decompress(coding, data, limit)
        except _DECODE_ERRORS as error:
            return Decoded(raw[:limit], tuple(layers), len(raw) > limit, f"{coding}: {error}")
        layers.append(coding)
        truncated = truncated or cut
    sniffed: list[str] = []
    for _ in range(2):  # a gzip body inside a gzip coding happens; more than twice does not
        sniffed_coding = sniff_compression(data)
        if sniffed_coding is None:
            break
        try:
            data, cut = _decompress(sniffed_coding, data, limit)
        except _DECODE_ERRORS:
            break
        sniffed.append(sniffed_coding)
        truncated = truncated or cut
    if len(data) > limit:
        data = data[:limit]
        truncated = True
    return Decoded(data, (*layers, *sniffed), truncated, sniffed=tuple(sniffed))


def recompress(data: bytes, layers: Iterable[str]) -> bytes:
    """Apply ``layers`` (as :attr:`Decoded.layers` names them, outermost first) again."""
    for coding in reversed(tuple(layers)):
        if coding in ("gzip", "x-gzip"):
            compressor = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
            data = compressor.compress(data) + compressor.flush()
        elif coding == "deflate":
            data = zlib.compress(data)
        elif coding == "br":
            data = brotli.compress(data)
        elif coding == "zstd" and zstd is not None:
            data = zstd.compress(data)
        else:
            raise ValueError(f"unknown content coding {coding!r}")
    return data


def sniff_compression(data: bytes) -> str | None:
    """gzip (RFC 1952 §2.3.1 ID1 ID2), zlib (RFC 1950 §2.2 CMF/FLG check) or zstd (RFC 8878)."""
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    if data[:4] == ZSTD_MAGIC and zstd is not None:
        return "zstd"
    if (
        len(data) >= 2
        and data[0] & 0x0F == 8
        and data[0] >> 4 <= 7
        and (data[0] << 8 | data[1]) % 31 == 0
        and not data[1] & 0x20
    ):
        return "deflate"
    return None


def _decompress(coding: str, data: bytes, limit: int) -> tuple[bytes, bool]:
    """One coding, producing at most ``limit`` bytes; returns (bytes, whether it was cut)."""
    if coding in ("gzip", "x-gzip"):
        out = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32).decompress(data, limit + 1)
    elif coding == "deflate":  # RFC 9110 says zlib (RFC 1950); some servers send raw deflate
        try:
            out = zlib.decompressobj(wbits=zlib.MAX_WBITS).decompress(data, limit + 1)
        except zlib.error:
            out = zlib.decompressobj(wbits=-zlib.MAX_WBITS).decompress(data, limit + 1)
    elif coding == "br":
        out = brotli.Decompressor().process(data, output_buffer_limit=limit + 1)
    elif coding == "zstd" and zstd is not None:
        out = zstd.ZstdDecompressor().decompress(data, max_length=limit + 1)
    else:
        raise ValueError(f"unknown content coding {coding!r}")
    if len(out) > limit:
        return bytes(out[:limit]), True
    return bytes(out), False


# --- what the bytes are ------------------------------------------------------------------------

_FORM = re.compile(r"[\w.%+\-\[\]*~!]+=[^&\s]*(?:&[\w.%+\-\[\]*~!]+=[^&\s]*)*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_SOCKET_IO = re.compile(r"\d{1,4}(?=[\[{])")
_XSSI = ")]}'"
_RECORD_SEPARATOR = "\x1e"


def parse_document(
    data: bytes, content_type: str | None = None, *, truncated: bool = False
) -> Document:
    """Say what ``data`` is and parse it; never raises (a broken body is ``text`` + ``error``)."""
    if not data:
        return Document("empty", "", truncated=truncated)
    text = _utf8(data, truncated)
    if text is None:
        return Document("binary", "", truncated=truncated)
    media_type = (content_type or "").split(";")[0].strip().lower()
    stripped = text.strip()
    first = stripped[:1]
    claims_json = first in ("{", "[") or media_type.endswith("json")
    if claims_json or stripped.startswith(_XSSI) or _SOCKET_IO.match(stripped):
        document = _json_document(text, truncated)
        if document is not None:
            return document
        if claims_json:
            error = None if truncated else "JSON body does not parse"
            return Document("text", text, truncated=truncated, error=error)
    if len(stripped) >= MIN_BASE64_LENGTH and first in ("e", "W"):
        decoded = _base64_json(stripped)
        if decoded is TOO_DEEP:
            error = "base64 JSON body nests deeper than it can be read"
            return Document("text", text, truncated=truncated, error=error, too_deep=True)
        if decoded is not None:
            return Document(
                "base64-json",
                text,
                [decoded],
                truncated=truncated,
                urlsafe="-" in stripped or "_" in stripped,
                padded=stripped.endswith("="),
            )
    if media_type == "application/x-www-form-urlencoded" or (
        first not in ("<", "") and len(stripped) < 1_000_000 and _FORM.fullmatch(stripped)
    ):
        return Document("form", text, [parse_form(stripped)], truncated=truncated)
    if first == "<":
        return Document("xml", text, truncated=truncated)
    return Document("text", text, truncated=truncated)


def parse_form(text: str) -> dict[str, str]:
    """``a=1&b=x`` (WHATWG URL, application/x-www-form-urlencoded) -> dict; the last value wins.

    Any number of fields (the scan limit bounds the text): a form of more than
    :data:`MAX_LEAVES` fields is cut by :func:`walk`, which says so, rather than failing here."""
    return dict(parse_qsl(text, keep_blank_values=True))


def _utf8(data: bytes, truncated: bool) -> str | None:
    """UTF-8 text, or None for binary; a cut body may end inside a character."""
    for cut in range(4 if truncated else 1):
        try:
            return (data[: len(data) - cut] if cut else data).decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _json_document(text: str, truncated: bool, exact: bool = False) -> Document | None:
    """JSON in the frames apps put it in: plain, XSSI-prefixed, Socket.IO, SignalR."""
    body = text.strip()
    prefix = ""
    if body.startswith(_XSSI):
        prefix = text[: text.index(_XSSI) + len(_XSSI)]
        body = text[len(prefix) :].strip()
    socket_io = _SOCKET_IO.match(body)
    if socket_io:
        prefix += socket_io.group(0)
        body = body[socket_io.end() :]
    separator = ""
    suffix = ""
    pieces = [body]
    if _RECORD_SEPARATOR in body:
        separator = _RECORD_SEPARATOR
        if body.endswith(_RECORD_SEPARATOR):
            suffix = _RECORD_SEPARATOR
        pieces = [piece for piece in body.split(_RECORD_SEPARATOR) if piece.strip()]
    records: list[Any] = []
    for piece in pieces:
        try:
            records.append((loads_exact if exact else loads)(piece))
        except ValueError:
            return None
        except RecursionError:
            error = "JSON body nests deeper than it can be read"
            return Document("text", text, truncated=truncated, error=error, too_deep=True)
    if not records:
        return None
    return Document(
        "json",
        text,
        records,
        truncated=truncated,
        prefix=prefix,
        separator=separator,
        suffix=suffix,
    )


def _base64_json(text: str, exact: bool = False) -> Any:
    """The JSON object or array a base64 (RFC 4648 §4 or §5) string encodes, else None
    (:data:`TOO_DEEP` when it nests deeper than it can be read)."""
    if not _BASE64.fullmatch(text):
        return None
    alphabet = b"-_" if "-" in text or "_" in text else None
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return None
    raw = raw.strip()
    if raw[:1] not in (b"{", b"["):
        return None
    try:
        value = (loads_exact if exact else loads)(raw.decode("utf-8"))
    except ValueError:
        return None
    except RecursionError:
        return TOO_DEEP
    return value if isinstance(value, dict | list) else None


TOO_DEEP: Any = Unreadable("(nested too deep to read)")
"""What :func:`embedded` holds for a string whose document nests deeper than it can be read."""


def embedded(value: str, exact: bool = False) -> tuple[Embedded, Any] | None:
    """The object or array a string holds as JSON text or as base64 of JSON, else None;
    the object is :data:`TOO_DEEP` when it nests deeper than it can be read. ``exact``: read
    numbers as :func:`loads_exact` does."""
    head = value[:1]
    if head in ("{", "[") or (head in (" ", "\n") and value.lstrip()[:1] in ("{", "[")):
        try:
            inner = (loads_exact if exact else loads)(value)
        except ValueError:
            return None
        except RecursionError:
            return Embedded.JSON, TOO_DEEP
        return (Embedded.JSON, inner) if isinstance(inner, dict | list) else None
    if head in ("e", "W") and len(value) >= MIN_BASE64_LENGTH:
        inner = _base64_json(value, exact)
        if inner is not None:
            return Embedded.BASE64, inner
    return None


# --- the walk ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Cuts:
    """What a :func:`walk` left unread because of its limits: ``deep`` values (or whole
    subtrees) sat deeper than ``max_depth`` steps or nested deeper than the parser reads; after
    ``leaves`` values (when not None) the walk stopped and the rest was not read."""

    deep: int = 0
    leaves: int | None = None

    def __bool__(self) -> bool:
        return bool(self.deep) or self.leaves is not None


def walk(
    document: Document,
    *,
    max_depth: int = MAX_DEPTH,
    max_leaves: int = MAX_LEAVES,
    cuts: Cuts | None = None,
) -> list[Leaf]:
    """Every scalar of every record, depth first, in document order, embedded documents too.

    A string that holds a document is not itself a leaf; the values inside it are. Stops after
    ``max_leaves`` values and does not go deeper than ``max_depth`` steps (which also bounds the
    recursion: a recursive visit costs half of what an explicit stack did, and this runs for
    every message worth parsing). ``cuts``, when given, is told what the limits left unread.
    """
    leaves: list[Leaf] = []
    cut = Cuts() if cuts is None else cuts

    def visit(
        node: Any, record: int, path: tuple[Segment, ...], key: str | None, parent: Any, depth: int
    ) -> bool:
        """Adds the leaves under ``node``; False once ``max_leaves`` are there and more come."""
        if depth < 0:
            cut.deep += 1
            return True
        if isinstance(node, dict):
            for child_key, child in node.items():
                if not visit(child, record, (*path, child_key), child_key, node, depth - 1):
                    return False
        elif isinstance(node, list):
            for position, child in enumerate(node):
                if not visit(child, record, (*path, position), key, None, depth - 1):
                    return False
        elif isinstance(node, str) and (inner := embedded(node)) is not None:
            step, value = inner
            if value is TOO_DEEP:
                cut.deep += 1
                return True
            return visit(value, record, (*path, step), key, None, depth - 1)
        elif len(leaves) < max_leaves:
            leaves.append(Leaf(record, path, key, node, parent))
        else:
            cut.leaves = max_leaves
            return False
        return True

    for index, record in enumerate(document.records):
        if not visit(record, index, (), None, None, max_depth):
            break
    return leaves


def exact_value(document: Document, record: int, path: tuple[Segment, ...]) -> Any:
    """The value at ``path`` read again with every number checked (:func:`loads_exact`): what
    a float that came out infinite was written as (``1e999``). None when it is not there.

    Parses the record again: for the rare value that needs it, never for every message.
    """
    try:
        if document.syntax == "json":
            again = _json_document(document.text, document.truncated, exact=True)
            node: Any = None if again is None else again.records[record]
        elif document.syntax == "base64-json":
            node = _base64_json(document.text.strip(), exact=True)
        else:
            node = document.records[record]
        for segment in path:
            if isinstance(segment, Embedded):
                inner = embedded(node, exact=True) if isinstance(node, str) else None
                node = None if inner is None else inner[1]
            else:
                node = node[segment]
    except (LookupError, TypeError, ValueError, RecursionError):
        return None
    return node


def format_path(path: Iterable[Segment], *, record: int | None = None) -> str:
    """``("a", 0, Embedded.BASE64, "b")`` -> ``a[0](base64).b``; odd keys as ``["x.y"]``.

    ``record`` (for bodies with several JSON records) is written first as ``#2``.
    """
    if isinstance(path, tuple):
        return _format_path(path, record)  # the same few paths come back in every message
    return _format_path.__wrapped__(tuple(path), record)


@functools.lru_cache(maxsize=4096)
def _format_path(path: tuple[Segment, ...], record: int | None) -> str:
    parts: list[str] = [] if record is None else [f"#{record}"]
    for segment in path:
        if isinstance(segment, Embedded):
            parts.append(f"({segment.value})")
        elif isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif segment and _PLAIN_KEY.fullmatch(segment):
            parts.append(f".{segment}" if parts else segment)
        else:
            parts.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
    return "".join(parts)


_PLAIN_KEY = re.compile(r"[^.\[\]()\"#\s]+")


# --- rewriting ---------------------------------------------------------------------------------


def rewrite(document: Document, targets: Iterable[tuple[int, tuple[Segment, ...]]]) -> bytes | None:
    """The body with each target value set to ``null`` ("" in a form), serialised again.

    JSON comes back compact (no spaces); embedded JSON and base64 keep their kind. Returns None
    when the body cannot be rewritten faithfully (text, XML, binary, a truncated body, a target
    that is not there): the caller should then drop the message instead.
    """
    if document.truncated:
        return None
    try:
        if document.syntax == "json":
            records = list(document.records)
            for record, path in targets:
                records[record] = _replace(records[record], path)
            body = document.separator.join(_dump(record) for record in records)
            return (document.prefix + body + document.suffix).encode("utf-8")
        if document.syntax == "base64-json":
            root = document.records[0]
            for _, path in targets:
                root = _replace(root, path)
            return _encode_base64(_dump(root), document.urlsafe, document.padded).encode("ascii")
        if document.syntax == "form":
            by_key: dict[str, list[tuple[Segment, ...]]] = {}
            for _, path in targets:
                if not path or not isinstance(path[0], str):
                    return None
                by_key.setdefault(path[0], []).append(path[1:])
            pairs = []
            for name, value in parse_qsl(document.text.strip(), keep_blank_values=True):
                new_value: Any = value
                for rest in by_key.get(name, ()):
                    new_value = "" if not rest else _replace(new_value, rest)
                pairs.append((name, new_value))
            return urlencode(pairs).encode("ascii")
    except (KeyError, IndexError, TypeError, ValueError, RecursionError):
        return None
    return None


def _replace(node: Any, path: tuple[Segment, ...]) -> Any:
    """``node`` with the value at ``path`` set to None; embedded documents re-encoded."""
    if not path:
        return None
    head, rest = path[0], path[1:]
    if head is Embedded.JSON:
        return _dump(_replace(loads(node), rest))
    if head is Embedded.BASE64:
        urlsafe = "-" in node or "_" in node
        inner = _base64_json(node)
        if inner is None:
            raise ValueError("embedded base64 JSON changed")
        return _encode_base64(_dump(_replace(inner, rest)), urlsafe, node.endswith("="))
    if isinstance(node, dict) and isinstance(head, str):
        node[head] = _replace(node[head], rest)
        return node
    if isinstance(node, list) and isinstance(head, int):
        node[head] = _replace(node[head], rest)
        return node
    raise KeyError(head)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encode_base64(text: str, urlsafe: bool, padded: bool) -> str:
    raw = text.encode("utf-8")
    encoded = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode("ascii")
    return encoded if padded else encoded.rstrip("=")
