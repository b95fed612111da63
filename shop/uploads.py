"""Uploaded evidence made safe to keep and to hand to staff (issue 14, item 5).

A file must BE one allowed type, not only start like one: a PNG header followed by HTML
(a polyglot) or a PDF that runs JavaScript when opened is refused or neutralised.

- Images (JPEG, PNG, WebP) are decoded and re-encoded with Pillow: only the pixels
  survive; trailing bytes, text chunks, metadata and anything appended are dropped.
- PDFs are opened with pypdf and refused when they carry active content: JavaScript
  (`/JS`, `/JavaScript`), actions run on opening or on events (`/OpenAction`, `/AA`),
  `/Launch`, embedded files, XFA forms, or when pypdf cannot read them.
- Anything else is refused.

Staff downloads of stored files are always attachments with `nosniff` (the views).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.utils.translation import gettext as _

IMAGE_TYPES = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
PDF = ("application/pdf", "pdf")
WEBP = ("image/webp", "webp")
MAX_PIXELS = 40_000_000  # a 40 MP photo; Pillow's bomb guard refuses far bigger ones

# Names that make a PDF do something by itself (ISO 32000-1 sections 12.6 and 12.7).
ACTIVE_PDF_NAMES = (
    b"/JavaScript",
    b"/JS",
    b"/OpenAction",
    b"/AA",
    b"/Launch",
    b"/EmbeddedFile",
    b"/XFA",
    b"/RichMedia",
    b"/SubmitForm",
    b"/ImportData",
)


class UnsafeUpload(ValueError):
    """The file is not one of the allowed types, or carries active content. `code` is
    the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SafeFile:
    content: bytes
    content_type: str
    extension: str


def sanitise(content: bytes, *, allow_webp: bool = False) -> SafeFile:
    """The file as it will be stored: a re-encoded image or a checked PDF."""
    if content.startswith(b"%PDF-"):
        _check_pdf(content)
        return SafeFile(content, *PDF)
    return _reencode_image(content, allow_webp=allow_webp)


def _reencode_image(content: bytes, *, allow_webp: bool) -> SafeFile:
    from PIL import Image, UnidentifiedImageError

    formats = ["JPEG", "PNG"] + (["WEBP"] if allow_webp else [])
    try:
        with Image.open(io.BytesIO(content), formats=formats) as image:
            if image.width * image.height > MAX_PIXELS:
                raise UnsafeUpload("too_large", _("The image has too many pixels."))
            kind = image.format
            image.load()
            out = io.BytesIO()
            if kind == "JPEG":
                converted = image if image.mode in ("RGB", "L", "CMYK") else image.convert("RGB")
                converted.save(out, format="JPEG", quality=90, optimize=True)
                content_type, extension = IMAGE_TYPES["JPEG"]
            elif kind == "PNG":
                image.save(out, format="PNG", optimize=True)
                content_type, extension = IMAGE_TYPES["PNG"]
            else:
                image.save(out, format="WEBP", quality=90)
                content_type, extension = WEBP
    except UnsafeUpload:
        raise
    except (
        Image.DecompressionBombError,
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
    ) as exc:
        raise UnsafeUpload(
            "unsupported_type", _("The file is not a readable JPEG, PNG or PDF.")
        ) from exc
    return SafeFile(out.getvalue(), content_type, extension)


def _check_pdf(content: bytes) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    # A cheap look at the raw bytes first, then the parsed objects (names hidden in
    # compressed object streams only show there).
    for name in ACTIVE_PDF_NAMES:
        if name in content:
            raise UnsafeUpload(
                "active_content", _("PDF files with scripts or actions are refused.")
            )
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted:
            raise UnsafeUpload("encrypted", _("Encrypted PDF files are refused."))
        found = _active_names(reader)
    except UnsafeUpload:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UnsafeUpload("damaged", _("The PDF file is incomplete or damaged.")) from exc
    if found:
        raise UnsafeUpload("active_content", _("PDF files with scripts or actions are refused."))


def _active_names(reader) -> bool:
    """True when any object of the document has an active-content key."""
    keys = {name.decode() for name in ACTIVE_PDF_NAMES}
    seen: set[int] = set()
    stack = [reader.trailer]
    budget = 200_000  # objects visited at most: a hostile graph cannot keep us busy
    while stack and budget:
        budget -= 1
        item = stack.pop()
        if hasattr(item, "get_object") and hasattr(item, "idnum"):
            if item.idnum in seen:
                continue
            seen.add(item.idnum)
            item = item.get_object()
        if isinstance(item, dict):
            if keys & set(map(str, item.keys())):
                return True
            if str(item.get("/S", "")) in ("/JavaScript", "/Launch", "/SubmitForm"):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return bool(stack)  # budget exhausted: refuse rather than guess
