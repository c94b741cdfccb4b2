"""luffy_train: LUFFY (mixed on/off-policy GRPO with policy shaping) on verl 0.9, plus a one-process engine.

Modules: ``core`` (the algorithm, pure torch), ``reward`` (LUFFY's v3 reward on luffy_math), ``data``,
``config`` (Hydra configs over verl's), ``local_engine``, ``verl_integration`` (verl's extension points).
"""
