"""Softmax-DPO (TrackRec eq. 4), per example, then averaged over the batch.

    L_i = -log sigmoid( -log sum_d exp( beta * (logratio_d - logratio_p) ) )

with logratio = log pi_theta(y|x) - log pi_ref(y|x) for the chosen p and each rejected d. The
paper's public code sums the inner term over the whole batch, coupling examples; here each example
only sees its own rejected set. With one rejected this is DPO's sigmoid loss; with pi_theta =
pi_ref it is log(1 + #rejected) = log N.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def sdpo_loss(chosen_logratio: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> torch.Tensor:
    """chosen_logratio (B,), rejected_logratios (B, K) -> per-example loss (B,)."""
    margins = beta * (rejected_logratios - chosen_logratio.unsqueeze(1))  # B x K
    return -F.logsigmoid(-torch.logsumexp(margins, dim=1))
