"""The page's labelling: accept, correct or strike each value, remove and add list items, mark records
unusable, and export the labels as `gold.jsonl`, all in the page (no server, no network).

What the script keeps for each record (its *work*, also what `labels.gold_labels` makes from a GOLD
file): `d`, a decision per value (by its index in the record: 1 accepted, 0 not in the source,
`["v", value]` corrected); `rm`, the list items removed (by their place, a JSON array); `add`, the
items added to each list (`{"v": item, "d": {leaf: 1} or 1}`: reviewed leaves); `ex`, values GOLD has
where OUT has no key; `bad`, the record is unusable. The work is saved in `localStorage` as it is made,
under the page's run (`extractor-review:<run>`), each record's with a digest of its data: reopened, the
page restores a record's work only while OUT still holds the same data for it (a new run's changed
records are reviewed afresh; the old work is kept aside, not applied).

Inputs are typed by the schema when the page has one (`--schema`): an enum's choices in a list, a
number checked as one (a whole number where the schema says integer), a date as a date input, other
strings as text, anything else as JSON; a null box where null is allowed. Without a schema a value
keeps its type. "Not in the source" makes a value null where the schema allows it, else drops an
optional key or a list element; a required value that cannot be null must be corrected instead.

The export writes `{"id", "data"}` for each record whose values are all reviewed (its data: OUT's,
with the work applied), `{"id", "unusable": true}` for each unusable one, and the GOLD lines the page
carries (their records are not on it) as they were. With a schema, every record's data is checked
against it first (types, enums, consts, numbers' and strings' bounds, patterns, lists, objects,
`anyOf`/`oneOf`/`allOf`/`not`, `$ref`, and the `date`, `date-time`, `time` and `email` formats); a
record that fails is named and nothing is exported until it is fixed. Partly reviewed records are left
out, and counted.

The keys (`KEYS_HELP`) act on the current value (clicked, or reached with j/k); `window.extractorReview`
exposes the labels for scripts and tests (`goldText()`, `goldLines()`, `validate(schema, value)`,
`acceptAll()`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["EDIT_SCRIPT", "EDIT_STYLE", "KEYS_HELP"]

#: the keys, as the page lists them
KEYS_HELP: Final = (
    "Keys: <kbd>j</kbd>/<kbd>k</kbd> (or \u2193/\u2191) next/previous value \u00b7 <kbd>a</kbd> or "
    "<kbd>Enter</kbd> accept \u00b7 <kbd>e</kbd> edit (<kbd>Enter</kbd> saves, <kbd>Esc</kbd> cancels) \u00b7 "
    "<kbd>n</kbd> not in the source \u00b7 <kbd>x</kbd> remove the list item (again: restore) \u00b7 "
    "<kbd>+</kbd> add a list item \u00b7 <kbd>A</kbd> accept the rest of the record \u00b7 <kbd>u</kbd> "
    "record unusable \u00b7 <kbd>z</kbd> undo \u00b7 <kbd>.</kbd> next value to review. Your work is kept in "
    "this browser; <strong>export gold.jsonl</strong> for <code>extractor eval</code>."
)

EDIT_STYLE: Final = """
header #progress{color:#d1d5db;font-size:.85rem}
header button,.tools button,.rowtools button{font:inherit;font-size:.8rem;padding:.05rem .5rem;border-radius:4px;
 border:1px solid #9ca3af;background:#f9fafb;color:#111827;cursor:pointer}
#message{margin:.6rem 1rem 0;padding:.4rem .8rem;border-radius:6px;background:#ecfdf5;border:1px solid #6ee7b7;
 white-space:pre-wrap}
