"""Where finished files go: the local output folder, or an object store named by an fsspec URL.

A run always works in a local *work folder*: the ledger (SQLite, with its lock) lives there,
videos are downloaded and checked there, posters and tables are written there. A `Store` is
where finished files are then *published*, under the same relative paths (`videos/x.mp4`,
`posters/x.jpg`, `results.csv`, `report.html`):

- `LocalStore(folder)`: the output folder is the work folder, files already are in place.
- `FsspecStore(url, storage_options)`: any fsspec URL (`s3://bucket/prefix`, `memory://x`,
  `file:///srv/videos`). A published video's local copy is deleted (tens of thousands of videos
  must not fill the disk); posters and tables keep theirs.

Atomicity: a file is uploaded only once it is complete and checked, straight to its final key,
in one PUT (or one multipart upload, which S3 also makes visible at once on completion), and
its size is read back. S3 has no atomic rename, so there is no temporary key. The ledger marks a
job completed only after its video is published.

Stores are picklable (they travel to Ray workers): an `FsspecStore` keeps its URL and options
and builds its filesystem lazily, never from fsspec's instance cache. All operations block:
call them through `asyncio.to_thread` from async code.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import InputError, StoreError, one_line
from ..read.manifest import display_path
from ..read.settings import is_url
from ..run.ledger import LEDGER_FILE
from .atomic import replace_atomically

STORE_RECORD = "vidpipe-store.json"  # in the work folder: where its run publishes
INSTALL_HINT = "pip install 'vidpipe[s3]'"


class Store:
    """Where finished files go. Paths are relative to the store's root, with '/' separators."""

    remote = False

    @property
    def url(self) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        """The location for messages (no credentials)."""
        return self.url

    def join(self, relative: str) -> str:
        """The location of `relative` for messages and summaries."""
        return f"{self.describe().rstrip('/')}/{relative}"

    def child(self, relative: str) -> Store:
        raise NotImplementedError

    def publish(self, local: Path, relative: str, *, keep: bool = True) -> None:
        """Put the finished local file at `relative`; unless `keep`, the local copy goes."""
        raise NotImplementedError

    def sizes(self, folder: str = "") -> dict[str, int]:
        """relative path -> size of every file under `folder`, in one listing."""
        raise NotImplementedError

    def fetch(self, relative: str, local: Path) -> None:
        """Copy `relative` to the local file `local` (which appears whole or not at all)."""
        raise NotImplementedError

    def read_bytes(self, relative: str) -> bytes | None:
        """A small file's content, or None when it is not there."""
        raise NotImplementedError

    def copy_to(self, relative: str, target: Store, target_relative: str) -> bool:
        """Copy within one storage service without moving the bytes here; False if it cannot."""
        return False

    def remove(self, relative: str) -> None:
        raise NotImplementedError

    def check_writable(self) -> None:
        """Raise InputError (one line) unless a small file can be written, listed and deleted here."""


