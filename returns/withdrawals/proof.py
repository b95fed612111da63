"""Proof of dispatch (R20, R21): an image or a PDF, checked by its content.

The type is decided by the file's first bytes (content sniffing), never by its name or
the Content-Type the client sends; images must also open as images. The stored name is
random, with the sniffed type's extension.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass

from django.utils.translation import gettext as _

from shop.errors import InvalidInput
from shop.uploads import UnsafeUpload, sanitise

MAX_BYTES = 10 * 1024 * 1024  # 10 MiB: a phone photo of a receipt fits easily

# (magic prefix, content type, extension)
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
FIELD = "proof_of_dispatch"


@dataclass(frozen=True)
class CheckedProof:
    content: bytes
    content_type: str
    file_name: str


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the first bytes, or None."""
    for magic, content_type, extension in SIGNATURES:
        if head.startswith(magic):
            return content_type, extension
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def _refuse(code: str, message: str) -> InvalidInput:
    return InvalidInput.single(FIELD, code, message)


def check_proof(upload) -> CheckedProof:
    """Size and type of an uploaded file (a Django UploadedFile or any file object)."""
    if upload is None:
        raise _refuse("required", _("Choose a file: a photo or scan of the receipt, or a PDF."))
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        raise _refuse("too_large", _("The file is larger than 10 MB."))
    content = upload.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        raise _refuse("too_large", _("The file is larger than 10 MB."))
    if not content:
        raise _refuse("empty", _("The file is empty."))
    kind = sniff(content[:16])
    if kind is None:
        raise _refuse(
            "unsupported_type", _("Only a photo (JPEG, PNG, WebP) or a PDF can be uploaded.")
        )
    content_type, extension = kind
    if content_type.startswith("image/"):
        _check_image(content)
    elif b"%%EOF" not in content[-2048:]:
        raise _refuse("damaged", _("The PDF file is incomplete or damaged."))
    try:
        # Images re-encoded, PDFs with scripts or actions refused (issue 14).
        safe = sanitise(content, allow_webp=True)
    except UnsafeUpload as exc:
        raise _refuse(exc.code, str(exc)) from exc
    content, content_type, extension = safe.content, safe.content_type, safe.extension
    return CheckedProof(
        content=content,
        content_type=content_type,
        file_name=f"proof-{secrets.token_hex(12)}.{extension}",
    )


def _check_image(content: bytes) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as image:
            image.verify()
    except (
        Image.DecompressionBombError,
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise _refuse("damaged", _("The image file is incomplete or damaged.")) from exc
