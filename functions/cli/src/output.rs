//! Human tables and `--output json`.

use std::io::{StdoutLock, Write};

use serde::Serialize;

/// `--output`: `table` (tables and summary lines for people, the default), `json` (the
/// command's report as one pretty JSON document), or `watch-list` (`ptc map` and `ptc scan`:
/// the routable images' upstream references, one per line, for `ptc prewarm --image -` or
/// `PTC_WATCH_LIST_URL`; other commands refuse it).
// No doc comments on the variants: clap would list them in `--help` as value descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    WatchList,
}

/// A command's report on stdout: `value` as JSON with `--output json`, else what `table`
/// prints. Errors: writing stdout.
pub fn emit<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&mut StdoutLock<'static>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        OutputFormat::Json => json(&mut stdout, value),
        OutputFormat::Table | OutputFormat::WatchList => table(&mut stdout),
    }
}

/// A watch list: the routable images' normalised upstream references
/// (`docker.io/library/nginx:1.25`), one per line, each once, in the order first seen, under a
/// comment line. What `ptc prewarm --image -` and `PTC_WATCH_LIST_URL` read.
pub fn watch_list(
    out: &mut impl Write,
    images: &[ptc_core::adoption::Classified],
) -> std::io::Result<()> {
    let mut seen = std::collections::HashSet::new();
    writeln!(
        out,
        "# watch list: the routable images (ptc prewarm --image -, PTC_WATCH_LIST_URL)"
    )?;
    for image in images.iter().filter(|i| i.is_routable()) {
        if let Some(upstream) = &image.upstream
            && seen.insert(upstream.clone())
        {
            writeln!(out, "{upstream}")?;
        }
    }
    Ok(())
}

/// Print rows as an aligned table: a header line, then one line per row. Control characters
/// in a cell (a newline in a reference read from a hostile manifest) are written escaped
/// (`\n`, `\u{0}`), so that no cell can add a line or move the cursor.
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let escaped: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape_controls(cell)).collect())
        .collect();
    let rows = &escaped;
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    (*c).to_owned()
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.to_vec()).trim_end())?;
    for row in rows {
        writeln!(
            out,
            "{}",
            line(row.iter().map(String::as_str).collect()).trim_end()
        )?;
    }
    Ok(())
}

/// `text` with what a terminal would act on or hide escaped as Rust writes it (`\n`, `\t`,
/// `\u{1b}`): control characters, the formatting characters that reorder text
/// (bidirectional overrides and isolates U+202A-U+202E, U+2066-U+2069, marks U+200E, U+200F,
/// U+061C: the "Trojan Source" characters, CVE-2021-42574), line and paragraph separators
/// U+2028, U+2029, and the invisible ones that make two texts look alike (zero-width space,
/// joiners U+200B-U+200D, word joiner U+2060, soft hyphen U+00AD, U+FEFF).
pub fn escape_controls(text: &str) -> String {
    let hostile = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{061c}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{feff}'
                    | '\u{200b}'..='\u{200d}'
                    | '\u{2060}'
                    | '\u{00ad}'
            )
    };
    if !text.chars().any(hostile) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else if hostile(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Pretty JSON, one document.
pub fn json(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut buf = Vec::new();
        table(
            &mut buf,
            &["A", "B"],
            &[
                vec!["long value".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "A           B\nlong value  x\ns           y\n"
        );
    }

    #[test]
    fn a_cell_cannot_add_a_line() {
        let mut buf = Vec::new();
        table(
            &mut buf,
            &["IMAGE", "CLASS"],
            &[vec![
                "nginx:1.25\nquay.io/evil/x\u{1b}[2J".into(),
                "invalid".into(),
            ]],
        )
        .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(escape_controls("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape_controls("nginx\u{200b}:1"), "nginx\\u{200b}:1");
        assert!(
            text.contains("nginx:1.25\\nquay.io/evil/x\\u{1b}[2J"),
            "{text}"
        );
    }
}
