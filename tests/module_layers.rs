//! The file, topology, scenario and timeline modules form layers with no import
//! cycle: each may use the ones below it, never one above. Read from the sources, so a
//! new `use` that closes a cycle fails here with the file and line.

use std::path::Path;

/// Lowest first.
const LAYERS: &[&str] = &["diag", "check", "topology", "timeline", "scenario", "plan", "spec", "call", "load"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::NAME` a source file names outside comments, with its line.
fn uses(src: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let word = |s: &str| s.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::C}`: every name in the group.
                let inner = group.split('}').next().unwrap_or("");
                found.extend(inner.split(',').map(word).filter(|w| !w.is_empty()).map(|w| (i + 1, w)));
            } else {
                found.push((i + 1, word(rest)));
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for (rank, layer) in LAYERS.iter().enumerate() {
        let mut files = Vec::new();
        let dir = src.join(layer);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(src.join(format!("{layer}.rs")));
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (line, name) in uses(&text) {
                if LAYERS.iter().position(|l| *l == name).is_some_and(|r| r > rank) {
                    bad.push(format!("{}:{line}: `{layer}` uses `crate::{name}`", f.display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "imports against the layering (lowest first: {LAYERS:?}):\n{}", bad.join("\n"));
}

#[test]
fn the_scanner_sees_imports_and_skips_comments() {
    let u = uses(
        "use crate::spec::Spec; // crate::call\n/// [`crate::plan`]\nlet x = crate::timeline::analyze;\nuse crate::{plan, topology::Host};",
    );
    let names: Vec<(usize, &str)> = u.iter().map(|(l, n)| (*l, n.as_str())).collect();
    assert_eq!(names, [(1, "spec"), (3, "timeline"), (4, "plan"), (4, "topology")]);
}
