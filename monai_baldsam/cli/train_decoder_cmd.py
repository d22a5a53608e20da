"""``baldsam train-decoder``: train the backbone's prompt encoder and mask decoder for clicks (encoder frozen)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from monai_baldsam.cli.runtime_args import add_device_argument, add_threads_argument, apply_threads, check_threads

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-decoder", help="train the prompt encoder and mask decoder for clicks (SAM's interactive recipe)",
        description="Reads the data selection and settings from --config (configs/decoder_clicks_v1.json made the "
                    "shipped clicks_v1), encodes the training images once into the embedding store, simulates "
                    "interactive sessions (a jittered box or one to three clicks, then error-driven clicks with the "
                    "previous logits fed back), keeps the weights of the best validation score and writes OUT plus "
                    "its card OUT.json (data hashes, settings, device, validation curves). Stops after the config's "
                    "max_steps or time budget. Never train on dev data: it is for benchmarks.",
    )
    parser.add_argument("--config", required=True, help="JSON configuration (e.g. configs/decoder_clicks_v1.json)")
    parser.add_argument("--out", required=True, help="decoder file to write (.pt); its card goes beside it (.json)")
    parser.add_argument("--time-budget-min", type=float, default=None,
                        help="stop training after this many minutes (default: the config's time_budget_s)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the config's max_steps")
    parser.add_argument("--store", default=None, help="embedding store folder (default $BALDSAM_CACHE/embeddings)")
    parser.add_argument("--encoder", default="auto", choices=("auto", "torch", "openvino-bf16", "openvino-f16"),
                        help="how missing embeddings are computed (default auto: OpenVINO f32 on a CPU)")
    add_device_argument(parser)
    add_threads_argument(parser, "CPU threads for torch (default: torch's own)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing decoder file and card")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.decoder.config import load_decoder_config
    from monai_baldsam.decoder.training import train_decoder
    from monai_baldsam.head.train.embedding_store import EmbeddingStore

    check_threads(args.threads)
    if not args.out.endswith(".pt"):
        raise ValueError(f"--out must be a .pt file, got {args.out}")
    backbone, data, config = load_decoder_config(args.config)
    if args.time_budget_min is not None:
        if args.time_budget_min <= 0:
            raise ValueError(f"--time-budget-min must be positive, got {args.time_budget_min}")
        config = replace(config, time_budget_s=60.0 * args.time_budget_min)
    if args.max_steps is not None:
        config = replace(config, max_steps=args.max_steps)
    apply_threads(args.threads)
    result = train_decoder(data, args.out, config, backbone=backbone, device=args.device,
                           store=EmbeddingStore(args.store) if args.store else None, encoder=args.encoder,
                           overwrite=args.overwrite, progress=not args.no_progress, config_file=args.config)
    history = result.card["validation"]["history"]
    best = max(history, key=lambda h: h["score"])
    print(json.dumps({"decoder": str(result.path), "card": str(result.card_path),
                      "decoder_sha256": result.card["decoder_sha256"], "best_step": best["step"],
                      "validation_box": best["box"], "validation_click": best["click"],
                      "original_decoder": result.card["validation"]["original_decoder"],
                      "stop_reason": result.card["stop_reason"]}, indent=1))
    return 0
