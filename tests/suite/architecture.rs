//! The shape of the code (README "Architecture"): no import
//! cycle between the top-level modules of `src/`, nor between the sibling
//! submodules of one module, and a pure core (`engine`, `rules`, `domain`)
//! that imports nothing of the shell.
//!
//! The module graph is read from the source text: a file `src/a/b.rs` or
//! `src/a/b/mod.rs` is module `a::b`, and it depends on every module named
//! by a `crate::…` or `super::…` path in it (`use` lines, grouped `use`
//! trees and paths in expressions alike). Comment lines and the inline
//! `#[cfg(test)] mod tests` block at the end of a file are not read: a doc
//! link is not an import, and a unit test may use the shell to set up.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The shell's modules, which the pure core must not import.
const SHELL: &[&str] = &[
    "store",
    "openrouter",
    "config",
    "clock",
    "context",
    "run",
    "service",
    "commands",
    "cli",
    "notify",
    "metrics",
    "report",
    "demo",
    "logging",
    "output",
    "sandbox",
    "ui",
    "listing",
];

/// The I/O crates, which the pure core must not use.
const IO_CRATES: &[&str] = &["tokio", "reqwest", "sqlx"];

/// The pure core.
const CORE: &[&str] = &["engine", "rules", "domain"];

/// One module's source, as a path of names (`["store", "runs"]`).
struct Module {
    path: Vec<String>,
    text: String,
}

/// Every module under `src/` but the binary's `main.rs` (which uses the
/// library by name).
fn modules() -> Vec<Module> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut names: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if names == ["main"] {
                continue;
            }
            if names.last().is_some_and(|n| n == "mod" || n == "lib") {
                names.pop();
            }
            out.push(Module {
                path: names,
                text: code_of(&std::fs::read_to_string(&path).unwrap()),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The text of a file without its comment lines and its trailing unit tests.
fn code_of(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path named after `crate::` or `super::` in `code`, as absolute
/// paths of names; grouped `use` trees (`crate::{a, b::{c, d}}`) give one
/// path per leaf.
fn paths_in(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for prefix in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // `super::super::`, `self::crate…`, or part of a longer name
            }
            let base: Vec<String> = if prefix == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            out.extend(tree(&base, rest));
        }
    }
    out
}

/// The paths of a `use` tree or a path in an expression that starts at `text`.
fn tree(base: &[String], text: &str) -> Vec<Vec<String>> {
    let mut path = base.to_vec();
    let mut rest = text;
    loop {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            if let Some(inner) = rest.strip_prefix('{') {
                return group(inner)
                    .into_iter()
                    .flat_map(|item| tree(&path, item))
                    .collect();
            }
            return vec![path];
        }
        rest = &rest[name.len()..];
        if name != "self" {
            path.push(name);
        }
        match rest.strip_prefix("::") {
            Some(more) => rest = more,
            None => return vec![path],
        }
    }
}

/// The items of a `{…}` group, `inner` starting just after its `{`.
fn group(inner: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(inner[start..i].trim());
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Module → the modules it imports (the longest known module prefix of
/// each path it names), itself left out.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules = modules();
    let known: BTreeSet<&[String]> = modules.iter().map(|m| m.path.as_slice()).collect();
    modules
        .iter()
        .map(|m| {
            let deps = paths_in(&m.path, &m.text)
                .into_iter()
                .filter_map(|p| {
                    (1..=p.len())
                        .rev()
                        .map(|n| &p[..n])
                        .find(|prefix| known.contains(prefix))
                        .map(<[String]>::to_vec)
                })
                .filter(|d| *d != m.path)
                .collect();
            (m.path.clone(), deps)
        })
        .collect()
}

/// The cycles among the children of `parent` (the top-level modules for
/// `[]`): each a set of modules that import each other, with the imports
/// that close it, as `a -> b` lines.
fn cycles_under(
    graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    parent: &[String],
) -> Vec<Vec<String>> {
    let child = |m: &[String]| -> Option<String> {
        (m.len() > parent.len() && m.starts_with(parent)).then(|| m[parent.len()].clone())
    };
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for (from, deps) in graph {
        let Some(a) = child(from) else { continue };
        for to in deps {
            if let Some(b) = child(to).filter(|b| *b != a) {
                edges.insert((a.clone(), b));
            }
        }
    }
    let mut g: DiGraph<String, ()> = DiGraph::new();
    let mut nodes: BTreeMap<String, NodeIndex> = BTreeMap::new();
    let mut node = |g: &mut DiGraph<String, ()>, name: &String| {
        *nodes
            .entry(name.clone())
            .or_insert_with(|| g.add_node(name.clone()))
    };
    for (a, b) in &edges {
        let (a, b) = (node(&mut g, a), node(&mut g, b));
        g.add_edge(a, b, ());
    }
    tarjan_scc(&g)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|scc| {
            let names: BTreeSet<&String> = scc.iter().map(|&n| &g[n]).collect();
            edges
                .iter()
                .filter(|(a, b)| names.contains(a) && names.contains(b))
                .map(|(a, b)| format!("{}{a} -> {}{b}", prefix(parent), prefix(parent)))
                .collect()
        })
        .collect()
}

fn prefix(parent: &[String]) -> String {
    parent.iter().map(|p| format!("{p}::")).collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = graph();
    let parents: BTreeSet<Vec<String>> = std::iter::once(Vec::new())
        .chain(graph.keys().cloned())
        .collect();
    let cycles: Vec<Vec<String>> = parents
        .iter()
        .flat_map(|p| cycles_under(&graph, p))
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles in src/ (each block is one cycle):\n\n{}",
        cycles
            .iter()
            .map(|c| c.join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn the_pure_core_imports_nothing_of_the_shell() {
    let graph = graph();
    let mut offences = Vec::new();
    for module in modules() {
        let Some(top) = module.path.first() else {
            continue;
        };
        if !CORE.contains(&top.as_str()) {
            continue;
        }
        let name = module.path.join("::");
        for dep in &graph[&module.path] {
            if SHELL.contains(&dep[0].as_str()) {
                offences.push(format!("{name} imports crate::{}", dep.join("::")));
            }
        }
        for krate in IO_CRATES {
            if module.text.contains(&format!("{krate}::")) {
                offences.push(format!("{name} uses the crate {krate}"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the pure core (engine, rules, domain) imports the shell:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_module_graph_is_read_from_use_trees_and_expression_paths() {
    let module = ["store".to_string(), "claims".to_string()];
    let code = "use super::{Store, batch::in_chunks};\n\
                use crate::engine::{self, plan::{Change, FieldChange}};\n\
                let x = crate::domain::Field::Limit;";
    let paths: Vec<String> = paths_in(&module, code)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        paths,
        [
            "engine",
            "engine::plan::Change",
            "engine::plan::FieldChange",
            "domain::Field::Limit",
            "store::Store",
            "store::batch::in_chunks",
        ]
    );
    assert_eq!(
        code_of("//! [`crate::run`]\nuse crate::x;\n#[cfg(test)]\nmod tests {\nuse crate::y;\n}"),
        "use crate::x;"
    );
}
