//! `cargo xtask tidy`: source checks that rustc and clippy do not make.
//!
//! - every `.rs` file under `crates/` starts with a `//!` module doc (files under a `tests/`
//!   directory are exempt);
//! - `unsafe` blocks, fns and impls live only in `crates/oxevent-core/src/sys*` and
//!   `crates/backends/`, each block or impl preceded by a `// SAFETY:` comment and each fn by a
//!   `# Safety` doc section (within 3 lines, or anywhere in the comment block right above);
//! - no `todo!(`, `dbg!(` or `unimplemented!(` in `crates/*/src`;
//! - every `#[doc(alias = "x")]` name appears in `docs/libevent-mapping.md`.
//!
//! The same checks run as the `tidy` unit test, so `cargo test --workspace` enforces them.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// One finding: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Path relative to the workspace root, with `/` separators.
    pub(crate) path: String,
    /// 1-based line number (0 when the problem is about the whole file).
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) msg: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.msg)
        } else {
            write!(f, "{}:{}: {}", self.path, self.line, self.msg)
        }
    }
}

fn problem(path: &str, line: usize, msg: impl Into<String>) -> Problem {
    Problem {
        path: path.to_string(),
        line,
        msg: msg.into(),
    }
}

/// The mapping document every doc alias must appear in.
pub(crate) const MAPPING_DOC: &str = "docs/libevent-mapping.md";

/// Runs every check over the workspace at `root`.
pub(crate) fn check_all(root: &Path) -> crate::Result<Vec<Problem>> {
    let crates_dir = root.join("crates");
    let mut files = Vec::new();
    collect_rs_files(&crates_dir, &mut files)
        .map_err(|e| format!("cannot walk {}: {e}", crates_dir.display()))?;
    files.sort();

    let mut problems = Vec::new();
    let mut aliases = Vec::new();
    for file in &files {
        let text =
            fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let rel = relative(root, file);
        problems.extend(check_module_doc(&rel, &text));
        problems.extend(check_unsafe(&rel, &text));
        problems.extend(check_debug_macros(&rel, &text));
        for (line, name) in doc_aliases(&text) {
            aliases.push((rel.clone(), line, name));
        }
    }
    if !aliases.is_empty() && root.join(MAPPING_DOC).exists() && !crate::mapping::is_current(root)?
    {
        problems.push(problem(
            MAPPING_DOC,
            0,
            "the generated table is out of date: run `cargo xtask mapping`",
        ));
    }
    if !aliases.is_empty() {
        match fs::read_to_string(root.join(MAPPING_DOC)) {
            Ok(mapping) => problems.extend(check_aliases(&aliases, &mapping)),
            Err(e) => problems.push(problem(
                MAPPING_DOC,
                0,
                format!(
                    "cannot read it ({e}), but {} doc alias(es) must be listed there",
                    aliases.len()
                ),
            )),
        }
    }
    Ok(problems)
}

/// All `.rs` files below `dir`, skipping `target` and hidden directories.
pub(crate) fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name == "target" || name.starts_with('.') {
                continue;
            }
            collect_rs_files(&path, out)?;
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `file` relative to `root`, with `/` separators.
fn relative(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `rel` lies in a `tests/` directory.
fn is_test_file(rel: &str) -> bool {
    rel.split('/').rev().skip(1).any(|c| c == "tests")
}

/// The first non-blank line of a non-test file must be a `//!` module doc.
pub(crate) fn check_module_doc(rel: &str, text: &str) -> Option<Problem> {
    if is_test_file(rel) {
        return None;
    }
    let first = text.lines().position(|l| !l.trim().is_empty());
    match first {
        Some(i)
            if text
                .lines()
                .nth(i)
                .is_some_and(|l| l.trim_start().starts_with("//!")) =>
        {
            None
        }
        Some(i) => Some(problem(
            rel,
            i + 1,
            "file must start with a `//!` module doc comment",
        )),
        None => Some(problem(
            rel,
            0,
            "empty file: it must start with a `//!` module doc comment",
        )),
    }
}

/// Where `unsafe` may appear: the core's `sys` module and the backend crates.
fn unsafe_allowed_in(rel: &str) -> bool {
    rel.starts_with("crates/oxevent-core/src/sys") || rel.starts_with("crates/backends/")
}

/// What an `unsafe` keyword introduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnsafeKind {
    Block,
    Fn,
    Impl,
}

