"""Parameter counts, the hrm_27m budget and its reporting."""

import pytest
import torch
from torch import nn

from dualhrq.config import model_sizes
from dualhrq.errors import ConfigError
from dualhrq.features.engine import FeatureSpec, feature_names
from dualhrq.models.network import DualHRQNet
from dualhrq.models.params import check_budget, count_parameters, format_budget_table

from .conftest import conditioner

# hrm_27m with model/conditioning=regime and the ACT Q head, on the bundled data's default features
# (21 inputs, 9 regime). Regime conditioning: classifier 9-64-64-4 (5,060) + FiLM 4-64-4,608 (299,840).
HRM_27M_REGIME = {
    "h_module": 8_478_720,
    "l_module": 17_928_000,
    "heads": 198_661,
    "conditioning": 304_900,
    "total": 26_910_281,
}
# regime_rag adds the pattern pooling head (token 22 -> 64, key, value, 2 queries: 9,792) and widens the FiLM
# input to 4 logits + 2 x 64 pooled + 1 flag (+8,256): 322,948, inside the 0.5M cap.
HRM_27M_REGIME_RAG_CONDITIONING = 322_948
N_INPUTS, N_REGIME = (len(c) for c in feature_names(FeatureSpec()))


def test_hrm_27m_counts_are_pinned_and_every_conditioning_fits_the_budget():
    size = model_sizes("hrm_27m")
    net = DualHRQNet(n_features=N_INPUTS, n_regime_features=N_REGIME, n_symbols=2,
                     conditioner=conditioner("regime", "hrm_27m"), q_head=True, **size["net"])
    counts = count_parameters(net)
    assert counts == HRM_27M_REGIME
    assert check_budget(counts, size["budget"]) == []

    l_net = size["net"]["l"]
    for kind in ["none", "puzzle_id", "regime_rag"]:
        factory = conditioner(kind, "hrm_27m")
        # built with the sizes the network hands its conditioner
        cond = None if factory is None else factory(n_regime_features=N_REGIME, n_symbols=2,
                                                    hidden=size["net"]["cond_hidden"], n_layers=l_net["layers"],
                                                    d_model=l_net["dim"])
        n_cond = 0 if cond is None else sum(p.numel() for p in cond.parameters())
        if kind == "regime_rag":
            assert n_cond == HRM_27M_REGIME_RAG_CONDITIONING
        other = {**counts, "conditioning": n_cond, "total": counts["total"] - counts["conditioning"] + n_cond}
        assert check_budget(other, size["budget"]) == [], kind


@pytest.mark.parametrize("conditioning", ["none", "puzzle_id", "regime", "regime_rag"])
def test_hrm_tiny_fits_its_own_budget(make_net, conditioning):
    counts = count_parameters(make_net(conditioning))
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert check_budget(counts, model_sizes("hrm_tiny")["budget"]) == []


def test_parameters_outside_components_are_caught(make_net):
    net = make_net("none")
    net.extra = nn.Parameter(torch.zeros(3))
    with pytest.raises(RuntimeError, match="extra"):
        count_parameters(net)


COUNTS = {"h_module": 10, "l_module": 20, "heads": 3, "conditioning": 0, "total": 33}


def test_check_budget_reports_over_and_under():
    budget = {"l_module": {"max": 15}, "total": {"min": 40, "max": 100}}
    assert check_budget(COUNTS, budget) == ["l_module: 20 parameters > max 15", "total: 33 parameters < min 40"]


def test_budget_table_shows_every_component_and_status():
    table = format_budget_table(COUNTS, {"l_module": {"max": 15}, "total": {"min": 40}})
    lines = table.splitlines()
    assert lines[0].split() == ["component", "params", "min", "max", "status"]
    assert set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == list(COUNTS)
    assert lines[3].split() == ["l_module", "20", "-", "15", "OVER"]
    assert lines[6].split() == ["total", "33", "40", "-", "UNDER"]
    assert lines[2].split()[-1] == "OK"


@pytest.mark.parametrize(("budget", "match"), [({"trunk": {"max": 1}}, r"model\.budget\.trunk"),
                                                ({"heads": {"maximum": 1}}, r"model\.budget\.heads")])
def test_malformed_budget_is_a_config_error(budget, match):
    with pytest.raises(ConfigError, match=match):
        check_budget(COUNTS, budget)
