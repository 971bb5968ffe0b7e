"""What lowshot's data layer survives: one row of ``CASES`` per thing that goes wrong.

Each row starts from a small synthetic tree in a released layout (a private copy), breaks
it (``damage``), runs ``lowshot`` commands (``steps``: exit status and the line it must
print; exit 2 means one ``lowshot:`` line per problem and never a traceback), then checks
what must hold afterwards (``after``). Every row also checks that no pickle payload ran.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lowshot.cli.main import main
from lowshot.data.av.embeddings import read_embedding_dict, write_embedding_dict
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.data.av.h5 import read_h5_class_file, write_h5_class_file
from lowshot.data.av.synth import PRESETS, write_synthetic

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
                r"no data root given: pass it \(lowshot reproduce: --data-root DIR",
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
