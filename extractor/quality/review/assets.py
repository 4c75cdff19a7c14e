"""The page's inline style and script (no network: no CDN, no external font).

The script filters records by the URL hash (`#all`, `#failed`, `#unsupported`, `#todo`, `#disagree`,
applied on load and on every hash change; a filter that leaves no record says so) and highlights
values: hovering a value (or a mark) outlines its marks (or its values); clicking a value marks its
spans `active`, scrolls the first into view and records it in the hash (`#all&v=r3v1`), so a link (or
a test loading the page) can open with a value selected. Nothing from the records is ever read as
HTML: keys from the hash are checked against `r<n>v<n>`.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPT", "STYLE"]

STYLE: Final = """
:root{--found:#fde68a;--partial:#fed7aa;--active:#f59e0b;--missing:#b91c1c;--ok:#10b981}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2937;background:#f3f4f6}
header{position:sticky;top:0;z-index:2;background:#111827;color:#f9fafb;padding:.6rem 1rem;display:flex;
 gap:1rem;align-items:center;flex-wrap:wrap}
header h1{font-size:1rem;margin:0;word-break:break-all}
nav{display:flex;gap:.4rem}
nav a{color:#e5e7eb;padding:.15rem .6rem;border-radius:4px;text-decoration:none;border:1px solid #4b5563}
nav a[aria-current=true]{background:#f9fafb;color:#111827}
#shown{color:#9ca3af;font-size:.85rem}
.problems{margin:1rem;padding:.5rem 1rem;background:#fff7ed;border:1px solid #fdba74;border-radius:6px}
.legend{margin:.6rem 1rem 0;color:#4b5563;font-size:.85rem}
.legend mark{padding:0 .3rem}
section.record{background:#fff;margin:1rem;border-radius:6px;border-left:5px solid var(--ok);
 box-shadow:0 1px 2px rgba(0,0,0,.08);content-visibility:auto;contain-intrinsic-size:auto 480px}
section.record.unsupported{border-left-color:var(--active)}
section.record.failed{border-left-color:var(--missing)}
.head{padding:.5rem 1rem;border-bottom:1px solid #e5e7eb}
.head h2{font-size:1rem;margin:0;word-break:break-all}
.rid,.src{unicode-bidi:isolate}
.head .src{color:#6b7280;font-weight:normal;font-size:.85rem;margin-left:.5rem}
.badge{display:inline-block;font-size:.75rem;padding:0 .45rem;border-radius:9px;margin:.2rem .3rem 0 0;
 background:#e5e7eb}
.badge.fail{background:var(--missing);color:#fff}
.badge.warn{background:var(--active);color:#111827}
.badge.info{background:#dbeafe}
.details{color:#6b7280;font-size:.8rem}
.error{color:var(--missing);white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;
 margin:0;padding:.5rem 1rem;border-bottom:1px solid #e5e7eb}
.cols{display:grid;grid-template-columns:minmax(16rem,2fr) 3fr}
.cols.one{grid-template-columns:1fr}
.values{overflow:auto;max-height:70vh;border-right:1px solid #e5e7eb}
table{border-collapse:collapse;width:100%}
td{padding:.2rem .5rem;vertical-align:top;border-bottom:1px solid #f3f4f6}
td.path{font-family:ui-monospace,monospace;font-size:.8rem;color:#6b7280;word-break:break-all}
td.val{unicode-bidi:isolate;overflow-wrap:break-word;white-space:pre-wrap}
td.st{font-size:.75rem;white-space:nowrap;color:#4b5563}
tr.v{cursor:pointer}
tr.v:hover,tr.v.hover{background:#fef3c7}
tr.v.active{background:var(--found);outline:2px solid var(--active)}
tr.missing td.val{color:var(--missing);text-decoration:underline wavy var(--missing)}
tr.missing td.st{color:var(--missing);font-weight:600}
tr.partial td.st,tr.fuzzy td.st{color:#b45309}
tr.skipped td.val{color:#9ca3af}
.conflicts{margin:.5rem;font-size:.8rem}
.conflicts li{word-break:break-word}
.source{overflow:auto;max-height:70vh;padding:.5rem 1rem}
.origin,.note{color:#6b7280;font-size:.8rem;margin:.2rem 0}
.note{font-style:italic}
pre.text{white-space:pre-wrap;word-break:break-word;margin:0;
 font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
mark.ev{background:var(--found);color:inherit;border-radius:2px;cursor:pointer}
mark.ev.partial,mark.ev.fuzzy{background:var(--partial)}
mark.ev.hover{outline:2px solid var(--active)}
mark.ev.active{background:var(--active);color:#000}
.pg{display:block;border-top:1px dashed #9ca3af;color:#6b7280;font-size:.75rem;margin:.4rem 0}
.pg::before{content:"page " attr(data-page)}
@media (max-width:900px){.cols{grid-template-columns:1fr}.values{border-right:0}}
"""

SCRIPT: Final = """
(function () {
  "use strict";
  var FILTERS = ["all", "failed", "unsupported", "todo", "disagree"];
  var NONE = {failed: "No failed records.", unsupported: "No record has values not found in the source.",
    todo: "Every record is reviewed.", disagree: "OUT agrees with every gold label."};
  var KEY = /^r[0-9]+v[0-9]+$/;
  var records = Array.prototype.slice.call(document.querySelectorAll("section.record"));
  var current = "all";
  function each(selector, fn) { Array.prototype.forEach.call(document.querySelectorAll(selector), fn); }
  function parse() {
    var parts = location.hash.replace(/^#/, "").split("&");
    var out = {filter: FILTERS.indexOf(parts[0]) >= 0 ? parts[0] : "all", value: null};
    parts.slice(1).forEach(function (p) {
      if (p.slice(0, 2) === "v=" && KEY.test(p.slice(2))) { out.value = p.slice(2); }
    });
    return out;
  }
  function filter(name) {
    var shown = 0;
    current = name;
    records.forEach(function (r) {
      var keep = name === "all" || r.getAttribute("data-" + name) === "1";
      r.hidden = !keep;
      if (keep) { shown += 1; }
    });
    each("nav a[data-filter]", function (a) {
      a.setAttribute("aria-current", a.getAttribute("data-filter") === name ? "true" : "false");
    });
    var counter = document.getElementById("shown");
    if (counter) { counter.textContent = shown + " of " + records.length + " records shown"; }
    var none = document.getElementById("none");
    if (none) {
      none.hidden = shown > 0 || !NONE[name];
      none.textContent = NONE[name] || "";
    }
    document.body.setAttribute("data-filter", name);
  }
  function light(keys, cls) {
    each("." + cls, function (e) { e.classList.remove(cls); });
    keys.forEach(function (k) {
      if (KEY.test(k)) { each('[data-v~="' + k + '"]', function (e) { e.classList.add(cls); }); }
    });
  }
  function select(key, scroll) {
    light([key], "active");
    var first = document.querySelector('mark[data-v~="' + key + '"]');
    if (scroll && first) { first.scrollIntoView({block: "center"}); }
  }
  function pick(row) {
    var key = row.getAttribute("data-key");
    select(key, true);
    try { history.replaceState(null, "", "#" + current + "&v=" + key); } catch (e) { /* file: URLs */ }
  }
  function keysOf(el) {
    return (el.getAttribute("data-key") || el.getAttribute("data-v") || "").split(" ");
  }
  document.addEventListener("click", function (ev) {
    var row = ev.target.closest("tr[data-key]");
    if (row) { pick(row); return; }
    var mark = ev.target.closest("mark[data-v]");
    if (mark) {
      var keys = keysOf(mark);
      select(keys[0], false);
      var first = document.querySelector('tr[data-key="' + keys[0] + '"]');
      if (first) { first.scrollIntoView({block: "nearest"}); }
    }
  });
  document.addEventListener("keydown", function (ev) {
    var row = ev.target.closest && ev.target.closest("tr[data-key]");
    if (row && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); pick(row); }
  });
  document.addEventListener("mouseover", function (ev) {
    var el = ev.target.closest("tr[data-key], mark[data-v]");
    light(el ? keysOf(el) : [], "hover");
  });
  window.addEventListener("hashchange", function () {
    var h = parse();
    filter(h.filter);
    if (h.value) { select(h.value, true); }
  });
  var start = parse();
  filter(start.filter);
  if (start.value) { select(start.value, true); }
  document.body.setAttribute("data-ready", "1");
})();
"""
