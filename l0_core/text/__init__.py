"""Long documents and prompts: document windows (:mod:`l0_core.text.window`), tokenizers
(:mod:`l0_core.text.tokenizers`) and formatting helpers (:mod:`l0_core.text.formatting`,
``l0.formatting``)."""

from l0_core.text import formatting

__all__ = ["formatting"]
