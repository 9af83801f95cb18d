"""The query language: parse once to a canonical AST, match or compile it per adapter."""

from .ast import (
    And,
    Compare,
    Contains,
    Diff,
    Equal,
    Exists,
    Greater,
    GreaterEqual,
    In,
    Less,
    LessEqual,
    Node,
    Not,
    NotIn,
    Or,
    Query,
    SortKey,
    Xor,
)
from .compiler import Compiler
from .match import compile_predicate, deep_equal, sort_rows
from .parse import parse_options, parse_query, parse_sort, parse_where

__all__ = [
    "And",
    "Compare",
    "Compiler",
    "Contains",
    "Diff",
    "Equal",
    "Exists",
    "Greater",
    "GreaterEqual",
    "In",
    "Less",
    "LessEqual",
    "Node",
    "Not",
    "NotIn",
    "Or",
    "Query",
    "SortKey",
    "Xor",
    "compile_predicate",
    "deep_equal",
    "parse_options",
    "parse_query",
    "parse_sort",
    "parse_where",
    "sort_rows",
]