/// `unsafe` blocks, fns and impls: only where allowed, and each justified.
pub(crate) fn check_unsafe(rel: &str, text: &str) -> Vec<Problem> {
    let raw: Vec<&str> = text.lines().collect();
    let code = strip_comments_and_strings(text);
    let mut out = Vec::new();
    for (i, line) in code.iter().enumerate() {
        for pos in word_positions(line, "unsafe") {
            let mut rest = line[pos + "unsafe".len()..].to_string();
            if rest.trim().is_empty() {
                // `unsafe` at the end of a line: look at the next line with code.
                if let Some(next) = code[i + 1..].iter().find(|l| !l.trim().is_empty()) {
                    rest = next.clone();
                }
            }
            let Some(kind) = classify_unsafe(&rest) else {
                continue;
            };
            let what = match kind {
                UnsafeKind::Block => "`unsafe` block",
                UnsafeKind::Fn => "`unsafe fn`",
                UnsafeKind::Impl => "`unsafe impl`",
            };
            if !unsafe_allowed_in(rel) {
                out.push(problem(
                    rel,
                    i + 1,
                    format!(
                        "{what} outside crates/oxevent-core/src/sys and crates/backends \
                         (move the unsafe code into a sys module)"
                    ),
                ));
            }
            let (needle, label) = match kind {
                UnsafeKind::Fn => ("# Safety", "a `# Safety` doc section"),
                UnsafeKind::Block | UnsafeKind::Impl => ("SAFETY:", "a `// SAFETY:` comment"),
            };
            if !justified(&raw, i, needle) {
                out.push(problem(
                    rel,
                    i + 1,
                    format!("{what} not preceded by {label}"),
                ));
            }
        }
    }
    out
}

/// Reads what follows the `unsafe` keyword.
fn classify_unsafe(rest: &str) -> Option<UnsafeKind> {
    let rest = rest.trim_start();
    if rest.starts_with('{') {
        return Some(UnsafeKind::Block);
    }
    if starts_with_word(rest, "fn") {
        return Some(UnsafeKind::Fn);
    }
    if starts_with_word(rest, "impl") {
        return Some(UnsafeKind::Impl);
    }
    if starts_with_word(rest, "extern") {
        // `unsafe extern "C" fn f()` is a fn; `unsafe extern "C" { ... }` is a block of
        // declarations, which needs no SAFETY comment. The ABI string is stripped to `""`.
        let after = rest["extern".len()..].trim_start();
        let after = after.strip_prefix("\"\"").unwrap_or(after).trim_start();
        if starts_with_word(after, "fn") {
            return Some(UnsafeKind::Fn);
        }
    }
    None
}

fn starts_with_word(s: &str, word: &str) -> bool {
    s.starts_with(word)
        && !s[word.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Whether `needle` appears on line `i` itself, within the 3 lines above it, or in the block of
/// comment and attribute lines that continues upwards from there.
fn justified(raw: &[&str], i: usize, needle: &str) -> bool {
    if raw[i].contains(needle) {
        return true;
    }
    let window_top = i.saturating_sub(3);
    let mut j = i;
    while j > 0 {
        j -= 1;
        let t = raw[j].trim_start();
        let commentish = t.starts_with("//") || t.starts_with("#[") || t.starts_with('*');
        if j < window_top && !commentish {
            return false;
        }
        if t.contains(needle) {
            return true;
        }
    }
    false
}

/// Macros that must not be left in library code.
const DEBUG_MACROS: &[&str] = &["todo", "dbg", "unimplemented"];

/// No `todo!(`, `dbg!(` or `unimplemented!(` in `crates/*/src` (comments and strings ignored).
pub(crate) fn check_debug_macros(rel: &str, text: &str) -> Vec<Problem> {
    if !rel.starts_with("crates/") || !rel.contains("/src/") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, line) in strip_comments_and_strings(text).iter().enumerate() {
        for name in DEBUG_MACROS {
            for pos in word_positions(line, name) {
                let after = line[pos + name.len()..].trim_start();
                if after.starts_with("!(") || after.starts_with("! (") || after == "!" {
                    out.push(problem(
                        rel,
                        i + 1,
                        format!("`{name}!` left in library code"),
                    ));
                }
            }
        }
    }
    out
}

/// Every `#[doc(alias = "x")]` / `#[doc(alias("x", "y"))]` name in `text`, with its line.
pub(crate) fn doc_aliases(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("doc(alias") {
        let start = from + found;
        from = start + "doc(alias".len();
        let line_start = text[..start].rfind('\n').map_or(0, |p| p + 1);
        if text[line_start..start].trim_start().starts_with("//") {
            continue; // mentioned in a comment
        }
        let line = text[..start].matches('\n').count() + 1;
        let rest = text[from..].trim_start();
        if let Some(rest) = rest.strip_prefix('=') {
            if let Some((name, _)) = string_literal(rest) {
                out.push((line, name));
            }
        } else if let Some(mut rest) = rest.strip_prefix('(') {
            while let Some((name, after)) = string_literal(rest) {
                out.push((line, name));
                rest = after.trim_start();
                match rest.strip_prefix(',') {
                    Some(r) => rest = r,
                    None => break,
                }
            }
        }
    }
    out
}

/// Parses a leading `"..."` (after whitespace); returns its contents and what follows.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix('"')?;
    let end = s.find('"')?;
    Some((s[..end].to_string(), &s[end + 1..]))
}

