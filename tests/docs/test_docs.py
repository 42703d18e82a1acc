"""The documentation site: it builds with ``mkdocs build --strict``, no link points at a missing
page or anchor, the API reference covers every public name, and the examples on its pages run.

mkdocs' own validation (``strict: true`` and ``validation:`` in mkdocs.yml) already refuses many
broken links; the link check here is the safety net over the finished HTML, notebooks and
generated API pages included.  The notebooks are rendered with their committed outputs, never
executed, so the build takes seconds.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

import persidict

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MIN_PAGES = 8
SITE_ORIGIN = "https://site.invalid/"
"""A stand-in origin for resolving relative links (the site is built without ``site_url``)."""


class _LinksAndIds(HTMLParser):
    """Collects the ``href`` of every ``<a>`` and every ``id``/``name`` anchor of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])  # type: ignore[arg-type]
        if tag == "a":
            if values.get("name"):
                self.ids.add(values["name"])  # type: ignore[arg-type]
            if values.get("href") is not None:
                self.hrefs.append(values["href"])  # type: ignore[arg-type]


def _parse(page: Path) -> _LinksAndIds:
    parser = _LinksAndIds()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module with ``mkdocs build --strict`` into a temporary folder."""
    site_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner about MkDocs 2.0
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(site_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"
    return site_dir


def _pages(site: Path) -> Iterator[Path]:
    for page in sorted(site.rglob("*.html")):
        if page.name != "404.html":  # its links are written for any depth of the site
            yield page


def _target_file(site: Path, path: str) -> Path:
    """The file a site path (``/concepts/``, ``/assets/x.css``) is served from."""
    target = site / unquote(path).lstrip("/")
    return target / "index.html" if path.endswith("/") or target.is_dir() else target


def _url_of(site: Path, page: Path) -> str:
    return SITE_ORIGIN + page.relative_to(site).as_posix()


def test_site_has_the_pages(site: Path) -> None:
    pages = [page.relative_to(site).as_posix() for page in _pages(site)]
    assert len(pages) >= MIN_PAGES, pages
    for expected in ("index.html", "concurrency/index.html", "reference/index.html",
                     "notebooks/quickstart/index.html"):
        assert expected in pages


def test_long_code_lines_wrap_instead_of_being_cut(site: Path) -> None:
    """At 1280 px the text column is ~700 px: every page loads the style that wraps code (checked by eye in a
    headless Chromium at 1280 px; see docs/stylesheets/extra.css)."""
    style = (site / "stylesheets" / "extra.css").read_text(encoding="utf-8")
    assert "white-space: pre-wrap" in style and ".jupyter-wrapper .highlight-ipynb pre" in style
    for page in (site / "index.html", site / "notebooks" / "quickstart" / "index.html"):
        assert "stylesheets/extra.css" in page.read_text(encoding="utf-8"), page


def test_every_internal_link_reaches_a_page_and_an_anchor(site: Path) -> None:
    parsed = {page: _parse(page) for page in _pages(site)}
    broken: list[str] = []
    for page, links in parsed.items():
        base = _url_of(site, page)
        for href in links.hrefs:
            url = urlsplit(urljoin(base, href))
            if f"{url.scheme}://{url.netloc}/" != SITE_ORIGIN:
                continue  # another site (or mailto:, javascript:)
            target = _target_file(site, url.path)
            where = f"{page.relative_to(site)}: {href}"
            if not target.is_file():
                broken.append(f"{where} (no page {target.relative_to(site)})")
            elif url.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{where} (no id {unquote(url.fragment)!r} in {target.relative_to(site)})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_api_reference_covers_every_public_name(site: Path) -> None:
    ids = _parse(site / "reference" / "index.html").ids
    documented = {name for name in persidict.__all__
                  if any(re.fullmatch(rf"persidict(\.\w+)*\.{re.escape(name)}", id_) for id_ in ids)}
    assert set(persidict.__all__) - documented == set()


_DOC_REFERENCE = re.compile(r"docs/([\w-]+)\.md(?:#([\w.-]*[\w-]))?")


def _code_references() -> Iterator[tuple[str, str, str]]:
    """``(file:line, page, anchor)`` for every ``docs/<page>.md[#<anchor>]`` in the code and tests."""
    for folder in (ROOT / "persidict", ROOT / "tests"):
        for source in sorted(folder.rglob("*.py")):
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
                for page, anchor in _DOC_REFERENCE.findall(line):
                    yield f"{source.relative_to(ROOT)}:{number}", page, anchor


def test_the_code_cites_anchors_that_exist(site: Path) -> None:
    assert any(True for _ in _code_references())
    missing = []
    for where, page, anchor in _code_references():
        target = site / ("" if page == "index" else page) / "index.html"
        if not target.is_file() or (anchor and anchor not in _parse(target).ids):
            missing.append(f"{where}: docs/{page}.md#{anchor}")
    assert not missing, "the code cites anchors the site lacks:\n" + "\n".join(missing)


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_the_examples_of_a_page_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write to the current folder write here
    failures, _ = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert failures == 0
