"""`socialmae-rt info`: model sizes, parameters and GFLOP per window, what `auto` picks here."""

from __future__ import annotations

import argparse
import json
import sys

from socialmae_rt.app.options import MODEL_NAMES


def _info(args: argparse.Namespace) -> int:
    """Parameter count and GFLOP per window for model sizes, and optionally a checkpoint check."""
    from socialmae_rt.model import MODEL_VARIANTS, Modality, SocialMAEConfig, load_any_checkpoint
    from socialmae_rt.model.profile import count_gflops, count_parameters, profile_config

    if args.weights:
        from socialmae_rt.weights.bundle import parse_weights

        spec = parse_weights(args.weights)
        # A released .pth says nothing about its size: --model picks it (base by default).
        released = bool(spec.single) and spec.single.endswith((".pth", ".pt"))
        variant = "base" if args.model == "all" else args.model
        config = SocialMAEConfig.variant(variant, num_classes=args.num_classes) if released else None
        members = [(e.task, e.path) for e in spec.entries] or [("checkpoint", spec.single)]
        profiles = []
        for name, path in members:
            print(f"info: loading {path} and counting its FLOPs ...", file=sys.stderr, flush=True)
            model = load_any_checkpoint(path, config).model
            profiles.append((name, count_parameters(model), {m: count_gflops(model, m) for m in Modality}))
            labels = {head: model.config.head_labels.get(head) for head in model.config.head_sizes}
            print(f"{path}: loaded strictly; heads {model.config.head_sizes}; outputs {labels}")
        if len(profiles) > 1:  # a bundle: one encoder pass per checkpoint
            profiles.append(("bundle", sum(p[1] for p in profiles),
                             {m: sum(p[2][m] for p in profiles) for m in Modality}))
    else:
        names = sorted(MODEL_VARIANTS, key=lambda n: -MODEL_VARIANTS[n]["embed_dim"]) if args.model == "all" else [args.model]
        profiles = []
        for name in names:
            print(f"info: building a {name} model and counting its FLOPs ...", file=sys.stderr, flush=True)
            profile = profile_config(name, SocialMAEConfig.variant(name, num_classes=args.num_classes))
            profiles.append((name, profile.parameters, profile.gflops))
    if args.json:
        print(json.dumps(
            [{"model": n, "parameters": p, "gflops": {m.value: round(g, 3) for m, g in gf.items()}} for n, p, gf in profiles],
            indent=2,
        ))
        return 0
    print(f"{'model':<11} {'params (M)':>10} {'GFLOP AV':>9} {'GFLOP A':>8} {'GFLOP V':>8}")
    for name, params, gflops in profiles:
        print(
            f"{name:<11} {params / 1e6:>10.1f} {gflops[Modality.AUDIOVISUAL]:>9.1f} "
            f"{gflops[Modality.AUDIO]:>8.1f} {gflops[Modality.VIDEO]:>8.1f}"
        )
    print("GFLOP per 4 s window, batch 1 (multiply-add = 2 FLOP), counted by torch's FLOP counter.")
    from socialmae_rt.app.options import RunOptions, model_config_for
    from socialmae_rt.engines.adaptive import plan
    from socialmae_rt.engines.auto import Installed, choose_backend
    from socialmae_rt.util.machine import CpuDescription

    print("info: looking at this CPU, the installed runtimes and the engine cache ...", file=sys.stderr, flush=True)
    cpu = CpuDescription.this_machine()
    installed = Installed.here()
    name, why = choose_backend(cpu, installed)
    print(f"--backend auto on this machine: {name} first ({why}); CPU: {cpu.summary()}")
    weights = " ".join(args.weights) if args.weights else None
    size = "base" if args.model == "all" else args.model
    now, later = plan(weights, model_config_for(RunOptions(weights=weights, model=size)), cpu=cpu, installed=installed)
    what = f"these weights ({weights})" if weights else f"random {size} weights"
    print(f"with {what}, from this cache: runs {now} now" + (
        f"; builds {', '.join(later)} in the background and switches to the first that passes its checks"
        if later else "; everything it needs is built"))
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameter count and GFLOP per window; --weights checks a checkpoint loads")
    p.add_argument("--model", default="all", choices=["all", *MODEL_NAMES], help="model size (default: all)")
    p.add_argument("--num-classes", type=int, default=6, help="size of the primary (emotion) head (default: 6)")
    p.add_argument("--weights", nargs="+", help="a released .pth, our .safetensors, or a bundle (folder or "
                   "task=checkpoint entries) to load strictly and profile")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_info)


SUBCOMMANDS = [_add_info]
