"""What lowshot survives: the hostile run-lifecycle cases of issue #8 (items 11-18), one row each.

Read the tables below as the list. Every row names a hostile thing that happens to a run
(a kill -9 at a given point, a damaged checkpoint, other data under a resumed run, a broken
run dir, a value that cannot train) and what lowshot must do about it:

* ``SAME`` — the run resumes and its ``result.json`` / ``history.json`` files are
  byte-identical to those of the uninterrupted run;
* a regular expression — ``lowshot`` exits 2 with one line ``lowshot: error: ...`` matching it
  (no traceback), and leaves nothing behind that blocks the fixed rerun.

Kills are real: the ``lowshot reproduce`` command runs in a forked child that sends itself
SIGKILL at a deterministic point (hooks on ``os.replace`` and safetensors' ``save_file``,
the two places every commit goes through), and the next run resumes through the real code
path. Everything runs on a tiny ClipClap and a 5%-size synthetic UCF on one thread.

The second half of the file (from "data layer") holds the data-layer cases of issue #8
(items 13, 15, 17 and 19) as one table, ``CASES``: each row starts from a small synthetic tree in
a released layout, breaks it, runs ``lowshot`` commands (exit status and the line each must
print) and checks what must hold afterwards; every row also checks that no pickle payload ran.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from lowshot.cli.main import build_parser, main
from lowshot.config.paper import load_paper_config
from lowshot.data.av.embeddings import read_embedding_dict, write_embedding_dict
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.data.av.h5 import read_h5_class_file, write_h5_class_file
from lowshot.data.av.synth import PRESETS, write_synthetic

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills are simulated in forked children")

SAME = "same result as the uninterrupted run"
EPOCHS = 4
TINY = [
    "data.synthetic_size=0.05", f"train.epochs={EPOCHS}", "train.n_batches=16", "train.batch_size=32",
    "train.lr=1e-3", "train.lr_scheduler=false", "train.progress=false", "train.num_threads=1",
    "protocol.beta_grid=[0,3,4]", "model.model_dim=32", "model.hidden_dim=32", "model.out_dim=16",
]
RESULT_FILES = ("result.json", "seed_42/result.json", "seed_42/history.json")


# ------------------------------------------------------------------------------ helpers
def write_tiny_config(folder: Path, *overrides: str) -> Path:
    """The tiny experiment as a YAML file (``lowshot reproduce FILE`` reads it like a paper setting)."""
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(load_paper_config("demo.clipclap_synthetic", [*TINY, *overrides])))
    return path


def lowshot(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in-process; returns (exit code, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def assert_refused(rc: int, err: str, pattern: str) -> None:
    lines = err.strip().splitlines()
    assert rc == 2, f"exit {rc}, stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("lowshot: error: "), err
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"


def assert_same_result(run: Path, reference: Path) -> None:
    for name in RESULT_FILES:
        assert (run / name).read_bytes() == (reference / name).read_bytes(), f"{name} differs"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class KillPoint:
    """Where a forked ``lowshot reproduce`` kills itself (installed in the child only)."""

    what: str
    install: Callable[[], None]


def _on_replace(matches: Callable[[Path], bool]) -> Callable[[], None]:
    """Kill right after an atomic rename whose target ``matches``."""

    def install() -> None:
        original = os.replace

        def replace(src, dst, *args, **kwargs):
            original(src, dst, *args, **kwargs)
            if matches(Path(dst)):
                _die()

        os.replace = replace

    return install


def _committed(stage: int, epoch: int) -> Callable[[Path], bool]:
    def matches(path: Path) -> bool:
        return path.name == f"stage{stage}.json" and json.loads(path.read_text())["epoch"] == epoch

    return matches


def after_commit(stage: int, epoch: int) -> KillPoint:
    return KillPoint(f"kill -9 after stage-{stage} epoch {epoch} is committed", _on_replace(_committed(stage, epoch)))


def before_record(stage: int, epoch: int) -> KillPoint:
    name = f"stage{stage}_epoch{epoch:03d}.safetensors"
    return KillPoint(f"kill -9 after the stage-{stage} epoch-{epoch} checkpoint, before its record",
                     _on_replace(lambda p: p.name == name))


def during_write(stage: int, epoch: int) -> KillPoint:
    """Kill with the checkpoint half written to its temporary file."""
    return killed_while_writing(f"stage{stage}_epoch{epoch:03d}.safetensors")


def killed_while_writing(name: str) -> KillPoint:
    """Kill with the safetensors file ``name`` half written to its temporary file."""

    def install() -> None:
        import safetensors.torch

        original = safetensors.torch.save_file

        def save_file(tensors, filename, *args, **kwargs):
            original(tensors, filename, *args, **kwargs)
            if name in Path(filename).name:
                with open(filename, "r+b") as fh:
                    fh.truncate(os.path.getsize(filename) // 2)
                _die()

        safetensors.torch.save_file = save_file

    return KillPoint(f"kill -9 while {name} is being written", install)


def forked(body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child; returns its exit code, or -signal if a signal ended it."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run_killed(config: Path, run: Path, point: KillPoint, *extra: str) -> None:
    """``lowshot reproduce`` in a child that must die by SIGKILL at ``point``."""

    def body() -> int:
        point.install()
        return main(["reproduce", str(config), "--run-dir", str(run), *extra])

    assert forked(body) == -signal.SIGKILL, f"the run did not reach: {point.what}"


def kill_damage_rerun(config: Path, run: Path, points: list[KillPoint], damage: Callable[[Path], None] | None,
                      capsys) -> tuple[int, str]:
    """Kill one run per point, damage what is left, then rerun; returns (exit code, stderr)."""
    for point in points:
        run_killed(config, run, point)
    if damage is not None:
        damage(run)
    return lowshot(capsys, "reproduce", config, "--run-dir", run)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run (its synthetic data is copied into every other run dir)."""
    build_parser()  # import every command module now (forked children reuse them)
    tmp = tmp_path_factory.mktemp("reference")
    run = tmp / "run"
    assert main(["reproduce", str(write_tiny_config(tmp)), "--run-dir", str(run)]) == 0
    best = json.loads((run / "seed_42" / "result.json").read_text())["best_epoch"]
    assert best >= 2, "precondition: stage 2 must have >= 3 epochs to be killed three times in it"
    return run


@pytest.fixture
def fresh(reference, tmp_path) -> tuple[Path, Path]:
    """(config file, run dir holding only the reference's generated data)."""
    run = tmp_path / "run"
    shutil.copytree(reference / "data", run / "data")
    return write_tiny_config(tmp_path), run


