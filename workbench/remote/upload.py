"""Upload a folder of microscope images to a factory datasite as one dataset.

Every file is read and checked (``workbench.imaging.io``) before it is sent: a bad
file stops the upload with its name (and whatever was stored is deleted again), or is
skipped with ``skip_bad=True``. Large folders become several assets (batches of at
most 20 images or about 100 MB), because syft loads a whole asset on every run; the
folder is read and sent one batch at a time, the next batch read while the current
one is sent. The dataset only appears on the datasite once every batch is stored.

With a journal (``workbench datasite upload`` keeps one per dataset in the factory's
state folder, ``uploads/<dataset>.json``) an upload that is cut off keeps its stored
batches, invisible to researchers, and the same upload run again sends only what is
missing. On the factory's own machine the batches are written straight into the
datasite's blob folder (see :func:`upload_folder`).

Each asset holds an :data:`image batch <ImageBatch>` dict::

    {"images": [uint8 arrays as stored in the files], "files": [file names],
     "camera": "legacy", "pixel_size_um": 2.0}

and its mock is the same dict built from 2 small synthetic images of the same
camera profile and pixel size (public parameters only, never the private pixels).

Examples
--------
>>> batch_slices([30_000_000] * 5, max_images=20, max_bytes=100_000_000)
[slice(0, 3, None), slice(3, 5, None)]
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.remote._syft_calls import quiet, reason

ImageBatch = dict[str, Any]
MAX_BATCH_IMAGES = 20
MAX_BATCH_BYTES = 100_000_000
MOCK_SHAPE = (512, 640)
MOCK_IMAGES = 2
UPLOAD_JOURNALS = "uploads"  # folder of the upload journals in a factory's state folder


@dataclass
class ImageFolder:
    """Images read and checked from one folder.

    Attributes
    ----------
    images : list of ndarray
        Pixel arrays as stored in the files (gray (H, W) or colour (H, W, C)).
    files : list of str
        File names, in the same order.
    skipped : list of str
        ``"name: reason"`` for every file left out with ``skip_bad``.
    """

    images: list[np.ndarray] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Total size of the pixel arrays in bytes."""
        return sum(image.nbytes for image in self.images)


@dataclass(frozen=True)
class UploadSummary:
    """What :func:`upload_folder` stored.

    ``images``, ``assets`` and ``megabytes`` count the whole dataset; ``sent_assets``
    and ``megabytes_sent`` what this call sent (less, when it resumed an upload that
    was cut off; zero when the folder was uploaded already).
    """

    dataset: str
    images: int
    assets: int
    megabytes: float
    skipped: list[str]
    seconds: float
    sent_assets: int = 0
    megabytes_sent: float = 0.0

    @property
    def megabytes_per_second(self) -> float:
        """Pixel MB sent per second of the whole call (reading the files included)."""
        return self.megabytes_sent / self.seconds if self.seconds > 0 else 0.0


def read_image_folder(
    folder: str | Path, *, skip_bad: bool = False, progress: bool = False
) -> ImageFolder:
    """Read and check every image file directly inside `folder`.

    Parameters
    ----------
    folder : str or Path
        Folder of PNG, TIFF, JPEG or BMP files.
    skip_bad : bool
        Leave unreadable files out (listed in ``skipped``) instead of refusing.
    progress : bool
        Show a progress bar on stderr.

    Raises
    ------
    WorkbenchError
        If the folder holds no image, or a file is bad and `skip_bad` is False (the
        message names the file).

    Examples
    --------
    >>> import tempfile, cv2, numpy as np, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(folder / "a.png"), np.zeros((80, 90), np.uint8))
    >>> _ = (folder / "b.png").write_bytes(b"not a png")
    >>> read = read_image_folder(folder, skip_bad=True)
    >>> read.files, len(read.skipped)
    (['a.png'], 1)
    """
    from workbench.imaging.io import list_images, load_image

    paths = list_images(folder)
    if not paths:
        raise WorkbenchError(f"{folder}: no image files (PNG, TIFF, JPEG, BMP) in this folder")
    read = ImageFolder()
    for path in tqdm(paths, desc="checking images", unit="image", disable=not progress):
        try:
            loaded = load_image(path)
        except WorkbenchError as error:
            if not skip_bad:
                raise WorkbenchError(f"{error}; nothing was uploaded (use --skip-bad)") from None
            read.skipped.append(str(error))
            continue
        read.images.append(loaded.original)
        read.files.append(path.name)
    if not read.images:
        raise WorkbenchError(f"{folder}: none of the {len(paths)} image files could be read")
    return read


