"""Evidence attached to a claim: JPEG, PNG or PDF, at most 5 files of 5 MB each.

The type is decided by the file's first bytes (content sniffing), never by its name or
the Content-Type the client sends; then the file must really be that type: images are
re-encoded and PDFs with active content refused (`shop.uploads`). The stored name is
random with the checked type's extension.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.files.base import ContentFile, File
from django.utils.translation import gettext as _

from shop.errors import InvalidInput
from shop.uploads import UnsafeUpload, sanitise

MAX_PHOTOS = 5
MAX_PHOTO_BYTES = 5 * 1024 * 1024

# (magic prefix, content type, extension)
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"%PDF-", "application/pdf", "pdf"),
)
SNIFF_BYTES = 16


@dataclass(frozen=True)
class CheckedPhoto:
    content: File
    content_type: str
    extension: str
    size: int

    def stored_file(self) -> ContentFile:
        self.content.seek(0)
        return ContentFile(self.content.read(), name=f"{uuid.uuid4().hex}.{self.extension}")


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a JPEG, PNG or PDF, else None."""
    for magic, content_type, extension in SIGNATURES:
        if head.startswith(magic):
            return content_type, extension
    return None


def _size(upload: File) -> int:
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, 2)
        size = upload.tell()
    upload.seek(0)
    return int(size)


def check_photos(uploads: Sequence[File], *, field: str = "photos") -> list[CheckedPhoto]:
    """Refuse (400) too many files, empty or too large files, and anything but JPEG, PNG
    or PDF; every problem is reported, file by file."""
    if len(uploads) > MAX_PHOTOS:
        raise InvalidInput.single(
            field,
            "too_many_photos",
            _("At most %(n)d files can be attached to a claim.") % {"n": MAX_PHOTOS},
        )
    errors, checked = [], []
    for index, upload in enumerate(uploads):
        name = f"{field}.{index}"
        size = _size(upload)
        if size == 0:
            errors.append({"field": name, "code": "empty_file", "message": _("The file is empty.")})
            continue
        if size > MAX_PHOTO_BYTES:
            errors.append(
                {
                    "field": name,
                    "code": "photo_too_large",
                    "message": _("A file can be at most %(mb)d MB.")
                    % {"mb": MAX_PHOTO_BYTES // (1024 * 1024)},
                }
            )
            continue
        head = upload.read(SNIFF_BYTES)
        upload.seek(0)
        kind = sniff(head)
        if kind is None:
            errors.append(
                {
                    "field": name,
                    "code": "photo_type_not_allowed",
                    "message": _("Only JPEG, PNG or PDF files can be attached."),
                }
            )
            continue
        try:
            # Re-encoded images and checked PDFs only (issue 14): a PNG header with HTML
            # behind it, or a PDF with JavaScript, is not evidence we keep.
            safe = sanitise(upload.read())
        except UnsafeUpload as exc:
            errors.append({"field": name, "code": exc.code, "message": str(exc)})
            continue
        checked.append(
            CheckedPhoto(
                content=ContentFile(safe.content),
                content_type=safe.content_type,
                extension=safe.extension,
                size=len(safe.content),
            )
        )
    if errors:
        raise InvalidInput(errors)
    return checked