# ------------------------------------------------------------------------------ 11: repeated kills
KILLS = [
    # id, kill points (one per interrupted attempt), then a last attempt that finishes
    ("two-kills-stage1", [after_commit(1, 0), after_commit(1, 1)]),
    ("three-kills-stage1", [after_commit(1, 0), after_commit(1, 1), after_commit(1, 2)]),
    ("two-kills-stage2", [after_commit(2, 0), after_commit(2, 1)]),
    ("three-kills-stage2", [after_commit(2, 0), after_commit(2, 1), after_commit(2, 2)]),
    ("kills-in-both-stages", [after_commit(1, 1), before_record(1, 2), after_commit(2, 0)]),
]


@pytest.mark.parametrize("points", [k[1] for k in KILLS], ids=[k[0] for k in KILLS])
def test_repeated_kills_resume_to_the_same_result(points, fresh, reference, capsys):
    config, run = fresh
    for point in points:
        run_killed(config, run, point)
    rc, err = lowshot(capsys, "reproduce", config, "--run-dir", run)
    assert rc == 0, err
    assert_same_result(run, reference)
    left = sorted(p.name for p in (run / "seed_42" / "checkpoints").glob("stage*_epoch*.safetensors"))
    assert left == [], left  # a finished seed keeps its models, not its resume state


# ------------------------------------------------------------------------------ 12: damaged checkpoints
def _latest(run: Path, stage: int = 1) -> Path:
    ckpt = run / "seed_42" / "checkpoints"
    return ckpt / json.loads((ckpt / f"stage{stage}.json").read_text())["checkpoint"]


def _truncate(path: Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def _overwrite_tensor_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-4096:] = b"\xff" * 4096  # NaN patterns in the last tensors, size unchanged
    path.write_bytes(bytes(data))


def _both_checkpoints_truncated(run: Path) -> None:
    for p in (run / "seed_42" / "checkpoints").glob("stage1_epoch*.safetensors"):
        _truncate(p)


CORRUPTIONS = [
    # id, kill point, damage done afterwards, expected outcome
    ("truncated-checkpoint", after_commit(1, 2), lambda run: _truncate(_latest(run)), SAME),
    ("empty-checkpoint", after_commit(1, 2), lambda run: _latest(run).write_bytes(b""), SAME),
    ("overwritten-tensor-bytes", after_commit(1, 2), lambda run: _overwrite_tensor_bytes(_latest(run)), SAME),
    ("deleted-checkpoint", after_commit(1, 2), lambda run: _latest(run).unlink(), SAME),
    ("truncated-stage1-json", after_commit(1, 2),
     lambda run: _truncate(run / "seed_42" / "checkpoints" / "stage1.json"), SAME),
    ("empty-stage1-json", after_commit(1, 2),
     lambda run: (run / "seed_42" / "checkpoints" / "stage1.json").write_text(""), SAME),
    ("truncated-stage2-checkpoint", after_commit(2, 1), lambda run: _truncate(_latest(run, 2)), SAME),
    ("kill-during-checkpoint-write", during_write(1, 1), lambda run: None, SAME),
    ("kill-between-checkpoint-and-record", before_record(1, 1), lambda run: None, SAME),
    ("every-checkpoint-corrupt", after_commit(1, 2), _both_checkpoints_truncated,
     r"cannot resume from .*stage1_epoch002\.safetensors.*stage1_epoch001\.safetensors.*new --run-dir"),
]


@pytest.mark.parametrize(
    "point, damage, expected", [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS]
)
def test_damaged_checkpoints_are_detected(point, damage, expected, fresh, reference, capsys):
    config, run = fresh
    run_killed(config, run, point)
    damage(run)
    rc, err = lowshot(capsys, "reproduce", config, "--run-dir", run)
    if expected is SAME:
        assert rc == 0, err
        assert_same_result(run, reference)
        assert not list(run.rglob("*.tmp")), "orphan temporary files left behind"
    else:
        assert_refused(rc, err, expected)


# ------------------------------------------------------------------------------ 11/12 for the adverb recipe
# The adverb recipe commits through the same CheckpointChain: the same kills and damage, on a tiny
# ReGaDa with the default selection (stage 1 selects the epoch on validation in select/, chain
# select/checkpoints/select.json; stage 2 refits on all training clips, chain checkpoints/refit.json)
# and a commit every epoch.
ADVERB_CONFIG = {
    "recipe": "adverbs",
    "name": "tiny_adverbs",
    "method": "adverbs.regada",
    "model": {"emb_dim": 16, "heads": 2, "layers_gated": 1, "layers_residual": 1},
    "data": {"dataset": "vatex", "trust_pickle": True, "video_dim": 16, "joint_dim": 8,
             "synthetic": {"n_clips": 160, "n_adverb_pairs": 3, "n_actions": 6, "video_dim": 16,
                           "joint_dim": 8, "seed": 0}},
    "train": {"epochs": EPOCHS, "batch_size": 32, "lr": 3e-3, "eval_interval": 1,
              "checkpoint_interval": 1, "num_threads": 1},
}
ADVERB_CHAINS = {"select": Path("select") / "checkpoints", "refit": Path("checkpoints")}


def adverb_commit(chain: str, epoch: int) -> KillPoint:
    def matches(path: Path) -> bool:
        return path.name == f"{chain}.json" and json.loads(path.read_text())["epoch"] == epoch

    return KillPoint(f"kill -9 after adverb {chain} epoch {epoch} is committed", _on_replace(matches))


def _adverb_files(run: Path) -> dict[str, object]:
    """result.json bytes and both stages' histories without wall-clock times."""
    histories = {name: [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                        for line in (run / name).read_text().splitlines()]
                 for name in ("select/history.jsonl", "history.jsonl")}
    return {"result.json": (run / "result.json").read_bytes(), **histories}


def _adverb_selected_epoch(run: Path) -> int:
    return json.loads((run / "result.json").read_text())["extra"]["seed_details"]["42"]["epochs"]["map_w"]


@pytest.fixture(scope="module")
def adverb_reference(tmp_path_factory) -> Path:
    build_parser()
    tmp = tmp_path_factory.mktemp("adverb_reference")
    (tmp / "tiny_adverbs.yaml").write_text(yaml.safe_dump(ADVERB_CONFIG))
    assert main(["reproduce", str(tmp / "tiny_adverbs.yaml"), "--run-dir", str(tmp / "run")]) == 0
    assert _adverb_selected_epoch(tmp / "run") >= 2, "precondition: the refit must have >= 3 epochs to kill"
    return tmp / "run"


def _adverb_latest(run: Path, chain: str) -> Path:
    folder = run / ADVERB_CHAINS[chain]
    return folder / json.loads((folder / f"{chain}.json").read_text())["checkpoint"]


def _adverb_all_truncated(run: Path) -> None:
    for p in (run / ADVERB_CHAINS["select"]).glob("select_epoch*.safetensors"):
        _truncate(p)


