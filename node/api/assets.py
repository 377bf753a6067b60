"""The dashboard's files (node/api/static/), vendored in the package: no CDN, no build step.

They are read once, when the app is built, and served from memory: a fixed set of
names, so no request path ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

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


class StaticAssets:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.files = load_assets(directory)

    def respond(self, name: str) -> Response:
        body, media_type = self.files[name]
        headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "no-cache"}
        return Response(body, media_type=media_type, headers=headers)

    async def index(self, request: Request) -> Response:
        return self.respond("index.html")

    async def file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.files or name == "index.html":
            raise HTTPException(404, f"no dashboard file {name!r}")
        return self.respond(name)
