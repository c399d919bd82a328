"""The registry's facts agree with MODELS.md and with the modules it builds."""

import pytest
import torch

from faceperf.models.registry import WeightOrigin, default_registry

PUBLISHED_PARAMS = {
    "retinaface": 426_608,
    "star": 17_177_332,
    "mtl": 25_346_454,
    "mtcnn_pnet": 6_632,
    "mtcnn_rnet": 100_178,
    "mtcnn_onet": 389_040,
}


def test_registry_holds_the_six_models_of_the_artifact_contract():
    assert default_registry().names() == list(PUBLISHED_PARAMS)


@pytest.mark.parametrize("name", PUBLISHED_PARAMS)
def test_built_module_has_the_published_parameter_count(name):
    spec = default_registry()[name]
    model = spec.build()
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS[name] == spec.param_count
    assert not model.training


@pytest.mark.parametrize("name", PUBLISHED_PARAMS)
def test_outputs_match_the_declared_names_at_the_fixed_shape(name):
    spec = default_registry()[name]
    with torch.no_grad():
        outputs = spec.build()(torch.zeros(spec.fixed_shape))
    assert isinstance(outputs, tuple) and len(outputs) == len(spec.output_names)


def test_only_mtcnn_weights_are_packaged_and_the_rest_name_a_checkpoint():
    for spec in default_registry():
        if spec.family == "mtcnn":
            assert spec.origin is WeightOrigin.PACKAGED and spec.checkpoint is None
        else:
            assert spec.origin is WeightOrigin.USER_CHECKPOINT and spec.checkpoint is not None


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="expected one of: retinaface, star, mtl"):
        default_registry()["resnet"]
