"""Train a model from a recipe in configs/ and export it to pretrained/NAME.

    python train.py --config configs/wavenet-fourier.json [--train.steps=2000 --train.lr=0.001 ...]
    torchrun --nproc_per_node=2 train.py --config ...      # data-parallel (gloo on CPU, nccl on CUDA)

Writes runs/NAME/{checkpoint.pt, metrics.jsonl, tensorboard events}; resumes from the checkpoint
when restarted (pass --fresh to start over); exports config.json, model.safetensors and a model card.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from engine.checkpoint import save_pretrained
from engine.models import build_model
from engine.recipes import TrainConfig, get_recipe_class, load_recipe_config
from engine.training import teacher_forced, unrolled_loss


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Cosine decay from lr to lr * lr_final_fraction, a pure function of the step (resume-safe)."""
    progress = min(step / max(cfg.steps, 1), 1.0)
    low = cfg.lr * cfg.lr_final_fraction
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def save_checkpoint(path: Path, step: int, model, optimizer, config: dict) -> None:
    """Atomic: a kill mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "config": json.dumps(config, sort_keys=True)}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, optimizer, config: dict) -> int:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or not a checkpoint at all (e.g. a pickle): refuse clearly
        raise SystemExit(f"error: {path} cannot be read as a training checkpoint ({type(e).__name__}: {e}). "
                         f"Delete it or pass --fresh.") from None
    saved = json.loads(ckpt["config"])
    if saved["model"] != config["model"] or saved["data"] != config["data"]:
        raise SystemExit(f"error: {path} was written for a different model/data config; pass --fresh to start over.")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return int(ckpt["step"])


def write_card(export: Path, config: dict, recipe, metrics: dict, command: str, train_seconds: float, device: str) -> None:
    model_cfg = config["model"]
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    text = f"""# {config['name']}

WaveNet (van den Oord et al. 2016), {'conditional on ' + str(len(recipe.data_config().get('conditions', []))) + ' classes' if model_cfg.get('cond_channels') else 'unconditional'}, trained by `train.py` from `configs/{config['name']}.json`.

## How it was made

```
{command}
```

Trained for {config['train'].get('steps', TrainConfig.steps)} steps on {device} in {train_seconds / 60:.1f} min.

## Data

{recipe.card_data_text()}

## Architecture

```
{json.dumps(model_cfg, indent=2)}
```

Receptive field R = {build_model('wavenet', model_cfg).receptive_field}.

{config.get('notes', '')}

## Metrics (test split)

| metric | value |
|---|---|
{rows}

Measured by `train.py` at the end of training (`recipe.evaluate(model, "test")`).
"""
    (export / "README.md").write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a recipe, e.g. configs/wavenet-fourier.json")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in runs/NAME")
    parser.add_argument("--runs", default="runs", help="folder for checkpoints and logs")
    args, overrides = parser.parse_known_args(argv)
    try:
        config = load_recipe_config(args.config, overrides)
        cfg = TrainConfig(**config["train"])
        model = build_model("wavenet", config["model"])
        recipe = get_recipe_class(config["task"])(config["data"], model.config)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else ("cpu" if cfg.device == "auto" else cfg.device)
    rank, world = 0, 1
    if distributed:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if device == "cpu":
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = build_model("wavenet", config["model"]).to(device)  # same init on every rank
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    run_dir = Path(args.runs) / config["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    step = 0
    if ckpt_path.exists() and not args.fresh:
        step = load_checkpoint(ckpt_path, model, optimizer, config)
        if rank == 0:
            print(f"resuming {config['name']} from step {step}", file=sys.stderr)
    train_model = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"))
    log = open(run_dir / "metrics.jsonl", "a") if rank == 0 else None
    started = time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc=config["name"], disable=rank != 0, dynamic_ncols=True)
    model.train()
    while step < cfg.steps:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 7919 + rank)
        seq, cond = recipe.batch(step, rank, cfg.batch_size, g)
        seq, cond = seq.to(device), None if cond is None else cond.to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss_tf, logits, inputs = teacher_forced(model, seq, cond, forward=train_model)
        loss = loss_tf
        loss_un = None
        if cfg.unroll_weight > 0:
            origins = torch.randint(0, seq.shape[1] - 1 - cfg.unroll_horizon, (cfg.unroll_origins,), generator=g).to(device)
            loss_un = unrolled_loss(model, seq, cond, logits, inputs, origins, cfg.unroll_horizon, cfg.gumbel_tau, generator=g if device == "cpu" else None)
            loss = loss_tf + cfg.unroll_weight * loss_un
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        if rank == 0:
            record = {"step": step, "loss": loss.item(), "loss_teacher_forced": loss_tf.item(), "lr": lr_at(step - 1, cfg)}
            if loss_un is not None:
                record["loss_unrolled"] = loss_un.item()
            if step % cfg.log_every == 0 or step == cfg.steps:
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                for k, v in record.items():
                    if k != "step":
                        writer.add_scalar(f"train/{k}", v, step)
                log.write(json.dumps(record) + "\n")
                log.flush()
            if step % cfg.eval_every == 0 and step < cfg.steps:
                metrics = recipe.evaluate(model, "val", device)
                model.train()
                for k, v in metrics.items():
                    writer.add_scalar(f"val/{k}", v, step)
                log.write(json.dumps({"step": step, "val": metrics}) + "\n")
                log.flush()
                tqdm.write(f"step {step} val " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt_path, step, model, optimizer, config)
    bar.close()
    if rank == 0:
        metrics = recipe.evaluate(model, "test", device)
        log.write(json.dumps({"step": step, "test": metrics}) + "\n")
        log.close()
        writer.close()
        export = Path(cfg.export_dir) / config["name"]
        save_pretrained(model, export, data=recipe.data_config(), metrics=metrics)
        command = "python train.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        write_card(export, config, recipe, metrics, command, time.time() - started, device)
        print(json.dumps({"exported": str(export), "test": metrics}, indent=2))
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
