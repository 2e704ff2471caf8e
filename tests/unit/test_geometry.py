"""Envelope algebra against brute force, unit by unit (the fast one-phase paths included)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rfcheck.geometry import Envelope, _first_misaligned


@st.composite
def envelopes(draw, shift_per_phase: int):
    period = draw(st.sampled_from([1, 1, 1, 2, 3]))
    los, his = [], []
    for _ in range(period):
        if period > 1 and draw(st.integers(0, 5)) == 0:
            los.append(None)
            his.append(None)
            continue
        lo = draw(st.integers(-6, 6))
        los.append(lo)
        his.append(lo + draw(st.integers(0, 8)))
    if all(v is None for v in los):
        los[0], his[0] = 0, 0
    return Envelope(period, shift_per_phase * period, tuple(los), tuple(his))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda s: st.tuples(envelopes(s), envelopes(s))))
def test_union_is_the_per_unit_bounding_interval(pair):
    a, b = pair
    u = a.union(b)
    for o in range(12):
        ia, ib = a.at(o), b.at(o)
        want = (ia or ib) if ia is None or ib is None else (min(ia[0], ib[0]), max(ia[1], ib[1]))
        assert u.at(o) == want, (a, b, o)
    assert u.jump == a.jump


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda s: st.tuples(envelopes(s), envelopes(s))))
def test_first_misaligned_is_the_first_unit_with_other_centres(pair):
    a, b = pair
    want = None
    for o in range(6):  # (periods <= 3: every phase pair shows up within lcm <= 6 units)
        ia, ib = a.at(o), b.at(o)
        if ia is not None and ib is not None and ia[0] + ia[1] != ib[0] + ib[1]:
            want = o
            break
    assert _first_misaligned(a, b) == want
