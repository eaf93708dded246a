//! `cargo xtask contract-doc`: the plugin author's contract reference
//! (`docs/contract.md`), generated from the WIT files and their doc comments so the
//! two cannot drift apart (a test checks the committed file is current).
//!
//! It reads the WIT line by line (the contract keeps one declaration per line, fields
//! and cases one per line): no WIT parser dependency, which would change the features
//! of crates the whole workspace shares and rebuild wasmtime.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

/// One documented item of an interface or world.
struct Item {
    heading: String,
    code: Option<String>,
    docs: String,
    members: Vec<(String, String)>,
}

struct Block {
    kind: &'static str,
    name: String,
    docs: String,
    items: Vec<Item>,
}

/// The reference for the WIT package in `wit_dir`, as Markdown.
pub fn render(wit_dir: &Path) -> Result<String> {
    let mut files: Vec<_> = std::fs::read_dir(wit_dir)
        .with_context(|| format!("cannot read {}", wit_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .collect();
    files.sort();
    let mut package = String::new();
    let mut blocks = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        parse(&text, &mut package, &mut blocks);
    }
    blocks.sort_by(|a, b| (a.kind != "world", &a.name).cmp(&(b.kind != "world", &b.name)));
    let mut out = String::new();
    writeln!(out, "# Contract reference: `{package}`\n")?;
    writeln!(
        out,
        "Generated from `wit/` by `cargo xtask contract-doc`; do not edit. What each capability \
         promises beyond its signature is in [plugin-guide.md](plugin-guide.md).\n"
    )?;
    for block in blocks {
        let title = if block.kind == "world" { "World" } else { "Interface" };
        writeln!(out, "## {title} `{}`\n", block.name)?;
        paragraph(&mut out, &block.docs)?;
        for item in block.items {
            writeln!(out, "### {}\n", item.heading)?;
            if let Some(code) = item.code {
                writeln!(out, "```wit\n{code}\n```\n")?;
            }
            paragraph(&mut out, &item.docs)?;
            for (member, docs) in &item.members {
                if docs.is_empty() {
                    writeln!(out, "- `{member}`")?;
                } else {
                    writeln!(out, "- `{member}`: {docs}")?;
                }
            }
            if !item.members.is_empty() {
                writeln!(out)?;
            }
        }
    }
    Ok(out.trim_end().to_string() + "\n")
}

fn parse(text: &str, package: &mut String, blocks: &mut Vec<Block>) {
    let mut docs: Vec<String> = Vec::new();
    let mut block: Option<Block> = None;
    let mut open: Option<Item> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(doc) = line.strip_prefix("///") {
            docs.push(doc.trim().to_string());
            continue;
        }
        let doc = std::mem::take(&mut docs).join(" ");
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if let Some(p) = line.strip_prefix("package ") {
            *package = p.trim_end_matches(';').to_string();
            continue;
        }
        if let Some(item) = open.as_mut() {
            if line.starts_with('}') {
                block.as_mut().expect("items sit in a block").items.push(open.take().expect("open"));
            } else {
                item.members.push((line.trim_end_matches(',').to_string(), doc));
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["interface" | "world", name, "{"] => {
                let kind = if words[0] == "world" { "world" } else { "interface" };
                block = Some(Block { kind, name: name.to_string(), docs: doc, items: Vec::new() });
            }
            ["}"] => blocks.extend(block.take()),
            ["use", ..] => {}
            ["import" | "export", name] => {
                let b = block.as_mut().expect("imports sit in a world");
                let list = if words[0] == "import" { "imports" } else { "exports" };
                let name = name.trim_end_matches(';');
                match b.items.iter_mut().find(|i| i.heading == list) {
                    Some(item) => item.members.push((name.to_string(), String::new())),
                    None => b.items.push(Item { heading: list.into(), code: None, docs: String::new(), members: vec![(name.to_string(), String::new())] }),
                }
            }
            [kind @ ("record" | "variant" | "enum" | "flags"), name, rest @ ..] => {
                let mut item = Item { heading: format!("{kind} `{name}`"), code: None, docs: doc, members: Vec::new() };
                let rest = rest.join(" ");
                match rest.strip_prefix('{').map(|r| r.trim()) {
                    // One-line `enum x { a, b }`.
                    Some(inner) if inner.ends_with('}') => {
                        let cases = inner.trim_end_matches('}').split(',').map(str::trim).filter(|c| !c.is_empty());
                        item.members = cases.map(|c| (c.to_string(), String::new())).collect();
                        block.as_mut().expect("types sit in a block").items.push(item);
                    }
                    _ => open = Some(item),
                }
            }
            ["type", name, ..] => {
                let item = Item { heading: format!("type `{name}`"), code: Some(line.to_string()), docs: doc, members: Vec::new() };
                block.as_mut().expect("types sit in a block").items.push(item);
            }
            [first, ..] if first.ends_with(':') => {
                let name = first.trim_end_matches(':');
                let item = Item { heading: format!("`{name}`"), code: Some(line.to_string()), docs: doc, members: Vec::new() };
                block.as_mut().expect("functions sit in a block").items.push(item);
            }
            _ => {}
        }
    }
}

fn paragraph(out: &mut String, docs: &str) -> Result<()> {
    if !docs.is_empty() {
        writeln!(out, "{docs}\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_contract_reference_is_current() {
        let root = crate::root();
        let generated = super::render(&root.join("wit")).unwrap();
        let committed = std::fs::read_to_string(root.join("docs/contract.md")).unwrap_or_default();
        assert!(committed == generated, "docs/contract.md is stale: run `cargo xtask contract-doc` and commit it");
    }

    #[test]
    fn every_function_and_field_of_the_contract_is_listed() {
        let doc = super::render(&crate::root().join("wit")).unwrap();
        for expected in [
            "## Interface `http`",
            "secret-query: list<tuple<string, string>>",
            "### `send`",
            "### record `plugin-info`",
            "host-settings: list<string>",
            "## World `provider`",
            "- `checkout`",
            "### enum `hmac-algorithm`",
            "- `sha1`",
        ] {
            assert!(doc.contains(expected), "the reference lacks {expected:?}");
        }
    }
}
