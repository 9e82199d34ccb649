"""lmms-eval integration: every finished run as an lmms-eval model (`--model apollo_lab`).

lmms-eval finds the model through the entry point `apollo_lab` of the group
`lmms_eval.models` (pyproject.toml), which names `manifest` below; the model itself is
src/lmms/model.py, the local task of the synthetic benchmark src/lmms/task.py, and reading
lmms-eval's per-sample logs back into the analysis is analysis/lmms_logs.py. Install with
`make lmms-eval` (README: "lmms-eval").
"""

from __future__ import annotations

from typing import Any

MODEL_NAME = "apollo_lab"


def manifest() -> Any:
    """The `ModelManifest` lmms-eval registers (a callable: lmms-eval imports only when asked)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_NAME, simple_class_path="src.lmms.model.ApolloLab")
