"""luffy_train: LUFFY (mixed on/off-policy GRPO with policy shaping) on verl 0.9, plus a one-process engine.

Modules: ``recipe`` (what both engines share: the demonstration text, the loss config, the advantage choice,
the algorithm table; light to import), ``core`` (the algorithm, pure torch), ``reward`` (LUFFY's v3 reward on
luffy_math), ``data``, ``config`` (Hydra configs over verl's), ``local_engine`` (rollout, score, ``collate``,
update), ``verl_support`` (the verl version guard), ``verl_agent_loop`` and ``verl_integration`` (verl's
extension points), ``verl_cpu`` (verl's CPU platform).
"""
