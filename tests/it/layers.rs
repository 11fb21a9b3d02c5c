//! The layering rule, checked on the source: a file imports only from its own layer or
//! below (kit → stages → eval → app), and no files import each other in a circle.
//!
//! Every `use` and every path in code (`crate::…`, `super::…`, a name a `use` brought
//! in) is resolved to the file that defines it, following re-exports (`pub use`) to the
//! file behind them. Paths inside macro calls are not seen. Run with `--nocapture` to
//! print the counts as JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The layers, lowest first. A module is in the layer of its first path segment.
const LAYERS: &[(&str, &[&str])] = &[
    ("kit", &["kit"]),
    (
        "stages",
        &[
            "source", "gate", "engine", "model", "cache", "query", "snapshot", "publish", "hub",
            "teach", "metrics",
        ],
    ),
    ("eval", &["eval"]),
    ("app", &["app", "main"]),
];

/// The layer of a module; `LAYERS_MAP` (`kit:a,b;stages:c;eval:;app:d`) replaces the
/// table, to measure an older tree.
fn layer_of(module: &[String]) -> Option<usize> {
    let first = module.first().map(String::as_str).unwrap_or("");
    if let Ok(map) = std::env::var("LAYERS_MAP") {
        return map.split(';').position(|layer| {
            let mods = layer.split_once(':').map_or("", |(_, m)| m);
            mods.split(',').any(|m| m == first)
        });
    }
    LAYERS.iter().position(|(_, mods)| mods.contains(&first))
}

type ModPath = Vec<String>;

struct Crate {
    /// module path → file that holds it (inline modules map to their file).
    modules: BTreeMap<ModPath, PathBuf>,
    /// module path → names its `use` items bind → the full path they stand for.
    bindings: HashMap<ModPath, HashMap<String, ModPath>>,
    /// module path → names of modules its glob imports (`use x::*`) pull in.
    globs: HashMap<ModPath, Vec<ModPath>>,
}

fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Expands a `use` tree into (bound name, full path) pairs; a glob binds "*".
fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, ModPath)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                if let Some(last) = prefix.last() {
                    out.push((last.clone(), prefix.clone()));
                }
            } else {
                let mut full = prefix.clone();
                full.push(name.clone());
                out.push((name, full));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix.clone();
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            out.push((r.rename.to_string(), full));
        }
        syn::UseTree::Glob(_) => out.push(("*".into(), prefix.clone())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix, out);
            }
        }
    }
}

/// Makes a path absolute (from the crate root) as seen from `module`; None if it
/// leaves the crate.
fn absolute(krate: &Crate, module: &ModPath, path: &[String]) -> Option<ModPath> {
    let (head, rest) = path.split_first()?;
    match head.as_str() {
        "crate" | "ocellus" => Some(rest.to_vec()),
        "self" => Some(module.iter().chain(rest).cloned().collect()),
        "super" => {
            let mut base = module.clone();
            base.pop();
            absolute(krate, &base, &[&["self".to_string()], rest].concat())
        }
        _ => {
            let mut child = module.clone();
            child.push(head.clone());
            if krate.modules.contains_key(&child) {
                return Some(child.into_iter().chain(rest.iter().cloned()).collect());
            }
            let bound = krate.bindings.get(module).and_then(|b| b.get(head))?;
            if bound.first() == Some(head) && bound.len() == 1 {
                return None; // `use some_crate;`
            }
            let base = if bound.first() == Some(head) {
                absolute_in(krate, module, bound)?
            } else {
                absolute(krate, module, bound)?
            };
            Some(base.into_iter().chain(rest.iter().cloned()).collect())
        }
    }
}

fn absolute_in(krate: &Crate, module: &ModPath, path: &[String]) -> Option<ModPath> {
    // A `use` path in 2018+ is relative to the crate root only when it says so; a bare
    // first segment is a child module of the module holding the `use`.
    let (head, rest) = path.split_first()?;
    let mut child = module.clone();
    child.push(head.clone());
    krate
        .modules
        .contains_key(&child)
        .then(|| child.into_iter().chain(rest.iter().cloned()).collect())
}

