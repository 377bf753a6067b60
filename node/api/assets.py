"""The dashboard's files (node/api/static/), vendored in the package: no CDN, no build step.

They are read once, when the app is built, and served from memory: a fixed set of
names, so no request path ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import Response

from node.api.operations import Call

STATIC_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page may load only its own files and talk only to its own node.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def load_assets(directory: Path = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    found = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in MEDIA_TYPES:
            found[path.name] = (path.read_bytes(), MEDIA_TYPES[path.suffix])
    if "index.html" not in found:
        raise RuntimeError(f"the dashboard is missing from {directory}: the package is incomplete")
    return found


def get_file_media_types() -> tuple[str, ...]:
    """The media types of /static/{name}: every kind of file but the page itself."""
    return tuple(dict.fromkeys(media.split(";")[0] for suffix, media in MEDIA_TYPES.items() if suffix != ".html"))


class StaticAssets:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.files = load_assets(directory)
        # What /static/{name} serves; the page is served at / only.
        self.names = tuple(name for name in self.files if name != "index.html")

    def respond(self, name: str) -> Response:
        body, media_type = self.files[name]
        headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "no-cache"}
        return Response(body, media_type=media_type, headers=headers)

    async def index(self, call: Call) -> Response:
        return self.respond("index.html")

    async def file(self, call: Call) -> Response:
        """``name`` is one of ``names``: the route's parameter refuses any other with 404."""
        return self.respond(call["name"])
