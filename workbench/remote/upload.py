"""Upload a folder of microscope images to a factory datasite as one dataset.

Every file is read and checked (``workbench.imaging.io``) before anything is sent:
a bad file stops the upload with its name, or is skipped with ``skip_bad=True``;
the dataset only appears on the datasite once every batch is stored. Large folders
become several assets (batches of at most 20 images or about 100 MB), because syft
loads a whole asset on every run.

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

import contextlib
import io
from collections.abc import Callable
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
    """What :func:`upload_folder` stored."""

    dataset: str
    images: int
    assets: int
    megabytes: float
    skipped: list[str]
    seconds: float


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
    images: list[np.ndarray], files: list[str], camera: str, pixel_size_um: float
) -> ImageBatch:
    """The dict one asset holds (private data and mock alike).

    Examples
    --------
    >>> sorted(image_batch([], [], "legacy", 2.0))
    ['camera', 'files', 'images', 'pixel_size_um']
    """
    return {
        "images": list(images),
        "files": list(files),
        "camera": camera,
        "pixel_size_um": float(pixel_size_um),
    }


def mock_batch(
    camera: str,
    pixel_size_um: float | None = None,
    *,
    n_images: int = MOCK_IMAGES,
    shape: tuple[int, int] = MOCK_SHAPE,
    seed: int = 0,
) -> ImageBatch:
    """Small synthetic images of `camera` at the same pixel size: a mock asset.

    Made from public parameters only (camera profile, pixel size, seed).

    Examples
    --------
    >>> mock = mock_batch("legacy", shape=(128, 160))
    >>> len(mock["images"]), mock["images"][0].shape, mock["pixel_size_um"]
    (2, (128, 160), 2.0)
    """
    from workbench.synth import synthesize

    profile = get_camera(camera, pixel_size_um)
    images = [
        synthesize(camera, seed=seed + i, pixel_size_um=profile.pixel_size_um, shape=shape).image
        for i in range(n_images)
    ]
    files = [f"mock-{seed + i:03d}.png" for i in range(n_images)]
    return image_batch(images, files, camera, profile.pixel_size_um)


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
) -> UploadSummary:
    """Read, check and upload the images of `folder` as dataset `name`.

    Parameters
    ----------
    admin : syft DatasiteClient
        A client logged in as the factory's admin (data owner).
    folder : str or Path
        Folder of image files.
    name : str
        Dataset name; must not exist yet on the datasite.
    camera : str
        Camera profile of the images (``legacy`` or ``hires``).
    pixel_size_um : float, optional
        Overrides the profile's pixel size.
    skip_bad : bool
        Leave unreadable files out instead of refusing the upload.
    progress : bool
        Progress bars on stderr (checking files, then syft's per-asset upload bar).
    max_batch_images, max_batch_bytes : int
        Batch limits (one asset per batch).
    mock_shape : (rows, cols)
        Size of the synthetic mock images.
    clock : callable, optional
        Time source for ``seconds`` (defaults to ``time.perf_counter``).

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

    clock = clock or time.perf_counter
    started = clock()
    profile = get_camera(camera, pixel_size_um)
    _check_new_dataset(admin, name)
    read = read_image_folder(folder, skip_bad=skip_bad, progress=progress)
    batches = batch_slices(
        [image.nbytes for image in read.images], max_batch_images, max_batch_bytes
    )
    upload_batches(
        admin,
        name,
        [
            image_batch(read.images[part], read.files[part], camera, profile.pixel_size_um)
            for part in batches
        ],
        description=(
            f"{len(read.images)} {camera} images at {profile.pixel_size_um:g} µm/px "
            f"in {len(batches)} batch(es)"
        ),
        mock_shape=mock_shape,
        progress=progress,
    )
    return UploadSummary(
        dataset=name,
        images=len(read.images),
        assets=len(batches),
        megabytes=read.nbytes / 1e6,
        skipped=read.skipped,
        seconds=clock() - started,
    )


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
    Used by :func:`upload_folder`, and directly by callers with images in memory.

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
        Show syft's per-asset upload bar on stderr.

    Raises
    ------
    WorkbenchError
        If a dataset called `name` exists already or syft refuses the upload.
    """
    import syft as sy

    _check_new_dataset(admin, name)
    dataset = sy.Dataset(name=name, description=description or f"{name}: microscope images")
    for index, batch in enumerate(batches):
        mock = mock_batch(
            batch["camera"], batch["pixel_size_um"], shape=mock_shape, seed=MOCK_IMAGES * index
        )
        dataset.add_asset(
            sy.Asset(
                name=f"images-{index:03d}",
                description=f"batch {index + 1} of {len(batches)}: {len(batch['images'])} images",
                data=batch,
                mock=mock,
            )
        )
    dataset.mb_size = sum(image.nbytes for batch in batches for image in batch["images"]) / 1e6
    stored = _StoredParts()
    try:
        with quiet():  # syft's banners would land on stdout
            dataset.check()
            _store_dataset(admin, dataset, stored, progress)
    except Exception as error:  # syft raises its own exception types
        raise WorkbenchError(
            f"upload of dataset {name!r} to {admin.name} failed: {_why(error)}; "
            f"{stored.take_back(admin)}"
        ) from None


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


def _store_dataset(admin: Any, dataset: Any, stored: _StoredParts, progress: bool) -> None:
    """syft's ``upload_dataset``, step by step, recording each part it stores in `stored`.

    Each blob's id is chosen before it is written, so a blob whose write fails
    half-way (a full disk, a dead datasite) can be found and deleted again. The
    dataset itself is added last: until then no researcher sees any of it.
    """
    from syft.client.datasite_client import add_default_uploader
    from syft.service.action.action_object import ActionObject
    from syft.types.twin_object import TwinObject
    from syft.types.uid import UID

    user = admin.users.get_current_user()
    add_default_uploader(user, dataset)
    for asset in tqdm(dataset.asset_list, desc="uploading", unit="asset", disable=not progress):
        add_default_uploader(user, asset)
        twin = TwinObject(
            private_obj=ActionObject.from_obj(asset.data),
            mock_obj=ActionObject.from_obj(asset.mock),
            syft_server_location=admin.id,
            syft_client_verify_key=admin.verify_key,
        )
        halves = (twin.private_obj, twin.mock_obj)
        for half in halves:
            half.syft_blob_storage_entry_id = UID()
            stored.blobs.append(half.syft_blob_storage_entry_id)
        twin._save_to_blob_storage().unwrap()
        for half in halves:
            if not half.syft_action_saved_to_blob_store:  # small: kept in the database
                half.syft_blob_storage_entry_id = None
        admin.api.services.action.set(twin)
        stored.twins.append(twin.id)
        asset.action_id, asset.server_uid = twin.id, admin.id
    admin.api.services.dataset.add(dataset=dataset)


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


def _check_new_dataset(admin: Any, name: str) -> None:
    if any(dataset.name == name for dataset in admin.datasets.get_all()):
        raise WorkbenchError(f"dataset {name!r} already exists on {admin.name}")
