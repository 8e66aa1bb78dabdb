//! The shape of the code, checked: no module of the server or token crate imports, directly or
//! through others, a module that imports it back (a file-level import cycle), and no source
//! file outside tests grows past the size a reader can hold (`MAX_LINES`).
//!
//! Edges are what a file names: `use crate::…`, `use super::…`, `crate::a::b` paths, and a
//! child module named by its bare name (`conn::serve`). Declaring a module (`mod x;`) is not an
//! edge; re-exporting it (`pub use x::Y`) is. `#[cfg(test)]` code is ignored.

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a source file may have (tests excluded).
const MAX_LINES: usize = 620;

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The code a reader of the module sees outside its tests, without comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `use` tree on one line, spaces kept only around `as`.
fn tidy(tree: &str) -> String {
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 && (*w == "as" || words[i - 1] == "as") {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Expands a `use` tree (`crate::{a, b::{c, d}}`) into its paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let (mut depth, mut start) = (0usize, 0usize);
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(prefix, &inner[start..], out);
        return;
    }
    if let Some(i) = tree.find("::{") {
        expand(&format!("{prefix}{}::", &tree[..i]), &tree[i + 2..], out);
        return;
    }
    if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap_or(tree);
        out.push(format!("{prefix}{path}"));
    }
}

/// The deepest module a path names, if it names one of this crate's.
fn resolve(from: &Module, path: &str, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut parts = path.split("::").map(str::trim).peekable();
    let mut base: Module = match parts.peek().copied() {
        Some("crate") => {
            parts.next();
            Vec::new()
        }
        Some("super") => {
            let mut b = from.clone();
            while parts.peek().copied() == Some("super") {
                parts.next();
                b.pop();
            }
            b
        }
        Some("self") => {
            parts.next();
            from.clone()
        }
        _ => return None,
    };
    let mut best = modules.contains(&base).then(|| base.clone());
    for p in parts {
        base.push(p.to_owned());
        if modules.contains(&base) {
            best = Some(base.clone());
        } else {
            break;
        }
    }
    best
}

fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let from = module_of(src, file);
        let text = code(&std::fs::read_to_string(file).expect("read"));
        let mut paths = Vec::new();
        for stmt in text.split(';') {
            let stmt = stmt.trim_start();
            let rest = stmt
                .strip_prefix("pub use ")
                .or_else(|| stmt.strip_prefix("pub(crate) use "))
                .or_else(|| stmt.strip_prefix("use "));
            if let Some(tree) = rest {
                let tree = tidy(tree);
                expand("", &tree, &mut paths);
            }
        }
        // Inline paths: `crate::a::b`, `super::x`, and a child module by its bare name.
        let bytes = text.as_bytes();
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let mut i = 0;
        while i < bytes.len() {
            if is_ident(bytes[i]) && (i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
                let start = i;
                while i < bytes.len() && (is_ident(bytes[i]) || bytes[i] == b':') {
                    i += 1;
                }
                let path = text[start..i].trim_end_matches(':');
                if path.contains("::") {
                    let head = path.split("::").next().unwrap_or_default();
                    if matches!(head, "crate" | "super" | "self") {
                        paths.push(path.to_owned());
                    } else {
                        let mut child = from.clone();
                        child.push(head.to_owned());
                        if modules.contains(&child) {
                            paths.push(format!("self::{path}"));
                        }
                    }
                }
            } else {
                i += 1;
            }
        }
        let targets = edges.entry(from.clone()).or_default();
        for p in paths {
            // `use child::X` names a child module by its bare name.
            let head = p.split("::").next().unwrap_or_default();
            let p = if matches!(head, "crate" | "super" | "self") {
                p
            } else {
                let mut child = from.clone();
                child.push(head.to_owned());
                if modules.contains(&child) {
                    format!("self::{p}")
                } else {
                    p
                }
            };
            if let Some(to) = resolve(&from, &p, &modules) {
                if to != from {
                    targets.insert(to);
                }
            }
        }
    }
    edges
}

/// Every cycle's modules (strongly connected components of more than one module).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    // Kosaraju, iteratively: order by finish time, then collect on the reversed graph.
    let nodes: Vec<&Module> = edges.keys().collect();
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for &n in &nodes {
        if seen.contains(n) {
            continue;
        }
        let mut stack: Vec<(&Module, bool)> = vec![(n, false)];
        while let Some((m, done)) = stack.pop() {
            if done {
                order.push(m);
                continue;
            }
            if !seen.insert(m) {
                continue;
            }
            stack.push((m, true));
            for t in edges.get(m).into_iter().flatten() {
                if !seen.contains(t) {
                    stack.push((t, false));
                }
            }
        }
    }
    let mut reversed: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (from, tos) in edges {
        for to in tos {
            reversed.entry(to).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for &n in order.iter().rev() {
        if assigned.contains(n) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![n];
        while let Some(m) = stack.pop() {
            if !assigned.insert(m) {
                continue;
            }
            component.push(if m.is_empty() {
                "crate".to_owned()
            } else {
                m.join("::")
            });
            for &f in reversed.get(m).into_iter().flatten() {
                if !assigned.contains(f) {
                    stack.push(f);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            out.push(component);
        }
    }
    out
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn server_and_token_crates_have_no_import_cycle() {
    for name in [
        "tessera-server",
        "tessera-token",
        "tessera-core",
        "tessera-store",
        "tessera-guard",
    ] {
        let edges = graph(&crate_src(name));
        if std::env::var_os("ARCH_EDGES").is_some() {
            for (from, to) in &edges {
                eprintln!("{} -> {:?}", from.join("::"), to);
            }
        }
        let found = cycles(&edges);
        assert!(found.is_empty(), "{name}: import cycles: {found:#?}");
    }
}

#[test]
fn the_checker_finds_a_cycle() {
    let dir = std::env::temp_dir().join(format!("tessera-arch-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").expect("write");
    std::fs::write(src.join("a/mod.rs"), "mod c;\npub use c::X;\n").expect("write");
    std::fs::write(src.join("a/c.rs"), "use crate::b::Y;\npub struct X;\n").expect("write");
    std::fs::write(
        src.join("b.rs"),
        "pub struct Y;\nfn f() { let _ = super::a::X; }\n",
    )
    .expect("write");
    let found = cycles(&graph(&src));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(found, vec![vec!["a", "a::c", "b"]]);
}

#[test]
fn no_source_file_is_too_long_to_read() {
    let mut long = Vec::new();
    for name in [
        "tessera-server",
        "tessera-token",
        "tessera-core",
        "tessera-store",
        "tessera-bench",
        "tessera-guard",
    ] {
        let mut files = Vec::new();
        rust_files(&crate_src(name), &mut files);
        // Test-only modules (`#[cfg(test)] mod tests;`) are tests.
        files.retain(|f| {
            !f.file_name()
                .is_some_and(|n| n == "tests.rs" || n == "test_support.rs")
        });
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            let lines = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => text[..i].lines().count(),
                None => text.lines().count(),
            };
            if lines > MAX_LINES {
                long.push(format!("{} ({lines} lines)", f.display()));
            }
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:#?}");
}
