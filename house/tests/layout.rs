//! The source layout that the server rewrite works toward: no import circles between modules,
//! internal imports that name the module defining the item, event-loop stages in
//! `house/src/server/` that only call later stages, and `Conn` fields that stay private.
//!
//! Each file is parsed with `syn`, without its `#[cfg(test)]` items. Every check is a pure
//! function over [`Source`]s, so `mod tests` runs them on fixtures and shows that each can fail.
//! Limits: a macro's input is read only when it parses as `expr, expr, …` (`vec!`, `assert!`),
//! so `macro_rules!` bodies (`$crate::…`) are not; `super::…` is a crate path only when it
//! climbs exactly to the root; `#[cfg(all(test, …))]` is code; `crate::NAME` is traced to the
//! file with a top-level `pub … NAME`; a stage's call is `self.name(…)` inside `impl Server`.
// A panic in a layout test is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Attribute, Expr, Ident, Item, Token, UseTree, Visibility};

/// The stages of the event loop in `house/src/server/`, earliest first. A stage may call its own
/// methods and those of later stages, never an earlier stage or the turn in `server.rs`.
const STAGES: &[&str] = &["accept", "timers", "exchange", "streams", "flush"];

/// Modules declared inline in lib.rs (not files), which other modules may import from `crate::`.
const INLINE_MODULES: &[&str] = &["limits"];

/// One `#[test]` per rule: the check, run on one crate's sources, finds nothing.
macro_rules! rules {
    ($($name:ident: $what:literal, $check:ident($krate:literal $(, $arg:expr)*);)*) => {$(
        #[test]
        fn $name() {
            let failures = $check(&load($krate) $(, $arg)*);
            let n = failures.len();
            assert!(n == 0, "{}: {n} failure(s)\n\n{}\n", $what, failures.join("\n\n"));
        }
    )*};
}

rules! {
    house_has_no_import_circles: "import circles in house/src", check_circles("house");
    house_macros_has_no_import_circles:
        "import circles in house-macros/src", check_circles("house-macros");
    house_imports_name_the_defining_module:
        "root re-exports imported inside house/src", check_root_imports("house");
    house_macros_imports_name_the_defining_module:
        "root items imported inside house-macros/src", check_root_imports("house-macros");
    server_stages_only_call_later_stages:
        "server stages calling back", check_stages("house", "house/src", STAGES);
    conn_fields_are_private: "public fields of Conn", check_conn_fields("house");
}

/// Every `.rs` file under `<krate>/src`, sorted by path.
fn load(krate: &str) -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let src = root.join(krate).join("src");
    let (mut dirs, mut files) = (vec![src.clone()], Vec::new());
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let sources = files.iter().map(|file| {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let path = file.strip_prefix(root).unwrap().display().to_string();
        let text = fs::read_to_string(file).unwrap();
        Source::new(path, rel.to_str().unwrap(), &text)
    });
    sources.collect()
}

/// One parsed source file and what the checks read from it.
#[derive(Default)]
struct Source {
    /// The path shown in messages: `house/src/server/accept.rs`.
    path: String,
    /// The module it is: `[]` for lib.rs, `["hub"]`, `["server", "accept"]`.
    module_path: Vec<String>,
    /// Its top-level items.
    items: Vec<Item>,
    /// Every path from the crate root, without its leading `crate` or `super`s.
    paths: Vec<Leaf>,
    /// The methods of its `impl Server` blocks, and the `self.NAME(…)` calls in them, with lines.
    methods: Vec<(String, usize)>,
    calls: Vec<(String, usize)>,
    /// While scanning: how many `super::` climb to the root, and whether in `impl Server`.
    climb: usize,
    in_server: bool,
}

impl Source {
    /// The file `path`, which is `src/<rel>.rs`.
    fn new(path: String, rel: &str, text: &str) -> Source {
        let file =
            syn::parse_file(text).unwrap_or_else(|e| panic!("{path}:{}: {e}", line(e.span())));
        // `lib.rs` is the crate root and `x/mod.rs` is module `x`.
        let module_path: Vec<String> = match rel.strip_suffix("/mod").unwrap_or(rel) {
            "lib" => Vec::new(),
            module => module.split('/').map(str::to_owned).collect(),
        };
        let climb = module_path.len();
        let mut src = Source {
            path,
            module_path,
            climb,
            ..Source::default()
        };
        src.visit_file(&file);
        src.items = file.items;
        src
    }

