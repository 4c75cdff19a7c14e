"""The review page as one self-contained HTML file: inline style and script, nothing fetched.

Every value, id, path, message and source text is escaped (`html.escape`); the page's Content
Security Policy allows only its own style and script (by hash) and no network, so even markup that
got through could neither run nor load anything.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Final

from .assets import SCRIPT, STYLE
from .model import RecordView, ReviewPage, ValueView

__all__ = ["PAGE_END", "page_head", "record_html", "render_page"]

_DOT = " \u00b7 "
_STATUS_TEXT = {
    "found": "",
    "partial": "partial: inside a longer token",
    "fuzzy": "fuzzy",
    "missing": "\u2691 not found",
    "skipped": "not looked up",
    "unchecked": "no text to look in",
}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _digest(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii") + "'"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _offered(chunk: object, value: str) -> str:
    return f"chunk {chunk}: {value}" if chunk is not None else value


def _status(value: ValueView) -> str:
    text = (value.method or "") if value.status == "found" else _STATUS_TEXT[value.status]
    if value.status == "fuzzy":
        text += f" {value.score:.2f}"
    if value.page is not None:
        text += f" \u00b7 p. {value.page}"
    if value.beyond:
        text += " \u00b7 beyond the text shown"
    if value.flagged:
        text += " \u00b7 flagged by the run"
    return text


def _value_row(value: ValueView) -> str:
    conflict = ""
    if value.conflict:
        offered = "; ".join(_offered(chunk, shown) for chunk, shown in value.conflict)
        conflict = f' <span class="badge warn" title="{_e(offered)}">chunks disagreed</span>'
    status = value.status if not (value.status == "unchecked" and value.flagged) else "missing"
    return (
        f'<tr class="v {status}" data-key="{value.key}" data-v="{value.key}" tabindex="0">'
        f'<td class="path">{_e(value.path)}</td><td class="val">{_e(value.shown)}{conflict}</td>'
        f'<td class="st">{_e(_status(value))}</td></tr>'
    )


def _source(record: RecordView) -> str:
    parts = ['<div class="source">']
    if record.origin and record.text is not None:
        parts.append(f'<p class="origin">text of {_e(record.origin)} ({record.total_chars:,} characters)</p>')
    if record.text is not None:
        by_key = {v.key: v for v in record.values}
        body: list[str] = []
        for seg in record.segments:
            if seg.page is not None:
                body.append(f'<span class="pg" data-page="{seg.page}"></span>')
            chunk = escape(record.text[seg.start : seg.end], quote=False)
            if seg.keys:
                first = by_key[seg.keys[0]].status
                paths = ", ".join(by_key[k].path for k in seg.keys)
                body.append(
                    f'<mark class="ev {first}" data-v="{" ".join(seg.keys)}" title="{_e(paths)}">{chunk}</mark>'
                )
            else:
                body.append(chunk)
        parts.append(f'<pre class="text">{"".join(body)}</pre>')
        if len(record.text) < record.total_chars:
            parts.append(
                f'<p class="note">showing the first {len(record.text):,} of {record.total_chars:,} characters '
                "(--max-chars); values found only after them say so</p>"
            )
    if record.text_note:
        parts.append(f'<p class="note">{_e(record.text_note)}</p>')
    parts.append("</div>")
    return "".join(parts)


def _badges(record: RecordView) -> str:
    out: list[str] = []
    if record.failed:
        out.append(f'<span class="badge fail">failed: {_e(record.error_type)}</span>')
    missing = len(record.missing)
    if missing:
        out.append(f'<span class="badge warn">{missing} not found in the source</span>')
    if record.repairs:
        kinds = ", ".join(f"{kind} \u00d7{count}" for kind, count in record.repairs.items())
        out.append(f'<span class="badge info">repaired: {_e(kinds)}</span>')
    if record.conflicts:
        out.append(f'<span class="badge warn">{_count(len(record.conflicts), "conflict")} between chunks</span>')
    if record.details:
        out.append(f'<span class="details">{_e(_DOT.join(record.details))}</span>')
    return "".join(out)


def record_html(record: RecordView) -> str:
    """One record's `<section>`."""
    kind = "failed" if record.failed else "unsupported" if record.unsupported else "ok"
    parts = [
        f'<section class="record {kind}" id="r{record.index}" data-failed="{int(record.failed)}" '
        f'data-unsupported="{int(record.unsupported)}">',
        f'<div class="head"><h2><span class="rid">{_e(record.id)}</span>'
        f'<span class="src">{_e(record.source)}</span></h2>{_badges(record)}</div>',
    ]
    if record.failed:
        parts.append(f'<pre class="error">{_e(record.error_message or "")}</pre>')
        parts.append(f'<div class="cols one">{_source(record)}</div>')
    else:
        rows = "".join(_value_row(v) for v in record.values)
        conflicts = "".join(
            f"<li><code>{_e(path)}</code>: " + _e("; ".join(_offered(c, v) for c, v in offered)) + "</li>"
            for path, offered in record.conflicts.items()
        )
        listed = f'<div class="conflicts">Chunks disagreed on:<ul>{conflicts}</ul></div>' if conflicts else ""
        parts.append(
            f'<div class="cols"><div class="values"><table><tbody>{rows}</tbody></table>{listed}</div>'
            f"{_source(record)}</div>"
        )
    parts.append("</section>")
    return "".join(parts)


def page_head(out: str, errors: str | None, counts: tuple[int, int, int], problems: list[str]) -> str:
    """The page up to its first record: title, filters with `(total, failed, unsupported)` counts, the
    lines that could not be read, the legend."""
    total, failed, unsupported = counts
    policy = f"default-src 'none'; style-src {_digest(STYLE)}; script-src {_digest(SCRIPT)}; img-src data:"
    nav = "".join(
        f'<a href="#{name}" data-filter="{name}">{label} ({count})</a>'
        for name, label, count in (
            ("all", "All", total),
            ("failed", "Failed", failed),
            ("unsupported", "Unsupported", unsupported),
        )
    )
    listed = ""
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        listed = (
            f'<details class="problems"><summary>{_count(len(problems), "line")} not read</summary>'
            f"<ul>{items}</ul></details>"
        )
    legend = (
        '<p class="legend">Values found in the source are <mark class="ev found">highlighted</mark> '
        '(<mark class="ev partial">partial or fuzzy</mark> matches differ); values not found are flagged '
        "\u2691. Hover or click a value to see where it was found.</p>"
    )
    title = _e(out) + (f" + {_e(errors)}" if errors else "")
    empty = "" if total else '<p class="legend">No records.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>review: {_e(out)}</title><style>{STYLE}</style></head>\n"
        f'<body data-filter="all"><header><h1>review: {title}</h1><nav>{nav}</nav>'
        f'<span id="shown">{total} records</span></header>\n{listed}{legend}{empty}\n'
    )


#: the page after its last record
PAGE_END: Final = f"<script>{SCRIPT}</script></body></html>\n"


def render_page(page: ReviewPage) -> str:
    """The whole page's HTML (`write_review` writes the same, record by record)."""
    head = page_head(page.out, page.errors, (len(page.records), page.failed, page.unsupported), page.problems)
    return head + "".join(record_html(r) + "\n" for r in page.records) + PAGE_END