ADVERB_CASES = [
    # id, kill points (one per interrupted attempt), damage after the last kill, expected outcome
    ("two-kills", [adverb_commit("select", 1), adverb_commit("select", 2)], None, SAME),
    ("three-kills", [adverb_commit("select", 0), adverb_commit("select", 1), adverb_commit("select", 3)], None,
     SAME),
    ("kill-in-refit", [adverb_commit("refit", 1)], None, SAME),
    ("kills-in-both-stages", [adverb_commit("select", 2), adverb_commit("refit", 0), adverb_commit("refit", 1)],
     None, SAME),
    ("truncated-checkpoint", [adverb_commit("select", 2)], lambda run: _truncate(_adverb_latest(run, "select")),
     SAME),
    ("empty-checkpoint", [adverb_commit("select", 2)],
     lambda run: _adverb_latest(run, "select").write_bytes(b""), SAME),
    ("overwritten-tensor-bytes", [adverb_commit("select", 2)],
     lambda run: _overwrite_tensor_bytes(_adverb_latest(run, "select")), SAME),
    ("truncated-refit-checkpoint", [adverb_commit("refit", 1)],
     lambda run: _truncate(_adverb_latest(run, "refit")), SAME),
    ("kill-during-checkpoint-write", [killed_while_writing("select_epoch002.safetensors")], None, SAME),
    ("kill-during-refit-checkpoint-write", [killed_while_writing("refit_epoch001.safetensors")], None, SAME),
    ("every-checkpoint-corrupt", [adverb_commit("select", 2)], _adverb_all_truncated,
     r"cannot resume from .*select_epoch002\.safetensors.*select_epoch001\.safetensors.*new --run-dir"),
]


@pytest.mark.parametrize("points, damage, expected", [c[1:] for c in ADVERB_CASES], ids=[c[0] for c in ADVERB_CASES])
def test_adverb_runs_survive_kills_and_damaged_checkpoints(points, damage, expected, adverb_reference,
                                                           tmp_path, capsys):
    config, run = tmp_path / "tiny_adverbs.yaml", tmp_path / "run"
    config.write_text(yaml.safe_dump(ADVERB_CONFIG))
    shutil.copytree(adverb_reference / "data", run / "data")
    rc, err = kill_damage_rerun(config, run, points, damage, capsys)
    if expected is SAME:
        assert rc == 0, err
        assert _adverb_files(run) == _adverb_files(adverb_reference)
        assert not list(run.rglob("*.tmp")), "orphan temporary files left behind"
        chosen = _adverb_selected_epoch(adverb_reference)
        for chain, last in (("select", EPOCHS), ("refit", chosen)):  # latest + previous, nothing else
            left = sorted(p.name for p in (run / ADVERB_CHAINS[chain]).glob("*.safetensors"))
            assert left == [f"{chain}_epoch{last - 1:03d}.safetensors", f"{chain}_epoch{last:03d}.safetensors"]
    else:
        assert_refused(rc, err, expected)


# ------------------------------------------------------------------------------ 14: other data under a resumed run
def _edit_split_file(root: Path) -> None:
    path = root / "UCF" / "class-split" / "cls_split" / "stage_1_train.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")  # one training class fewer


def _edit_embeddings(root: Path) -> None:
    import numpy as np

    path = root / "UCF" / "features" / "cls_features_non_averaged" / "text" / "word_embeddings_ucf_normed.npy"
    table = np.load(path, allow_pickle=True).item()
    first = next(iter(table))
    table[first] = -table[first]  # still a unit vector, another class embedding
    np.save(path, np.array(table, dtype=object), allow_pickle=True)


def _grow_feature_file(root: Path) -> None:
    path = sorted((root / "UCF" / "features" / "cls_features_non_averaged" / "audio" / "stage_1_train").iterdir())[0]
    with open(path, "ab") as fh:
        fh.write(b"\0" * 16)


def _other_dataset(root: Path) -> None:
    from lowshot.data.av.synth import write_synthetic

    shutil.rmtree(root)
    write_synthetic(root, preset="clipclap", dataset="UCF", seed=1, size=0.05)


DATA_CHANGES = [
    # id, change made to the data root between the kill and the resume, expected outcome
    ("identical-copy-elsewhere", lambda root: None, SAME),
    ("other-dataset", _other_dataset, r"data differs .*class_split: .*new --run-dir"),
    ("split-file-edited", _edit_split_file, r"class_split: UCF/class-split/cls_split/stage_1_train\.txt differs"),
    ("embedding-file-changed", _edit_embeddings, r"text: UCF/features/cls_features_non_averaged/text/word_embeddings_ucf_normed\.npy differs"),
    ("feature-file-changed-size", _grow_feature_file, r"features: UCF/features/.*/audio/stage_1_train/\S+ differs"),
]


@pytest.mark.parametrize("change, expected", [c[1:] for c in DATA_CHANGES], ids=[c[0] for c in DATA_CHANGES])
def test_resume_refuses_other_data(change, expected, reference, tmp_path, capsys):
    """The run reads a released-layout tree through ``--data-root``; the resume gets another root."""
    first, second = tmp_path / "root_a", tmp_path / "root_b"
    shutil.copytree(reference / "data", first)
    config = write_tiny_config(tmp_path, "data.synthetic=null", "data.trust_pickle=true")
    run = tmp_path / "run"
    run_killed(config, run, after_commit(1, 0), "--data-root", str(first))
    shutil.copytree(first, second)
    change(second)
    rc, err = lowshot(capsys, "reproduce", config, "--run-dir", run, "--data-root", second)
    if expected is SAME:
        assert rc == 0, err
        assert_same_result(run, reference)
    else:
        assert_refused(rc, err, expected)
        assert not (run / "result.json").exists()


