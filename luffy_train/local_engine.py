"""The single-process engine: LUFFY's core on a transformers model, HF generation and AdamW.

For tiny models on the CPU or one GPU (verl needs GPUs and Ray). Each step: sample prompts, put the
demonstration in the first ``n_off_policy`` slots of each group and generate the rest (``rollout``), score
them with the LUFFY reward (``reward.score``), pad them into a ``Batch`` (``collate``, which scores nothing), compute
group advantages (``core.row_advantages``), then one optimizer step per mini-batch with ``core.luffy_loss``.
It writes metrics JSONL, a reward/loss plot and HF checkpoints luffy-serve loads; each carries the training
state beside it (``checkpoint``), so a run killed or preempted resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from luffy_train import checkpoint, core, recipe, reward, stopping
from luffy_train.data import Example, read_examples


class Row(NamedTuple):
    """One sample before padding: its group (prompt index), prompt tokens, response tokens, and whether the
    response is the demonstration."""

    group: int
    prompt: list[int]
    response: list[int]
    off_policy: bool


@dataclass
class Batch:
    """One step's samples, padded: prompt left-padded, response right-padded."""

    input_ids: torch.Tensor  # [B, P + R]
    attention_mask: torch.Tensor  # [B, P + R]
    response_mask: torch.Tensor  # [B, R]
    is_off_policy: torch.Tensor  # [B] bool
    group_ids: list[int]
    rewards: torch.Tensor  # [B] float32; NaN for rows nothing scored (collate without rewards)
    prompt_len: int

    @property
    def prefix_mask(self) -> torch.Tensor:
        return core.prefix_mask_from_rows(self.is_off_policy, self.response_mask)

    def select(self, rows: list[int]) -> Batch:
        return Batch(self.input_ids[rows], self.attention_mask[rows], self.response_mask[rows],
                     self.is_off_policy[rows], [self.group_ids[i] for i in rows], self.rewards[rows],
                     self.prompt_len)

    def response_ids(self, row: int) -> list[int]:
        """Row ``row``'s response tokens, without padding."""
        return self.input_ids[row, self.prompt_len:][self.response_mask[row].to(torch.bool)].tolist()


def collate(rows: Sequence[Row], pad_id: int, device: str | torch.device = "cpu",
            rewards: Sequence[float] | None = None) -> Batch:
    """Pad ``rows`` into a Batch (prompts left-, responses right-padded). It scores nothing: ``rewards`` (one per
    row) are put in as given, and without them the batch's rewards are NaN."""
    p_len = max(len(r.prompt) for r in rows)
    r_len = max(1, max(len(r.response) for r in rows))
    input_ids, attn, resp_mask = [], [], []
    for _, p, resp, _ in rows:
        input_ids.append([pad_id] * (p_len - len(p)) + p + resp + [pad_id] * (r_len - len(resp)))
        attn.append([0] * (p_len - len(p)) + [1] * (len(p) + len(resp)) + [0] * (r_len - len(resp)))
        resp_mask.append([1] * len(resp) + [0] * (r_len - len(resp)))
    if rewards is None:
        scores = torch.full((len(rows),), float("nan"))
    else:
        if len(rewards) != len(rows):
            raise ValueError(f"collate got {len(rewards)} rewards for {len(rows)} rows")
        scores = torch.tensor(list(rewards), dtype=torch.float32)
    return Batch(torch.tensor(input_ids, device=device), torch.tensor(attn, device=device),
                 torch.tensor(resp_mask, device=device), torch.tensor([r.off_policy for r in rows], device=device),
                 [r.group for r in rows], scores, p_len)


