"""NUS-WIDE (Chua, Tang, Hong, Li, Luo, Zheng, CIVR 2009): 269,648 Flickr images, 81 concepts, tags.

Read as distributed by NUS (https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/
NUS-WIDE.html). Expected layout under ``root``::

    ImageList/Imagelist.txt                    one Windows path per image, e.g.
                                               C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg
    ImageList/TrainImagelist.txt, TestImagelist.txt   optional: the official train/test sides
    Flickr/<category>/<file>.jpg               the images (``image_dir``; default ``<root>/Flickr``)
    Groundtruth/AllLabels/Labels_<concept>.txt 81 files, one 0/1 line per image (Imagelist order)
    ConceptsList/Concepts81.txt                optional: the concept order (else sorted file names)
    NUS_WID_Tags/All_Tags.txt                  optional: '<photo id> tag tag ...' per image
    NUS_WID_Tags/Final_Tag_List.txt            optional: the 5,018-tag list All_Tags is cut to
    NUS_WID_Tags/TagList1k.txt, AllTags1k.txt  optional: the 1k-tag list and 0/1 matrix
    Low_Level_Features/BoW_int.dat             optional: 500-d SIFT bag of words per image

Windows paths are mapped onto ``image_dir``: the part after the ``Flickr`` folder
(``actor/0001_2124494179.jpg``), or the last two components when there is no ``Flickr`` folder.

Or the hashing list-file form: ``<root>/train.txt`` and ``<root>/test.txt`` with lines
``path 0 1 0 ...`` (21- or 81-label vectors, paths relative to ``root``), read with
:class:`~hashbench.data.image_list.ImageListDataModule` (no tags).

Missing images (NUS-WIDE downloads are routinely incomplete) are counted, reported once
(:class:`~hashbench.data.image_list.MissingImagesWarning`) and left out before the split is drawn;
so are images that do not decode (:mod:`hashbench.data.integrity`: checked once, cached in
``<root>/splits/image-check.json``).
Images carrying none of the 81 concepts are left out too (``drop_unlabelled``), counted in
``arrays.extra``. Presets ``nus-wide-21`` (21 most frequent concepts, 100/500 per concept) and
``nus-wide-81`` (5,000 / 10,000 random) of PROTOCOL.md.

Tags (``tags``): ``all`` = ``All_Tags.txt`` (cut to ``Final_Tag_List.txt`` when present), ``1k`` =
the ``AllTags1k.txt`` matrix with ``TagList1k.txt``, ``none``. ``tag_source`` is ``"user"``.
``bow: true`` loads ``BoW_int.dat`` into ``arrays.extra["bow"]`` (``float32 (n, 500)``), the visual
features WSDH's tag cleaning uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from hashbench.data.base import (
    CorruptDatasetError,
    DatasetArrays,
    DatasetNotFoundError,
    HashDataModule,
)
from hashbench.data.image_list import (
    SHOWN_MISSING,
    ImageListDataModule,
    MissingImagesWarning,
    _is_usable_file,
)
from hashbench.data.integrity import drop_unreadable

IMAGE_LIST = "ImageList/Imagelist.txt"
LABEL_DIR = "Groundtruth/AllLabels"
CONCEPTS = "ConceptsList/Concepts81.txt"
ALL_TAGS = "NUS_WID_Tags/All_Tags.txt"
TAG_LIST_5K = "NUS_WID_Tags/Final_Tag_List.txt"
TAGS_1K = "NUS_WID_Tags/AllTags1k.txt"
TAG_LIST_1K = "NUS_WID_Tags/TagList1k.txt"
BOW = "Low_Level_Features/BoW_int.dat"

LAYOUT = (
    "Expected NUS-WIDE as distributed, under {root}:\n"
    "  ImageList/Imagelist.txt                      one image path per line (Windows paths mapped)\n"
    "  Flickr/<category>/<image>.jpg                the images (or set image_dir)\n"
    "  Groundtruth/AllLabels/Labels_<concept>.txt   81 files, one 0/1 line per image\n"
    "  NUS_WID_Tags/All_Tags.txt, TagList1k.txt, AllTags1k.txt   user tags (optional; wsdh)\n"
    "  Low_Level_Features/BoW_int.dat               optional 500-d SIFT bag of words\n"
    "or the hashing list-file form: {root}/train.txt and {root}/test.txt with lines "
    "'path 0 1 0 ...' (21- or 81-concept label vectors), images under {root}.\n"
    "NUS-WIDE is distributed by NUS: "
    "https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html "
    "(see README.md, 'NUS-WIDE')."
)


def map_windows_path(path: str) -> str:
    """An ``Imagelist.txt`` entry as a POSIX path relative to the image folder.

    ``C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg`` -> ``actor/0001_2124494179.jpg``: the part
    after the ``Flickr`` component (case-insensitive), else the last two components.
    """
    parts = [p for p in re.split(r"[\\/]+", path.strip()) if p]
    lower = [p.lower() for p in parts]
    if "flickr" in lower:
        k = len(lower) - 1 - lower[::-1].index("flickr")
        rest = parts[k + 1 :]
        if rest:
            return "/".join(rest)
    return "/".join(parts[-2:])


def _read_lines(path: Path) -> list[str]:
    try:
        return [
            ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
        ]
    except OSError as e:
        raise DatasetNotFoundError(f"{path} cannot be read ({e})") from e


def read_label_column(path: Path, n: int) -> np.ndarray:
    """One ``Labels_<concept>.txt``: ``n`` lines of 0/1 -> ``uint8 (n,)``."""
    values = path.read_bytes().split()
    if len(values) != n:
        raise CorruptDatasetError(
            f"{path} has {len(values)} values but {IMAGE_LIST} lists {n} images; the label files "
            "must have one 0/1 line per image of Imagelist.txt"
        )
    col = np.array(values, dtype=np.int64)
    if not np.isin(col, (0, 1)).all():
        raise CorruptDatasetError(f"{path}: values must be 0 or 1")
    return col.astype(np.uint8)


def read_concepts(root: Path) -> tuple[list[str], list[Path]]:
    """Concept names and their label files (order: ``Concepts81.txt``, else sorted names)."""
    folder = root / LABEL_DIR
    files = {p.name[len("Labels_") : -len(".txt")]: p for p in folder.glob("Labels_*.txt")}
    if not files:
        raise DatasetNotFoundError(
            f"no Labels_<concept>.txt files in {folder}.\n" + LAYOUT.format(root=root)
        )
    order_file = root / CONCEPTS
    if order_file.is_file():
        names = [c for c in _read_lines(order_file) if c]
        lost = [c for c in names if c not in files]
        if lost:
            raise DatasetNotFoundError(
                f"{order_file} names {len(lost)} concepts without a label file in {folder} "
                f"(e.g. Labels_{lost[0]}.txt)"
            )
    else:
        names = sorted(files)
    return names, [files[c] for c in names]


def read_all_tags(root: Path, n: int) -> list[list[str]]:
    """``All_Tags.txt``: ``'<photo id> tag tag ...'`` per image, cut to ``Final_Tag_List.txt``."""
    lines = _read_lines(root / ALL_TAGS)
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) != n:
        raise CorruptDatasetError(
            f"{root / ALL_TAGS} has {len(lines)} lines but {root / IMAGE_LIST} lists {n} images; "
            "the tag file must have one '<photo id> tag tag ...' line per image of Imagelist.txt, "
            "in its order. Replace it with the All_Tags.txt of the same NUS-WIDE release, or read "
            "the data without it: --data.init_args.tags 1k (AllTags1k.txt) or none"
        )
    allowed = None
    if (root / TAG_LIST_5K).is_file():
        allowed = {t.lower() for t in _read_lines(root / TAG_LIST_5K) if t}
    out = []
    for line in lines:
        tags = [t.lower() for t in line.split()[1:]]
        out.append([t for t in tags if allowed is None or t in allowed])
    return out


def read_tags_1k(root: Path, n: int) -> list[list[str]]:
    """``AllTags1k.txt`` (``n x 1000`` 0/1) with ``TagList1k.txt`` -> tag lists."""
    vocab = [t for t in _read_lines(root / TAG_LIST_1K) if t]
    flat = np.array((root / TAGS_1K).read_bytes().split(), dtype=np.int64)
    if flat.size != n * len(vocab):
        raise CorruptDatasetError(
            f"{root / TAGS_1K} has {flat.size} values, expected {n} images x {len(vocab)} tags "
            f"of {root / TAG_LIST_1K}"
        )
    m = flat.reshape(n, len(vocab))
    return [[vocab[k] for k in np.flatnonzero(row)] for row in m]


def read_bow(root: Path, n: int) -> np.ndarray:
    """``BoW_int.dat``: ``n`` lines of 500 counts -> ``float32 (n, 500)``."""
    flat = np.array((root / BOW).read_bytes().split(), dtype=np.float32)
    if flat.size % n:
        raise CorruptDatasetError(f"{root / BOW} has {flat.size} values for {n} images")
    return flat.reshape(n, -1)


def _official_sides(root: Path, rel: list[str]) -> np.ndarray:
    """``train`` / ``test`` per image from ``TrainImagelist.txt`` / ``TestImagelist.txt``."""
    source = np.full(len(rel), "train", dtype=object)
    test_file = root / "ImageList/TestImagelist.txt"
    if test_file.is_file():
        test = {map_windows_path(p) for p in _read_lines(test_file) if p}
        source[[i for i, r in enumerate(rel) if r in test]] = "test"
    return source.astype(str)


class NUSWIDEDataModule(HashDataModule):
    """NUS-WIDE from its distributed files (or the hashing list-file form).

    Args:
        root: the dataset folder (layout in the module docstring).
        image_dir: the image folder ``Imagelist.txt`` is mapped onto; ``None`` = ``<root>/Flickr``.
        protocol: ``nus-wide-21`` (default) or ``nus-wide-81`` (or any preset).
        seed: split seed.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        num_workers: DataLoader workers (JPEG decoding is the bottleneck: use several).
        augment: training augmentation.
        image_size: side images are resized to.
        tags: ``all`` (All_Tags.txt), ``1k`` (AllTags1k.txt) or ``none``; a missing tag file is
            an error only when asked for explicitly (``all`` falls back to ``1k``, then none).
        bow: load the 500-d BoW features into ``arrays.extra["bow"]``.
        drop_unlabelled: leave out images with none of the 81 concepts.
    """

    name: ClassVar[str] = "nus-wide"
    default_protocol: ClassVar[str] = "nus-wide-21"

    def __init__(
        self,
        root: str,
        image_dir: str | None = None,
        protocol: str | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        augment: Literal["none", "crop", "flip_crop"] = "none",
        image_size: int = 224,
        tags: Literal["all", "1k", "none"] = "all",
        bow: bool = False,
        drop_unlabelled: bool = True,
    ) -> None:
        super().__init__(
            root, protocol, seed, batch_size, eval_batch_size, num_workers, augment, image_size
        )
        if tags not in ("all", "1k", "none"):
            raise ValueError(f"tags must be 'all', '1k' or 'none', got {tags!r}")
        self.image_dir = Path(image_dir).expanduser() if image_dir else self.root / "Flickr"
        self.tag_choice = tags
        self.bow = bow
        self.drop_unlabelled = drop_unlabelled

    def load(self) -> DatasetArrays:
        if (self.root / IMAGE_LIST).is_file():
            return self._load_distributed()
        if (self.root / "train.txt").is_file():
            return self._load_lists()
        raise DatasetNotFoundError(
            f"NUS-WIDE not found: neither {self.root / IMAGE_LIST} nor {self.root / 'train.txt'} "
            "exists.\n" + LAYOUT.format(root=self.root)
        )

    def _load_lists(self) -> DatasetArrays:
        test = "test.txt" if (self.root / "test.txt").is_file() else None
        lists = ImageListDataModule(
            str(self.root), train_list="train.txt", test_list=test, image_size=self.image_size
        )
        arrays = lists.load()
        c = arrays.labels.shape[1]
        arrays.class_names = [str(i) for i in range(c)]
        arrays.extra["form"] = "lists"
        return arrays

    def _tags(self, n: int) -> list[list[str]] | None:
        root = self.root
        if self.tag_choice == "none":
            return None
        if self.tag_choice == "all" and (root / ALL_TAGS).is_file():
            return read_all_tags(root, n)
        if (root / TAGS_1K).is_file() and (root / TAG_LIST_1K).is_file():
            return read_tags_1k(root, n)
        if self.tag_choice == "1k":
            raise DatasetNotFoundError(
                f"tags: 1k needs {root / TAGS_1K} and {root / TAG_LIST_1K}.\n"
                + LAYOUT.format(root=root)
            )
        return None

    def _load_distributed(self) -> DatasetArrays:
        root = self.root
        raw = [p for p in _read_lines(root / IMAGE_LIST) if p]
        n = len(raw)
        rel = [map_windows_path(p) for p in raw]
        names, files = read_concepts(root)
        labels = np.stack([read_label_column(f, n) for f in files], axis=1)
        tags = self._tags(n)
        bow = read_bow(root, n) if self.bow else None
        source = _official_sides(root, rel)
        full = [str(self.image_dir / r) for r in rel]
        present = np.fromiter((_is_usable_file(f) for f in full), dtype=bool, count=n)
        if not present.any():
            raise DatasetNotFoundError(
                f"none of the {n} images of {root / IMAGE_LIST} exists under {self.image_dir} "
                f"(first: {rel[0]}); set image_dir to the folder holding <category>/<image>.jpg.\n"
                + LAYOUT.format(root=root)
            )
        missing = [rel[i] for i in np.flatnonzero(~present)]
        if missing:
            shown = ", ".join(missing[:SHOWN_MISSING]) + (
                ", ..." if len(missing) > SHOWN_MISSING else ""
            )
            rank_zero_warn(
                f"NUS-WIDE: {len(missing)} of {n} images listed in {root / IMAGE_LIST} are missing "
                f"or empty under {self.image_dir} and are left out ({shown}).",
                category=MissingImagesWarning,
            )
        on_disk = np.flatnonzero(present)
        where = f"NUS-WIDE under {self.image_dir}"
        readable, _ = drop_unreadable(
            [full[i] for i in on_disk], self.split_dir, where, [rel[i] for i in on_disk]
        )
        corrupt = [rel[i] for i in on_disk[~readable]]
        present[on_disk[~readable]] = False
        labelled = labels.any(axis=1) if self.drop_unlabelled else np.ones(n, dtype=bool)
        keep = np.flatnonzero(present & labelled)
        return DatasetArrays(
            images=[full[i] for i in keep],
            labels=labels[keep],
            source=source[keep],
            class_names=names,
            tags=None if tags is None else [tags[i] for i in keep],
            tag_source=None if tags is None else "user",
            extra={
                "form": "distributed",
                "listed": n,
                "missing": missing,
                "corrupt": corrupt,
                "unlabelled_dropped": int((present & ~labelled).sum()),
                **({"bow": bow[keep]} if bow is not None else {}),
            },
        )
