"""The review page as one self-contained HTML file: inline style and script, nothing fetched.

Every value, id, path, message and source text is escaped (`html.escape`); the page's Content
Security Policy allows only its own style and script (by hash) and no network, so even markup that
got through could neither run nor load anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any, Final

from .assets import SCRIPT, STYLE
from .editing import EDIT_SCRIPT, EDIT_STYLE, KEYS_HELP
from .labels import RecordLabels, place_key
from .model import RecordView, ReviewPage, ValueView

__all__ = ["PAGE_END", "page_head", "record_html", "render_page"]

_DOT = " \u00b7 "
_STATUS_TEXT = {
    "found": "",
    "partial": "partial: inside a longer token",
    "fuzzy": "fuzzy",
    "weak": "weak: 1-2 digits, no support",
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


def _json(value: Any) -> str:
    """A JSON value for an attribute (escaped there) or a data block (`<` escaped: no `</script>`)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _disagreement(kind: str, gold: Any) -> str:
    said = "null" if gold is None else gold if isinstance(gold, str) else _json(gold)
    return f'<span class="dis" title="where OUT disagrees with the gold labels">{_e(kind)}: gold {_e(said)}</span>'


def _value_row(value: ValueView, disagree: tuple[str, Any] | None = None) -> str:
    conflict = ""
    if value.conflict:
        offered = "; ".join(_offered(chunk, shown) for chunk, shown in value.conflict)
        conflict = f' <span class="badge warn" title="{_e(offered)}">chunks disagreed</span>'
    status = value.status if not (value.status == "unchecked" and value.flagged) else "missing"
    said = _disagreement(*disagree) if disagree is not None else ""
    return (
        f'<tr class="v {status}" data-key="{value.key}" data-v="{value.key}" data-p="{_e(place_key(value.at))}" '
        f'tabindex="0"><td class="path">{_e(value.path)}</td><td class="val">{_e(value.shown)}{conflict}</td>'
        f'<td class="st">{_e(_status(value))}{said}</td><td class="act"></td></tr>'
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


def _badges(record: RecordView, labels: RecordLabels | None) -> str:
    out: list[str] = []
    if record.failed:
        out.append(f'<span class="badge fail">failed: {_e(record.error_type)}</span>')
    missing = len(record.missing)
    if missing:
        out.append(f'<span class="badge warn">{missing} not found in the source</span>')
    weak = len(record.weak)
    if weak:
        matches = "1 weak match" if weak == 1 else f"{weak} weak matches"
        out.append(
            '<span class="badge weak" title="numbers found only as one or two digits, which most texts hold by '
            f'chance: no support">{matches}</span>'
        )
    if labels is not None and labels.disagreements:
        out.append(f'<span class="badge disagree">OUT disagrees with gold: {labels.disagreements}</span>')
    if record.repairs:
        kinds = ", ".join(f"{kind} \u00d7{count}" for kind, count in record.repairs.items())
        out.append(f'<span class="badge info">repaired: {_e(kinds)}</span>')
    if record.conflicts:
        out.append(f'<span class="badge warn">{_count(len(record.conflicts), "conflict")} between chunks</span>')
    if record.details:
        out.append(f'<span class="details">{_e(_DOT.join(record.details))}</span>')
    return "".join(out)


def digest(data: Any) -> str:
    """A short digest of a record's data: the page's saved work applies to the record only while it holds
    the same data."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _error_text(record: RecordView) -> str:
    """The error message once: without the type the badge shows when it starts with it."""
    message = (record.error_message or "").strip()
    kind = record.error_type or ""
    if message == kind:
        return ""
    return message[len(kind) + 1 :].lstrip() if kind and message.startswith(kind + ":") else message


def record_html(record: RecordView, labels: RecordLabels | None = None) -> str:
    """One record's `<section>` (with the gold labels' work and disagreements, when given)."""
    kind = "failed" if record.failed else "unsupported" if record.unsupported else "ok"
    source = "" if record.source == record.id else f'<span class="src">{_e(record.source)}</span>'
    work = f' data-gold="{_e(_json(labels.state))}"' if labels is not None else ""
    if labels is not None and labels.disagreements:
        work += ' data-disagree="1"'
    data = "" if record.failed else f' data-h="{digest(record.data)}" data-json="{_e(_json(record.data))}"'
    parts = [
        f'<section class="record {kind}" id="r{record.index}" data-failed="{int(record.failed)}" '
        f'data-unsupported="{int(record.unsupported)}" data-id="{_e(record.id)}" data-n="{len(record.values)}"'
        f"{data}{work}>",
        f'<div class="head"><h2><span class="rid">{_e(record.id)}</span>{source}</h2>'
        f"{_badges(record, labels)}{_tools(record)}</div>",
    ]
    if record.failed:
        message = _error_text(record)
        if message:
            parts.append(f'<pre class="error">{_e(message)}</pre>')
        parts.append(f'<div class="cols one">{_source(record)}</div>')
    else:
        disagree = labels.disagree if labels is not None else {}
        rows = "".join(_value_row(v, disagree.get(i)) for i, v in enumerate(record.values))
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


#: each record's buttons (the page's script handles them); a failure can only be marked unusable
_REST: Final = (
    '<button type="button" data-do="rest" title="accept every value not reviewed yet (A)">accept the rest</button>'
)
_BAD: Final = '<button type="button" data-do="bad" title="a bad scan, no labels (u)">unusable</button>'


def _tools(record: RecordView) -> str:
    return f'<span class="tools">{"" if record.failed else _REST}{_BAD}<span class="done"></span></span>'


_STYLES: Final = STYLE + EDIT_STYLE


def page_head(
    out: str,
    errors: str | None,
    counts: tuple[int, int, int],
    problems: list[str],
    *,
    config: dict[str, Any] | None = None,
    disagreeing: int | None = None,
) -> str:
    """The page up to its first record: title, filters with `(total, failed, unsupported)` counts (and
    the records disagreeing with the gold labels, when given), the review's progress and export, the
    lines that could not be read, the legend. `config` is the page script's: the run's key, the
    schema, GOLD lines carried."""
    total, failed, unsupported = counts
    scripts = f"{_digest(EDIT_SCRIPT)} {_digest(SCRIPT)}"
    policy = f"default-src 'none'; style-src {_digest(_STYLES)}; script-src {scripts}; img-src data:"
    filters = [
        ("all", "All", total),
        ("failed", "Failed", failed),
        ("unsupported", "Unsupported", unsupported),
        ("todo", "To review", None),
    ]
    if disagreeing is not None:
        filters.append(("disagree", "Disagree with gold", disagreeing))
    nav = "".join(
        f'<a href="#{name}" data-filter="{name}">{label}{"" if count is None else f" ({count})"}</a>'
        for name, label, count in filters
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
        '(<mark class="ev partial">partial or fuzzy</mark> matches differ; <mark class="ev weak">weak</mark> '
        "ones are one- or two-digit numbers, found by chance as often as not: no support); values not found "
        "are flagged \u2691. Hover or click a value to see where it was found.</p>"
        f'<p class="legend keys">{KEYS_HELP}</p>'
    )
    title = _e(out) + (f" + {_e(errors)}" if errors else "")
    empty = "" if total else '<p class="legend">No records.</p>'
    settings = _json(config or {})
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>review: {_e(out)}</title><style>{_STYLES}</style></head>\n"
        f'<body data-filter="all"><header><h1>review: {title}</h1><nav>{nav}</nav>'
        f'<span id="shown">{total} records</span><span id="progress"></span>'
        '<button type="button" id="export" title="download the labels as gold.jsonl (no network)">'
        "export gold.jsonl</button></header>\n"
        f'<script type="application/json" id="review-config">{settings}</script>\n'
        f'<p id="message" role="status" hidden></p>{listed}{legend}{empty}'
        '<p class="legend" id="none" hidden></p>\n'
    )


#: the page after its last record: the editing script first, then the one that filters and sets ready
PAGE_END: Final = f"<script>{EDIT_SCRIPT}</script><script>{SCRIPT}</script></body></html>\n"


def render_page(page: ReviewPage) -> str:
    """The whole page's HTML (`write_review` writes the same, record by record)."""
    labels = page.labels
    head = page_head(
        page.out,
        page.errors,
        (len(page.records), page.failed, page.unsupported),
        page.problems,
        config=page.config,
        disagreeing=None if labels is None else sum(bool(r.disagreements) for r in labels.records.values()),
    )
    found = labels.records if labels is not None else {}
    return head + "".join(record_html(r, found.get(r.id)) + "\n" for r in page.records) + PAGE_END
