"""Escaping untrusted strings for HTML, Markdown and LaTeX: the one place that does it.

A calibration file is shared between people, a dataset's cells and a file's name are typed
by someone else: any of their strings may hold markup. Every such string reaches a report,
a card or a terminal only through a function of this module:

- :func:`html` — text in an HTML element or a quoted attribute;
- :func:`markdown` — text in Markdown prose or a table cell (no emphasis, links, raw HTML,
  ``$`` math or line breaks survive);
- :func:`code_span` — a Markdown code span that its content cannot leave, whatever
  backticks, HTML or blank lines it holds;
- :func:`latex` — text in LaTeX: the ten specials ``\\ { } $ & # ^ _ ~ %`` each become a
  command that prints the character, so no control sequence, group, math, alignment, macro
  parameter, comment or ``^^`` character code can be formed; line breaks become spaces (a
  line break would end a ``%`` comment);
- :func:`plain` — text for a terminal or a one-line message: control characters (escape
  sequences among them) shown as ``\\xNN``.
"""

from __future__ import annotations

import html as _html
import re

#: ASCII and C1 control characters (a terminal acts on ESC, CSI, …).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def plain(text: object) -> str:
    """``text`` as a string with control characters written ``\\xNN`` (tabs and line
    breaks kept)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", str(text))


def one_line(text: object) -> str:
    """:func:`plain` on one line: line breaks become spaces."""
    return plain(_LINE_BREAKS.sub(" ", str(text)))


def html(text: object) -> str:
    """``text`` for an HTML element or a quoted attribute value: ``& < > " '`` as entities,
    control characters shown."""
    return _html.escape(plain(text), quote=True)


#: Characters Markdown (CommonMark and the notebook's dialect, with ``$`` math) gives a
#: meaning within a line: code, emphasis, links and images (``[``), headings, table cells,
#: math, strike-through, raw HTML and autolinks (``<``, ``:``). "(" and "." stay as typed.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|$~^<>:])")
#: ... and what it acts on only at the start of a line: a list item, a heading, a numbered item.
_MARKDOWN_LEADING = re.compile(r"^(\s*)([-+=](?=\s|$)|#|\d+(?=[.)](?:\s|$)))")


def markdown(text: object) -> str:
    """``text`` for Markdown prose or a table cell, shown as typed.

    ``& < >`` become entities (no raw HTML, no autolink), every other punctuation mark
    Markdown acts on is backslash-escaped (no emphasis, link, heading, table cell break or
    ``$`` math), and line breaks become spaces (a blank line would end the paragraph).
    """
    text = _html.escape(one_line(text), quote=False)  # no '&#x27;': its '#' would be escaped below
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return _MARKDOWN_LEADING.sub(lambda m: m[1] + ("\\" + m[2] if not m[2][0].isdigit() else m[2] + "\\"), text, 1)


def code_span(text: object) -> str:
    """A Markdown code span holding ``text`` literally.

    The fence is one backtick longer than the longest run of backticks in ``text`` (so the
    text cannot close it), a space pads both ends when ``text`` starts or ends with a
    backtick or a space (Markdown strips one from each end), and line breaks become spaces (a blank
    line would end the paragraph and with it the span). Inside a code span Markdown shows
    ``<``, ``&`` and ``$`` as typed, so HTML in ``text`` stays text.
    """
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_LATEX = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "~": r"\textasciitilde{}", "%": r"\%",
    # typographic characters the cards use, as commands every TeX engine knows
    "…": r"\ldots{}", "±": r"$\pm$", "≈": r"$\approx$", "→": r"$\to$", "–": "--", "§": r"\S{}",
    "⌈": r"$\lceil$", "⌉": r"$\rceil$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$",
    "σ": r"$\sigma$", "δ": r"$\delta$", "ρ": r"$\rho$", "<": r"\textless{}", ">": r"\textgreater{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX))


def latex(text: object) -> str:
    """``text`` for LaTeX (text mode, a table cell or a ``%`` comment), printed as typed.

    Each special character is replaced in one pass (a replacement is never escaped again),
    so ``\\input{…}``, ``^^5c``, ``$…$``, ``#1`` and ``%`` are inert; line breaks become
    spaces and other control characters are dropped (TeX would act on some of them).
    """
    text = _LINE_BREAKS.sub(" ", str(text))
    text = _CONTROL.sub("", text)
    return _LATEX_RE.sub(lambda m: _LATEX[m[0]], text)


def latex_comment(text: object) -> str:
    """``text`` for the rest of a LaTeX ``%`` comment line: TeX discards it up to the line's
    end, so only line breaks (which would end the comment) and control characters matter."""
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(text)))
