"""SECA++'s class-wise Gaussian feature replay (seca-method.md §7)."""
from __future__ import annotations

from typing import Any, Sequence

import torch


class GaussianBank:
    """Per class, the mean μ_k and covariance Σ_k + eps·I (float64) of its adapted unnormalised features.

    Statistics are stacked in class order ([C, D] means, [C, D, D] covariances). The Cholesky factor
    of each Σ_k is computed once, when the class is added or loaded, so drawing from N(μ_k, Σ_k)
    every batch is one batched matrix product.
    """

    def __init__(self, eps: float = 1e-4):
        self.eps = eps
        self.classes: list[int] = []
        self.means: torch.Tensor | None = None
        self.covs: torch.Tensor | None = None
        self._chol: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.classes)

    def stats(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ_c, Σ_c + eps·I) of a stored class."""
        i = self.classes.index(int(c))
        return self.means[i], self.covs[i]

    def _extend(self, classes: list[int], means: torch.Tensor, covs: torch.Tensor) -> None:
        chol, info = torch.linalg.cholesky_ex(covs)
        bad = [classes[i] for i in info.nonzero().flatten().tolist()]
        if bad:
            raise ValueError(f"the covariance of classes {bad} is not positive definite; raise seca.covariance_eps")
        if self.means is None:
            self.means, self.covs, self._chol = means, covs, chol
        else:
            self.means = torch.cat([self.means, means.to(self.means.device)])
            self.covs = torch.cat([self.covs, covs.to(self.covs.device)])
            self._chol = torch.cat([self._chol, chol.to(self._chol.device)])
        self.classes += classes

    def add(self, class_ids: Sequence[int], features: torch.Tensor, labels: torch.Tensor) -> None:
        """Store μ_k and Σ_k + eps·I for each class in ``class_ids`` from features [N, D] (unnormalised)
        and labels [N] (seca-method.md §7). Σ_k is the unbiased estimate (ddof = 1, as np.cov)."""
        classes = [int(c) for c in class_ids]
        clash = set(classes) & set(self.classes)
        if clash:
            raise ValueError(f"classes {sorted(clash)} already have replay statistics")
        x = features.detach().to(torch.float64)
        eye = torch.eye(x.shape[1], dtype=torch.float64, device=x.device)
        means, covs = [], []
        for c in classes:
            xc = x[labels == c]
            if len(xc) < 2:
                raise ValueError(f"class {c} needs at least 2 features for a covariance, got {len(xc)}")
            means.append(xc.mean(dim=0))
            covs.append(torch.cov(xc.T, correction=1) + self.eps * eye)
        self._extend(classes, torch.stack(means), torch.stack(covs))

    def sample(
        self, classes: Sequence[int], n_per_class: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n_per_class draws from N(μ_k, Σ_k) for each class, class by class: (features float32
        [len(classes)·n, D], labels [len(classes)·n]). ``generator`` must live on the bank's device."""
        classes = [int(c) for c in classes]
        mu, chol = self.means, self._chol
        if classes != self.classes:  # the usual call asks for every stored class: no [C, D, D] copy then
            index = torch.tensor([self.classes.index(c) for c in classes], device=mu.device)
            mu, chol = mu[index], chol[index]
        noise = torch.randn(
            (len(classes), n_per_class, mu.shape[1]), generator=generator, dtype=torch.float64, device=mu.device
        )
        x = mu.unsqueeze(1) + noise @ chol.transpose(1, 2)  # z = μ + L·ε, so Cov(z) = L·Lᵀ = Σ
        labels = torch.tensor(classes, device=mu.device).repeat_interleave(n_per_class)
        return x.reshape(-1, mu.shape[1]).float(), labels

    def to(self, device: torch.device | str) -> "GaussianBank":
        """Move every statistic to ``device`` (in place) and return the bank."""
        if self.means is not None:
            self.means, self.covs, self._chol = self.means.to(device), self.covs.to(device), self._chol.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "classes": list(self.classes),
            "means": None if self.means is None else self.means.cpu(),
            "covs": None if self.covs is None else self.covs.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore from :meth:`state_dict`; the Cholesky factors are recomputed (deterministically)."""
        self.eps = float(state["eps"])
        self.classes, self.means, self.covs, self._chol = [], None, None, None
        if state["classes"]:
            self._extend([int(c) for c in state["classes"]], state["means"].to(device), state["covs"].to(device))
