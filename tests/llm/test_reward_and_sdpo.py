import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from trackrec.llm.reward import PreferenceMode, preference, reward
from trackrec.llm.sdpo_loss import sdpo_loss


def test_reward_is_normalised_probability_of_the_correct_answer():
    r = reward(np.array([0.6, 0.6, 0.1]), np.array([0.2, 0.2, 0.1]), np.array([1, 0, 1]))
    np.testing.assert_allclose(r, [0.75, 0.25, 0.5])


def test_sdpo_preference_is_best_against_the_rest():
    p = preference("x", ["a", "b", "c", "d"], [0.2, 0.9, 0.1, 0.5], PreferenceMode.SDPO)
    assert p.chosen == "b" and p.rejected == ("a", "c", "d") and p.chosen_reward == 0.9


def test_dpo4rec_preference_is_best_against_worst():
    p = preference("x", ["a", "b", "c", "d"], [0.2, 0.9, 0.1, 0.5], PreferenceMode.DPO)
    assert p.chosen == "b" and p.rejected == ("c",)


def test_one_rejected_equals_sigmoid_dpo():
    torch.manual_seed(0)
    chosen, rejected, beta = torch.randn(8), torch.randn(8, 1), 0.1
    expected = -F.logsigmoid(beta * (chosen - rejected[:, 0]))  # trl's "sigmoid" DPO loss per example
    torch.testing.assert_close(sdpo_loss(chosen, rejected, beta), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_samples", [2, 4, 10])
def test_policy_equal_to_reference_gives_log_n(n_samples):
    loss = sdpo_loss(torch.zeros(3), torch.zeros(3, n_samples - 1), beta=0.5)
    torch.testing.assert_close(loss, torch.full((3,), math.log(n_samples)))


def test_examples_are_not_coupled():
    chosen, rejected = torch.tensor([1.0, -2.0]), torch.tensor([[0.5, 0.0], [3.0, 7.0]])
    both = sdpo_loss(chosen, rejected, 1.0)
    for i in range(2):  # each example's loss ignores the other example's completions
        torch.testing.assert_close(both[i : i + 1], sdpo_loss(chosen[i : i + 1], rejected[i : i + 1], 1.0))


def test_gradient_raises_the_chosen_ratio():
    chosen = torch.zeros(1, requires_grad=True)
    sdpo_loss(chosen, torch.zeros(1, 3), beta=1.0).sum().backward()
    assert chosen.grad.item() < 0  # descending the loss increases the chosen log-ratio
