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
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lowshot.cli.main import build_parser, main
from lowshot.config.paper import load_paper_config

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
    assert len(left) <= 4, left  # latest + previous of each stage, nothing else


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
    return json.loads((run / "result.json").read_text())["per_seed"]["42"]["epochs"]["map_w"]


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
    ("result-is-a-list", _with_result("[1, 2]"), [], r"result\.json is not the result of a GZSL run"),
    ("result-of-another-recipe", _with_result('{"metrics": {"acc_a": 0.5}}'), [], r"not the result of a GZSL run"),
    ("non-numeric-metric", _with_result('{"metrics": {"S": {"mean": "high", "std": 0}, "U": {}, "HM": {}, '
                                        '"ZSL": {}}}'), [], r"not the result of a GZSL run"),
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
    for r in result["runs"]:
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
