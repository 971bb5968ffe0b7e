"""Where the released data lives: one precedence rule for every recipe.

The data root is taken from, in this order:

1. the command line (``--data-root DIR``),
2. the config (``data.root``),
3. the environment (``$LOWSHOT_DATA_ROOT``).

The first one that is set wins; a set value that is not a folder is an error naming where
it came from (a later source is never tried in its place).
"""

from __future__ import annotations

import os
from pathlib import Path

from lowshot.errors import DataError

ENV_DATA_ROOT = "LOWSHOT_DATA_ROOT"


def resolve_data_root(cli: str | Path | None, config: str | Path | None = None, what: str = "the data") -> Path:
    """The data root by precedence CLI > config > environment.

    Args:
        cli: ``--data-root`` (None or "" when not given).
        config: the config's ``data.root`` (None or "" when not set).
        what: what needs the root, for the error message (``"world 'clevr'"``).

    Raises:
        DataError: none of the three is set, or the chosen one is not a folder.
    """
    given = [(v, src) for v, src in ((cli, "--data-root"), (config, "data.root"),
                                     (os.environ.get(ENV_DATA_ROOT), ENV_DATA_ROOT)) if v]
    if not given:
        raise DataError(f"{what} needs a data root: pass --data-root DIR, set data.root in the config, "
                        f"or set {ENV_DATA_ROOT}")
    value, source = given[0]
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data root {path} (from {source}) is not a folder")
    return path


__all__ = ["ENV_DATA_ROOT", "resolve_data_root"]
