"""Test support: analytically rotated spot patterns shared by the similarity/clustering tests."""

import numpy as np

from stemnmf_hs.data._simulate import CRYSTAL_G_VECTORS, spot_pattern

SHAPE = (96, 96)
CENTER = (48.0, 48.0)
G_OBLIQUE = CRYSTAL_G_VECTORS[2]  # only Friedel (2-fold) symmetry
G_SQUARE = CRYSTAL_G_VECTORS[1]


def _rot_vec(v, deg):
    """Rotate an [x, y] pixel vector counter-clockwise *as displayed* (y = row, down)."""
    t = np.deg2rad(deg)
    x, y = v
    return (x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t))


def crystal(deg=0.0, g=G_OBLIQUE):
    """Spot pattern of a lattice rotated analytically by ``deg`` (CCW on screen)."""
    return spot_pattern(
        shape=SHAPE, g1=_rot_vec(g[0], deg), g2=_rot_vec(g[1], deg), center=CENTER,
        max_radius=44.0, dtype=np.float64,
    )


def cosine(a, b):
    """Cosine similarity of two arrays, flattened."""
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


#: fcc Cu (Fm-3m, a = 3.615 Å) as a minimal CIF, for the indexing and CLI tests.
CU_CIF = """data_Cu
_symmetry_space_group_name_H-M   'F m -3 m'
_symmetry_Int_Tables_number      225
_cell_length_a   3.615
_cell_length_b   3.615
_cell_length_c   3.615
_cell_angle_alpha   90
_cell_angle_beta    90
_cell_angle_gamma   90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Cu1 Cu 0 0 0 1
"""
