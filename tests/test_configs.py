"""Every shipped config loads in both variants, passes validation and fits its simulator."""

import importlib.util
import os

import pytest

from simvae_tf import config as config_lib, simulators
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


def test_custom_config_is_valid():
    config_lib.validate(load("custom").get_config())
