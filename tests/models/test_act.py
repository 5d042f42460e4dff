"""ACT halting and Q-learning targets on hand-worked examples."""

import math

import pytest
import torch

from dualhrq.errors import ConfigError
from dualhrq.models.act import ACTConfig, continue_target, halt, is_correct, q_loss


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_continue_target_bootstraps_from_the_next_segment():
    # sample 0: not last -> max(halt', continue') = 2; sample 1: last -> halt' = 3; sample 2: not last -> -0.5
    next_q = torch.tensor([[1.0, 2.0], [3.0, 4.0], [-0.5, -1.0]])
    is_last = torch.tensor([False, True, False])
    got = continue_target(next_q, is_last)
    torch.testing.assert_close(got, torch.tensor([_sigmoid(2.0), _sigmoid(3.0), _sigmoid(-0.5)]))


def test_halt_on_q_or_at_the_step_cap_without_exploration():
    cfg = ACTConfig(halt_max_steps=3, exploration_prob=0.0)
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [2.0, 2.0]])
    steps = torch.tensor([1, 1, 3, 2])
    halted, is_last = halt(q, steps, cfg, training=True)
    assert halted.tolist() == [True, False, True, False]  # Q says halt; continue; cap; tie continues
    assert is_last.tolist() == [False, False, True, False]
    # evaluation: "halt" follows Q, "max_steps" ignores it
    assert halt(q, steps, cfg, training=False)[0].tolist() == [True, False, True, False]
    cfg_max = ACTConfig(halt_max_steps=3, eval_mode="max_steps")
    assert halt(q, steps, cfg_max, training=False)[0].tolist() == [False, False, True, False]


def test_exploration_holds_a_sample_for_its_random_minimum():
    cfg = ACTConfig(halt_max_steps=4, exploration_prob=1.0)
    q = torch.tensor([[5.0, 0.0]] * 6)  # Q wants every sample to halt
    steps = torch.tensor([1, 2, 3, 1, 2, 4])
    halted, _ = halt(q, steps, cfg, training=True, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    torch.rand(6, generator=g)  # the draw that decides exploration (all explore at p = 1)
    min_steps = torch.randint(2, 5, (6,), generator=g)
    assert halted.tolist() == (steps >= min_steps).tolist()
    assert not halted[0] and not halted[3]  # one segment is always below the minimum of 2
    assert halted[5]  # the cap is never below the minimum


def test_correctness_targets():
    forecast = torch.tensor([0.4, -0.2, 0.1, 1.0])
    target = torch.tensor([1.3, 0.5, 0.05, -0.2])
    signal = -forecast
    assert is_correct(signal, forecast, target, ACTConfig(correct="forecast_sign")).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert is_correct(signal, forecast, target, ACTConfig(correct="signal")).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert is_correct(signal, forecast, target, ACTConfig(correct="abs_error", threshold=0.8)).tolist() == [
        0.0, 1.0, 1.0, 0.0]


def test_the_default_label_judges_the_traded_signal_and_scores_ties_one_half():
    signal = torch.tensor([0.3, 0.3, 0.0, -0.7, -0.7])
    target = torch.tensor([0.2, 0.0, -1.0, -0.1, 0.1])
    forecast = torch.tensor([-5.0, -5.0, -5.0, 5.0, 5.0])  # always wrong: must not matter
    assert ACTConfig().correct == "signal"
    assert is_correct(signal, forecast, target, ACTConfig()).tolist() == [1.0, 0.5, 0.5, 1.0, 0.0]


def test_q_loss_is_the_sum_of_two_binary_cross_entropies():
    q = torch.tensor([[0.5, -1.0], [2.0, 0.3]])
    correct = torch.tensor([1.0, 0.0])
    target_continue = torch.tensor([0.2, 0.9])

    def bce(logit: float, y: float) -> float:
        return -(y * math.log(_sigmoid(logit)) + (1 - y) * math.log(1 - _sigmoid(logit)))

    want = (bce(0.5, 1) + bce(2.0, 0)) / 2 + (bce(-1.0, 0.2) + bce(0.3, 0.9)) / 2
    assert float(q_loss(q, correct, target_continue)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(("cfg", "field"), [
    ({"halt_max_steps": 0}, "halt_max_steps"),
    ({"correct": "close_enough"}, "correct"),
    ({"eval_mode": "sometimes"}, "eval_mode"),
    ({"exploration_prob": 1.5}, "exploration_prob"),
    ({"threshold": 0}, "threshold"),
    ({"halt_steps": 4}, "unknown keys"),
])
def test_bad_act_config_names_the_field(cfg, field):
    with pytest.raises(ConfigError, match=f"^act.*{field}"):
        ACTConfig.from_config(cfg)
