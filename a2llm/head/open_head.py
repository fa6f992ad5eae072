"""The open default head: a procedural, deterministic FLAME-like head (no licence, no download).

How it is made (``build_open_head``):

1. **Skin** — a head is sculpted as a signed-distance field (cranium, midface, mandible, chin, neck,
   cheekbones, ears, brow ridge, eye sockets, closed lids, nose) and ray-cast from a point inside the
   head along a latitude/longitude grid that is denser over the face. Lips, the lip groove and a hair
   cap are radial displacements in grid-angle space, so they line up with the grid rows.
2. **Slits** — the mouth and the two eyes are one grid row each whose middle vertices are duplicated:
   faces above use the originals, faces below the copies. At rest the mouth copies coincide (closed
   lips) and the jaw pulls the lower copies away; the eye rows are opened by rotating the lids about
   the eyeball centres, and the eyelid blendshapes rotate the upper lid back down onto the lower one.
3. **Parts** — eyeballs (sclera, iris, pupil colours), two rows of teeth and an inward-facing mouth
   cavity so that an open mouth shows a dark interior.
4. **Rig** — FLAME's five joints (root, neck, jaw, eyes) with a regressor that reproduces their
   positions from rigid vertices, jaw skinning weights, 50 expression blendshapes whose first ones are
   semantic (see ``EXPRESSION_NAMES``) and the rest small smooth deformations, region masks and mouth
   landmarks.

Everything is float64 numpy with fixed seeds, so the result is reproducible bit-for-bit on one
platform; ``tests/head/test_open_head.py`` regenerates it and compares with the committed file.

    python -m a2llm.head.open_head --out checkpoints/open_head/open_head.npz
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from a2llm.head import sdf
from a2llm.head.base import JOINTS, HeadData

MM = 1e-3

#: Names of the semantic expression bases (columns 0..15 of the expression block).
EXPRESSION_NAMES = (
    "smile", "lip_press", "pucker", "lip_stretch", "brow_raise", "brow_furrow", "cheek_raise",
    "mouth_corner_down", "upper_lip_raise", "lower_lip_depress", "smirk_left", "smirk_right",
    "nose_wrinkle", "cheek_puff", "inner_brow_raise", "squint",
)


@dataclass(frozen=True)
class OpenHeadSpec:
    """Sizes of the open head (metres, radians). Defaults give a ~0.21 m head (crown to chin)."""

    n_theta: int = 68                  # grid rows (latitude), poles excluded
    n_phi: int = 72                    # grid columns (longitude), even so that x = 0 is a column
    origin: tuple = (0.0, -0.005, 0.0)  # ray-casting centre, inside the head
    eye_center_x: float = 0.032
    eye_center_y: float = 0.030
    eye_center_z: float = 0.071
    eye_radius: float = 0.0125
    lid_gap: float = 0.0014            # lid thickness over the eyeball
    eye_half_width: float = 0.0140     # half the width of the eye opening
    upper_lid_open: float = 0.27       # rad the upper lid is rotated up at rest
    lower_lid_open: float = 0.24       # rad the lower lid is rotated down at rest
    mouth_theta: float = float(np.deg2rad(112.5))
    mouth_half_angle: float = 0.25     # rad of longitude the lip split spans each side
    jaw_joint: tuple = (0.0, -0.010, 0.000)
    neck_joint: tuple = (0.0, -0.060, -0.018)
    root_joint: tuple = (0.0, -0.130, -0.020)
    seed: int = 2024


# --------------------------------------------------------------------------------------------------
# Shape
# --------------------------------------------------------------------------------------------------
def _eye_center(spec: OpenHeadSpec, side: int) -> np.ndarray:
    return np.array([side * spec.eye_center_x, spec.eye_center_y, spec.eye_center_z])


def head_sdf(p: np.ndarray, spec: OpenHeadSpec) -> np.ndarray:
    """Signed distance of the skin with closed eyes and no lips, [N, 3] -> [N]."""
    d = sdf.ellipsoid(p, (0, 0.030, -0.012), (0.075, 0.092, 0.098))                       # cranium
    d = sdf.smooth_union(d, sdf.ellipsoid(p, (0, -0.012, 0.028), (0.062, 0.062, 0.064)), 0.02)   # midface
    d = sdf.smooth_union(d, sdf.ellipsoid(p, (0, -0.050, 0.018), (0.055, 0.042, 0.070)), 0.015)  # mandible
    d = sdf.smooth_union(d, sdf.ellipsoid(p, (0, -0.074, 0.064), (0.021, 0.019, 0.019)), 0.012)  # chin
    d = sdf.smooth_union(d, sdf.vertical_cylinder(p, (0, -0.025), (0.050, 0.052), -0.20, 0.0), 0.025)
    d = sdf.smooth_union(d, sdf.ellipsoid(p, (0, 0.049, 0.066), (0.052, 0.012, 0.017)), 0.016)   # brow ridge
    for s in (-1, 1):
        d = sdf.smooth_union(d, sdf.ellipsoid(p, (s * 0.043, 0.004, 0.057), (0.022, 0.016, 0.022)), 0.012)
        d = sdf.smooth_union(d, sdf.ellipsoid(p, (s * 0.074, 0.004, -0.012), (0.011, 0.031, 0.019)), 0.006)
        d = sdf.smooth_subtract(d, sdf.ellipsoid(p, (s * 0.032, 0.029, 0.090), (0.019, 0.015, 0.016)), 0.012)  # socket
        d = sdf.smooth_union(d, sdf.sphere(p, _eye_center(spec, s), spec.eye_radius + spec.lid_gap), 0.004)
    d = sdf.smooth_union(d, sdf.capsule(p, (0, 0.034, 0.082), (0, 0.0, 0.102), 0.0070), 0.008)     # bridge
    d = sdf.smooth_union(d, sdf.sphere(p, (0, -0.006, 0.1015), 0.0100), 0.006)                    # tip
    for s in (-1, 1):
        d = sdf.smooth_union(d, sdf.sphere(p, (s * 0.0135, -0.011, 0.090), 0.0080), 0.006)        # alae
    return d


def _grid_angles(spec: OpenHeadSpec) -> tuple[np.ndarray, np.ndarray]:
    """Row latitudes (from +y, exclusive of the poles) and column longitudes (0 = front, +x = left).

    Rows and columns are placed by inverse-CDF sampling of a density that is ~3x higher over the face,
    so the face gets most of the vertex budget.
    """
    t = np.linspace(0.0, np.pi, 4001)
    dens_t = 0.35 + np.exp(-((t - np.deg2rad(97)) / np.deg2rad(45)) ** 4)
    cdf_t = np.concatenate([[0], np.cumsum(0.5 * (dens_t[1:] + dens_t[:-1]) * np.diff(t))])
    u = (np.arange(spec.n_theta) + 1) / (spec.n_theta + 1)
    thetas = np.interp(u * cdf_t[-1], cdf_t, t)
    p = np.linspace(-np.pi, np.pi, 8001)
    dens_p = 0.35 + np.exp(-(p / np.deg2rad(55)) ** 4)
    cdf_p = np.concatenate([[0], np.cumsum(0.5 * (dens_p[1:] + dens_p[:-1]) * np.diff(p))])
    phis = np.interp(np.arange(spec.n_phi) / spec.n_phi * cdf_p[-1], cdf_p, p)
    phis[spec.n_phi // 2] = 0.0                       # exact front column (lip landmarks live on it)
    mirror = np.concatenate([[np.pi], phis[:0:-1]])      # mirror[k] = -phi of column n - k
    phis = 0.5 * (phis - mirror)                          # exact left/right symmetry
    phis[0] = -np.pi
    # Snap the nearest rows onto the mouth line and the eye line.
    for target in (_eye_line_theta(spec), spec.mouth_theta):
        thetas[np.argmin(np.abs(thetas - target))] = target
    return thetas, phis


def _eye_line_theta(spec: OpenHeadSpec) -> float:
    """Latitude of the ray through the front of the closed lids (the eye slit row)."""
    front = _eye_center(spec, 1) + np.array([0, 0, spec.eye_radius + spec.lid_gap]) - np.asarray(spec.origin)
    return float(np.arccos(front[1] / np.linalg.norm(front)))


def _directions(thetas: np.ndarray, phis: np.ndarray) -> np.ndarray:
    th, ph = np.meshgrid(thetas, phis, indexing="ij")
    return np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], axis=-1)


def _raycast(dirs: np.ndarray, origin: np.ndarray, spec: OpenHeadSpec, r_max: float = 0.26) -> np.ndarray:
    """Distance from ``origin`` to the outermost skin crossing along each direction [N, 3] -> [N]."""
    steps = np.arange(r_max, 0.0, -0.0006)
    r_out = np.full(len(dirs), np.nan)
    for r in steps:                                    # march inwards; first inside sample wins
        todo = np.isnan(r_out)
        if not todo.any():
            break
        inside = head_sdf(origin + dirs[todo] * r, spec) < 0
        idx = np.flatnonzero(todo)[inside]
        r_out[idx] = r
    if np.isnan(r_out).any():
        raise RuntimeError("open head: some rays missed the head surface")
    lo, hi = r_out.copy(), r_out + 0.0006              # lo inside, hi outside
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        inside = head_sdf(origin + dirs * mid[:, None], spec) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def _radial_features(th: np.ndarray, ph: np.ndarray, spec: OpenHeadSpec) -> tuple[np.ndarray, np.ndarray]:
    """Radial offsets for lips + groove, and the hair weight, on the grid angles."""
    tm = spec.mouth_theta
    lip_win = np.exp(-(ph / 0.27) ** 4)
    offset = (0.0040 * np.exp(-((th - (tm - 0.050)) / 0.040) ** 2)       # upper lip
              + 0.0045 * np.exp(-((th - (tm + 0.058)) / 0.046) ** 2)     # lower lip
              - 0.0022 * np.exp(-((th - tm) / 0.012) ** 2)) * lip_win     # groove between them
    hair = _hair_weight(th, ph)
    return offset + 0.0025 * hair, hair


def _hair_weight(th: np.ndarray, ph: np.ndarray) -> np.ndarray:
    """1 on the hair cap (above a hairline that is high at the front and low at the nape)."""
    hairline = np.deg2rad(40) + np.deg2rad(62) * sdf.smoothstep(1.0, 2.7, np.abs(ph))
    return sdf.smoothstep(hairline + 0.08, hairline - 0.08, th)


# --------------------------------------------------------------------------------------------------
# Mesh assembly
# --------------------------------------------------------------------------------------------------
def _uv_sphere(center, radius, n_lat: int, n_lon: int, inward: bool = False):
    """Closed UV sphere whose first pole faces +z (the gaze direction of an eyeball).

    Returns (vertices [N, 3], faces [F, 3], polar angle from +z [N]); ``inward`` flips the faces so
    the sphere is seen from inside (the mouth cavity).
    """
    lat = np.linspace(0, np.pi, n_lat + 2)[1:-1]
    lon = np.linspace(-np.pi, np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    # Pole along +z so that polar angle = angle from the gaze direction (iris and pupil colours).
    v = np.stack([np.sin(la) * np.cos(lo), np.sin(la) * np.sin(lo), np.cos(la)], -1).reshape(-1, 3)
    v = np.vstack([[0, 0, 1], v, [0, 0, -1]])
    polar = np.concatenate([[0], la.ravel(), [np.pi]])
    faces = []
    idx = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        faces.append((0, idx(0, j), idx(0, j + 1)))
        faces.append((len(v) - 1, idx(n_lat - 1, j + 1), idx(n_lat - 1, j)))
        for i in range(n_lat - 1):
            faces.append((idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)))
            faces.append((idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)))
    faces = np.array(faces)
    faces = _orient(v, faces, outward=not inward)
    return np.asarray(center) + radius * v, faces, polar


def _orient(verts: np.ndarray, faces: np.ndarray, outward: bool = True) -> np.ndarray:
    """Flip all faces if their winding disagrees with the wanted direction (signed volume test)."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    vol = np.einsum("ij,ij->i", a, np.cross(b - verts.mean(0), c - verts.mean(0))).sum()
    if (vol > 0) != outward:
        faces = faces[:, ::-1]
    return np.ascontiguousarray(faces)


