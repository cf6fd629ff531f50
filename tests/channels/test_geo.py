"""Distances, GCJ-02, and the covering that makes the radius a hard guarantee."""

from __future__ import annotations

import h3.api.basic_int as h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.geo_points import destination
from o2oloop.channels import geo

# (WGS-84 lat, lng) → (GCJ-02 lat, lng), as published with the reference implementations.
KNOWN = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),
]


@pytest.mark.parametrize(("wgs", "gcj"), KNOWN)
def test_wgs84_to_gcj02_matches_known_points(wgs, gcj):
    assert geo.wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), KNOWN)
def test_gcj02_to_wgs84_inverts_to_under_a_centimetre(wgs, gcj):
    lat, lng = geo.gcj02_to_wgs84(*gcj)
    assert geo.haversine_m(lat, lng, *wgs) < 0.01


def test_gcj02_is_the_identity_outside_china():
    assert geo.gcj02_to_wgs84(48.8566, 2.3522) == (48.8566, 2.3522)
    assert geo.wgs84_to_gcj02(-33.86, 151.21) == (-33.86, 151.21)


def test_haversine_knows_a_degree_and_the_antimeridian():
    assert geo.haversine_m(0, 0, 0, 1) == pytest.approx(111_195, rel=1e-4)
    assert geo.haversine_m(0, 179.999, 0, -179.999) == pytest.approx(222.4, rel=1e-3)
    assert geo.haversine_m(89.999, 0, 89.999, 180) == pytest.approx(222.4, rel=1e-3)


# Centres anywhere, and many next to the antimeridian and the poles.
latitudes = st.one_of(
    st.floats(-90, 90),
    st.floats(89.0, 90.0),
    st.floats(-90.0, -89.0),
)
longitudes = st.one_of(
    st.floats(-180, 180),
    st.floats(179.0, 180.0),
    st.floats(-180.0, -179.0),
)


@settings(max_examples=300, deadline=None)
@given(
    lat=latitudes,
    lng=longitudes,
    radius=st.floats(1.0, 50_000.0),
    bearing=st.floats(0, 360),
    fraction=st.floats(0.0, 1.0),
)
def test_every_point_within_the_radius_lies_in_a_covering_cell(lat, lng, radius, bearing, fraction):
    cells = set(geo.covering(lat, lng, radius))
    resolution = geo.resolution_for(radius)
    p_lat, p_lng = destination(lat, lng, bearing, radius * fraction)
    if geo.haversine_m(lat, lng, p_lat, p_lng) <= radius:
        assert h3.latlng_to_cell(p_lat, p_lng, resolution) in cells


def test_a_covering_stays_a_few_dozen_cells():
    for radius in (10, 300, 1_000, 3_000, 10_000, 50_000):
        assert len(geo.covering(31.2, 121.4, radius)) <= 3 * geo.MAX_CELLS
        assert len(geo.covering(89.9999, 0.0, radius)) <= 3 * geo.MAX_CELLS
