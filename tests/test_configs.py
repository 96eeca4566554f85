"""Every shipped config loads in both variants, passes validation and fits its simulator."""

import importlib.util
import os

import pytest

from simvae_tf import config as config_lib, simulators
from simvae_tf.errors import ConfigError
from simvae_tf.simulators import BUILTIN

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def load(name):
    spec = importlib.util.spec_from_file_location(f"config_{name}", os.path.join(CONFIG_DIR, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(BUILTIN))
@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_config_variants_are_valid(name, variant):
    config = load(name).get_config(variant)
    config_lib.validate(config)
    assert config.stage1.steps % min(config.stage1.steps_per_loop, config.stage1.steps) == 0
    assert config.stage2.steps % min(config.stage2.steps_per_loop, config.stage2.steps) == 0
    simulators.resolve_class(name)  # the simulator exists for the config
    if variant == "gpu":
        cpu = load(name).get_config("cpu")
        assert config.batch_size > cpu.batch_size and config.model.width > cpu.model.width
        assert config.stage1.steps > cpu.stage1.steps


def test_unknown_variant_names_the_file_and_the_choices():
    with pytest.raises(ValueError, match=r"configs/box.py: unknown variant 'tpu'; use one of cpu, gpu"):
        load("box").get_config("tpu")


@pytest.mark.parametrize("kind", ["signal", "image"])
def test_custom_config_variants_are_valid_and_use_the_latent_term(kind):
    config = load("custom").get_config(kind)
    config_lib.validate(config)
    assert config.stage2.latent_weight == 100 and config.model.family == "auto"
    assert config.stage1.lr_schedule == config.stage2.lr_schedule == "cosine"
    assert config.stage1.steps % config.stage1.steps_per_loop == 0
    if kind == "image":  # the shipped image configs' network and schedule
        assert (config.model.width, config.model.stem_layers, config.stage1.steps) == (16, 2, 3000)
    else:
        assert config.model.width == 256
    with pytest.raises(ValueError, match=r"configs/custom.py: unknown variant 'gpu'; use one of signal, image"):
        load("custom").get_config("gpu")


def test_your_own_simulator_gets_the_custom_variant_of_its_output_kind():
    from test_api import Ramp

    assert config_lib.default_config("examples.damped_oscillator:DampedOscillator").endswith("custom.py:signal")
    assert config_lib.default_config("box").endswith("box.py")
    image_sim = type("Picture", (Ramp,), {"output_spec": simulators.OutputSpec((64, 64, 1), "binary_image")})
    assert config_lib.default_variant(image_sim) == "image" and config_lib.default_variant(Ramp) == "signal"
    assert config_lib.get_config(image_sim).model.width == 16
    assert config_lib.get_config(Ramp).model.width == 256
    assert config_lib.get_config("box").stage2.latent_weight == 100  # built-ins keep their own files


def test_stage2_without_any_loss_term_is_refused_naming_both_keys():
    config = config_lib.get_config("box")
    config.stage2.reconstruction_weight = 0.0
    config_lib.validate(config)  # eq. 5 alone: the latent term remains
    config.stage2.latent_weight = 0.0
    with pytest.raises(ConfigError, match=r"stage2.reconstruction_weight.*0.0.*stage2.latent_weight positive"):
        config_lib.validate(config)


def test_a_negative_stage1_detail_weight_is_refused():
    config = config_lib.get_config("box")
    config.stage1.detail_weight = -1.0
    with pytest.raises(ConfigError, match=r"stage1.detail_weight=-1.0"):
        config_lib.validate(config)
