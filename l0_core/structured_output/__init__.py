"""Structured output: JSON healing, schema validation with recovery, typed partial objects.

The public names are ``l0.structured``, ``l0.structured_object``, ``l0.structured_array``,
``l0.structured_stream``, ``l0.repair_json`` and their result and error classes.

(The package is not called ``structured``: importing a subpackage sets an attribute of
that name on ``l0_core``, which would replace the function ``l0.structured``.)
"""
