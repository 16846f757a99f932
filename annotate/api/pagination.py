"""Pagination: bounded limit/offset for small tables, cursors for the sample pool (~10⁷ rows)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """Limit/offset with a ceiling, so `?limit=10**20` cannot reach the database."""

    default_limit = 100
    max_limit = 1000


class SampleCursorPagination(CursorPagination):
    """Cursor pages in import order: no COUNT(*) over the pool, constant cost per page."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000