# ------------------------------------------------------------------------------ 16: permissions follow the umask
def _modes(root: Path, skip: str | None = None) -> set[tuple[str, int]]:
    found = {("dir", root.stat().st_mode & 0o777)}
    for p in root.rglob("*"):
        if skip is None or skip not in p.relative_to(root).parts:
            found.add(("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777))
    return found


def test_outputs_follow_the_umask(reference, tmp_path, capsys):
    config, run = write_tiny_config(tmp_path), tmp_path / "run"
    old = os.umask(0o027)
    try:
        shutil.copytree(reference / "data", run / "data")
        rc, err = lowshot(capsys, "reproduce", config, "--run-dir", run)
    finally:
        os.umask(old)
    assert rc == 0, err
    assert _modes(run, skip="data") == {("dir", 0o750), ("file", 0o640)}


def test_temporary_folders_follow_the_umask(tmp_path):
    from lowshot.utils.io import make_temp_dir

    old = os.umask(0o027)
    try:
        made = make_temp_dir(tmp_path, ".tree.")
    finally:
        os.umask(old)
    assert made.parent == tmp_path and made.stat().st_mode & 0o777 == 0o750


def test_generated_data_follows_the_umask(tmp_path):
    from lowshot.data.av.synth import write_synthetic

    old = os.umask(0o022)
    try:
        write_synthetic(tmp_path / "d", preset="clipclap", dataset="UCF", seed=0, size=0.02)
    finally:
        os.umask(old)
    assert _modes(tmp_path / "d") == {("dir", 0o755), ("file", 0o644)}


# ------------------------------------------------------------------------------ 17: broken run dirs
def _finished_copy(reference: Path, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(reference, run)
    return run


def _killed_copy(reference: Path, tmp: Path) -> Path:
    run = _finished_copy(reference, tmp)
    (run / "result.json").unlink()
    return run


def _with_result(text: str) -> Callable[[Path, Path], Path]:
    def setup(reference: Path, tmp: Path) -> Path:
        run = _finished_copy(reference, tmp)
        (run / "result.json").write_text(text)
        return run

    return setup


def _with_result_edit(edit: Callable[[dict], None]) -> Callable[[Path, Path], Path]:
    def setup(reference: Path, tmp: Path) -> Path:
        run = _finished_copy(reference, tmp)
        result = json.loads((run / "result.json").read_text())
        edit(result)
        (run / "result.json").write_text(json.dumps(result))
        return run

    return setup


def _with_history(text: str) -> Callable[[Path, Path], Path]:
    def setup(reference: Path, tmp: Path) -> Path:
        run = _finished_copy(reference, tmp)
        (run / "seed_42" / "history.json").write_text(text)
        return run

    return setup


def _final_model(damage: Callable[[Path], None]) -> Callable[[Path, Path], Path]:
    def setup(reference: Path, tmp: Path) -> Path:
        run = _finished_copy(reference, tmp)
        damage(run / "seed_42" / "checkpoints" / "final_model.safetensors")
        return run

    return setup


def _a_file(reference: Path, tmp: Path) -> Path:
    (tmp / "run").write_text("not a folder")
    return tmp / "run"


REPORTS = [
    # id, run dir handed to `lowshot report`, extra options, expected one-line error
    ("missing-run-dir", lambda ref, tmp: tmp / "nope", [], r"run dir .*nope does not exist"),
    ("run-dir-is-a-file", _a_file, [], r"is a file, not a run dir"),
    ("empty-folder", lambda ref, tmp: tmp, [], r"has no result\.json: this is not a lowshot run dir"),
    ("killed-run", _killed_copy, [], r"has no result\.json: the run has not finished .*rerun"),
    ("empty-result", _with_result(""), [], r"result\.json is not valid JSON"),
    ("truncated-result", _with_result('{"name": "x", "metr'), [], r"result\.json is not valid JSON"),
    ("result-is-a-list", _with_result("[1, 2]"), [], r"result\.json: key '\(top level\)' must be a mapping"),
    ("result-of-an-old-version", _with_result('{"metrics": {"acc_a": 0.5}}'), [],
     r"result\.json: key 'setting' is missing \(not a lowshot result of schema 1"),
    ("non-numeric-metric", _with_result_edit(lambda r: r["metrics"]["S"].update(mean="high")), [],
     r"result\.json: key 'metrics\.S' must have a numeric mean and std"),
    ("unknown-family", _with_result_edit(lambda r: r.update(family="gzls")), [],
     r"result\.json: key 'family' must be one of \['av_gzsl'"),
    ("truncated-history", _with_history('[{"stage": 1, "ep'), ["--figures", "{tmp}/fig"],
     r"history\.json is not valid JSON"),
    ("history-not-records", _with_history('{"stage": 1}'), ["--figures", "{tmp}/fig"],
     r"history\.json is not a lowshot history"),
    ("final-model-missing", _final_model(Path.unlink), ["--figures", "{tmp}/fig", "--tsne"],
     r"t-SNE needs .*final_model\.safetensors.*not finished"),
    ("final-model-corrupt", _final_model(_truncate), ["--figures", "{tmp}/fig", "--tsne"],
     r"final_model\.safetensors is not a readable safetensors file"),
    ("figures-dir-is-a-file", _finished_copy, ["--figures", "{tmp}/run/result.json"],
     r"--figures .*result\.json is a file, not a folder"),
]


@pytest.mark.parametrize("setup, options, expected", [r[1:] for r in REPORTS], ids=[r[0] for r in REPORTS])
def test_report_on_a_broken_run_dir_says_what_is_wrong(setup, options, expected, reference, tmp_path, capsys):
    if "--figures" in options:
        pytest.importorskip("matplotlib")
    run = setup(reference, tmp_path)
    rc, err = lowshot(capsys, "report", run, "--format", "md", *(o.format(tmp=tmp_path) for o in options))
    assert_refused(rc, err, expected)


def _unprivileged(body: Callable[[], int]) -> Callable[[], int]:
    """In the forked child: drop root (root writes through any mode bits), then run ``body``."""

    def child() -> int:
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        return body()

    return child


def test_read_only_run_dir_is_refused_with_one_line(reference):
    tmp = Path(tempfile.mkdtemp(prefix="lowshot-ro-", dir="/tmp"))
    try:
        os.chmod(tmp, 0o755)
        config = write_tiny_config(tmp)
        config.chmod(0o644)
        run = tmp / "run"
        run.mkdir(mode=0o555)
        run.chmod(0o555)
        err = tmp / "stderr.txt"

        def body() -> int:
            with open(err, "w") as sys.stderr:
                return main(["reproduce", str(config), "--run-dir", str(run)])

        os.chmod(tmp, 0o777)  # the unprivileged child writes its stderr here
        rc = forked(_unprivileged(body))
        assert_refused(rc, err.read_text(), r"run dir .*/run is not writable; pass another --run-dir")
        assert not list(run.iterdir())
    finally:
        shutil.rmtree(tmp)


RUN_DIRS = [
    # id, --run-dir given to `lowshot reproduce`, expected one-line error
    ("run-dir-is-a-file", _a_file, r"run dir .*run exists and is not a folder"),
    ("run-dir-under-a-file", lambda ref, tmp: _a_file(ref, tmp) / "sub", r"cannot be made: .*run is not a folder"),
]


@pytest.mark.parametrize("setup, expected", [r[1:] for r in RUN_DIRS], ids=[r[0] for r in RUN_DIRS])
def test_unusable_run_dir_is_refused_with_one_line(setup, expected, reference, tmp_path, capsys):
    run = setup(reference, tmp_path)
    rc, err = lowshot(capsys, "reproduce", write_tiny_config(tmp_path), "--run-dir", run)
    assert_refused(rc, err, expected)


# ------------------------------------------------------------------------------ 18: values that cannot train
BAD_VALUES = [
    # id, override, expected one-line error (given when the config loads, before anything is written)
    ("negative-epochs", "train.epochs=-1", r"train: epochs must be >= 1, got -1"),
    ("zero-epochs", "train.epochs=0", r"train: epochs must be >= 1, got 0"),
    ("zero-batch-size", "train.batch_size=0", r"train: batch_size must be >= 1, got 0"),
    ("zero-batches", "train.n_batches=0", r"train: n_batches must be >= 1, got 0"),
    ("negative-lr", "train.lr=-1", r"train: lr must be > 0, got -1"),
    ("nan-lr", "train.lr=.nan", r"train: lr must be > 0, got nan"),
    ("zero-eval-batch-size", "train.eval_batch_size=0", r"train: eval_batch_size must be >= 1, got 0"),
    ("empty-beta-grid", "protocol.beta_grid=[0,3,0]", r"protocol: beta_grid num must be >= 1, got 0"),
    ("reversed-beta-grid", "protocol.beta_grid=[3,0,4]", r"protocol: beta_grid stop must be >= 3"),
    ("zero-threads", "train.num_threads=0", r"train: num_threads must be >= 1, got 0"),
    ("lr-factor-one", "train.lr_factor=1", r"train: lr_factor must be > 0 and < 1"),
    ("no-seeds", "train.seeds=[]", r"seeds must name at least one seed"),
    ("unknown-device", "train.device=tpu", r"train\.device: unknown device 'tpu'"),
    ("cuda-without-cuda", "train.device=cuda", r"train\.device: 'cuda' is not available on this machine"),
    ("missing-gpu", "train.device=cuda:7", r"train\.device: 'cuda:7' is not available on this machine"),
]


@pytest.mark.parametrize("override, expected", [b[1:] for b in BAD_VALUES], ids=[b[0] for b in BAD_VALUES])
def test_bad_values_fail_when_the_config_loads(override, expected, tmp_path, capsys):
    import torch

    if "cuda" in override and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the device")
    if override == "train.device=cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run = tmp_path / "run"
    rc, err = lowshot(capsys, "reproduce", write_tiny_config(tmp_path), "--run-dir", run, override)
    assert_refused(rc, err, expected)
    assert not run.exists(), "a rejected config left a run dir behind"


def test_a_rejected_run_does_not_block_the_fixed_rerun(fresh, capsys):
    """A run dir holding the config.yaml of a run that never committed an epoch takes a new config."""
    config, run = fresh
    (run / "config.yaml").write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "name": "rejected"}))
    rc, err = lowshot(capsys, "reproduce", config, "--run-dir", run, "train.epochs=1")
    assert rc == 0, err
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 1


