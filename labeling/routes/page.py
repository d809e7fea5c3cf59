"""The review page at ``/review`` and its scripts and styles."""

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"review.js": "text/javascript", "review-lists.js": "text/javascript", "review-evidence.js": "text/javascript",
          "review-appeals.js": "text/javascript", "review-speakers.js": "text/javascript", "review.css": "text/css"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

router = APIRouter()


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse((STATIC / "review.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)


@router.get("/review/static/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, {"message": "no such file"})
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"X-Content-Type-Options": "nosniff",
                                                                         "Cache-Control": "no-cache"})