class _Builder:
    """Accumulates vertices, faces and per-vertex attributes of the parts of the head."""

    def __init__(self):
        self.verts: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.part: list[np.ndarray] = []
        self.n = 0

    def add(self, verts: np.ndarray, faces: np.ndarray, part: str) -> np.ndarray:
        idx = np.arange(self.n, self.n + len(verts))
        self.verts.append(np.asarray(verts, float))
        if len(faces):
            self.faces.append(np.asarray(faces) + self.n)
        self.part.append(np.array([part] * len(verts)))
        self.n += len(verts)
        return idx

    def arrays(self):
        return np.vstack(self.verts), np.vstack(self.faces), np.concatenate(self.part)


def _skin(spec: OpenHeadSpec, builder: _Builder):
    """Ray-cast the skin grid, split the slit rows and triangulate. Returns bookkeeping for the rig."""
    thetas, phis = _grid_angles(spec)
    origin = np.asarray(spec.origin, float)
    dirs = _directions(thetas, phis)                                          # [R, C, 3]
    R, C = dirs.shape[:2]
    radius = _raycast(dirs.reshape(-1, 3), origin, spec).reshape(R, C)
    th, ph = np.meshgrid(thetas, phis, indexing="ij")
    offset, hair = _radial_features(th, ph, spec)
    grid = origin + dirs * (radius + offset)[..., None]

    row_mouth = int(np.argmin(np.abs(thetas - spec.mouth_theta)))
    row_eye = int(np.argmin(np.abs(thetas - _eye_line_theta(spec))))
    slit_cols = {"mouth": np.flatnonzero(np.abs(phis) < spec.mouth_half_angle)}
    for name, s in (("eye_left", 1), ("eye_right", -1)):
        x = grid[row_eye, :, 0]
        slit_cols[name] = np.flatnonzero((np.abs(x - s * spec.eye_center_x) < spec.eye_half_width)
                                         & (grid[row_eye, :, 2] > 0))
    slit_rows = {"mouth": row_mouth, "eye_left": row_eye, "eye_right": row_eye}

    vid = np.arange(R * C).reshape(R, C)
    n_grid = R * C
    dup_src, dup_of = [], {}                       # duplicated (row, col) -> new index
    for name, cols in slit_cols.items():
        for c in cols:
            dup_of[(slit_rows[name], int(c))] = n_grid + len(dup_src)
            dup_src.append(vid[slit_rows[name], c])
    dup_src = np.array(dup_src, dtype=np.int64)
    top, bottom = n_grid + len(dup_src), n_grid + len(dup_src) + 1

    faces = []
    for i in range(R - 1):
        for j in range(C):
            j2 = (j + 1) % C
            a, b, c, d = vid[i, j], vid[i + 1, j], vid[i + 1, j2], vid[i, j2]
            # Faces *below* a slit row take the duplicated vertices of that row.
            a = dup_of.get((i, j), a)
            d = dup_of.get((i, j2), d)
            faces += [(a, b, c), (a, c, d)]
    for j in range(C):
        j2 = (j + 1) % C
        faces.append((top, vid[0, j], vid[0, j2]))
        faces.append((bottom, vid[R - 1, j2], vid[R - 1, j]))
    faces = np.array(faces)

    top_p = origin + np.array([0, 1, 0]) * _raycast(np.array([[0, 1.0, 0]]), origin, spec)
    bot_p = origin + np.array([0, -1, 0]) * _raycast(np.array([[0, -1.0, 0]]), origin, spec)
    verts = np.vstack([grid.reshape(-1, 3), grid.reshape(-1, 3)[dup_src], top_p, bot_p])
    faces = _orient(verts, faces, outward=True)
    idx = builder.add(verts, faces, "skin")

    row = np.concatenate([np.repeat(np.arange(R), C), [slit_rows[k] for k, cols in slit_cols.items() for _ in cols], [-1, R]])
    col = np.concatenate([np.tile(np.arange(C), R), [c for cols in slit_cols.values() for c in cols], [0, 0]])
    is_dup = np.zeros(len(verts), bool)
    is_dup[n_grid:n_grid + len(dup_src)] = True
    th_v = np.concatenate([th.ravel(), th.ravel()[dup_src], [0.0, np.pi]])
    ph_v = np.concatenate([ph.ravel(), ph.ravel()[dup_src], [0.0, 0.0]])
    hair_v = np.concatenate([hair.ravel(), hair.ravel()[dup_src], [1.0, 0.0]])
    slit_vertex = {}
    for name, cols in slit_cols.items():
        r = slit_rows[name]
        slit_vertex[name] = {"upper": vid[r, cols], "lower": np.array([dup_of[(r, int(c))] for c in cols]),
                             "corners": vid[r, [cols.min() - 1, (cols.max() + 1) % C]]}
    return dict(idx=idx, row=row, col=col, is_dup=is_dup, theta=th_v, phi=ph_v, hair=hair_v,
                slit_rows=slit_rows, slit_vertex=slit_vertex, phis=phis, thetas=thetas)


