//! Text the service shows is written as it reads: no string literal in `src/` carries a run of
//! spaces in the middle of a sentence, as a line joined without its `\` continuation (or a
//! continuation inside a raw string) leaves behind. Found by tokenizing every file as the
//! compiler does (proc-macro2), so that comments, raw strings and macro arguments are handled.

use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};

/// Runs of this many spaces between two words are taken for a joined line.
const SUSPICIOUS: usize = 8;

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

/// The value of a plain string literal's source text (`"..."`): continuations removed, other
/// escapes kept as they are (they cannot produce spaces). `None` for other literals.
fn string_value(source: &str) -> Option<String> {
    let body = source.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\n') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(escaped) => {
                out.push('\\');
                out.push(escaped);
            }
            None => {}
        }
    }
    Some(out)
}

/// A run of [`SUSPICIOUS`] spaces between two non-spaces, in a literal that is not an indented
/// table row (one that starts with whitespace, as a `--help` listing does).
fn joined_line(value: &str) -> Option<String> {
    if value.starts_with(char::is_whitespace) {
        return None;
    }
    let run = " ".repeat(SUSPICIOUS);
    value.split('\n').find_map(|line| {
        let at = line.trim_end().find(&run)?;
        (at > 0).then(|| line.to_string())
    })
}

fn literals(stream: TokenStream, found: &mut Vec<String>) {
    for tree in stream {
        match tree {
            TokenTree::Group(g) => literals(g.stream(), found),
            TokenTree::Literal(l) => found.push(l.to_string()),
            _ => {}
        }
    }
}

#[test]
fn no_string_literal_carries_the_indentation_of_a_joined_line() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 50, "found the sources: {}", files.len());
    let mut bad = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let stream: TokenStream = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        let mut found = Vec::new();
        literals(stream, &mut found);
        for lit in found {
            if let Some(line) = string_value(&lit).as_deref().and_then(joined_line) {
                bad.push(format!("{}: {line:?}", file.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "string literals with a joined line's spaces:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_sees_what_a_continuation_hides() {
    assert_eq!(string_value("\"a \\\n     b\"").as_deref(), Some("a b"));
    assert!(joined_line("found                              here").is_some());
    assert!(joined_line("a b").is_none());
    assert!(
        joined_line("  upgrade.sh          steps 2-4").is_none(),
        "a table row"
    );
    assert_eq!(string_value("r\"x\""), None);
}
