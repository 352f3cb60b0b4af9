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
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from engine.cards import training_command, write_card, write_mixture_card
from engine.checkpoint import load_pretrained, save_pretrained
from engine.models import build_model
from engine.recipes import DEFAULT_MODEL_TYPE, MixtureFit, TrainConfig, get_recipe_class, load_recipe_config
from engine.recipes.mixture import best_weighting, mixture_of, score_weightings, weight_grid
from engine.training import LogProbs, WeightAverage, training_losses, unrolled_loss


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Cosine decay from lr to lr * lr_final_fraction, a pure function of the step (resume-safe)."""
    progress = min(step / max(cfg.steps, 1), 1.0)
    low = cfg.lr * cfg.lr_final_fraction
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def save_checkpoint(path: Path, step: int, model, optimizer, config: dict, seconds: float = 0.0, device: str = "cpu",
                    average: WeightAverage | None = None) -> None:
    """Atomic: a kill mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(path.name + ".tmp")
    state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "config": json.dumps(config, sort_keys=True), "seconds": seconds, "device": device}
    if average is not None:
        state["weight_average"] = average.state_dict()
    torch.save(state, tmp)
    os.replace(tmp, path)


EVAL_ONLY_KEYS = {"eval_val_images", "eval_test_images", "eval_batch_images", "val_curves", "test_curves"}


