"""``signed_stems``: a folder's file names parsed at once agree with ``stem_of`` parsing each one.

Listings and ``len()`` of local folders parse names folder by folder (docs/big-values.md#big-stores);
every name they accept or refuse must be the one the per-name parser accepts or refuses.
"""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from persidict.keys.digests import sign_component, signed_stems, stem_of
from persidict.keys.tuples import is_valid_component

ENDING = ".pkl"
SAFE = "abcXYZ019()_-~.="


def suffix_of(s: str, n: int) -> str:
    """The digest suffix, computed independently of the package (docs/concepts.md#digest-suffixes)."""
    return "_" + base64.b32encode(hashlib.md5(s.encode("utf-8")).digest()).decode()[:n].lower()


def one_by_one(names: list[str], digest_len: int, ending: str) -> list[str]:
    """What parsing each name alone gives: the reference ``signed_stems`` must agree with."""
    stems = []
    for name in names:
        bare = name[:-len(ending)]
        stem = stem_of(bare, digest_len) if digest_len else bare
        if stem is not None and is_valid_component(stem):
            stems.append(stem)
    return stems


def _forged(component: str, digest_len: int, draw_suffix: str) -> str:
    return f"{component}_{draw_suffix[:digest_len]}"


@st.composite
def folder_names(draw: st.DrawFn) -> tuple[list[str], int]:
    """A folder's file names ending in ``.pkl``: keys' names, and every kind of near miss."""
    digest_len = draw(st.sampled_from([0, 1, 3, 4, 8, 12, 26, 30]))
    components = st.text(SAFE, min_size=0, max_size=12)
    names = []
    for _ in range(draw(st.integers(0, 12))):
        component = draw(components)
        kind = draw(st.sampled_from(["key", "key", "forged", "unsafe", "own suffix", "short", "upper", "bare"]))
        if kind == "key" and is_valid_component(component):
            name = sign_component(component, digest_len)
        elif kind == "forged":
            name = _forged(component, digest_len, draw(st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=32,
                                                                max_size=32)))
        elif kind == "unsafe":
            unsafe = " é/"[draw(st.integers(0, 2))]
            name = component + unsafe + (sign_component("u", digest_len)[1:] if digest_len else "")
        elif kind == "own suffix" and digest_len and is_valid_component(component):
            once = sign_component(component, digest_len)
            name = once + suffix_of(once, digest_len)  # its stem signs to itself, not to this name
        elif kind == "short":
            name = component[:digest_len]
        elif kind == "upper" and digest_len and is_valid_component(component):
            name = sign_component(component, digest_len).upper()
        else:
            name = component
        names.append(name + ENDING)
    return names, digest_len


@settings(max_examples=400, deadline=None)
@given(folder_names())
def test_a_folder_parsed_at_once_agrees_with_each_name_parsed_alone(case: tuple[list[str], int]) -> None:
    names, digest_len = case
    assert signed_stems(names, digest_len, ENDING) == one_by_one(names, digest_len, ENDING)


def test_a_forged_suffix_among_true_ones_is_refused_alone() -> None:
    true = [sign_component(f"key{i}", 4) + ENDING for i in range(50)]
    forged = "key7_" + ("aaaa" if not true[7].startswith("key7_aaaa") else "bbbb") + ENDING
    names = true[:20] + [forged] + true[20:]
    assert signed_stems(names, 4, ENDING) == [f"key{i}" for i in range(50)]
    assert signed_stems([forged], 4, ENDING) == []


def test_names_that_are_no_components_are_refused() -> None:
    for stem in (".", "..", "", "a b", "x" * 254):
        name = stem + suffix_of(stem, 4) + ENDING
        assert signed_stems([name], 4, ENDING) == [] == one_by_one([name], 4, ENDING)
    assert signed_stems(["..pkl", "a.pkl", "b c.pkl"], 0, ENDING) == ["a"]
