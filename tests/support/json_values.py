"""Hypothesis strategies for JSON-shaped Python values, as the property tests of the JSON
paths (jsonexact, request bodies, fingerprints) draw them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(
    *,
    text: st.SearchStrategy[str] | None = None,
    non_finite: bool = False,
    int_bits: int = 100,
    max_leaves: int = 12,
) -> st.SearchStrategy[Any]:
    """Nested lists and objects of null, booleans, integers of up to ``int_bits`` bits (past
    64, which orjson alone cannot take), floats (NaN and the infinities if ``non_finite``) and
    ``text`` (any text, lone surrogates included, by default)."""
    strings = st.text() if text is None else text
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**int_bits), max_value=2**int_bits)
        | st.floats(allow_nan=non_finite, allow_infinity=non_finite)
        | strings
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
        max_leaves=max_leaves,
    )


# Text UTF-8 can hold: no lone surrogate.
REAL_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
