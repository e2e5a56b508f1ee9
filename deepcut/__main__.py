"""``python -m deepcut <command> [options]``: the command lines under one entry point.

Commands: ``infer`` (segment images), ``train`` (dataset-level head, Lightning), ``eval``
(benchmarks), ``cluster`` (k-less clustering), ``explore`` (hierarchy explorer page).
``python -m deepcut <command> --help`` shows each command's options; the same commands are
installed as ``deepcut-infer``, ``deepcut-train``, ``deepcut-eval``, ``deepcut-cluster`` and
``deepcut-explore``.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: command -> (module with ``main(argv, prog)``, one line of help)
COMMANDS = {
    "infer": ("deepcut.cli.infer", "segment images: label maps, overlays and JSON"),
    "train": ("deepcut.cli.train", "train one GNN head over a dataset (fit/validate/test/predict)"),
    "eval": ("deepcut.cli.evaluate", "score a method on a benchmark dataset"),
    "cluster": ("deepcut.cli.cluster", "k-less clustering of images or of a feature matrix"),
    "explore": ("deepcut.cli.explore", "offline HTML page of an image's segmentation hierarchy"),
}
PROG = "python -m deepcut"


def usage() -> str:
    lines = [f"usage: {PROG} {{{','.join(COMMANDS)}}} [options]", "",
             "commands (each has --help):"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "options:", "  -h, --help  show this message and exit",
              "  --version   print the deepcut version and exit"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "--version":
        from deepcut import __version__

        print(f"{PROG} {__version__}")
        return 0
    if args[0] not in COMMANDS:
        print(f"{PROG}: error: unknown command {args[0]!r}; choose from "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    prog = f"{PROG} {args[0]}"
    # The command reads its options from sys.argv, as when started on its own (LightningCLI
    # warns when given an argument list that differs from sys.argv).
    sys.argv = [prog, *args[1:]]
    return module.main(None, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
