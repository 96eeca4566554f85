"""Evaluation as a list of named scorers over (simulator, pair, eval config, seed).

`evaluate` draws the evaluation samples once (`EvaluationSamples`), runs each scorer of
`SCORERS` in turn and merges their blocks into the metrics dict (metrics.json) and their
figures. The pair may be a trained run's (`pair.TrainedPair`) or a loaded export
(`export.ExportedPair`): they share one interface.
"""

from __future__ import annotations

from typing import Callable, Sequence

from simvae_tf.evaluation import scorers
from simvae_tf.evaluation.samples import EvaluationSamples

# name -> scorer(samples) -> (blocks of metrics.json, {figure name: Figure})
SCORERS: dict[str, Callable] = {
    "surrogate": scorers.surrogate,
    "recovery": scorers.recovery,
    "coverage": scorers.coverage,
    "categorical": scorers.categorical,
    "calibration": scorers.calibration,
    "misspecification": scorers.misspecification,
    "predictive_check": scorers.predictive_check,
    "ground_truth": scorers.ground_truth,
    "canonical": scorers.canonical,
    "consistency": scorers.consistency,
    "derived": scorers.derived,
    "figures": scorers.paper_figures,
}


def evaluate(simulator, pair, eval_config, seed: int, names: Sequence[str] | None = None) -> tuple[dict, dict]:
    """(metrics, figures) of the named scorers (all of SCORERS by default)."""
    unknown = [name for name in names or () if name not in SCORERS]
    if unknown:
        raise ValueError(f"unknown scorers {unknown}; use some of {', '.join(SCORERS)}")
    samples = EvaluationSamples(simulator, pair, eval_config, seed)
    results = {
        "simulator": simulator.name,
        "data_source": simulator.source,
        "seed": seed,
        "eval_samples": eval_config.num_samples,
        "num_bins": eval_config.num_bins,
        "latent_names": simulator.latent_names,
    }
    figures = {}
    for name in names or SCORERS:
        blocks, scorer_figures = SCORERS[name](samples)
        for key, block in blocks.items():
            if isinstance(block, dict) and isinstance(results.get(key), dict):
                results[key] = {**results[key], **block}
            else:
                results[key] = block
        figures.update(scorer_figures)
    return results, figures


__all__ = ["SCORERS", "EvaluationSamples", "evaluate"]