/// The file that defines what the absolute `path` names.
fn resolve(krate: &Crate, path: &[String], depth: usize) -> Option<PathBuf> {
    if depth > 16 {
        return None;
    }
    let mut module: ModPath = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        let mut next = module.clone();
        next.push(seg.clone());
        if krate.modules.contains_key(&next) {
            module = next;
            continue;
        }
        if let Some(target) = krate.bindings.get(&module).and_then(|b| b.get(seg)) {
            if let Some(abs) = absolute(krate, &module, target) {
                let full: ModPath = abs
                    .into_iter()
                    .chain(path[i + 1..].iter().cloned())
                    .collect();
                if full != path {
                    return resolve(krate, &full, depth + 1);
                }
            }
            return None; // bound to something outside the crate
        }
        for glob in krate.globs.get(&module).into_iter().flatten() {
            let mut full = glob.clone();
            full.extend(path[i..].iter().cloned());
            if let Some(file) = resolve(krate, &full, depth + 1)
                && (Some(&file) != krate.modules.get(glob) || glob_defines(krate, glob, seg))
            {
                return Some(file);
            }
        }
        break;
    }
    if module.is_empty() {
        return None; // lib.rs only declares the modules: not a crate path
    }
    krate.modules.get(&module).cloned()
}

fn glob_defines(_krate: &Crate, _glob: &ModPath, _name: &str) -> bool {
    true
}

struct Collector {
    module: ModPath,
    paths: Vec<(ModPath, Vec<String>)>,
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.module.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut out = Vec::new();
        use_paths(&u.tree, &mut Vec::new(), &mut out);
        for (_, path) in out {
            self.paths.push((self.module.clone(), path));
        }
    }
    // `pub(in crate::x)` names a module for visibility, not an import.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        // Paths written as strings: serde's `deserialize_with = "crate::…"` and friends.
        let text = quote::ToTokens::to_token_stream(a).to_string();
        for quoted in text.split('"').skip(1).step_by(2) {
            if quoted.starts_with("crate::") || quoted.starts_with("super::") {
                let segs = quoted.split("::").map(str::to_string).collect();
                self.paths.push((self.module.clone(), segs));
            }
        }
        syn::visit::visit_attribute(self, a);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.paths.push((self.module.clone(), segs));
        syn::visit::visit_path(self, p);
    }
}

struct Bindings<'a> {
    module: ModPath,
    file: &'a Path,
    modules: &'a mut BTreeMap<ModPath, PathBuf>,
    bindings: &'a mut HashMap<ModPath, HashMap<String, ModPath>>,
    globs: &'a mut HashMap<ModPath, Vec<ModPath>>,
}

impl<'ast> Visit<'ast> for Bindings<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.module.push(m.ident.to_string());
            self.modules
                .insert(self.module.clone(), self.file.to_path_buf());
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut out = Vec::new();
        use_paths(&u.tree, &mut Vec::new(), &mut out);
        for (name, path) in out {
            if name == "*" {
                self.globs
                    .entry(self.module.clone())
                    .or_default()
                    .push(path);
            } else if name != "_" {
                self.bindings
                    .entry(self.module.clone())
                    .or_default()
                    .insert(name, path);
            }
        }
    }
    // Block-level `use`s bind only inside their block; they are seen as paths.
    fn visit_block(&mut self, _: &'ast syn::Block) {}
}

struct Report {
    files: usize,
    edges: BTreeSet<(PathBuf, PathBuf)>,
    circles: Vec<Vec<PathBuf>>,
    upward: Vec<(PathBuf, PathBuf)>,
}

