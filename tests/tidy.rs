//! Keeps the layering of ARCHITECTURE.md true by itself. Each module's files may not name the
//! crates or modules it must not know (word rules); and the graph of imports between top-level
//! modules, read from the source, may point only down the layer list of ARCHITECTURE.md's
//! `## Layers` section and may hold no circle. A failure names the file, the line and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// (module folder, forbidden words, why).
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "src/domain",
        &[
            "tokio",
            "sqlx",
            "reqwest",
            "std::fs",
            "std::net",
            "std::process",
            "std::io",
            "crate::store",
            "crate::chat",
            "crate::deploy",
            "crate::engine",
            "crate::command",
            "crate::process",
            "slack_morphism",
            "serenity",
            "kube",
        ],
        "the domain is pure: no I/O and no other layer",
    ),
    (
        "src/process",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "crate::engine",
            "crate::deploy",
            "crate::store",
            "crate::config",
            "crate::policy",
            "sqlx",
            "reqwest",
        ],
        "running a program knows only the domain: deployers, checks and commands build on it",
    ),
    (
        "src/command",
        &["slack_morphism", "serenity", "crate::chat", "sqlx"],
        "commands know no chat platform and no SQL",
    ),
    (
        "src/engine",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "sqlx",
        ],
        "the engine knows no chat platform, no commands and no SQL",
    ),
    (
        "src/deploy",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "crate::store",
            "crate::engine",
            "sqlx",
        ],
        "deployers know no chat, no commands and no store",
    ),
    (
        "src/store",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "crate::deploy",
            "crate::engine",
        ],
        "the store knows no chat platform and no deployers",
    ),
    (
        "src/policy",
        &[
            "tokio",
            "sqlx",
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::store",
        ],
        "policy knows no platform wire formats and no I/O",
    ),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn modules_do_not_reach_across_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for (folder, forbidden, why) in RULES {
        let files = rust_files(&root.join(folder));
        assert!(
            !files.is_empty(),
            "{folder} has no Rust files: is the rule stale?"
        );
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for word in *forbidden {
                    let hit = code.match_indices(word).any(|(i, _)| {
                        let before = code[..i].chars().next_back();
                        let after = code[i + word.len()..].chars().next();
                        let boundary =
                            |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                        boundary(before) && boundary(after)
                    });
                    if hit {
                        violations.push(format!(
                            "{}:{}: uses `{word}`: {why}",
                            file.strip_prefix(root).unwrap().display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing: Vec<String> = rust_files(&root.join("src"))
        .into_iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line at the top: {missing:?}"
    );
}

// The module graph.
//
// Every file under src/ but `lib.rs` (the crate root, which only declares the modules) and
// `main.rs` (the binary, which may use anything) belongs to a top-level module: its first
// folder or file name under src/. A file imports a module when its code names `crate::x…`
// (also inside a `use crate::{x::…, y}` group) or a `super::` path that climbs to the crate
// root. Comments and string literals are skipped, except a string that is nothing but such a
// path (`#[serde(with = "crate::x::y")]`), which names code too.

/// One place where a file of module `from` names module `to`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl Import {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// The tokens of Rust source with their line numbers, without comments, string and character
/// literals: just enough of a lexer to read paths.
fn tokens(text: &str, first_line: usize) -> Vec<(Token, usize)> {
    let c: Vec<char> = text.chars().collect();
    let ident_start = |ch: char| ch.is_alphabetic() || ch == '_';
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    let mut line = first_line;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if let Some((end, body)) = string_at(&c, i) {
            let body: String = c[body].iter().collect();
            if is_path(&body) {
                out.extend(tokens(&body, line));
            }
            line += c[i..end].iter().filter(|&&x| x == '\n').count();
            i = end;
        } else if ch == '\'' {
            // A character literal ('x', '\n', '\u{1F600}', '\''), else a lifetime or label.
            if next == Some('\\') {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                out.push((Token::Other, line));
                i += 1;
            }
        } else if ident_start(ch) {
            let start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            // A raw identifier keeps its `r#`, so `r#mod` is no keyword.
            if i - start == 1 && ch == 'r' && c.get(i) == Some(&'#') {
                i += 1;
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
            }
            out.push((Token::Ident(c[start..i].iter().collect()), line));
        } else {
            let token = match ch {
                ':' if next == Some(':') => {
                    i += 1;
                    Token::PathSep
                }
                '{' => Token::Open,
                '}' => Token::Close,
                ',' => Token::Comma,
                _ if ch.is_whitespace() => {
                    i += 1;
                    continue;
                }
                _ => Token::Other,
            };
            out.push((token, line));
            i += 1;
        }
    }
    out
}

/// A string literal (`"…"`, `b"…"`, `c"…"`, `r#"…"#`, `br"…"`) starting at `i`: where it
/// ends and the range of its contents.
fn string_at(c: &[char], i: usize) -> Option<(usize, std::ops::Range<usize>)> {
    let mut j = i;
    if matches!(c.get(j), Some('b' | 'c')) {
        j += 1;
    }
    let raw = c.get(j) == Some(&'r');
    let mut hashes = 0;
    if raw {
        j += 1;
        while c.get(j) == Some(&'#') {
            hashes += 1;
            j += 1;
        }
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    let start = j + 1;
    let mut k = start;
    while k < c.len() {
        if !raw && c[k] == '\\' {
            k += 2;
        } else if c[k] == '"'
            && c.get(k + 1..k + 1 + hashes)
                .is_some_and(|h| h.iter().all(|&x| x == '#'))
        {
            return Some((k + 1 + hashes, start..k));
        } else {
            k += 1;
        }
    }
    Some((c.len(), start..c.len().max(start)))
}

/// Whether a string literal is a path into the crate, such as serde's `with = "crate::x::y"`.
fn is_path(text: &str) -> bool {
    let mut parts = text.split("::");
    matches!(parts.next(), Some("crate" | "super"))
        && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// The names a path continues with at token `at`: `x` of `crate::x::…`, or `x` and `y` of
/// `crate::{x::…, y}`, each with its line.
fn path_heads(toks: &[(Token, usize)], at: usize) -> Vec<(String, usize)> {
    match toks.get(at) {
        Some((Token::Ident(name), line)) => vec![(name.clone(), *line)],
        Some((Token::Open, _)) => {
            let mut heads = Vec::new();
            let mut depth = 0;
            let mut fresh = false;
            for (token, line) in &toks[at..] {
                match token {
                    Token::Open => {
                        depth += 1;
                        fresh = depth == 1;
                        continue;
                    }
                    Token::Close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Comma if depth == 1 => {
                        fresh = true;
                        continue;
                    }
                    Token::Ident(name) if depth == 1 && fresh => heads.push((name.clone(), *line)),
                    _ => {}
                }
                fresh = false;
            }
            heads
        }
        _ => Vec::new(),
    }
}

/// The names at the crate root that a file's code reaches, with their lines. `module_path` is
/// the file's module below the crate root (`["command", "custom", "steps"]` for
/// `src/command/custom/steps.rs`); inline `mod x { … }` blocks deepen it for `super::`.
fn root_names(module_path: &[String], text: &str) -> Vec<(String, usize)> {
    let toks = tokens(text, 1);
    let token = |i: usize| toks.get(i).map(|(t, _)| t);
    let is = |i: usize, word: &str| matches!(token(i), Some(Token::Ident(w)) if w == word);
    let mut found = Vec::new();
    let mut depth = 0;
    // The inline modules around the current token, each with the brace depth inside it.
    let mut inline: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let starts_path = i == 0 || token(i - 1) != Some(&Token::PathSep);
        match &toks[i].0 {
            Token::Open => depth += 1,
            Token::Close => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Token::Ident(w)
                if w == "mod"
                    && matches!(token(i + 1), Some(Token::Ident(_)))
                    && token(i + 2) == Some(&Token::Open) =>
            {
                inline.push(depth + 1);
            }
            Token::Ident(w)
                if w == "crate" && starts_path && token(i + 1) == Some(&Token::PathSep) =>
            {
                found.extend(path_heads(&toks, i + 2));
            }
            Token::Ident(w) if w == "super" && starts_path => {
                let mut climbs = 0;
                let mut j = i;
                while is(j, "super") && token(j + 1) == Some(&Token::PathSep) {
                    climbs += 1;
                    j += 2;
                }
                if climbs > 0 && climbs == module_path.len() + inline.len() {
                    found.extend(path_heads(&toks, j));
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The module path below the crate root of a file relative to src/ (`command/custom/mod.rs`
/// → `["command", "custom"]`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|p| p == "mod") {
        path.pop();
    }
    path
}

/// The imports between distinct top-level modules in the files given as (path relative to
/// the repository, text). Names at the crate root that are no module are not imports.
fn imports(files: &[(String, String)], modules: &BTreeSet<String>) -> Vec<Import> {
    let mut found = BTreeSet::new();
    for (file, text) in files {
        let Some(relative) = Path::new(file).strip_prefix("src").ok() else {
            continue;
        };
        let path = module_path(relative);
        let Some(from) = path.first() else { continue };
        if path.len() == 1 && (from == "lib" || from == "main") {
            continue;
        }
        for (to, line) in root_names(&path, text) {
            if &to != from && modules.contains(&to) {
                found.insert(Import {
                    from: from.clone(),
                    to,
                    file: file.clone(),
                    line,
                });
            }
        }
    }
    found.into_iter().collect()
}

/// The top-level modules of src/: its folders and its files but `lib.rs` and `main.rs`.
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            if p.is_dir() {
                (!rust_files(&p).is_empty()).then(|| p.file_name()?.to_str().map(String::from))?
            } else if p.extension().is_some_and(|e| e == "rs") {
                p.file_stem()?.to_str().map(String::from)
            } else {
                None
            }
        })
        .filter(|m| m != "lib" && m != "main")
        .collect()
}

/// The source files of the crate as (path relative to the repository, text).
fn source_files(root: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = rust_files(&root.join("src"))
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f.strip_prefix(root).unwrap().display().to_string(), text)
        })
        .collect();
    files.sort();
    files
}

// The layer order.

/// The layers of ARCHITECTURE.md: the fenced block after the `<!-- layers: … -->` marker in
/// its `## Layers` section, one layer per line from the bottom, modules separated by commas.
/// Returns each module's layer, counted from 1 at the bottom.
fn parse_layers(architecture: &str) -> Result<BTreeMap<String, usize>, String> {
    let section: Vec<&str> = architecture
        .lines()
        .skip_while(|l| l.trim_end() != "## Layers")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    if section.is_empty() {
        return Err("ARCHITECTURE.md has no `## Layers` section".into());
    }
    let mut lines = section
        .iter()
        .skip_while(|l| !l.trim_start().starts_with("<!-- layers:"))
        .skip(1)
        .skip_while(|l| l.trim().is_empty());
    if lines.next().map(|l| l.trim()) != Some("```text") {
        return Err(
            "ARCHITECTURE.md's `## Layers` section has no ```text block right after its \
             `<!-- layers: … -->` marker"
                .into(),
        );
    }
    let mut layers = BTreeMap::new();
    let mut level = 0;
    let mut closed = false;
    for line in lines {
        if line.trim() == "```" {
            closed = true;
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        level += 1;
        for module in line.split(',').map(str::trim) {
            if module.is_empty() {
                return Err(format!("layer {level} (`{line}`) has an empty module name"));
            }
            if let Some(earlier) = layers.insert(module.to_string(), level) {
                return Err(format!(
                    "`{module}` is listed twice in the layers (layers {earlier} and {level})"
                ));
            }
        }
    }
    if !closed {
        return Err("the layers block of ARCHITECTURE.md is not closed by ```".into());
    }
    if layers.is_empty() {
        return Err("the layers block of ARCHITECTURE.md is empty".into());
    }
    Ok(layers)
}

/// The layers of this repository's ARCHITECTURE.md, checked against the modules of src/:
/// every module has a layer (so a new module cannot skip the rule) and every listed name is
/// a module.
fn layers(root: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let layers = parse_layers(&text).unwrap_or_else(|e| panic!("{e}"));
    let modules = top_level_modules(&root.join("src"));
    let unlisted: Vec<&String> = modules
        .iter()
        .filter(|m| !layers.contains_key(*m))
        .collect();
    assert!(
        unlisted.is_empty(),
        "modules of src/ missing from the layers of ARCHITECTURE.md (add each to the layer it \
         belongs to): {unlisted:?}"
    );
    let stale: Vec<&String> = layers.keys().filter(|m| !modules.contains(*m)).collect();
    assert!(
        stale.is_empty(),
        "the layers of ARCHITECTURE.md list names that are no module of src/: {stale:?}"
    );
    layers
}

// The checks, pure so that a synthetic graph can prove them.

/// Every import that points to a higher layer than its own module's.
fn upward_imports(imports: &[Import], layers: &BTreeMap<String, usize>) -> Vec<String> {
    imports
        .iter()
        .filter_map(|i| {
            let (from, to) = (layers.get(&i.from)?, layers.get(&i.to)?);
            (to > from).then(|| {
                format!(
                    "{}: `{}` (layer {from}) imports `{}` (layer {to}), a higher layer",
                    i.at(),
                    i.from,
                    i.to
                )
            })
        })
        .collect()
}

/// Every circle of imports between modules (a strongly connected component of more than one
/// module), with each of its edges and the first place that makes it.
fn import_circles(imports: &[Import]) -> Vec<String> {
    let mut edges: BTreeMap<(&str, &str), &Import> = BTreeMap::new();
    for import in imports {
        edges
            .entry((import.from.as_str(), import.to.as_str()))
            .or_insert(import);
    }
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for &(from, to) in edges.keys() {
        graph.entry(from).or_default().push(to);
        graph.entry(to).or_default();
    }
    strongly_connected(&graph)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let mut text = format!("circle between {}:", component.join(", "));
            for (&(from, to), import) in &edges {
                if component.contains(&from) && component.contains(&to) {
                    text += &format!("\n  {from} → {to} at {}", import.at());
                }
            }
            text
        })
        .collect()
}

