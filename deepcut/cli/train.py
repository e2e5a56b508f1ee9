"""``deepcut-train fit --config configs/segment_folder.yaml --data.root DIR``: dataset-level head.

Subcommands: fit, validate, test, predict (``--help`` on each); see ``configs/*.yaml``. Then
segment with the checkpoint: ``deepcut-infer IMAGES --checkpoint CKPT``. A configuration error
(e.g. no ``--data.root``) is one ``error:`` line and exit status 2, like the other commands.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from deepcut.cli.common import fail, one_line_warnings

__all__ = ["cli_main", "main"]


def cli_main(args: Sequence[str] | None = None, run: bool = True, prog: str | None = None):
    """The :class:`~deepcut.lightning.cli.DeepCutCLI` (``run=False`` only parses and builds)."""
    from deepcut.lightning.cli import DeepCutCLI, DeepCutSaveConfigCallback, quiet_lightning
    from deepcut.lightning.datamodule import DeepCutDataModule
    from deepcut.lightning.module import DeepCutModule

    quiet_lightning()
    import deepcut

    kwargs = {"version": deepcut.__version__}  # jsonargparse prints "<prog> <version>"
    if prog is not None:
        kwargs["prog"] = prog
    return DeepCutCLI(DeepCutModule, DeepCutDataModule, seed_everything_default=0,
                      save_config_callback=DeepCutSaveConfigCallback,
                      save_config_kwargs={"overwrite": True}, parser_kwargs=kwargs,
                      args=None if args is None else list(args), run=run)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Console entry point: 0 on success, 2 with one ``error:`` line on a configuration error."""
    from deepcut._threads import prefer_passive_waits

    prefer_passive_waits()  # before torch loads
    one_line_warnings()
    from deepcut.lightning.cli import quiet_lightning

    quiet_lightning()
    # No quiet_warnings() here: its root logging handler would print every Lightning line twice.
    from deepcut.errors import DeepCutError

    try:
        cli_main(argv, prog=prog)
    except DeepCutError as e:
        return fail(str(e))
    except SystemExit as e:  # DeepCutCLI: 2 after its one error line, 1 after skipped images
        if isinstance(e.code, int) and e.code != 0:
            return e.code
        raise  # --help / --version exit 0 as argparse does in the other commands
    return 0


if __name__ == "__main__":
    sys.exit(main())