/// Every alias must appear in the mapping document as a whole word.
pub(crate) fn check_aliases(aliases: &[(String, usize, String)], mapping: &str) -> Vec<Problem> {
    aliases
        .iter()
        .filter(|(_, _, name)| word_positions(mapping, name).is_empty())
        .map(|(rel, line, name)| {
            problem(
                rel,
                *line,
                format!("doc alias `{name}` does not appear in {MAPPING_DOC}"),
            )
        })
        .collect()
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte offsets where `word` occurs in `hay` not glued to identifier characters.
fn word_positions(hay: &str, word: &str) -> Vec<usize> {
    if word.is_empty() {
        return Vec::new();
    }
    hay.match_indices(word)
        .filter(|&(pos, _)| {
            let before = hay[..pos].chars().next_back();
            let after = hay[pos + word.len()..].chars().next();
            !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
        })
        .map(|(pos, _)| pos)
        .collect()
}

/// The source split into lines with comments removed and string/char literal contents emptied
/// (`"abc"` becomes `""`), so keyword searches only see code. Handles `//`, nested `/* */`,
/// `"..."` with escapes, raw strings `r#"..."#`, byte strings and char literals vs lifetimes.
fn strip_comments_and_strings(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut block_depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if block_depth > 0 {
            if c == '*' && next == Some('/') {
                block_depth -= 1;
                i += 2;
            } else if c == '/' && next == Some('*') {
                block_depth += 1;
                i += 2;
            } else {
                if c == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            continue;
        }
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                block_depth = 1;
                i += 2;
            }
            'r' if (next == Some('"') || next == Some('#'))
                && !prev_is_ident(&chars, i)
                && raw_string_start(&chars, i + 1).is_some() =>
            {
                let (hashes, body) = raw_string_start(&chars, i + 1).unwrap_or((0, i + 2));
                out.push_str("\"\"");
                i = body;
                // find `"` followed by `hashes` #'s
                while i < chars.len() {
                    if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                        i += 1 + hashes;
                        break;
                    }
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            '"' => {
                out.push_str("\"\"");
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    if chars.get(i) == Some(&'\n') {
                        out.push('\n');
                    }
                    i += 1;
                }
                i += 1;
            }
            '\'' => {
                // char literal ('x', '\n', '\u{..}') or a lifetime ('a)
                if next == Some('\\') {
                    let mut j = i + 2;
                    while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                        j += 1;
                    }
                    out.push_str("' '");
                    i = j + 1;
                } else if chars.get(i + 2) == Some(&'\'') {
                    out.push_str("' '");
                    i += 3;
                } else {
                    out.push('\'');
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out.split('\n').map(str::to_string).collect()
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    // `br"..."` is a raw byte string: treat a preceding `b` as part of the literal.
    if i == 0 || !is_ident_char(chars[i - 1]) {
        return false;
    }
    chars[i - 1] != 'b' || prev_is_ident(chars, i - 1)
}

/// At `chars[i]` (just after `r`): `#`* then `"`. Returns the hash count and the body start.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((j - i, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workspace itself passes every tidy check.
    #[test]
    fn tidy() {
        let problems = check_all(&crate::root()).expect("tidy could not run");
        let report: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            problems.is_empty(),
            "tidy found {} problem(s):\n{}",
            problems.len(),
            report.join("\n")
        );
    }

    #[test]
    fn module_doc() {
        assert!(check_module_doc("crates/a/src/lib.rs", "\n//! Docs.\nfn f() {}\n").is_none());
        let p = check_module_doc("crates/a/src/lib.rs", "// x\n//! Docs.\n").unwrap();
        assert_eq!(p.line, 1);
        assert!(check_module_doc("crates/a/src/lib.rs", "").is_some());
        assert!(check_module_doc("crates/a/tests/it/main.rs", "fn main() {}").is_none());
        assert!(check_module_doc("crates/a/src/tests.rs", "fn f() {}").is_some());
    }

    #[test]
    fn unsafe_placement_and_comments() {
        let ok = "//! m\n// SAFETY: fine.\nlet x = unsafe { f() };\n";
        assert!(check_unsafe("crates/oxevent-core/src/sys/fd.rs", ok).is_empty());
        assert!(check_unsafe("crates/oxevent-core/src/sys.rs", ok).is_empty());
        assert!(check_unsafe("crates/backends/oxevent-epoll/src/lib.rs", ok).is_empty());

        let outside = check_unsafe("crates/oxevent-core/src/lib.rs", ok);
        assert_eq!(outside.len(), 1);
        assert_eq!(outside[0].line, 3);

        let bare = "fn g() {\n    unsafe { f() }\n}\n";
        let p = check_unsafe("crates/backends/x/src/lib.rs", bare);
        assert_eq!(p.len(), 1);
        assert!(p[0].msg.contains("SAFETY"));

        let far = "// SAFETY: a\n// b\n// c\n// d\n// e\nunsafe { f() }\n";
        assert!(check_unsafe("crates/backends/x/src/lib.rs", far).is_empty());

        let code_between = "// SAFETY: a\nx();\ny();\nz();\nw();\nunsafe { f() }\n";
        assert_eq!(
            check_unsafe("crates/backends/x/src/lib.rs", code_between).len(),
            1
        );

        let func = "/// Does it.\n///\n/// # Safety\n/// `p` is valid.\npub unsafe fn g(p: *const u8) {}\n";
        assert!(check_unsafe("crates/backends/x/src/lib.rs", func).is_empty());
        let func_bad = "// SAFETY: no\npub unsafe fn g() {}\n";
        assert_eq!(
            check_unsafe("crates/backends/x/src/lib.rs", func_bad).len(),
            1
        );

        let imp = "// SAFETY: it is.\nunsafe impl Send for X {}\n";
        assert!(check_unsafe("crates/backends/x/src/lib.rs", imp).is_empty());
        let imp_bad = "unsafe impl Sync for X {}\n";
        assert_eq!(
            check_unsafe("crates/backends/x/src/lib.rs", imp_bad).len(),
            1
        );

        let not_code = "// unsafe { in a comment }\nlet s = \"unsafe { in a string }\";\n\
                        /* unsafe fn x() */\nunsafe extern \"C\" {\n    fn c();\n}\n\
                        #[unsafe(no_mangle)]\nfn k() {}\n";
        assert!(check_unsafe("crates/oxevent/src/lib.rs", not_code).is_empty());

        let extern_fn = "extern \"C\" fn ok() {}\npub unsafe extern \"C\" fn cb() {}\n";
        let p = check_unsafe("crates/backends/x/src/lib.rs", extern_fn);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 2);

        let split = "// SAFETY: ok\nlet v = unsafe\n{ f() };\n";
        assert!(check_unsafe("crates/backends/x/src/lib.rs", split).is_empty());
    }

    #[test]
    fn debug_macros() {
        let text = "fn f() {\n    todo!()\n}\n// dbg!(x)\nlet s = \"unimplemented!()\";\n\
                    my_todo!(x);\ndbg! (y);\n";
        let p = check_debug_macros("crates/a/src/lib.rs", text);
        assert_eq!(p.iter().map(|p| p.line).collect::<Vec<_>>(), vec![2, 7]);
        assert!(check_debug_macros("crates/a/tests/t.rs", text).is_empty());
        assert!(check_debug_macros("crates/a/examples/e.rs", text).is_empty());
        assert_eq!(
            check_debug_macros("crates/backends/b/src/lib.rs", text).len(),
            2
        );
    }

    #[test]
    fn aliases() {
        let text = "//! m\n#[doc(alias = \"event_add\")]\nfn add() {}\n\
                    #[doc(alias(\"event_del\", \"event_del_block\"))]\nfn del() {}\n\
                    // #[doc(alias = \"not_me\")]\n\
                    #[cfg_attr(docsrs, doc(alias = \"event_base_new\"))]\nfn new() {}\n";
        let found = doc_aliases(text);
        assert_eq!(
            found,
            vec![
                (2, "event_add".to_string()),
                (4, "event_del".to_string()),
                (4, "event_del_block".to_string()),
                (7, "event_base_new".to_string()),
            ]
        );
        let with_path: Vec<_> = found
            .into_iter()
            .map(|(l, n)| ("crates/a/src/lib.rs".to_string(), l, n))
            .collect();
        let mapping = "| `event_add` | `Event::add` |\n| event_del_block() | x |\n| event_base_new_with_config | y |\n";
        let p = check_aliases(&with_path, mapping);
        let missing: Vec<_> = p.iter().map(|p| p.msg.clone()).collect();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("`event_del`"));
        assert!(missing[1].contains("`event_base_new`"));
    }

    #[test]
    fn stripping() {
        let s = strip_comments_and_strings(
            "a /* b /* c */ d */ e\nlet x = r#\"q \" z\"#; 'a' '\\n' &'a str\nb\"x\" br\"y\"",
        );
        assert_eq!(s[0], "a  e");
        assert_eq!(s[1], "let x = \"\"; ' ' ' ' &'a str");
        assert_eq!(s[2], "b\"\" b\"\"");
    }
}
