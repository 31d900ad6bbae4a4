"""Tests for decoders.session.payload: content codings, what a body is, the walk, rewriting."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.session.payload import (
    MAX_DEPTH,
    MAX_LEAVES,
    TOO_DEEP,
    Cuts,
    Document,
    Embedded,
    Unreadable,
    decode_content,
    embedded,
    exact_value,
    format_path,
    loads,
    parse_document,
    recompress,
    rewrite,
    sniff_compression,
    walk,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "signaling"
WEBEX = (FIXTURES / "webex_metrics.json").read_bytes()


@pytest.mark.parametrize(
    ("suffix", "coding"),
    [("gz", "gzip"), ("deflate", "deflate"), ("br", "br"), ("zst", "zstd")],
)
def test_declared_codings_decode(suffix: str, coding: str) -> None:
    decoded = decode_content(
        (FIXTURES / f"webex_metrics.json.{suffix}").read_bytes(), coding, 1 << 20
    )
    assert decoded.data == WEBEX
    assert decoded.layers == (coding,)
    assert decoded.sniffed == ()
    assert not decoded.truncated and decoded.error is None


def test_raw_deflate_is_accepted_for_deflate() -> None:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = compressor.compress(WEBEX) + compressor.flush()
    assert decode_content(raw, "deflate", 1 << 20).data == WEBEX


@pytest.mark.parametrize(
    ("suffix", "coding"), [("gz", "gzip"), ("deflate", "deflate"), ("zst", "zstd")]
)
def test_compression_is_sniffed_without_a_header(suffix: str, coding: str) -> None:
    data = (FIXTURES / f"webex_metrics.json.{suffix}").read_bytes()
    assert sniff_compression(data) == coding
    decoded = decode_content(data, None, 1 << 20)
    assert decoded.data == WEBEX
    assert decoded.sniffed == (coding,)


def test_two_layers_and_identity() -> None:
    inner = gzip.compress(WEBEX, mtime=0)
    outer = brotli.compress(inner)
    decoded = decode_content(outer, "identity, gzip, br", 1 << 20)
    assert decoded.data == WEBEX
    assert decoded.layers == ("br", "gzip")


def test_declared_coding_that_fails_is_an_error_and_keeps_the_raw_bytes() -> None:
    decoded = decode_content(b"not gzip at all", "gzip", 1 << 20)
    assert decoded.error is not None and decoded.error.startswith("gzip")
    assert decoded.data == b"not gzip at all"
    unknown = decode_content(b"abc", "compress", 1 << 20)
    assert unknown.error is not None and "compress" in unknown.error


def test_sniffed_lookalike_is_left_alone() -> None:
    text = b"x\x01 this is not zlib"
    assert sniff_compression(text) == "deflate"
    decoded = decode_content(text, None, 1 << 20)
    assert decoded.data == text and decoded.error is None and decoded.layers == ()


def test_a_decompression_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(bytes(20 << 20), mtime=0)  # 20 MB of zeros in ~20 kB
    decoded = decode_content(bomb, "gzip", 64 * 1024)
    assert len(decoded.data) == 64 * 1024
    assert decoded.truncated


def test_plain_body_beyond_the_limit_is_cut() -> None:
    decoded = decode_content(b"a" * 100, None, 10)
    assert decoded.data == b"a" * 10 and decoded.truncated


def test_recompress_round_trips() -> None:
    for layers in (("gzip",), ("deflate",), ("br",), ("zstd",), ("br", "gzip")):
        squeezed = recompress(WEBEX, layers)
        assert decode_content(squeezed, ", ".join(reversed(layers)), 1 << 20).data == WEBEX
    with pytest.raises(ValueError, match="compress"):
        recompress(b"x", ("compress",))


@pytest.mark.parametrize(
    ("body", "content_type", "syntax"),
    [
        (b"", None, "empty"),
        (b'{"a": 1}', None, "json"),
        (b"[1, 2]", "text/plain", "json"),
        (b'42["event",{"a":1}]', None, "json"),
        (b')]}\'\n{"a":1}', None, "json"),
        (b'{"a":1}\x1e{"b":2}\x1e', None, "json"),
        (b"a=1&b=two", None, "form"),
        (b"anything", "application/x-www-form-urlencoded", "form"),
        (base64.b64encode(b'{"level": 3}'), None, "base64-json"),
        (b"<presence/>", None, "xml"),
        (b"hello world", None, "text"),
        (b"\xff\xfe\x00binary", None, "binary"),
        (b"42", "application/json", "json"),
    ],
)
def test_parse_document_syntax(body: bytes, content_type: str | None, syntax: str) -> None:
    assert parse_document(body, content_type).syntax == syntax


def test_broken_json_is_text_with_an_error_unless_cut() -> None:
    broken = parse_document(b'{"a": 1,', "application/json")
    assert broken.syntax == "text" and broken.error == "JSON body does not parse"
    assert parse_document(b"nope", "application/json").error == "JSON body does not parse"
    cut = parse_document(b'{"a": 1,', "application/json", truncated=True)
    assert cut.syntax == "text" and cut.error is None and cut.truncated


def test_cut_inside_a_utf8_character_is_still_text() -> None:
    data = '{"name": "Zoë"}'.encode()[:-3]
    assert parse_document(data, truncated=True).syntax == "text"
    assert parse_document(data).syntax == "binary"


def test_walk_visits_embedded_json_and_base64() -> None:
    inner = {"levels": {"gain": -3.5}}
    body = json.dumps(
        {
            "a": [1, {"b": "x"}],
            "escaped": json.dumps(inner),
            "b64": base64.b64encode(json.dumps(inner).encode()).decode(),
            "url": base64.urlsafe_b64encode(json.dumps([inner]).encode()).decode().rstrip("="),
        }
    ).encode()
    leaves = [(format_path(leaf.path), leaf.key, leaf.value) for leaf in walk(parse_document(body))]
    assert leaves == [
        ("a[0]", "a", 1),
        ("a[1].b", "b", "x"),
        ("escaped(json).levels.gain", "gain", -3.5),
        ("b64(base64).levels.gain", "gain", -3.5),
        ("url(base64)[0].levels.gain", "gain", -3.5),
    ]


def test_walk_is_bounded_and_says_what_it_left() -> None:
    deep = parse_document(b"[" * 5000 + b"]" * 5000)
    assert deep.too_deep and deep.syntax == "text" and deep.error is not None
    assert list(walk(deep)) == []
    wide = json.dumps({str(n): n for n in range(50)}).encode()
    cuts = Cuts()
    assert len(walk(parse_document(wide), max_leaves=10, cuts=cuts)) == 10
    assert cuts.leaves == 10 and cuts.deep == 0 and cuts
    nested: object = 1
    for _ in range(60):
        nested = {"k": nested}
    cuts = Cuts()
    assert walk(parse_document(json.dumps(nested).encode()), cuts=cuts) == []
    assert cuts.deep == 1 and cuts.leaves is None


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, 1000])
def test_the_depth_limit_is_exact(depth: int) -> None:
    """A value ``depth`` steps down is read up to MAX_DEPTH steps, and counted as cut after."""
    body = '{"a":' * depth + "1" + "}" * depth
    cuts = Cuts()
    leaves = walk(parse_document(body.encode()), cuts=cuts)
    assert (len(leaves), cuts.deep) == ((1, 0) if depth <= MAX_DEPTH else (0, 1))


@pytest.mark.parametrize("count", [MAX_LEAVES, MAX_LEAVES + 1])
def test_the_leaf_limit_is_exact(count: int) -> None:
    cuts = Cuts()
    leaves = walk(parse_document(json.dumps(list(range(count))).encode()), cuts=cuts)
    assert len(leaves) == MAX_LEAVES
    assert (cuts.leaves is not None) == (count > MAX_LEAVES)


def test_an_embedded_document_too_deep_is_a_cut() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert embedded(deep) == (Embedded.JSON, TOO_DEEP)
    cuts = Cuts()
    assert walk(parse_document(json.dumps({"a": deep, "b": 2}).encode()), cuts=cuts)[0].key == "b"
    assert cuts.deep == 1
    whole = parse_document(base64.b64encode(deep.encode()))
    assert whole.too_deep


def test_numbers_no_float_holds() -> None:
    """NaN and infinities, overflowing literals and integers longer than int() reads: the body
    still parses, the number is Unreadable with its text."""
    value = loads('{"a":NaN,"b":-Infinity,"c":' + "9" * 5000 + ',"d":1e999,"e":2}')
    assert isinstance(value["a"], Unreadable) and value["a"].raw == "NaN"
    assert value["b"].raw == "-Infinity"
    assert isinstance(value["c"], Unreadable) and value["c"].raw == "9" * 64 + "…"
    assert value["d"].raw == "1e999" and value["e"] == 2  # the exact pass ran: ints stay ints
    assert loads('{"d":1e999}')["d"] == float("inf")  # the common pass leaves overflow alone
    with pytest.raises(ValueError):
        loads("{nope")
    document = parse_document(b'{"x":{"y":"{\\"z\\":-1E400}"}}')
    path = walk(document)[0].path
    exact = exact_value(document, 0, path)
    assert isinstance(exact, Unreadable) and exact.raw == "-1E400"
    assert exact_value(document, 0, ("missing",)) is None
    assert exact_value(document, 3, path) is None


def test_a_form_of_any_size_parses() -> None:
    body = "&".join(f"k{n}=1" for n in range(30_000)).encode()
    document = parse_document(body)
    assert document.syntax == "form" and len(document.records[0]) == 30_000


def test_walk_order_parents_and_records() -> None:
    first, second = {"a": {"b": 1, "c": [2, {"d": 3}]}}, [4, {"e": 5}]
    document = Document(syntax="json", text="", records=[first, second])
    leaves = walk(document)
    assert [(leaf.record, leaf.path, leaf.key, leaf.value) for leaf in leaves] == [
        (0, ("a", "b"), "b", 1),
        (0, ("a", "c", 0), "c", 2),
        (0, ("a", "c", 1, "d"), "d", 3),
        (1, (0,), None, 4),
        (1, (1, "e"), "e", 5),
    ]
    assert [leaf.parent for leaf in leaves] == [
        first["a"],
        None,
        first["a"]["c"][1],
        None,
        {"e": 5},
    ]
    assert [leaf.value for leaf in walk(document, max_leaves=3)] == [1, 2, 3]  # stops everywhere
    assert [leaf.value for leaf in walk(document, max_depth=1)] == [4]


def test_embedded_rejects_what_is_not_a_document() -> None:
    assert embedded("{not json") is None
    assert embedded('"just a string"') is None
    assert embedded("eyJhbGciOiJIUzI1NiJ9.e30.sig") is None  # a JWT: dots are not base64
    assert embedded(base64.b64encode(b"hello world!").decode()) is None
    assert embedded("[1]") == (Embedded.JSON, [1])


def test_format_path_quotes_odd_keys() -> None:
    assert format_path(("a.b", 0, "c d", Embedded.JSON, "e")) == '["a.b"][0]["c d"](json).e'
    assert format_path(("x",), record=2) == "#2.x"


def test_rewrite_json_base64_embedded_and_framing() -> None:
    inner = base64.b64encode(json.dumps({"levels": {"gain": -3.5, "keep": 1}}).encode()).decode()
    body = (
        '42["m",' + json.dumps({"p": inner, "q": json.dumps({"vol": 2, "k": 3})}) + "]"
    ).encode()
    document = parse_document(body)
    targets = [(leaf.record, leaf.path) for leaf in walk(document) if leaf.key in ("gain", "vol")]
    out = rewrite(document, targets)
    assert out is not None and out.startswith(b'42["m",')
    again = parse_document(out)
    values = {format_path(leaf.path): leaf.value for leaf in walk(again)}
    assert values == {
        "[0]": "m",
        "[1].p(base64).levels.gain": None,
        "[1].p(base64).levels.keep": 1,
        "[1].q(json).vol": None,
        "[1].q(json).k": 3,
    }


def test_rewrite_form_and_base64_body() -> None:
    form = parse_document(b"level=3&x=1")
    assert rewrite(form, [(0, ("level",))]) == b"level=&x=1"
    body = base64.urlsafe_b64encode(b'{"gain":-1,"a":2}').rstrip(b"=")
    document = parse_document(body)
    assert document.syntax == "base64-json"
    out = rewrite(document, [(0, ("gain",))])
    assert out is not None
    assert json.loads(base64.urlsafe_b64decode(out + b"=" * (-len(out) % 4))) == {
        "gain": None,
        "a": 2,
    }


def test_rewrite_refuses_what_it_cannot_do_faithfully() -> None:
    assert rewrite(parse_document(b"<x/>"), [(0, ("a",))]) is None
    assert rewrite(parse_document(b'{"a":1}', truncated=True), [(0, ("a",))]) is None
    assert rewrite(parse_document(b'{"a":1}'), [(0, ("missing", "deeper"))]) is None
    assert rewrite(parse_document(b"a=1"), [(0, (0,))]) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([None, "application/json", "text/plain"]))
def test_parse_and_walk_never_raise(data: bytes, content_type: str | None) -> None:
    document = parse_document(data, content_type)
    for leaf in walk(document):
        format_path(leaf.path)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, "gzip", "deflate", "br", "zstd", "x"]))
def test_decode_content_never_raises(data: bytes, coding: str | None) -> None:
    decoded = decode_content(data, coding, 1024)
    assert len(decoded.data) <= 1024
