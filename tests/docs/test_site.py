"""The built site: ``mkdocs build --strict`` passes, and the API reference shows what the
docstrings mean, not their markup (no raw Sphinx roles, no ``Example::`` literal blocks, no
cross-reference left unresolved). One build (~20 s) serves the module's tests."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # runs mkdocs in a subprocess

#: reST markup mkdocstrings (google style, markdown) would show as text.
RAW_REST = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):|\bExamples?::")
#: An autorefs cross-reference that was not turned into a link (``[text][identifier]``).
UNRESOLVED = re.compile(r"\]\[[\w.]+\]")


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
    return subprocess.run(
        [*command, "--site-dir", str(site)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    built = mkdocs_build(ROOT / "mkdocs.yml", site)
    assert built.returncode == 0, built.stderr
    return site


def page_text(path: Path) -> str:
    """What a reader sees of an HTML page: its text, without tags, scripts and styles."""
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def reference_pages(site: Path) -> list[Path]:
    pages = sorted((site / "reference").glob("*/index.html"))
    assert len(pages) >= 5, pages
    return pages


def test_api_reference_shows_no_raw_rest_markup(site: Path) -> None:
    found = {
        str(page.relative_to(site)): sorted(set(RAW_REST.findall(page_text(page))))
        for page in reference_pages(site)
    }
    assert {page: raw for page, raw in found.items() if raw} == {}, (
        "run `python docs/convert_roles.py` (see its docstring)"
    )


def test_api_reference_cross_references_are_links(site: Path) -> None:
    for page in reference_pages(site):
        text = page_text(page)
        assert not UNRESOLVED.findall(text), page
    listen = (site / "reference" / "storage" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<a class="autorefs[^"]*"[^>]*href="[^"]*#aiostep\.Listen"', listen)


def test_example_sections_render_as_code(site: Path) -> None:
    text = (site / "reference" / "aiostep" / "index.html").read_text(encoding="utf-8")
    example = text.partition('<details class="example" open>')[2]
    assert example, "no Example: section rendered"
    assert '<div class="language-python highlight">' in example.partition("</details>")[0]


def site_url() -> str:
    match = re.search(r"^site_url:\s*(\S+)\s*$", (ROOT / "mkdocs.yml").read_text("utf-8"), re.M)
    assert match, "mkdocs.yml sets no site_url: the 404 page and the sitemap need it"
    return match.group(1)


def test_404_page_and_sitemap_use_the_site_url(site: Path) -> None:
    """The 404 page is served at any depth, so it links its assets from the path of
    ``site_url`` (a site published under /aiostep/ needs /aiostep/assets/...); the sitemap and
    the canonical links are empty without it."""
    url = site_url()
    root = urlsplit(url).path
    page = (site / "404.html").read_text(encoding="utf-8")
    assert re.search(rf'href="{re.escape(root)}assets/stylesheets/main\.[^"]+\.min\.css"', page)
    assert f"<loc>{url}quickstart/</loc>" in (site / "sitemap.xml").read_text(encoding="utf-8")
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{url}">' in index


def test_strict_build_fails_on_an_unresolved_cross_reference(tmp_path: Path) -> None:
    """The site's own build is strict: a docstring link to something the reference does not
    document fails it (so the links docs/convert_roles.py writes are all checked)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("::: linked\n", encoding="utf-8")
    (tmp_path / "linked.py").write_text(
        '"""See [`Nowhere`][linked.Nowhere]."""\n', encoding="utf-8"
    )
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        textwrap.dedent(
            """\
            site_name: broken
            plugins:
              - mkdocstrings:
                  handlers:
                    python:
                      paths: [.]
                      options:
                        docstring_style: google
            """
        ),
        encoding="utf-8",
    )
    built = mkdocs_build(config, tmp_path / "site")
    assert built.returncode != 0
    assert "linked.Nowhere" in built.stderr
