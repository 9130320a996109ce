//! The matrix's pure core: every cell's generated file goes through the file layer,
//! the shipped expectations (snapshot, beside libwebrtc's), shards that partition the
//! cells, merging, and the renderings.

use icelab::matrix::{self, CellResult, Config, MatrixReport, MatrixSpec, Shard};
use icelab::scenario::PathClass;

#[test]
fn every_default_cell_file_parses_and_carries_its_expectation() {
    for cell in MatrixSpec::default().cells() {
        let (a, b) = (cell.a, cell.b);
        let spec = icelab::spec::parse_str("cell.toml", &matrix::cell_file(&cell))
            .unwrap_or_else(|e| panic!("{a} x {b}:\n{e}\n{}", matrix::cell_file(&cell)));
        let want = matrix::expect(a, b);
        assert_eq!(spec.expect.as_ref().unwrap().path, Some(want.path), "{a} x {b}");
        assert_eq!(spec.scenario.as_ref().unwrap().calls.len(), 1);
    }
    assert_eq!(MatrixSpec::default().cells().len(), 100);
}

/// The table a reviewer reads: each cell's class, why, and libwebrtc's entry.
#[test]
fn the_shipped_expectations_match_the_snapshot() {
    let mut out = String::new();
    for c in MatrixSpec::default().cells() {
        let (a, b) = (c.a, c.b);
        let e = matrix::expect(a, b);
        let transports = if e.relay_transports.is_empty() {
            String::new()
        } else {
            format!(" over {}", e.relay_transports.join("|"))
        };
        out += &format!("{a} x {b}: {}{transports} (libwebrtc {}) - {}\n", e.path.as_str(), e.libwebrtc, e.why);
        if let Some(d) = &e.differs {
            out += &format!("    differs: {d}\n");
        }
    }
    insta::assert_snapshot!("matrix-expectations", out);
}

#[test]
fn nat_theory_holds_in_the_table() {
    use Config::*;
    let path = |a, b| matrix::expect(a, b).path;
    // Symmetric against port-restricted or symmetric: relayed, both ways round.
    for (a, b) in [(Symm, Port), (Port, Symm), (Symm, Symm), (SymmOverCone, Port), (Symm, SymmOverCone)] {
        assert_eq!(path(a, b), PathClass::Relayed, "{a} x {b}");
    }
    // Symmetric against an address-only filter or none: direct (prflx).
    for (a, b) in [(Symm, Addr), (Addr, Symm), (Symm, Cone), (Symm, Open), (SymmOverCone, DoubleCone)] {
        assert_eq!(path(a, b), PathClass::Direct, "{a} x {b}");
    }
    // Without UDP on either side: relayed; HTTP only over TLS.
    for c in Config::ALL {
        assert_eq!(path(NoUdp, c), PathClass::Relayed);
        let want: &[&str] = if c.has_udp() || c == Http { &["tls"] } else { &["tcp", "tls"] };
        assert_eq!(matrix::expect(c, Http).relay_transports, want, "{c} x HTTP");
    }
    let relayed = MatrixSpec::default().cells().into_iter().filter(|c| path(c.a, c.b) == PathClass::Relayed).count();
    assert_eq!(relayed, 59);
}

