#!/usr/bin/env python3
"""Counts test results at the level of test cases and prints
'N passed, N failed, N skipped' as the last line; exits 1 if any failed or
nothing passed.

Arguments: meson testlog.json files (BUILD/meson-logs/testlog.json).

A meson test run with protocol 'gtest' (BUILD/meson-info/intro-tests.json) writes
BUILD/<name>.xml (meson passes --gtest_output=xml:<name>.xml); every <testcase>
in it counts once: skipped
(with gtest's reason), failed (a <failure>), or passed. A binary whose cases
all passed but that exited non-zero (a crash after the cases, a leak check at
exit, a timeout) counts one more failure; a gtest binary that left no XML or
ran no case at all is a failure, never a silent pass. Other meson tests (fuzz
runs, scripts) count once by their meson result; a meson SKIP (exit 77) is
listed with the last line it printed as the reason.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

passed = failed = 0
skips = []     # (case, reason)
failures = []  # (case, why)


def last_line(text):
    lines = [l for l in (text or "").splitlines() if l.strip()]
    return lines[-1].strip() if lines else "(no output)"


def count_gtest(name, result, xml_path):
    """Counts the cases of one gtest run; returns False if the XML is unusable."""
    global passed, failed
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as e:
        failed += 1
        failures.append((name, f"{result}, and its gtest XML {xml_path} is missing or unreadable ({e})"))
        return
    cases = root.iter("testcase")
    n = case_failures = 0
    for case in cases:
        n += 1
        full = f"{name}: {case.get('classname')}.{case.get('name')}"
        skipped = case.find("skipped")
        failure = case.find("failure")
        if failure is not None:
            failed += 1
            case_failures += 1
            failures.append((full, (failure.get("message") or "").splitlines()[0] if failure.get("message") else ""))
        elif case.get("result") == "skipped" or skipped is not None:
            message = skipped.get("message", "") if skipped is not None else ""
            # gtest's message starts with "file:line"; the reason follows.
            reason = " ".join(message.splitlines()[1:]) or message or "(no reason given)"
            skips.append((full, reason))
        elif case.get("status") == "notrun":
            continue  # DISABLED_ tests: gtest lists them as not run
        else:
            passed += 1
    if n == 0:
        failed += 1
        failures.append((name, "ran no test case (a filter that matches nothing?)"))
    elif result not in ("OK", "EXPECTEDFAIL") and case_failures == 0:
        failed += 1
        failures.append((name, f"meson result {result} after its cases (crash, exit-time check or timeout)"))


for log in sys.argv[1:]:
    build_dir = os.path.dirname(os.path.dirname(os.path.abspath(log)))
    # Which tests speak gtest, and where they run: meson's own introspection.
    with open(os.path.join(build_dir, "meson-info", "intro-tests.json")) as f:
        protocols = {t["name"]: (t["protocol"], t["workdir"]) for t in json.load(f)}
    with open(log) as f:
        for line in f:
            if not line.strip():
                continue
            entry = json.loads(line)
            full_name = entry.get("name", "?")
            name = full_name.split(" / ")[-1]  # "project:suite / name"
            result = entry.get("result", "")
            protocol, workdir = protocols.get(name, ("exitcode", None))
            if protocol == "gtest":
                # meson passes --gtest_output=xml:<name>.xml, relative to the test's workdir.
                xml_path = os.path.join(workdir or build_dir, name + ".xml")
                if os.path.exists(xml_path) and os.path.getmtime(xml_path) < entry.get("starttime", 0) - 1:
                    failed += 1
                    failures.append((name, f"{result}, and {xml_path} is older than this run (left no results)"))
                else:
                    count_gtest(name, result, xml_path)
            elif result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skips.append((name, last_line(entry.get("stdout"))))
            else:
                failed += 1
                failures.append((name, f"meson result {result}: {last_line(entry.get('stdout'))}"))

if skips:
    print(f"Skipped ({len(skips)}):")
    for case, reason in skips:
        print(f"  SKIP {case}: {reason}")
if failures:
    print(f"Failed ({len(failures)}):")
    for case, why in failures:
        print(f"  FAIL {case}: {why}")
print(f"{passed} passed, {failed} failed, {len(skips)} skipped")
sys.exit(1 if failed or passed == 0 else 0)
