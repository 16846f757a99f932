"""JSON Lines on the wire: a parser that leaves the body unread (imports stream it) and a
renderer so `Accept: application/x-ndjson` reaches the streaming export views."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer

from annotate.io.base import jsonl_blocks, load_json

JSONL_MEDIA_TYPE = "application/x-ndjson"
JSONL_MEDIA_TYPES = (JSONL_MEDIA_TYPE, "application/jsonl", "application/x-jsonlines")


class JSONLinesParser(BaseParser):
    """Declares JSONL bodies; views stream `request._request` themselves, line by line."""

    media_type = JSONL_MEDIA_TYPE

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class SafeJSONParser(JSONParser):
    """DRF's JSON parser with the imports' guards: deep nesting, NUL, lone surrogates and NaN
    are a 400 naming the problem, not a 500 from the stack or from PostgreSQL. (DRF reads the
    body through `request.body`, so DATA_UPLOAD_MAX_MEMORY_SIZE already bounds its size.)"""

    def parse(self, stream, media_type=None, parser_context=None):
        charset = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return load_json(stream.read().decode(charset), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


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
    """JSONL lines (without newlines) as UTF-8 chunks of about `chunk_bytes` (counted in
    characters: a chunk of non-ASCII text is larger).

    Batching keeps per-write overhead low for millions of records; memory stays one chunk.
    """
    for block, _ in jsonl_blocks(lines, chunk_bytes):
        yield block.encode("utf-8")
