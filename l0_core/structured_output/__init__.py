"""Structured output: JSON healing, schema validation with recovery, typed partial objects.

The public names are ``l0.structured``, ``l0.structured_object``, ``l0.structured_array``,
``l0.structured_stream``, ``l0.repair_json`` and their result and error classes. The
classes one only reads (to annotate code that inspects results) are importable from here:
``from l0_core.structured_output import AttemptFailure, Correction, CorrectionType,
Repaired``.

(The package is not called ``structured``: importing a subpackage sets an attribute of
that name on ``l0_core``, which would replace the function ``l0.structured``.)
"""

from l0_core.structured_output.errors import AttemptFailure
from l0_core.structured_output.repair import Correction, CorrectionType, Repaired

__all__ = ["AttemptFailure", "Correction", "CorrectionType", "Repaired"]
