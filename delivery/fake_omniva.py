"""A small fake of Omniva's OMX REST API on 127.0.0.1, for tests and for `make run`.

Standard library only (it runs without Django): an `http.server` in a thread.

    python -m delivery.fake_omniva --port 8765        # or: make fake-omniva

    with FakeOmniva() as omniva:                      # in tests (see tests/delivery/conftest.py)
        settings.OMNIVA_API_URL = omniva.url
        omniva.fail_next("503")                       # scripted failures
        omniva.add_event(barcode, "delivered")        # scripted tracking events

It speaks the documented shapes under `/api/v01/omx/`:

- `POST shipments/business-to-client` with HTTP Basic auth and `customerCode`: 200
  `{"resultCode", "savedShipments": [{"clientItemId", "barcode", "returnCode"}],
  "failedShipments": [{"clientItemId", "messageCode", "message"}]}`; the same
  `partnerShipmentId` again gets the same barcode. A malformed request is 400 with
  `{"title", "details", "code", "errors": {field: [{"code", "message"}]}}`; bad
  credentials are 401. (`returnCode` is this fake's way of handing over the return code.)
- `POST shipments/package-labels`: `{"successAddressCards": [{"barcode", "fileData"}],
  "failedAddressCards": [{"barcode", "messageCode"}]}`, `fileData` a base64 PDF.
- `GET shipments/{barcode}`: `{"barcode", "events": [{"eventId", "eventCode", "eventName",
  "eventDate", "location", "reason"}]}`, or 404 for an unknown barcode.

Control endpoints for scripting from a shell (no auth, loopback only):
`POST /_fake/events {"barcode", "event", "occurred_at"?, "location"?, "reason"?}`,
`POST /_fake/fail {"kind": "timeout"|"500"|"503"|"401"|"failed", "times"?}`,
`GET /_fake/shipments`, `POST /_fake/reset`.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/api/v01/omx/"
EVENT_NAMES = (
    "registered",
    "accepted",
    "in_transit",
    "ready_for_pickup",
    "delivered",
    "delivery_failed",
    "returned_to_sender",
    "return_accepted",
    "return_delivered",
)
FAILURE_KINDS = ("timeout", "500", "503", "401", "failed")
MAIN_SERVICES = ("PARCEL", "LETTER", "PALLET")
CHANNELS = ("PARCEL_MACHINE", "COURIER", "POST_OFFICE")
ZIP = re.compile(r"^\d{4,5}$")


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with one line of text (a stand-in for Omniva's label)."""
    safe = re.sub(r"[^A-Za-z0-9 .:-]", "", text)[:80]
    stream = f"BT /F1 24 Tf 40 120 Td ({safe}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 200] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def _now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class FakeOmniva:
    """The fake's state and its server. Thread-safe; every answer is JSON."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "demo",
        password: str = "demo",  # noqa: S107  the fake's documented demo login
        customer_code: str = "123456",
        timeout_delay: float = 2.0,
        verbose: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password, self.customer_code = username, password, customer_code
        self.timeout_delay = timeout_delay
        self.verbose = verbose
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # --- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.shipments: dict[str, dict[str, Any]] = {}
            self.by_partner_id: dict[str, str] = {}
            self.requests: list[dict[str, Any]] = []
            self.failures: list[str] = []
            # Barcodes stay unique across restarts of a long-lived fake (make run).
            self._next_number = int(time.time()) % 900_000_000 + 1
            self._next_event = 1

    def fail_next(self, kind: str, times: int = 1) -> None:
        """The next `times` API calls fail: `timeout` (answer after `timeout_delay` s),
        `500`/`503`, `401`, or `failed` (a registration answered with failedShipments)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure {kind!r}; one of {FAILURE_KINDS}")
        with self.lock:
            self.failures.extend([kind] * times)

    def add_event(
        self,
        barcode: str,
        event: str,
        *,
        occurred_at: str | None = None,
        location: str = "",
        reason: str = "",
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Script a tracking event (the webhook's names: `delivered`, `in_transit`, ...)."""
        if event not in EVENT_NAMES:
            raise ValueError(f"unknown event {event!r}")
        with self.lock:
            shipment = self.shipments.get(barcode)
            if shipment is None:
                raise KeyError(barcode)
            record = {
                "eventId": event_id or f"fake-{self._next_event:08d}",
                "eventCode": event.upper(),
                "eventName": event.replace("_", " ").capitalize(),
                "eventDate": occurred_at or _now_iso(),
                "location": location,
                "reason": reason,
            }
            self._next_event += 1
            shipment["events"].append(record)
            return record

    # --- server -----------------------------------------------------------------------------

    @property
    def base(self) -> str:
        assert self._server is not None, "the fake is not running"
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """What OMNIVA_API_URL should be."""
        return self.base + PREFIX

    def start(self) -> FakeOmniva:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOmniva:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the API ----------------------------------------------------------------------------

    def _take_failure(self) -> str | None:
        with self.lock:
            return self.failures.pop(0) if self.failures else None

    def _new_barcode(self) -> tuple[str, str]:
        number = self._next_number
        self._next_number += 1
        return f"CE{number:09d}LV", f"{(number * 7919) % 100_000_000:08d}"

    def register(self, body: Any, failure: str | None) -> tuple[int, dict[str, Any]]:
        errors: dict[str, list[dict[str, str]]] = {}
        if not isinstance(body, dict):
            return 400, _validation({"body": [{"code": "NotNull", "message": "must be an object"}]})
        if body.get("customerCode") != self.customer_code:
            errors["customerCode"] = [{"code": "NotValid", "message": "unknown customer code"}]
        shipments = body.get("shipments")
        if not isinstance(shipments, list) or not shipments:
            errors["shipments"] = [{"code": "NotEmpty", "message": "must not be empty"}]
        if errors:
            return 400, _validation(errors)
        saved, failed = [], []
        with self.lock:
            for item in shipments:
                item = item if isinstance(item, dict) else {}
                partner_id = str(item.get("partnerShipmentId") or "")
                problem = "mainService - Price list does not exist" if failure == "failed" else None
                problem = problem or _shipment_problem(item)
                if problem:
                    failed.append(
                        {
                            "clientItemId": partner_id,
                            "messageCode": "{com.omniva.phoenix.validation.failed}",
                            "message": f"Object validation Failed!;{problem}",
                        }
                    )
                    continue
                barcode = self.by_partner_id.get(partner_id) if partner_id else None
                if barcode is None:
                    barcode, return_code = self._new_barcode()
                    self.shipments[barcode] = {
                        "barcode": barcode,
                        "returnCode": return_code,
                        "partnerShipmentId": partner_id,
                        "request": item,
                        "events": [],
                    }
                    if partner_id:
                        self.by_partner_id[partner_id] = barcode
                shipment = self.shipments[barcode]
                saved.append(
                    {
                        "clientItemId": partner_id,
                        "barcode": barcode,
                        "returnCode": shipment["returnCode"],
                    }
                )
        for entry in saved:
            if not self.shipments[entry["barcode"]]["events"]:
                self.add_event(entry["barcode"], "registered")
        result = "OK" if not failed else ("PARTIAL" if saved else "ERROR")
        return 200, {"resultCode": result, "savedShipments": saved, "failedShipments": failed}

    def labels(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("customerCode") != self.customer_code:
            return 400, _validation({"customerCode": [{"code": "NotValid", "message": "unknown"}]})
        success, failed = [], []
        for item in body.get("barcodes") or []:
            barcode = str((item or {}).get("barcode") or "") if isinstance(item, dict) else ""
            if barcode in self.shipments:
                pdf = minimal_pdf(f"Omniva {barcode}")
                success.append({"barcode": barcode, "fileData": base64.b64encode(pdf).decode()})
            else:
                failed.append({"barcode": barcode, "messageCode": "BARCODE_NOT_FOUND"})
        return 200, {"successAddressCards": success, "failedAddressCards": failed}

    def tracking(self, barcode: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            shipment = self.shipments.get(barcode)
            if shipment is None:
                return 404, {
                    "title": "Resource not found",
                    "details": f"The 'Shipment' entity with id='{barcode}' was not found!",
                    "code": "RESOURCE_NOT_FOUND",
                    "errors": {},
                }
            return 200, {"barcode": barcode, "events": list(shipment["events"])}


def _validation(errors: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": "Validation Failed",
        "details": "Input validation failed",
        "code": "",
        "timestamp": int(time.time() * 1000),
        "errors": errors,
    }


def _shipment_problem(item: dict[str, Any]) -> str | None:
    if item.get("mainService") not in MAIN_SERVICES:
        return "mainService - must be one of " + ", ".join(MAIN_SERVICES)
    channel = item.get("deliveryChannel")
    if channel not in CHANNELS:
        return "deliveryChannel - must be one of " + ", ".join(CHANNELS)
    receiver = item.get("receiverAddressee") or {}
    if not str(receiver.get("personName") or "").strip():
        return "receiverAddressee.personName - must not be blank"
    if not (receiver.get("contactMobile") or receiver.get("contactEmail")):
        return "receiverAddressee.contactMobile - a phone or an email is required"
    address = receiver.get("address") or {}
    if address.get("country") not in ("LV", "EE", "LT"):
        return "receiverAddressee.address.country - must be LV, EE or LT"
    if channel == "PARCEL_MACHINE" and not ZIP.match(str(address.get("offloadPostcode") or "")):
        return "receiverAddressee.address.offloadPostcode - not a parcel machine"
    if channel == "COURIER" and not (
        ZIP.match(str(address.get("postcode") or "")) and address.get("street")
    ):
        return "receiverAddressee.address - postcode and street are required for a courier"
    if not isinstance(item.get("senderAddressee"), dict):
        return "senderAddressee - must not be null"
    return None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOmniva
    server_version = "FakeOmniva/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        if self.fake.verbose:
            super().log_message(format, *args)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ...

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a scripted timeout)

    def _authorised(self) -> bool:
        expected = base64.b64encode(f"{self.fake.username}:{self.fake.password}".encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def _api(self, method: str) -> None:
        body = self._body() if method == "POST" else None
        with self.fake.lock:
            self.fake.requests.append({"method": method, "path": self.path, "body": body})
        failure = self.fake._take_failure()
        if failure == "timeout":
            time.sleep(self.fake.timeout_delay)
        elif failure in ("500", "503"):
            self._answer(int(failure), {"title": HTTPStatus(int(failure)).phrase, "details": ""})
            return
        if failure == "401" or not self._authorised():
            self._answer(401, {"title": "Unauthorized", "details": "Bad credentials", "code": ""})
            return
        if body is ...:
            self._answer(400, _validation({"body": [{"code": "JSON", "message": "not JSON"}]}))
            return
        path = self.path[len(PREFIX) :].split("?")[0]
        if method == "POST" and path == "shipments/business-to-client":
            self._answer(*self.fake.register(body, failure))
        elif method == "POST" and path == "shipments/package-labels":
            self._answer(*self.fake.labels(body))
        elif method == "GET" and path.startswith("shipments/") and path.count("/") == 1:
            self._answer(*self.fake.tracking(path.split("/", 1)[1]))
        else:
            self._answer(404, {"title": "Resource not found", "details": path, "code": ""})

    def _control(self, method: str) -> None:
        body = self._body() if method == "POST" else None
        body = body if isinstance(body, dict) else {}
        try:
            if method == "POST" and self.path == "/_fake/events":
                record = self.fake.add_event(
                    str(body.get("barcode") or ""),
                    str(body.get("event") or ""),
                    occurred_at=body.get("occurred_at"),
                    location=str(body.get("location") or ""),
                    reason=str(body.get("reason") or ""),
                )
                self._answer(201, record)
            elif method == "POST" and self.path == "/_fake/fail":
                self.fake.fail_next(str(body.get("kind")), int(body.get("times") or 1))
                self._answer(200, {"queued": list(self.fake.failures)})
            elif method == "POST" and self.path == "/_fake/reset":
                self.fake.reset()
                self._answer(200, {"reset": True})
            elif method == "GET" and self.path == "/_fake/shipments":
                with self.fake.lock:
                    rows = [
                        {k: v for k, v in s.items() if k != "request"}
                        for s in self.fake.shipments.values()
                    ]
                self._answer(200, {"shipments": rows})
            else:
                self._answer(404, {"title": "Resource not found", "details": self.path})
        except KeyError:
            self._answer(404, {"title": "Unknown barcode", "details": str(body.get("barcode"))})
        except ValueError as exc:
            self._answer(400, {"title": "Bad request", "details": str(exc)})

    def _dispatch(self, method: str) -> None:
        if self.path.startswith(PREFIX):
            self._api(method)
        elif self.path.startswith("/_fake/"):
            self._control(method)
        else:
            self._answer(404, {"title": "Resource not found", "details": self.path})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Omniva OMX API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--customer-code", default="123456")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    fake = FakeOmniva(
        host=args.host,
        port=args.port,
        username=args.username,
        password=args.password,
        customer_code=args.customer_code,
        verbose=not args.quiet,
    )
    fake.start()
    print(f"Fake Omniva OMX API on {fake.url}", flush=True)
    print(
        "Run the shop against it with:\n"
        f"  OMNIVA_API_URL={fake.url} OMNIVA_USERNAME={args.username} "
        f"OMNIVA_PASSWORD={args.password} OMNIVA_CUSTOMER_CODE={args.customer_code} make run",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
