"""`stvg plan`: size a run before it is queued (docs/plan.md).

    from infra.plan import PlanOptions, make_plan
    plan = make_plan(run_config, PlanOptions())
    plan.fits, plan.problems          # infra.plan.report renders it as a table, JSON or MLflow params

One module per part: shapes (parameter counts, KV bytes), source (where config.json comes from),
prompt (frames and tokens), learner (ZeRO-3 memory, activations), rollout (engine memory),
timing (step time), verdict (what does not fit and its fixes), report. Nothing here imports torch.
"""

from infra.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {"PlanOptions": "plan", "make_plan": "plan", "log_plan": "tracking"})