def _rotate_x(rel: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate offsets [N, 3] about +x by per-vertex angles [N] (a positive angle turns +z towards -y)."""
    c, s = np.cos(angle), np.sin(angle)
    y = rel[:, 1] * c - rel[:, 2] * s
    z = rel[:, 1] * s + rel[:, 2] * c
    return np.stack([rel[:, 0], y, z], -1)


def _lid_fields(V: np.ndarray, skin: dict, spec: OpenHeadSpec):
    """Open the eye slits; return (rest vertices, eyelid blendshapes [2, V, 3]).

    Upper and lower lids are rotated about their eyeball centre by an angle that is largest at the
    slit, follows an almond profile across the eye and fades over ~1 cm away from it. The closed
    state rotates the upper lid down onto the lower lid's rest position; the blendshape is
    closed - rest.
    """
    rest, eyelids = V.copy(), np.zeros((2,) + V.shape)
    idx = skin["idx"]
    for k, (name, side) in enumerate((("eye_left", 1), ("eye_right", -1))):
        c = _eye_center(spec, side)
        r = skin["slit_rows"][name]
        x_rel = V[idx, 0] - c[0]
        profile = np.sqrt(np.clip(1.0 - (x_rel / spec.eye_half_width) ** 2, 0.0, 1.0))
        y_slit = c[1]
        dy = V[idx, 1] - y_slit
        front = V[idx, 2] > c[2]
        above = (skin["row"] <= r) & ~skin["is_dup"]
        below = ~above
        near = front & (profile > 0)
        g_up = np.where(above & near, np.exp(-(np.clip(dy, 0, None) / 0.0075) ** 2), 0.0) * profile
        g_lo = np.where(below & near, np.exp(-(np.clip(-dy, 0, None) / 0.0050) ** 2), 0.0) * profile
        rel = V[idx] - c
        # Negative rotation about +x moves a front point up.
        rest_rel = _rotate_x(rel, -spec.upper_lid_open * g_up + spec.lower_lid_open * g_lo)
        closed_rel = _rotate_x(rel, spec.lower_lid_open * (g_up + g_lo))
        moved = (g_up + g_lo) > 0
        rest[idx[moved]] = c + rest_rel[moved]
        eyelids[k, idx[moved]] = closed_rel[moved] - rest_rel[moved]
    return rest, eyelids


def build_open_head(spec: OpenHeadSpec = OpenHeadSpec()) -> HeadData:
    """Generate the open default head (deterministic)."""
    b = _Builder()
    skin = _skin(spec, b)
    # Parts are added after the skin so that skin indices stay grid-ordered.
    eyes = {}
    for name, side in (("left_eyeball", 1), ("right_eyeball", -1)):
        v, f, polar = _uv_sphere(_eye_center(spec, side), spec.eye_radius, 10, 18)
        eyes[name] = (b.add(v, f, name), polar)
    verts, faces, part = b.arrays()
    mouth = skin["slit_vertex"]["mouth"]
    y_slit, z_slit = verts[mouth["upper"], 1].mean(), verts[mouth["upper"], 2].max()
    teeth_u, teeth_l = _teeth(y_slit, z_slit - 0.0065)
    b.add(*teeth_u, "upper_teeth")
    il = b.add(*teeth_l, "lower_teeth")
    # Wider than the mouth so that stretched or smiling corners still show the dark interior.
    centre = np.array([0, y_slit - 0.002, z_slit - 0.029])
    cv, cf, _ = _uv_sphere(centre, 1.0, 8, 16, inward=True)
    cv = (cv - centre) * [0.033, 0.017, 0.025] + centre
    ic = b.add(cv, cf, "mouth_interior")
    verts, faces, part = b.arrays()

    verts, eyelid_dirs = _lid_fields(verts, skin, spec)
    weights = _skin_weights(verts, part, skin, spec, eyes, il, ic)
    J_regressor = _joint_regressor(verts, part, skin, spec, eyes)
    regions, landmarks = _regions(verts, part, skin, spec, eyes)
    expr = _expression_dirs(verts, faces, part, skin, landmarks, spec)
    colors = _colors(verts, part, skin, spec, eyes)
    data = HeadData(name="open-head-v1", template=verts.astype(np.float32), faces=faces.astype(np.int64),
                    expr_dirs=expr.astype(np.float32), J_regressor=J_regressor.astype(np.float32),
                    lbs_weights=weights.astype(np.float32), posedirs=None,
                    eyelid_dirs=eyelid_dirs.astype(np.float32), regions=regions, landmarks=landmarks,
                    vertex_colors=colors.astype(np.float32))
    data.validate()
    return data


def _teeth(y_slit: float, z_front: float):
    """Upper and lower incisor strips along the dental arch, facing +z. Returns ((v, f), (v, f))."""
    t = np.linspace(-1, 1, 13)
    x, z = 0.0165 * t, z_front - 0.012 * t ** 2
    out = []
    for y_top, y_bot, dz in ((y_slit + 0.0060, y_slit - 0.0022, 0.0), (y_slit + 0.0005, y_slit - 0.0065, -0.0015)):
        v = np.concatenate([np.stack([x, np.full_like(x, y_top), z + dz], -1),
                            np.stack([x, np.full_like(x, y_bot), z + dz], -1)])
        n = len(t)
        f = [(i, n + i, n + i + 1) for i in range(n - 1)] + [(i, n + i + 1, i + 1) for i in range(n - 1)]
        f = np.array(f)
        # Face the camera (+z): flip if the first triangle's normal points backwards.
        nrm = np.cross(v[f[0, 1]] - v[f[0, 0]], v[f[0, 2]] - v[f[0, 0]])
        out.append((v, f if nrm[2] > 0 else f[:, ::-1]))
    return out[0], out[1]


# --------------------------------------------------------------------------------------------------
# Rig
# --------------------------------------------------------------------------------------------------
def _skin_weights(V, part, skin, spec, eyes, lower_teeth, cavity) -> np.ndarray:
    """LBS weights [V, 5]: jaw below the mouth line and along the jaw, neck elsewhere, root low on the neck."""
    W = np.zeros((len(V), len(JOINTS)))
    j_root, j_neck, j_jaw, j_le, j_re = range(5)
    idx = skin["idx"]
    p = V[idx]
    aphi = np.abs(skin["phi"])
    y_m = p[skin["slit_vertex"]["mouth"]["upper"], 1].mean()
    boundary = y_m + (-0.014 - y_m) * sdf.smoothstep(0.30, 1.30, aphi)
    width = 0.003 + 0.012 * sdf.smoothstep(0.25, 1.0, aphi)
    jaw = sdf.smoothstep(boundary + width, boundary - width, p[:, 1])
    jaw *= sdf.smoothstep(-0.106, -0.090, p[:, 1]) * sdf.smoothstep(-0.035, 0.0, p[:, 2])
    mouth = skin["slit_vertex"]["mouth"]
    jaw[mouth["upper"]] = 0.0
    jaw[mouth["lower"]] = 1.0
    root = sdf.smoothstep(-0.10, -0.16, p[:, 1])
    W[idx, j_jaw] = jaw
    W[idx, j_root] = (1 - jaw) * root
    W[idx, j_neck] = (1 - jaw) * (1 - root)
    W[eyes["left_eyeball"][0], j_le] = 1.0
    W[eyes["right_eyeball"][0], j_re] = 1.0
    W[part == "upper_teeth", j_neck] = 1.0
    W[lower_teeth, j_jaw] = 1.0
    y_m = V[skin["slit_vertex"]["mouth"]["upper"], 1].mean()
    w_cav = sdf.smoothstep(y_m + 0.0005, y_m - 0.0055, V[cavity, 1])
    W[cavity, j_jaw] = w_cav
    W[cavity, j_neck] = 1 - w_cav
    return W


def _joint_regressor(V, part, skin, spec, eyes) -> np.ndarray:
    """[5, V]: eyes = mean of their eyeball; other joints = non-negative mixes of rigid skull/neck
    vertices (ears, scalp, back of the neck) solved by NNLS, so expressions never move a joint."""
    J = np.zeros((5, len(V)))
    for k, name in ((3, "left_eyeball"), (4, "right_eyeball")):
        J[k, eyes[name][0]] = 1.0 / len(eyes[name][0])
    skin_idx = skin["idx"]
    p = V[skin_idx]
    rigid = skin_idx[(p[:, 2] < -0.03) | (np.abs(p[:, 0]) > 0.066)]
    A = np.vstack([V[rigid].T, 100.0 * np.ones(len(rigid))])
    for k, target in ((0, spec.root_joint), (1, spec.neck_joint), (2, spec.jaw_joint)):
        w, res = nnls(A, np.concatenate([target, [100.0]]), maxiter=20 * len(rigid))
        if res > 1e-7:
            raise RuntimeError(f"open head: joint {JOINTS[k]} not reachable from rigid vertices ({res:.2e})")
        J[k, rigid] = w
    return J


def _regions(V, part, skin, spec, eyes):
    idx = skin["idx"]
    p = V[idx]
    th, ph, hair = skin["theta"], skin["phi"], skin["hair"]
    mouth = skin["slit_vertex"]["mouth"]
    lip_w = np.exp(-(ph / 0.27) ** 4) * np.exp(-((th - spec.mouth_theta) / 0.085) ** 2)
    lips = idx[(lip_w > 0.35)]
    face = idx[(hair < 0.5) & (p[:, 2] > 0.005) & (np.abs(p[:, 0]) < 0.064) & (p[:, 1] > -0.096)]
    face_mask = np.zeros(len(V), bool)
    face_mask[face] = True
    forehead = np.flatnonzero(face_mask & (V[:, 1] > 0.047))
    eye_regions = {}
    for name, s in (("left_eye_region", 1), ("right_eye_region", -1)):
        c = _eye_center(spec, s)
        eye_regions[name] = np.flatnonzero(face_mask & (np.abs(V[:, 0] - c[0]) < 0.024)
                                           & (np.abs(V[:, 1] - c[1]) < 0.017))
    eye_region = np.union1d(eye_regions["left_eye_region"], eye_regions["right_eye_region"])
    nose = np.flatnonzero(face_mask & (np.abs(V[:, 0]) < 0.02) & (V[:, 1] > -0.02) & (V[:, 1] < 0.035)
                          & (V[:, 2] > 0.085))
    regions = {
        "lips": lips, "face": face, "upper_face": np.union1d(eye_region, forehead),
        "eye_region": eye_region, "forehead": forehead, "nose": nose, **eye_regions,
        "scalp": idx[hair >= 0.5], "neck": idx[p[:, 1] < -0.10],
        "left_eyeball": eyes["left_eyeball"][0], "right_eyeball": eyes["right_eyeball"][0],
        "teeth": np.flatnonzero(np.isin(part, ["upper_teeth", "lower_teeth"])),
        "mouth_interior": np.flatnonzero(part == "mouth_interior"),
        "skin": idx,
    }
    centre = np.argmin(np.abs(skin["phi"][mouth["upper"]]))
    corners = mouth["corners"]
    left, right = (corners[0], corners[1]) if V[corners[0], 0] > 0 else (corners[1], corners[0])
    landmarks = {"upper_lip": int(mouth["upper"][centre]), "lower_lip": int(mouth["lower"][centre]),
                 "mouth_left": int(left), "mouth_right": int(right)}
    return {k: np.asarray(v, np.int64) for k, v in regions.items()}, landmarks


def _vertex_normals(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    n = np.zeros_like(V)
    for k in range(3):
        np.add.at(n, F[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _expression_dirs(V, F, part, skin, landmarks, spec) -> np.ndarray:
    """[V, 3, 50] expression blendshapes (metres per unit coefficient), zero off the skin."""
    skin_mask = part == "skin"
    mouth = skin["slit_vertex"]["mouth"]
    side = np.zeros(len(V))                                # +1 upper lip side, -1 lower lip side
    side[skin["idx"]] = np.where((skin["row"] <= skin["slit_rows"]["mouth"]) & ~skin["is_dup"], 1.0, -1.0)
    y_slit = V[mouth["upper"], 1].mean()
    normals = _vertex_normals(V, F)
    corner = {1: V[landmarks["mouth_left"]], -1: V[landmarks["mouth_right"]]}
    mouth_c = 0.5 * (V[landmarks["upper_lip"]] + V[landmarks["lower_lip"]])
    front = _front_point_fn(V, skin)

    def g(c, sigma):
        s = np.broadcast_to(np.asarray(sigma, float), (3,))
        return np.exp(-0.5 * (((V - np.asarray(c)) / s) ** 2).sum(1))[:, None]

    def vec(*xyz):
        return np.array(xyz) * MM

    lip_body = np.clip(np.abs(V[:, 1] - y_slit) / 0.004, 0, 1)[:, None]   # 0 at the slit, 1 in the lip
    mouth_g = g(mouth_c, (0.021, 0.010, 0.02))
    upper, lower = (side > 0)[:, None], (side < 0)[:, None]
    D = []
    D.append(sum(g(corner[s], 0.011) * vec(s * 0.5, 1.0, -0.6) * 3.2
                 + g(front(s * 0.036, -0.006), 0.014) * vec(0, 1.4, 0.6) for s in (1, -1)))       # smile
    D.append(mouth_g * (vec(0, -1.3, 0) * side[:, None] * lip_body + vec(0, 0, -1.3)))         # lip press
    D.append(mouth_g * (np.stack([-0.18 * V[:, 0], np.zeros(len(V)), np.full(len(V), 3 * MM)], 1)
                        + vec(0, 0.5, 0) * side[:, None]))                                       # pucker
    D.append(sum(g(corner[s], 0.012) * vec(s * 2.5, -0.3, -0.5) for s in (1, -1)))             # lip stretch
    brow = (g(front(0, 0.048), (0.05, 0.014, 0.2)) * sdf.smoothstep(0.03, 0.06, V[:, 2])[:, None]
            * sdf.smoothstep(0.09, 0.07, V[:, 1])[:, None])       # brows and forehead, not the scalp
    D.append(brow * vec(0, 3.4, 0.2))                                                          # brow raise
    D.append(sum(g(front(s * 0.016, 0.046), 0.011) * vec(-s * 1.5, -2.3, 0.6) for s in (1, -1)))  # furrow
    D.append(sum(g(front(s * 0.036, 0.0), 0.013) * vec(0, 2.0, 0.8)
                 + g(front(s * 0.032, 0.019), 0.006) * vec(0, 0.8, 0) for s in (1, -1)))          # cheek raise
    D.append(sum(g(corner[s], 0.011) * vec(s * 0.3, -2.2, 0) for s in (1, -1)))                # corner down
    D.append(g(mouth_c, (0.02, 0.008, 0.02)) * upper * vec(0, 1.8, 0.5)
             + sum(g(front(s * 0.0135, -0.011), 0.007) * vec(0, 0.6, 0) for s in (1, -1)))        # upper lip up
    D.append(g(mouth_c, (0.02, 0.009, 0.02)) * lower * vec(0, -2.0, 0.6))                     # lower lip down
    for s in (1, -1):                                                                           # smirks L, R
        D.append(g(corner[s], 0.011) * vec(s * 0.8, 2.2, -1.0) + g(front(s * 0.036, -0.006), 0.013) * vec(0, 0.6, 0.3))
    D.append(g(front(0, 0.012), 0.010) * vec(0, 1.2, 0)
             + sum(g(front(s * 0.0135, -0.011), 0.008) * vec(0, 1.2, 0) for s in (1, -1)))        # nose wrinkle
    D.append(sum(g(front(s * 0.038, -0.030), 0.015) * normals * 2.5 * MM for s in (1, -1)))     # cheek puff
    D.append(sum(g(front(s * 0.016, 0.047), 0.011) * vec(0, 2.2, 0) for s in (1, -1)))        # inner brow up
    D.append(sum(g(front(s * 0.032, 0.018), 0.006) * (V[:, 1] < spec.eye_center_y)[:, None] * vec(0, 1.2, 0.3)
                 for s in (1, -1)))                                                              # squint
    assert len(D) == len(EXPRESSION_NAMES)
    rng = np.random.default_rng(spec.seed)
    face_idx = np.flatnonzero(skin_mask & (V[:, 2] > 0.03) & (np.abs(V[:, 0]) < 0.055)
                              & (V[:, 1] > -0.085) & (V[:, 1] < 0.07))
    for k in range(len(D), 50):
        d = np.zeros_like(V)
        symmetric = k % 2 == 0
        for _ in range(3):
            c = V[rng.choice(face_idx)]
            sigma = rng.uniform(0.010, 0.022)
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            amp = 0.9 * MM * 0.97 ** (k - len(EXPRESSION_NAMES))
            d += g(c, sigma) * direction * amp
            if symmetric:
                d += g(c * [-1, 1, 1], sigma) * direction * [-1, 1, 1] * amp
        D.append(d)
    E = np.stack(D, axis=-1)                                # [V, 3, 50]
    E[~skin_mask] = 0.0
    return E


def _front_point_fn(V, skin):
    """(x, y) -> the frontmost skin vertex position near (x, y): anchors for the expression bumps."""
    p = V[skin["idx"]]
    front = p[p[:, 2] > 0.02]

    def front_point(x, y):
        d = (front[:, 0] - x) ** 2 + (front[:, 1] - y) ** 2
        near = front[d < d.min() + 1e-5]
        return near[np.argmax(near[:, 2])]
    return front_point


def _colors(V, part, skin, spec, eyes) -> np.ndarray:
    """[V, 3] albedo in [0, 1]: skin, lips, brows, hair cap, eyes, teeth and mouth interior."""
    col = np.zeros((len(V), 3))
    skin_c, lip_c = np.array([0.87, 0.69, 0.58]), np.array([0.74, 0.40, 0.40])
    brow_c, hair_c = np.array([0.30, 0.21, 0.16]), np.array([0.23, 0.16, 0.12])
    idx = skin["idx"]
    p = V[idx]
    th, ph = skin["theta"], skin["phi"]
    lip_w = np.exp(-(ph / 0.26) ** 4) * np.exp(-((th - spec.mouth_theta) / 0.075) ** 6)
    brow_w = np.zeros(len(idx))
    for s in (1, -1):
        u = (p[:, 0] - s * 0.031) / 0.018
        arch = 0.047 + 0.004 * (1 - u ** 2) - 0.002 * s * u
        brow_w = np.maximum(brow_w, np.exp(-u ** 6) * np.exp(-((p[:, 1] - arch) / 0.0032) ** 4) * (p[:, 2] > 0.05))
    c = skin_c * (1 - lip_w[:, None]) + lip_c * lip_w[:, None]
    c = c * (1 - brow_w[:, None]) + brow_c * brow_w[:, None]
    hair = skin["hair"][:, None]
    col[idx] = c * (1 - hair) + hair_c * hair
    for name in ("left_eyeball", "right_eyeball"):
        ei, polar = eyes[name]
        iris = sdf.smoothstep(0.58, 0.52, polar)[:, None]
        pupil = sdf.smoothstep(0.22, 0.18, polar)[:, None]
        e = np.array([0.95, 0.94, 0.92]) * (1 - iris) + np.array([0.33, 0.23, 0.15]) * iris
        col[ei] = e * (1 - pupil) + np.array([0.04, 0.03, 0.03]) * pupil
    col[np.isin(part, ["upper_teeth", "lower_teeth"])] = [0.93, 0.91, 0.85]
    col[part == "mouth_interior"] = [0.30, 0.07, 0.08]
    return col


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Generate the open default head (procedural, deterministic).")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "checkpoints/open_head/open_head.npz",
                    help="output .npz (default: checkpoints/open_head/open_head.npz)")
    args = ap.parse_args(argv)
    data = build_open_head()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data.save_npz(args.out)
    print(f"wrote {args.out}: {len(data.template)} vertices, {len(data.faces)} faces, "
          f"{args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
