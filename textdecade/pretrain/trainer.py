"""The one training loop that drives every family (see ``textdecade/models/base.py``).

It never branches on the family: the family prepares its data, yields batches and
computes its loss (or applies its own sparse update); the trainer owns devices,
precision, optimizers and schedules, accumulation, clipping, data parallelism,
checkpoints, exact resume, metrics and signals.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdecade.config import RunConfig, TrainConfig
from textdecade.errors import ConfigError, Interrupted, UserError
from textdecade.io import write_json
from textdecade.models import get_family
from textdecade.models.base import PreparedData
from textdecade.pretrain import checkpoint as ckpt
from textdecade.pretrain import distributed as dist
from textdecade.pretrain import fsdp, rundir
from textdecade.pretrain.clean_start import clean_start
from textdecade.pretrain.cpu_share import thread_count, threads_for_free_cores
from textdecade.pretrain.device import peak_flops, select_device, select_precision
from textdecade.pretrain.diagnostics import LayerProbe
from textdecade.pretrain.lock import RunLock
from textdecade.pretrain.optim import build_optimizer
from textdecade.pretrain.progress import MetricsLog, Progress, ReadingBar, human
from textdecade.pretrain.schedules import lr_at
from textdecade.pretrain.steps import UNMEASURED, TimeBudget, total_steps


class TrainingInterrupted(Interrupted):
    """SIGINT/SIGTERM: a checkpoint was written; ``--resume`` continues."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns."""

    run_dir: Path
    step: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    n_params: int = 0
    unit: str = "tokens"
    units_seen: int = 0  # tokens (or words) trained on, all steps and ranks together
    is_main: bool = True  # rank 0 (the one that reports) of a torchrun job
    flops: float = 0.0  # training FLOPs of all steps (flops_per_unit x units_seen; 0: unknown)
    stopped_early: bool = False  # a callback's ``after_eval`` ended the run before its total


def open_corpus(config: RunConfig):
    """The corpus a run reads (see :func:`textdecade.data.opening.open_corpus`)."""
    from textdecade.data.opening import open_corpus as open_data

    return open_data(config.data)


@dataclass
class _Loop:
    """What the training loop carries from step to step."""

    model: Any
    step_fn: Any
    optimizer: Any
    batcher: Any
    schedule: str
    scaler: Any
    units_per_step: int
    n_params: int
    total: int  # the steps of the whole run
    probe: LayerProbe | None = None  # train.diagnostics_every
    layers: dict[str, list] = field(default_factory=dict)  # the probe's last reading
    step: int = 0
    last: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False  # a callback's after_eval asked to stop
    budget: TimeBudget | None = None  # train.minutes: fixes ``total`` once the rate is known


