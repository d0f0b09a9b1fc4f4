"""Formula cards: a target's closed form, its coefficients and provenance, fit to cite.

A card shows, for one output of the model,

1. the closed form in terms of named intermediates, each defined in a ``where`` line;
2. the coefficients with the calibration's values (± 95 % interval when fitted), units,
   origin and source;
3. the same formula with those numbers bound (and the platform / hugepage size, if given);
4. a provenance line: calibration method, data SHA-256, model version, form, scenario.

Formats: ``text`` (Unicode, for terminals), ``markdown`` (``$$`` math, tables) and
``latex`` (an ``align*`` block and a ``tabular``, to paste into a design document).
"""

from __future__ import annotations

import math
import re

import sympy as sp

from costmodel import __version__, errors, parse
from costmodel.errors import Argument
from costmodel.model import model_for, scenarios
from costmodel.model.variables import CLUSTERS, OUTPUTS, QUANTITIES, symbol
from costmodel.render import escape, numbers

FORMATS = ("text", "markdown", "latex")
#: Significant digits of numbers bound into formulas.
DIGITS = 4


def _readable(expr: sp.Expr, fmt: str) -> sp.Expr:
    """Show byte constants of 64 KiB and more as sizes (``4 MiB``, not ``4194304``)."""
    replaced = {}
    for atom in expr.atoms(sp.Rational):
        p, q = _size_symbol(atom.p, fmt), _size_symbol(atom.q, fmt)
        if p is None and q is None:
            continue
        numerator = p if p is not None else sp.Integer(atom.p)
        if atom.q == 1:
            replaced[atom] = numerator
        else:
            denominator = q if q is not None else sp.Integer(atom.q)
            replaced[atom] = sp.Mul(numerator, sp.Pow(denominator, -1, evaluate=False), evaluate=False)
    return expr.xreplace(replaced)


def _size_symbol(value: int, fmt: str):
    if value > 0 and value >= 64 * 1024 and value & (value - 1) == 0:
        label = numbers.format_size(value)
        return sp.Symbol(r"\mathrm{%s}" % label.replace(" ", r"\,") if fmt == "latex" else label.replace(" ", ""))
    return None


def _bound_number(value: float, unit: str = "1") -> sp.Expr:
    """Whole numbers stay whole (δ = 1, not 1.0); sizes within 0.01 % of a power of two
    become it (shown as ``4 GiB`` by :func:`_readable`); others keep :data:`DIGITS` digits."""
    if unit == "B" and value > 0:
        power = 2 ** round(math.log2(value))
        if abs(value - power) <= 1e-4 * power:
            return sp.Integer(power)
    return sp.Integer(int(value)) if float(value).is_integer() else sp.Float(value, DIGITS)


def _interval(calibration, name: str) -> str:
    """``82.98 ± 3.1 (95 % CI 79.9 … 86.1)`` when the calibration has an interval."""
    show = numbers.format_size if QUANTITIES[name].unit == "B" else (lambda v: numbers.format_significant(v, DIGITS))
    value = calibration.values[name]
    coefficient = calibration.coefficients[name]
    if coefficient.has_interval:
        low, high = coefficient.ci_low, coefficient.ci_high
        return f"{show(value)} ± {show((high - low) / 2)} (95 % CI {show(low)} … {show(high)})"
    return show(value)


