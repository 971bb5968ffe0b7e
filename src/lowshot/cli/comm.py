"""``lowshot comm ...``: the offline adaptation demo, any comm setting (``run``), GT-speaker tables."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _demo_config(args: argparse.Namespace):
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.comm import load_config

    data = load_paper_config(f"comm.{args.setting}", args.overrides)
    if args.quick:
        data.setdefault("loop", {})["interactions"] = 300
        data["seeds"] = [0]
    return load_config(data)


def cmd_demo(args: argparse.Namespace) -> int:
    """Adapt a tiny speaker LM to colour-blind and normal pixel listeners (PPO, NLPO, KTO).

    With ``--run-dir``, re-running the same command resumes an interrupted run.
    """
    import torch

    from lowshot.recipes.comm import run_world

    torch.set_num_threads(max(1, args.threads))
    cfg = _demo_config(args)
    res = run_world(cfg, Path(args.run_dir) if args.run_dir else None)
    print("\nmean over seeds (held-out episodes):")
    print(f"{'algorithm/listener':22s} success before -> after   colour-word rate before -> after")
    v = res.means()
    for k in dict.fromkeys(f"{r['algorithm']}/{r['listener']}" for r in res.extra["runs"]):
        print(f"{k:22s} {v[f'{k}/success_before']:.3f} -> {v[f'{k}/success_after']:.3f}"
              f"            {v[f'{k}/color_before']:.2f} -> {v[f'{k}/color_after']:.2f}"
              + (f"   mIoU {v[f'{k}/miou_before']:.3f} -> {v[f'{k}/miou_after']:.3f}" if f"{k}/miou_after" in v else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_dict(), indent=1))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run any comm setting (``comm.<setting>`` or a YAML file), e.g. RES on RefCOCO.

    Dataset worlds read ``--data-root``; with ``--run-dir`` an interrupted run resumes.
    """
    import torch

    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.comm import load_config, run_config

    torch.set_num_threads(max(1, args.threads))
    name = args.setting if args.setting.endswith((".yaml", ".yml")) else f"comm.{args.setting.removeprefix('comm.')}"
    cfg = load_config(load_paper_config(name, args.overrides))
    res = run_config(cfg, Path(args.run_dir) if args.run_dir else None,
                     Path(args.data_root) if args.data_root else None)
    from lowshot.reports.tables import result_rows, to_markdown

    print(to_markdown(result_rows(res)), end="")
    for k, v in res.extra.get("human_reference", {}).items():
        print(f"human expressions {k:14s} mIoU {v['miou']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_dict(), indent=1))
    return 0


def cmd_gt(args: argparse.Namespace) -> int:
    """Success of the GT speaker and its ablations per listener weakness (Fig. 7.3 analogue)."""
    from lowshot.comm.gt_speaker import ABLATIONS
    from lowshot.comm.world import World, WorldConfig

    world = World(WorldConfig(test_episodes=args.episodes), args.seed)
    table = world.gt_table(args.listeners, ABLATIONS, budget=args.budget)
    print(f"{'speaker':14s} " + " ".join(f"{w:>10s}" for w in args.listeners))
    for name, row in table.items():
        print(f"{name:14s} " + " ".join(f"{row[w]:10.3f}" for w in args.listeners))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``comm`` command (``demo``, ``run``, ``gt``) to ``sub``."""
    p = sub.add_parser("comm", help="communicating agents: offline adaptation demo, GT tables")
    csub = p.add_subparsers(dest="comm_command", required=True, metavar="SUBCOMMAND")
    d = csub.add_parser("demo", help="adapt a tiny speaker to colour-blind / normal listeners")
    d.add_argument("overrides", nargs="*", help="key=value overrides of the setting")
    d.add_argument("--setting", default="demo", choices=["demo", "res_demo"],
                   help="demo: REI (Fig. 7.5 analogue); res_demo: RES with IoU rewards")
    d.add_argument("--run-dir", help="write config, history, checkpoints and result here; "
                                     "re-running with the same dir resumes")
    d.add_argument("--quick", action="store_true", help="300 interactions, one seed (smoke run)")
    d.add_argument("--threads", type=int, default=1, help="torch threads (tiny models: 1 is fastest)")
    d.add_argument("--json", help="also write the result (without config) to this JSON file")
    d.set_defaults(func=cmd_demo)
    r = csub.add_parser("run", help="run a comm setting (synthetic world or a dataset, REI or RES)")
    r.add_argument("setting", help="comm.<setting> (e.g. refcoco_paligemma) or a YAML file")
    r.add_argument("overrides", nargs="*", help="key=value overrides of the setting")
    r.add_argument("--data-root", help="dataset worlds: the data root (models resolve against it too)")
    r.add_argument("--run-dir", help="write config, history, checkpoints and result here; "
                                     "re-running with the same dir resumes")
    r.add_argument("--threads", type=int, default=1, help="torch threads")
    r.add_argument("--json", help="also write the result (without config) to this JSON file")
    r.set_defaults(func=cmd_run)
    g = csub.add_parser("gt", help="GT speaker and attribute ablations per listener weakness")
    g.add_argument("--listeners", nargs="+", default=["normal", "grayscale", "blur"])
    g.add_argument("--budget", type=int, default=None, help="at most this many words")
    g.add_argument("--episodes", type=int, default=300)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_gt)
