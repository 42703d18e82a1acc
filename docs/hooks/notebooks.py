"""MkDocs hook: publish the repository's notebooks/ folder on the site, without copying it.

The notebooks live in the top-level ``notebooks/`` folder (where they are run and
tested), outside ``docs_dir``.  Rather than a symlink (which a Windows checkout turns
into a text file) or a copy (which goes stale), this hook adds each ``*.ipynb`` file
to the build as ``notebooks/<name>.ipynb``, read from its real place.  It runs before
mkdocs-jupyter, which then renders them (with their committed outputs, never executed).

mkdocs-jupyter hands its HTML to the site as it is, so this hook also does for notebook
pages what MkDocs does for Markdown pages:

- relative links are resolved against the notebook's place in the repository and
  pointed at the page they name: ``pipeline.ipynb`` (a sibling notebook) and
  ``../docs/concurrency.md#rule-r`` (a documentation page) work on GitHub, in
  Jupyter and on the site;
- the table of contents is read from the headings of the rendered page, so its
  anchors are the ids the page really has (mkdocs-jupyter derives them separately,
  and they differ for headings with code in them);
- a link to a heading of the same notebook written as Jupyter writes it
  (``#Step-one:-load-the-data``: the heading's text, spaces turned into ``-``) is
  pointed at the id the heading has on the site.
"""

from __future__ import annotations

import html
import os
import posixpath
import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import get_toc

NOTEBOOKS = "notebooks"
"""The folder, next to mkdocs.yml, whose notebooks appear on the site under the same name."""

_LINK = re.compile(r'(<a\s[^>]*?href=")([^"]*)(")')
_HEADING = re.compile(r'<h([1-6])\s[^>]*?id="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)
_ANCHOR_LINK = re.compile(r'<a class="anchor-link"[^>]*>.*?</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps every .ipynb file it is given
def on_files(files: Files, config: MkDocsConfig) -> Files:
    # src_dir is the repository: the file is notebooks/<name>.ipynb there and on the site.
    root = Path(config.config_file_path).parent
    for notebook in sorted((root / NOTEBOOKS).glob("*.ipynb")):
        files.append(File(f"{NOTEBOOKS}/{notebook.name}", str(root), config.site_dir, config.use_directory_urls))
    return files


def on_page_content(content: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not page.file.src_uri.endswith(".ipynb"):
        return content
    tokens = _toc_tokens(content)
    jupyter_ids = {"#" + token["name"].replace(" ", "-"): "#" + token["id"] for token in _flat(tokens)}
    content = _LINK.sub(lambda match: _relinked(match, page, config, files, jupyter_ids), content)
    page.toc = get_toc(cast(Any, tokens))  # the token dicts of Python-Markdown's toc extension
    return content


def _relinked(
    match: re.Match[str], page: Page, config: MkDocsConfig, files: Files, jupyter_ids: dict[str, str]
) -> str:
    """The link with its target replaced by the site URL of the page it names, if it names one."""
    href = html.unescape(match.group(2))
    if unquote(href) in jupyter_ids:
        return match.group(1) + html.escape(jupyter_ids[unquote(href)]) + match.group(3)
    if not href or href.startswith(("#", "/")) or _SCHEME.match(href):
        return match.group(0)
    path, hash_sign, fragment = href.partition("#")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), unquote(path)))
    docs = Path(os.path.relpath(config.docs_dir, Path(config.config_file_path).parent)).as_posix() + "/"
    if target.startswith(docs):
        target = target[len(docs):]  # a link from the notebooks/ folder into the docs/ folder
    file = files.get_file_from_path(target)
    if file is None:
        return match.group(0)  # not on the site: left for the link check to report
    return match.group(1) + html.escape(file.url_relative_to(page.file) + hash_sign + fragment) + match.group(3)


def _toc_tokens(content: str) -> list[dict[str, Any]]:
    """Nested table-of-contents tokens (as Python-Markdown's toc extension makes) for the page's headings."""
    top: list[dict[str, Any]] = []
    open_tokens: list[dict[str, Any]] = []
    for level, anchor, inner in _HEADING.findall(content):
        name = html.unescape(_TAG.sub("", _ANCHOR_LINK.sub("", inner))).strip()
        token = {"level": int(level), "id": html.unescape(anchor), "name": name, "children": []}
        while open_tokens and open_tokens[-1]["level"] >= token["level"]:
            open_tokens.pop()
        (open_tokens[-1]["children"] if open_tokens else top).append(token)
        open_tokens.append(token)
    return top


def _flat(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [each for token in tokens for each in (token, *_flat(token["children"]))]
