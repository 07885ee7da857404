"""ML.ENERGY benchmark files: reading them (`files`), turning their measurements into
profile rows (`points`) and assembling a GPU profile (`profile`, used by
``python -m energy.import_mlenergy``)."""

from energy.mlenergy.files import IMAGE_TASKS, LLM_TASKS, ModelFile, read_model_file
from energy.mlenergy.points import MeasuredPoint, dynamic_j, length_quantile, select_points

__all__ = [
    "IMAGE_TASKS",
    "LLM_TASKS",
    "MeasuredPoint",
    "ModelFile",
    "dynamic_j",
    "length_quantile",
    "read_model_file",
    "select_points",
]
