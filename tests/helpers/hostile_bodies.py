"""Bodies that hide a volume field from the telemetry detector's limits or from its number
reading (issue 13): nested 40, 1,000 and 100,000 levels deep, after 20,001 values, inside base64
of a body over the scan limit, and valued NaN, ±Infinity, 1e999 or a 5,000-digit integer, in
JSON, form and base64 bodies. Each must give a ``telemetry`` event or a ``scan-limit`` warning.
"""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse

SCAN_LIMIT = 256 * 1024
"""The addon's default mutecheck_scan_limit."""


def nested(depth: int, field: str = '"audioLevel":0.5') -> str:
    """``{"a":{"a":…{field}…}}`` with the field ``depth`` steps below the top."""
    return '{"a":' * depth + "{" + field + "}" + "}" * depth


def after_values(count: int, field: str = '"audioLevel":0.5') -> str:
    """The field after ``count`` other values."""
    return '{"samples":[' + ",".join(["0"] * count) + "]," + field + "}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def padded(before: str, after: str) -> str:
    """A JSON body over the scan limit: ``before``, padding, ``after``."""
    return (
        '{"head":"' + before + '","pad":"' + "x" * (SCAN_LIMIT + 1000) + '","tail":"' + after + '"}'
    )


LITERALS = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000)
"""Numbers no float holds, as JSON (or JavaScript's String()) writes them."""


def hostile_bodies() -> dict[str, tuple[bytes, str | None]]:
    """name -> (body, Content-Encoding)."""
    inner = '{"levels":{"audioMeanGain":0.25}}'
    bodies: dict[str, tuple[bytes, str | None]] = {
        "depth-40": (nested(40).encode(), None),
        "depth-1000": (nested(1000).encode(), None),
        "depth-100000": (nested(100_000).encode(), None),
        "depth-60-escaped": (json.dumps({"data": nested(60)}).encode(), None),
        "depth-60-base64-field": (json.dumps({"p": b64(nested(60))}).encode(), None),
        "leaves-20001": (after_values(20_001).encode(), None),
        "form-leaves-20001": (
            ("&".join(f"p{n}=0" for n in range(20_001)) + "&audioLevel=0.5").encode(),
            None,
        ),
        "base64-field-after-the-limit": (padded("", b64(inner)).encode(), None),
        "base64-field-before-the-limit": (padded(b64(inner), "").encode(), None),
        "base64-body-over-the-limit": (b64(padded("", "") + inner).encode(), None),
        "gzip-over-the-limit": (gzip.compress(padded("", "").encode() + inner.encode()), "gzip"),
    }
    for literal in LITERALS:
        name = literal if len(literal) < 20 else f"{len(literal)}-digits"
        field = f'"audioLevel":{literal}'
        bodies[f"json-{name}"] = (("{" + field + "}").encode(), None)
        bodies[f"json-string-{name}"] = (('{"audioLevel":"' + literal + '"}').encode(), None)
        bodies[f"form-{name}"] = (f"audioLevel={urllib.parse.quote(literal)}&x=1".encode(), None)
        bodies[f"base64-body-{name}"] = (b64("{" + field + "}").encode(), None)
        bodies[f"base64-field-{name}"] = (
            json.dumps({"payload": b64("{" + field + "}")}).encode(),
            None,
        )
    return bodies
