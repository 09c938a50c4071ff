"""One cheap look at YAML text before a parser sees it.

PyYAML's pure-Python composer recurses once per level of flow nesting (``[[[...]]]``): a few
thousand levels take it seconds before it gives up with a RecursionError. Neither an environment
file nor an OMS config.yaml nests more than a handful of levels, so text nested deeper than the
caller's limit is refused at once, in linear time.
"""

from __future__ import annotations


def flow_depth(text: str) -> int:
    """The deepest nesting of flow collections (``[`` / ``{``) in ``text``, outside quotes and comments.

    Block scalars are not told apart: brackets inside one may count, which can only over-count,
    never hide real nesting.
    """
    depth = deepest = 0
    quote = ""
    prev = "\n"
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if quote == '"' and ch == "\\":
                i += 2
                prev = "x"
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and prev in " \t\n":
            end = text.find("\n", i)
            i = n if end < 0 else end
            prev = "\n"
            continue
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        prev = ch
        i += 1
    return deepest
