"""One settings record per store: parameters, pickles, subdicts and repr derive from it; repr masks secrets."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from persidict import BackendError, FileDirDict, FsspecDict, LocalDict, MutableDictCached, RetryConfig, WriteOnceDict
from persidict.core.settings import mask_secrets

SECRETS = {"key": "AKIA-SECRET-ID", "secret": "s3cr3t-value", "token": "session-tok",
           "client_kwargs": {"aws_secret_access_key": "nested-s3cr3t", "region_name": "eu-west-1"}}


def test_mask_secrets_masks_every_secret_name_at_any_depth() -> None:
    masked = mask_secrets({**SECRETS, "account_key": "ak", "connection_string": "cs", "credential": "c",
                           "sas_token": "sas", "password": "p", "anon": False, "endpoint_url": "http://h:9"})
    assert masked["client_kwargs"] == {"aws_secret_access_key": "***", "region_name": "eu-west-1"}
    assert {name for name, value in masked.items() if value == "***"} == {
        "key", "secret", "token", "account_key", "connection_string", "credential", "sas_token", "password"}
    assert masked["anon"] is False and masked["endpoint_url"] == "http://h:9"


def test_mask_secrets_masks_passwords_in_urls_and_connection_strings() -> None:
    assert mask_secrets("https://user:pa55@host/x") == "https://user:***@host/x"
    text = "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=Eby8vd==;BlobEndpoint=http://h"
    assert "Eby8vd" not in mask_secrets(text) and "AccountKey=***" in mask_secrets(text)


def test_repr_of_stores_and_their_subdicts_shows_no_secret(tmp_path: Path) -> None:
    store = FsspecDict(f"file://{tmp_path}", storage_options=SECRETS)
    for shown in (repr(store), repr(store.get_subdict("a")), str([store])):
        for secret in ("AKIA-SECRET-ID", "s3cr3t-value", "session-tok", "nested-s3cr3t"):
            assert secret not in shown
        assert "'secret': '***'" in shown and "eu-west-1" in shown


def test_repr_of_a_upath_location_shows_no_secret(tmp_path: Path) -> None:
    store = FsspecDict(UPath(f"file://{tmp_path}", **{"secret": "s3cr3t-value"}))
    assert "s3cr3t-value" not in repr(store) and "***" in repr(store)


def test_get_params_and_pickles_keep_what_reopens_the_store(tmp_path: Path) -> None:
    store = FsspecDict(f"file://{tmp_path}", storage_options={"auto_mkdir": True})
    store["k"] = 1
    assert store.get_params()["storage_options"] == {"auto_mkdir": True}
    assert pickle.loads(pickle.dumps(store))["k"] == 1


def test_a_subdict_reopens_from_its_own_parameters(tmp_path: Path) -> None:
    for store in (FileDirDict(tmp_path / "f"), FsspecDict(str(tmp_path / "u")), LocalDict()):
        sub = store.get_subdict(("a", "b"))
        sub["k"] = 1
        reopened = type(sub)(**sub.get_params())
        assert reopened["k"] == 1 and reopened.get_params() == sub.get_params()
        assert store["a", "b", "k"] == 1


def test_composed_stores_build_subdicts_from_their_parts(tmp_path: Path) -> None:
    main = FileDirDict(tmp_path / "m")
    cached = MutableDictCached(main_dict=main, data_cache=LocalDict(), etag_cache=LocalDict(
        serialization_format="etag", base_class_for_values=str))
    sub = cached.get_subdict("a")
    assert isinstance(sub, MutableDictCached) and sub.main_dict.base_dir == str(tmp_path / "m" / "a_btax")
    once = WriteOnceDict(wrapped_dict=FileDirDict(tmp_path / "w", append_only=True), p_consistency_checks=0.5)
    assert once.get_subdict("a").get_params()["p_consistency_checks"] == 0.5


@pytest.mark.parametrize("base_dir", ["~/persidict-test-home", "s3://bucket/x"], ids=["home", "url"])
def test_file_dir_dict_expands_home_and_refuses_urls(base_dir: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    if base_dir.startswith("s3"):
        with pytest.raises(ValueError, match=r"a URL, not a local folder: open it with FsspecDict"):
            FileDirDict(base_dir)
        assert not (tmp_path / "s3:").exists()
    else:
        store = FileDirDict(base_dir)
        assert store.base_dir == str(tmp_path / "persidict-test-home")
        assert not (tmp_path / "~").exists()


def test_storage_errors_never_echo_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FsspecDict(str(tmp_path))
    backend = store._backend

    def failing_read(path: str, *args: Any, **kwargs: Any) -> bytes:
        raise OSError(5, "GET https://user:pa55word@host/x?sig=s3cr3t-sig failed; AccountKey=Eby8vd==")

    for primitive in ("read", "read_decoded"):  # a local folder's get decodes from the open file
        monkeypatch.setattr(backend, primitive, failing_read)
    with pytest.raises(BackendError) as info:
        store["k"]
    for secret in ("pa55word", "s3cr3t-sig", "Eby8vd"):
        assert secret not in str(info.value)


def test_the_retry_policy_is_one_for_the_front_and_the_backend_of_every_subdict(tmp_path: Path) -> None:
    policy = RetryConfig(init_backoff=0.001, request_attempts=2)
    d = FsspecDict(str(tmp_path / "store"), retry=policy)
    for store in (d, d.get_subdict("a"), d.get_subdict(("a", "b")), pickle.loads(pickle.dumps(d))):
        assert store.get_params()["retry"] == policy
        assert store._backend.retry == policy  # the requests the backend sends again follow it too