#message.warn{background:#fef2f2;border-color:#fca5a5}
.legend.keys kbd{font:11px ui-monospace,monospace;border:1px solid #9ca3af;border-radius:3px;padding:0 .25rem;
 background:#fff}
.tools{margin-left:.3rem;white-space:nowrap}
.tools button{margin-left:.3rem}
.tools .done{color:#6b7280;font-size:.8rem;margin-left:.5rem}
td.val{min-width:8rem}
td.st{white-space:normal;min-width:5rem;width:7rem}
td.act{font-size:.8rem;overflow-wrap:break-word;width:6.5rem}
tr.v.cur{outline:2px solid #2563eb;outline-offset:-2px}
tr.v.ok td.act{color:#047857}
tr.v.fix td.val,tr.v.none td.val{text-decoration:line-through;color:#6b7280}
tr.v.fix td.act{color:#1d4ed8;font-weight:600;white-space:pre-wrap}
tr.v.none td.act{color:#7c2d12}
tr.v.gone td{opacity:.45;text-decoration:line-through}
tr.nv td.path{color:#1d4ed8}
section.record.bad .cols{opacity:.45}
.badge.weak{background:#fef3c7}
.badge.disagree{background:#fb923c;color:#111827}
.dis{display:block;color:#7c2d12;background:#ffedd5;border-radius:3px;padding:0 .3rem;margin-top:.1rem;
 overflow-wrap:break-word}
mark.ev.weak{background:transparent;border-bottom:2px dotted #b45309}
tr.weak td.st{color:#b45309}
.editor{display:block;min-width:10rem}
.editor input,.editor select,.editor textarea{font:inherit;width:100%}
.editor textarea{min-height:4rem}
.editor .err{color:#b91c1c;display:block;white-space:normal}
.editor label{font-size:.75rem;margin-right:.5rem}
.rowtools{display:block;margin-top:.15rem;white-space:nowrap}
.rowtools button{padding:0 .35rem;margin-right:.15rem}
"""

EDIT_SCRIPT: Final = r"""
(function () {
  "use strict";
  var cfg = {};
  try { cfg = JSON.parse(document.getElementById("review-config").textContent || "{}") || {}; } catch (e) { cfg = {}; }
  var schema = cfg.schema === undefined ? null : cfg.schema;
  var STORE = "extractor-review:" + (cfg.run || "page");
  var NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
  var own = Object.prototype.hasOwnProperty;
  var recs = [];
  var history = [];
  var cur = null;
  var editing = null;
  var saved = {version: 1, records: {}};
  var warnedSave = false;

  // --- JSON values ---------------------------------------------------------------------------
  function clone(v) { return v === undefined ? undefined : JSON.parse(JSON.stringify(v)); }
  function canon(v) {
    if (Array.isArray(v)) { return "[" + v.map(canon).join(",") + "]"; }
    if (v !== null && typeof v === "object") {
      return "{" + Object.keys(v).sort().map(function (k) {
        return JSON.stringify(k) + ":" + canon(v[k]);
      }).join(",") + "}";
    }
    return JSON.stringify(v);
  }
  function same(a, b) { return canon(a) === canon(b); }
  function keyOf(place) { return JSON.stringify(place); }
  function norm(key) { try { return JSON.stringify(JSON.parse(key)); } catch (e) { return key; } }
  function typeOf(v) {
    if (v === null) { return "null"; }
    if (Array.isArray(v)) { return "array"; }
    if (typeof v === "number") { return Number.isInteger(v) ? "integer" : "number"; }
    return typeof v;
  }
  function show(v) { return typeof v === "string" ? v : JSON.stringify(v); }
  function put(obj, key, value) {
    if (key === "__proto__") {
      Object.defineProperty(obj, key, {value: value, writable: true, enumerable: true, configurable: true});
    }
    else { obj[key] = value; }
  }
  function getAt(data, place) {
    for (var i = 0; i < place.length; i++) {
      if (data === null || typeof data !== "object" || !own.call(data, place[i])) { return undefined; }
      data = data[place[i]];
    }
    return data;
  }
  function setAt(data, place, value) {
    if (!place.length) { return value; }
    if (data === null || typeof data !== "object") { data = typeof place[0] === "number" ? [] : {}; }
    var node = data;
    for (var i = 0; i < place.length - 1; i++) {
      var next = own.call(node, place[i]) ? node[place[i]] : undefined;
      if (next === null || typeof next !== "object") {
        next = typeof place[i + 1] === "number" ? [] : {};
        put(node, place[i], next);
      }
      node = next;
    }
    put(node, place[place.length - 1], value);
    return data;
  }
  function leavesOf(v, place, out) {
    place = place || [];
    out = out || [];
    if (Array.isArray(v) && v.length) { v.forEach(function (x, i) { leavesOf(x, place.concat([i]), out); }); }
    else if (v !== null && typeof v === "object" && Object.keys(v).length) {
      Object.keys(v).forEach(function (k) { leavesOf(v[k], place.concat([k]), out); });
    } else { out.push(place); }
    return out;
  }
  function pathText(place) {
    return "$" + place.map(function (p) {
      if (typeof p === "number") { return "[" + p + "]"; }
      if (typeof p === "string" && p.charAt(0) === "+") { return "[" + p + "]"; }
      return /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? "." + p : "[" + JSON.stringify(p) + "]";
    }).join("");
  }

  // --- the schema ----------------------------------------------------------------------------
  function pointer(ref) {
    if (typeof ref !== "string" || ref.charAt(0) !== "#") { return undefined; }
    var node = schema;
    var parts = ref.slice(1).split("/").slice(1);
    for (var i = 0; i < parts.length; i++) {
      var part;
      try { part = decodeURIComponent(parts[i]); } catch (e) { part = parts[i]; }
      part = part.replace(/~1/g, "/").replace(/~0/g, "~");
      if (node === null || typeof node !== "object" || !own.call(node, part)) { return undefined; }
      node = node[part];
    }
    return node;
  }
  function resolve(s) {
    for (var n = 0; n < 64 && s !== null && typeof s === "object" && typeof s.$ref === "string"; n++) {
      var target = pointer(s.$ref);
      if (target === undefined) { return true; }  // out of reach: not checked
      var rest = {};
      var more = false;
      Object.keys(s).forEach(function (k) { if (k !== "$ref") { rest[k] = s[k]; more = true; } });
      s = more ? {allOf: [target, rest]} : target;
    }
    return s;
  }
  function both(ta, tb) {
    var out = [];
    ta.forEach(function (t) {
      var u = tb.indexOf(t) >= 0 ? t : (t === "number" && tb.indexOf("integer") >= 0) ||
        (t === "integer" && tb.indexOf("number") >= 0) ? "integer" : null;
      if (u && out.indexOf(u) < 0) { out.push(u); }
    });
    return out;
  }
  function merge(a, b) {
    var m = Object.assign({}, b, a);
    if (a.properties && b.properties) { m.properties = Object.assign({}, b.properties, a.properties); }
    if (a.required || b.required) { m.required = (a.required || []).concat(b.required || []); }
    if (a.type !== undefined && b.type !== undefined) { m.type = both([].concat(a.type), [].concat(b.type)); }
    return m;
  }
  function branches(s, depth) {
    depth = depth || 0;
    s = resolve(s);
    if (s === undefined || s === true || s === null || typeof s !== "object" || depth > 32) { return [{}]; }
    if (s === false) { return []; }
    var base = {};
    Object.keys(s).forEach(function (k) { if (k !== "anyOf" && k !== "oneOf" && k !== "allOf") { base[k] = s[k]; } });
    var out = [base];
    function cross(list) {
      var next = [];
      list.forEach(function (part) {
        branches(part, depth + 1).forEach(function (b) { out.forEach(function (o) { next.push(merge(o, b)); }); });
      });
      return next;
    }
    if (Array.isArray(s.allOf)) { s.allOf.forEach(function (part) { out = cross([part]); }); }
    var alternatives = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : null;
    if (alternatives) { out = cross(alternatives); }
    return out;
  }
  function valuesOf(b) { return own.call(b, "const") ? [b.const] : Array.isArray(b.enum) ? b.enum : null; }
  function typesOf(b) {
    if (b.type !== undefined) { return [].concat(b.type); }
    var values = valuesOf(b);
    if (values) { return values.map(function (v) { return typeOf(v) === "integer" ? "integer" : typeOf(v); }); }
    if (b.properties || b.additionalProperties !== undefined || b.required) { return ["object"]; }
    if (b.items !== undefined || b.prefixItems) { return ["array"]; }
    return null;
  }
  function info(bs) {
    var types = {};
    var any = !bs.length;
    var choices = [];
    var closed = bs.length > 0;
    var format = null;
    bs.forEach(function (b) {
      var ts = typesOf(b);
      if (ts === null) { any = true; } else { ts.forEach(function (t) { types[t] = true; }); }
      var values = valuesOf(b);
      if (values) {
        values.forEach(function (v) { if (!choices.some(function (c) { return same(c, v); })) { choices.push(v); } });
      } else if (!(ts && ts.length === 1 && ts[0] === "null")) { closed = false; }
      if (!format && typeof b.format === "string") { format = b.format; }
    });
    function allows(t) { return any || !!types[t] || (t === "integer" && !!types.number); }
    return {any: any, types: types, allows: allows, nullable: allows("null"), format: format,
      choices: closed ? choices.filter(function (c) { return c !== null; }) : null};
  }
  function childBranches(bs, part) {
    var out = [];
    bs.forEach(function (b) {
      var ts = typesOf(b);
      var raw;
      if (typeof part === "number") {
        if (ts && ts.indexOf("array") < 0) { return; }
        if (Array.isArray(b.prefixItems) && part < b.prefixItems.length) { raw = b.prefixItems[part]; }
        else if (Array.isArray(b.items)) { raw = part < b.items.length ? b.items[part] : b.additionalItems; }
        else { raw = b.items; }
      } else {
        if (ts && ts.indexOf("object") < 0) { return; }
        if (b.properties && own.call(b.properties, part)) { raw = b.properties[part]; }
        else if (b.additionalProperties === false) { return; }
        else { raw = b.additionalProperties; }
      }
      out = out.concat(branches(raw === undefined ? true : raw));
    });
    return out.length ? out : [{}];
  }
  function nodeAt(place) {
    var bs = branches(schema === null ? true : schema);
    place.forEach(function (p) { bs = childBranches(bs, typeof p === "string" && p.charAt(0) === "+" ? 0 : p); });
    return bs;
  }
  function required(place) {
    var last = place[place.length - 1];
    if (schema === null || typeof last !== "string") { return false; }
    var parents = nodeAt(place.slice(0, -1)).filter(function (b) {
      var ts = typesOf(b);
      return !ts || ts.indexOf("object") >= 0;
    });
    return parents.length > 0 && parents.every(function (b) {
      return Array.isArray(b.required) && b.required.indexOf(last) >= 0;
    });
  }
  function blank(bs, depth) {
    var i = info(bs);
    if (depth > 8 || i.any || i.choices) { return null; }
    if (i.types.object) {
      var out = {};
      bs.forEach(function (b) {
        Object.keys(b.properties || {}).forEach(function (k) {
          if (!own.call(out, k)) { put(out, k, blank(childBranches(bs, k), depth + 1)); }
        });
      });
      return out;
    }
    return i.types.array ? [] : null;
  }

  // --- checking a value against the schema -----------------------------------------------------
  var patterns = {};
  function regex(p) {
    if (!own.call(patterns, p)) {
      try { patterns[p] = new RegExp(p, "u"); } catch (e) {
        try { patterns[p] = new RegExp(p); } catch (e2) { patterns[p] = null; }
      }
    }
    return patterns[p];
  }
  function isDate(v) {
    var m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(v);
    if (!m) { return false; }
    var y = +m[1], mo = +m[2], d = +m[3];
    var leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
    return mo >= 1 && mo <= 12 && d >= 1 && d <= [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  }
  function isTime(v) {
    var m = /^([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(z|[+-]([0-9]{2}):([0-9]{2}))$/i.exec(v);
    return !!m && +m[1] <= 23 && +m[2] <= 59 && +m[3] <= 60 && (m[6] === undefined || (+m[6] <= 23 && +m[7] <= 59));
  }
  var FORMATS = {
    "date": isDate,
    "time": isTime,
    "date-time": function (v) { var m = /^([^tT]*)[tT](.*)$/.exec(v); return !!m && isDate(m[1]) && isTime(m[2]); },
    "email": function (v) { return v.indexOf("@") >= 0; }
  };
  function an(t) { return (/^[aeiou]/.test(t) ? "an " : "a ") + t; }
  function alternatives(list, v, path, errs, depth, exactlyOne) {
    var valid = 0;
    var best = null;
    list.forEach(function (alt) {
      var e = [];
      check(alt, v, path, e, depth + 1);
      if (!e.length) { valid += 1; } else if (best === null || e.length < best.length) { best = e; }
    });
    if (exactlyOne && valid > 1) { errs.push([path, "matches more than one of its alternatives (oneOf)"]); }
    else if (!valid) { Array.prototype.push.apply(errs, best || [[path, "matches none of its alternatives"]]); }
  }
  function check(s, v, path, errs, depth) {
    if (depth > 64) { return; }
    s = resolve(s);
    if (s === true || s === undefined || s === null || typeof s !== "object") {
      if (s === false) { errs.push([path, "is not allowed here"]); }
      return;
    }
    var t = typeOf(v);
    if (s.type !== undefined) {
      var ts = [].concat(s.type);
      if (!ts.some(function (x) { return x === t || (x === "number" && t === "integer"); })) {
        errs.push([path, "is " + an(t === "integer" ? "number" : t) + ", not " + ts.join(" or ")]);
        return;
      }
    }
    if (Array.isArray(s.enum) && !s.enum.some(function (e) { return same(e, v); })) {
      errs.push([path, "is not one of " + s.enum.map(show).join(", ")]);
    }
    if (own.call(s, "const") && !same(s.const, v)) { errs.push([path, "is not " + show(s.const)]); }
    if (t === "number" || t === "integer") {
      if (typeof s.minimum === "number" && (s.exclusiveMinimum === true ? v <= s.minimum : v < s.minimum)) {
        errs.push([path, "is below " + s.minimum]);
      }
      if (typeof s.maximum === "number" && (s.exclusiveMaximum === true ? v >= s.maximum : v > s.maximum)) {
        errs.push([path, "is above " + s.maximum]);
      }
      if (typeof s.exclusiveMinimum === "number" && v <= s.exclusiveMinimum) {
        errs.push([path, "is not above " + s.exclusiveMinimum]);
      }
      if (typeof s.exclusiveMaximum === "number" && v >= s.exclusiveMaximum) {
        errs.push([path, "is not below " + s.exclusiveMaximum]);
      }
      if (typeof s.multipleOf === "number" && s.multipleOf > 0) {  // as jsonschema computes it
        var q = v / s.multipleOf;
        if (Number.isInteger(s.multipleOf) ? v % s.multipleOf !== 0 : Math.trunc(q) !== q) {
          errs.push([path, "is not a multiple of " + s.multipleOf]);
        }
      }
    } else if (t === "string") {
      var n = Array.from(v).length;
      if (typeof s.minLength === "number" && n < s.minLength) {
        errs.push([path, "is shorter than " + s.minLength + " characters"]);
      }
      if (typeof s.maxLength === "number" && n > s.maxLength) {
        errs.push([path, "is longer than " + s.maxLength + " characters"]);
      }
      if (typeof s.pattern === "string") {
        var re = regex(s.pattern);
        if (re && !re.test(v)) { errs.push([path, "does not match the pattern " + s.pattern]); }
      }
      if (typeof s.format === "string" && own.call(FORMATS, s.format) && !FORMATS[s.format](v)) {
        errs.push([path, "is not a valid " + s.format]);
      }
    } else if (t === "array") {
      if (typeof s.minItems === "number" && v.length < s.minItems) {
        errs.push([path, "has fewer than " + s.minItems + " items"]);
      }
      if (typeof s.maxItems === "number" && v.length > s.maxItems) {
        errs.push([path, "has more than " + s.maxItems + " items"]);
      }
      if (s.uniqueItems === true) {
        var seen = {};
        v.forEach(function (x, i) {
          var c = canon(x);
          if (own.call(seen, c)) { errs.push([path.concat([i]), "is there twice (uniqueItems)"]); }
          seen[c] = true;
        });
      }
      var prefix = Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : [];
      var rest = Array.isArray(s.prefixItems) ? s.items : Array.isArray(s.items) ? s.additionalItems : s.items;
      v.forEach(function (x, i) {
        var sub = i < prefix.length ? prefix[i] : rest;
        if (sub !== undefined) { check(sub, x, path.concat([i]), errs, depth + 1); }
      });
      var holds = function (x) { var e = []; check(s.contains, x, path, e, depth + 1); return !e.length; };
      if (s.contains !== undefined && !v.some(holds)) {
        errs.push([path, "has no item of the kind it must contain"]);
      }
    } else if (t === "object") {
      (Array.isArray(s.required) ? s.required : []).forEach(function (k) {
        if (!own.call(v, k)) { errs.push([path.concat([k]), "is required"]); }
      });
      var props = s.properties && typeof s.properties === "object" ? s.properties : {};
      var pats = s.patternProperties && typeof s.patternProperties === "object" ? s.patternProperties : {};
      Object.keys(v).forEach(function (k) {
        var matched = false;
        if (own.call(props, k)) { matched = true; check(props[k], v[k], path.concat([k]), errs, depth + 1); }
        Object.keys(pats).forEach(function (p) {
          var re = regex(p);
          if (re && re.test(k)) { matched = true; check(pats[p], v[k], path.concat([k]), errs, depth + 1); }
        });
        if (!matched && s.additionalProperties === false) {
          errs.push([path.concat([k]), "is not a field of the schema"]);
        }
        else if (!matched && s.additionalProperties !== undefined) {
          check(s.additionalProperties, v[k], path.concat([k]), errs, depth + 1);
        }
      });
      var count = Object.keys(v).length;
      if (typeof s.minProperties === "number" && count < s.minProperties) {
        errs.push([path, "has fewer than " + s.minProperties + " fields"]);
      }
      if (typeof s.maxProperties === "number" && count > s.maxProperties) {
        errs.push([path, "has more than " + s.maxProperties + " fields"]);
      }
    }
    if (Array.isArray(s.allOf)) { s.allOf.forEach(function (x) { check(x, v, path, errs, depth + 1); }); }
    if (Array.isArray(s.anyOf)) { alternatives(s.anyOf, v, path, errs, depth, false); }
    if (Array.isArray(s.oneOf)) { alternatives(s.oneOf, v, path, errs, depth, true); }
    if (s.not !== undefined) {
      var e = [];
      check(s.not, v, path, e, depth + 1);
      if (!e.length) { errs.push([path, "is what the schema does not allow (not)"]); }
    }
  }
  function validate(s, v) { var errs = []; check(s, v, [], errs, 0); return errs; }
  function fitsPlace(bs, v) {
    if (schema === null) { return []; }
    var best = null;
    for (var i = 0; i < bs.length; i++) {
      var e = validate(bs[i], v);
      if (!e.length) { return []; }
      if (best === null || e.length < best.length) { best = e; }
    }
    return best || [];
  }

  // --- records and their work ----------------------------------------------------------------
  function emptyWork() { return {d: {}, rm: {}, add: {}, ex: {}, bad: 0}; }
  function readWork(raw) {
    var w = emptyWork();
    if (!raw || typeof raw !== "object") { return w; }
    if (raw.d && typeof raw.d === "object") { Object.keys(raw.d).forEach(function (k) { w.d[k] = raw.d[k]; }); }
    if (raw.rm && typeof raw.rm === "object") { Object.keys(raw.rm).forEach(function (k) { w.rm[norm(k)] = 1; }); }
    if (raw.ex && typeof raw.ex === "object") {
      Object.keys(raw.ex).forEach(function (k) { w.ex[norm(k)] = raw.ex[k]; });
    }
    if (raw.add && typeof raw.add === "object") {
      Object.keys(raw.add).forEach(function (k) {
        if (Array.isArray(raw.add[k]) && raw.add[k].length) {
          w.add[norm(k)] = raw.add[k].map(function (item) { return {v: item.v, d: item.d === 1 ? 1 : item.d || {}}; });
        }
      });
    }
    w.bad = raw.bad ? 1 : 0;
    return w;
  }
  function touched(w) {
    return !!w && (w.bad || Object.keys(w.d).length || Object.keys(w.rm).length || Object.keys(w.add).length ||
      Object.keys(w.ex).length);
  }
  function Rec(el, index) {
    this.el = el;
    this.index = index;
    this.id = el.getAttribute("data-id");
    this.failed = el.getAttribute("data-failed") === "1";
    this.h = el.getAttribute("data-h");
    this.n = +(el.getAttribute("data-n") || 0);
    this.work = null;
    this.tally = {total: this.failed ? 0 : this.n, done: 0};
    this._data = undefined;
    this._places = null;
  }
  Rec.prototype.data = function () {
    if (this._data === undefined) { this._data = JSON.parse(this.el.getAttribute("data-json") || "null"); }
    return this._data;
  };
  Rec.prototype.rows = function () { return this.el.querySelectorAll("tr[data-key]"); };
  Rec.prototype.places = function () {
    if (this._places === null) {
      this._places = Array.prototype.map.call(this.rows(), function (tr) {
        return JSON.parse(tr.getAttribute("data-p"));
      });
    }
    return this._places;
  };
  Rec.prototype.ensure = function () { if (!this.work) { this.work = emptyWork(); } return this.work; };
  function recOf(el) { var s = el.closest("section.record"); return s ? recs[+s.id.slice(1)] : null; }
  function indexOf(tr) { var key = tr.getAttribute("data-key"); return key ? key.slice(key.indexOf("v") + 1) : null; }
  function removedIn(w, place) {
    if (!w || !Object.keys(w.rm).length) { return false; }
    for (var k = 1; k <= place.length; k++) {
      if (typeof place[k - 1] === "number" && own.call(w.rm, keyOf(place.slice(0, k)))) { return true; }
    }
    return false;
  }
  function addedLeaves(item) { return leavesOf(item.v); }
  function count(rec) {
    var w = rec.work;
    var t = {total: rec.failed ? 0 : rec.n, done: 0};
    if (!w) { return t; }
    var extras = Object.keys(w.ex).length;
    var added = 0;
    var addedDone = 0;
    Object.keys(w.add).forEach(function (k) {
      w.add[k].forEach(function (item) {
        var n = addedLeaves(item).length;
        added += n;
        addedDone += item.d === 1 ? n : Math.min(n, Object.keys(item.d).length);
      });
    });
    t.total += extras + added;
    if (w.bad) { t.done = t.total; return t; }
    var places = rec.failed ? [] : rec.places();
    for (var i = 0; i < places.length; i++) {
      if (own.call(w.d, String(i)) || removedIn(w, places[i])) { t.done += 1; }
    }
    t.done += extras + addedDone;
    return t;
  }

  // --- showing the work ----------------------------------------------------------------------
  function actCell(tr) { return tr.querySelector("td.act"); }
  function valueOf(rec, i, place) {
    var d = rec.work ? rec.work.d[i] : undefined;
    if (Array.isArray(d)) { return d[1]; }
    if (d === 0) { return null; }
    return getAt(rec.data(), place);
  }
  function mark(tr, cls, text) {
    ["ok", "fix", "none", "gone"].forEach(function (c) { tr.classList.toggle(c, c === cls); });
    if (editing && editing.tr === tr) { return; }
    var cell = actCell(tr);
    if (cell) { cell.textContent = text; if (tr === cur) { cell.appendChild(rowTools()); } }
  }
  function moreRows(rec) {
    var w = rec.work;
    var table = rec.el.querySelector(".values table");
    if (!table) { return; }
    var body = table.querySelector("tbody.more");
    var wanted = w && !w.bad && (Object.keys(w.add).length || Object.keys(w.ex).length);
    if (!wanted) { if (body) { body.remove(); } return; }
    if (!body) { body = document.createElement("tbody"); body.className = "more"; table.appendChild(body); }
    var keep = cur && body.contains(cur) ? cur.getAttribute("data-m") : null;
    body.textContent = "";
    Object.keys(w.ex).forEach(function (k) {
      body.appendChild(moreRow(rec, {ex: k}, JSON.parse(k), w.ex[k], "in gold only: OUT has no value here", true));
    });
    Object.keys(w.add).forEach(function (k) {
      var list = JSON.parse(k);
      w.add[k].forEach(function (item, n) {
        addedLeaves(item).forEach(function (inner, li) {
          var done = item.d === 1 || own.call(item.d, String(li));
          var place = list.concat(["+" + (n + 1)], inner);
          body.appendChild(moreRow(rec, {add: k, n: n, li: li}, place, getAt(item.v, inner), "added", done));
        });
      });
    });
    if (keep !== null) {
      var again = body.querySelector('tr[data-m="' + keep.replace(/["\\]/g, "\\$&") + '"]');
      if (again) { setCur(again, false); }
    }
  }
  function moreRow(rec, where, place, value, status, done) {
    var tr = document.createElement("tr");
    tr.className = "v nv" + (done ? " ok" : "");
    tr.tabIndex = 0;
    tr.setAttribute("data-m", JSON.stringify(where));
    tr.setAttribute("data-p", JSON.stringify(place));
    [pathText(place), value === undefined ? "" : show(value), status, done ? "\u2713" : ""].forEach(function (text, i) {
      var td = document.createElement("td");
      td.className = ["path", "val", "st", "act"][i];
      td.textContent = text;
      tr.appendChild(td);
    });
    return tr;
  }
  function paint(rec) {
    var w = rec.work;
    rec.el.classList.toggle("bad", !!(w && w.bad));
    if (!rec.failed) {
      var places = rec.places();
      Array.prototype.forEach.call(rec.rows(), function (tr, i) {
        var d = w ? w.d[i] : undefined;
        if (w && w.bad) { mark(tr, "", ""); }
        else if (removedIn(w, places[i])) { mark(tr, "gone", "\u2715 removed"); }
        else if (d === 1) { mark(tr, "ok", "\u2713"); }
        else if (d === 0) { mark(tr, "none", "\u2205 not in the source"); }
        else if (Array.isArray(d)) { mark(tr, "fix", "\u2192 " + show(d[1])); }
        else { mark(tr, "", ""); }
      });
      moreRows(rec);
    }
    var before = rec.tally;
    rec.tally = count(rec);
    totals.total += rec.tally.total - before.total;
    totals.done += rec.tally.done - before.done;
    var wasDone = done(before, rec.failed, before.bad);
    rec.tally.bad = !!(w && w.bad);
    var isDone = done(rec.tally, rec.failed, rec.tally.bad);
    totals.records += (isDone ? 1 : 0) - (wasDone ? 1 : 0);
    totals.unusable += (rec.tally.bad ? 1 : 0) - (before.bad ? 1 : 0);
    rec.el.setAttribute("data-todo", rec.failed || isDone ? "0" : "1");
    var note = rec.el.querySelector(".tools .done");
    if (note) {
      note.textContent = rec.tally.bad ? "unusable" : rec.failed ? "" :
        rec.tally.done + " of " + rec.tally.total + " reviewed";
    }
    var badButton = rec.el.querySelector('.tools button[data-do="bad"]');
    if (badButton) { badButton.textContent = rec.tally.bad ? "usable again" : "unusable"; }
  }
  function done(t, failed, bad) { return bad || (!failed && t.total > 0 && t.done >= t.total); }
  var totals = {total: 0, done: 0, records: 0, unusable: 0, reviewable: 0};
  function showProgress() {
    var el = document.getElementById("progress");
    if (el) {
      el.textContent = totals.done + " of " + totals.total + " values reviewed \u00b7 " + totals.records + " of " +
        recs.length + " records done" + (totals.unusable ? " (" + totals.unusable + " unusable)" : "");
    }
    var todo = document.querySelector('nav a[data-filter="todo"]');
    if (todo) {
      todo.textContent = "To review (" + (totals.reviewable - totals.records + totals.unusableFailed()) + ")";
    }
  }
  totals.unusableFailed = function () {
    var n = 0;
    recs.forEach(function (r) { if (r.failed && r.tally.bad) { n += 1; } });
    return n;
  };
  var message = document.getElementById("message");
  function say(text, warn) {
    if (!message) { return; }
    message.hidden = !text;
    message.textContent = text || "";
    message.classList.toggle("warn", !!warn);
  }

  // --- saving --------------------------------------------------------------------------------
  function save(rec) { remember(rec); flush(); }
  function remember(rec) {
    if (touched(rec.work)) {
      var entry = {h: rec.h || null};
      Object.keys(rec.work).forEach(function (k) { entry[k] = rec.work[k]; });
      saved.records[rec.id] = entry;
    } else if (own.call(saved.records, rec.id)) {
      delete saved.records[rec.id];
    }
  }
  function flush() {
    try {
      localStorage.setItem(STORE, JSON.stringify(saved));
    } catch (e) {
      if (!warnedSave) {
        say("Your work could not be kept in this browser (" + e.name + "): export gold.jsonl now.", true);
      }
      warnedSave = true;
    }
  }
  function change(rec, fn, batch) {
    var before = JSON.stringify(rec.work || emptyWork());
    var result = fn(rec.ensure());
    if (result === false) { return false; }
    history.push({rec: rec, before: before});
    if (history.length > 1000) { history.shift(); }
    paint(rec);
    if (batch) { remember(rec); } else { save(rec); showProgress(); }
    return true;
  }
  function undo() {
    var last = history.pop();
    if (!last) { say("Nothing to undo."); return; }
    closeEditor();
    last.rec.work = readWork(JSON.parse(last.before));
    paint(last.rec);
    save(last.rec);
    showProgress();
    say("Undone (" + last.rec.id + ").");
  }

  // --- moving around -------------------------------------------------------------------------
  function setCur(tr, scroll) {
    if (cur && cur !== tr) {
      cur.classList.remove("cur");
      var old = cur.querySelector(".rowtools");
      if (old) { old.remove(); }
    }
    cur = tr;
    if (!tr) { return; }
    tr.classList.add("cur");
    if (!tr.querySelector(".rowtools") && !(editing && editing.tr === tr)) { actCell(tr).appendChild(rowTools()); }
    if (scroll) {
      if (tr.hasAttribute("data-key")) { tr.click(); }  // highlights its marks in the source (the other script)
      tr.scrollIntoView({block: "nearest"});
      tr.focus({preventScroll: true});
    }
  }
  function rowsIn(rec) { return Array.prototype.slice.call(rec.el.querySelectorAll("tr.v")); }
  function step(by, onlyOpen) {
    var rec = cur ? recOf(cur) : null;
    var r = rec ? rec.index : by > 0 ? -1 : recs.length;
    var rows = rec ? rowsIn(rec) : [];
    var i = rec ? rows.indexOf(cur) : -1;
    if (i < 0 && by < 0) { i = rows.length; }
    for (;;) {
      i += by;
      if (i < 0 || i >= rows.length) {
        r += by;
        while (r >= 0 && r < recs.length && (recs[r].el.hidden || recs[r].failed)) { r += by; }
        if (r < 0 || r >= recs.length) {
          say(onlyOpen ? "No value left to review " + (by > 0 ? "below." : "above.") : "");
          return;
        }
        rows = rowsIn(recs[r]);
        i = by > 0 ? -1 : rows.length;
        continue;
      }
      if (!onlyOpen || !reviewed(rows[i])) { setCur(rows[i], true); return; }
    }
  }
  function reviewed(tr) {
    return ["ok", "fix", "none", "gone"].some(function (c) { return tr.classList.contains(c); }) ||
      tr.closest("section.record").classList.contains("bad");
  }
  function rowTools() {
    var span = document.createElement("span");
    span.className = "rowtools";
    [["a", "\u2713", "accept (a)"], ["e", "\u270e", "edit (e)"], ["n", "\u2205", "not in the source (n)"],
     ["x", "\u2715", "remove the list item (x)"], ["+", "+", "add a list item (+)"]].forEach(function (b) {
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("data-k", b[0]);
      button.title = b[2];
      button.textContent = b[1];
      span.appendChild(button);
    });
    return span;
  }

  // --- acting on a value ---------------------------------------------------------------------
  function where(tr) { var m = tr.getAttribute("data-m"); return m ? JSON.parse(m) : null; }
  function placeOf(tr) { return JSON.parse(tr.getAttribute("data-p")); }
  function innerList(place) {
    for (var k = place.length - 1; k >= 0; k--) {
      if (typeof place[k] === "number" || (typeof place[k] === "string" && place[k].charAt(0) === "+")) { return k; }
    }
    return -1;
  }
  function accept(tr) {
    var rec = recOf(tr);
    var m = where(tr);
    change(rec, function (w) {
      if (m && m.add !== undefined) {
        var item = w.add[m.add][m.n];
        if (item.d !== 1) { item.d[m.li] = 1; }
      } else if (!m) {
        if (removedIn(w, placeOf(tr))) {
          say("This value is in a removed item: x on it restores the item."); return false;
        }
        w.d[indexOf(tr)] = 1;
      }
    });
  }
  function absentHow(place) {
    if (schema === null || info(nodeAt(place)).nullable) { return "null"; }
    var last = place[place.length - 1];
    if (typeof last === "number") { return "remove"; }
    return typeof last === "string" && !required(place) ? "delete" : null;
  }
  function absent(tr) {
    var rec = recOf(tr);
    var m = where(tr);
    var place = placeOf(tr);
    if (m && m.ex !== undefined) { return change(rec, function (w) { delete w.ex[m.ex]; }); }
    if (m && m.add !== undefined) { return setAdded(rec, m, null); }
    if (absentHow(place) === null) {
      say("The schema needs a value at " + pathText(place) + ": correct it (e), or mark the record unusable (u).",
        true);
      return false;
    }
    return change(rec, function (w) { w.d[indexOf(tr)] = 0; });
  }
  function setAdded(rec, m, value) {
    var inner = null;
    return change(rec, function (w) {
      var item = w.add[m.add][m.n];
      inner = leavesOf(item.v)[m.li];
      item.v = setAt(item.v, inner, value);
      if (item.d !== 1) { item.d[m.li] = 1; }
    });
  }
  function removeItem(tr) {
    var rec = recOf(tr);
    var m = where(tr);
    var place = placeOf(tr);
    if (m && m.ex !== undefined) { return change(rec, function (w) { delete w.ex[m.ex]; }); }
    if (m && m.add !== undefined) {
      return change(rec, function (w) {
        w.add[m.add].splice(m.n, 1);
        if (!w.add[m.add].length) { delete w.add[m.add]; }
      });
    }
    var k = innerList(place);
    if (k < 0) { say("This value is not in a list: n marks it as not in the source.", true); return false; }
    var key = keyOf(place.slice(0, k + 1));
    return change(rec, function (w) { if (own.call(w.rm, key)) { delete w.rm[key]; } else { w.rm[key] = 1; } });
  }
  function addItem(tr) {
    var rec = recOf(tr);
    var m = where(tr);
    var place = placeOf(tr);
    var value = m ? undefined : getAt(rec.data(), place);
    var list;
    if (m && m.add !== undefined) { list = JSON.parse(m.add); }
    else if (Array.isArray(value)) { list = place; }
    else {
      var k = innerList(place);
      if (k >= 0) { list = place.slice(0, k); }
      else if (value === null && schema !== null && info(nodeAt(place)).types.array) { list = place; }
      else { say("This value is not in a list: there is nothing to add an item to.", true); return false; }
    }
    var current = getAt(rec.data(), list);
    var shape = schema !== null ? blank(childBranches(nodeAt(list), 0), 0)
      : Array.isArray(current) && current.length ? blankLike(current[0]) : null;
    var key = keyOf(list);
    var made = change(rec, function (w) { (w.add[key] = w.add[key] || []).push({v: shape, d: {}}); });
    if (made) {
      var n = rec.work.add[key].length - 1;
      var wanted = JSON.stringify({add: key, n: n, li: 0});
      var first = Array.prototype.find.call(rec.el.querySelectorAll("tbody.more tr"), function (tr) {
        return tr.getAttribute("data-m") === wanted;
      });
      if (first) { setCur(first, true); edit(first); }
    }
    return made;
  }
  function blankLike(v) {
    if (Array.isArray(v)) { return []; }
    if (v !== null && typeof v === "object") {
      var out = {};
      Object.keys(v).forEach(function (k) { put(out, k, blankLike(v[k])); });
      return out;
    }
    return null;
  }
  function acceptRest(rec, batch) {
    if (rec.failed) { return false; }
    return change(rec, function (w) {
      var places = rec.places();
      for (var i = 0; i < places.length; i++) {
        if (!own.call(w.d, String(i)) && !removedIn(w, places[i])) { w.d[i] = 1; }
      }
      Object.keys(w.add).forEach(function (k) { w.add[k].forEach(function (item) { item.d = 1; }); });
    }, batch);
  }
  function toggleBad(rec) { return change(rec, function (w) { w.bad = w.bad ? 0 : 1; }); }

  // --- the editor ----------------------------------------------------------------------------
  function kindFor(bs, value) {
    if (schema === null) {
      var t = typeOf(value);
      var kind = t === "integer" || t === "number" ? "number" : t === "boolean" ? "boolean" :
        t === "string" ? "text" : "json";
      return {kind: kind, nullable: true, integer: false};
    }
    var i = info(bs);
    var base = {nullable: i.nullable, integer: !i.allows("number") || (!!i.types.integer && !i.types.number)};
    if (i.choices && i.choices.length) { return Object.assign(base, {kind: "choice", choices: i.choices}); }
    if (i.any || i.types.object || i.types.array) { return Object.assign(base, {kind: "json"}); }
    var num = i.allows("integer") || i.allows("number");
    if (i.types.boolean && !num && !i.types.string) { return Object.assign(base, {kind: "boolean"}); }
    if (num && !i.types.string) { return Object.assign(base, {kind: "number"}); }
    if (num && i.types.string) { return Object.assign(base, {kind: "mixed", wasString: typeof value === "string"}); }
    if (i.types.string && i.format === "date") { return Object.assign(base, {kind: "date"}); }
    if (i.types.string) { return Object.assign(base, {kind: "text"}); }
    return Object.assign(base, {kind: "json"});
  }
  function edit(tr) {
    closeEditor();
    var rec = recOf(tr);
    var m = where(tr);
    var place = placeOf(tr);
    if (rec.work && rec.work.bad) { say("The record is marked unusable: u makes it usable again.", true); return; }
    if (!m && removedIn(rec.work, place)) {
      say("This value is in a removed item: x on it restores the item.", true); return;
    }
    var value;
    if (m && m.ex !== undefined) { value = rec.work.ex[m.ex]; }
    else if (m && m.add !== undefined) {
      var item = rec.work.add[m.add][m.n]; value = getAt(item.v, leavesOf(item.v)[m.li]);
    }
    else { value = valueOf(rec, indexOf(tr), place); }
    var bs = nodeAt(place);
    var spec = kindFor(bs, value);
    var box = document.createElement("span");
    box.className = "editor";
    var input;
    if (spec.kind === "choice" || spec.kind === "boolean") {
      input = document.createElement("select");
      var options = spec.kind === "boolean" ? [true, false] : spec.choices.slice();
      if (spec.nullable) { options.push(null); }
      options.forEach(function (v) {
        var o = document.createElement("option");
        o.value = canon(v);
        o.textContent = v === null ? "null" : show(v);
        input.appendChild(o);
      });
      var at = options.findIndex(function (v) { return same(v, value); });
      input.selectedIndex = at >= 0 ? at : 0;
    } else if (spec.kind === "json" || (typeof value === "string" && (value.length > 60 || value.indexOf("\n") >= 0))) {
      input = document.createElement("textarea");
      input.value = spec.kind === "json" ? JSON.stringify(value === undefined ? null : value) : value;
    } else {
      input = document.createElement("input");
      input.type = spec.kind === "date" ? "date" : "text";
      if (spec.kind === "number") { input.inputMode = "decimal"; }
      input.value = value === null || value === undefined ? "" : show(value);
    }
    input.className = "in";
    input.setAttribute("aria-label", "value at " + pathText(place));
    box.appendChild(input);
    var nullBox = null;
    if (spec.nullable && input.tagName !== "SELECT" && spec.kind !== "json") {
      var label = document.createElement("label");
      nullBox = document.createElement("input");
      nullBox.type = "checkbox";
      nullBox.checked = value === null;
      label.appendChild(nullBox);
      label.appendChild(document.createTextNode(" null"));
      box.appendChild(label);
    }
    var hint = document.createElement("span");
    hint.className = "err";
    box.appendChild(hint);
    var cell = actCell(tr);
    cell.textContent = "";
    cell.appendChild(box);
    editing = {tr: tr, rec: rec, m: m, place: place, bs: bs, spec: spec, input: input, nullBox: nullBox, hint: hint};
    input.focus();
    if (input.select && input.tagName === "INPUT" && input.type === "text") { input.select(); }
  }
  function parsed(e) {
    var spec = e.spec;
    var text = e.input.value;
    if (e.nullBox && e.nullBox.checked) { return {value: null}; }
    if (spec.kind === "choice" || spec.kind === "boolean") { return {value: JSON.parse(text)}; }
    if (spec.kind === "json") {
      try { return {value: JSON.parse(text)}; } catch (err) { return {error: "not JSON: " + err.message}; }
    }
    var t = text.trim();
    if (spec.kind === "number" || (spec.kind === "mixed" && !spec.wasString && NUMBER.test(t))) {
      if (!NUMBER.test(t)) { return {error: "not a number (write it as 1234.5)"}; }
      var n = Number(t);
      if (!isFinite(n)) { return {error: "too large a number"}; }
      if (spec.integer && !Number.isInteger(n)) { return {error: "not a whole number"}; }
      return {value: n};
    }
    if (spec.kind === "date" && !isDate(text)) { return {error: "not a whole date (YYYY-MM-DD)"}; }
    return {value: text};
  }
  function commit() {
    var e = editing;
    if (!e) { return; }
    var got = parsed(e);
    if (got.error === undefined) {
      var wrong = fitsPlace(e.bs, got.value);
      if (wrong.length) { got.error = wrong[0][1]; }
    }
    if (got.error !== undefined) { e.hint.textContent = got.error; e.input.focus(); return; }
    editing = null;
    var rec = e.rec;
    var value = got.value;
    if (e.m && e.m.ex !== undefined) { change(rec, function (w) { w.ex[e.m.ex] = value; }); }
    else if (e.m && e.m.add !== undefined) { setAdded(rec, e.m, value); }
    else {
      var original = getAt(rec.data(), e.place);
      var i = indexOf(e.tr);
      change(rec, function (w) { w.d[i] = same(value, original) ? 1 : ["v", value]; });
    }
    paint(rec);
    if (e.tr.isConnected) { setCur(e.tr, false); }
    step(1, false);
  }
  function closeEditor() {
    var e = editing;
    editing = null;
    if (e && e.tr.isConnected) { paint(e.rec); e.tr.focus({preventScroll: true}); }
  }

  // --- the export ----------------------------------------------------------------------------
  function build(rec) {
    var w = rec.work;
    var data = clone(rec.data());
    var cuts = [];
    var deletes = [];
    rec.places().forEach(function (place, i) {
      var d = w.d[i];
      if (Array.isArray(d)) { data = setAt(data, place, clone(d[1])); }
      else if (d === 0) {
        var how = absentHow(place);
        if (how === "remove") { cuts.push(place); }
        else if (how === "delete") { deletes.push(place); }
        else { data = setAt(data, place, null); }
      }
    });
    Object.keys(w.ex).forEach(function (k) { data = setAt(data, JSON.parse(k), clone(w.ex[k])); });
    Object.keys(w.add).forEach(function (k) {
      var list = JSON.parse(k);
      var found = getAt(data, list);
      if (!Array.isArray(found)) { found = []; data = setAt(data, list, found); }
      w.add[k].forEach(function (item) { found.push(clone(item.v)); });
    });
    deletes.forEach(function (place) {
      var parent = getAt(data, place.slice(0, -1));
      if (parent && typeof parent === "object") { delete parent[place[place.length - 1]]; }
    });
    cuts = cuts.concat(Object.keys(w.rm).map(function (k) { return JSON.parse(k); }));
    cuts.sort(function (a, b) {
      if (a.length !== b.length) { return b.length - a.length; }
      return b[b.length - 1] - a[a.length - 1];
    });
    cuts.forEach(function (place) {
      var list = getAt(data, place.slice(0, -1));
      if (Array.isArray(list)) { list.splice(place[place.length - 1], 1); }
    });
    return data;
  }
  function goldLines() {
    var out = {lines: [], problems: [], partly: 0, labelled: 0, unusable: 0, carried: 0};
    recs.forEach(function (rec) {
      var w = rec.work;
      if (!w) { return; }
      if (w.bad) { out.lines.push(JSON.stringify({id: rec.id, unusable: true})); out.unusable += 1; return; }
      if (rec.failed) { return; }
      if (rec.tally.done < rec.tally.total) { if (rec.tally.done > 0) { out.partly += 1; } return; }
      var data = build(rec);
      var errs = schema === null ? [] : validate(schema, data);
      if (errs.length) { out.problems.push({id: rec.id, index: rec.index, errs: errs}); return; }
      out.lines.push(JSON.stringify({id: rec.id, data: data}));
      out.labelled += 1;
    });
    (Array.isArray(cfg.carried) ? cfg.carried : []).forEach(function (line) {
      out.lines.push(JSON.stringify(line));
      out.carried += 1;
    });
    return out;
  }
  function goldText() { var lines = goldLines().lines; return lines.length ? lines.join("\n") + "\n" : ""; }
  function exportGold() {
    var got = goldLines();
    if (got.problems.length) {
      var shown = got.problems.slice(0, 5).map(function (p) {
        return p.id + ": " + p.errs.slice(0, 3).map(function (e) { return pathText(e[0]) + " " + e[1]; }).join("; ");
      });
      say("Not exported: " + got.problems.length + " record" + (got.problems.length === 1 ? " does" : "s do") +
        " not match the schema (correct them, or mark them unusable):\n" + shown.join("\n") +
        (got.problems.length > 5 ? "\n..." : ""), true);
      return got;
    }
    if (!got.lines.length) {
      say("Nothing to export yet: review a record to its end (A accepts the rest), or mark it unusable (u)" +
        (got.partly ? "; " + got.partly + " partly reviewed." : "."), true);
      return got;
    }
    var blob = new Blob([got.lines.join("\n") + "\n"], {type: "application/x-ndjson"});
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = "gold.jsonl";
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 60000);
    say("Exported gold.jsonl: " + got.labelled + " records labelled, " + got.unusable + " unusable" +
      (got.carried ? ", " + got.carried + " kept from the gold file" : "") +
      (got.partly ? "; " + got.partly + " partly reviewed, not exported (finish them, or A accepts the rest)" : "") +
      ".");
    return got;
  }

  // --- events --------------------------------------------------------------------------------
  function act(key, tr, shift) {
    if (key === "a" && shift) { return acceptRest(recOf(tr)); }
    if (key === "a" || key === "Enter") { if (accept(tr) !== false) { step(1, false); } return true; }
    if (key === "e" || key === "F2") { edit(tr); return true; }
    if (key === "n") { if (absent(tr)) { step(1, false); } return true; }
    if (key === "x" || key === "Delete") { removeItem(tr); return true; }
    if (key === "+" || key === "i") { addItem(tr); return true; }
    if (key === "u") { toggleBad(recOf(tr)); return true; }
    return false;
  }
  document.addEventListener("keydown", function (ev) {
    if (editing && editing.tr.contains(ev.target)) {
      if (ev.key === "Escape") { ev.preventDefault(); closeEditor(); }
      else if (ev.key === "Enter" && !(ev.target.tagName === "TEXTAREA" && ev.shiftKey)) {
        ev.preventDefault(); commit();
      }
      ev.stopImmediatePropagation();
      return;
    }
    var tag = ev.target && ev.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || tag === "BUTTON" || tag === "A") { return; }
    if (ev.altKey || ev.metaKey) { return; }
    var key = ev.key;
    if (ev.ctrlKey) {
      if (key === "z" || key === "Z") { ev.preventDefault(); undo(); ev.stopImmediatePropagation(); }
      return;
    }
    var handled = true;
    if (key === "j" || (key === "ArrowDown" && cur)) { step(1, false); }
    else if (key === "k" || (key === "ArrowUp" && cur)) { step(-1, false); }
    else if (key === ".") { step(1, true); }
    else if (key === "z") { undo(); }
    else if (key === "u" && !cur) { handled = false; }
    else if (cur && (key === "A" || key.length === 1 || key === "Enter" || key === "F2" || key === "Delete")) {
      handled = act(key === "A" ? "a" : key, cur, key === "A");
    } else { handled = false; }
    if (handled) { ev.preventDefault(); ev.stopImmediatePropagation(); }
  });
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-k]");
    var pressed = ev.target.closest("button");
    if (pressed) { pressed.blur(); }  // the keys act on values again, not on the button
    if (button) {
      var row = button.closest("tr.v");
      if (row) { setCur(row, false); act(button.getAttribute("data-k"), row, false); }
      return;
    }
    var tool = ev.target.closest(".tools button[data-do]");
    if (tool) {
      var rec = recOf(tool);
      if (tool.getAttribute("data-do") === "rest") { acceptRest(rec); } else { toggleBad(rec); }
      return;
    }
    if (ev.target.closest("#export")) { exportGold(); return; }
    var tr = ev.target.closest("tr.v");
    if (tr && !(editing && editing.tr === tr)) { setCur(tr, false); }
  });

  // --- start ---------------------------------------------------------------------------------
  try {
    var raw = localStorage.getItem(STORE);
    if (raw) { saved = JSON.parse(raw); }
  } catch (e) { saved = null; }
  if (!saved || typeof saved !== "object" || !saved.records || typeof saved.records !== "object") {
    saved = {version: 1, records: {}};
  }
  var restored = 0;
  var stale = 0;
  Array.prototype.forEach.call(document.querySelectorAll("section.record"), function (el, i) {
    var rec = new Rec(el, i);
    recs.push(rec);
    totals.total += rec.tally.total;
    if (!rec.failed) { totals.reviewable += 1; }
    var mine = own.call(saved.records, rec.id) ? saved.records[rec.id] : null;
    var gold = el.getAttribute("data-gold");
    if (mine && (mine.h || null) === (rec.h || null)) { rec.work = readWork(mine); restored += 1; }
    else {
      if (mine) { stale += 1; }
      if (gold) { try { rec.work = readWork(JSON.parse(gold)); } catch (e) { rec.work = null; } }
    }
    if (rec.work) { paint(rec); } else { el.setAttribute("data-todo", rec.failed ? "0" : "1"); }
  });
  showProgress();
  var notes = [];
  if (restored) {
    notes.push("Restored your work on " + restored + " record" + (restored === 1 ? "" : "s") + " from this browser.");
  }
  if (stale) {
    notes.push(stale + " record" + (stale === 1 ? " has" : "s have") + " other data than when you reviewed " +
      (stale === 1 ? "it" : "them") + " here: that work is kept aside, not applied.");
  }
  if (notes.length) { say(notes.join(" ")); }
  window.extractorReview = {
    goldLines: goldLines,
    goldText: goldText,
    exportGold: exportGold,
    validate: function (s, v) {
      var keep = schema;
      schema = s;
      try { return validate(s, v); } finally { schema = keep; }
    },
    acceptAll: function () {
      var n = 0;
      var last = null;
      recs.forEach(function (rec) {
        if (!rec.failed && (!rec.work || !rec.work.bad)) { acceptRest(rec, true); n += rec.tally.total; last = rec; }
      });
      if (last) { flush(); showProgress(); }
      return n;
    },
    progress: function () {
      return {done: totals.done, total: totals.total, records: totals.records, unusable: totals.unusable};
    }
  };
})();
"""