# ------------------------------------------------------------------------------ 11/12 for the comm recipe
# The comm adaptation loop commits its run state (adapter, optimiser, RNGs, curves) through the same
# CheckpointChain, chain ``state`` in checkpoints/seed0/<algorithm>-<listener>/, at every evaluation.
# A tiny KTO speaker (the world's ``tiny`` preset) against the colour-blind pixel listener: 5
# updates, a commit after each.
def comm_config() -> dict[str, object]:
    from lowshot.comm.world import WorldConfig
    from lowshot.config.schema import to_dict

    return {"recipe": "comm", "name": "tiny_comm", "world": "synthetic", "game": "rei",
            "listeners": ["grayscale"], "seeds": [0], "algorithms": {"kto": {"lr": 3e-3}},
            "loop": {"interactions": 15, "eval_every": 3, "episodes_per_update": 3},
            "world_config": to_dict(WorldConfig.tiny())}


COMM_CHAIN = Path("checkpoints") / "seed0" / "kto-grayscale"


def comm_commit(update: int) -> KillPoint:
    def matches(path: Path) -> bool:
        return path.name == "state.json" and json.loads(path.read_text())["epoch"] == update

    return KillPoint(f"kill -9 after the comm state of update {update} is committed", _on_replace(matches))


def _comm_files(run: Path) -> dict[str, object]:
    """result.json without wall-clock seconds, history.jsonl and the final adapter's bytes."""
    result = json.loads((run / "result.json").read_text())
    for r in result["extra"]["runs"]:
        r.pop("seconds")
    return {"result.json": result, "history.jsonl": (run / "history.jsonl").read_text(),
            "last.safetensors": (run / COMM_CHAIN / "last.safetensors").read_bytes()}


def _comm_latest(run: Path) -> Path:
    folder = run / COMM_CHAIN
    return folder / json.loads((folder / "state.json").read_text())["checkpoint"]


def _comm_all_truncated(run: Path) -> None:
    for p in (run / COMM_CHAIN).glob("state_epoch*.safetensors"):
        _truncate(p)


@pytest.fixture
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: bit-for-bit reproducible between the runs
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def comm_reference(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    import torch

    build_parser()
    tmp = tmp_path_factory.mktemp("comm_reference")
    (tmp / "tiny_comm.yaml").write_text(yaml.safe_dump(comm_config()))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["reproduce", str(tmp / "tiny_comm.yaml"), "--run-dir", str(tmp / "run")]) == 0
    finally:
        torch.set_num_threads(threads)
    return tmp / "run"


COMM_CASES = [
    # id, kill points (one per interrupted attempt), damage after the last kill, expected outcome
    ("two-kills", [comm_commit(1), comm_commit(3)], None, SAME),
    ("truncated-checkpoint", [comm_commit(3)], lambda run: _truncate(_comm_latest(run)), SAME),
    ("overwritten-tensor-bytes", [comm_commit(3)], lambda run: _overwrite_tensor_bytes(_comm_latest(run)), SAME),
    ("kill-during-checkpoint-write", [killed_while_writing("state_epoch002.safetensors")], None, SAME),
    ("every-checkpoint-corrupt", [comm_commit(3)], _comm_all_truncated,
     r"cannot resume from .*state_epoch003\.safetensors.*state_epoch002\.safetensors.*new --run-dir"),
]


@pytest.mark.parametrize("points, damage, expected", [c[1:] for c in COMM_CASES], ids=[c[0] for c in COMM_CASES])
def test_comm_runs_survive_kills_and_damaged_checkpoints(points, damage, expected, comm_reference, tmp_path,
                                                         capsys, one_torch_thread):
    config, run = tmp_path / "tiny_comm.yaml", tmp_path / "run"
    config.write_text(yaml.safe_dump(comm_config()))
    rc, err = kill_damage_rerun(config, run, points, damage, capsys)
    if expected is SAME:
        assert rc == 0, err
        assert _comm_files(run) == _comm_files(comm_reference)
        assert not list(run.rglob("*.tmp")), "orphan temporary files left behind"
        left = sorted(p.name for p in (run / COMM_CHAIN).glob("state_epoch*.safetensors"))
        assert left == ["state_epoch004.safetensors", "state_epoch005.safetensors"]  # latest + previous
    else:
        assert_refused(rc, err, expected)


