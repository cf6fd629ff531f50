"""Pure geometry for nearby search: distances, GCJ-02 to WGS-84, and the H3 cells to scan.

Stores are indexed by the H3 cell that contains them at each of `RESOLUTIONS` (one row
per resolution). A search picks the finest resolution at which the radius needs only a
few dozen cells, and lists every cell that could hold a point within the radius: a
breadth-first walk from the centre's cell over neighbours whose centre lies within the
radius plus the cell's own circumradius. Cells meeting the disc are connected and each
passes that test, so none is missed; the exact haversine check then drops the extras.
H3 covers the sphere without seams, so the antimeridian and the poles need no special case.
"""

from __future__ import annotations

import math
from functools import lru_cache

import h3.api.basic_int as h3

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG), the one h3 uses for distances
RESOLUTIONS = (5, 6, 7, 8, 9)
MAX_CELLS = 60  # a covering of about this many cells per search, at the finest fitting level
# A circumradius is the distance to the farthest boundary vertex; edges are geodesics, so no
# point of the cell is farther. The margin absorbs float rounding.
_MARGIN = 1.001


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres on the mean-radius sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def unit_vector(lat: float, lng: float) -> tuple[float, float, float]:
    """The point on the unit sphere: the database compares squared chords, plain arithmetic
    that SQLite and PostgreSQL both do, instead of trigonometry per row."""
    p, lam = math.radians(lat), math.radians(lng)
    return math.cos(p) * math.cos(lam), math.cos(p) * math.sin(lam), math.sin(p)


def chord2_within(radius_m: float, *, margin_m: float = 0.5) -> float:
    """The squared chord of a great-circle distance a little above the radius.

    Chords grow with distance, so `chord² <= chord2_within(r)` keeps every point within r;
    the half-metre margin outweighs float rounding by orders of magnitude, and the exact
    haversine check afterwards drops the few points it lets through.
    """
    angle = min(math.pi, (radius_m + margin_m) / EARTH_RADIUS_M)
    return (2 * math.sin(angle / 2)) ** 2


def cells_of(lat: float, lng: float) -> list[int]:
    """The cells that hold this point, one per indexed resolution."""
    return [h3.latlng_to_cell(lat, lng, r) for r in RESOLUTIONS]


def resolution_for(radius_m: float) -> int:
    """The finest indexed resolution at which the radius needs about MAX_CELLS cells."""
    for r in reversed(RESOLUTIONS):
        edge = h3.average_hexagon_edge_length(r, "m")
        estimate = math.pi * (radius_m + 2 * edge) ** 2 / (2.598 * edge * edge)
        if estimate <= MAX_CELLS:
            return r
    return RESOLUTIONS[0]


@lru_cache(maxsize=65_536)
def _centre_and_reach(cell: int) -> tuple[float, float, float]:
    lat, lng = h3.cell_to_latlng(cell)
    reach = max(haversine_m(lat, lng, v_lat, v_lng) for v_lat, v_lng in h3.cell_to_boundary(cell))
    return lat, lng, reach * _MARGIN + 1.0


def covering(lat: float, lng: float, radius_m: float) -> list[int]:
    """Every cell (at `resolution_for(radius_m)`) that may hold a point within the radius."""
    resolution = resolution_for(radius_m)
    start = h3.latlng_to_cell(lat, lng, resolution)
    seen = {start}
    frontier = [start]
    while frontier:
        nxt = []
        for cell in frontier:
            for neighbour in h3.grid_ring(cell, 1):
                if neighbour in seen:
                    continue
                c_lat, c_lng, reach = _centre_and_reach(neighbour)
                if haversine_m(lat, lng, c_lat, c_lng) <= radius_m + reach:
                    seen.add(neighbour)
                    nxt.append(neighbour)
        frontier = nxt
    return sorted(seen)


# ---- GCJ-02 ("Mars coordinates", as Chinese map apps give them) ---------------------------
# The published obfuscation: a Krasovsky-ellipsoid offset of a few hundred metres inside
# China, none outside. It has no closed inverse; `gcj02_to_wgs84` inverts it by iteration.

_A = 6378245.0
_EE = 0.00669342162296594323


def _outside_china(lat: float, lng: float) -> bool:
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _offset(lat: float, lng: float) -> tuple[float, float]:
    x, y = lng - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    wave = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    d_lat += wave
    d_lng += wave
    d_lat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    d_lng += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    d_lat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2 / 3
    d_lng += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad_lat = math.radians(lat)
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return d_lat, d_lng


def wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if _outside_china(lat, lng):
        return lat, lng
    d_lat, d_lng = _offset(lat, lng)
    return lat + d_lat, lng + d_lng


def gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    """The WGS-84 point whose GCJ-02 image is (lat, lng), to well under a centimetre."""
    if _outside_china(lat, lng):
        return lat, lng
    w_lat, w_lng = lat, lng
    for _ in range(30):
        g_lat, g_lng = wgs84_to_gcj02(w_lat, w_lng)
        e_lat, e_lng = g_lat - lat, g_lng - lng
        w_lat, w_lng = w_lat - e_lat, w_lng - e_lng
        if abs(e_lat) < 1e-10 and abs(e_lng) < 1e-10:
            break
    return w_lat, w_lng
