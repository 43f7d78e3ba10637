"""``filterExpression`` ("1 and (2 or 3)", "and", "or") parsed into a combination of the
compiled filters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from intacct_connect.testing.emulator.query.fields import bad_request
from intacct_connect.testing.emulator.query.filters import Predicate

TOKEN_RE = re.compile(r"\s*(?:(\d+)|(and|or)\b|(\()|(\)))", re.IGNORECASE)


def parse_expression(text: Any, count: int) -> Callable[[list[Predicate]], Predicate]:
    """Compile ``filterExpression`` ("1 and (2 or 3)", "and", "or")."""
    if text is None:
        text = "and"
    if not isinstance(text, str) or not text.strip():
        raise bad_request("filterExpression must be a non-empty string", target="filterExpression")
    stripped = text.strip().lower()
    if stripped in ("and", "or"):
        if stripped == "and":
            return lambda preds: lambda row: all(p(row) for p in preds)
        return lambda preds: lambda row: any(p(row) for p in preds)
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN_RE.match(text, position)
        if match is None:
            raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")
        tokens.append(match.group(0).strip().lower())
        position = match.end()
    index = 0

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    def expr() -> Any:
        nonlocal index
        node = term()
        while peek() == "or":
            index += 1
            node = ("or", node, term())
        return node

    def term() -> Any:
        nonlocal index
        node = factor()
        while peek() == "and":
            index += 1
            node = ("and", node, factor())
        return node

    def factor() -> Any:
        nonlocal index
        part = peek()
        if part is None:
            raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")
        index += 1
        if part == "(":
            node = expr()
            if peek() != ")":
                raise bad_request(
                    f"Unbalanced parentheses in filterExpression {text!r}",
                    target="filterExpression",
                )
            index += 1
            return node
        if part.isdigit():
            number = int(part)
            if not 1 <= number <= count:
                raise bad_request(
                    f"filterExpression refers to filter {number} but there are {count} filters",
                    target="filterExpression",
                )
            return number
        raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")

    tree = expr()
    if index != len(tokens):
        raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")

    def build(node: Any, preds: list[Predicate]) -> Predicate:
        if isinstance(node, int):
            return preds[node - 1]
        op, left, right = node
        lhs, rhs = build(left, preds), build(right, preds)
        if op == "and":
            return lambda row: lhs(row) and rhs(row)
        return lambda row: lhs(row) or rhs(row)

    return lambda preds: build(tree, preds)