@dataclass
class LocalSettings:
    """What the local engine reads from a composed config."""

    model: str
    train_files: str
    output_dir: Path
    prompts_per_step: int
    mini_batch_prompts: int
    n: int
    n_off_policy: int
    advantage: str
    use_std: bool
    max_prompt_length: int
    max_response_length: int
    temperature: float
    lr: float
    grad_clip: float
    epochs: int
    max_steps: int | None
    save_every: int
    device: str
    seed: int
    loss: recipe.LossConfig
    reward_grader: str = "exact"
    resume_mode: str = "auto"  # verl's trainer.resume_mode: auto | disable | resume_path
    resume_from: str | None = None  # trainer.resume_from_path (resume_path mode)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> LocalSettings:
        luffy, actor = cfg.luffy, cfg.actor_rollout_ref.actor
        loss = recipe.loss_config(luffy)
        device = luffy.local.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(
            model=cfg.actor_rollout_ref.model.path, train_files=str(cfg.data.train_files),
            output_dir=Path(cfg.trainer.default_local_dir), prompts_per_step=cfg.data.train_batch_size,
            mini_batch_prompts=min(actor.ppo_mini_batch_size, cfg.data.train_batch_size),
            n=cfg.actor_rollout_ref.rollout.n, n_off_policy=luffy.n_off_policy, advantage=luffy.advantage,
            use_std=luffy.use_std, max_prompt_length=cfg.data.max_prompt_length,
            max_response_length=cfg.data.max_response_length,
            temperature=cfg.actor_rollout_ref.rollout.temperature, lr=actor.optim.lr, grad_clip=actor.grad_clip,
            epochs=cfg.trainer.total_epochs, max_steps=luffy.local.max_steps, save_every=luffy.local.save_every,
            device=device, seed=luffy.local.seed, loss=loss,
            reward_grader=str(luffy.reward_grader), resume_mode=str(cfg.trainer.get("resume_mode", "auto")),
            resume_from=cfg.trainer.get("resume_from_path"))


