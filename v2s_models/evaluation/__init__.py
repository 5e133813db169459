"""Evaluation of a trained model on a split of the prepared data, beside baselines, in the papers' shapes.

    v2s evaluate MODEL [--split test] [--out DIR] [--background real|silence]   # any package, checkpoint, URI
    v2s evaluate MODEL --cluster local|ADDRESS    # the clips as Ray tasks (`cluster`), the same figures
    v2s compare EVAL_A EVAL_B                     # paired per-clip differences of two evaluations
    python -m experiments.stages evaluate KEY     # the DVC stage: models/KEY -> evaluations/KEY

For every clip of the split the model generates 10 s of sound from the clip's prepared visual features (exactly
the inputs training used: per frame, or the per-second features for a per-second model, `visual_input`), and
other "systems" are built from the same clip (`baselines`): `revoiced` (the real mel through the model's
vocoder: the upper bound), `same_category` (another clip's real audio: the right kind of sound at the wrong
times), `silence`, `model_other_video` (the model's sound for another clip of the category) and, for SampleRNN
models, Zhou et al.'s retrieval baseline `retrieval_oracle`. `scoring` scores every clip and summarises each
figure with a seeded 95 % bootstrap interval stratified by category; `retrieval` gives the likelihood (Zhou's
Table 1) and retrieval figures on a category-stratified sample; `reporting` writes metrics.json (`{"value",
"ci95": [low, high]}` per figure), the tables (`value [low, high]`) and paired comparisons; `paper_tables` the
papers' tables beside ours; `stage` the DVC stages and MLflow logging. Modules: baselines, scoring, retrieval,
reporting, paper_tables, driver (`evaluate`), stage, progress, cluster (where the per-clip work runs: this
process or Ray tasks).
"""

from v2s_models.evaluation.baselines import (
    BASELINES,
    CONTROL,
    RETRIEVAL_BASELINE,
    SYSTEM,
    EvalClip,
    Synthesis,
    load_clips,
    partners,
    retrieval_oracle,
    select_rows,
    synthesize,
    visual_input,
)
from v2s_models.evaluation.driver import Evaluation, evaluate
from v2s_models.evaluation.reporting import (
    HEADLINE,
    LOWER_IS_BETTER,
    compare_evaluations,
    comparison_markdown,
    markdown_table,
    metrics_document,
    ordered_columns,
    read_summary,
    summary_rows,
    write_outputs,
    write_samples,
)
from v2s_models.evaluation.retrieval import (
    chance_retrieval,
    likelihood_retrieval,
    retrieval_intervals,
    tower_retrieval,
)
from v2s_models.evaluation.scoring import (
    MEDIAN_METRICS,
    frechet_distance_lowrank,
    per_category,
    score_clips,
    summarize,
)
from v2s_models.evaluation.stage import DEFAULTS, evaluate_stage, log_to_mlflow, report_stage

__all__ = [
    "BASELINES",
    "CONTROL",
    "DEFAULTS",
    "HEADLINE",
    "LOWER_IS_BETTER",
    "MEDIAN_METRICS",
    "RETRIEVAL_BASELINE",
    "SYSTEM",
    "EvalClip",
    "Evaluation",
    "Synthesis",
    "chance_retrieval",
    "compare_evaluations",
    "comparison_markdown",
    "evaluate",
    "evaluate_stage",
    "frechet_distance_lowrank",
    "likelihood_retrieval",
    "load_clips",
    "log_to_mlflow",
    "markdown_table",
    "metrics_document",
    "ordered_columns",
    "partners",
    "per_category",
    "read_summary",
    "report_stage",
    "retrieval_intervals",
    "retrieval_oracle",
    "score_clips",
    "select_rows",
    "summarize",
    "summary_rows",
    "synthesize",
    "tower_retrieval",
    "visual_input",
    "write_outputs",
    "write_samples",
]
