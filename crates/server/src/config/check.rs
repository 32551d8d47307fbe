//! Config validation that reports every problem, each with its key path, line and what was expected.
//!
//! serde stops at the first error, so we parse, record the error with its path, remove the offending
//! key from the document and parse again, until the file deserializes or nothing more can be removed.

use std::fmt;

use serde::de::DeserializeOwned;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path such as `server.listen`; empty for file-level syntax errors.
    pub path: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.path.is_empty()) {
            (Some(line), false) => write!(f, "line {line}: `{}`: {}", self.path, self.message),
            (Some(line), true) => write!(f, "line {line}: {}", self.message),
            (None, false) => write!(f, "`{}`: {}", self.path, self.message),
            (None, true) => write!(f, "{}", self.message),
        }
    }
}

/// At most this many problems are reported; past that the file is probably not a Convene config.
const MAX_PROBLEMS: usize = 50;

pub(super) fn parse_all<T: DeserializeOwned>(text: &str) -> Result<T, Vec<Problem>> {
    let mut doc: toml_edit::DocumentMut = match text.parse() {
        Ok(doc) => doc,
        Err(e) => {
            let e: toml_edit::TomlError = e;
            return Err(vec![Problem {
                path: String::new(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: first_line(e.message()),
            }]);
        }
    };
    let mut problems = Vec::new();
    let mut current = text.to_owned();
    loop {
        match try_parse::<T>(&current) {
            Ok(value) if problems.is_empty() => return Ok(value),
            Ok(_) => return Err(in_file_order(problems)),
            Err((path, message)) => {
                let line = find_line(text, &path);
                let removed = !path.is_empty() && remove_path(&mut doc, &path);
                problems.push(Problem {
                    path,
                    line,
                    message,
                });
                if !removed || problems.len() >= MAX_PROBLEMS {
                    return Err(in_file_order(problems));
                }
                current = doc.to_string();
            }
        }
    }
}

/// serde visits tables in its own order; people read files top to bottom.
fn in_file_order(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    problems
}

fn try_parse<T: DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    let de =
        toml::Deserializer::parse(text).map_err(|e| (String::new(), first_line(e.message())))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = explain(&path, e.inner().message());
        (if path == "." { String::new() } else { path }, message)
    })
}

/// Adds a "did you mean" to unknown-field errors, using the list serde puts in its message.
fn explain(path: &str, message: &str) -> String {
    let message = first_line(message);
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message;
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(unknown, c), *c))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let section = path.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
    let valid = if candidates.is_empty() {
        String::from("none")
    } else {
        candidates.join(", ")
    };
    let mut out = format!("unknown key `{unknown}`");
    if !section.is_empty() {
        out.push_str(&format!(" in [{section}]"));
    }
    match best {
        Some((score, name)) if score > 0.7 => out.push_str(&format!("; did you mean `{name}`?")),
        _ => {}
    }
    out.push_str(&format!(" (valid keys: {valid})"));
    out
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_owned()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Finds the line where a dotted key path is defined, using the parser's spans.
fn find_line(text: &str, path: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut span = None;
    for part in path.split('.') {
        let table = item.as_table_like()?;
        let (key, value) = table.get_key_value(part)?;
        span = key.span().or_else(|| value.span());
        item = value;
    }
    span.map(|s| line_of(text, s.start))
}

fn remove_path(doc: &mut toml_edit::DocumentMut, path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return false;
    };
    let mut item = doc.as_item_mut();
    for part in parents {
        match item.as_table_like_mut().and_then(|t| t.get_mut(part)) {
            Some(next) => item = next,
            None => return false,
        }
    }
    item.as_table_like_mut()
        .and_then(|t| t.remove(last))
        .is_some()
}
