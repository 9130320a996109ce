//! The page the browser runs: HTML shell and the script that plays the call.

/// The page's script (`src/browser/page.js`).
pub const SCRIPT: &str = include_str!("page.js");

/// The HTML document served at `/`; it loads [`SCRIPT`] from `/page.js`.
pub const HTML: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>icelab peer</title></head>\
     <body><script src=\"/page.js\"></script></body></html>";