    /// The top-level module this file belongs to (`server` for `server/accept.rs`), or `None`
    /// for the crate root.
    fn module(&self) -> Option<&str> {
        self.module_path.first().map(String::as_str)
    }

    /// Keeps `leaf` if it starts at the crate root: `crate::…`, or as many `super::` as climb
    /// exactly there.
    fn push(&mut self, mut leaf: Leaf) {
        let supers = leaf.segments.iter().take_while(|s| *s == "super").count();
        let root = match leaf.segments[0].as_str() {
            "crate" => 1,
            "super" if supers == self.climb => supers,
            _ => return,
        };
        leaf.segments.drain(..root);
        if !leaf.segments.is_empty() {
            self.paths.push(leaf);
        }
    }
}

impl<'ast> Visit<'ast> for Source {
    fn visit_item(&mut self, item: &'ast Item) {
        if is_test(item_parts(item).0) {
            return;
        }
        let outer = (self.climb, self.in_server);
        match item {
            Item::Mod(_) => self.climb += 1,
            Item::Impl(block) => {
                self.in_server =
                    matches!(&*block.self_ty, syn::Type::Path(ty) if ty.path.is_ident("Server"));
            }
            Item::Use(u) => use_leaves(&u.tree, &[], &mut |leaf| self.push(leaf)),
            _ => {}
        }
        visit::visit_item(self, item);
        (self.climb, self.in_server) = outer;
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test(&f.attrs) {
            if self.in_server {
                self.methods.push(named(&f.sig.ident));
            }
            visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if self.in_server && matches!(&*call.receiver, Expr::Path(p) if p.path.is_ident("self")) {
            self.calls.push(named(&call.method));
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let (None, Some(last)) = (path.leading_colon, path.segments.last()) {
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let line = line(last.ident.span());
            self.push(Leaf {
                segments,
                alias: None,
                line,
            });
        }
        visit::visit_path(self, path);
    }

    /// `pub(in crate::a)` says who may see an item; it imports nothing.
    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        // A `macro_rules!` body is patterns, where `$crate` is hygiene, not an import.
        if !mac.path.is_ident("macro_rules") {
            let args = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated);
            args.iter().flatten().for_each(|arg| self.visit_expr(arg));
        }
    }
}

fn line(span: Span) -> usize {
    span.start().line
}

/// A name and its line.
fn named(ident: &Ident) -> (String, usize) {
    (ident.to_string(), line(ident.span()))
}

/// `#[cfg(test)]`: tests may import and call anything.
fn is_test(attrs: &[Attribute]) -> bool {
    let test = |a: &Attribute| a.parse_args::<Ident>().is_ok_and(|i| i == "test");
    attrs.iter().any(|a| a.path().is_ident("cfg") && test(a))
}

