"""Reader of the released ``<Dataset>/class-split/`` tree (reference §2.1, §2.2, §2.4).

* ``all_class.txt``: original class names. The class index (``label_code``) is the position
  in the **code-point** sort, so uppercase sorts first (UCF ``HammerThrow`` < ``Hammering``).
* ``<ds>_w2v_class_names.csv`` (``original,manual[,category]``) and, for ClipClap UCF,
  ``ucf_clip_class_names.csv`` (``original,manual,clip_class_name``): the keys of the
  class-embedding dictionaries.
* ``{main_split,cls_split}/stage_*.txt``: class lists of each stage.

Names are matched case-insensitively everywhere (UCF files say ``HandStandPushups`` for
the class ``HandstandPushups``); two classes that differ only by case are an error.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import SPLITS, AVDatasetSpec
from lowshot.data.av.featureset import CLASS_LISTS
from lowshot.errors import DataError


def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file (missing file -> DataError)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


class ClassIndex:
    """Code-point sorted class names with case-insensitive lookup.

    Args:
        names: original class names (any order, no duplicates).
        source: file the names come from (for error messages).
    """

    def __init__(
        self, names: list[str] | tuple[str, ...], source: str | Path = "all_class.txt"
    ) -> None:
        self.names: tuple[str, ...] = tuple(sorted(names))
        self.source = str(source)
        self._lower: dict[str, int] = {}
        for i, name in enumerate(self.names):
            key = name.lower()
            if key in self._lower:
                raise DataError(
                    f"{source}: classes '{self.names[self._lower[key]]}' and '{name}' differ only by case"
                )
            self._lower[key] = i

    def __len__(self) -> int:
        return len(self.names)

    def find(self, name: str) -> int | None:
        """Index of ``name`` (case-insensitive), or None."""
        return self._lower.get(name.strip().lower())

    def index(self, name: str, where: str | Path) -> int:
        """Index of ``name``; DataError naming ``where`` if it is not a known class."""
        i = self.find(name)
        if i is None:
            raise DataError(f"{where}: '{name}' is not a class of {self.source}")
        return i


@dataclass(frozen=True)
class ClassSplit:
    """Everything in one ``class-split/`` folder.

    Attributes:
        root: the folder.
        classes: class index over ``all_class.txt``.
        manual: ``[C]`` manual (fastText/ClipClap key) name per class, None where the CSV has no row.
        clip: ``[C]`` ``clip_class_name`` per class (UCF ClipClap CSV) or None if absent.
        category: ``[C]`` VGGSound category per class, or None.
        lists: split (``main``/``cls``) -> class-list name (:data:`CLASS_LISTS`) -> sorted
            int64 class indices.
        mapping_file: path of the ``original,manual`` CSV.
        clip_file: path of the clip CSV, or None.
    """

    root: Path
    classes: ClassIndex
    manual: tuple[str | None, ...]
    clip: tuple[str | None, ...] | None
    category: tuple[str | None, ...] | None
    lists: dict[str, dict[str, np.ndarray]]
    mapping_file: Path
    clip_file: Path | None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The ``all_class.txt`` names, in class-index order."""
        return self.classes.names

    def split_lists(self, split: str) -> dict[str, np.ndarray]:
        """Class-list name -> sorted int64 class indices of ``split`` (``main`` or ``cls``).

        Raises:
            DataError: the folder has no lists for ``split``.
        """
        if split not in self.lists:
            raise DataError(
                f"{self.root}: no class lists for split '{split}' (have {sorted(self.lists)})"
            )
        return self.lists[split]


def read_name_csv(path: Path, classes: ClassIndex, column: str) -> tuple[str | None, ...]:
    """Column ``column`` of a name-mapping CSV, aligned with ``classes`` via ``original``.

    Returns:
        ``[C]`` value per class index (None for classes without a row).
    """
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if rows and ("original" not in rows[0] or column not in rows[0]):
        raise DataError(f"{path}: expected columns 'original' and '{column}', got {list(rows[0])}")
    out: list[str | None] = [None] * len(classes)
    for row in rows:
        i = classes.index(row["original"], path)
        out[i] = row[column].strip()
    return tuple(out)


def read_class_list(path: Path, classes: ClassIndex) -> np.ndarray:
    """Sorted int64 class indices named in a ``stage_*.txt`` file."""
    idx = sorted({classes.index(name, path) for name in read_lines(path)})
    return np.asarray(idx, dtype=np.int64)


def load_class_split(root: Path, spec: AVDatasetSpec) -> ClassSplit:
    """Read a ``class-split/`` folder.

    Args:
        root: the ``<Dataset>/class-split`` folder.
        spec: dataset facts (names of the CSV files).

    Returns:
        The class index, name mappings and every split's class lists that exist on disk.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"missing class-split folder {root}")
    classes = ClassIndex(read_lines(root / "all_class.txt"), root / "all_class.txt")
    mapping_file = root / spec.mapping_csv
    manual = read_name_csv(mapping_file, classes, "manual")
    category = read_name_csv(mapping_file, classes, "category") if spec.name == "VGGSound" else None
    clip_file = root / spec.clip_csv if spec.clip_csv and (root / spec.clip_csv).is_file() else None
    clip = read_name_csv(clip_file, classes, "clip_class_name") if clip_file else None
    lists: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLITS:
        folder = root / f"{split}_split"
        if folder.is_dir():
            lists[split] = {
                name: read_class_list(folder / f"{name}.txt", classes) for name in CLASS_LISTS
            }
    if not lists:
        raise DataError(f"{root}: neither main_split/ nor cls_split/ found")
    return ClassSplit(root, classes, manual, clip, category, lists, mapping_file, clip_file)
