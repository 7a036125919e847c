"""LayerMap is frozen all the way down, hashable and picklable; the layer-map strategy is valid."""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace

import pytest
from hypothesis import given

from neuralstyle import LayerMap
from neuralstyle.testing import layer_maps

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def test_a_layer_map_cannot_be_changed_after_validation() -> None:
    given_style = {"relu1_1": 1.0}
    layer_map = LayerMap(content={"relu4_2": 1.0}, style=given_style)
    given_style["relu1_1"] = -5.0  # the caller's dict is not the map's
    assert layer_map.style["relu1_1"] == 1.0
    with pytest.raises(TypeError, match="does not support item assignment"):
        layer_map.style["relu1_1"] = -5.0  # type: ignore[index]
    with pytest.raises(TypeError, match="does not support item assignment"):
        layer_map.content["relu5_1"] = 1.0  # type: ignore[index]


def test_equal_maps_hash_alike_and_work_as_keys() -> None:
    first = LayerMap(content={"relu4_2": 1}, style={"relu1_1": 1.0, "relu2_1": 0.5})
    second = LayerMap(content={"relu4_2": 1.0}, style={"relu2_1": 0.5, "relu1_1": 1.0})
    assert first == second
    assert hash(first) == hash(second)
    assert {first: "a"}[second] == "a"
    assert first != replace(first, style={"relu1_1": 2.0})


def test_a_layer_map_pickles_copies_and_reads_back() -> None:
    layer_map = LayerMap(content={"relu4_2": 1.0}, style={"relu1_1": 0.2})
    assert pickle.loads(pickle.dumps(layer_map)) == layer_map
    assert copy.deepcopy(layer_map) == layer_map
    assert repr(layer_map) == "LayerMap(content={'relu4_2': 1.0}, style={'relu1_1': 0.2})"


@given(layer_maps(LAYERS))
def test_the_strategy_draws_valid_maps_over_the_given_layers(layer_map: LayerMap) -> None:
    assert set(layer_map.layers) <= set(LAYERS)
    weights = [*layer_map.content.values(), *layer_map.style.values()]
    assert any(weight > 0 for weight in weights)
    assert all(0 <= weight <= 10 for weight in weights)
    assert LayerMap(content=dict(layer_map.content), style=dict(layer_map.style)) == layer_map
