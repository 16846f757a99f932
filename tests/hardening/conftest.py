"""The browser tests' chromium and page fixtures, for test_csp_browser."""

from tests.browser.conftest import browser, page

__all__ = ["browser", "page"]
