//! The matrix's HTML report: self-contained, and it renders in headless Chromium with
//! one heatmap cell per matrix cell (Chromium must be installed: `scripts/setup`).

use std::process::Command;

use icelab::matrix::{self, CellResult, MatrixReport, MatrixSpec};

fn report() -> MatrixReport {
    let spec = MatrixSpec::default();
    let cells = spec
        .cells()
        .into_iter()
        .map(|c| CellResult {
            a: c.a,
            b: c.b,
            expect: matrix::expect_in(c.a, c.b, &c.layer),
            layer: c.layer,
            call: None,
            error: Some("not run".into()),
            attempts: 1,
            capture: None,
        })
        .collect();
    MatrixReport { spec, shard: None, cells, wall_s: 1.0, jobs: 2 }
}

#[test]
fn the_page_fetches_nothing_and_has_a_cell_per_matrix_cell() {
    let html = matrix::html::render(&report());
    assert_eq!(html.matches("<td class=\"cell ").count(), 100);
    for banned in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(banned), "the page must fetch nothing: {banned}");
    }
}

/// Runs headless Chromium on the page, bounded by `timeout`.
fn chromium(args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .args(["60", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .args(args)
        .output()
        .expect("running chromium (install it: scripts/setup)")
}

#[test]
fn the_heatmap_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("matrix.html");
    std::fs::write(&page, matrix::html::render(&report())).unwrap();
    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url]);
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("id=\"heatmap\""), "the page did not load: {dom:.300}");
    assert_eq!(dom.matches("class=\"cell ").count(), 100, "one heatmap cell per matrix cell");
    let shot = dir.path().join("matrix.png");
    let o = chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1400,900", &url]);
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
}
