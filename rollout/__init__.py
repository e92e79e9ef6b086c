"""Rollout side: prompts, model families, generation engines, Ray rollout workers and weight sync.

Entry points (docs/rollout.md): `rollout.config.RolloutConfig`, `rollout.pool.RolloutPool`,
`rollout.models.get_family`, `rollout.models.tiny.tiny_model_dir`, `rollout.prompting.build_prompt_inputs`.
Nothing is imported here so that `import rollout.config` stays light.
"""
