"""JSON Lines on the wire: a parser that leaves the body unread (imports stream it) and a
renderer so `Accept: application/x-ndjson` reaches the streaming export views."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

JSONL_MEDIA_TYPE = "application/x-ndjson"
JSONL_MEDIA_TYPES = (JSONL_MEDIA_TYPE, "application/jsonl", "application/x-jsonlines")


class JSONLinesParser(BaseParser):
    """Declares JSONL bodies; views stream `request._request` themselves, line by line."""

    media_type = JSONL_MEDIA_TYPE

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class JSONLinesAltParser(JSONLinesParser):
    media_type = "application/jsonl"


class JSONLinesRenderer(BaseRenderer):
    """Error bodies of JSONL endpoints: one JSON object on one line."""

    media_type = JSONL_MEDIA_TYPE
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")


def encoded_lines(lines: Iterable[str], chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """JSONL lines (without newlines) as UTF-8 chunks of about `chunk_bytes`.

    Batching keeps per-write overhead low for millions of records; memory stays one chunk.
    """
    buffer: list[bytes] = []
    size = 0
    for line in lines:
        data = (line + "\n").encode("utf-8")
        buffer.append(data)
        size += len(data)
        if size >= chunk_bytes:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)
