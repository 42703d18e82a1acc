"""``python -m persidict demo``: the main job, on a temporary folder, in memory, then on S3 (a local moto server)."""

from __future__ import annotations

import logging
import os
import tempfile
import threading

from .. import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, FileDirDict, FsspecDict, LocalDict, PersiDict


def _show(title: str) -> None:
    print(f"\n== {title}")


def _tour(store: PersiDict[object], name: str) -> None:
    _show(f"{name}: a dict whose values persist")
    store["settings", "theme"] = "dark"
    store["settings", "retries"] = 3
    store["results", "run-1"] = {"loss": 0.25, "epochs": (1, 2, 3)}
    print("stored 3 values; len =", len(store))
    print("store['settings', 'theme'] ->", store["settings", "theme"])
    print("keys ->", sorted("/".join(key) for key in store))
    settings = store.get_subdict("settings")
    print("subdict 'settings' ->", {"/".join(k): v for k, v in settings.items()})

    _show(f"{name}: compare-and-swap with ETags")
    key = ("settings", "retries")
    seen = store.get_with_etag(key)
    print("read retries =", seen.new_value, "with etag", seen.actual_etag)
    first = store.set_item_if(key, value=5, condition=ETAG_IS_THE_SAME, expected_etag=seen.actual_etag)
    again = store.set_item_if(key, value=9, condition=ETAG_IS_THE_SAME, expected_etag=seen.actual_etag)
    print("CAS with the fresh etag succeeded:", first.condition_was_satisfied)
    print("CAS with the stale etag succeeded:", again.condition_was_satisfied, f"(value stays {store[key]})")
    claimed = store.setdefault_if(
        "lock", default_value="worker-1", condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE
    )
    print("insert-if-absent 'lock' won:", claimed.condition_was_satisfied)

    _show(f"{name}: 4 threads x 50 atomic increments with transform_item")
    store["counter"] = 0

    def work() -> None:
        for _ in range(50):
            store.transform_item("counter", transformer=lambda n: n + 1, n_retries=None)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("counter =", store["counter"], "(expected 200: no update lost)")


def run_demo() -> None:
    """Run the tour on a temporary local folder, in memory, then on S3 (an embedded moto server)."""
    with tempfile.TemporaryDirectory(prefix="persidict-demo-") as folder:
        local: FileDirDict[object] = FileDirDict(base_dir=folder, fsync=False)
        _tour(local, f"FileDirDict in {folder}")
        _show("the files on disk (one per value)")
        for root, _dirs, files in sorted(os.walk(folder)):
            for name in sorted(files):
                print("  ", os.path.relpath(os.path.join(root, name), folder))
        reopened: FileDirDict[object] = FileDirDict(base_dir=folder)
        print("a second FileDirDict on the same folder sees", len(reopened), "values")
    _tour(LocalDict(), "LocalDict (memory)")
    _s3_tour()


def _s3_tour() -> None:
    """The same tour on S3, by changing the URL: on a moto server the demo starts and stops itself."""
    try:
        import s3fs  # noqa: F401  # the aws extra
        from moto.server import ThreadedMotoServer
    except ImportError:
        _show("S3: skipped (pip install 'persidict[aws]' moto[server] to see the same tour on S3)")
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"endpoint_url": f"http://{host}:{port}", "key": "demo", "secret": "demo"}
        _tour(FsspecDict("s3://demo-bucket/tour", storage_options=options), "S3 (a local moto server), same code")
    finally:
        server.stop()