def load_model(path: str, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    return model, tokenizer


def prompt_ids(tokenizer: Any, example: Example) -> list[int]:
    return tokenizer.apply_chat_template(example.messages, add_generation_prompt=True, tokenize=True,
                                         return_dict=False)


def demonstration_ids(tokenizer: Any, example: Example, prompt_text: str, max_len: int) -> list[int]:
    """The demonstration's tokens + EOS, as LUFFY feeds them (``recipe.demonstration_text``: a ``<think>\\n`` the
    prompt already opened is dropped from the trace), cut at ``max_len``."""
    text = recipe.demonstration_text(example.demonstration or "", prompt_text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return ids[:max_len]


def _valid_length(ids: list[int], eos_id: int, pad_id: int) -> int:
    """Tokens up to and including the first EOS (LUFFY's eos mask), or up to padding."""
    for i, t in enumerate(ids):
        if t == eos_id:
            return i + 1
    n = len(ids)
    while n > 0 and ids[n - 1] == pad_id and pad_id != eos_id:
        n -= 1
    return n


def sequence_log_probs(model: Any, batch: Batch, with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (and entropy) of each response token, shape [B, R]."""
    position_ids = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
    resp_len = batch.response_mask.shape[1]
    # Only the positions that predict response tokens reach the output layer: with Qwen's 151,936-token
    # vocabulary the logits of the prompt's positions would cost as much as the model itself.
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=position_ids,
                   use_cache=False, logits_to_keep=resp_len + 1).logits
    logits = logits[:, :resp_len].float()
    targets = batch.input_ids[:, batch.prompt_len:]
    log_norm = torch.logsumexp(logits, dim=-1)
    log_probs = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1) - log_norm
    entropy = None
    if with_entropy:
        probs = torch.softmax(logits, dim=-1)
        entropy = log_norm - (probs * logits).sum(-1)
    return log_probs, entropy


class LocalTrainer:
    """Owns the model, the optimizer and the step loop."""

    def __init__(self, settings: LocalSettings, examples: list[Example] | None = None) -> None:
        self.s = settings
        random.seed(settings.seed)
        torch.manual_seed(settings.seed)
        self.model, self.tokenizer = load_model(settings.model, settings.device)
        self.examples = examples if examples is not None else read_examples(settings.train_files)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.lr, weight_decay=0.01)
        self._order: list[int] = []

    # -- sampling -------------------------------------------------------------------------------------
    def next_prompts(self) -> list[Example]:
        out = []
        while len(out) < self.s.prompts_per_step:
            if not self._order:
                self._order = random.sample(range(len(self.examples)), len(self.examples))
            out.append(self.examples[self._order.pop()])
        return out

    @torch.no_grad()
    def rollout(self, examples: list[Example]) -> Batch:
        """Build the mixed groups: demonstrations first, then sampled responses; score every row."""
        tok, s = self.tokenizer, self.s
        eos, pad = tok.eos_token_id, tok.pad_token_id
        prompts = [prompt_ids(tok, ex) for ex in examples]
        for p in prompts:
            if len(p) > s.max_prompt_length:
                raise ValueError(f"a prompt has {len(p)} tokens > data.max_prompt_length={s.max_prompt_length}")
        n_on = s.n - s.n_off_policy
        generated: list[list[int]] = []
        if n_on > 0:
            width = max(len(p) for p in prompts)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=s.device)
            mask = (torch.arange(width, device=s.device)[None, :] >= torch.tensor(
                [width - len(p) for p in prompts], device=s.device)[:, None]).long()
            self.model.eval()
            out = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=True,
                                      temperature=s.temperature, top_p=1.0, top_k=0,
                                      max_new_tokens=s.max_response_length, num_return_sequences=n_on,
                                      eos_token_id=eos, pad_token_id=pad)
            self.model.train()
            generated = [row[width:].tolist() for row in out]
        rows: list[Row] = []
        for g, (ex, p) in enumerate(zip(examples, prompts, strict=True)):
            prompt_text = tok.decode(p)
            for _ in range(s.n_off_policy):
                rows.append(Row(g, p, demonstration_ids(tok, ex, prompt_text, s.max_response_length), True))
            for k in range(n_on):
                resp = generated[g * n_on + k]
                rows.append(Row(g, p, resp[:_valid_length(resp, eos, pad)], False))
        # LUFFY's reward reads the decoded text with special tokens kept (its trainer's own decode).
        texts = [tok.decode(r.response, skip_special_tokens=False) for r in rows]
        rewards = reward.score(texts, [examples[r.group].gold for r in rows], grader=s.reward_grader)
        return collate(rows, pad, s.device, rewards)

    def response_texts(self, batch: Batch) -> list[str]:
        """Each row's response as the reward read it (decoded with special tokens)."""
        return [self.tokenizer.decode(batch.response_ids(i), skip_special_tokens=False)
                for i in range(len(batch.group_ids))]

    # -- update ---------------------------------------------------------------------------------------
    def advantages(self, batch: Batch) -> torch.Tensor:
        row_adv = core.row_advantages(batch.rewards, batch.group_ids, batch.is_off_policy,
                                        advantage=self.s.advantage, use_std=self.s.use_std)
        return core.token_advantages(row_adv.to(self.s.device), batch.response_mask)

    def update(self, batch: Batch) -> dict[str, float]:
        """One pass over the batch in mini-batches of whole groups; one optimizer step each."""
        advantages = self.advantages(batch)
        with torch.no_grad():
            old_log_probs, _ = sequence_log_probs(self.model, batch, with_entropy=False)
        rows_per_mini = self.s.mini_batch_prompts * self.s.n
        metrics: dict[str, list[float]] = {}
        for start in range(0, len(batch.group_ids), rows_per_mini):
            rows = list(range(start, min(start + rows_per_mini, len(batch.group_ids))))
            mini = batch.select(rows)
            log_probs, entropy = sequence_log_probs(self.model, mini, with_entropy=self.s.loss.entropy_coeff != 0)
            loss, m = core.luffy_loss(log_probs, old_log_probs[rows], advantages[rows], mini.response_mask,
                                      mini.prefix_mask, self.s.loss, entropy=entropy)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            m["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip))
            self.optimizer.step()
            m["loss"] = loss.item()
            for k, v in m.items():
                metrics.setdefault(k, []).append(v)
        return {k: sum(v) / len(v) for k, v in metrics.items()}

    @torch.no_grad()
    def demonstration_log_likelihood(self, examples: list[Example]) -> float:
        """Mean per-token log-probability of the examples' demonstrations under the current model."""
        rows = []
        for g, ex in enumerate(examples):
            p = prompt_ids(self.tokenizer, ex)
            rows.append(Row(g, p, demonstration_ids(self.tokenizer, ex, self.tokenizer.decode(p),
                                                    self.s.max_response_length), True))
        batch = collate(rows, self.tokenizer.pad_token_id, self.s.device)  # log-probs only: nothing scored
        log_probs, _ = sequence_log_probs(self.model, batch, with_entropy=False)
        mask = batch.response_mask.float()
        return float((log_probs * mask).sum() / mask.sum())

    def step(self, examples: list[Example]) -> dict[str, float]:
        t0 = time.perf_counter()
        batch = self.rollout(examples)
        t1 = time.perf_counter()
        metrics = self.update(batch)
        t2 = time.perf_counter()
        off = batch.is_off_policy.cpu()
        metrics["reward/on_policy"] = float(batch.rewards[~off].mean()) if (~off).any() else float("nan")
        metrics["reward/off_policy"] = float(batch.rewards[off].mean()) if off.any() else float("nan")
        metrics["response_length/on_policy"] = float(batch.response_mask[~off.to(batch.response_mask.device)]
                                                     .sum(-1).float().mean()) if (~off).any() else 0.0
        metrics["time/rollout_s"] = t1 - t0
        metrics["time/update_s"] = t2 - t1
        return metrics

    # -- checkpoints ----------------------------------------------------------------------------------
    def save(self, out_dir: Path, step: int | None = None) -> Path:
        """Write an HF checkpoint (model, tokenizer, generation config) atomically; with ``step``, the training
        state goes beside it (``checkpoint.write``), so a run resumes from it."""
        if step is not None:
            return checkpoint.write(out_dir, self._save_hf, step, self.training_state())
        out_dir = Path(out_dir)
        tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self._save_hf(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
        return out_dir

    def _save_hf(self, folder: Path) -> None:
        self.tokenizer.padding_side = "right"
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        self.tokenizer.padding_side = "left"

    def training_state(self) -> dict[str, Any]:
        """What the next step depends on besides the weights: the optimizer (and a scheduler, if any), the
        data position (the epoch's prompts still to come) and the RNG states (data order, sampling)."""
        scheduler = getattr(self, "scheduler", None)
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "order": list(self._order), "rng": checkpoint.rng_states()}

    def restore_training_state(self, state: dict[str, Any]) -> None:
        """Put back ``training_state()`` (the weights come from the checkpoint's HF files)."""
        self.optimizer.load_state_dict(state["optimizer"])
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        self._order = list(state["order"])
        checkpoint.restore_rng(state["rng"])


def resume_point(s: LocalSettings) -> Path | None:
    """The checkpoint a run continues from: per ``trainer.resume_mode``, the newest one in the run's folder
    (auto), none (disable), or ``trainer.resume_from_path`` (resume_path)."""
    if s.resume_mode == "disable":
        return None
    if s.resume_mode == "resume_path":
        if not s.resume_from or checkpoint.saved_step(Path(s.resume_from)) is None:
            raise ValueError(f"trainer.resume_from_path={s.resume_from} is not a checkpoint with training state")
        return Path(s.resume_from)
    return checkpoint.latest(s.output_dir)


def train(cfg: DictConfig, progress: bool = True, stop: Callable[[], bool] = stopping.requested) -> Path:
    """Run the local engine for a composed config; returns the final checkpoint directory.

    It resumes from the newest checkpoint in the run's folder (``resume_point``), and the steps after it are the
    steps an uninterrupted run takes. ``stop()`` (SIGTERM, see ``stopping``) is asked after each step: when
    true, the run saves ``step-K`` and returns it."""
    from luffy_train.metrics_log import MetricsLog

    s = LocalSettings.from_config(cfg)
    resume = resume_point(s)
    state = checkpoint.load(resume) if resume is not None else None
    if state is not None:
        s.model = str(resume)  # the weights it saved (a full HF checkpoint)
    trainer = LocalTrainer(s)
    if state is not None:
        trainer.restore_training_state(state)
    start = state["step"] if state is not None else 0
    steps_per_epoch = max(1, len(trainer.examples) // s.prompts_per_step)
    total = steps_per_epoch * s.epochs
    if s.max_steps is not None:
        total = min(total, s.max_steps)
    s.output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.remove_partial(s.output_dir)
    (s.output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    if resume is not None:
        print(f"resuming after step {start} from {resume}", file=sys.stderr, flush=True)
        if start >= total:
            return resume
    probe = trainer.examples[: min(4, len(trainer.examples))]
    log = MetricsLog(s.output_dir / "metrics.jsonl", resume_after=start)
    bar = tqdm(range(start + 1, total + 1), initial=start, total=total, desc="luffy-train", unit="step",
               disable=not progress)
    for step in bar:
        metrics = trainer.step(trainer.next_prompts())
        if probe[0].demonstration is not None:
            metrics["demo_logp"] = trainer.demonstration_log_likelihood(probe)
        log.write(step, metrics)  # before the step's checkpoint: a run resumed after it has its line
        bar.set_postfix(reward=f"{metrics['reward/on_policy']:.2f}", loss=f"{metrics['loss']:.4f}")
        stopping_here = step != total and stop()
        if step != total and (stopping_here or (s.save_every and step % s.save_every == 0)):
            saved = trainer.save(checkpoint.step_dir(s.output_dir, step), step=step)
            checkpoint.drop_older_states(s.output_dir, keep=saved)
        if stopping_here:
            bar.close()
            log.plot(s.output_dir / "curves.png")
            print(f"stopped after step {step} of {total}: {saved}; the same command resumes",
                  file=sys.stderr, flush=True)
            return saved
    final = trainer.save(s.output_dir / checkpoint.FINAL, step=total)
    checkpoint.drop_older_states(s.output_dir, keep=final)
    log.plot(s.output_dir / "curves.png")
    (s.output_dir / "summary.json").write_text(json.dumps({"steps": total, "checkpoint": str(final)}, indent=2))
    return final