class Trainer:
    """Train ``config.family`` into ``run_dir``.

    Args:
        config: the run's configuration.
        run_dir: the output directory (created; see :mod:`textdecade.pretrain.rundir`).
        corpus: texts to train on (re-iterable); default: what ``config.data`` names.
        tokenizer: an already-trained Tokenizer to use instead of training one.
        resume: continue from the newest complete checkpoint in ``run_dir``.
        overwrite: replace a run already in ``run_dir``.
        progress: show the progress bar and start banner on stderr.
        data_from: a run directory of the same family whose tokenizer and prepared data
            this run trains on instead of preparing its own (a sweep over settings that
            leave the data alone: learning rates, update sizes, seeds). Its data files are
            hard-linked (copied across file systems), so this run resumes on its own.
        callbacks: :class:`~textdecade.pretrain.callbacks.Callback` hooks (the lab's
            pruning masks and search pruners), called in order.
    """

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | Path,
        *,
        corpus: Any = None,
        tokenizer: Any = None,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = True,
        data_from: str | Path | None = None,
        callbacks: Any = (),
    ):
        self.config = config
        self.data_from = None if data_from is None else Path(data_from)
        self.run_dir = Path(run_dir)
        self.corpus = corpus
        self.tokenizer = tokenizer
        self.resume = resume
        self.overwrite = overwrite
        self.show_progress = progress
        self.callbacks = list(callbacks)
        self._claimed = [False]  # this process made run_dir a new run (see clean_start)
        self.Model, _, _ = get_family(config.family)
        self._stop_signal: int | None = None
        # Held from the start of fit (or prepare) to its end, by rank 0 only.
        self._lock = RunLock(self.run_dir)

    # ----------------------------------------------------------------------------- setup
    def _say(self, text: str) -> None:
        if self.info.is_main and self.show_progress:
            print(text, file=sys.stderr, flush=True)

    def _setup_tokenizer(self, resuming: bool):
        from textdecade.tokenizer import Tokenizer

        path = self.run_dir / rundir.TOKENIZER
        if self.info.is_main and not (resuming and path.exists()):
            tok_cfg = self.config.tokenizer
            if self.tokenizer is not None:
                tokenizer = self.tokenizer
            elif self.data_from is not None:
                tokenizer = Tokenizer.load(self.data_from / rundir.TOKENIZER)
            elif tok_cfg.path:
                tokenizer = Tokenizer.load(tok_cfg.path)
            else:
                self._say(f"training a {tok_cfg.backend} tokenizer ({tok_cfg.vocab_size} tokens)")
                # No reading bar here: the native trainer pulls the texts from its own
                # threads, and a bar's frames there made a Ctrl-C abort the process.
                texts = iter(self._corpus_object())
                if tok_cfg.max_texts:
                    texts = itertools.islice(texts, tok_cfg.max_texts)
                tokenizer = Tokenizer.train(
                    texts,
                    vocab_size=tok_cfg.vocab_size,
                    backend=tok_cfg.backend,
                    model_type=tok_cfg.model_type,
                    min_frequency=tok_cfg.min_frequency,
                    lowercase=tok_cfg.lowercase,
                )
            tokenizer.save(path)
        dist.barrier(self.info)
        return Tokenizer.load(path)

    def _corpus_object(self):
        if self.corpus is None:
            self.corpus = open_corpus(self.config)
        return self.corpus

    def _reading(self, desc: str, corpus: Any) -> Any:
        """``corpus`` with a bar over each pass (rank 0, unless the run is quiet)."""
        return ReadingBar(corpus, desc, self.info.is_main and self.show_progress)

    def _setup_data(self, tokenizer, resuming: bool):
        workdir = self.run_dir / rundir.DATA_DIR
        meta_path = self.run_dir / rundir.DATA_META
        # An imported run (`import hf`) has its model's facts but no data of its own yet.
        prepared = resuming and meta_path.exists() and workdir.is_dir()
        if self.info.is_main and not prepared:
            if self.data_from is not None:
                rundir.link_tree(self.data_from / rundir.DATA_DIR, workdir)
                write_json(meta_path, rundir.read_json(self.data_from / rundir.DATA_META))
            else:
                self._say("preparing data")
                corpus = self._reading("prepare: read", self._corpus_object())
                workdir.mkdir(parents=True, exist_ok=True)
                data = self.Model.prepare(corpus, tokenizer, self.config.model, workdir)
                # the imported model's facts (its special ids, its pooling) stay as they were
                kept = rundir.read_json(meta_path) if resuming and meta_path.exists() else {}
                write_json(meta_path, {**data.meta, **kept})
        dist.barrier(self.info)
        meta = rundir.read_json(meta_path)
        return self.Model.load_prepared(workdir, meta)

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self._stop_signal = signum

    # ------------------------------------------------------------------------------ fit
    def fit(self) -> FitResult:
        """Run (or resume) training to ``config.train.steps`` (or ``train.epochs`` passes over
        the data); returns the final metrics."""
        with _keeping_thread_count():
            try:
                return self._fit()
            finally:
                self._lock.release()

    def prepare(self) -> tuple[Any, PreparedData]:
        """Lay out the run directory, train the tokenizer and prepare the data, and stop
        before training: a sweep then trains many runs on it (``data_from``).

        Returns:
            ``(tokenizer, data)``.
        """
        with _keeping_thread_count():
            try:
                self._start_process()
                with clean_start(self.run_dir, self._claimed):
                    tokenizer, data, _ = self.prepare_run()
                return tokenizer, data
            finally:
                self._lock.release()

    def _fit(self) -> FitResult:
        self._start_process()
        # A start that fails or is interrupted leaves no run behind to refuse the rerun.
        with clean_start(self.run_dir, self._claimed):
            tokenizer, data, resuming = self.prepare_run()
            loop = self._build(data, resuming)
        train = self.config.train
        self._say(
            f"{self.config.family}: {human(loop.n_params)} parameters | "
            f"{human(loop.units_per_step)} {data.unit}/step | device {self.device} "
            f"x{self.info.world_size}"
            + (f" ({self._threads_note})" if self._threads_note else "")
            + f" | {self.precision.name} | {loop.schedule} lr "
            f"{train.lr:g} | "
            + (f"{train.minutes:g} min" if loop.total == UNMEASURED else f"{loop.total} steps")
        )
        if loop.model.nondeterminism():
            self._say(f"note: {loop.model.nondeterminism()}")
        log = (
            MetricsLog(self.run_dir, loop.step if resuming else None, train.tensorboard)
            if self.info.is_main
            else None
        )
        bar = Progress(
            None if loop.total == UNMEASURED else loop.total,
            loop.step,
            data.unit,
            self.info.is_main and self.show_progress,
        )
        old_handlers = _install_signal_handlers(self._on_signal)
        t0 = time.perf_counter()
        try:
            self._run_loop(loop, data, log, bar)
            if self._stop_signal is not None:  # arrived after the loop's last look
                raise TrainingInterrupted(
                    f"{signal.Signals(self._stop_signal).name} received as the run finished "
                    f"(step {loop.step}, saved in {self.run_dir}); stopping"
                )
        finally:
            _restore_signal_handlers(old_handlers)
            bar.close()
            if log is not None:
                log.close()
            dist.shutdown(self.info)
        seconds = time.perf_counter() - t0
        self._say(f"done: step {loop.step} in {seconds:.1f}s -> {self.run_dir}")
        return FitResult(
            self.run_dir,
            loop.step,
            seconds,
            loop.last,
            loop.n_params,
            data.unit,
            loop.step * loop.units_per_step,
            is_main=self.info.is_main,
            flops=loop.model.flops_per_unit() * loop.step * loop.units_per_step,
            stopped_early=loop.stopped_early,
        )

    def _start_process(self) -> None:
        """Join the job (torchrun), pick the device and precision, set the thread count."""
        train = self.config.train
        self.info = dist.init_distributed(None if train.device == "auto" else train.device)
        self.device = select_device(train.device, self.info.local_rank)
        self.precision = select_precision(train.dtype, self.device)
        if self.device.type == "cuda":
            # TF32 for whatever stays in fp32 (nanoGPT does the same); bf16 autocast does the rest.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self._threads_note = ""
        if train.threads is not None:  # a positive count (TrainConfig checks it)
            torch.set_num_threads(train.threads)
        elif self.device.type == "cpu" and self.info.world_size == 1:
            # Busy cores make every intra-op barrier wait for a descheduled thread; use the
            # free ones (cpu_share). Under torchrun, torchrun sets the ranks' counts.
            threads, self._threads_note = threads_for_free_cores(torch.get_num_threads())
            torch.set_num_threads(threads)

    def prepare_run(self) -> tuple[Any, PreparedData, bool]:
        """Check what can fail early, lay out the run directory, train the tokenizer and
        prepare the data (each cached in the run directory, so a resume skips it).

        Returns:
            ``(tokenizer, data, resuming)``.
        """
        check_train_settings(self.Model, self.config.train)
        if self.data_from is not None:
            rundir.check_data_source(self.data_from, self.config.family)
        tok_cfg = self.config.tokenizer
        if self.tokenizer is None and not tok_cfg.path and self.data_from is None:
            from textdecade.tokenizer.tokenizer import check_training_settings

            # Before the run directory exists: a vocabulary too small for the bytes and
            # specials would otherwise fail after it, leaving a half-made run behind.
            check_training_settings(
                tok_cfg.vocab_size,
                tok_cfg.backend,
                tok_cfg.model_type,
                tok_cfg.min_frequency,
                prefix="tokenizer.",
            )
        resuming = self.resume and rundir.is_run_dir(self.run_dir)
        if self.info.is_main and not resuming and self.corpus is None and not self.data_from:
            # A missing corpus is one line before any directory is made.
            self.corpus = open_corpus(self.config)
        if self.info.is_main:
            rundir.prepare_run_dir(
                self.run_dir,
                self.config.family,
                resume=self.resume,
                overwrite=self.overwrite,
                lock=self._lock,
            )
            if not resuming:  # a resumed run's config is written once its checkpoint fits it
                self._claimed[0] = True
                rundir.write_config(self.run_dir, self.config)
            else:  # what a process killed mid-write left behind
                ckpt.remove_stale_temporaries(self.run_dir)
        dist.barrier(self.info)
        tokenizer = self._setup_tokenizer(resuming)
        return tokenizer, self._setup_data(tokenizer, resuming), resuming

    def _resume_thread_count(self, threads: int | None) -> None:
        """On CPU, continue with the thread count the run checkpointed with (unless
        ``train.threads`` sets one), so the resumed run computes what the first would have."""
        if threads is None or self.config.train.threads is not None:
            return
        if self.device.type == "cpu" and threads != torch.get_num_threads():
            torch.set_num_threads(int(threads))
            self._threads_note = f"{thread_count(int(threads))} (as the run began)"

    def _build(self, data: PreparedData, resuming: bool) -> _Loop:
        """The model, its wrapper, optimizer and batcher, restored from the last checkpoint."""
        train, device = self.config.train, self.device
        torch.manual_seed(train.seed)
        np.random.seed(train.seed % 2**32)
        random.seed(train.seed)
        model = self.Model(self.config.model, data.meta).to(device)
        manual = self.Model.manual_update
        # Wrapped before the optimizer is built: FSDP replaces the parameters with shards.
        step_fn = dist.wrap_model(
            model,
            self.info,
            device,
            train.parallel,
            self.precision,
            compile=train.compile and not manual,
        )
        if manual and train.compile:
            model.compile_update()
        optimizer = None
        if not manual:
            optimizer = build_optimizer(
                train.optimizer or self.Model.default_optimizer, model, train, device
            )
        batcher = model.batcher(data, train.batch_size, seed=train.seed, rank=0, world_size=1)
        loop = _Loop(
            model=model,
            step_fn=step_fn,
            optimizer=optimizer,
            batcher=batcher,
            schedule=train.schedule or self.Model.default_schedule,
            scaler=torch.amp.GradScaler(device.type) if self.precision.needs_scaler else None,
            units_per_step=batcher.units_per_batch * train.grad_accum,
            n_params=sum(p.numel() for p in model.parameters()),
            total=total_steps(train, data, batcher),
        )
        if train.diagnostics_every:
            loop.probe = LayerProbe(model.blocks())
        if train.minutes:
            loop.budget = TimeBudget(train.minutes * 60.0)
            loop.total = UNMEASURED
        checkpoint = ckpt.latest_checkpoint(self.run_dir) if resuming else None
        if checkpoint is not None:
            ckpt.restore(checkpoint, model, optimizer, self.info)
            batcher.load_state_dict(checkpoint.trainer["batcher"])
            loop.step = checkpoint.step
            self._resume_thread_count(checkpoint.trainer.get("threads"))
            if train.minutes and "total" in checkpoint.trainer:
                loop.total = int(checkpoint.trainer["total"])  # the budget's steps, fixed
                loop.budget = None
            self._say(f"resuming from step {loop.step}")
            if loop.step >= loop.total:
                # Nothing left to train, but the run's weights may predate its last
                # checkpoint (a full disk stopped their write): make them that checkpoint's.
                weights, _ = fsdp.full_state(model, None, self.info)
                if self.info.is_main:
                    rundir.save_weights(weights, self.run_dir, self.config.family)
        elif (
            resuming
            and (self.run_dir / rundir.WEIGHTS).is_file()
            and train.parallel != "fsdp"  # its parameters are shards by now
        ):
            # An imported run, or one stopped before its first checkpoint: its own weights
            # are where training continues from (a fine-tune of a HF model, say).
            rundir.load_weights(model, self.run_dir / rundir.WEIGHTS, device)
            self._say(f"no checkpoint yet: training on from {self.run_dir / rundir.WEIGHTS}")
        elif resuming:
            self._say("no complete checkpoint found: starting from step 0")
        if resuming and self.info.is_main:
            # Only now: a config whose shapes the checkpoint refused must not replace the
            # run's own, or the run could no longer be loaded.
            rundir.write_config(self.run_dir, self.config)
        for callback in self.callbacks:
            callback.on_start(model, loop.step)
        return loop

    def _run_loop(self, loop: _Loop, data: PreparedData, log, bar) -> None:
        """Step to ``loop.total``; every few steps log, evaluate and checkpoint."""
        train = self.config.train
        peak = peak_flops(self.device)
        window_t, window_units = time.perf_counter(), 0
        sync_every = _sync_interval(self.device, train.log_every)
        pending: list[tuple[dict[str, Any], torch.Tensor | float]] = []
        started = time.perf_counter()
        first_step = loop.step
        loop.model.train()
        while loop.step < loop.total:
            lr = lr_at(
                loop.schedule,
                loop.step,
                lr=train.lr,
                total=loop.total,
                warmup=train.warmup_steps,
                min_ratio=train.min_lr_ratio,
            )
            diagnose = loop.probe is not None and (
                loop.step == 0 or (loop.step + 1) % train.diagnostics_every == 0
            )
            if diagnose:
                loop.probe.arm()
            step_loss = self._train_step(loop, lr)
            loop.step += 1
            step = loop.step
            for callback in self.callbacks:
                callback.after_step(loop.model, step)
            if loop.budget is not None:
                total = self._budget_steps(loop.budget, step - first_step, started)
                if total is not None:
                    loop.total, loop.budget = first_step + total, None
                    bar.set_total(loop.total)
                    self._say(f"time budget: {loop.total} steps in {train.minutes:g} min")
            window_units += loop.units_per_step
            # "seconds": since this process's loop began (an accelerator's steps may still
            # be queued, so a rate over many steps is right, a single step's time is not).
            record = {"step": step, "lr": lr, "epoch": round(loop.batcher.epoch, 4)}
            record["seconds"] = round(time.perf_counter() - started, 4)
            if diagnose:
                record["layers"] = loop.layers
            pending.append((record, step_loss))
            logged = step % train.log_every == 0 or step == loop.total
            evaluated = bool(train.eval_every) and (
                step % train.eval_every == 0 or step == loop.total
            )
            saved = step % train.ckpt_every == 0 or step == loop.total
            if not (logged or evaluated or saved or step % sync_every == 0):
                continue  # a signal is acted on at the next of these steps
            # Under torchrun this is a collective: every rank stops at the same step.
            stop = dist.any_rank(self._stop_signal is not None, self.info, self.device)
            records = self._settle_losses(pending, self.device)
            pending = []
            record = records[-1]
            now = time.perf_counter()
            rate = window_units / max(now - window_t, 1e-9)
            if logged:
                self._add_throughput(record, loop.model, data.unit, rate, peak)
                window_t, window_units = now, 0
            if evaluated:
                self._evaluate(record, loop.model, data, bar)
                # every callback sees the metrics, even after one has asked to stop
                asks = [callback.after_eval(step, record) for callback in self.callbacks]
                loop.stopped_early = any(asks) and step < loop.total
            if log is not None:
                for r in records:
                    log.write(r)
            loop.last = {k: v for k, v in record.items() if isinstance(v, int | float)}
            mfu = f" | MFU {record['mfu']:.1%}" if "mfu" in record else ""
            bar.update(record["loss"], rate, mfu, steps=len(records))
            if saved or stop or loop.stopped_early:
                self._checkpoint(
                    step,
                    loop.model,
                    loop.optimizer,
                    loop.batcher,
                    None if loop.budget is not None else loop.total,
                )
            if loop.stopped_early:
                self._say(f"stopped at step {step} by a callback")
                return
            if stop:
                name = signal.Signals(self._stop_signal or signal.SIGTERM).name
                raise TrainingInterrupted(
                    f"{name} received: checkpoint of step {step} written to {self.run_dir}; "
                    "continue with --resume"
                )

    def _budget_steps(self, budget: TimeBudget, done: int, started: float) -> int | None:
        """The steps that fill ``train.minutes`` from this process's start, once measured;
        the ranks of a torchrun job agree on one count (the mean of their estimates)."""
        estimate = budget.steps(done, time.perf_counter() - started)
        if not dist.any_rank(estimate is not None, self.info, self.device):
            return None
        mine = torch.tensor([float(estimate or 0)], dtype=torch.float64, device=self.device)
        return int(dist.mean_across_ranks(mine, self.info).item())

    def _train_step(self, loop: _Loop, lr: float) -> torch.Tensor | float:
        """One step: the family's hand-written update, or backward and the optimizer."""
        train = self.config.train
        if not self.Model.manual_update:
            return self._optimizer_step(loop, lr)
        step_loss: torch.Tensor | float = 0.0
        for _ in range(train.grad_accum):
            batch = _to_device(dist.rank_slice(next(loop.batcher), self.info), self.device)
            step_loss += loop.model.manual_step(batch, lr) / train.grad_accum
        return step_loss

    def _add_throughput(self, record: dict, model, unit: str, rate: float, peak: float) -> None:
        """Units per second since the last log and, where the peak is known, MFU."""
        record[f"{unit}_per_s"] = rate
        flops = model.flops_per_unit()
        if peak and flops:
            record["mfu"] = flops * rate / (peak * self.info.world_size)

    def _evaluate(self, record: dict, model, data: PreparedData, bar) -> None:
        """The family's validation metrics, added to ``record`` and shown above the bar."""
        model.eval()
        with torch.no_grad(), self.precision.autocast(self.device), fsdp.full_params(model):
            record.update(model.evaluate(data, self.config.train.eval_batches))
        model.train()
        if self.info.is_main and self.show_progress:
            bar.write(
                " | ".join(
                    f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in record.items()
                )
            )

    def _optimizer_step(self, loop: _Loop, lr: float) -> torch.Tensor:
        """One optimizer step over ``grad_accum`` micro-batches; the mean loss, on the device."""
        train, device, precision = self.config.train, self.device, self.precision
        model, optimizer, scaler, step_fn = loop.model, loop.optimizer, loop.scaler, loop.step_fn
        for group in optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=device)
        for micro in range(train.grad_accum):
            batch = _to_device(dist.rank_slice(next(loop.batcher), self.info), device)
            sync = micro == train.grad_accum - 1 or not self.info.enabled
            with fsdp.grad_sync(step_fn, model, sync):  # backward inside: FSDP reads it there
                with precision.autocast(device):
                    loss = step_fn(batch) / train.grad_accum
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward()
            total += loss.detach().float()
            if loop.probe is not None:
                loop.probe.active = False  # the first micro-batch's activations suffice
        if scaler is not None:
            scaler.unscale_(optimizer)
        if loop.probe is not None and loop.probe.armed:
            loop.layers = loop.probe.read()  # the whole step's gradients, before clipping
        if train.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total

    def _settle_losses(self, pending, device) -> list[dict[str, Any]]:
        """Read the pending steps' losses (one sync), average them over ranks, stop on NaN."""
        losses = torch.stack(
            [torch.as_tensor(v, dtype=torch.float64, device=device) for _, v in pending]
        )
        values = dist.mean_across_ranks(losses, self.info).tolist()
        records = []
        for (record, _), value in zip(pending, values, strict=True):
            if not math.isfinite(value):
                kept = ckpt.latest_checkpoint(self.run_dir, quiet=True)
                raise TrainingDiverged(
                    f"loss became {value} at step {record['step']}; stopped. Last good "
                    f"checkpoint: {'step ' + str(kept.step) if kept else 'none'} "
                    "(try a lower --set train.lr)"
                )
            records.append({**record, "loss": value})
        return records

    def _checkpoint(self, step, model, optimizer, batcher, total: int | None) -> None:
        """Write checkpoint ``step`` and the run's weights; ``total`` (the run's step count,
        None while a time budget is still measuring) goes into its trainer state."""
        # Every rank takes part in gathering FSDP's shards; rank 0 writes the whole state.
        weights, optim_state = fsdp.full_state(model, optimizer, self.info)
        train_state = dist.gather_rows(model.train_state(), self.info)  # all ranks' rows
        if self.info.is_main:
            # The thread count changes the last bits of CPU reductions: a resume reuses it.
            state = {"batcher": batcher.state_dict(), "threads": torch.get_num_threads()}
            if total is not None:
                state["total"] = total
            ckpt.save_checkpoint(
                self.run_dir,
                step,
                weights,
                optim_state,
                state,
                self.config.train.keep_last,
                train_state=train_state,
            )
            with ckpt.disk_full_is_user_error(self.run_dir, step):
                rundir.save_weights(weights, self.run_dir, self.config.family)
        dist.barrier(self.info)