#[test]
fn shards_partition_the_cells() {
    let n = MatrixSpec::default().cells().len();
    for count in 1..=7u32 {
        let mut seen = vec![0; n];
        for index in 1..=count {
            let s = Shard::parse(&format!("{index}/{count}")).unwrap();
            (0..n).filter(|k| s.holds(*k)).for_each(|k| seen[k] += 1);
        }
        assert!(seen.iter().all(|c| *c == 1), "{count} shards: {seen:?}");
    }
    for bad in ["0/2", "3/2", "1/0", "x", "1/x"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
}

fn synthetic(spec: &MatrixSpec, shard: Option<Shard>) -> MatrixReport {
    let cells = spec
        .cells()
        .into_iter()
        .enumerate()
        .filter(|(k, _)| shard.is_none_or(|s| s.holds(*k)))
        .map(|(_, c)| CellResult {
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
    MatrixReport { spec: spec.clone(), shard, cells, wall_s: 1.0, jobs: 2 }
}

#[test]
fn merged_shards_are_the_unsharded_report() {
    let spec = MatrixSpec::default();
    let whole = synthetic(&spec, None);
    let parts: Vec<MatrixReport> = (1..=3).map(|i| synthetic(&spec, Some(Shard { index: i, count: 3 }))).collect();
    let merged = matrix::merge(parts.clone()).unwrap();
    assert_eq!(merged, whole);
    // Through JSON, as CI runners hand them over.
    let via_json: Vec<MatrixReport> =
        parts.iter().map(|p| serde_json::from_str(&serde_json::to_string(p).unwrap()).unwrap()).collect();
    assert_eq!(matrix::merge(via_json).unwrap(), whole);
    let twice = vec![parts[0].clone(), parts[0].clone()];
    assert!(matrix::merge(twice).unwrap_err().to_string().contains("in two reports"));
}

#[test]
fn spec_files_choose_the_sides_and_errors_are_located() {
    let s = MatrixSpec::parse("m.toml", "a = [\"OPEN\", \"symm\"]\n").unwrap();
    assert_eq!(s.a, [Config::Open, Config::Symm]);
    assert_eq!(s.b.len(), 10);
    let e = MatrixSpec::parse("m.toml", "a = [\"OPEN\"]\nb = [\"PORT\", \"NOPE\"]\n").unwrap_err().to_string();
    assert!(e.starts_with("m.toml:2:14: unknown configuration `NOPE`"), "{e}");
    assert!(MatrixSpec::parse("m.toml", "c = []\n").is_err());
}

/// The impairment and peer axes: the A x B grid once per layer, each cell's file
/// carrying the layer, and a wrong word located.
#[test]
fn spec_files_add_impairment_and_peer_layers() {
    let s = MatrixSpec::parse(
        "m.toml",
        "a = [\"PORT\"]\nb = [\"SYMM\"]\nimpair = [\"none\", \"lte\"]\npeers = [\"built-in\", \"chromium\"]\n",
    )
    .unwrap();
    let cells = s.cells();
    assert_eq!(cells.len(), 4);
    let labels: Vec<String> = cells.iter().map(matrix::cell_stem).collect();
    assert_eq!(labels, ["port-symm", "port-symm-none-chromium", "port-symm-lte-built-in", "port-symm-lte-chromium"]);
    let lte_chromium = icelab::spec::parse_str("cell.toml", &matrix::cell_file(&cells[3])).unwrap();
    let alice = lte_chromium.topology.hosts.iter().find(|h| h.name == "alice").unwrap();
    assert!(alice.uplink.impair.is_some(), "the layer's preset impairs alice's link");
    let scn = lte_chromium.scenario.unwrap();
    assert_eq!(scn.offerer_peer.to_string(), "chromium");
    assert_eq!(scn.answerer_peer.to_string(), "chromium");
    // The default layer's file is the plain cell's.
    assert!(!matrix::cell_file(&cells[0]).contains("impair"));
    let e = MatrixSpec::parse("m.toml", "impair = [\"lte\", \"moon\"]\n").unwrap_err().to_string();
    assert!(e.starts_with("m.toml:1:18: unknown impairment preset `moon`"), "{e}");
    let e = MatrixSpec::parse("m.toml", "peers = [\"netscape\"]\n").unwrap_err().to_string();
    assert!(e.starts_with("m.toml:1:10: unknown peer `netscape`"), "{e}");
}

#[test]
fn spec_expectations_replace_the_shipped_ones_where_they_match() {
    let src = "a = [\"OPEN\", \"PORT\"]\nb = [\"!UDP\"]\npeers = [\"built-in\", \"chromium\"]\n\n\
               [[expect]]\na = \"OPEN\"\npeer = \"chromium\"\npath = \"direct\"\nwhy = \"ICE-TCP\"\n";
    let s = MatrixSpec::parse("m.toml", src).unwrap();
    let cells = s.cells();
    let open_chromium = cells.iter().find(|c| c.a == Config::Open && c.layer.peer == "chromium").unwrap();
    assert_eq!(open_chromium.expect.path, icelab::scenario::PathClass::Direct);
    assert_eq!(open_chromium.expect.why, "ICE-TCP (SPEC m.toml:5:1)");
    assert!(matrix::cell_file(open_chromium).contains("path = \"direct\""));
    // Every other cell keeps the shipped expectation.
    for c in cells.iter().filter(|c| *c != open_chromium) {
        assert_eq!(c.expect, matrix::expect(c.a, c.b), "{c}");
    }
    let bad = |extra: &str| MatrixSpec::parse("m.toml", &format!("[[expect]]\n{extra}")).unwrap_err().to_string();
    let e = bad("a = \"MOON\"\npath = \"direct\"\nwhy = \"x\"\n");
    assert!(e.starts_with("m.toml:2:5: unknown configuration `MOON`"), "{e}");
    let e = bad("path = \"relayed\"\nrelay-transport = [\"sctp\"]\nwhy = \"x\"\n");
    assert!(e.starts_with("m.toml:3:20: unknown relay transport `sctp`"), "{e}");
    let e = bad("path = \"sideways\"\nwhy = \"x\"\n");
    assert!(e.starts_with("m.toml:2:8: unknown variant `sideways`"), "{e}");
}

#[test]
fn the_grid_shows_every_cell() {
    let spec = MatrixSpec { a: vec![Config::Open, Config::Port], b: vec![Config::Symm], ..MatrixSpec::default() };
    let r = synthetic(&spec, None);
    let grid = matrix::grid::render(&r, Default::default());
    insta::assert_snapshot!("matrix-grid-errors", grid);
    let md = matrix::grid::markdown(&r);
    assert!(md.contains("| **OPEN** | ❌ error |"), "{md}");
}
