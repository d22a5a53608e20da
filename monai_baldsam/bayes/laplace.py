"""Last-layer Laplace posterior for a per-pixel Bernoulli (logistic) 1x1-conv output layer.

Model. The head ends in ``f = w . phi + b`` per pixel, ``phi`` of shape ``(B, C, H, W)``; the label of
each pixel is ``Bernoulli(sigmoid(f))`` and *pixels are the data points* (not classes of one softmax).
With ``theta = [w; b]`` (``P = C + 1`` parameters) and the augmented feature ``a = [phi; 1]``:

- log likelihood ``log p(D | theta) = -sum_n BCEWithLogits(f_n, y_n) / T`` (``T``: ``temperature``);
- prior ``N(0, diag(delta)^-1)``, ``delta`` the ``prior_precision`` (scalar, or per parameter);
- GGN (= exact Hessian of the logistic log likelihood) ``H = sum_n h_n a_n a_n^T / T``, ``h_n = p_n (1 - p_n)``;
- posterior ``N(theta_MAP, (H + diag(delta))^-1)``, ``theta_MAP`` the trained layer's weights.

Hessian structures (:class:`HessianStructure`; how ``H`` is accumulated: :mod:`~monai_baldsam.bayes.curvature`):

- ``full``: dense ``H``; the posterior precision is factorised by Cholesky, ``Sigma = L^-T L^-1``.
- ``diag``: ``diag(H)`` only; independent parameters.
- ``kron``: ``G ⊗ A`` with ``G = [[1]]``, which for a single-output layer is the exact ``H`` (not the approximate
  "expectation" K-FAC). So ``kron`` is numerically the ``full`` posterior, represented by the eigendecomposition
  ``A = Q diag(lambda) Q^T``: a new scalar prior costs O(P) for the evidence and O(P^2) for the covariance, without
  refactorising; scalar prior only.

Temperature. The pixels of an image are strongly correlated, so counting a million of them as independent
observations makes the posterior (and BALD) overconfident. ``temperature = T > 1`` divides the log
likelihood and ``H`` by ``T`` (as laplace-torch's ``temperature``); ``T = 1`` is the plain Laplace
approximation. Subsampling pixels in :meth:`LastLayerLaplace.fit` is only a compute saving: kept pixels
count ``1 / subsample`` each, so ``H`` and the loss estimate their full-data values.

Why not laplace-torch 0.3: it has no Bernoulli likelihood, fits a million pixels 100-2000x slower and its ``kron``
is approximate here; the measurements, and the parity test against it, are in ``README.md`` beside this file.

Modules: this one holds the posterior's state and lifecycle (fit, factorisation, evidence, tuning entry point,
save/load); :mod:`~monai_baldsam.bayes.curvature` accumulates the GGN, :mod:`~monai_baldsam.bayes.predictive`
computes the predictive from the factorised posterior, :mod:`~monai_baldsam.bayes.tuning` solves for the prior.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from monai_baldsam.bayes import _pixels, predictive, tuning
from monai_baldsam.bayes.acquisition import gaussian_logit_uncertainty_maps, uncertainty_maps
from monai_baldsam.bayes.curvature import accumulate_curvature
from monai_baldsam.bayes.enums import HessianStructure, PriorStructure, TuningMethod, parse_option
from monai_baldsam.bayes.state import STATE_FORMAT_VERSION, check_signature_dict, check_state, compare_signatures

__all__ = ["LastLayerLaplace"]


class LastLayerLaplace:
    """Laplace posterior over ``[w; b]`` of a per-pixel logistic layer; lifecycle like laplace-torch.

    ``LastLayerLaplace(weight, bias, structure=...)`` → :meth:`fit` (loader of pixel batches) →
    :meth:`optimize_prior_precision` → predictive: :meth:`predict_probit`, :meth:`predict_mc`,
    :meth:`predict_uncertainty`, :meth:`logit_moments`.

    Args:
        weight: ``(C,)`` MAP weights of the trained 1x1 conv (see :meth:`from_module` for an ``nn.Conv2d``).
        bias: MAP bias, a float or a one-element tensor.
        structure: ``"full"``, ``"kron"`` or ``"diag"`` (:class:`HessianStructure`).
        prior_precision: positive float, or a ``(C + 1,)`` tensor (weights then bias; not for ``kron``).
        temperature: positive likelihood temperature ``T`` (module docstring).
        signature: identifies the features the posterior belongs to (backbone, checkpoint hash, ...):
            str keys, str/int/float/bool values; stored in :meth:`state_dict`, checked by
            :meth:`check_signature`.
        dtype: dtype of the posterior state (float64 by default; the layer is small). Predictions run in the
            features' dtype.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | float = 0.0,
        structure: HessianStructure | str = HessianStructure.FULL,
        prior_precision: torch.Tensor | float = 1.0,
        temperature: float = 1.0,
        signature: Mapping[str, Any] | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if not isinstance(weight, torch.Tensor) or weight.ndim != 1 or weight.numel() < 1:
            raise ValueError(
                f"weight must be a (C,) tensor, got shape {tuple(getattr(weight, 'shape', ()))}; for an "
                "nn.Conv2d(C, 1, 1) or nn.Linear(C, 1) use LastLayerLaplace.from_module(layer)"
            )
        bias_t = torch.as_tensor(bias, device=weight.device)
        if bias_t.numel() != 1:
            raise ValueError(f"bias must be a scalar (the layer has one output), got shape {tuple(bias_t.shape)}")
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
        mean = torch.cat([weight.detach().reshape(-1), bias_t.detach().reshape(1)]).to(dtype)
        if not bool(torch.isfinite(mean).all()):
            raise ValueError("weight and bias must be finite")
        self._structure = HessianStructure(parse_option(HessianStructure, structure, "structure"))
        self.signature = check_signature_dict(signature)
        self._mean = mean
        self._cache: dict[str, Any] = {}
        self.temperature = temperature
        self._reset_fit()
        self.prior_precision = prior_precision

    @classmethod
    def from_module(cls, layer: nn.Module, **kwargs: Any) -> LastLayerLaplace:
        """From a trained ``nn.Conv2d(C, 1, kernel_size=1)`` or ``nn.Linear(C, 1)`` (keyword args as the constructor)."""
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            raise ValueError(f"layer must be an nn.Conv2d or nn.Linear, got {type(layer).__name__}")
        weight = layer.weight.detach()
        if weight.shape[0] != 1 or (isinstance(layer, nn.Conv2d) and tuple(weight.shape[2:]) != (1, 1)):
            raise ValueError(
                f"layer must have one output and a 1x1 kernel (a per-pixel logistic layer), got weight shape "
                f"{tuple(weight.shape)}"
            )
        bias = layer.bias.detach() if layer.bias is not None else 0.0
        return cls(weight.reshape(-1), bias, **kwargs)

    # ----------------------------------------------------------------------------------------- state
    @property
    def structure(self) -> HessianStructure:
        """The Hessian structure, fixed at construction."""
        return self._structure

    @property
    def n_channels(self) -> int:
        """``C``, the number of input features of the layer."""
        return self._mean.numel() - 1

    @property
    def n_params(self) -> int:
        """``P = C + 1`` (weights and bias)."""
        return self._mean.numel()

    @property
    def mean(self) -> torch.Tensor:
        """``(P,)`` MAP parameters ``[w; b]``, the posterior mean."""
        return self._mean

    @property
    def weight(self) -> torch.Tensor:
        """``(C,)`` MAP weights."""
        return self._mean[:-1]

    @property
    def bias(self) -> torch.Tensor:
        """0-d MAP bias."""
        return self._mean[-1]

    @property
    def dtype(self) -> torch.dtype:
        return self._mean.dtype

    @property
    def device(self) -> torch.device:
        return self._mean.device

    @property
    def is_fitted(self) -> bool:
        return self._n_data > 0

    @property
    def n_data(self) -> float:
        """Number of pixels the curvature was accumulated over (weighted by ``1 / subsample``)."""
        return self._n_data

    @property
    def loss(self) -> torch.Tensor:
        """Summed BCE-with-logits of the MAP layer over the fitted pixels (before the temperature)."""
        return self._loss

    @property
    def temperature(self) -> float:
        """Likelihood temperature ``T``: the log likelihood and its GGN are divided by it."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"temperature must be a positive finite number, got {value!r}")
        self._temperature = float(value)
        self._cache.clear()

    @property
    def prior_precision(self) -> torch.Tensor:
        """0-d tensor (isotropic prior) or ``(P,)`` tensor (per parameter)."""
        return self._prior_precision

    @prior_precision.setter
    def prior_precision(self, value: torch.Tensor | float) -> None:
        self._prior_precision = self._as_prior_precision(value)
        self._cache.clear()

    def _as_prior_precision(self, value: torch.Tensor | float) -> torch.Tensor:
        delta = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        if delta.numel() == 1:
            delta = delta.reshape(())
        elif tuple(delta.shape) != (self.n_params,):
            raise ValueError(
                f"prior_precision must be a scalar or a ({self.n_params},) tensor (weights then bias), got shape "
                f"{tuple(delta.shape)}"
            )
        elif self.structure is HessianStructure.KRON:
            raise ValueError("the kron structure takes a scalar prior_precision only; use structure='full' or 'diag'")
        if not bool(torch.isfinite(delta).all()) or bool((delta <= 0).any()):
            raise ValueError("prior_precision must be positive and finite")
        return delta

    def _reset_fit(self) -> None:
        shape = (self.n_params,) if self.structure is HessianStructure.DIAG else (self.n_params, self.n_params)
        self._hessian = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self._loss = torch.zeros((), dtype=self.dtype, device=self.device)
        self._n_data = 0.0
        self._cache.clear()

    def to(self, device: torch.device | str) -> LastLayerLaplace:
        """Move the posterior state to ``device`` (in place); returns ``self``."""
        self._mean = self._mean.to(device)
        self._hessian = self._hessian.to(device)
        self._loss = self._loss.to(device)
        self._prior_precision = self._prior_precision.to(device)
        self._cache.clear()
        return self

    # ------------------------------------------------------------------------------------------- fit
    def fit(
        self,
        loader: Iterable[Any],
        *,
        override: bool = True,
        subsample: float = 1.0,
        generator: torch.Generator | None = None,
        chunk_size: int = 1 << 16,
    ) -> LastLayerLaplace:
        """Accumulate the GGN and the MAP loss over the pixels of ``loader``'s batches.

        Args:
            loader: iterable of ``(features (B, C, H, W), targets (B, H, W)[, valid (B, H, W) bool])`` or
                mappings with those keys (see ``_pixels``); a DataLoader or a list.
            override: ``True`` starts from scratch; ``False`` adds to the previous fit.
            subsample: fraction in ``(0, 1]`` of the valid pixels to use, drawn with ``generator``; kept pixels
                count ``1 / subsample`` each.
            generator: required when ``subsample < 1``.
            chunk_size: pixels per matrix product (bounds the temporary memory).

        Returns:
            ``self``.
        """
        hessian, loss, n_data = accumulate_curvature(loader, self._mean, self.structure, subsample=subsample,
                                                     generator=generator, chunk_size=chunk_size)
        scale = 1.0 / subsample
        if n_data == 0 and (override or not self.is_fitted):
            raise ValueError("fit saw no valid pixels: the loader is empty or every valid mask is all False")
        if override:  # replaced only now, so a failing loader leaves the previous fit intact
            self._reset_fit()
        self._hessian += scale * hessian
        self._loss += scale * loss
        self._n_data += scale * n_data
        self._cache.clear()
        return self

    # --------------------------------------------------------------------------------- posterior
    def _require_fit(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("the posterior is not fitted: call fit(loader) (or load_state_dict) first")

    @property
    def kron_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G (1, 1), A (P, P))`` with ``G ⊗ A`` the GGN before the temperature (``kron`` structure only)."""
        if self.structure is not HessianStructure.KRON:
            raise ValueError(f"kron_factors exist for structure='kron' only, this posterior is {self.structure.value!r}")
        return torch.ones((1, 1), dtype=self.dtype, device=self.device), self._hessian

    @property
    def likelihood_hessian(self) -> torch.Tensor:
        """GGN of the tempered negative log likelihood: ``(P, P)``, or ``(P,)`` for ``diag``."""
        self._require_fit()
        if self.structure is HessianStructure.KRON:
            g, a = self.kron_factors
            return torch.kron(g, a) / self.temperature
        return self._hessian / self.temperature

    @property
    def posterior_precision(self) -> torch.Tensor:
        """``H + diag(delta)``: ``(P, P)``, or ``(P,)`` for ``diag``."""
        hessian = self.likelihood_hessian
        if self.structure is HessianStructure.DIAG:
            return hessian + self.prior_precision
        return hessian + torch.diag(self.prior_precision.expand(self.n_params))

    def _spectrum(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigen-decomposition ``(lambda (P,), Q (P, P))`` of the likelihood precision (``kron``/``full``)."""
        if "spectrum" not in self._cache:
            eigenvalues, eigenvectors = torch.linalg.eigh(self.likelihood_hessian)
            self._cache["spectrum"] = (eigenvalues.clamp_min(0.0), eigenvectors)
        return self._cache["spectrum"]

    def _posterior_scale(self) -> torch.Tensor:
        """``S`` with ``Sigma = S S^T``: ``(P, P)``, or the ``(P,)`` standard deviations for ``diag``."""
        if "scale" not in self._cache:
            self._require_fit()
            delta = self.prior_precision
            if self.structure is HessianStructure.DIAG:
                scale = (self.likelihood_hessian + delta).rsqrt()
            elif self.structure is HessianStructure.KRON:
                eigenvalues, eigenvectors = self._spectrum()
                scale = eigenvectors * (eigenvalues + delta).rsqrt()
            else:
                chol = torch.linalg.cholesky(self.posterior_precision)
                eye = torch.eye(self.n_params, dtype=self.dtype, device=self.device)
                scale = torch.linalg.solve_triangular(chol, eye, upper=False).T
            self._cache["scale"] = scale
        return self._cache["scale"]

    @property
    def posterior_covariance(self) -> torch.Tensor:
        """``(P, P)`` posterior covariance (``diag``: the ``(P,)`` variances)."""
        scale = self._posterior_scale()
        return scale.square() if self.structure is HessianStructure.DIAG else scale @ scale.T

    @property
    def posterior_variance(self) -> torch.Tensor:
        """``(P,)`` marginal posterior variances of ``[w; b]``."""
        scale = self._posterior_scale()
        return scale.square() if self.structure is HessianStructure.DIAG else scale.square().sum(dim=1)

    # ---------------------------------------------------------------------------------- evidence
    def log_likelihood(self) -> torch.Tensor:
        """Tempered log likelihood of the fitted pixels at the MAP, ``-loss / T``."""
        self._require_fit()
        return -self._loss / self.temperature

    def log_marginal_likelihood(self, prior_precision: torch.Tensor | float | None = None) -> torch.Tensor:
        """Laplace evidence ``log p(D | theta*) - 0.5 (log det P_post - log det P_prior) - 0.5 theta*^T P_prior theta*``.

        Args:
            prior_precision: evaluate at this prior (scalar or ``(P,)``) instead of the current one; gradients
                flow back to it (used by ``optimize_prior_precision``). The stored prior is not changed.

        Returns:
            0-d tensor in the state dtype.
        """
        self._require_fit()
        delta = self.prior_precision if prior_precision is None else self._as_prior_precision_grad(prior_precision)
        delta_full = delta.expand(self.n_params)
        if self.structure is HessianStructure.DIAG:
            log_det_post = torch.log(self.likelihood_hessian + delta_full).sum()
        elif self.structure is HessianStructure.KRON or delta.ndim == 0:
            # a scalar prior shares the eigenbasis of H: no factorisation per evaluation
            log_det_post = torch.log(self._spectrum()[0] + delta).sum()
        else:
            chol = torch.linalg.cholesky(self.likelihood_hessian + torch.diag(delta_full))
            log_det_post = 2.0 * torch.log(torch.diagonal(chol)).sum()
        log_det_prior = torch.log(delta_full).sum()
        scatter = (delta_full * self._mean.square()).sum()
        return self.log_likelihood() - 0.5 * (log_det_post - log_det_prior + scatter)

    def _as_prior_precision_grad(self, value: torch.Tensor | float) -> torch.Tensor:
        """Like the setter's validation but keeps the autograd graph of a tensor argument."""
        if isinstance(value, torch.Tensor) and value.requires_grad:
            self._as_prior_precision(value.detach())
            return value.to(self.dtype).reshape(()) if value.numel() == 1 else value.to(self.dtype)
        return self._as_prior_precision(value)

    def optimize_prior_precision(
        self,
        method: TuningMethod | str = TuningMethod.MARGLIK,
        *,
        prior_structure: PriorStructure | str = PriorStructure.SCALAR,
        n_steps: int = 100,
        init_prior_prec: torch.Tensor | float | None = None,
        val_loader: Iterable[Any] | None = None,
        log_prior_prec_min: float = -4.0,
        log_prior_prec_max: float = 4.0,
        grid_size: int = 100,
        max_val_pixels: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Tune and set the prior precision; returns it.

        ``method="marglik"``: maximises :meth:`log_marginal_likelihood` exactly by solving its stationarity
        condition in ``log delta`` (see :mod:`~monai_baldsam.bayes.tuning`: bisection for a scalar prior, where
        the evidence is strictly concave in ``log delta``; per parameter with ``prior_structure="diag"``, for the
        ``diag`` structure separably and for ``full`` by MacKay's fixed point from ``init_prior_prec`` or the
        current prior, at most ``n_steps`` iterations). ``method="gridsearch"``: ``grid_size`` values
        ``10 ** linspace(log_prior_prec_min, log_prior_prec_max)`` scored by the mean negative log-likelihood of
        :meth:`predict_probit` on ``val_loader``'s valid pixels (at most ``max_val_pixels`` of them, a random
        subset drawn with ``generator``); the first minimiser wins. The grid uses the eigenbasis of the
        likelihood precision, so it costs one pass over the validation pixels.
        """
        self._require_fit()
        method = TuningMethod(parse_option(TuningMethod, method, "method"))
        prior_structure = PriorStructure(parse_option(PriorStructure, prior_structure, "prior_structure"))
        if prior_structure is PriorStructure.DIAG and (
            self.structure is HessianStructure.KRON or method is TuningMethod.GRIDSEARCH
        ):
            raise ValueError(
                "prior_structure='diag' needs method='marglik' and structure 'full' or 'diag' "
                f"(got method={method.value!r}, structure={self.structure.value!r})"
            )
        if method is TuningMethod.MARGLIK:
            per_parameter = prior_structure is PriorStructure.DIAG
            dense = self.structure is not HessianStructure.DIAG
            start = None
            if dense and per_parameter:
                start = self._as_prior_precision(self.prior_precision if init_prior_prec is None else init_prior_prec)
            eigenvalues = self._spectrum()[0] if dense and not per_parameter else None
            self.prior_precision = tuning.marglik_prior_precision(self._mean, self.likelihood_hessian, eigenvalues,
                                                                  per_parameter, start=start, n_steps=n_steps)
        else:
            if val_loader is None:
                raise ValueError("method='gridsearch' needs val_loader (batches of features, targets[, valid])")
            grid = tuning.prior_grid(log_prior_prec_min, log_prior_prec_max, grid_size, self.dtype)
            nll = self.validation_nll(grid, val_loader, max_val_pixels=max_val_pixels, generator=generator)
            self.prior_precision = grid[int(torch.argmin(nll))]
        return self.prior_precision

    def validation_nll(
        self,
        prior_precisions: torch.Tensor,
        val_loader: Iterable[Any],
        *,
        max_val_pixels: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mean per-pixel NLL of the probit predictive on ``val_loader`` for each scalar prior precision ``(G,)``."""
        self._require_fit()
        grid = torch.as_tensor(prior_precisions, dtype=self.dtype, device=self.device).reshape(-1)
        if not bool((grid > 0).all()):
            raise ValueError("prior precisions must be positive")
        phi, y = _pixels.collect_pixels(val_loader, self.n_channels, max_val_pixels, generator)
        if self.structure is HessianStructure.DIAG:
            return tuning.probit_nll_grid(phi, y, self._mean, self.likelihood_hessian, None, grid)
        eigenvalues, basis = self._spectrum()
        return tuning.probit_nll_grid(phi, y, self._mean, eigenvalues, basis, grid)

    # -------------------------------------------------------------------------------- predictive
    def logit_moments(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the per-pixel logit: ``(f_MAP, a^T Sigma a)``, each ``(B, H, W)``.

        Runs in ``features``' dtype and device; never builds a pixel-by-pixel matrix.
        """
        features = _pixels.check_features(features, self.n_channels)
        diagonal = self.structure is HessianStructure.DIAG
        return predictive.logit_moments(features, self._mean, self._posterior_scale(), diagonal)

    def predictive_variance(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` variance of the linearised logit, ``v = [phi; 1]^T Sigma [phi; 1]``."""
        return self.logit_moments(features)[1]

    def predict_probit(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` predictive foreground probability ``sigmoid(f / sqrt(1 + pi v / 8))`` (probit approximation)."""
        return predictive.probit_probability(*self.logit_moments(features))

    def sample_weights(self, n_samples: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_samples`` draws from the posterior: ``(weights (S, C), biases (S,))`` in the state dtype.

        The normal draws come from ``generator`` (on its device), so a seeded generator gives identical samples.
        """
        predictive.check_sampling(n_samples, generator)
        diagonal = self.structure is HessianStructure.DIAG
        return predictive.sample_parameters(self._mean, self._posterior_scale(), diagonal, n_samples, generator)

    def predict_mc(self, features: torch.Tensor, n_samples: int = 32, *, generator: torch.Generator) -> torch.Tensor:
        """``(S, B, H, W)`` foreground probabilities under ``S`` posterior weight samples (one einsum for all)."""
        features = _pixels.check_features(features, self.n_channels)
        return predictive.sampled_probabilities(features, *self.sample_weights(n_samples, generator))

    def predict_uncertainty(
        self, features: torch.Tensor, n_samples: int | None = None, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The maps of :func:`~monai_baldsam.bayes.acquisition.uncertainty_maps`, each ``(B, H, W)``.

        ``n_samples=None`` (default): deterministic, by Gauss-Hermite quadrature over each pixel's Gaussian logit
        (the exact BALD of this posterior, up to quadrature error). Otherwise Monte Carlo with ``n_samples``
        weight samples drawn from ``generator`` (required then).
        """
        if n_samples is None:
            return gaussian_logit_uncertainty_maps(*self.logit_moments(features))
        if generator is None:
            raise ValueError("Monte Carlo uncertainty (n_samples given) needs an explicit generator")
        return uncertainty_maps(self.predict_mc(features, n_samples, generator=generator))

    # ---------------------------------------------------------------------------------- save/load
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the posterior; loads with ``torch.load(..., weights_only=True)``."""
        self._require_fit()
        if self.structure is HessianStructure.KRON:
            hessian = {name: factor.clone() for name, factor in zip(("kron_G", "kron_A"), self.kron_factors)}
        else:
            hessian = {"ggn": self._hessian.clone()}
        return {
            "format_version": STATE_FORMAT_VERSION,
            "structure": self.structure.value,
            "mean": self._mean.clone(),
            "prior_precision": self._prior_precision.clone(),
            "temperature": self.temperature,
            "hessian": hessian,
            "loss": self._loss.clone(),
            "n_data": float(self._n_data),
            "signature": dict(self.signature),
        }

    def load_state_dict(self, state: Mapping[str, Any], expected_signature: Mapping[str, Any] | None = None) -> None:
        """Restore a posterior saved by :meth:`state_dict` (same structure and channel count).

        With ``expected_signature`` the stored signature is checked first (see :meth:`check_signature`) and
        nothing is changed on a mismatch.
        """
        hessian_key = "kron_A" if self.structure is HessianStructure.KRON else "ggn"
        check_state(state, self.structure.value, self.n_params, hessian_key, tuple(self._hessian.shape))
        signature = check_signature_dict(state["signature"])
        if expected_signature is not None:
            compare_signatures(signature, expected_signature)
        prior_precision = self._as_prior_precision(state["prior_precision"])
        self.temperature = float(state["temperature"])
        self._mean = state["mean"].to(self.device, self.dtype)
        self._hessian = state["hessian"][hessian_key].to(self.device, self.dtype)
        self._loss = torch.as_tensor(state["loss"]).to(self.device, self.dtype)
        self._n_data = float(state["n_data"])
        self.signature = signature
        self.prior_precision = prior_precision

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], expected_signature: Mapping[str, Any] | None = None,
                        dtype: torch.dtype = torch.float64) -> LastLayerLaplace:
        """A new posterior from :meth:`state_dict`'s output (see :meth:`load_state_dict`)."""
        if not isinstance(state, Mapping) or not isinstance(state.get("mean"), torch.Tensor) or "structure" not in state:
            raise ValueError("not a LastLayerLaplace state: missing 'mean' or 'structure'")
        mean = state["mean"]
        posterior = cls(mean[:-1], mean[-1], structure=state["structure"], dtype=dtype)
        posterior.load_state_dict(state, expected_signature=expected_signature)
        return posterior

    def check_signature(self, expected: Mapping[str, Any]) -> None:
        """Raise ValueError unless every entry of ``expected`` is in :attr:`signature` with an equal value."""
        compare_signatures(self.signature, expected)