class Card:
    """The content of one formula card, independent of its format."""

    def __init__(self, target: str, calibration, scenario: str = "status_quo",
                 platform: str | None = None, hugepage: int | None = None):
        if target not in OUTPUTS:
            raise errors.InputError(Argument("target"), target, "one of " + ", ".join(errors.closest(target, OUTPUTS, len(OUTPUTS))))
        self.target, self.calibration = target, calibration
        self.scenario = scenarios.get(scenario)
        self.model = model_for(calibration.form)
        self.inputs: dict[sp.Symbol, sp.Expr] = {}
        if platform is not None:
            self.inputs[symbol("is_snp")] = sp.Integer(parse.platform(platform, Argument("platform")) == "snp")
        if hugepage is not None:
            self.inputs[symbol("hugepage_bytes")] = sp.Integer(parse.hugepage(hugepage, Argument("hugepage")))
        self.platform, self.hugepage = platform, hugepage
        self.tdx = platform is not None and self.inputs[symbol("is_snp")] == 0
        if self.tdx and not calibration.tdx_borrowed:  # TDX's own coefficient set
            from costmodel.calibration import Calibration

            self.calibration = Calibration(dict(calibration.tdx), calibration.form, dict(calibration.provenance),
                                           dict(calibration.fits), calibration.last_fit)

        overrides = dict(self.scenario.overrides)
        self.definitions = {name: expr.xreplace(self.inputs)
                            for name, expr in self.model.definitions_under(overrides).items()}
        self.where = self.model.where(target, self.definitions)
        used = set().union(*(self.definitions[n].free_symbols for n in [target, *self.where]))
        generic = set().union(*(e.free_symbols for e in self.model.node(NODE_INDEX).values()))
        self.coefficients = [q for q, v in QUANTITIES.items() if v.kind == "coefficient" and v.symbol in used | generic]
        self.generic_node = {family: expr.xreplace(self.inputs)
                             for family, expr in self.model.node(NODE_INDEX).items()}

    def bound(self, name: str) -> sp.Expr:
        """``name``'s definition with the coefficient values substituted."""
        values = {symbol(c): _bound_number(self.calibration.values[c], QUANTITIES[c].unit) for c in self.coefficients}
        return self.definitions[name].xreplace(values)

    def _value(self, expr: sp.Expr, bound: bool) -> sp.Expr:
        if not bound:
            return expr
        values = {symbol(c): _bound_number(self.calibration.values[c], QUANTITIES[c].unit) for c in self.coefficients}
        return expr.xreplace(values)

    def equations(self, bound: bool) -> list[tuple[sp.Expr | None, sp.Expr | None, str]]:
        """The card's lines, in order: ``(symbol, definition, meaning)``, or ``(None, None,
        heading)`` before a group. The target and the intermediates it uses come first;
        the NUMA nodes' definitions are shown once, for node i; each cluster's hugepage range
        ``[ℓ_c, h_c]`` and weight ``w_c`` follow (node stacks once, for node i)."""
        plain = [n for n in self.where if not _family_member(n)]
        out = [(QUANTITIES[n].symbol, self._value(self.definitions[n], bound), QUANTITIES[n].meaning)
               for n in [self.target, *plain]]
        if any(_family_member(n) == "node" for n in self.where):
            out.append((None, None, "for each NUMA node i = 0 … K − 1"))
            for family, expr in self.generic_node.items():
                meaning = QUANTITIES[f"{family}_0"].meaning.replace(" (node 0)", "")
                out.append((_generic(f"{family}_0"), self._value(expr, bound), meaning))
        clusters = [c for c in CLUSTERS if f"first_page_{c}" in self.where]
        if clusters:
            out.append((None, None, "clusters of shared memory: hugepage range [ℓ, h] and weight w; "
                        "ν_c = the hugepages of cluster c's range that no cluster starting lower covers, "
                        "times w_c (each hugepage counted once)"))
            shown = set()
            for c in clusters:
                key = "node_stack_0" if c.startswith("node_stack_") else c
                if key in shown:
                    continue
                shown.add(key)
                for part in ("first_page", "last_page", "weight"):
                    name = f"{part}_{key}"
                    lhs = _generic(name) if key == "node_stack_0" else QUANTITIES[name].symbol
                    expr = self.definitions[name]
                    if key == "node_stack_0":
                        expr = expr.xreplace({QUANTITIES[f"{f}_0"].symbol: _generic(f"{f}_0")
                                              for f in self.generic_node})
                        expr = expr.xreplace({sp.Integer(1): sp.Integer(1)})
                    out.append((lhs, self._value(expr, bound), QUANTITIES[name].meaning.replace("node 0", "node i")))
        return out

    def condition(self) -> str:
        parts = [f"scenario {self.scenario.name}", f"model form {self.calibration.form}"]
        if self.platform:
            parts.append(f"platform {self.platform}")
        if self.hugepage:
            parts.append(f"hugepage {numbers.format_hugepage(parse.hugepage(self.hugepage))}")
        return ", ".join(parts)

    def provenance(self) -> str:
        p = self.calibration.provenance
        bits = [f"calibration: {p.get('method', 'unspecified')}"]
        if p.get("data"):
            bits.append(f"data {p['data']}")
        if p.get("data_sha256"):
            bits.append(f"sha256 {p['data_sha256']}")
        bits.append(f"costmodel {self.calibration.provenance.get('model_version', __version__)}")
        if self.tdx and self.calibration.tdx_borrowed:
            from costmodel.calibration.values import TDX_BORROWED

            bits.append(TDX_BORROWED)
        return "; ".join(bits)

    def coefficient_rows(self) -> list[dict]:
        return [{
            "symbol": QUANTITIES[c].symbol, "name": c, "value": _interval(self.calibration, c),
            "unit": QUANTITIES[c].unit, "origin": self.calibration.origin(c).value,
            "meaning": QUANTITIES[c].meaning, "source": QUANTITIES[c].source,
        } for c in self.coefficients]


