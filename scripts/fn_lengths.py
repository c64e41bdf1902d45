#!/usr/bin/env python3
"""Lists the functions in Rust files whose body (from the line of `fn` to its closing
brace) is longer than a limit, longest first; exit status 1 when any is.

Usage: scripts/fn_lengths.py [--max N] [--top K] [DIR ...]   (default: --max 100 src)

It counts lines, tests included, and skips braces inside strings, chars and comments
well enough for this code base (raw strings r"..."/r#"..."# included).
"""
import argparse
import re
import sys
from pathlib import Path

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?((const|async|unsafe|extern\s+\"C\")\s+)*fn\s+(\w+)")


def strip_code(text: str) -> str:
    """The text with string, char and comment contents blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not text[i - 1:i].isalnum():
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'", text[i:i + 12]):
            m = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'", text[i:i + 12])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path: Path):
    code = strip_code(path.read_text())
    lines = code.split("\n")
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    for lineno, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        # The body starts at the first `{` after the signature (a `;` first: no body).
        i = offsets[lineno] + m.end()
        depth_paren = 0
        while i < len(code):
            ch = code[i]
            if ch in "([":
                depth_paren += 1
            elif ch in ")]":
                depth_paren -= 1
            elif ch == ";" and depth_paren == 0:
                i = -1
                break
            elif ch == "{" and depth_paren == 0:
                break
            i += 1
        if i < 0 or i >= len(code):
            continue
        depth, j = 0, i
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        end_line = code.count("\n", 0, j)
        yield m.group(5), lineno + 1, end_line - lineno + 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=100)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("dirs", nargs="*", default=["src"])
    a = ap.parse_args()
    found = []
    for d in a.dirs:
        for p in sorted(Path(d).rglob("*.rs")):
            found += [(n, name, p, line) for name, line, n in functions(p)]
    found.sort(reverse=True)
    print(f"longest functions in {', '.join(a.dirs)} (lines from `fn` to its closing brace):")
    for n, name, p, line in found[: a.top]:
        print(f"  {n:4}  {p}:{line}  {name}")
    over = [f for f in found if f[0] > a.max]
    print(f"{len(found)} functions, {len(over)} over {a.max} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
