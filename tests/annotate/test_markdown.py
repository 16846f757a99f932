"""Model-written text renders a safe Markdown subset beside KaTeX; raw HTML, links and
images never come through, whatever the payload."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from annotate.templatetags.stepwise_markdown import render_markdown
from tests.factories import make_task


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("**bold** and *it*", "<p><strong>bold</strong> and <em>it</em></p>\n"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"),
        ("# Answer\n\n5", "<h4>Answer</h4>\n<p>5</p>\n"),
        ("use `x*y*z`", "<p>use <code>x*y*z</code></p>\n"),
        ("line one\nline two", "<p>line one<br />\nline two</p>\n"),
    ],
)
def test_the_subset_renders(text, html):
    assert render_markdown(text) == html


@pytest.mark.parametrize(
    "math",
    [
        "$a*b*c$",
        "$$x_1 * y_2 * z$$",
        r"\(a_1*b*\)",
        r"\[ \frac{a*b}{c*d} \]",
        r"$\{1, 2\}$ and $a \\ b$",
        r"$x_1$ and $y_2$ *are* \$5",
    ],
)
def test_math_is_passed_through_verbatim_for_katex(math):
    html = render_markdown(math)
    for span in ("$a*b*c$", "$$x_1 * y_2 * z$$", r"\(a_1*b*\)", r"\{1, 2\}", r"a \\ b", r"\$5"):
        if span in math:
            assert span in html
    assert "<em>b" not in html and "<em>y" not in html  # no emphasis made of math
    assert ("<em>are</em>" in html) == ("*are*" in math)  # ... while text keeps it


def test_display_math_spans_lines_markdown_would_read_as_lists():
    html = render_markdown("Then\n\n$$\n- 3\n\n# 2\n$$\n\nso.")
    assert '<div class="math-display">$$\n- 3\n\n# 2\n$$</div>' in html
    assert "<li>" not in html and "<h" not in html


# Every element the renderer may emit; none with an attribute but the display-math box.
SUBSET = {"p", "strong", "em", "ul", "ol", "li", "h4", "h5", "h6", "code", "pre", "br"}
SUBSET |= {"blockquote", "hr", "div"}


def _elements(html: str) -> list[tuple[str, list]]:
    """(tag, attributes) of every element an HTML parser finds in `html`."""
    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collect().feed(html)
    return found


@pytest.mark.parametrize(
    "payload",
    [
        '<script>alert("x")</script>',
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "![x](javascript:alert(1))",
        "![x](https://evil.example/track.png)",
        "<javascript:alert(1)>",
        "<https://evil.example>",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "**<svg onload=alert(2)>**",
        "`<script>`",
        "```\n<script>alert(1)</script>\n```",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;script&#62;",
        "<a href='javascript:alert(1)'>x</a>",
        "$</span><script>alert(1)</script>$",
        "$$\n</div><img src=x onerror=alert(1)>\n$$",
        "<div onmouseover=alert(1)>x</div>",
    ],
)
def test_markdown_payloads_stay_inert(payload):
    elements = _elements(render_markdown(payload))
    assert {tag for tag, _ in elements} <= SUBSET
    assert all(attrs in ([], [("class", "math-display")]) for _, attrs in elements)


@pytest.mark.django_db
def test_task_page_renders_markdown_and_escapes_html(client, labeler, campaign):
    steps = ["**Key idea**: $a*b*c$", "<img src=x onerror=alert(1)> [x](javascript:alert(1))"]
    assignment, _ = make_task(labeler, campaign, steps=steps)
    client.force_login(labeler)
    html = client.get(reverse("task", args=[assignment.pk])).content.decode()
    assert "<strong>Key idea</strong>: $a*b*c$" in html
    assert "&lt;img src=x onerror=alert(1)&gt; [x](javascript:alert(1))" in html
    assert "<img src=x" not in html and 'href="javascript' not in html