def batch_slices(
    sizes_bytes: list[int],
    max_images: int = MAX_BATCH_IMAGES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[slice]:
    """Split consecutive items into batches of at most `max_images` and about `max_bytes`.

    A single item larger than `max_bytes` gets a batch of its own.

    Examples
    --------
    >>> batch_slices([1, 1, 1], max_images=2)
    [slice(0, 2, None), slice(2, 3, None)]
    """
    slices, start, total = [], 0, 0
    for index, size in enumerate(sizes_bytes):
        if index > start and (index - start >= max_images or total + size > max_bytes):
            slices.append(slice(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes_bytes):
        slices.append(slice(start, len(sizes_bytes)))
    return slices


def image_batch(
    images: list[np.ndarray],
    files: list[str],
    camera: str,
    pixel_size_um: float,
    labels: list[list[dict] | None] | None = None,
) -> ImageBatch:
    """The dict one asset holds (private data and mock alike).

    With `labels` (per image, its marks as truth-format object records, or None for
    an image nobody labelled) the batch also serves fine-tuning
    (:func:`workbench.remote.counting.finetune_counter`).

    Examples
    --------
    >>> sorted(image_batch([], [], "legacy", 2.0))
    ['camera', 'files', 'images', 'pixel_size_um']
    >>> image_batch([np.zeros((2, 2))], ["a.png"], "legacy", 2.0, labels=[None])["labels"]
    [None]
    """
    batch = {
        "images": list(images),
        "files": list(files),
        "camera": camera,
        "pixel_size_um": float(pixel_size_um),
    }
    if labels is not None:
        batch["labels"] = [None if marks is None else list(marks) for marks in labels]
    return batch


def mock_batch(
    camera: str,
    pixel_size_um: float | None = None,
    *,
    n_images: int = MOCK_IMAGES,
    shape: tuple[int, int] = MOCK_SHAPE,
    seed: int = 0,
    labelled: bool = False,
) -> ImageBatch:
    """Small synthetic images of `camera` at the same pixel size: a mock asset.

    Made from public parameters only (camera profile, pixel size, seed). `labelled`
    adds ``labels``: each image's synthetic truth as marks (the mock of a labelled
    batch).

    Examples
    --------
    >>> mock = mock_batch("legacy", shape=(128, 160))
    >>> len(mock["images"]), mock["images"][0].shape, mock["pixel_size_um"]
    (2, (128, 160), 2.0)
    """
    from workbench.imaging.annotations import marks_from_truth
    from workbench.synth import synthesize

    profile = get_camera(camera, pixel_size_um)
    samples = [
        synthesize(camera, seed=seed + i, pixel_size_um=profile.pixel_size_um, shape=shape)
        for i in range(n_images)
    ]
    files = [f"mock-{seed + i:03d}.png" for i in range(n_images)]
    labels = [marks_from_truth(sample.truth) for sample in samples] if labelled else None
    images = [sample.image for sample in samples]
    return image_batch(images, files, camera, profile.pixel_size_um, labels)


def upload_folder(
    admin: Any,
    folder: str | Path,
    name: str,
    camera: str,
    pixel_size_um: float | None = None,
    *,
    skip_bad: bool = False,
    progress: bool = True,
    max_batch_images: int = MAX_BATCH_IMAGES,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    mock_shape: tuple[int, int] = MOCK_SHAPE,
    clock: Callable[[], float] | None = None,
    journal: str | Path | None = None,
    blob_folder: str | Path | None = None,
    labels: str | Path | None = None,
) -> UploadSummary:
    """Read, check and upload the images of `folder` as dataset `name`, batch by batch.

    Files are read in name order, one batch at a time (the next batch is read while
    the current one is sent), so memory holds at most two batches whatever the size
    of the folder. The dataset appears on the datasite only once every batch is
    stored; until then its batches are admin-only objects no researcher can see.

    Parameters
    ----------
    admin : syft DatasiteClient
        A client logged in as the factory's admin (data owner).
    folder : str or Path
        Folder of image files.
    name : str
        Dataset name; must not exist yet on the datasite (unless `journal` says this
        very folder was uploaded as it, then nothing is sent).
    camera : str
        Camera profile of the images (``legacy`` or ``hires``).
    pixel_size_um : float, optional
        Overrides the profile's pixel size.
    skip_bad : bool
        Leave unreadable files out instead of refusing the upload.
    progress : bool
        A progress bar on stderr (images, MB sent, MB/s).
    max_batch_images, max_batch_bytes : int
        Batch limits (one asset per batch).
    mock_shape : (rows, cols)
        Size of the synthetic mock images.
    clock : callable, optional
        Time source for ``seconds`` (defaults to ``time.perf_counter``).
    journal : str or Path, optional
        A JSON file recording each batch once it is stored. An upload cut off (Ctrl-C,
        a killed uploader, a datasite that stopped) keeps its stored batches and the
        journal; the same upload run again sends only the batches that are missing
        (files matched by name, size and modification time). Without a journal, or
        when the datasite refuses a batch, everything stored is deleted again.
    blob_folder : str or Path, optional
        The datasite's blob folder, when this process runs on the factory's machine
        (see :func:`local_blob_folder`): each batch is then serialized once and
        written there, after its blob entry is allocated through the API, instead of
        travelling through syft's API call (four more copies, a signature over the
        whole batch and a deserialization on the server).
    labels : str or Path, optional
        A folder of label files (``<stem>.labels.json``, the annotation widget's): each
        batch then carries its images' marks (``labels``, None for an unlabelled image)
        and its mock the mock images' synthetic truth, for fine-tuning at the factory.

    Returns
    -------
    UploadSummary

    Raises
    ------
    WorkbenchError
        Bad folder or file, a dataset of that name already there, or a failed upload.

    Examples
    --------
    >>> upload_folder(admin, "images/", "line-3-2024-06", "legacy")  # doctest: +SKIP
    UploadSummary(dataset='line-3-2024-06', images=12, assets=1, ...)
    """
    import time

    from workbench.imaging.io import list_images

    clock = clock or time.perf_counter
    started = clock()
    profile = get_camera(camera, pixel_size_um)
    paths = list_images(folder)
    if not paths:
        raise WorkbenchError(f"{folder}: no image files (PNG, TIFF, JPEG, BMP) in this folder")
    marks = _marks_by_image(labels, paths) if labels is not None else None
    record = _Journal.open(journal, admin, name, camera, profile.pixel_size_um, mock_shape)
    if _dataset_exists(admin, name):
        if record is not None and record.complete and record.covers(paths):
            return record.summary(0, clock() - started)
        raise WorkbenchError(f"dataset {name!r} already exists on {admin.name}")
    kept = record.reusable(admin, paths) if record is not None else []
    upload = _DatasetUpload(admin, name, record, _checked_blob_folder(blob_folder), mock_shape)
    bar = tqdm(total=len(paths), desc="uploading", unit="image", disable=not progress)
    try:
        upload.clear_leftovers()
        start = sum(len(batch["consumed"]) for batch in kept)  # files stored earlier
        bar.update(start)
        batches = _read_batches(paths, start, skip_bad, max_batch_images, max_batch_bytes)
        with contextlib.closing(batches):  # a failed upload stops the reading threads
            for batch in batches:
                batch_labels = None if marks is None else [marks.get(f) for f in batch.files]
                upload.store(
                    image_batch(
                        batch.images, batch.files, camera, profile.pixel_size_um, batch_labels
                    ),
                    consumed=[_fingerprint(path) for path in paths[batch.start : batch.end]],
                    skipped=batch.skipped,
                )
                bar.update(batch.end - batch.start)
                bar.set_postfix_str(f"{upload.megabytes_sent / (clock() - started):.0f} MB/s")
        description = (
            f"{upload.images} {camera} images at {profile.pixel_size_um:g} µm/px "
            f"in {len(upload.assets)} batch(es)"
        )
        upload.finish(description)
    except WorkbenchError as error:
        raise WorkbenchError(f"{error}; {upload.take_back()}") from None
    except (KeyboardInterrupt, SystemExit):
        upload.keep_for_resume()
        raise
    except Exception as error:  # syft raises its own exception types
        raise WorkbenchError(
            f"upload of dataset {name!r} to {admin.name} failed: {_why(error)}; "
            f"{upload.take_back()}"
        ) from None
    finally:
        bar.close()
    return upload.summary(clock() - started)


def _marks_by_image(labels: str | Path, paths: list[Path]) -> dict[str, list[dict]]:
    """The marks of each labelled image of `paths`, by file name.

    Raises
    ------
    WorkbenchError
        For a malformed label file, none at all, or labels of an image not uploaded.
    """
    from workbench.imaging.annotations import LABELS_SUFFIX, load_annotations

    annotations = load_annotations(labels)
    if not annotations:
        raise WorkbenchError(f"{labels}: no label files (<stem>{LABELS_SUFFIX}) in this folder")
    names = {path.name for path in paths}
    for annotation in annotations:
        if annotation.image not in names:
            raise WorkbenchError(
                f"{labels}: labels of {annotation.image}, which is not among the images "
                "uploaded; nothing was uploaded"
            )
    return {annotation.image: [dict(o) for o in annotation.objects] for annotation in annotations}


def upload_batches(
    admin: Any,
    name: str,
    batches: list[ImageBatch],
    *,
    description: str = "",
    mock_shape: tuple[int, int] = MOCK_SHAPE,
    progress: bool = True,
) -> None:
    """Upload `batches` as dataset `name`, one asset (``images-000``...) per batch.

    Each asset's mock is a :func:`mock_batch` of the batch's camera and pixel size.
    Used by callers with images in memory (:func:`upload_folder` reads a folder).
    Nothing is kept of a failed upload.

    Parameters
    ----------
    admin : syft DatasiteClient
        Logged in as the factory admin.
    name : str
        Dataset name; must not exist yet.
    batches : list of ImageBatch
        One :func:`image_batch` per asset.
    description : str
        Shown to researchers with the dataset.
    mock_shape : (rows, cols)
        Size of the synthetic mock images.
    progress : bool
        A progress bar over the batches on stderr.

    Raises
    ------
    WorkbenchError
        If a dataset called `name` exists already or syft refuses the upload.
    """
    if _dataset_exists(admin, name):
        raise WorkbenchError(f"dataset {name!r} already exists on {admin.name}")
    upload = _DatasetUpload(admin, name, None, None, mock_shape)
    try:
        for batch in tqdm(batches, desc="uploading", unit="batch", disable=not progress):
            upload.store(batch)
        upload.finish(description)
    except Exception as error:  # syft raises its own exception types
        raise WorkbenchError(
            f"upload of dataset {name!r} to {admin.name} failed: {_why(error)}; "
            f"{upload.take_back()}"
        ) from None


def local_blob_folder(config: Any) -> Path | None:
    """The blob folder of the datasite of `config` if this machine holds it, else None.

    Parameters
    ----------
    config : DatasiteConfig
        The factory (its state folder and pinned identity).
    """
    from workbench.remote.identity import IDENTITY_FILE, load_or_create_identity

    if not (config.state_dir / IDENTITY_FILE).is_file():
        return None
    folder = config.state_dir / load_or_create_identity(config.state_dir).server_uid_hex / "blob"
    return folder if folder.is_dir() else None


@dataclass
class _ReadBatch:
    """One batch read from a folder: ``paths[start:end]``, bad files skipped."""

    start: int
    end: int
    images: list[np.ndarray] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    nbytes: int = 0


READ_THREADS = 2  # decoding releases the GIL: two files decode while a batch is sent


def _read_batches(
    paths: list[Path], start: int, skip_bad: bool, max_images: int, max_bytes: int
) -> Iterator[_ReadBatch]:
    """The batches of ``paths[start:]`` by the rule of :func:`batch_slices`.

    Files are decoded by a small pool, a few files ahead of the batch being sent, and
    come out in name order; memory holds one batch plus those few files.
    """
    from workbench.imaging.io import load_image

    pool = ThreadPoolExecutor(max_workers=READ_THREADS)
    ahead: collections.deque = collections.deque()
    following = start

    def read_ahead() -> None:
        nonlocal following
        while len(ahead) < 2 * READ_THREADS and following < len(paths):
            ahead.append((following, pool.submit(load_image, paths[following])))
            following += 1

    batch = _ReadBatch(start, start)
    try:
        read_ahead()
        while ahead:
            index, loading = ahead.popleft()
            read_ahead()
            try:
                image = loading.result().original
            except WorkbenchError as error:
                if not skip_bad:
                    raise WorkbenchError(f"{error} (use --skip-bad)") from None
                batch.skipped.append(str(error))
                continue
            full = len(batch.images) >= max_images or batch.nbytes + image.nbytes > max_bytes
            if batch.images and full:
                batch.end = index
                yield batch
                batch = _ReadBatch(index, index)
            batch.images.append(image)
            batch.files.append(paths[index].name)
            batch.nbytes += image.nbytes
        batch.end = len(paths)
        if batch.images:
            yield batch
        elif batch.start == 0:  # not one file of the folder could be read
            raise WorkbenchError(
                f"{paths[0].parent}: none of the {len(paths)} image files could be read"
            )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _fingerprint(path: Path) -> list:
    """What says a file is unchanged (as rsync's quick check): name, size, mtime."""
    stat = path.stat()
    return [path.name, stat.st_size, stat.st_mtime_ns]


class _Journal:
    """The record of a resumable upload: which batches are stored, as which objects."""

    def __init__(self, path: Path, content: dict) -> None:
        self.path, self.content = path, content

    @classmethod
    def open(
        cls,
        path: str | Path | None,
        admin: Any,
        name: str,
        camera: str,
        pixel_size_um: float,
        mock_shape: tuple[int, int],
    ) -> _Journal | None:
        """The journal at `path` if it records this upload, else a new empty one."""
        if path is None:
            return None
        path = Path(path)
        key = {
            "dataset": name,
            "datasite": str(admin.id),
            "camera": camera,
            "pixel_size_um": pixel_size_um,
            "mock_shape": list(mock_shape),
        }
        try:
            content = json.loads(path.read_text())
            if {field: content.get(field) for field in key} == key:
                return cls(path, content)
        except (OSError, ValueError):
            pass  # none yet, or unreadable: start afresh
        return cls(path, {**key, "batches": [], "pending_blobs": [], "complete": False})

    @property
    def complete(self) -> bool:
        return bool(self.content["complete"])

    @property
    def batches(self) -> list[dict]:
        return self.content["batches"]

    def covers(self, paths: list[Path]) -> bool:
        """True if the stored batches hold exactly the files `paths`, unchanged."""
        consumed = [entry for batch in self.batches for entry in batch["consumed"]]
        return consumed == [_fingerprint(path) for path in paths]

    def reusable(self, admin: Any, paths: list[Path]) -> list[dict]:
        """The leading stored batches whose files are unchanged and whose objects exist.

        The rest of the journal is dropped (their objects become leftovers to delete).
        """
        from syft.types.uid import UID

        kept, position = [], 0
        for batch in self.batches:
            end = position + len(batch["consumed"])
            unchanged = [_fingerprint(path) for path in paths[position:end]] == batch["consumed"]
            if not unchanged or not admin.api.services.action.exists(UID(batch["twin"])):
                break
            kept.append(batch)
            position = end
        self.content.update(
            leftover_twins=[batch["twin"] for batch in self.batches[len(kept) :]],
            batches=kept,
            complete=False,  # the dataset is not there (any more)
        )
        self.save()
        return kept

    def summary(self, sent: int, seconds: float) -> UploadSummary:
        return UploadSummary(
            dataset=self.content["dataset"],
            images=sum(len(batch["files"]) for batch in self.batches),
            assets=len(self.batches),
            megabytes=sum(batch["bytes"] for batch in self.batches) / 1e6,
            skipped=[entry for batch in self.batches for entry in batch["skipped"]],
            seconds=seconds,
            sent_assets=sent,
            megabytes_sent=0.0,
        )

    def save(self) -> None:
        """Write the journal atomically (a crash leaves the old or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.content))
        os.replace(partial, self.path)


class _DatasetUpload:
    """Stores batches as admin-only twins, then adds the dataset that lists them.

    Until :meth:`finish` nothing of the upload is visible to researchers; what is
    stored is recorded (and, with a journal, written down) so it can be taken back or
    reused by the next attempt.
    """

    def __init__(
        self,
        admin: Any,
        name: str,
        journal: _Journal | None,
        blob_folder: Path | None,
        mock_shape: tuple[int, int],
    ) -> None:
        from workbench.remote import _patches, _syft_fixes

        _patches.install(_syft_fixes.upload_patches())  # batches serialized in memory
        self.admin, self.name, self.journal, self.blob_folder = admin, name, journal, blob_folder
        self.mock_shape = mock_shape
        self.stored = _StoredParts()
        self.assets: list = []
        self.images = 0
        self.megabytes_sent = 0.0
        self.skipped: list[str] = []
        self.sent_assets = 0
        if journal is not None:
            for batch in journal.batches:  # stored by an earlier attempt
                mock = self._mock(
                    len(self.assets),
                    journal.content["camera"],
                    batch["pixel_size_um"],
                    batch.get("labelled", False),
                )
                self.assets.append(self._asset(batch["twin"], mock, len(batch["files"])))
                self.images += len(batch["files"])
                self.skipped += batch["skipped"]

    def clear_leftovers(self) -> None:
        """Delete what an earlier attempt stored but cannot reuse (or half-wrote)."""
        if self.journal is None:
            return
        from syft.types.uid import UID

        content = self.journal.content
        twins = content.get("leftover_twins", []) + content.get("pending_twins", [])
        with quiet(), contextlib.redirect_stderr(io.StringIO()):
            for uid in twins:  # a twin's blob goes with it
                _deleted(self.admin.api.services.action.delete, UID(uid))
            for uid in content["pending_blobs"]:
                _deleted(self.admin.api.services.blob_storage.delete, UID(uid))
        content.update(leftover_twins=[], pending_twins=[], pending_blobs=[])
        self.journal.save()

    def _mock(self, index: int, camera: str, pixel_size_um: float, labelled: bool) -> ImageBatch:
        """The mock of batch `index`: synthetic, from public parameters, reproducible."""
        return mock_batch(
            camera,
            pixel_size_um,
            shape=self.mock_shape,
            seed=MOCK_IMAGES * index,
            labelled=labelled,
        )

    def store(
        self, batch: ImageBatch, *, consumed: list | None = None, skipped: Sequence[str] = ()
    ) -> None:
        """Store one batch (private twin and its mock) as the next asset."""
        from syft.service.action.action_object import ActionObject
        from syft.types.twin_object import TwinObject
        from syft.types.uid import UID

        mock = self._mock(
            len(self.assets), batch["camera"], batch["pixel_size_um"], "labels" in batch
        )
        twin = TwinObject(
            private_obj=ActionObject.from_obj(batch),
            mock_obj=ActionObject.from_obj(mock),
            syft_server_location=self.admin.id,
            syft_client_verify_key=self.admin.verify_key,
        )
        private = twin.private_obj
        private.syft_blob_storage_entry_id = UID()
        self.stored.blobs.append(private.syft_blob_storage_entry_id)
        if self.journal is not None:  # a batch cut off half-way is deleted by the next attempt
            self.journal.content.update(
                pending_blobs=[str(private.syft_blob_storage_entry_id)],
                pending_twins=[str(twin.id)],
            )
            self.journal.save()
        with quiet():
            if self.blob_folder is None:
                twin._save_to_blob_storage().unwrap()
            else:
                _write_blob(self.admin, twin, batch, self.blob_folder)
            if not private.syft_action_saved_to_blob_store:  # small: kept in the database
                private.syft_blob_storage_entry_id = None
            self.admin.api.services.action.set(twin)
        self.stored.twins.append(twin.id)
        nbytes = sum(image.nbytes for image in batch["images"])
        self.assets.append(self._asset(str(twin.id), mock, len(batch["images"])))
        self.images += len(batch["images"])
        self.skipped += list(skipped)
        self.megabytes_sent += nbytes / 1e6
        self.sent_assets += 1
        if self.journal is not None:
            self.journal.batches.append(
                {
                    "consumed": consumed or [],
                    "files": list(batch["files"]),
                    "skipped": list(skipped),
                    "twin": str(twin.id),
                    "bytes": nbytes,
                    "pixel_size_um": batch["pixel_size_um"],
                    "labelled": "labels" in batch,
                }
            )
            self.journal.content.update(pending_blobs=[], pending_twins=[])
            self.journal.save()

    def _asset(self, twin_id: str, mock: ImageBatch, n_images: int) -> Any:
        """The dataset's entry for a stored twin: name, description, mock, the twin's id.

        It carries no private data: the twin holds it (syft's own upload sends every
        batch a second time, inside the dataset).
        """
        import syft as sy
        from syft.client.datasite_client import add_default_uploader
        from syft.types.uid import UID

        index = len(self.assets)
        asset = sy.Asset(
            name=f"images-{index:03d}",
            description=f"batch {index + 1}: {n_images} images",
            mock=mock,
        )
        asset.action_id, asset.server_uid = UID(twin_id), self.admin.id
        return add_default_uploader(self.uploader, asset)

    @functools.cached_property
    def uploader(self) -> Any:
        """The admin's user record (syft names it as each asset's uploader)."""
        return self.admin.users.get_current_user()

    def finish(self, description: str) -> None:
        """Add the dataset: from now on researchers see it, all of it."""
        import syft as sy
        from syft.client.datasite_client import add_default_uploader

        dataset = sy.Dataset(name=self.name, description=description or f"{self.name}: images")
        for asset in self.assets:
            dataset.add_asset(asset)
        dataset.mb_size = self.megabytes
        with quiet():
            self.admin.api.services.dataset.add(
                dataset=add_default_uploader(self.uploader, dataset)
            )
        if self.journal is not None:
            self.journal.content["complete"] = True
            self.journal.save()

    @property
    def megabytes(self) -> float:
        """MB of pixels in the dataset, batches stored by earlier attempts included."""
        if self.journal is None:
            return self.megabytes_sent
        return sum(batch["bytes"] for batch in self.journal.batches) / 1e6

    def take_back(self) -> str:
        """Delete every part stored (earlier attempts' too) and the journal; say what is left.

        A datasite that stopped answering keeps the journal: the next upload resumes.
        """
        if self.journal is not None and not _answers(self.admin):
            self.journal.save()
            return (
                "the datasite stopped answering: no dataset is visible; the "
                f"{len(self.journal.batches)} batch(es) stored are kept: upload the same "
                "folder again to send the rest"
            )
        told = self.stored.take_back(self.admin)
        if self.journal is not None:
            mine = {str(uid) for uid in self.stored.twins}
            earlier = [batch["twin"] for batch in self.journal.batches]
            self.journal.content.update(
                leftover_twins=[uid for uid in earlier if uid not in mine], batches=[]
            )
            self.clear_leftovers()
            self.journal.path.unlink(missing_ok=True)
        return told

    def keep_for_resume(self) -> None:
        """An upload cut off keeps what it stored: the journal lists it for next time."""
        if self.journal is not None:
            self.journal.save()

    def summary(self, seconds: float) -> UploadSummary:
        return UploadSummary(
            dataset=self.name,
            images=self.images,
            assets=len(self.assets),
            megabytes=self.megabytes,
            skipped=self.skipped,
            seconds=seconds,
            sent_assets=self.sent_assets,
            megabytes_sent=self.megabytes_sent,
        )


def _write_blob(admin: Any, twin: Any, batch: ImageBatch, blob_folder: Path) -> None:
    """Store the private half of `twin` as a file in the datasite's blob folder.

    The blob entry is allocated through the API (the datasite records it, under the id
    already chosen), then the batch, serialized once, is written where the datasite
    reads it; the mock is stored the usual way (small: kept in the database).
    """
    from syft.serde.serialize import _serialize
    from syft.types.blob_storage import CreateBlobStorageEntry

    private = twin.private_obj
    for half in (private, twin.mock_obj):
        half._set_obj_location_(admin.id, admin.verify_key)
    twin.mock_obj._save_to_blob_storage().unwrap()
    data = _serialize(batch, to_bytes=True)
    entry = CreateBlobStorageEntry.from_obj(batch, file_size=sys.getsizeof(data))
    entry.id = private.syft_blob_storage_entry_id
    admin.api.services.blob_storage.allocate(entry)
    with open(blob_folder / entry.file_name, "wb") as blob:
        blob.write(data)
    private.syft_action_data_type = type(batch)
    private._set_reprs(batch)
    private.syft_has_bool_attr = hasattr(batch, "__bool__")
    private.syft_action_saved_to_blob_store = True
    private._clear_cache()


def _checked_blob_folder(folder: str | Path | None) -> Path | None:
    if folder is None:
        return None
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: not the datasite's blob folder (no such folder)")
    return folder


@dataclass
class _StoredParts:
    """What an upload has stored so far: twins (action objects) and blob entries."""

    twins: list = field(default_factory=list)
    blobs: list = field(default_factory=list)

    def take_back(self, admin: Any) -> str:
        """Delete every stored part; say what the datasite kept of the upload."""
        with quiet(), contextlib.redirect_stderr(io.StringIO()):
            gone = [_deleted(admin.api.services.action.delete, uid) for uid in self.twins]
            for uid in self.blobs:  # a blob whose twin was never stored: entry and file
                _deleted(admin.api.services.blob_storage.delete, uid)
        if not _answers(admin):
            return (
                "the datasite stopped answering: no dataset is visible, but parts of the "
                "upload may stay in its blob folder"
            )
        if not all(gone):
            return f"{gone.count(False)} stored batch(es) could not be deleted again"
        return "nothing of it was kept"


def _deleted(delete: Callable[[Any], Any], uid: Any) -> bool:
    try:
        delete(uid)
    except Exception:  # not there (never allocated), or the datasite is gone
        return False
    return True


def _answers(admin: Any) -> bool:
    from workbench.remote.launch import url_answers

    return url_answers(str(admin.connection.url))


def _why(error: Exception) -> str:
    """The reason of a failed upload; a full disk is said so.

    Examples
    --------
    >>> _why(OSError(28, "No space left on device"))
    "the datasite's disk is full ([Errno 28] No space left on device)"
    """
    text = reason(error)
    if "No space left" not in text and "Errno 28" not in text:
        return text
    start = text.find("[Errno")
    return f"the datasite's disk is full ({text[start:] if start >= 0 else text})"


def _dataset_exists(admin: Any, name: str) -> bool:
    return any(dataset.name == name for dataset in admin.datasets.get_all())
