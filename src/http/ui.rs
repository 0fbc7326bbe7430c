//! `GET /`: the built-in live-stream page (one HTML file compiled into the
//! binary: no CDN, no build step).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/ui/index.html");

pub async fn page() -> Response {
    asset(PAGE, "text/html; charset=utf-8", "no-cache")
}

/// A built-in file with its content type and caching.
fn asset(body: &'static str, kind: &'static str, cache: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// The page's icon: a small SVG (browsers ask for one; a 404 in their
/// console is the first thing a newcomer sees otherwise).
const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#2f6fed\"/>\
<path d=\"M9 8v16M23 8v16M9 16h14\" stroke=\"#fff\" stroke-width=\"3.5\" stroke-linecap=\"round\"/></svg>";

pub async fn icon() -> Response {
    asset(ICON, "image/svg+xml", "public, max-age=86400")
}
