"""Reports people read and CI consumes, written into one directory per run.

Every command builds a :class:`~harness._report.model.Report` from its result and hands it to
:func:`write_report`, which writes, atomically and with every secret redacted:

    summary.json   the ``--format json`` verdict (plus ``"incomplete": true`` after Ctrl-C)
    junit.xml      one test case per function / rule / threshold, so CI shows failures by name
    summary.md     short enough for a CI job summary page
    report.html    one self-contained page: verdict, violations with each rule's explanation,
                   the transcript around each failure, reproducers, plots (inline SVG, no JS)
    *.sse          the raw bytes of every failing stream; ``stream-harness check X.sse``
                   reproduces it
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from harness._core.errors import UsageError
from harness._core.redact import redact_json, redact_text, scrub_bytes
from harness._core.text import shorten
from harness._report.html import render_html
from harness._report.model import Report

__all__ = ["atomic_write", "default_report_dir", "write_report"]


def default_report_dir(command: str, root: Path = Path("reports")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{command}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{command}-{n}"
    return path


def write_report(report: Report, directory: Path) -> list[Path]:
    """Write every artifact into ``directory``; returns the paths written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create report directory {directory}: {e.strerror or e}") from None
    secrets = report.secrets

    def scrub(text: str) -> str:
        return redact_text(text, secrets)

    summary = dict(report.verdict)
    if report.incomplete:
        summary["incomplete"] = True
    files: list[tuple[str, bytes]] = [
        # Scrubbed value by value, not as text: a short secret that is also a number must not
        # turn a number into an unquoted word.
        ("summary.json", _summary_json(redact_json(summary, report.secrets))),
        ("junit.xml", scrub(_junit(report)).encode()),
        ("summary.md", scrub(_markdown(report)).encode()),
        ("report.html", scrub(render_html(report)).encode()),
    ]
    for stream in report.streams:
        files.append((stream.filename, scrub_bytes(stream.result.raw, secrets)))
    written = []
    for name, data in files:
        path = directory / name
        atomic_write(path, data)
        written.append(path)
    return written


# -- junit ------------------------------------------------------------------------------------


def _junit(report: Report) -> str:
    failures = sum(bool(c.failures) for c in report.cases)
    suite = ET.Element(
        "testsuite",
        name=f"stream-harness.{report.command}",
        tests=str(len(report.cases)),
        failures=str(failures),
        errors="0",
        skipped=str(sum(c.skipped for c in report.cases)),
        time=f"{sum(c.time_s for c in report.cases):.3f}",
    )
    for case in report.cases:
        el = ET.SubElement(
            suite,
            "testcase",
            classname=f"stream-harness.{report.command}",
            name=case.name,
            time=f"{case.time_s:.3f}",
        )
        for kind, message in case.failures:
            failure = ET.SubElement(el, "failure", type=kind, message=_one_line(message))
            failure.text = message
        if case.skipped:
            ET.SubElement(el, "skipped", message=_one_line(case.output))
        elif case.output:
            ET.SubElement(el, "system-out").text = case.output
    if report.incomplete:
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="incomplete", value="true")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- markdown ---------------------------------------------------------------------------------


def _markdown(report: Report) -> str:
    head = "✅ PASS" if report.ok else "❌ FAIL"
    lines = [f"## stream-harness {report.command}: {head}", "", f"`{_md(report.title)}`", ""]
    if report.incomplete:
        lines += [
            "> **Incomplete**: the run was interrupted; this is what was measured so far.",
            "",
        ]
    for t in report.tables:
        lines += [f"### {_md(t.title)}", "", "| " + " | ".join(_md(h) for h in t.header) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(t.header) - 1)) + "|")
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in t.rows]
        lines += ["", _md(t.note), ""] if t.note else [""]
    failed = [c for c in report.cases if c.failures]
    lines.append(f"{len(report.cases) - len(failed)} of {len(report.cases)} checks passed.")
    if failed:
        lines += ["", "| check | rule | message |", "|---|---|---|"]
        shown = 0
        for case in failed:
            for kind, message in case.failures:
                if shown == 20:
                    break
                lines.append(f"| {_md(case.name)} | `{kind}` | {_md(_one_line(message))} |")
                shown += 1
        total = sum(len(c.failures) for c in failed)
        if total > shown:
            lines.append(f"\n… and {total - shown} more in report.html")
    if report.reproducers:
        lines += ["", "Reproduce:", "", "```sh", *report.reproducers[:5], "```"]
    return "\n".join(lines) + "\n"


def _summary_json(summary: dict[str, Any]) -> bytes:
    return (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; CI jobs upload these as artifacts
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return shorten(line, 300)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
