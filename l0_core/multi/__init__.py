"""Many streams at once: parallel, race, hedge, consensus, pools, batches and pipelines.

Every task is a stream factory or an async function returning a value, run as a child
``l0.run`` session with the shared run options (see ``docs/orchestration.md``).
Concurrency is structured: each operation owns its tasks, and every stream it stops (a
race's losers, ``fail_fast``) is aborted, awaited and its upstream closed before it
returns.
"""

from __future__ import annotations

from l0_core.multi._child import TaskResult
from l0_core.multi.consensus import (
    PRESETS,
    Agreement,
    ConsensusError,
    ConsensusOutput,
    ConsensusResult,
    Disagreement,
    FieldAgreement,
    consensus,
)
from l0_core.multi.parallel import ParallelResult, batched, parallel, sequential
from l0_core.multi.pipeline import (
    Branch,
    Pipeline,
    PipelineResult,
    PipelineStream,
    Step,
    StepContext,
    StepEvent,
    StepResult,
    create_pipeline,
    pipe,
)
from l0_core.multi.pool import Pool, PoolStats, create_pool
from l0_core.multi.race import LatencyHistory, LiveStream, RaceResult, hedge, race
from l0_core.multi.similarity import similarity

__all__ = [
    "PRESETS",
    "Agreement",
    "Branch",
    "ConsensusError",
    "ConsensusOutput",
    "ConsensusResult",
    "Disagreement",
    "FieldAgreement",
    "LatencyHistory",
    "LiveStream",
    "ParallelResult",
    "Pipeline",
    "PipelineResult",
    "PipelineStream",
    "Pool",
    "PoolStats",
    "RaceResult",
    "Step",
    "StepContext",
    "StepEvent",
    "StepResult",
    "TaskResult",
    "batched",
    "consensus",
    "create_pipeline",
    "create_pool",
    "hedge",
    "parallel",
    "pipe",
    "race",
    "sequential",
    "similarity",
]
