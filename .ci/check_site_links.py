"""Every link inside the built HTML site points at a file of the site and, with a #fragment, at an
element id of that file. Links that leave the site (http:, https:, mailto:) are not followed.

Usage: python check_site_links.py BUILD_DIR   (exit status 1 and a list of broken links otherwise)
"""
from __future__ import annotations

import html.parser
import pathlib
import sys
import urllib.parse


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set = set()
        self.links: list = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and not (tag == "link" and attrs.get("rel") == "canonical"):
                self.links.append(attrs[key])


def main(root: str) -> int:
    root = pathlib.Path(root).resolve()
    pages = {}
    for path in root.rglob("*.html"):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path] = page
    broken, checked = [], 0
    for path, page in pages.items():
        for link in page.links:
            parts = urllib.parse.urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                continue
            checked += 1
            target = (path.parent / urllib.parse.unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if root not in target.parents and target != root:
                broken.append((path, link, "outside the site"))
            elif not target.is_file():
                broken.append((path, link, "no such file"))
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if urllib.parse.unquote(parts.fragment) not in ids:
                    broken.append((path, link, "no such anchor"))
    for path, link, why in broken:
        print(f"{path.relative_to(root)}: {link}: {why}", file=sys.stderr)
    print(f"{checked} links inside the site in {len(pages)} pages, {len(broken)} broken")
    return 1 if broken or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