#: The symbolic node index the cards show per-node definitions for.
NODE_INDEX = sp.Symbol("i", integer=True, nonnegative=True)


def _family_member(name: str) -> str | None:
    """``node`` for a per-node quantity, ``cluster`` for a cluster's range, weight or share."""
    if re.fullmatch(r".*_[0-7]", name) and not name.startswith(("first_page_", "last_page_", "weight_",
                                                                  "cluster_hugepages_")):
        return "node"
    if name.startswith(("first_page_", "last_page_", "weight_", "cluster_hugepages_")):
        return "cluster"
    return None


def _generic(name: str) -> sp.Symbol:
    """The symbol of a node-0 quantity, with its subscript 0 written i."""
    text = str(QUANTITIES[name].symbol)
    return sp.Symbol(re.sub(r"0(\}?)$", r"i\1", text).replace("node0", "node i"), real=True)


def _title(name: str) -> str:
    q = QUANTITIES[name]
    return f"{name}: {q.meaning} [{q.unit}]"


def _text(card: Card) -> str:
    out = [_title(card.target), f"({card.condition()})", ""]
    for bound, heading in ((False, "closed form"), (True, "with the calibration's numbers")):
        out.append(heading)
        for k, (symbol_, expr, meaning) in enumerate(card.equations(bound)):
            if symbol_ is None:
                out += ["", f"  {meaning}:"]
                continue
            lhs = sp.pretty(symbol_, use_unicode=True)
            rhs = sp.pretty(_readable(expr, "text"), use_unicode=True, num_columns=100)
            pad = " " * (len(lhs) + 3)
            lines = rhs.split("\n")
            mid = len(lines) // 2
            out.extend(f"  {lhs + ' = ' if i == mid else pad}{line}" for i, line in enumerate(lines))
            if k:
                out.append(f"      ({meaning})")
        out.append("")
    out.append("coefficients")
    for row in card.coefficient_rows():
        out.append(f"  {sp.pretty(row['symbol'], use_unicode=True):<6} {row['name']:<24} {row['value']} "
                   f"[{row['unit']}]  {row['origin']}: {row['source']}")
    out += ["", escape.one_line(card.provenance())]
    return "\n".join(out) + "\n"


#: In a compact card, a definition whose LaTeX is longer than this is named, not typeset:
#: the nested per-node cases run to thousands of characters that no page can hold.
COMPACT_CHARS = 400


def _markdown(card: Card, compact: bool = False) -> str:
    """The card in Markdown. ``compact``: the closed form's top-level lines only, long
    definitions named rather than typeset, no per-node or per-cluster blocks and no bound
    copy (the coefficient table gives the values) — what a report page can hold and
    typeset in seconds; ``costmodel formula`` prints the rest."""
    out = [f"### `{card.target}` — {QUANTITIES[card.target].meaning} "
           f"[{QUANTITIES[card.target].unit}]", "", f"*{card.condition()}*", ""]
    passes = ((False, "Closed form"),) if compact else ((False, "Closed form"), (True, "With the calibration's numbers"))
    for bound, heading in passes:
        out += [f"**{heading}**", ""]
        groups = _groups(card.equations(bound))
        for group in groups[:1] if compact else groups:
            if group[0][0] is None:
                out += [f"*{group[0][2]}:*", ""]
                group = group[1:]
            out += ["$$", "\\begin{aligned}"]
            for sym, e, meaning in group:
                rhs = sp.latex(_readable(e, 'latex'))
                if compact and len(rhs) > COMPACT_CHARS:
                    rhs = "\\text{%s (in full: costmodel formula)}" % _latex_text(meaning)
                out.append(f"{sp.latex(sym)} &= {rhs} \\\\")
            out += ["\\end{aligned}", "$$", ""]
        if compact and len(groups) > 1:
            out += ["*" + "; ".join(g[0][2] for g in groups[1:] if g[0][0] is None)
                    + f": `costmodel formula --target {card.target}` writes them out.*", ""]
    out += ["| symbol | name | meaning | value | unit | origin | source |", "|---|---|---|---|---|---|---|"]
    for row in card.coefficient_rows():
        cells = (escape.markdown(row[k]) for k in ("meaning", "value", "unit", "origin", "source"))
        out.append(f"| ${sp.latex(row['symbol'])}$ | {escape.code_span(row['name'])} | " + " | ".join(cells) + " |")
    out += ["", f"<sub>{escape.markdown(card.provenance())}</sub>", ""]
    return "\n".join(out)