def load_checkpoint(path: Path, model, optimizer, config: dict, average: WeightAverage | None = None) -> tuple[int, float, str]:
    """-> (step, training seconds so far, device it trained on); refuses anything but a checkpoint of this config.
    A weight average saved with it is restored into `average` (one saved without it starts from the weights)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or not a checkpoint at all (e.g. a pickle): refuse clearly
        raise SystemExit(f"error: {path} cannot be read as a training checkpoint ({type(e).__name__}: {e}). "
                         f"Delete it or pass --fresh.") from None
    saved = json.loads(ckpt["config"])
    def training_data(d):  # evaluation sizes do not change what was trained
        return {k: v for k, v in d.items() if k not in EVAL_ONLY_KEYS}
    same_model = saved.get("model_type", DEFAULT_MODEL_TYPE) == config["model_type"] and saved["model"] == config["model"]
    if not same_model or training_data(saved["data"]) != training_data(config["data"]):
        raise SystemExit(f"error: {path} was written for a different model/data config; pass --fresh to start over.")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if average is not None:
        if "weight_average" in ckpt:
            average.load_state_dict(ckpt["weight_average"])
        else:
            average.restart(model)
    return int(ckpt["step"]), float(ckpt.get("seconds", 0.0)), str(ckpt.get("device", "cpu"))


def export(config: dict, recipe, model, metrics: dict, argv: list[str], train_seconds: float | None, device: str) -> Path:
    directory = Path(config["train"].get("export_dir", TrainConfig.export_dir)) / config["name"]
    save_pretrained(model, directory, data=recipe.data_config(), metrics=metrics)
    write_card(directory, config, recipe, metrics, training_command(argv), train_seconds, device)
    return directory


def run_mixture(config: dict, argv: list[str]) -> int:
    """A mixture recipe: load the member folders, score every weighting of the grid on the validation
    split, export the best one (pixel accuracy, ties to the lower NLL) with its test figures."""
    fit, cfg = MixtureFit(**config["mixture"]), TrainConfig(**config["train"])
    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else ("cpu" if cfg.device == "auto" else cfg.device)
    if device == "cpu":
        torch.set_num_threads(cfg.threads)
    started = time.time()
    try:
        if config["task"] != "mnist":
            raise ValueError(f"mixture recipes are for the mnist task (pixel accuracy on held-out images), not {config['task']!r}.")
        members = [load_pretrained(folder, device) for folder in fit.members]  # a mixture among them: mixture_of refuses it
        recipe = get_recipe_class(config["task"])(config["data"], members[0].config)
        for folder, m in zip(fit.members, members):
            if m.data_config != recipe.data_config():
                raise ValueError(f"mixture member {folder} was trained on other data settings than this recipe's "
                                 f"(its config.json 'data' differs from what data.* here gives); every member must match.")
        levels, labels = recipe.split("val")
        grid = weight_grid(len(members), fit.weight_step)
        bar = tqdm(total=levels.shape[0], desc=f"{config['name']}: scoring {len(grid)} weightings on validation", dynamic_ncols=True)
        rows = score_weightings(members, levels, labels, grid, config["data"].get("eval_batch_images", 50),
                                progress=lambda done: bar.update(done - bar.n))
        bar.close()
        best = best_weighting(rows)
        model = mixture_of(members, best["weights"])
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tqdm.write(f"validation ({levels.shape[0]} images): best weights {best['weights']}: pixel accuracy {best['pixel_accuracy']:.6f}, "
               f"NLL {best['nll_nats_per_image']:.2f}", file=sys.stderr)
    metrics = recipe.evaluate(model, "test", device)
    directory = Path(cfg.export_dir) / config["name"]
    save_pretrained(model, directory, data=recipe.data_config(), metrics=metrics)
    device_label = f"{device} ({torch.cuda.get_device_name()})" if device == "cuda" else device
    write_mixture_card(directory, config, recipe, metrics, training_command(argv), rows, best, members,
                       f"{device_label} in {(time.time() - started) / 60:.0f} min")
    print(json.dumps({"exported": str(directory), "weights": best["weights"], "validation": best, "test": metrics}, indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a recipe, e.g. configs/wavenet-fourier.json")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in runs/NAME")
    parser.add_argument("--runs", default="runs", help="folder for checkpoints and logs")
    parser.add_argument("--export-only", action="store_true",
                        help="re-export pretrained/NAME from the finished run's checkpoint and logged test metrics")
    parser.add_argument("--time-budget", type=float, default=0.0, metavar="SECONDS",
                        help="shorten train.steps so training fits this many seconds (step rate measured from step 10, re-checked every 40 steps); "
                             "the chosen step count is written to config.json and the model card's command")
    args, overrides = parser.parse_known_args(argv)
    try:
        config = load_recipe_config(args.config, overrides)
        if "mixture" in config:
            if args.export_only or args.time_budget:
                raise ValueError("a mixture recipe trains nothing: --export-only and --time-budget do not apply.")
            return run_mixture(config, list(argv if argv is not None else sys.argv[1:]))
        cfg = TrainConfig(**config["train"])
        model = build_model(config["model_type"], config["model"])
        recipe = get_recipe_class(config["task"])(config["data"], model.config)
        if cfg.unroll_weight > 0 and not model.soft_inputs:
            raise ValueError(f"train.unroll_weight > 0 needs a model that takes soft inputs (the n-step loss feeds back "
                             f"relaxed samples); {model.family_name or config['model_type']} does not. Set train.unroll_weight=0.")
        if cfg.class_weight < 0 or cfg.class_weight > 0 and not model.num_classes:
            raise ValueError("train.class_weight must be >= 0, and > 0 only for a class-conditional model (model.cond_channels > 0).")
        if cfg.class_temperature <= 0:
            raise ValueError(f"train.class_temperature must be > 0, got {cfg.class_temperature}.")
        if not 0.0 <= cfg.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must lie in [0, 1) (0 = off), got {cfg.ema_decay}.")
        if not cfg.position_lr_scale > 0:
            raise ValueError(f"train.position_lr_scale must be > 0, got {cfg.position_lr_scale}.")
        if cfg.class_weight > 0 and not 1 <= cfg.class_images <= cfg.batch_size:
            raise ValueError(f"train.class_images must lie in 1..train.batch_size ({cfg.batch_size}), got {cfg.class_images}.")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and args.time_budget > 0:  # each rank would time itself and could stop at a different step
        print("error: --time-budget is not supported under torchrun; pass --train.steps=N instead.", file=sys.stderr)
        return 2
    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else ("cpu" if cfg.device == "auto" else cfg.device)
    rank, world = 0, 1
    if distributed:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if device == "cpu":
        torch.set_num_threads(cfg.threads)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matmuls/convs: ~fp32 accuracy, several times faster
        torch.backends.cudnn.allow_tf32 = True
    device_label = f"{device} ({torch.cuda.get_device_name()})" if device == "cuda" else device
    torch.manual_seed(cfg.seed)
    model = build_model(config["model_type"], config["model"]).to(device)  # same init on every rank
    positional = [p for name, p in model.named_parameters() if name.startswith("position.")]
    groups = [{"params": [p for name, p in model.named_parameters() if not name.startswith("position.")], "lr_scale": 1.0}]
    if positional:
        groups.append({"params": positional, "lr_scale": cfg.position_lr_scale})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    run_dir = Path(args.runs) / config["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    step, train_seconds, trained_on = 0, 0.0, device
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    if args.export_only:
        if not ckpt_path.exists():
            print(f"error: --export-only needs a finished run in {run_dir}", file=sys.stderr)
            return 2
        step, train_seconds, trained_on = load_checkpoint(ckpt_path, model, optimizer, config, average)
        if average is not None:
            average.copy_to(model)  # the run's result is its weight average
        logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()] if (run_dir / "metrics.jsonl").exists() else []
        tests = [r["test"] for r in logged if "test" in r and r["step"] == step and r.get("data", config["data"]) == config["data"]]
        if tests:
            metrics = tests[-1]
        else:
            metrics = recipe.evaluate(model.eval(), "test", device)
            with open(run_dir / "metrics.jsonl", "a") as log:
                log.write(json.dumps({"step": step, "test": metrics, "data": config["data"]}) + "\n")
        directory = export(config, recipe, model, metrics, [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--export-only"],
                           train_seconds or None, trained_on)
        print(json.dumps({"exported": str(directory), "step": step, "test": metrics}, indent=2))
        return 0
    if ckpt_path.exists() and not args.fresh:
        step, train_seconds, trained_on = load_checkpoint(ckpt_path, model, optimizer, config, average)
        if rank == 0:
            print(f"resuming {config['name']} from step {step}", file=sys.stderr)
    elif cfg.init_from:
        try:
            start_from = load_pretrained(cfg.init_from, model_type=config["model_type"])
        except (OSError, ValueError) as e:
            print(f"error: train.init_from: {e}", file=sys.stderr)
            return 2
        if not type(model).can_start_from(start_from.config, model.config):
            print(f"error: train.init_from={cfg.init_from} has a different model config; it must equal this recipe's "
                  "'model_type' and 'model' (up to what its family allows to differ, e.g. dropout).", file=sys.stderr)
            return 2
        missing, unexpected = model.load_state_dict(start_from.state_dict(), strict=False)
        if unexpected or any(not k.startswith("position.") for k in missing):
            raise RuntimeError(f"init_from weights do not fit: missing {missing}, unexpected {unexpected}")
        if average is not None:
            average.restart(model)  # the average starts from the loaded weights
    # DDP wraps forward(): a soft-inputs model's fast path is its forward, any other family's is log_probs
    train_forward = None
    if distributed:
        train_forward = torch.nn.parallel.DistributedDataParallel(model if model.soft_inputs else LogProbs(model))

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"))
    log = open(run_dir / "metrics.jsonl", "a") if rank == 0 else None
    started = time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc=config["name"], disable=rank != 0, dynamic_ncols=True)
    model.train()
    budget_from = step
    argv_out = list(argv if argv is not None else sys.argv[1:])
    while step < cfg.steps:
        if args.time_budget > 0 and step == budget_from + 10:
            rate_from = time.time()  # the first steps include warm-up (allocator, kernel selection)
        if args.time_budget > 0 and step >= budget_from + 40 and (step - budget_from) % 40 == 0:
            # seconds per step so far (evaluations and checkpoints included), re-measured as the run goes:
            # other work on the same device can slow it down after the first estimate
            rate = (time.time() - rate_from) / (step - budget_from - 10)
            fit = step + int(0.97 * (args.time_budget - (time.time() - started)) / rate)
            if fit < cfg.steps:
                cfg.steps = max(fit, step + 1)
                config["train"]["steps"] = cfg.steps
                bar.total = cfg.steps
                argv_out = [a for a in argv_out if not a.startswith("--train.steps=")] + [f"--train.steps={cfg.steps}"]
                if step == budget_from + 40:
                    tqdm.write(f"time budget {args.time_budget:.0f} s at {rate * 1000:.0f} ms/step: training {cfg.steps} steps")
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 7919 + rank)
        levels, cond = recipe.batch(step, rank, cfg.batch_size, g)
        levels, cond = levels.to(device), None if cond is None else cond.to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg) * group.get("lr_scale", 1.0)  # a checkpoint from before lr_scale has none
        loss_tf, loss_cls, cache = training_losses(model, levels, cond, cfg.class_images if cfg.class_weight > 0 else 0,
                                                   cfg.class_temperature, forward=train_forward)
        loss = loss_tf if loss_cls is None else loss_tf + cfg.class_weight * loss_cls
        loss_un = None
        if cfg.unroll_weight > 0:  # a soft-inputs model (checked above): its fast path's cache
            seq, logits, inputs = cache
            origins = torch.randint(0, seq.shape[1] - 1 - cfg.unroll_horizon, (cfg.unroll_origins,), generator=g).to(device)
            loss_un = unrolled_loss(model, seq, cond, logits, inputs, origins, cfg.unroll_horizon, cfg.gumbel_tau, generator=g if device == "cpu" else None)
            loss = loss + cfg.unroll_weight * loss_un
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if average is not None:
            average.update(model)
        step += 1
        bar.update(1)
        if rank == 0:
            record = {"step": step, "loss": loss.item(), "loss_teacher_forced": loss_tf.item(), "lr": lr_at(step - 1, cfg)}
            if loss_un is not None:
                record["loss_unrolled"] = loss_un.item()
            if loss_cls is not None:
                record["loss_classification"] = loss_cls.item()
            if step % cfg.log_every == 0 or step == cfg.steps:
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                for k, v in record.items():
                    if k != "step":
                        writer.add_scalar(f"train/{k}", v, step)
                log.write(json.dumps(record) + "\n")
                log.flush()
            if step % cfg.eval_every == 0 and step < cfg.steps:
                with average.applied(model) if average is not None else nullcontext():
                    metrics = recipe.evaluate(model, "val", device)
                model.train()
                for k, v in metrics.items():
                    writer.add_scalar(f"val/{k}", v, step)
                log.write(json.dumps({"step": step, "val": metrics}) + "\n")
                log.flush()
                tqdm.write(f"step {step} val " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt_path, step, model, optimizer, config, train_seconds + time.time() - started, device_label, average)
    bar.close()
    if average is not None:
        average.copy_to(model)  # test figures and the export are the weight average's
    if rank == 0:
        metrics = recipe.evaluate(model, "test", device)
        log.write(json.dumps({"step": step, "test": metrics}) + "\n")
        log.close()
        writer.close()
        seconds = train_seconds + time.time() - started
        directory = export(config, recipe, model, metrics, argv_out, seconds, device_label)
        print(json.dumps({"exported": str(directory), "test": metrics}, indent=2))
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