class LocalStore(Store):
    """A local folder. Publishing a file that already is in place does nothing."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.folder)!r})"

    @property
    def url(self) -> str:
        return display_path(self.folder)

    def child(self, relative: str) -> LocalStore:
        return LocalStore(self.folder / relative)

    def path(self, relative: str) -> Path:
        return self.folder / relative

    def publish(self, local: Path, relative: str, *, keep: bool = True) -> None:
        target = self.path(relative)
        if target.exists() and os.path.samefile(local, target):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if keep:
            _copy_atomically(local, target)
        else:
            shutil.move(local, target)

    def sizes(self, folder: str = "") -> dict[str, int]:
        base = self.path(folder) if folder else self.folder
        if not base.is_dir():
            return {}
        return {
            path.relative_to(self.folder).as_posix(): path.stat().st_size
            for path in base.rglob("*")
            if path.is_file()
        }

    def fetch(self, relative: str, local: Path) -> None:
        _copy_atomically(self.path(relative), local)

    def read_bytes(self, relative: str) -> bytes | None:
        try:
            return self.path(relative).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, relative: str) -> None:
        self.path(relative).unlink(missing_ok=True)

    def check_writable(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)


class FsspecStore(Store):
    """A folder in any fsspec filesystem, above all an S3 bucket and prefix.

    Credentials and the endpoint come from the environment (for S3: AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_PROFILE...); `storage_options` holds the
    filesystem's other options (`endpoint_url`, `client_kwargs`...).
    """

    remote = True

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        _refuse_secrets(url, storage_options or {})
        self._url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._fs: Any = None
        self._root = ""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FsspecStore({self.describe()!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self._url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["storage_options"])

    @property
    def url(self) -> str:
        return self._url

    def describe(self) -> str:
        parts = urlsplit(self._url)
        # never show user:password@
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    def child(self, relative: str) -> FsspecStore:
        return FsspecStore(f"{self._url}/{relative}", self.storage_options)

    def same_service(self, other: Store) -> bool:
        return (
            isinstance(other, FsspecStore)
            and urlsplit(self._url).scheme == urlsplit(other._url).scheme
            and self.storage_options == other.storage_options
        )

    @property
    def fs(self) -> Any:
        with self._lock:
            if self._fs is None:
                self._fs, self._root = _filesystem(self._url, self.storage_options)
            return self._fs

    def key(self, relative: str) -> str:
        fs = self.fs
        return f"{self._root.rstrip('/')}/{relative}" if relative else self._root or fs.root_marker

    def publish(self, local: Path, relative: str, *, keep: bool = True) -> None:
        size = local.stat().st_size
        key = self.key(relative)
        with self._failures(f"cannot upload {local.name} to {self.join(relative)}"):
            self.fs.put_file(str(local), key)
            stored = self.fs.info(key).get("size")
        if stored != size:
            raise StoreError(f"{self.join(relative)} holds {stored} bytes after the upload, not {size:,}")
        if not keep:
            local.unlink(missing_ok=True)

    def sizes(self, folder: str = "") -> dict[str, int]:
        base = self.key(folder).rstrip("/")
        prefix = self.key("").rstrip("/") + "/"
        with self._failures(f"cannot list {self.join(folder) if folder else self.describe()}"):
            self.fs.invalidate_cache()
            found = self.fs.find(base, detail=True)
        return {
            name[len(prefix) :]: int(info.get("size") or 0)
            for name, info in found.items()
            if name.startswith(prefix) and info.get("type", "file") == "file"
        }

    def fetch(self, relative: str, local: Path) -> None:
        def download(temporary: Path) -> None:
            with self._failures(f"cannot download {self.join(relative)}"):
                self.fs.get_file(self.key(relative), str(temporary))

        replace_atomically(local, download)

    def read_bytes(self, relative: str) -> bytes | None:
        try:
            with self._failures(f"cannot read {self.join(relative)}"):
                return self.fs.cat_file(self.key(relative))
        except StoreError as error:
            if isinstance(error.__cause__, FileNotFoundError):
                return None
            raise

    def copy_to(self, relative: str, target: Store, target_relative: str) -> bool:
        if not self.same_service(target):
            return False
        with self._failures(f"cannot copy {self.join(relative)} to {target.join(target_relative)}"):
            self.fs.copy(self.key(relative), target.key(target_relative))  # type: ignore[attr-defined]
        return True

    def remove(self, relative: str) -> None:
        with self._failures(f"cannot delete {self.join(relative)}"), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.key(relative))

    def check_writable(self) -> None:
        probe = f".vidpipe-probe-{uuid.uuid4().hex}"
        try:
            self.fs.pipe_file(self.key(probe), b"vidpipe checks it can write here\n")
            self.fs.invalidate_cache()
            self.fs.ls(self.key(""), detail=False)  # reruns list what is published
            self.fs.rm_file(self.key(probe))
        except InputError:
            raise
        except Exception as error:  # each filesystem has its own errors: all mean "not usable"
            raise InputError(
                f"output.dir {self.describe()}: cannot write there: {_reason(error)}; check the "
                "bucket, the credentials and the endpoint (see docs/storage.md); nothing was sent"
            ) from None

    @contextlib.contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        try:
            yield
        except (InputError, StoreError):
            raise
        except Exception as error:  # fsspec backends raise OSError, botocore, aiohttp... errors
            raise StoreError(f"{what}: {_reason(error)}") from error


SECRET_WORDS = ("secret", "password", "token", "key", "credential", "sas")


def _secret_name(name: str) -> bool:
    # An id names a secret without being one (SSEKMSKeyId, access_key_id is half of a pair:
    # refused with its secret anyway).
    return any(word in name for word in SECRET_WORDS) and not name.endswith("id")


def _refuse_secrets(url: str, storage_options: dict[str, Any]) -> None:
    """Credentials belong in the environment: the URL and options are written to the work
    folder's vidpipe-store.json and shown in messages."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise InputError(
            f"output.dir {parts.scheme}://***@{parts.hostname or ''}{parts.path}: credentials in the URL; "
            "set them in the environment (for S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
        )
    pending: list[tuple[str, Any]] = list(storage_options.items())
    while pending:
        name, value = pending.pop()
        if isinstance(value, dict):
            pending += [(f"{name}.{inner}", item) for inner, item in value.items()]
        elif _secret_name(name.rsplit(".", 1)[-1].lower()):
            raise InputError(
                f"output.storage_options.{name}: looks like a credential; set it in the environment "
                "instead (it would be written to vidpipe-store.json)"
            )


