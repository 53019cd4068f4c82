#!/usr/bin/env python3
"""Checks that the figures README.md and docs/*.md quote from tests are still
what the tests measure.

Usage: check-doc-figures.py BUILD_DIR SOURCE_ROOT

A quoted figure carries an HTML comment right after its number (invisible when
the Markdown is rendered):

    decode-of-encode 8.9e-6<!-- figure vae.decode_of_encode.max_abs test=parity-vae -->

    figure KEY   the test records it with RecordProperty("figure:KEY", value);
    test=NAME    the meson test that runs it: meson's protocol 'gtest' writes
                 its results, properties included, to BUILD_DIR/NAME.xml;
    scale=S      optional: the docs print the value times S (100 for a %);
    rel=R        optional: also accept |doc - measured| <= R * |doc|;
    abs=A        optional: also accept |doc - measured| <= A.

Without rel/abs, the measured value must round to the number as printed (half
a unit of its last digit: 8.9e-6 accepts [8.85e-6, 8.95e-6]); rel/abs only
widen that, for figures that vary from run to run (timings, RSS).

Prints one line per figure (doc value, measured value, ok or DRIFT) and exits
1 on any drift, on a malformed marker, or on a figure whose XML or property is
missing (run the whole suite first: meson test -C BUILD_DIR).
"""
import math
import os
import re
import sys
import xml.etree.ElementTree as ET

MARKER = re.compile(r"<!--\s*figure\b(.*?)-->", re.S)
# The number printed just before a marker: 8.9e-6, 1.7e-2, 0.012, 13,000, −3.
NUMBER = re.compile(r"([-−+]?\d[\d,]*(?:\.\d+)?(?:[eE][-−+]?\d+)?)\s*$")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")
OPTIONS = {"test", "scale", "rel", "abs"}


def parse_number(text):
    """(value, half a unit of its last printed digit) of a number as printed."""
    t = text.replace("−", "-").replace(",", "")
    mantissa, _, exponent = t.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exp = int(exponent) if exponent else 0
    return float(t), 0.5 * 10.0 ** (exp - decimals)


def markers(path):
    """Yields (line, marker text, doc number text or None, fields or an error)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # Fenced code blocks show markers as examples: blank them, keeping line numbers.
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in MARKER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[max(0, m.start() - 40):m.start()]
        number = NUMBER.search(before)
        words = m.group(1).split()
        if not words or not KEY.match(words[0]):
            yield line, m.group(0), None, "no figure key after 'figure'"
            continue
        fields = {"key": words[0]}
        error = None
        for w in words[1:]:
            name, eq, value = w.partition("=")
            if not eq or name not in OPTIONS or not value:
                error = f"bad field '{w}' (expected {', '.join(sorted(o + '=' for o in OPTIONS))})"
                break
            if name != "test":
                try:
                    fields[name] = float(value)
                except ValueError:
                    error = f"{name}={value} is not a number"
                    break
            else:
                fields[name] = value
        if error is None and "test" not in fields:
            error = "no test=NAME (the meson test whose XML holds the figure)"
        if error is None and number is None:
            error = "no number right before the marker"
        yield line, m.group(0), number.group(1) if number else None, error or fields


_xml_cache = {}


def measured(build, test, key):
    """(value, None) or (None, why it is missing)."""
    path = os.path.join(build, test + ".xml")
    if path not in _xml_cache:
        try:
            _xml_cache[path] = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            _xml_cache[path] = e
    root = _xml_cache[path]
    if isinstance(root, Exception):
        return None, f"no readable {path} ({root.__class__.__name__}); run the whole suite first"
    name = "figure:" + key
    found = []
    for case in root.iter("testcase"):
        where = f"{case.get('classname')}.{case.get('name')}"
        if name in case.attrib:  # older gtest: properties as attributes
            found.append((case.get(name), where))
        for prop in case.iter("property"):
            if prop.get("name") == name:
                found.append((prop.get("value"), where))
    if not found:
        def cases(pred):
            return ", ".join(f"{c.get('classname')}.{c.get('name')}" for c in root.iter("testcase") if pred(c))
        failed = cases(lambda c: c.find("failure") is not None)
        skipped = cases(lambda c: c.find("skipped") is not None or c.get("result") == "skipped")
        why = f"{path} has no property {name}"
        if failed:
            why += f" (failed there: {failed})"
        if skipped:
            why += f" (skipped there: {skipped})"
        return None, why + "; run the whole suite first"
    if len(found) > 1:
        return None, f"{name} recorded by {len(found)} test cases ({', '.join(w for _, w in found)})"
    try:
        return float(found[0][0]), None
    except (TypeError, ValueError):
        return None, f"{name} = {found[0][0]!r} in {found[0][1]} is not a number"


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    build, root = sys.argv[1], sys.argv[2]
    docs = [os.path.join(root, "README.md")]
    docs_dir = os.path.join(root, "docs")
    docs += sorted(os.path.join(docs_dir, f) for f in os.listdir(docs_dir) if f.endswith(".md"))
    checked = bad = 0
    for doc in docs:
        rel_doc = os.path.relpath(doc, root)
        for line, marker, number, fields in markers(doc):
            where = f"{rel_doc}:{line}"
            if isinstance(fields, str):
                print(f"MALFORMED {where}: {marker}: {fields}")
                bad += 1
                continue
            checked += 1
            label = f"{where} {fields['key']} ({fields['test']})"
            value, why = measured(build, fields["test"], fields["key"])
            if value is None:
                print(f"MISSING   {label}: doc {number}, {why}")
                bad += 1
                continue
            doc_value, half_unit = parse_number(number)
            shown = value * fields.get("scale", 1.0)
            allowed = max(half_unit * (1 + 1e-9), fields.get("rel", 0.0) * abs(doc_value), fields.get("abs", 0.0))
            ok = math.isfinite(shown) and abs(shown - doc_value) <= allowed
            print(f"{'ok       ' if ok else 'DRIFT    '} {label}: doc {number}, measured {shown:.6g} "
                  f"(allowed ±{allowed:.3g})")
            bad += not ok
    if checked == 0 and bad == 0:
        print("no figure markers found in README.md and docs/*.md")
        return 1
    print(f"{checked} figures checked, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