# ============================================================================================== data layer
# What lowshot's data layer survives: one row of ``CASES`` per thing that goes wrong.
#
# Each row starts from a small synthetic tree in a released layout (a private copy), breaks
# it (``damage``), runs ``lowshot`` commands (``steps``: exit status and the line it must
# print; exit 2 means one ``lowshot:`` line per problem and never a traceback), then checks
# what must hold afterwards (``after``). Every row also checks that no pickle payload ran.

SIZES = {"clipclap": 0.01, "cls_temporal": 0.01, "main_averaged": 0.01}
TEXT = {"clipclap": "clip,clap"}


class _Payload:
    """Unpickles into ``os.system(cmd)``: the code a hostile pickle would run."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.cmd,))


@dataclass
class Env:
    """Paths of one case: ``root`` is the (damaged) released tree, ``out`` a conversion root."""

    root: Path
    out: Path
    preset: str
    marker: Path
    shared: Path | None = None

    @property
    def fdir(self) -> str:
        return PRESETS[self.preset].feature_dir

    @property
    def feat(self) -> Path:
        return self.root / "UCF" / "features" / self.fdir

    @property
    def converted(self) -> Path:
        return self.out / "UCF" / "features" / self.fdir

    def class_file(self, modality: str, stage: str = "stage_1_train", i: int = 0) -> Path:
        return sorted(p for p in (self.feat / modality / stage).iterdir())[i]

    def text_file(self, stem: str = "word_embeddings_ucf_normed") -> Path:
        return self.feat / "text" / f"{stem}.npy"

    def payload(self) -> _Payload:
        return _Payload(f"touch {self.marker}")


@dataclass(frozen=True)
class Step:
    """One ``lowshot`` command (run after ``before``), its exit status and a regex its
    message must match (stderr when it fails, stdout when it succeeds)."""

    argv: Callable[[Env], list[str]]
    code: int
    says: str
    before: Callable[[Env], None] | None = None
    shows: str | None = None  # regex on stdout (the measured table) whatever the status


@dataclass(frozen=True)
class Case:
    id: str
    what: str
    preset: str
    damage: Callable[[Env], None]
    steps: tuple[Step, ...]
    after: Callable[[Env], None] | None = None
    needs_shared: bool = False


# ----------------------------------------------------------------------------------------
# commands


def inspect(*extra: str) -> Callable[[Env], list[str]]:
    return lambda e: ["data", "inspect", str(e.root), "UCF", e.fdir, *extra]


def inspect_out(e: Env) -> list[str]:
    return ["data", "inspect", str(e.out), "UCF", e.fdir]


def convert(*extra: str) -> Callable[[Env], list[str]]:
    return lambda e: ["data", "convert", str(e.root), "UCF", e.fdir, str(e.out), *extra]


# ----------------------------------------------------------------------------------------
# damage


def nothing(e: Env) -> None:
    pass


def hostile_embedding_dict(e: Env) -> None:
    with open(e.text_file(), "wb") as fh:
        np.save(fh, np.array({"Apply Eye Makeup": e.payload()}, dtype=object), allow_pickle=True)


def dump_class_pickle(obj: object, i: int = 0) -> Callable[[Env], None]:
    def damage(e: Env) -> None:
        with open(e.class_file("audio", i=i), "wb") as fh:
            pickle.dump(obj(e) if callable(obj) else obj, fh)

    return damage


def hostile_class_pickle(e: Env) -> dict[str, object]:
    return {"features": [np.zeros(1024, np.float32)], "video_names": [b"v"], "fps": e.payload()}


def ordered_dict_class_pickle(e: Env) -> None:
    path = e.class_file("audio")
    with open(path, "rb") as fh:
        content = pickle.load(fh)  # noqa: S301 - a file this test suite generated
    with open(path, "wb") as fh:
        pickle.dump(OrderedDict(content), fh)


def stray_hostile_pickles(e: Env) -> None:
    # sorts before every class file and stage: the old layout detection unpickled it first
    for name in ("00_stray.pkl", f"{e.class_file('audio').stem}.pkl"):  # not a class; a class
        with open(e.feat / "audio" / "stage_1_train" / name, "wb") as fh:
            pickle.dump({"features": e.payload()}, fh)
    # not a class-embedding file of UCF: the converter and inspect read text/*.npy before
    with open(e.feat / "text" / "notes.npy", "wb") as fh:
        np.save(fh, np.array({"x": e.payload()}, dtype=object), allow_pickle=True)


def stray_hostile_pickle_in_pkl_tree(e: Env) -> None:
    with open(e.feat / "audio" / "stage_1_train" / "00_stray.pkl", "wb") as fh:
        pickle.dump({"features": e.payload()}, fh)


def every_pickle_protocol(e: Env) -> None:
    """Class files rewritten with protocols 0-5, numpy scalars and numpy bytes inside."""
    for protocol in range(6):
        path = e.class_file("audio", i=protocol)
        with open(path, "rb") as fh:
            content = pickle.load(fh)  # noqa: S301 - a file this test suite generated
        content["video_names"] = [np.bytes_(v) for v in content["video_names"]]
        content["fps"] = [np.int64(f) for f in content["fps"]]
        with open(path, "wb") as fh:
            pickle.dump(content, fh, protocol=protocol)


def _trusted_dict(path: Path) -> dict[str, np.ndarray]:
    """A dict this test suite wrote (np.load with pickles, independent of lowshot's reader)."""
    return dict(np.load(path, allow_pickle=True).item())


def generated_embedding_dict(e: Env) -> None:
    old = _trusted_dict(e.text_file())
    rng = np.random.default_rng(0)
    table = {k: rng.standard_normal(300).astype(np.float32) for k in old}
    write_embedding_dict(e.text_file(), table, pickled=True)
    e.generated = table  # type: ignore[attr-defined]


def embedding_entry_not_a_vector(e: Env) -> None:
    table = _trusted_dict(e.text_file())
    table[next(iter(table))] = "not a vector"
    with open(e.text_file(), "wb") as fh:
        np.save(fh, np.array(table, dtype=object), allow_pickle=True)


def drop_embedding(e: Env) -> None:
    table = _trusted_dict(e.text_file())
    del table[sorted(table)[0]]
    write_embedding_dict(e.text_file(), table, pickled=True)


def h5_edit(edit: Callable[[np.ndarray, list[str]], tuple[np.ndarray, list[str]]], modality: str):
    def damage(e: Env) -> None:
        path = e.class_file(modality)
        data, ids = read_h5_class_file(path)
        write_h5_class_file(path, *edit(np.array(data), list(ids)))

    return damage


def with_nans(data: np.ndarray, ids: list[str]) -> tuple[np.ndarray, list[str]]:
    data[0, :3] = np.nan
    return data, ids


def remove_class_files(e: Env) -> None:
    """A class of cls_split/stage_1_train.txt loses its audio and video files."""
    name = e.class_file("audio").name
    for m in ("audio", "video"):
        (e.feat / m / "stage_1_train" / name).unlink()


def truncate_converted(e: Env) -> None:
    path = e.converted / "stage_1_train" / "audio.npy"
    path.write_bytes(path.read_bytes()[:-64])


def leftover_temp_folder(e: Env) -> None:
    stale = e.converted.parent / f".{e.converted.name}.killed"
    (stale / "stage_1_train").mkdir(parents=True)
    (stale / "stage_1_train" / "audio.npy").write_bytes(b"partial")


def nan_in_converted(e: Env) -> None:
    block = np.load(e.converted / "stage_2_test_seen" / "video.npy", mmap_mode="r+")
    block[1, 2] = np.nan
    block.flush()


# ----------------------------------------------------------------------------------------
# afterwards


def no_conversion(e: Env) -> None:
    assert not e.converted.exists()
    assert not list(e.converted.parent.glob(f".{e.converted.name}.*"))


def conversion_loads_like_the_source(e: Env) -> None:
    text = tuple(TEXT.get(e.preset, "fasttext").split(","))
    src = load_gzsl_benchmark(e.root, "UCF", e.fdir, "cls", text=text)
    out = load_gzsl_benchmark(e.out, "UCF", e.fdir, "cls", text=text)
    for stage, fs in src.splits.items():
        np.testing.assert_array_equal(np.asarray(out.splits[stage].audio), np.asarray(fs.audio))
    np.testing.assert_array_equal(out.class_embeddings, src.class_embeddings)


def no_temp_folders(e: Env) -> None:
    assert not list(e.converted.parent.glob(f".{e.converted.name}.*"))
    conversion_loads_like_the_source(e)


def real_dicts_equal_numpy_load(e: Env) -> None:
    files = sorted((e.shared / "av_gzsl" / "class_embeddings").glob("*.npy"))
    assert len(files) == 3
    for path in files:
        ours = read_embedding_dict(path)  # no trust
        ref = np.load(path, allow_pickle=True).item()
        assert list(ours) == list(ref) and len(ours) in (101, 200, 309)
        for k in ref:
            np.testing.assert_array_equal(ours[k], ref[k])


def generated_dict_read_back(e: Env) -> None:
    ours = read_embedding_dict(e.text_file())
    assert ours.keys() == e.generated.keys()  # type: ignore[attr-defined]
    for k, v in e.generated.items():  # type: ignore[attr-defined]
        np.testing.assert_array_equal(ours[k], v)


#: rows about defects other than trust pass it: their pickles are clean, so it changes nothing
#: now, and before the restricted unpickler it let them reach the code they are about
TRUST = "--trust-pickle"
REFUSED = r"refused to unpickle the global '\w+\.system'"

CASES: tuple[Case, ...] = (
    # --- 13: pickles are read without running code; trust covers only the files the layout reads
    Case(
        "real_embedding_dicts_without_trust",
        "the real class-embedding .npy dicts are read without trust (restricted unpickler)",
        "main_averaged",
        nothing,
        (
            Step(
                lambda e: [
                    "data",
                    "synth",
                    str(e.out),
                    "--preset",
                    "main_averaged",
                    "--size",
                    "0.01",
                    "--class-split",
                    str(e.shared / "av_gzsl" / "UCF" / "class-split"),
                    "--embeddings",
                    str(
                        e.shared / "av_gzsl" / "class_embeddings" / "word_embeddings_ucf_normed.npy"
                    ),
                ],
                0,
                r"wrote .*main_features",
            ),
        ),
        real_dicts_equal_numpy_load,
        needs_shared=True,
    ),
    Case(
        "generated_embedding_dict_without_trust",
        "a generated pickled class-embedding dict is read without trust, values unchanged",
        "main_averaged",
        generated_embedding_dict,
        (Step(inspect(), 0, r"text/word_embeddings_ucf_normed\.npy: 300-d, 101 entries"),),
        generated_dict_read_back,
    ),
    Case(
        "hostile_embedding_dict",
        "a class-embedding .npy with an os.system payload is refused; the payload never runs",
        "main_averaged",
        hostile_embedding_dict,
        (Step(inspect(), 2, rf"word_embeddings_ucf_normed\.npy: {REFUSED}"),),
    ),
    Case(
        "hostile_class_pickle",
        "a per-class feature pickle with an os.system payload is refused; the payload never runs",
        "clipclap",
        dump_class_pickle(hostile_class_pickle, i=3),
        (Step(inspect(), 2, rf"\.pkl: {REFUSED}"), Step(convert(), 2, REFUSED)),
        no_conversion,
    ),
    Case(
        "stray_pickles",
        "a stray .pkl in an h5 tree, or a stray .npy in text/, is never opened, even with trust",
        "main_averaged",
        stray_hostile_pickles,
        (
            Step(inspect(TRUST), 0, r"\(released, averaged\)"),
            Step(convert(TRUST, "--split", "cls"), 0, "converted tree at"),
        ),
    ),
    Case(
        "stray_pickle_in_pkl_tree",
        "a .pkl that is not a class file is reported, never opened, even with trust",
        "clipclap",
        stray_hostile_pickle_in_pkl_tree,
        (Step(convert(TRUST), 2, r"00_stray\.pkl: file stem '00_stray' is not a class"),),
    ),
    Case(
        "vector_pickles_without_trust",
        "ClipClap per-video vector pickles convert and load without trust",
        "clipclap",
        nothing,
        (Step(convert("--split", "cls"), 0, "converted tree at"),),
        conversion_loads_like_the_source,
    ),
    Case(
        "every_pickle_protocol",
        "class pickles of protocols 0-5 (numpy 2 names, numpy scalars) are read without trust",
        "clipclap",
        every_pickle_protocol,
        (Step(inspect(), 0, r"\(released, vector\)"),),
    ),
    Case(
        "temporal_pickles_without_trust",
        "TCaF temporal pickles are read without trust",
        "cls_temporal",
        nothing,
        (Step(inspect(), 0, r"\(released, temporal\)"),),
    ),
    Case(
        "pickle_beyond_allow_list_needs_trust",
        "a pickle naming a global outside the allow-list is read only with --trust-pickle",
        "clipclap",
        ordered_dict_class_pickle,
        (
            Step(
                inspect(),
                2,
                r"refused to unpickle the global 'collections\.OrderedDict'.*--trust-pickle",
            ),
            Step(inspect(TRUST), 0, r"\(released, vector\)"),
        ),
    ),
    # --- 15: convert never reports success over a failed or partial conversion
    Case(
        "convert_split_fails_twice",
        "convert --split that fails fails again when rerun, and leaves no output",
        "clipclap",
        remove_class_files,
        (
            Step(
                convert(TRUST, "--split", "cls"),
                2,
                r"class '\w+' of cls_split/stage_1_train\.txt has no feature files",
            ),
            Step(convert(TRUST, "--split", "cls"), 2, r"has no feature files"),
        ),
        no_conversion,
    ),
    Case(
        "convert_rerun_rechecks_split",
        "a rerun with --split checks that split on the completed conversion",
        "clipclap",
        remove_class_files,
        (
            Step(convert(TRUST), 0, "converted tree at"),
            Step(
                convert(TRUST, "--split", "cls"),
                2,
                r"split 'cls' does not load from the converted tree",
            ),
        ),
    ),
    Case(
        "convert_damaged_output_redone",
        "a damaged conversion is reported by inspect and redone by a rerun",
        "clipclap",
        nothing,
        (
            Step(convert(TRUST), 0, "converted tree at"),
            Step(
                inspect_out,
                2,
                r"incomplete conversion \(stage_1_train/audio\.npy has \d+ bytes",
                before=truncate_converted,
            ),
            Step(convert(TRUST), 0, "converted tree at"),
        ),
        conversion_loads_like_the_source,
    ),
    Case(
        "convert_after_kill",
        "the temporary folder of a killed conversion is removed by the next run",
        "clipclap",
        nothing,
        (Step(convert(TRUST), 0, "converted tree at", before=leftover_temp_folder),),
        no_temp_folders,
    ),
    # --- 17: messages, not tracebacks
    Case(
        "features_not_a_list",
        "a class pickle whose 'features' is not iterable",
        "clipclap",
        dump_class_pickle({"features": 5, "video_names": [b"v"], "fps": [25]}),
        (
            Step(
                inspect(TRUST),
                2,
                r"\.pkl: 'features' must be a list with one item per video, got int",
            ),
        ),
    ),
    Case(
        "video_names_not_a_list",
        "a class pickle whose 'video_names' is None",
        "clipclap",
        dump_class_pickle({"features": [np.zeros(1024, np.float32)], "video_names": None}),
        (Step(inspect(TRUST), 2, r"\.pkl: 'video_names' must be a list .*got NoneType"),),
    ),
    Case(
        "ragged_feature_item",
        "a class pickle whose feature item is a ragged nested list",
        "clipclap",
        dump_class_pickle({"features": [[[1.0, 2.0], [3.0]]], "video_names": [b"v"]}),
        (Step(inspect(TRUST), 2, r"\.pkl: item 0 of 'features' is not an array"),),
    ),
    Case(
        "embedding_entry_not_a_vector",
        "a class-embedding dict entry that is a string",
        "main_averaged",
        embedding_entry_not_a_vector,
        (
            Step(
                inspect(TRUST),
                2,
                r"word_embeddings_ucf_normed\.npy: the entry '.+' is not a numeric vector",
            ),
        ),
    ),
    # --- 19: inspect measures, and exits 2 on unusable data
    Case(
        "inspect_wrong_dimension",
        "inspect prints the measured dimension and exits 2 on a 511-d audio file",
        "main_averaged",
        h5_edit(lambda d, ids: (d[:, :511], ids), "audio"),
        (
            Step(
                inspect(TRUST),
                2,
                r"audio/stage_1_train: 1 file\(s\) with 511-d features, but selavi audio features are 512-d",
                shows=r"stage_1_train .* 511,512 +512 ",
            ),
        ),
    ),
    Case(
        "inspect_nan",
        "inspect counts NaN values and exits 2",
        "main_averaged",
        h5_edit(with_nans, "video"),
        (Step(inspect(TRUST), 2, r"video/stage_1_train: 3 NaN/inf value\(s\) in 1 file\(s\)"),),
    ),
    Case(
        "inspect_audio_video_mismatch",
        "inspect exits 2 when audio and video files list different videos",
        "main_averaged",
        h5_edit(lambda d, ids: (d[:-1], ids[:-1]), "video"),
        (Step(inspect(TRUST), 2, r"list different videos \((\d+) vs (\d+) videos"),),
    ),
    Case(
        "inspect_missing_embedding",
        "inspect exits 2 when a class of a split has no class embedding",
        "main_averaged",
        drop_embedding,
        (
            Step(
                inspect(TRUST),
                2,
                r"1 class\(es\) of the splits without a fasttext embedding: class '\w+'",
            ),
        ),
    ),
    Case(
        "inspect_converted_nan",
        "inspect scans a converted tree's memory-mapped blocks for NaN",
        "main_averaged",
        nothing,
        (
            Step(convert(TRUST), 0, "converted tree at"),
            Step(
                inspect_out,
                2,
                r"stage_2_test_seen/video\.npy: 1 NaN/inf value",
                before=nan_in_converted,
            ),
        ),
    ),
    Case(
        "inspect_clean",
        "inspect of clean data exits 0 with the measured dims",
        "cls_temporal",
        nothing,
        (Step(inspect(TRUST), 0, r"stage_1_train +\d+ +\d+ +[\d.]+ +[\d.]+ +128 +4096 +0"),),
    ),
    # --- 19: hints name the flag that exists
    Case(
        "data_root_hint",
        "the data-root hints name --data-root, the flag reproduce accepts",
        "clipclap",
        nothing,
        (
            Step(convert(TRUST), 0, r"--data-root \S+ \(lowshot reproduce\)"),
            Step(
                lambda e: ["reproduce", "clipclap.ucf", "--run-dir", str(e.out.parent / "run")],
                2,
                r"needs a data root: pass --data-root DIR, set data.root in the config, or set LOWSHOT_DATA_ROOT",
            ),
        ),
    ),
)


@pytest.fixture(scope="module")
def synth_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    roots = {}
    for preset, size in SIZES.items():
        roots[preset] = tmp_path_factory.mktemp(f"survive_{preset}")
        write_synthetic(roots[preset], preset=preset, dataset="UCF", seed=0, size=size)
    return roots


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lowshot_survives(
    case: Case,
    synth_roots: dict[str, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOWSHOT_DATA_ROOT", raising=False)
    shared = request.getfixturevalue("shared_data") if case.needs_shared else None
    root = tmp_path / "src"
    shutil.copytree(synth_roots[case.preset], root)
    env = Env(root, tmp_path / "out", case.preset, tmp_path / "payload_ran", shared)
    case.damage(env)
    for n, step in enumerate(case.steps):
        if step.before:
            step.before(env)
        code = main(step.argv(env))
        out, err = capsys.readouterr()
        assert not env.marker.exists(), f"step {n}: a pickle payload ran"
        assert code == step.code, f"step {n}: exit {code}\nstdout:\n{out}\nstderr:\n{err}"
        assert re.search(step.says, err if code else out), f"step {n}:\n{out}\n{err}"
        if step.shows:
            assert re.search(step.shows, out), f"step {n}:\n{out}"
        if code:
            assert all(line.startswith("lowshot: ") for line in err.splitlines()), err
    if case.after:
        case.after(env)
