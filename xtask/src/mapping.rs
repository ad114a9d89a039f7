//! `cargo xtask mapping`: regenerates the table of `docs/libevent-mapping.md`
//! from the `#[doc(alias = "c_name")]` attributes in the code, so the
//! document says exactly which libevent functions are covered and by which
//! Rust item. `tidy` fails when the generated part is out of date.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::tidy::doc_aliases;

/// The mapping document, relative to the workspace root.
use crate::tidy::MAPPING_DOC;
const BEGIN: &str = "<!-- BEGIN GENERATED: cargo xtask mapping -->";
const END: &str = "<!-- END GENERATED -->";

/// One row: the C name, the Rust item and the crate it lives in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Row {
    krate: String,
    c_name: String,
    item: String,
}

/// Finds the Rust item an alias attribute on line `line` (1-based) documents,
/// qualified by its `impl` block's type when it is a method.
pub(crate) fn item_after(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut name = String::from("?");
    for l in lines.iter().skip(line.saturating_sub(1)).take(40) {
        let t = l.trim_start();
        // Attributes (also when rustfmt split them over lines) and comments.
        if t.starts_with("#[") || t.starts_with("//") || t.starts_with('"') || t.starts_with(")") {
            continue;
        }
        name = item_name(t).unwrap_or_else(|| t.trim_end_matches('{').trim().to_string());
        break;
    }
    // The innermost `impl` (or trait) at column 0 above the attribute.
    let owner = lines[..line.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .find_map(|l| {
            let t = *l;
            if t.starts_with('}') {
                return Some(None);
            }
            if let Some(rest) = t.strip_prefix("impl") {
                let rest = rest.trim_start_matches(|c: char| c != ' ').trim();
                let ty = rest.rsplit(" for ").next().unwrap_or(rest);
                let ty: String = ty
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                return Some(Some(ty));
            }
            if t.starts_with("pub struct")
                || t.starts_with("pub enum")
                || t.starts_with("pub(crate) struct")
            {
                return Some(item_name(t));
            }
            None
        });
    match owner.flatten() {
        Some(ty) if !ty.is_empty() && ty != name => format!("{ty}::{name}"),
        _ => name,
    }
}

fn item_name(t: &str) -> Option<String> {
    let mut words = t.split(|c: char| {
        c.is_whitespace() || c == '(' || c == '<' || c == ':' || c == '{' || c == ';'
    });
    while let Some(w) = words.next() {
        match w {
            "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "mod"
            | "macro_rules!" => {
                return words.find(|w| !w.is_empty()).map(str::to_string);
            }
            _ => {}
        }
    }
    // A field (`pub timeout: ...`) or a bit-flag constant (`READ = 0x01;`).
    let t = t
        .trim_start_matches("pub ")
        .trim_start_matches("pub(crate) ");
    let ident: String = t
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

fn crate_of(rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').collect();
    let i = parts.iter().position(|p| *p == "src").unwrap_or(1);
    parts
        .get(i.saturating_sub(1))
        .copied()
        .unwrap_or("?")
        .to_string()
}

/// Every alias in `crates/`, as table rows.
pub(crate) fn rows(root: &Path) -> crate::Result<Vec<Row>> {
    let mut files = Vec::new();
    crate::tidy::collect_rs_files(&root.join("crates"), &mut files).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        if rel.contains("/tests/") || rel.contains("/examples/") {
            continue;
        }
        let text = fs::read_to_string(&f).map_err(|e| format!("{rel}: {e}"))?;
        for (line, c_name) in doc_aliases(&text) {
            rows.push(Row {
                krate: crate_of(&rel),
                c_name,
                item: item_after(&text, line),
            });
        }
    }
    rows.sort();
    rows.dedup();
    Ok(rows)
}

/// The generated markdown: one table per crate.
pub(crate) fn render(rows: &[Row]) -> String {
    let mut by_crate: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_crate.entry(&r.krate).or_default().push(r);
    }
    let mut out = format!("{BEGIN}\n");
    for (krate, rows) in by_crate {
        out.push_str(&format!(
            "\n### `{krate}`\n\n| libevent | Rust |\n|---|---|\n"
        ));
        let mut rows = rows.clone();
        rows.sort_by(|a, b| a.c_name.cmp(&b.c_name).then(a.item.cmp(&b.item)));
        for r in rows {
            out.push_str(&format!("| `{}` | `{}` |\n", r.c_name, r.item));
        }
    }
    out.push('\n');
    out.push_str(END);
    out
}

/// Replaces the generated part of `doc` (or appends it).
pub(crate) fn splice(doc: &str, generated: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &doc[..b], generated, &doc[e + END.len()..])
        }
        _ => format!("{}\n\n{generated}\n", doc.trim_end()),
    }
}

/// Whether the document's generated part matches the code.
pub(crate) fn is_current(root: &Path) -> crate::Result<bool> {
    let doc =
        fs::read_to_string(root.join(MAPPING_DOC)).map_err(|e| format!("{MAPPING_DOC}: {e}"))?;
    let generated = render(&rows(root)?);
    Ok(splice(&doc, &generated) == doc)
}

/// `cargo xtask mapping`.
pub(crate) fn run(root: &Path) -> crate::Result {
    let path = root.join(MAPPING_DOC);
    let doc = fs::read_to_string(&path).unwrap_or_default();
    let rows = rows(root)?;
    let new = splice(&doc, &render(&rows));
    fs::write(&path, new).map_err(|e| format!("{MAPPING_DOC}: {e}"))?;
    println!("{MAPPING_DOC}: {} rows", rows.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_methods_fields_and_consts() {
        let text = "impl EventBase {\n    /// doc\n    #[doc(alias = \"event_add\")]\n    pub fn add(&mut self) {}\n}\n\
                    pub struct WatchInfo {\n    #[doc(alias = \"evwatch_prepare_get_timeout\")]\n    pub timeout: u8,\n}\n";
        assert_eq!(item_after(text, 3), "EventBase::add");
        assert_eq!(item_after(text, 7), "WatchInfo::timeout");
        let generated = render(&[Row {
            krate: "c".into(),
            c_name: "x".into(),
            item: "y".into(),
        }]);
        let doc = splice("# Title\n", &generated);
        assert_eq!(splice(&doc, &generated), doc, "splicing is idempotent");
        assert!(doc.contains("| `x` | `y` |"));
    }
}
