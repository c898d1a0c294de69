"""C literals and identifiers. ONNX names are untrusted text: they reach C only through these functions.

>>> c_ident("conv1/Conv:0")
'conv1_Conv_0'
>>> c_ident("3x3")
'n_3x3'
>>> c_array(np.array([1, -2, 3], np.int8))
'{1, -2, 3}'
>>> c_comment("a */ b\\nc")
'a * / b c'
"""

from __future__ import annotations

import re

import numpy as np

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary".split()
)
LINE_WIDTH = 120


def c_ident(name: str) -> str:
    """A valid C identifier derived from `name`: [A-Za-z0-9_] only, no leading digit, never a keyword."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    ident = re.sub(r"__+", "_", ident).strip("_") or "t"
    if ident[0].isdigit():
        ident = "n_" + ident
    if ident in C_KEYWORDS:
        ident += "_"
    return ident[:48]


def unique_idents(names: list[str]) -> list[str]:
    """Sanitized identifiers for `names`, one each, made distinct with numeric suffixes where they collide.

    >>> unique_idents(["a.b", "a/b", "a_b_1"])
    ['a_b', 'a_b_1', 'a_b_1_1']
    """
    out: list[str] = []
    used: set[str] = set()
    for name in names:
        base = c_ident(name)
        ident, k = base, 1
        while ident in used:
            ident = f"{base}_{k}"
            k += 1
        used.add(ident)
        out.append(ident)
    return out


def c_comment(text: str) -> str:
    """Text safe inside /* */: printable ASCII only, no comment terminator, no line breaks or trigraph/backslash."""
    text = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in str(text))
    text = text.replace("*/", "* /").replace("/*", "/ *").replace("\\", "/").replace("??", "? ?")
    return re.sub(r"\s+", " ", text).strip()


def c_array(values: np.ndarray, indent: str = "    ") -> str:
    """A brace-enclosed initializer, wrapped at LINE_WIDTH columns."""
    flat = [str(int(v)) for v in np.asarray(values).ravel()]
    one_line = "{" + ", ".join(flat) + "}"
    if len(one_line) <= LINE_WIDTH - 40:
        return one_line
    lines, line = [], indent
    for v in flat:
        piece = v + ", "
        if len(line) + len(piece) > LINE_WIDTH and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += piece
    lines.append(line.rstrip().rstrip(","))
    return "{\n" + "\n".join(lines) + "\n}"


def c_float(x: float) -> str:
    """A float literal that round-trips the float32 value exactly."""
    return f"{float(np.float32(x))!r}f".replace("inf", "INFINITY")


def printable(text: str, limit: int = 80) -> str:
    """A name from the model, safe to print on one terminal line: control characters escaped, length capped."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