def _latex_text(text: str) -> str:
    """Plain words for ``\\text{…}`` in MathJax and ziamath: braces, backslashes and ``%`` dropped."""
    return re.sub(r"[{}\\%$&#_^]", " ", text)


def _groups(lines: list) -> list[list]:
    """Lines split before each heading (a heading starts its group)."""
    groups: list[list] = [[]]
    for line in lines:
        if line[0] is None and groups[-1]:
            groups.append([])
        groups[-1].append(line)
    return [g for g in groups if g]


def _latex_line(symbol_, expr, meaning) -> str:
    if symbol_ is None:
        return f"  &\\text{{{escape.latex(meaning)}}} \\\\"
    return f"  {sp.latex(symbol_)} &= {sp.latex(_readable(expr, 'latex'))} \\\\"


def _latex(card: Card) -> str:
    out = [f"% costmodel formula card: {card.target} ({escape.latex_comment(card.condition())})",
           f"% {escape.latex_comment(card.provenance())}", "\\begin{align*}"]
    eqs = card.equations(False)
    out += [_latex_line(*eqs[0])]
    out += ["  &\\text{where} \\\\"]
    out += [_latex_line(*line) for line in eqs[1:]]
    out += ["\\end{align*}", "", "\\begin{tabular}{lllll}", "\\hline",
            "symbol & name & value & unit & origin \\\\", "\\hline"]
    for row in card.coefficient_rows():
        out.append(f"${sp.latex(row['symbol'])}$ & \\texttt{{{escape.latex(row['name'])}}} & "
                   f"{escape.latex(row['value'])} & {escape.latex(row['unit'])} & {escape.latex(row['origin'])} \\\\")
    out += ["\\hline", "\\end{tabular}", "", "\\begin{align*}"]
    out += [_latex_line(*line) for line in card.equations(True)]
    out += ["\\end{align*}", f"\\par\\noindent{{\\footnotesize {escape.latex(card.provenance())}}}", ""]
    return "\n".join(out)


class CardText(str):
    """A rendered card: the text in the format asked for, which notebooks display richly.

    It is a ``str`` (``print`` it, write it to a file); in JupyterLab it shows as Markdown
    with typeset formulas (``_repr_markdown_``), and as LaTeX where a front end asks for it.
    """

    content: Card
    compact: bool = False

    def _repr_markdown_(self) -> str:
        return _markdown(self.content, self.compact)

    def _repr_latex_(self) -> str:
        return _latex(self.content)


def card(target: str = "splits", calibration=None, scenario: str = "status_quo", fmt: str = "text",
         platform: str | None = None, hugepage=None, compact: bool = False) -> CardText:
    """Render the formula card of ``target`` in ``fmt`` (``text``, ``markdown``, ``latex``).

    ``compact`` (Markdown only) names the definitions too long to typeset on a page instead
    of writing them out (``costmodel formula`` prints them in full). The result is a
    :class:`CardText`: a ``str`` that notebooks display as Markdown with formulas.
    """
    from costmodel import calibration as calibration_module

    fmt = parse.choice(fmt, FORMATS, Argument("format"))
    cal = calibration if calibration is not None else calibration_module.default()
    content = Card(target, cal, scenario, platform, hugepage)
    text = _markdown(content, compact) if fmt == "markdown" else {"text": _text, "latex": _latex}[fmt](content)
    out = CardText(text)
    out.content, out.compact = content, compact
    return out


#: The on-disk cache kind of rendered cards (:func:`card_text`).
CACHE_KIND = "report-card"


def card_text(target: str = "splits", calibration=None, scenario: str = "status_quo", fmt: str = "text",
              platform: str | None = None, hugepage=None, compact: bool = False) -> str:
    """:func:`card`'s text, kept in the on-disk cache (kind ``report-card``) under the whole
    calibration (its JSON), every argument and the code fingerprint (:func:`costmodel.cache.key`):
    a later report with the same calibration and configuration reads it back instead of
    deriving it with SymPy again."""
    from costmodel import cache
    from costmodel import calibration as calibration_module

    cal = calibration if calibration is not None else calibration_module.default()
    key = cache.key("report card", cal.to_json(), *(repr(v) for v in (target, scenario, fmt, platform, hugepage,
                                                                      compact)))
    text = cache.read(CACHE_KIND, key)
    if text is None:
        text = str(card(target, cal, scenario, fmt, platform, hugepage, compact))
        cache.write(CACHE_KIND, key, text)
    return text
