"""report.html: one self-contained page (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

import time
from html import escape

from harness._core.rules import Violation
from harness._report.model import Report, StreamArtifact, Table, around_failures, explanation

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#171717;background:#fff}
main{max-width:1100px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e5e5;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:700;color:#fff;margin-right:8px}
.pass{background:#16a34a}.fail{background:#dc2626}.incomplete{background:#ea580c}
.meta{color:#525252} code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f5f5f5;padding:8px 10px;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:6px 0} th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600} .error{color:#b91c1c;font-weight:600}.warning{color:#b45309;font-weight:600}
.ev{font-family:ui-monospace,monospace;font-size:12.5px}.ev td{padding:2px 8px}.bad{background:#fef2f2}
.gap td{color:#a3a3a3;text-align:center} details{margin:4px 0} summary{cursor:pointer}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:14px}
figure{margin:0;border:1px solid #eee;border-radius:8px;padding:8px} figcaption{color:#525252;font-size:12.5px}
table.figures td:not(:first-child),table.figures th:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
svg.plot{width:100%;height:auto} svg .axis{font-size:12px;fill:#404040} svg .tick{font-size:10.5px;fill:#525252}
"""


def render_html(report: Report) -> str:
    parts = [_header(report)]
    parts += [_table(t) for t in report.tables]
    if report.plots:
        parts.append(_plots(report))
    parts.append(_violations(report))
    for stream in report.streams:
        parts.append(_stream(stream))
    if report.reproducers:
        parts.append("<h2>Reproduce</h2>" + _pre("\n".join(report.reproducers)))
    parts.append(_cases(report))
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>stream-harness {escape(report.command)}: {escape(report.title)}</title>"
        f"<style>{_CSS}</style></head><body><main>\n{body}\n</main></body></html>\n"
    )


def _header(report: Report) -> str:
    badge = (
        '<span class="badge pass">PASS</span>'
        if report.ok
        else '<span class="badge fail">FAIL</span>'
    )
    if report.incomplete:
        badge += '<span class="badge incomplete">INCOMPLETE</span>'
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.created))
    facts = [f"{k}: {escape(str(v))}" for k, v in _facts(report).items()]
    note = (
        "<p><strong>The run was interrupted</strong>; this report holds what was measured so far.</p>"
        if report.incomplete
        else ""
    )
    return (
        f"<h1>{badge}stream-harness {escape(report.command)}</h1>"
        f'<p class="meta"><code>{escape(report.title)}</code> · {when}</p>'
        f'<p class="meta">{" · ".join(facts)}</p>{note}'
    )


def _facts(report: Report) -> dict[str, object]:
    v = report.verdict
    facts: dict[str, object] = {}
    for key in ("contract", "events", "requests", "failures"):
        if key in v:
            facts[key] = v[key]
    timing = v.get("timing")
    if isinstance(timing, dict):
        for key, value in timing.items():
            if value is not None:
                facts[key] = f"{value:.1f}" if isinstance(value, float) else value
    return facts


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    note = f'<p class="meta">{escape(t.note)}</p>' if t.note else ""
    return f'<h2>{escape(t.title)}</h2><table class="figures"><tr>{head}</tr>{rows}</table>{note}'


def _plots(report: Report) -> str:
    figures = "".join(
        f"<figure>{p.svg}<figcaption><strong>{escape(p.title)}</strong>"
        f"{' — ' + escape(p.caption) if p.caption else ''}</figcaption></figure>"
        for p in report.plots
    )
    return f'<h2>Plots</h2><div class="plots">{figures}</div>'


def _violations(report: Report) -> str:
    rows, rules = [], []
    for case in report.cases:
        for rule_id, message in case.failures:
            rows.append(
                f'<tr><td>{escape(case.name)}</td><td class="error"><a href="#rule-{escape(rule_id)}">'
                f"{escape(rule_id)}</a></td><td>{escape(message)}</td></tr>"
            )
            if rule_id not in rules:
                rules.append(rule_id)
    for stream in report.streams:
        for v in stream.result.violations:
            if v.rule not in rules:
                rules.append(v.rule)
    if not rows and not rules:
        return "<h2>Violations</h2><p>None: every check passed.</p>"
    table = (
        "<table><tr><th>check</th><th>rule</th><th>message</th></tr>" + "".join(rows) + "</table>"
        if rows
        else ""
    )
    explained = "".join(
        f'<details id="rule-{escape(r)}"><summary><code>{escape(r)}</code> — what it means</summary>'
        f"{_pre(explanation(r))}</details>"
        for r in rules
        if explanation(r)
    )
    return f"<h2>Violations</h2>{table}<h3>The rules broken</h3>{explained}"


def _stream(stream: StreamArtifact) -> str:
    result = stream.result
    rows = []
    for entry in around_failures(result.transcript):
        if entry is None:
            rows.append('<tr class="gap"><td colspan="5">…</td></tr>')
            continue
        cls = ' class="bad"' if entry.violations else ""
        t = "" if entry.time_ms is None else f"{entry.time_ms:.1f} ms"
        rows.append(
            f"<tr{cls}><td>#{entry.index}</td><td>{escape(entry.kind)}</td><td>{escape(entry.id)}</td>"
            f"<td>{escape(entry.preview)}{_inline(entry.violations)}</td><td>{t}</td></tr>"
        )
    whole = [v for v in result.violations if v.event_index is None]
    tail = _inline(whole) if whole else ""
    note = " (the first 8 MiB)" if result.raw_truncated else ""
    repro = _pre("\n".join(stream.reproducers)) if stream.reproducers else ""
    return (
        f"<h2>Stream: {escape(stream.name)}</h2>"
        f'<p class="meta">{result.events} events · raw bytes{note} saved as '
        f"<code>{escape(stream.filename)}</code></p>{repro}"
        '<table class="ev"><tr><th>#</th><th>type</th><th>id</th><th>data</th><th>arrived</th></tr>'
        + "".join(rows)
        + f"</table>{tail}"
    )


def _inline(violations: list[Violation]) -> str:
    return "".join(
        f'<div class="{v.severity.value}">{"✗" if v.is_error else "!"} {escape(v.rule)}: '
        f"{escape(v.message)}</div>"
        for v in violations
    )


def _cases(report: Report) -> str:
    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{'<span class=error>fail</span>' if c.failures else 'pass'}"
        f"</td><td>{escape(c.output)}</td></tr>"
        for c in report.cases
    )
    return f"<h2>All checks</h2><table><tr><th>check</th><th>result</th><th>notes</th></tr>{rows}</table>"


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"
