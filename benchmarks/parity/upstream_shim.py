"""Run a published entry point on CPU without editing it (executed by the upstream Python).

Usage::

    <upstream-python> upstream_shim.py [--skip-val-loss] [--skip-hparams-log] [--ragged-object-arrays]
        [--pandas-keys-columns] [--stacked-list-tensors] [--no-git-branch] [--threads N] <repo> <script.py> [args...]

The shims only change where and how fast the published code runs, never what it computes:

* ``.cuda()`` on tensors and modules is a no-op, and ``Tensor.to("cuda")`` stays on the CPU (the
  published code hard-codes both in places, e.g. AV-Diff's diffusion constants);
* ``DataLoader(num_workers=...)`` runs in the main process (the published 8 workers on a
  2-core machine only add start-up time); samples and their random draws are unchanged;
* ``ReduceLROnPlateau(verbose=...)`` drops the argument removed in recent PyTorch;
* ``torch.load`` maps to the CPU and reads the published pickled checkpoints;
* ``torchvision``, imported but unused by the AVCA/TCaF entry points, is an empty stand-in
  when it is not installed (a CPU-only torch has no matching torchvision wheel here);
* ``--skip-val-loss`` (AVCA/TCaF ``src.train.val_step``): the published validation step
  forwards ``n_batches`` validation batches only to log a loss that nothing uses, and
  computes the validation HM (which selects the epoch and drives the LR scheduler) on the
  first one. With the option, the loop stops after that first batch: HM, selection and the
  scheduler are unchanged, the logged validation loss is over one batch;
* ``--skip-hparams-log`` (ClipClap ``src.utils.log_hparams``): the published evaluation ends by
  writing its arguments to TensorBoard and fails there (``del args_dict['audio_hip_blocks']``,
  a key its own arguments do not have) after the test results are logged. With the option
  that TensorBoard write is skipped; nothing it computes is used;
* ``--ragged-object-arrays`` (TCaF ``src.dataset``): the published code stacks the per-video
  feature sequences (different lengths) with ``np.array(list)``; its numpy 1.20 returned an
  object array of the sequences (with a deprecation warning), numpy >= 1.24 raises. With the
  option, ``np.array`` of a ragged list returns that object array, as numpy 1.20 did;
* ``--pandas-keys-columns`` (TCaF ``src.utils.setup_evaluation``): the published evaluation
  builds an (never filled, never read) ``test_stats`` frame whose one column label is a
  ``dict_keys`` view, which pandas < 2 accepted and pandas 3 rejects; with the option such a
  label is replaced by its string;
* ``--stacked-list-tensors`` (TCaF ``src.dataset`` collator): the published collator builds
  every batch with ``torch.tensor(list of per-video numpy arrays)``, which PyTorch converts
  element by element (measured here: ~10 s of a ~15 s training step at batch 64, more than
  the model). With the option, ``torch.tensor`` of a list of numpy arrays of one shape and
  dtype gets ``np.stack(list)`` instead: the same values, dtype and shape (tested), built in
  one copy;
* ``--no-git-branch`` (AV-Diff ``src.utils.get_active_branch_name``): the published entry point
  logs the branch by reading ``./.git/HEAD`` of the working directory and fails outside a git
  checkout; with the option the logged branch name is empty (nothing reads it).

This file imports nothing from lowshot (the upstream environment does not have it).
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def _patch_torch(threads: int) -> None:
    import torch
    from torch.optim import lr_scheduler
    from torch.utils import data

    torch.set_num_threads(threads)
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    _cuda_to_cpu()

    plateau_init = lr_scheduler.ReduceLROnPlateau.__init__

    def plateau(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        kwargs.pop("verbose", None)
        plateau_init(self, *args, **kwargs)

    lr_scheduler.ReduceLROnPlateau.__init__ = plateau  # type: ignore[method-assign]

    loader_init = data.DataLoader.__init__

    def loader(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        kwargs["num_workers"] = 0
        kwargs.pop("persistent_workers", None)
        kwargs.pop("prefetch_factor", None)
        loader_init(self, *args, **kwargs)

    data.DataLoader.__init__ = loader  # type: ignore[method-assign]

    torch_load = torch.load

    def load(*args, **kwargs):  # noqa: ANN002, ANN003
        kwargs.setdefault("map_location", "cpu")
        kwargs.setdefault("weights_only", False)
        return torch_load(*args, **kwargs)

    torch.load = load  # type: ignore[assignment]


def _cuda_to_cpu() -> None:
    """``Tensor.to("cuda" | torch.device("cuda"), ...)`` moves to the CPU instead."""
    import torch

    tensor_to = torch.Tensor.to

    def to_cpu(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        args = tuple("cpu" if _is_cuda(x) else x for x in args)
        if _is_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
        return tensor_to(self, *args, **kwargs)

    torch.Tensor.to = to_cpu  # type: ignore[method-assign]


def _is_cuda(device: object) -> bool:
    import torch

    if isinstance(device, str):
        return device.startswith("cuda")
    return isinstance(device, torch.device) and device.type == "cuda"


class _FirstBatchOnly:
    """A loader view that reports the full length but yields only the first batch."""

    def __init__(self, loader) -> None:  # noqa: ANN001
        self.loader = loader
        self.dataset = loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):  # noqa: ANN204
        for batch in self.loader:
            yield batch
            return


def _stub_torchvision() -> None:
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        import types

        for name in ("torchvision", "torchvision.models", "torchvision.transforms"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["torchvision"].models = sys.modules["torchvision.models"]  # type: ignore[attr-defined]
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]  # type: ignore[attr-defined]


def _patch_val_step() -> None:
    import src.train as train_module  # the published package, on sys.path

    val_step = train_module.val_step

    def first_batch_val_step(data_loader, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        return val_step(_FirstBatchOnly(data_loader), *args, **kwargs)

    train_module.val_step = first_batch_val_step


def _skip_hparams_log() -> None:
    import src.utils as utils_module  # the published package; imported by name later

    utils_module.log_hparams = lambda *args, **kwargs: None


def _no_git_branch() -> None:
    import src.utils as utils_module  # the published package; imported by name later

    utils_module.get_active_branch_name = lambda: ""


def _ragged_object_arrays() -> None:
    import numpy as np

    array = np.array

    def ragged_array(obj, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        try:
            return array(obj, *args, **kwargs)
        except ValueError as err:
            if "inhomogeneous" not in str(err) or args or "dtype" in kwargs:
                raise
            return array(obj, dtype=object, **kwargs)

    np.array = ragged_array


def _pandas_keys_columns() -> None:
    from collections.abc import KeysView

    import pandas as pd

    frame_init = pd.DataFrame.__init__

    def init(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        columns = kwargs.get("columns")
        if isinstance(columns, list) and any(isinstance(c, KeysView) for c in columns):
            kwargs["columns"] = [str(c) if isinstance(c, KeysView) else c for c in columns]
        frame_init(self, *args, **kwargs)

    pd.DataFrame.__init__ = init  # type: ignore[method-assign]


def _stacked_list_tensors() -> None:
    import numpy as np
    import torch

    tensor = torch.tensor

    def stacked_tensor(data, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if (isinstance(data, list) and data and all(isinstance(x, np.ndarray) for x in data)
                and len({(x.shape, x.dtype) for x in data}) == 1 and data[0].dtype != object):
            data = np.stack(data)
        return tensor(data, *args, **kwargs)

    torch.tensor = stacked_tensor


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-val-loss", action="store_true")
    p.add_argument("--skip-hparams-log", action="store_true")
    p.add_argument("--ragged-object-arrays", action="store_true")
    p.add_argument("--pandas-keys-columns", action="store_true")
    p.add_argument("--stacked-list-tensors", action="store_true")
    p.add_argument("--no-git-branch", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("repo", type=Path)
    p.add_argument("script")
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    repo = a.repo.resolve()
    sys.path.insert(0, str(repo))
    _patch_torch(a.threads)
    _stub_torchvision()
    if a.skip_val_loss:
        _patch_val_step()
    if a.skip_hparams_log:
        _skip_hparams_log()
    if a.ragged_object_arrays:
        _ragged_object_arrays()
    if a.pandas_keys_columns:
        _pandas_keys_columns()
    if a.stacked_list_tensors:
        _stacked_list_tensors()
    if a.no_git_branch:
        _no_git_branch()
    sys.argv = [str(repo / a.script), *a.args]
    runpy.run_path(str(repo / a.script), run_name="__main__")


if __name__ == "__main__":
    main()