def check_train_settings(family: type, train: TrainConfig) -> None:
    """Refuse the train settings a family's own update would ignore (``unread_train``).

    Raises:
        ConfigError: one line naming the setting.
    """
    if family.manual_update and train.optimizer not in (None, family.default_optimizer):
        raise ConfigError(
            f"train.optimizer={train.optimizer}: {family.name} trains with its own "
            f"{family.default_optimizer} update, so no other optimizer applies"
        )
    defaults = TrainConfig()
    for key in family.unread_train:
        if getattr(train, key) != getattr(defaults, key):
            raise ConfigError(
                f"train.{key}={getattr(train, key)}: {family.name}'s own update does not "
                f"read train.{key}; remove the setting"
            )


def _sync_interval(device: torch.device, log_every: int) -> int:
    """Steps between reads of the loss. Losses stay on an accelerator until then: each
    read is a host-device sync, and one per step would idle the GPU while the host
    prepares the next batch. Logs, evaluations and checkpoints read them too."""
    return 1 if device.type == "cpu" else max(1, log_every)


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    if device.type == "cpu":
        return batch
    return {
        k: v.pin_memory().to(device, non_blocking=True) if v.device.type == "cpu" else v.to(device)
        for k, v in batch.items()
    }


@contextlib.contextmanager
def _keeping_thread_count():
    """``train.threads`` is the run's thread count, not the calling process's."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _install_signal_handlers(handler):
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(old) -> None:
    if old:
        for sig, handler in old.items():
            signal.signal(sig, handler)
