"""Result of ``s.estimate_number_of_components``: loss curve, knee, IQA matrices, suggested k.

The arithmetic lives in :mod:`stemnmf_hs.model_selection` and :mod:`stemnmf_hs.iqa`; this
module wraps the arrays in HyperSpy signals and draws Cao et al. 2025, Fig. 3.
"""

from __future__ import annotations

import re

import numpy as np

from .. import model_selection as _ms
from ._build import component_matrix

__all__ = ["NumberOfComponentsEstimate"]


def _unit_of(units):
    """'electrons' from 'electrons' or from a HyperSpy quantity 'Intensity (electrons)'."""
    m = re.fullmatch(r".*\((.+)\)\s*", units or "")
    return m.group(1).strip() if m else (units or "").strip()

_LABELS = {"ssim": "SSIM", "psnr": "PSNR", "gmsd": "GMSD", "mdsi": "MDSI"}
_UNITS = {"psnr": "dB"}
#: Colour maps: bright = similar for SSIM and PSNR, bright = different for GMSD and MDSI.
_CMAPS = {"ssim": "viridis", "psnr": "viridis", "gmsd": "magma", "mdsi": "magma"}


class NumberOfComponentsEstimate:
    """Choice of the number of NMF components (Cao et al. 2025, Fig. 3).

    Built from plain arrays: the K-component loss of every fitted ``k`` and the
    representative diffractions of the fits in the range of interest.  The constructor finds
    the knee (:func:`stemnmf_hs.model_selection.find_knee`), the range ``knee +/-
    half_width`` (:func:`~stemnmf_hs.model_selection.range_of_interest`), the pairwise IQA
    matrices of each fit in the range (:func:`~stemnmf_hs.model_selection.iqa_matrices`) and
    the suggestion (:func:`~stemnmf_hs.model_selection.suggest_k`).

    Parameters
    ----------
    k_values : array_like of int
        ``(n,)`` fitted numbers of components, strictly increasing, ``n >= 3``.
    loss : array_like of float
        ``(n,)`` K-component loss ``mean |V - W H|`` of every fit, data unit per pixel.
    representatives : dict
        ``k -> (k, ny, nx)`` representative diffractions ``w_k * max(h_k)``
        (:func:`stemnmf_hs.overlap.representative_diffractions`) for at least every ``k`` of
        the range of interest; other entries are ignored.
    ssim_threshold, gmsd_threshold : float or None
        Duplicate-pair thresholds of :func:`~stemnmf_hs.model_selection.suggest_k` (defaults
        0.90 and 0.07); ``None`` switches a criterion off.
    half_width : int, default 4
        Half width of the range of interest.
    rule : {"first_duplicate", "largest_distinct"}
        Decision rule of :func:`~stemnmf_hs.model_selection.suggest_k`.
    knee : int, optional
        Impose the knee instead of locating it (e.g. read off the plot).
    data_range : float, optional
        Common IQA data range of every fit; default: each fit's own stack maximum.
    loss_units : str, optional
        Unit of the data (e.g. "electrons"), shown on the loss curve; a HyperSpy quantity
        such as "Intensity (electrons)" gives its unit in parentheses.
    use_loss : bool, default True
        A ``k`` must also lower the loss below that of every smaller ``k`` to count as new
        diffraction (see :func:`~stemnmf_hs.model_selection.suggest_k`).

    Attributes
    ----------
    suggested_k : int
        The suggestion.
    reason : str
        Why (which ``k`` first produced duplicates, or why the range may be too small).
    knee : int
        Knee of the loss curve; ``knee_method`` says how it was found ("kneed", "chord",
        "none", "given").
    range_of_interest : tuple of int
        ``(k_min, k_max)`` of the range; ``roi_k_values`` holds its ``k`` ``(m,)``.
    k_values : numpy.ndarray
        ``(n,)`` int fitted ``k``.
    loss_values : numpy.ndarray
        ``(n,)`` float loss.
    loss : hyperspy.signals.Signal1D
        ``(| n)`` the loss curve; axis "number of components" (offset ``k_min``, scale the
        ``k`` step, non-uniform if the steps differ).
    iqa_arrays : dict
        ``k -> {metric -> (k, k) numpy.ndarray}`` for every ``k`` of the range.
    iqa : dict
        ``k -> {metric -> Signal2D (| k, k)}``, axes "component j" and "component i".
    criteria : dict
        Per-``k`` arrays ``(m,)`` of the rule (``distinct``, ``lowers_loss``,
        ``qualifies``, ``n_duplicate_pairs``,
        ``max_ssim``, ``min_gmsd``, ``max_psnr``, ``min_mdsi``) aligned with ``roi_k_values``.
    thresholds : dict
        ``{"ssim": ..., "gmsd": ...}``.
    rule : str
        The decision rule used.
    representatives : dict
        ``k -> (k, ny, nx)`` arrays used, for the range of interest.

    Raises
    ------
    ValueError
        From the model-selection functions: too few or unsorted ``k``, non-finite loss,
        representatives missing for a ``k`` of the range or of the wrong shape.
    """

    def __init__(self, k_values, loss, representatives, *,
                 ssim_threshold=_ms.DEFAULT_SSIM_THRESHOLD,
                 gmsd_threshold=_ms.DEFAULT_GMSD_THRESHOLD,
                 half_width=_ms.DEFAULT_HALF_WIDTH, rule="first_duplicate", knee=None,
                 data_range=None, loss_units="", use_loss=True):
        ks, y = _ms._check_curve(k_values, loss)
        self.k_values = ks
        self.loss_values = y
        self.loss_units = _unit_of(loss_units)
        if knee is None:
            self.knee, self.knee_method = _ms.find_knee(ks, y, return_method=True)
        else:
            if int(knee) not in set(ks.tolist()):
                raise ValueError(f"knee={knee!r} is not one of the fitted k {ks.tolist()}.")
            self.knee, self.knee_method = int(knee), "given"
        self.half_width = int(half_width)
        roi = _ms.range_of_interest(self.knee, ks, half_width)
        self.roi_k_values = roi
        self.range_of_interest = (int(roi[0]), int(roi[-1]))

        missing = [int(k) for k in roi if int(k) not in representatives]
        if missing:
            raise ValueError(
                f"representatives lack the fits k = {missing} of the range of interest "
                f"{self.range_of_interest}; give w_k * max(h_k) for every k of the range."
            )
        self.representatives = {}
        for k in roi:
            rep = np.asarray(representatives[int(k)], dtype=np.float64)
            if rep.ndim != 3 or rep.shape[0] != k:
                raise ValueError(
                    f"representatives[{k}] must be a stack (k={k}, ny, nx); got {rep.shape}."
                )
            self.representatives[int(k)] = rep
        self.iqa_arrays = {k: _ms.iqa_matrices(rep, data_range=data_range)
                           for k, rep in self.representatives.items()}
        res = _ms.suggest_k(roi, self.iqa_arrays, ssim_threshold=ssim_threshold,
                            gmsd_threshold=gmsd_threshold, rule=rule,
                            loss_k_values=ks if use_loss else None,
                            loss=y if use_loss else None)
        self.suggested_k = res["suggested_k"]
        self.reason = res["reason"]
        self.rule = res["rule"]
        self.thresholds = res["thresholds"]
        self.criteria = {key: res[key] for key in ("distinct", "lowers_loss", "qualifies",
                                                    "n_duplicate_pairs",
                                                    "max_ssim", "min_gmsd", "max_psnr",
                                                    "min_mdsi")}
        self.loss = self._loss_signal()
        self.iqa = {k: {m: component_matrix(mat, f"{_LABELS[m]} (k={k})", _UNITS.get(m, ""))
                        for m, mat in mats.items()}
                    for k, mats in self.iqa_arrays.items()}

    # ------------------------------------------------------------------ signals
    def _loss_signal(self):
        import hyperspy.api as hs

        ks = self.k_values
        steps = np.diff(ks)
        s = hs.signals.Signal1D(self.loss_values.copy())
        ax = s.axes_manager.signal_axes[0]
        if np.all(steps == steps[0]):
            ax.scale = float(steps[0])
            ax.offset = float(ks[0])
        else:
            s = hs.signals.Signal1D(
                self.loss_values.copy(),
                axes=[{"axis": ks.astype(float), "name": "number of components"}],
            )
            ax = s.axes_manager.signal_axes[0]
        ax.name = "number of components"
        s.metadata.General.title = "K-component loss"
        unit = f" ({self.loss_units})" if self.loss_units else ""
        s.metadata.set_item("Signal.quantity", f"K-component loss{unit}")
        return s

    # ------------------------------------------------------------------ display
    def __repr__(self):
        k0, k1 = self.range_of_interest
        t = self.thresholds
        dup = " or ".join(
            f"{name} {op} {t[key]}"
            for key, name, op in (("ssim", "SSIM", ">"), ("gmsd", "GMSD", "<"))
            if t[key] is not None
        )
        return (
            f"<NumberOfComponentsEstimate: suggested k = {self.suggested_k} "
            f"(knee {self.knee} [{self.knee_method}], range of interest {k0}-{k1}, "
            f"duplicates: {dup}, rule '{self.rule}')>"
        )

    def summary(self):
        """A table of the per-``k`` criteria as text.

        Returns
        -------
        str
            One line per ``k`` of the range: distinct or not, number of duplicate pairs and
            the off-diagonal extremes of the four metrics.
        """
        head = (f"{'k':>3} {'distinct':>8} {'lowers':>6} {'dup':>4} {'max SSIM':>9} "
                f"{'min GMSD':>9} "
                f"{'max PSNR':>9} {'min MDSI':>9}")
        lines = [head]
        c = self.criteria
        for i, k in enumerate(self.roi_k_values):
            mark = " <" if k == self.suggested_k else ""
            lines.append(
                f"{k:>3} {bool(c['distinct'][i])!s:>8} {bool(c['lowers_loss'][i])!s:>6} "
                f"{c['n_duplicate_pairs'][i]:>4} "
                f"{c['max_ssim'][i]:>9.3f} {c['min_gmsd'][i]:>9.3f} "
                f"{c['max_psnr'][i]:>9.2f} {c['min_mdsi'][i]:>9.3f}{mark}"
            )
        lines.append(self.reason)
        return "\n".join(lines)

    def plot(self, k=None, annotate=None, figsize=(13, 8)):
        """Loss curve, duplicate criteria and the four IQA matrices (Cao et al. 2025, Fig. 3).

        Top left: the K-component loss against ``k`` with the knee marked, the range of
        interest shaded and the suggested ``k`` marked (Fig. 3a).  Top right: per ``k`` of
        the range, the largest off-diagonal SSIM and the smallest off-diagonal GMSD with
        their thresholds.  Bottom: the SSIM, PSNR, GMSD and MDSI matrices of one fit with
        colour bars (Fig. 3b-e).

        Parameters
        ----------
        k : int, optional
            Fit whose matrices are drawn; default the suggested ``k``.
        annotate : bool, optional
            Write the values into the matrix cells; default when ``k <= 10``.
        figsize : tuple of float
            Figure size in inches.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ValueError
            If ``k`` is not a fit of the range of interest.
        """
        import matplotlib.pyplot as plt

        k = self.suggested_k if k is None else int(k)
        if k not in self.iqa_arrays:
            raise ValueError(f"k={k} is not in the range of interest "
                             f"{self.roi_k_values.tolist()}; choose one of those.")
        if annotate is None:
            annotate = k <= 10
        fig = plt.figure(figsize=figsize, layout="constrained")
        gs = fig.add_gridspec(2, 4, height_ratios=[1, 1.1])
        ax_loss = fig.add_subplot(gs[0, :2])
        ax_crit = fig.add_subplot(gs[0, 2:])

        ks, y = self.k_values, self.loss_values
        k0, k1 = self.range_of_interest
        ax_loss.axvspan(k0 - 0.5, k1 + 0.5, color="tab:blue", alpha=0.12,
                        label=f"range of interest {k0}-{k1}")
        ax_loss.plot(ks, y, "o-", color="k", ms=4)
        yk = y[ks == self.knee][0]
        ax_loss.plot([self.knee], [yk], "s", ms=10, mfc="none", mec="tab:red",
                     label=f"knee k = {self.knee}")
        ys = y[ks == k][0]
        ax_loss.plot([k], [ys], "*", ms=14, color="tab:orange",
                     label=f"{'suggested ' if k == self.suggested_k else ''}k = {k}")
        ax_loss.set_xlabel("number of components k")
        unit = f" ({self.loss_units})" if self.loss_units else ""
        ax_loss.set_ylabel(f"K-component loss{unit}")
        ax_loss.set_title("(a) K-component loss")
        ax_loss.legend(fontsize=8)

        roi = self.roi_k_values
        c = self.criteria
        ax_crit.plot(roi, c["max_ssim"], "o-", color="tab:green", label="max off-diag SSIM")
        if self.thresholds["ssim"] is not None:
            ax_crit.axhline(self.thresholds["ssim"], color="tab:green", ls="--", lw=0.8)
        ax_crit.set_ylabel("SSIM", color="tab:green")
        ax_crit.set_xlabel("number of components k")
        ax_g = ax_crit.twinx()
        ax_g.plot(roi, c["min_gmsd"], "s-", color="tab:purple", label="min off-diag GMSD")
        if self.thresholds["gmsd"] is not None:
            ax_g.axhline(self.thresholds["gmsd"], color="tab:purple", ls="--", lw=0.8)
        ax_g.set_ylabel("GMSD", color="tab:purple")
        dup = roi[~c["distinct"]]
        for kd in dup:
            ax_crit.axvline(kd, color="0.6", lw=6, alpha=0.3)
        ax_crit.axvline(self.suggested_k, color="tab:orange", lw=1.5)
        ax_crit.set_title("duplicate criteria (grey: fits with duplicates)")
        lines = ax_crit.get_lines()[:1] + ax_g.get_lines()[:1]
        ax_crit.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")

        for col, (m, letter) in enumerate(zip(("ssim", "psnr", "gmsd", "mdsi"), "bcde")):
            ax = fig.add_subplot(gs[1, col])
            mat = np.asarray(self.iqa_arrays[k][m], dtype=float)
            shown = mat.copy()
            if m == "psnr":  # the capped diagonal would swamp the colour scale
                np.fill_diagonal(shown, np.nan)
            im = ax.imshow(shown, cmap=_CMAPS[m], interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8,
                         label=_LABELS[m] + (f" ({_UNITS[m]})" if m in _UNITS else ""))
            ax.set_title(f"({letter}) {_LABELS[m]}, k = {k}")
            ax.set_xlabel("component j")
            ax.set_ylabel("component i")
            ax.set_xticks(range(k))
            ax.set_yticks(range(k))
            if annotate:
                fmt = "{:.0f}" if m == "psnr" else "{:.2f}"
                for i in range(k):
                    for j in range(k):
                        if i != j or m != "psnr":
                            bright = im.norm(mat[i, j]) > 0.6  # dark text on bright cells
                            ax.text(j, i, fmt.format(mat[i, j]), ha="center", va="center",
                                    fontsize=7, color="k" if bright else "w")
        fig.suptitle(f"Number of components: suggested k = {self.suggested_k}")
        return fig