/// An item's attributes, and its visibility and name if it defines one.
fn item_parts(item: &Item) -> (&[Attribute], Option<(&Visibility, &Ident)>) {
    match item {
        Item::Const(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Enum(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Fn(i) => (&i.attrs, Some((&i.vis, &i.sig.ident))),
        Item::Mod(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Static(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Struct(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Trait(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Type(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Union(i) => (&i.attrs, Some((&i.vis, &i.ident))),
        Item::Impl(i) => (&i.attrs, None),
        Item::Macro(i) => (&i.attrs, None),
        Item::Use(i) => (&i.attrs, None),
        _ => (&[], None),
    }
}

/// A path as written (`["a", "X"]` for `crate::a::X` once `push` drops the root).
struct Leaf {
    segments: Vec<String>,
    /// The `as` name, if any.
    alias: Option<String>,
    /// The line of its last segment.
    line: usize,
}

impl Leaf {
    fn render(&self) -> String {
        let segments = match self.segments.split_last() {
            Some((last, rest)) if last == "self" && !rest.is_empty() => rest,
            _ => &self.segments[..],
        };
        format!("crate::{}", segments.join("::"))
    }
}

/// Each leaf of a `use` tree: `a::{b, c::{self, d as e}, f::*}` gives `a::b`, `a::c::self`,
/// `a::c::d` (alias `e`) and `a::f::*`.
fn use_leaves(tree: &UseTree, prefix: &[String], found: &mut dyn FnMut(Leaf)) {
    let mut leaf = |last: &dyn ToString, alias: Option<String>, span| {
        let segments = [prefix, &[last.to_string()]].concat();
        found(Leaf {
            segments,
            alias,
            line: line(span),
        });
    };
    match tree {
        UseTree::Path(p) => use_leaves(&p.tree, &[prefix, &[p.ident.to_string()]].concat(), found),
        UseTree::Group(g) => g.items.iter().for_each(|t| use_leaves(t, prefix, found)),
        UseTree::Name(n) => leaf(&n.ident, None, n.ident.span()),
        UseTree::Rename(r) => leaf(&r.ident, Some(r.rename.to_string()), r.ident.span()),
        UseTree::Glob(g) => leaf(&"*", None, g.star_token.span),
    }
}

/// A named item at the top of a file: `pub struct Hub` in hub.rs.
struct Def {
    /// The defining module: `[]` for lib.rs, `["server", "accept"]`.
    module_path: Vec<String>,
    /// `house/src/hub.rs:12`
    at: String,
}

/// What `crate::NAME` can mean in one crate.
#[derive(Default)]
struct Index {
    /// Top-level modules: one per file stem in `src/` (plus `src/x/` directories).
    modules: BTreeSet<String>,
    /// `pub` items (any visibility) at the top of each file, by name.
    defs: BTreeMap<String, Vec<Def>>,
    /// lib.rs `use module::…::NAME`: NAME → module.
    reexports: BTreeMap<String, String>,
    /// `#[macro_export]` macros, which live at the crate root.
    macros: BTreeSet<String>,
}

impl Index {
    fn new(sources: &[Source]) -> Index {
        let modules = sources.iter().filter_map(|s| s.module().map(str::to_owned));
        let mut index = Index {
            modules: modules.collect(),
            ..Index::default()
        };
        for src in sources {
            for item in src.items.iter().filter(|item| !is_test(item_parts(item).0)) {
                match (item, item_parts(item)) {
                    (_, (_, Some((vis, name)))) if *vis != Visibility::Inherited => {
                        let at = format!("{}:{}", src.path, line(name.span()));
                        let def = Def {
                            module_path: src.module_path.clone(),
                            at,
                        };
                        index.defs.entry(name.to_string()).or_default().push(def);
                    }
                    (Item::Macro(m), (attrs, _))
                        if attrs.iter().any(|a| a.path().is_ident("macro_export")) =>
                    {
                        index.macros.extend(m.ident.as_ref().map(Ident::to_string));
                    }
                    (Item::Use(u), _) if src.module().is_none() => {
                        use_leaves(&u.tree, &[], &mut |leaf| index.reexport(leaf));
                    }
                    _ => {}
                }
            }
        }
        index
    }

    /// Notes lib.rs's `use hub::Hub` (or `crate::hub::Hub`, `self::hub::Hub as H`): `Hub` is
    /// re-exported from module `hub`.
    fn reexport(&mut self, leaf: Leaf) {
        let skip = usize::from(matches!(leaf.segments[0].as_str(), "crate" | "self"));
        let name = leaf.alias.as_ref().or(leaf.segments.last()).unwrap();
        if let Some(module) = leaf
            .segments
            .get(skip)
            .filter(|m| self.modules.contains(*m))
        {
            self.reexports.insert(name.clone(), module.clone());
        }
    }

    /// Where `crate::NAME` is defined when NAME is not a module: the one defining module, or
    /// the one lib.rs re-exports it from when several modules define that name.
    fn home(&self, name: &str) -> Option<&Def> {
        let defs = self.defs.get(name)?;
        let modules: BTreeSet<_> = defs.iter().map(|d| d.module_path.first()).collect();
        if modules.len() == 1 {
            return defs.first();
        }
        let via = self.reexports.get(name)?;
        defs.iter().find(|d| d.module_path.first() == Some(via))
    }
}

/// Why module `from` depends on module `to`: each place (`file:line`) and the paths written there.
type Edges = BTreeMap<String, BTreeMap<String, Vec<(String, Vec<String>)>>>;

/// Rule 1: every circle among the crate's top-level modules, each with the paths that make its
/// edges. An edge is any `crate::module::…` path, or `crate::Item` that lib.rs re-exports.
fn check_circles(sources: &[Source]) -> Vec<String> {
    let index = Index::new(sources);
    let mut edges = Edges::new();
    for src in sources {
        let Some(from) = src.module() else { continue };
        for leaf in &src.paths {
            let first = &leaf.segments[0];
            let (to, via) = match index.home(first).and_then(|d| d.module_path.first()) {
                _ if index.modules.contains(first) => (first, ""),
                Some(module) => (module, " (a root re-export)"),
                None => continue,
            };
            if to != from {
                let at = format!("{}:{}", src.path, leaf.line);
                let what = format!("`{}`{via}", leaf.render());
                let whys = edges
                    .entry(from.into())
                    .or_default()
                    .entry(to.clone())
                    .or_default();
                // One line per place: `a.rs:7: `crate::b::X`, `crate::b::Y``.
                match whys.last_mut() {
                    Some((last_at, whats)) if *last_at == at => whats.push(what),
                    _ => whys.push((at, vec![what])),
                }
            }
        }
    }
    let mut failures = Vec::new();
    for circle in circles(&edges) {
        let mut text = format!("circle: {} -> {}", circle.join(" -> "), circle[0]);
        for (k, from) in circle.iter().enumerate() {
            let to = &circle[(k + 1) % circle.len()];
            text.push_str(&format!("\n  {from} -> {to}:"));
            for (at, whats) in &edges[from][to] {
                text.push_str(&format!("\n    {at}: {}", whats.join(", ")));
            }
        }
        failures.push(text);
    }
    failures
}

/// Each edge `a -> b` that lies on a circle, closed by the shortest way back from `b` to `a`;
/// one entry per circle, rotated to start at its smallest module.
fn circles(edges: &Edges) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for (a, targets) in edges {
        for b in targets.keys() {
            let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
            let mut queue = VecDeque::from([b]);
            while let Some(at) = queue.pop_front().filter(|at| at != &a) {
                for next in edges.get(at).into_iter().flat_map(BTreeMap::keys) {
                    if next != b && !came_from.contains_key(next) {
                        came_from.insert(next, at);
                        queue.push_back(next);
                    }
                }
            }
            if came_from.contains_key(a) {
                // `a`, the way back from `a` to `b`, turned around: `a -> b -> … -> a`.
                let mut circle = vec![a.clone()];
                while circle.last() != Some(b) {
                    circle.push(came_from[circle.last().unwrap()].clone());
                }
                circle[1..].reverse();
                let smallest = (0..circle.len()).min_by_key(|&k| &circle[k]).unwrap();
                circle.rotate_left(smallest);
                found.insert(circle);
            }
        }
    }
    found
}

/// Rule 2: every `crate::NAME` outside lib.rs where NAME is not a module: an import through the
/// root's re-exports, which hides the real edge between modules.
fn check_root_imports(sources: &[Source]) -> Vec<String> {
    let index = Index::new(sources);
    let mut failures = Vec::new();
    for src in sources.iter().filter(|s| s.module().is_some()) {
        for leaf in &src.paths {
            let name = leaf.segments[0].as_str();
            let exempt = INLINE_MODULES.contains(&name) || index.macros.contains(name);
            if exempt || index.modules.contains(name) {
                continue;
            }
            let defs = index.defs.get(name).map_or(&[][..], Vec::as_slice);
            let advice = match index.home(name) {
                Some(Def { module_path, at }) if !module_path.is_empty() => format!(
                    "write `crate::{}::{}` (`{name}` is defined at {at})",
                    module_path.join("::"),
                    leaf.segments.join("::")
                ),
                Some(Def { at, .. }) => format!(
                    "`{name}` is defined in the crate root ({at}); lib.rs is only a table of contents, so move it into a module and import it from there"
                ),
                None if defs.is_empty() => format!(
                    "no file in src/ defines `pub … {name}`; import it from the module that does"
                ),
                None => format!(
                    "`{name}` is defined in several modules ({}); import it from the one you mean",
                    defs.iter().map(|d| d.at.as_str()).collect::<Vec<_>>().join(", ")
                ),
            };
            failures.push(format!(
                "{}:{}: `{}` imports `{name}` through the crate root; {advice}",
                src.path,
                leaf.line,
                leaf.render()
            ));
        }
    }
    failures
}

/// Where `src` sits in the event loop: 0 for the turn (`server.rs`), 1 + its index in `stages`
/// for a stage (`server/<stage>.rs`), `None` elsewhere.
fn place(src: &Source, stages: &[&str]) -> Option<usize> {
    match src.module_path.as_slice() {
        [server] if server == "server" => Some(0),
        [server, stage] if server == "server" => {
            stages.iter().position(|s| s == stage).map(|k| k + 1)
        }
        _ => None,
    }
}

/// Rule 3: calls `self.NAME(…)` from a stage in `<src_dir>/server/` to a method defined in an
/// earlier stage or in the turn (`server.rs`); and stage files that `stages` does not list, or
/// lists but that do not exist.
fn check_stages(sources: &[Source], src_dir: &str, stages: &[&str]) -> Vec<String> {
    let order = stages.join(" → ");
    let mut failures = Vec::new();
    let stage_files: Vec<&str> = sources
        .iter()
        .filter_map(|s| match s.module_path.as_slice() {
            [server, stage] if server == "server" => Some(stage.as_str()),
            _ => None,
        })
        .collect();
    for stage in stage_files.iter().filter(|s| !stages.contains(s)) {
        failures.push(format!(
            "{src_dir}/server/{stage}.rs is not a stage in STAGES ({order}); add it to STAGES in house/tests/layout.rs at its place in the order"
        ));
    }
    for stage in stages.iter().filter(|s| !stage_files.contains(s)) {
        failures.push(format!(
            "{src_dir}/server/{stage}.rs is missing but STAGES lists `{stage}`; create it or update STAGES in house/tests/layout.rs"
        ));
    }
    // Where each `impl Server` method is defined: its place and `file:line`.
    let mut methods: BTreeMap<&str, Vec<(usize, String)>> = BTreeMap::new();
    for src in sources {
        let Some(callee) = place(src, stages) else {
            continue;
        };
        for (name, line) in &src.methods {
            let def = (callee, format!("{}:{line}", src.path));
            methods.entry(name).or_default().push(def);
        }
    }
    for src in sources {
        let Some(caller @ 1..) = place(src, stages) else {
            continue;
        };
        for (name, line) in &src.calls {
            let at = format!("{}:{line}: `self.{name}(…)`", src.path);
            for (callee, def) in methods.get(name.as_str()).into_iter().flatten() {
                if *callee == 0 {
                    failures.push(format!(
                        "{at} calls the turn's `{name}` ({def}); the turn calls the stages, never the reverse: move `{name}` into this stage or a later one"
                    ));
                } else if *callee < caller {
                    failures.push(format!(
                        "{at} calls back into an earlier stage: `{name}` is defined at {def} (`{}` comes before `{}` in {order}); move `{name}` into this stage or a later one, or let the turn call it",
                        stages[callee - 1], stages[caller - 1]
                    ));
                }
            }
        }
    }
    failures
}

/// Rule 4: every field of `struct Conn` in conn.rs that has a visibility.
fn check_conn_fields(sources: &[Source]) -> Vec<String> {
    let fix = "update conn_fields_are_private in house/tests/layout.rs";
    let Some(src) = sources.iter().find(|s| s.module_path == ["conn"]) else {
        return vec![format!("src/conn.rs is missing; {fix}")];
    };
    let conn = src.items.iter().find_map(|item| match item {
        Item::Struct(s) if s.ident == "Conn" => Some(s),
        _ => None,
    });
    let Some(conn) = conn else {
        return vec![format!("{} defines no `struct Conn`; {fix}", src.path)];
    };
    let mut failures = Vec::new();
    for field in conn
        .fields
        .iter()
        .filter(|f| f.vis != Visibility::Inherited)
    {
        let vis = field.vis.span();
        let what = match &field.ident {
            Some(name) => format!("field `{name}`"),
            None => "a tuple field".to_owned(),
        };
        failures.push(format!(
            "{}:{}: {what} of `Conn` is `{}`; keep Conn's fields private and give Conn a method instead",
            src.path,
            line(vis),
            vis.source_text().unwrap()
        ));
    }
    failures
}

// The checks on small fixtures, so each one demonstrably fails.
#[cfg(test)]
mod tests {
    use super::*;

    /// The source `src/<rel>.rs`; `lib` is the crate root.
    fn src(rel: &str, text: &str) -> Source {
        Source::new(format!("src/{rel}.rs"), rel, text)
    }

    fn paths(source: &Source) -> Vec<String> {
        source.paths.iter().map(Leaf::render).collect()
    }

    #[test]
    fn a_circle_is_found_with_its_edges() {
        let crate_ = [
            src("a", "use crate::b::X;\npub fn g() {}"),
            src("b", "pub struct X;\nfn f() {\n    crate::a::g();\n}"),
            // `c -> a` goes one way: no circle.
            src("c", "use crate::a::g;"),
        ];
        assert_eq!(
            check_circles(&crate_),
            ["circle: a -> b -> a\n  a -> b:\n    src/a.rs:1: `crate::b::X`\n  b -> a:\n    src/b.rs:3: `crate::a::g`"]
        );
    }

    #[test]
    fn a_circle_through_a_root_reexport_is_found() {
        let crate_ = [
            src("lib", "mod a;\nmod b;\npub use b::Thing;"),
            src("a", "use crate::Thing;\npub fn g() {}"),
            src("b", "pub struct Thing;\nuse crate::a::g;"),
        ];
        assert_eq!(
            check_circles(&crate_),
            ["circle: a -> b -> a\n  a -> b:\n    src/a.rs:1: `crate::Thing` (a root re-export)\n  b -> a:\n    src/b.rs:2: `crate::a::g`"]
        );
    }

    #[test]
    fn grouped_and_nested_uses_are_expanded() {
        let text = "use crate::{a::{X, Y as Z}, b, c::{self, W}};\nuse crate::d::{\n    e::*,\n};";
        let source = src("m", text);
        let expanded = ["a::X", "a::Y", "b", "c", "c::W", "d::e::*"].map(|p| format!("crate::{p}"));
        assert_eq!(paths(&source), expanded);
        assert_eq!(source.paths[5].line, 3);
    }

    #[test]
    fn paths_in_code_and_macro_arguments_are_found() {
        let text = "fn f() {\n    let b = crate::broker::Broker::start(url)?;\n    x.map(crate::hub::Hub::len);\n    assert!(matches!(p, crate::conn::Phase::Idle));\n}";
        let source = src("m", text);
        let found = [
            "broker::Broker::start",
            "hub::Hub::len",
            "conn::Phase::Idle",
        ];
        assert_eq!(paths(&source), found.map(|p| format!("crate::{p}")));
        assert_eq!(source.paths[2].line, 4);
    }

    #[test]
    fn doc_links_dollar_crate_and_visibility_are_not_paths() {
        let text = "//! See [`Ctx::new`](crate::Ctx::new).\n/// Uses [`X`](crate::a::X).\nmacro_rules! m { () => { $crate::__private::X }; }\npub(crate) fn f() {}\npub(in crate::a) fn g() {}";
        assert_eq!(paths(&src("m", text)), Vec::<String>::new());
    }

    #[test]
    fn test_items_are_ignored() {
        let crate_ = [
            src("a", "use crate::b::X;\npub fn g() {}"),
            src("b", "pub struct X;\n#[cfg(test)]\nmod tests {\n    use crate::a::g;\n    use crate::Root;\n}\n#[cfg(test)]\nuse crate::a::g;"),
        ];
        assert_eq!(paths(&crate_[1]), Vec::<String>::new());
        assert_eq!(check_circles(&crate_), Vec::<String>::new());
        assert_eq!(check_root_imports(&crate_), Vec::<String>::new());
    }

    #[test]
    fn super_is_a_crate_path_only_when_it_climbs_to_the_root() {
        let top = src("a", "use super::b::X;\npub mod inner { use super::Y; }");
        assert_eq!(paths(&top), ["crate::b::X"]);
        let stage = src(
            "server/accept",
            "use super::Server;\nuse super::super::hub::Hub;",
        );
        assert_eq!(paths(&stage), ["crate::hub::Hub"]);
    }

    #[test]
    fn a_root_reexport_import_is_reported_with_its_home() {
        let crate_ = [
            src("lib", "mod hub;\nmod response;\npub use hub::Hub;\npub use response::Status;\npub mod limits { pub use crate::hub::CAP; }"),
            src("hub", "pub struct Hub;\npub const CAP: usize = 1;"),
            src("response", "pub struct Status;"),
            // `#[macro_export]` puts `routes!` at the root, where `crate::routes!` finds it.
            src("macros", "#[macro_export]\nmacro_rules! routes { () => {} }"),
            src("route", "use crate::{Hub, Status};\nuse crate::limits::CAP;\nuse crate::hub::Hub as H;\nfn f() { crate::Missing::new(); crate::routes![]; }"),
        ];
        assert_eq!(
            check_root_imports(&crate_),
            [
                "src/route.rs:1: `crate::Hub` imports `Hub` through the crate root; write `crate::hub::Hub` (`Hub` is defined at src/hub.rs:1)",
                "src/route.rs:1: `crate::Status` imports `Status` through the crate root; write `crate::response::Status` (`Status` is defined at src/response.rs:1)",
                "src/route.rs:4: `crate::Missing::new` imports `Missing` through the crate root; no file in src/ defines `pub … Missing`; import it from the module that does",
            ]
        );
    }

    fn server(turn: &str, stages: &[(&str, &str)]) -> Vec<Source> {
        let stages = stages
            .iter()
            .map(|(name, text)| src(&format!("server/{name}"), text));
        [src("server", turn)].into_iter().chain(stages).collect()
    }

    #[test]
    fn a_forward_stage_call_is_allowed() {
        let sources = server(
            "impl Server { fn run(&mut self) { self.accept(); self.flush(); } }",
            &[
                ("accept", "impl Server { fn accept(&mut self) { self.flush(); self.hub.close(); } }"),
                ("flush", "impl Server { fn flush(&mut self) { self.flush_one(); } fn flush_one(&mut self) {} }"),
            ],
        );
        assert_eq!(
            check_stages(&sources, "src", &["accept", "flush"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_backward_stage_call_and_a_call_to_the_turn_are_reported() {
        let sources = server(
            "impl Server { fn run(&mut self) { self.accept(); } fn conn_event(&mut self) {} }",
            &[
                ("accept", "impl Server {\n    fn accept(&mut self) {}\n}"),
                ("flush", "impl Server {\n    fn flush(&mut self) {\n        self.accept();\n        self.conn_event();\n        self.close(); // not a method of Server\n    }\n}\nimpl Dirty { fn f(&self) { self.accept(); } }"),
            ],
        );
        assert_eq!(
            check_stages(&sources, "src", &["accept", "flush"]),
            [
                "src/server/flush.rs:3: `self.accept(…)` calls back into an earlier stage: `accept` is defined at src/server/accept.rs:2 (`accept` comes before `flush` in accept → flush); move `accept` into this stage or a later one, or let the turn call it",
                "src/server/flush.rs:4: `self.conn_event(…)` calls the turn's `conn_event` (src/server.rs:1); the turn calls the stages, never the reverse: move `conn_event` into this stage or a later one",
            ]
        );
    }

    #[test]
    fn stage_files_and_stages_must_agree() {
        let sources = server("impl Server {}", &[("accept", ""), ("extra", "")]);
        assert_eq!(
            check_stages(&sources, "src", &["accept", "flush"]),
            [
                "src/server/extra.rs is not a stage in STAGES (accept → flush); add it to STAGES in house/tests/layout.rs at its place in the order",
                "src/server/flush.rs is missing but STAGES lists `flush`; create it or update STAGES in house/tests/layout.rs",
            ]
        );
    }

    #[test]
    fn public_conn_fields_are_reported() {
        let conn = src("conn", "pub(crate) struct Conn {\n    phase: Phase,\n    pub(crate) out: HashMap<Token, Vec<u8>>,\n    pub read: Vec<u8>,\n}\nimpl Conn { pub fn f(&self) {} }");
        assert_eq!(
            check_conn_fields(&[conn]),
            [
                "src/conn.rs:3: field `out` of `Conn` is `pub(crate)`; keep Conn's fields private and give Conn a method instead",
                "src/conn.rs:4: field `read` of `Conn` is `pub`; keep Conn's fields private and give Conn a method instead",
            ]
        );
        let private = src("conn", "pub(crate) struct Conn {\n    phase: Phase,\n}");
        assert_eq!(check_conn_fields(&[private]), Vec::<String>::new());
    }
}