/// Tarjan's strongly connected components, each sorted by name.
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        next: usize,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(node: &'a str, graph: &BTreeMap<&'a str, Vec<&'a str>>, s: &mut State<'a>) {
        s.index.insert(node, s.next);
        s.low.insert(node, s.next);
        s.next += 1;
        s.stack.push(node);
        for &to in &graph[node] {
            if !s.index.contains_key(to) {
                visit(to, graph, s);
                let low = s.low[node].min(s.low[to]);
                s.low.insert(node, low);
            } else if s.stack.contains(&to) {
                let low = s.low[node].min(s.index[to]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(member) = s.stack.pop() {
                component.push(member);
                if member == node {
                    break;
                }
            }
            component.sort();
            s.components.push(component);
        }
    }
    let mut s = State {
        next: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        components: Vec::new(),
    };
    for &node in graph.keys() {
        if !s.index.contains_key(node) {
            visit(node, graph, &mut s);
        }
    }
    s.components
}

fn source_imports(root: &Path) -> Vec<Import> {
    imports(&source_files(root), &top_level_modules(&root.join("src")))
}

#[test]
fn every_module_has_a_layer_in_architecture_md() {
    let layers = layers(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(layers.contains_key("domain"), "{layers:?}");
}

#[test]
fn modules_import_only_from_their_own_layer_or_below() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let upward = upward_imports(&source_imports(root), &layers(root));
    assert!(
        upward.is_empty(),
        "imports up the layers of ARCHITECTURE.md (layer 1 is the bottom):\n{}",
        upward.join("\n")
    );
}

#[test]
fn modules_import_each_other_in_no_circle() {
    let circles = import_circles(&source_imports(Path::new(env!("CARGO_MANIFEST_DIR"))));
    assert!(
        circles.is_empty(),
        "circles of imports between modules:\n{}",
        circles.join("\n")
    );
}

// The checker on synthetic sources.

fn synthetic(files: &[(&str, &str)]) -> Vec<Import> {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    let modules = ["app", "command", "domain", "engine", "http"]
        .map(String::from)
        .into();
    imports(&files, &modules)
}

fn edges(imports: &[Import]) -> Vec<String> {
    imports
        .iter()
        .map(|i| format!("{}:{} {}→{}", i.file, i.line, i.from, i.to))
        .collect()
}

#[test]
fn the_reader_finds_imports_in_code_only() {
    let found = synthetic(&[
        (
            "src/command/custom/steps.rs",
            "//! Calls crate::engine in prose.\n\
             use crate::{domain::Name,\n    engine::{Engine, self}};\n\
             use super::super::super::app::App; // crate::http\n\
             use super::super::registry; /* crate::http */\n\
             fn f() -> &'static str { let _ = '\"'; \"calls crate::http::serve\" }\n\
             #[serde(with = \"crate::http::wire\")]\n\
             struct S;\n\
             mod tests { use super::super::super::super::http; }\n",
        ),
        (
            "src/command/custom/mod.rs",
            "/* a /* nested */\n crate::http */ const S: &str = r#\"x \" crate::app\n\"#;\n\
             use super::super::engine::Engine;\n\
             use super::super::command::parse;\n",
        ),
        ("src/app.rs", "use crate::app::App;\nuse self::x::y;\n"),
        (
            "src/main.rs",
            "use ferry::engine;\nfn main() { crate::http::x(); }\n",
        ),
        ("src/lib.rs", "pub mod app;\n"),
    ]);
    assert_eq!(
        edges(&found),
        [
            "src/command/custom/mod.rs:4 command→engine",
            "src/command/custom/steps.rs:2 command→domain",
            "src/command/custom/steps.rs:3 command→engine",
            "src/command/custom/steps.rs:4 command→app",
            "src/command/custom/steps.rs:7 command→http",
            "src/command/custom/steps.rs:9 command→http",
        ]
    );
}

#[test]
fn the_checker_reports_an_upward_import_and_a_circle() {
    let layers = parse_layers(
        "# x\n\n## Layers\n\n<!-- layers: read by tests/tidy.rs -->\n```text\n\
         domain\nengine\napp, http\n```\n\n## Next\n",
    )
    .unwrap();
    assert_eq!(layers["domain"], 1);
    assert_eq!(layers["http"], 3);
    let found = synthetic(&[
        ("src/domain/mod.rs", "//! Pure.\nuse crate::domain::Name;\n"),
        (
            "src/domain/plan.rs",
            "//! Plans.\n\nfn f() { crate::engine::converge(); }\n",
        ),
        ("src/app.rs", "use crate::{engine::Engine, http};\n"),
        ("src/http.rs", "//! Listener.\n\nuse crate::app::App;\n"),
    ]);
    assert_eq!(
        upward_imports(&found, &layers),
        ["src/domain/plan.rs:3: `domain` (layer 1) imports `engine` (layer 2), a higher layer"]
    );
    assert_eq!(
        import_circles(&found),
        ["circle between app, http:\n  app → http at src/app.rs:1\n  http → app at src/http.rs:3"]
    );
}

#[test]
fn the_layers_must_be_in_architecture_md() {
    let missing = parse_layers("# x\n\n## Layers\n\nFrom the bottom: domain, engine.\n");
    assert!(missing.unwrap_err().contains("no ```text block"));
    assert!(
        parse_layers("# x\n")
            .unwrap_err()
            .contains("no `## Layers`")
    );
    let twice = parse_layers("## Layers\n<!-- layers: x -->\n```text\na\nb, a\n```\n");
    assert!(twice.unwrap_err().contains("`a` is listed twice"));
}