fn analyse(root: &Path) -> Report {
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut modules = BTreeMap::new();
    let mut asts = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let module = if file.ends_with("main.rs") && file.parent() == Some(&src) {
            vec!["main".to_string()]
        } else {
            module_of(&src, file)
        };
        modules.insert(module.clone(), file.clone());
        asts.push((file.clone(), module, ast));
    }
    let mut bindings = HashMap::new();
    let mut globs = HashMap::new();
    for (file, module, ast) in &asts {
        let mut b = Bindings {
            module: module.clone(),
            file,
            modules: &mut modules,
            bindings: &mut bindings,
            globs: &mut globs,
        };
        b.visit_file(ast);
    }
    let krate = Crate {
        modules,
        bindings,
        globs,
    };
    let mut edges = BTreeSet::new();
    for (file, module, ast) in &asts {
        let mut c = Collector {
            module: module.clone(),
            paths: Vec::new(),
        };
        c.visit_file(ast);
        for (at, path) in c.paths {
            let Some(abs) = absolute(&krate, &at, &path) else {
                continue;
            };
            if let Some(target) = resolve(&krate, &abs, 0) {
                // LAYERS_DEBUG=<from>:<to> (parts of file names) shows the paths behind an edge.
                if let Ok(pair) = std::env::var("LAYERS_DEBUG")
                    && let Some((from, to)) = pair.split_once(':')
                    && file.to_string_lossy().contains(from)
                    && target.to_string_lossy().contains(to)
                {
                    println!(
                        "debug: {} {:?} -> {}",
                        file.display(),
                        path,
                        target.display()
                    );
                }
                if &target != file {
                    edges.insert((file.clone(), target));
                }
            }
        }
    }
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_path_buf();
    let edges: BTreeSet<(PathBuf, PathBuf)> =
        edges.into_iter().map(|(a, b)| (rel(&a), rel(&b))).collect();
    let layer = |p: &Path| {
        let src = Path::new("src");
        if p == src.join("main.rs") {
            return layer_of(&["main".to_string()]);
        }
        layer_of(&module_of(src, p))
    };
    let upward = edges
        .iter()
        .filter(|(a, b)| match (layer(a), layer(b)) {
            (Some(la), Some(lb)) => lb > la,
            (None, _) | (_, None) => !a.ends_with("lib.rs"),
        })
        .cloned()
        .collect();
    Report {
        files: files.len(),
        circles: circles(&edges),
        edges,
        upward,
    }
}

/// Strongly connected components of more than one file (Tarjan).
fn circles(edges: &BTreeSet<(PathBuf, PathBuf)>) -> Vec<Vec<PathBuf>> {
    let mut nodes: Vec<&PathBuf> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    nodes.sort();
    nodes.dedup();
    let index: HashMap<&PathBuf, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut adj = vec![Vec::new(); nodes.len()];
    for (a, b) in edges {
        adj[index[a]].push(index[b]);
    }
    struct T {
        idx: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn strong(v: usize, adj: &[Vec<usize>], t: &mut T) {
        t.idx[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &adj[v] {
            match t.idx[w] {
                None => {
                    strong(w, adj, t);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.idx[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let n = nodes.len();
    let mut t = T {
        idx: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.idx[v].is_none() {
            strong(v, &adj, &mut t);
        }
    }
    t.out
        .into_iter()
        .map(|c| {
            let mut files: Vec<PathBuf> = c.into_iter().map(|i| nodes[i].clone()).collect();
            files.sort();
            files
        })
        .collect()
}

#[test]
fn every_file_imports_only_its_own_layer_or_below_and_no_circle() {
    let root = std::env::var_os("LAYERS_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let report = analyse(&root);
    let show = |p: &PathBuf| p.display().to_string();
    let json = serde_json::json!({
        "files": report.files,
        "imports": report.edges.len(),
        "circles": report.circles.len(),
        "files_in_circles": report.circles.iter().map(Vec::len).sum::<usize>(),
        "upward_imports": report.upward.len(),
    });
    println!("{json}");
    for c in &report.circles {
        println!(
            "circle: {}",
            c.iter().map(show).collect::<Vec<_>>().join(" ")
        );
        for (a, b) in &report.edges {
            if c.contains(a) && c.contains(b) {
                println!("    {} -> {}", show(a), show(b));
            }
        }
    }
    for (a, b) in &report.upward {
        println!("upward: {} -> {}", show(a), show(b));
    }
    assert!(
        report.circles.is_empty() && report.upward.is_empty(),
        "{} circle(s) of files and {} upward import(s); see above",
        report.circles.len(),
        report.upward.len()
    );
}
