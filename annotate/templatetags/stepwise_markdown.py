"""`{{ text|markdown }}`: model-written text as a safe Markdown subset, math left for KaTeX.

Bold, italics, lists, headings, block quotes and code render; raw HTML is escaped, and links,
images and autolinks are off (a solution never needs one; a link is a phishing or
`javascript:` vector). Math spans (`$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]`) are passed through
verbatim, delimiters kept, before Markdown's emphasis and escapes see them, so `$a*b*c$`
keeps its asterisks and KaTeX's auto-render in the browser finds them as it always did.
"""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline

register = template.Library()

# Longest first: "$$" must win over "$".
INLINE_MATH = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
DISPLAY_MATH = (("$$", "$$"), ("\\[", "\\]"))


def _math_inline(state: StateInline, silent: bool) -> bool:
    src, pos = state.src, state.pos
    if src.startswith("\\$", pos):  # an escaped dollar stays escaped for KaTeX
        if not silent:
            state.push("text", "", 0).content = "\\$"
        state.pos = pos + 2
        return True
    # Closing delimiters known to be absent from some position on: each is searched for
    # once per paragraph, so a run of unclosed `$` stays linear.
    absent = state.env.setdefault("math_absent_after", {})
    for left, right in INLINE_MATH:
        if not src.startswith(left, pos):
            continue
        start = pos + len(left)
        if right in absent and absent[right] <= start:
            continue
        end = src.find(right, start)
        if end == -1:
            absent[right] = start
            continue
        if end == start:
            continue
        if not silent:
            state.push("text", "", 0).content = src[pos : end + len(right)]
        state.pos = end + len(right)
        return True
    return False


def _math_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """A display equation that starts a line runs to its closing delimiter, whatever lines
    inside it look like to Markdown (`- 3`, `# 2`, blank lines)."""
    begin = state.bMarks[start_line] + state.tShift[start_line]
    for left, right in DISPLAY_MATH:
        if not state.src.startswith(left, begin):
            continue
        close = state.src.find(right, begin + len(left))
        if close == -1 or close >= state.eMarks[end_line - 1]:
            continue
        line = start_line
        while state.eMarks[line] < close + len(right):
            line += 1
        if state.src[close + len(right) : state.eMarks[line]].strip():
            return False  # text after the equation on its line: leave it to the paragraph
        if not silent:
            token = state.push("math_block", "div", 0)
            token.content = state.src[begin : close + len(right)]
            token.map = [start_line, line + 1]
        state.line = line + 1
        return True
    return False


def _render_math_block(self, tokens, idx, options, env) -> str:
    return f'<div class="math-display">{escapeHtml(tokens[idx].content)}</div>\n'


_DISABLED = [
    "html_block",
    "html_inline",
    "link",
    "image",
    "autolink",
    "reference",
    "code",
    "entity",
]
_md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False}).disable(_DISABLED)
_md.inline.ruler.before("escape", "math", _math_inline)
_md.block.ruler.before("fence", "math_block", _math_block, {"alt": ["paragraph"]})
_md.add_render_rule("math_block", _render_math_block)


def _demote_headings(state) -> None:
    """`# Answer` in a step is a heading inside the page's own: h4 and below."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 3)}"


_md.core.ruler.push("demote_headings", _demote_headings)


def render_markdown(text: str) -> SafeString:
    """HTML for `text`: the safe subset above, everything else escaped."""
    # Safe: markdown-it escapes all text and html is off.
    return mark_safe(_md.render(str(text)))


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text or "")