def _filesystem(url: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    try:
        import fsspec.core
    except ImportError:
        raise InputError(f"output.dir {url}: writing to a URL needs fsspec: {INSTALL_HINT}") from None
    if urlsplit(url).scheme in ("file", "local"):  # folders, unlike object stores, must exist
        storage_options = {"auto_mkdir": True, **storage_options}
    try:
        return fsspec.core.url_to_fs(url, skip_instance_cache=True, **storage_options)
    except ImportError as error:
        raise InputError(f"output.dir {url}: {_reason(error)} ({INSTALL_HINT})") from None
    except (ValueError, TypeError) as error:  # unknown protocol, or options it does not take
        raise InputError(f"output.dir {url}: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return one_line(text[0] if text else type(error).__name__)


def _copy_atomically(source: Path, target: Path) -> None:
    replace_atomically(target, lambda temporary: shutil.copyfile(source, temporary))


# --- choosing a store ------------------------------------------------------------------------


def open_store(location: str | Path, storage_options: dict[str, Any] | None = None) -> Store:
    """The store for an output location: a URL gives an FsspecStore, a path a LocalStore."""
    if is_url(location):
        return FsspecStore(str(location), storage_options)
    return LocalStore(Path(location))


def dataset_target(location: str | Path, run_store: Store | None) -> Path | Store:
    """Where `vidpipe export --to LOCATION` writes: a local folder, or a store (which shares the
    run's storage options when it is on the same kind of service)."""
    if not is_url(location):
        return Path(location)
    same_kind = isinstance(run_store, FsspecStore) and (
        urlsplit(run_store.url).scheme == urlsplit(str(location)).scheme
    )
    return FsspecStore(str(location), run_store.storage_options if same_kind else None)


def record_store(work_folder: Path, store: Store) -> str | None:
    """Note in the work folder where its run publishes (for status, report and export), and
    return the URL an earlier run there published to when it was another. A local run removes
    the note."""
    path = work_folder / STORE_RECORD
    earlier = _read_record(path)
    before = earlier.get("url") if earlier else None
    if not store.remote:
        path.unlink(missing_ok=True)
        return None
    record = {"url": store.url, "storage_options": getattr(store, "storage_options", {})}
    text = json.dumps(record, indent=2) + "\n"
    replace_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    return FsspecStore(before).describe() if before and before != store.url else None


def recorded_store(work_folder: Path) -> Store | None:
    """The store a work folder's run publishes to, or None for a plain local output folder."""
    record = _read_record(work_folder / STORE_RECORD)
    return FsspecStore(record["url"], record.get("storage_options")) if record else None


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise InputError(f"{display_path(path)}: unreadable ({error})") from None
    return record if isinstance(record, dict) and isinstance(record.get("url"), str) else None


def locate_run(location: str | Path, ledger_dir: Path | None = None) -> tuple[Path, Store | None]:
    """(work folder, store) for `vidpipe status/report/export LOCATION`.

    LOCATION is a run's output folder (its work folder) or the URL it published to. For a URL
    the work folder is `ledger_dir`, else the one folder under outputs/ whose run published
    there.
    """
    if not is_url(location):
        folder = Path(ledger_dir or location)
        return folder, recorded_store(folder)
    url = str(location).rstrip("/")
    if ledger_dir is not None:
        store = recorded_store(ledger_dir)
        if store is not None and store.url != url:
            raise InputError(
                f"{display_path(ledger_dir)} holds the ledger of a run that publishes to "
                f"{store.describe()}, not {url}"
            )
        return ledger_dir, store or FsspecStore(url)
    matches = [
        folder
        for folder in sorted(Path("outputs").glob("*"))
        if (found := _read_record(folder / STORE_RECORD)) and found["url"].rstrip("/") == url
    ]
    if len(matches) != 1:
        where = (
            "no work folder under outputs/ publishes there"
            if not matches
            else f"{len(matches)} work folders publish there ({', '.join(map(display_path, matches))})"
        )
        raise InputError(
            f"{url}: {where}; name the folder that holds the run's {LEDGER_FILE} with --ledger-dir DIR"
        )
    return matches[0], recorded_store(matches[0])
