"""Reads the Atom feed at FEED_URL with feedparser, following its RFC 5005 `next` links to
the last page, and prints JSON: every page's problems (feedparser's `bozo`), the feed's
metadata from the first page, and every entry in the order read."""

import json
import os
import sys

import feedparser

url = os.environ["FEED_URL"]
pages = []
entries = []
feed = None
while url and len(pages) < 100:
    parsed = feedparser.parse(url)
    if parsed.get("status") != 200:
        sys.exit(f"{url}: HTTP {parsed.get('status')}")
    pages.append(
        {
            "url": url,
            "bozo": bool(parsed.bozo),
            "problem": str(parsed.get("bozo_exception", "")),
            "version": parsed.version,
            "content_type": parsed.headers.get("content-type"),
            "entries": len(parsed.entries),
        }
    )
    if feed is None:
        feed = {
            "id": parsed.feed.get("id"),
            "title": parsed.feed.get("title"),
            "updated": parsed.feed.get("updated"),
            "links": [(l.get("rel"), l.get("href")) for l in parsed.feed.get("links", [])],
        }
    for e in parsed.entries:
        entries.append(
            {
                "id": e.get("id"),
                "title": e.get("title"),
                "updated": e.get("updated"),
                "author": e.get("author"),
                "link": e.get("link"),
                "summary": e.get("summary"),
                "content": e.get("content", [{}])[0].get("value"),
                "tags": [t.get("term") for t in e.get("tags", [])],
            }
        )
    url = next((l.href for l in parsed.feed.get("links", []) if l.get("rel") == "next"), None)

json.dump({"feed": feed, "pages": pages, "entries": entries}, sys.stdout)
