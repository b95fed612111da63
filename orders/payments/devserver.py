"""localstripe on loopback, for tests and `make run STRIPE=localstripe` (development only).

    python -m orders.payments.devserver --port 8420 --store var/localstripe.pickle \\
        --webhook-url http://127.0.0.1:8000/api/webhooks/stripe/ --webhook-secret whsec_...

localstripe (a stateful fake Stripe server, a dev dependency) listens on every interface
and keeps its state in the fixed file /tmp/localstripe.pickle. Here it listens on
127.0.0.1 only and keeps its state in the file given, so two test sessions never share
one, and a server restarted with the same file (the network-failure tests) still knows
the payments and refunds it made before. With `--webhook-url` it sends the payment
events it knows (`payment_intent.succeeded`, `payment_intent.payment_failed`) there,
signed with the secret given, as Stripe does.
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path

WEBHOOK_EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed"]


def run(
    *,
    host: str,
    port: int,
    store_path: Path,
    fresh: bool,
    webhook_url: str = "",
    webhook_secret: str = "",
) -> None:
    from aiohttp import web
    from localstripe import resources, server, webhooks

    def load(store) -> None:
        try:
            with store_path.open("rb") as f:
                old = pickle.load(f)  # noqa: S301  our own file, written just below
        except (FileNotFoundError, EOFError):
            return
        dict.clear(store)
        dict.update(store, old)

    def dump(store) -> None:
        tmp = store_path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(store_path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    store_path.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        store_path.unlink(missing_ok=True)
    resources.store.try_load_from_disk()
    if webhook_url:
        webhooks.register_webhook("shop", webhook_url, webhook_secret, WEBHOOK_EVENTS)

    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.INFO)
    access_log.addHandler(logging.StreamHandler())
    web.run_app(server.app, host=host, port=port, access_log=access_log, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--store", default="var/localstripe.pickle", type=Path)
    parser.add_argument("--fresh", action="store_true", help="Forget the stored state first.")
    parser.add_argument("--webhook-url", default="", help="Send signed payment events here.")
    parser.add_argument("--webhook-secret", default="", help="The webhook signing secret.")
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")
    run(
        host=args.host,
        port=args.port,
        store_path=args.store,
        fresh=args.fresh,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )


if __name__ == "__main__":
    main()
