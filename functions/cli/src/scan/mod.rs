//! The images of manifests, Dockerfiles and lists, with where each was found: the pure half of
//! `ptc scan` and `ptc rewrite` (no routing, no output: [`scan_text`] reads one file's text,
//! [`walk`] finds the files of a path, [`rewrite`] replaces whole-string references).
//!
//! # What is read, and how a file's kind is told
//! By name first ([`Kind::from_name`], case-insensitive):
//! - Dockerfiles: `Dockerfile`, `Containerfile`, `Dockerfile.<x>` and `Containerfile.<x>`
//!   (but not `Dockerfile.dockerignore` / `Containerfile.containerignore`, BuildKit's
//!   per-Dockerfile ignore files), `*.Dockerfile`, `*.Containerfile`;
//! - YAML: `*.yaml`, `*.yml`; JSON: `*.json`;
//! - plain lists: `images.txt`, `images.list`, `*-images.txt`, `*_images.txt`, `*.images`,
//!   `watch-list.txt`, `watchlist.txt`, `*.watchlist` (not every `*.list`: apt's
//!   `sources.list` is no image list).
//!
//! A file named on the command line with another name (and stdin, `-`) is told by its
//! content ([`Kind::from_content`]): its first line that is neither blank nor a comment
//! starting with `FROM`, `ARG` (or a `# syntax=` / `# escape=` parser directive) is a
//! Dockerfile, one starting with `{` or `[` JSON, one that is `---` or a `key:` mapping line
//! YAML, anything else a plain list. In a directory, only the files whose name gives their
//! kind are read.
//!
//! - YAML / JSON ([`yaml`]): Kubernetes workloads (Pod, Deployment, ReplicaSet, StatefulSet,
//!   DaemonSet, Job, CronJob, ReplicationController, PodTemplate, and the items of `kind:
//!   List`), their `initContainers`, `containers`, `ephemeralContainers`; Flux HelmReleases'
//!   `spec.values`.
//! - Dockerfiles ([`dockerfile`]): the `FROM` lines as BuildKit reads them, and the images
//!   `COPY --from=` and `RUN --mount=...,from=` name.
//! - Plain lists ([`list`]): one reference a line, `#` comments.
//!
//! # Limits (untrusted input)
//! A file larger than [`MAX_FILE_BYTES`], not UTF-8, or binary (a NUL byte) is a
//! [`Problem`] naming it; so is each YAML document that does not parse (the other documents
//! are still read). serde_norway bounds what a document can cost: nesting deeper than 128
//! levels is refused ("recursion limit exceeded") and alias expansion beyond 100 times the
//! document's events ("repetition limit exceeded", an alias bomb)
//! (<https://github.com/cafkafk/serde-yaml/blob/main/src/de.rs>, `jumpcount`). Directory walks
//! stop at [`MAX_DEPTH`] levels and [`MAX_FILES`] files, skip hidden entries, and never
//! follow a symbolic link they meet (a link to a directory, or with a name the walk would
//! read, is a [`Problem`] saying so: name it on the command line to read it; paths given on
//! the command line are followed). A FIFO, socket or device is a [`Problem`] and is never
//! opened (reading one could block forever).

pub mod dockerfile;
pub mod list;
pub mod yaml;

use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The largest file read: 16 MiB. Larger files are a [`Problem`].
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The deepest directory level entered below a path given (deeper ones are a [`Problem`]).
pub const MAX_DEPTH: usize = 32;
/// The most files one walk reads; the walk stops with a [`Problem`] beyond it.
pub const MAX_FILES: usize = 10_000;

/// What a file holds, as [`Kind::from_name`] or [`Kind::from_content`] tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// YAML: Kubernetes manifests, Flux HelmReleases, one or more documents.
    Yaml,
    /// JSON: the same objects as YAML (`kubectl get -o json`).
    Json,
    /// A Dockerfile or Containerfile.
    Dockerfile,
    /// One reference a line.
    List,
}

impl Kind {
    /// The kind a file's name gives, `None` when it gives none (see the module's docs).
    pub fn from_name(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let lower = name.to_ascii_lowercase();
        for (stem, ignore) in [
            ("dockerfile", "dockerignore"),
            ("containerfile", "containerignore"),
        ] {
            if lower == stem
                || lower.ends_with(&format!(".{stem}"))
                || lower
                    .strip_prefix(&format!("{stem}."))
                    .is_some_and(|x| !x.is_empty() && x != ignore)
            {
                return Some(Self::Dockerfile);
            }
        }
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            return Some(Self::Yaml);
        }
        if lower.ends_with(".json") {
            return Some(Self::Json);
        }
        let list = [
            "images.txt",
            "images.list",
            "watch-list.txt",
            "watchlist.txt",
        ]
        .contains(&lower.as_str())
            || lower.ends_with("-images.txt")
            || lower.ends_with("_images.txt")
            || (lower.ends_with(".images") && lower.len() > ".images".len())
            || (lower.ends_with(".watchlist") && lower.len() > ".watchlist".len());
        list.then_some(Self::List)
    }

    /// The kind a text's first line that is neither blank nor a comment gives (see the
    /// module's docs).
    pub fn from_content(text: &str) -> Self {
        for line in text.lines() {
            let line = line.trim_start_matches('\u{feff}').trim();
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("# syntax=") || lower.starts_with("# escape=") {
                return Self::Dockerfile;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let word = lower.split_whitespace().next().unwrap_or_default();
            if word == "from" || word == "arg" {
                return Self::Dockerfile;
            }
            if line.starts_with('{') || line.starts_with('[') {
                return Self::Json;
            }
            if line == "---"
                || line.starts_with("--- ")
                || line.starts_with('%')
                || is_yaml_key_line(line)
            {
                return Self::Yaml;
            }
            return Self::List;
        }
        Self::List
    }
}

/// `key: value` or `key:` with a plain key (letters, digits, `_-.`), as YAML mappings start.
fn is_yaml_key_line(line: &str) -> bool {
    let Some((key, rest)) = line.split_once(':') else {
        return false;
    };
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && (rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t'))
}

/// One image found: where, as written, and whether [`rewrite`] may replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where in the file: `Deployment/web initContainers[0] migrate`,
    /// `HelmRelease/nats values.container.image`, `FROM line 3`, `line 2`.
    pub location: String,
    /// The reference: as written, or composed (Helm's split values), or with the Dockerfile's
    /// `ARG` defaults substituted.
    pub image: String,
    /// How [`rewrite`] can replace it, or why it cannot.
    pub edit: Edit,
    /// Something to know about the reference (its `ARG`s, a tag the values do not set).
    pub note: Option<String>,
    /// Why the reference is not known: a Dockerfile variable with no value, a Helm value that
    /// is not a string. Such an image is not classified.
    pub unresolved: Option<String>,
    /// Whether a watch list may hold it: false when what runs is not what is written (a Helm
    /// split image with no tag, whose tag the chart chooses).
    pub exact: bool,
    /// The text in the file when `image` is composed from more than it (a tagless Helm
    /// `image:` whose tag is a sibling `imageTag`/`tag`): what [`rewrite`] checks and
    /// replaces, keeping its lack of a tag.
    pub written: Option<String>,
}

impl Found {
    fn new(location: String, image: String, edit: Edit) -> Self {
        Self {
            location,
            image,
            edit,
            note: None,
            unresolved: None,
            exact: true,
            written: None,
        }
    }

    /// The reference's text as the file writes it: [`Found::written`], else [`Found::image`].
    pub fn text(&self) -> &str {
        self.written.as_deref().unwrap_or(&self.image)
    }
}

/// The tag and digest a reference is written with, `:tag`, `@digest`, `:tag@digest`, or
/// empty when it has neither (the part after the name: a `:` after the last `/`, or `@`).
/// `quay.io/a/b` gives ``, `localhost:5000/a:1` gives `:1`.
pub fn written_suffix(reference: &str) -> &str {
    let r = reference.trim();
    let name_end = r.find('@').unwrap_or(r.len());
    let last_slash = r[..name_end].rfind('/').map_or(0, |i| i + 1);
    let colon = r[last_slash..name_end]
        .find(':')
        .map_or(name_end, |i| last_slash + i);
    &r[colon..]
}

/// How [`rewrite`] can replace a [`Found`] image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// The reference's bytes in the file (Dockerfile `FROM`, list lines).
    Span(Range<usize>),
    /// A whole string value of a YAML or JSON document: the document's number (in
    /// [`FileScan::documents`]) and the path to the value in it.
    Value {
        /// Index into [`FileScan::documents`].
        document: usize,
        /// Keys and indexes from the document's root.
        path: Vec<Segment>,
    },
    /// Not rewritable; why.
    No(String),
}

/// A step of a path into a YAML or JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping's key.
    Key(String),
    /// A sequence's index.
    Index(usize),
}

/// A file, or a part of it, that could not be read; the rest goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The part: empty for the whole file, else `document 2 (line 14)`.
    pub location: String,
    /// What is wrong.
    pub reason: String,
}

/// What one file holds.
#[derive(Debug, Clone, Default)]
pub struct FileScan {
    /// The kind read, when the file could be read.
    pub kind: Option<Kind>,
    /// The images, in file order.
    pub found: Vec<Found>,
    /// The parts that could not be read.
    pub problems: Vec<Problem>,
    /// What the scan could not see and the user should know, not a failure (a HelmRelease's
    /// `valuesFrom`, whose ConfigMaps and Secrets are not read).
    pub notes: Vec<Problem>,
    /// YAML and JSON: each document's byte range in the text.
    pub documents: Vec<Range<usize>>,
}

impl FileScan {
    fn problem(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                location: location.into(),
                reason: reason.into(),
            }],
            ..Self::default()
        }
    }
}

/// The images of one file's `text`, read as `kind`. Never fails: what cannot be read is in
/// [`FileScan::problems`].
pub fn scan_text(text: &str, kind: Kind) -> FileScan {
    let mut scan = match kind {
        Kind::Yaml | Kind::Json => yaml::scan(text, kind),
        Kind::Dockerfile => dockerfile::scan(text),
        Kind::List => list::scan(text),
    };
    scan.kind = Some(kind);
    scan
}

/// One file's bytes checked and scanned: too large, binary or not UTF-8 is a problem;
/// `kind` `None` is told from the content.
pub fn scan_bytes(bytes: &[u8], kind: Option<Kind>) -> (FileScan, Option<String>) {
    match text_of(bytes) {
        Ok(text) => {
            let kind = kind.unwrap_or_else(|| Kind::from_content(&text));
            (scan_text(&text, kind), Some(text))
        }
        Err(reason) => (FileScan::problem("", reason), None),
    }
}

/// The text of a file's bytes: refused when larger than [`MAX_FILE_BYTES`], binary (a NUL
/// byte) or not UTF-8 (the offset of the first bad byte).
pub fn text_of(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(format!("a binary file (NUL byte at offset {at}), not read"));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => Err(format!(
            "not UTF-8 text (bad byte at offset {}), not read",
            e.valid_up_to()
        )),
    }
}

fn too_large() -> String {
    format!("larger than {} MiB, not read", MAX_FILE_BYTES / 1024 / 1024)
}

/// Read at most [`MAX_FILE_BYTES`] + 1 bytes of `reader` (one more tells it is too large).
/// Errors: reading, or too large.
pub fn read_bounded(reader: impl Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A file a walk found, with the kind its name gives (`None`: tell by content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path, as given or joined below a directory given.
    pub path: PathBuf,
    /// The kind its name gives.
    pub kind: Option<Kind>,
    /// Found in a directory walk (then it is opened without following a symbolic link), or
    /// given on the command line (followed).
    pub walked: bool,
}

/// What a file that is neither a regular file nor a directory is, `None` for those two.
fn special(file_type: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_block_device() || file_type.is_char_device() {
        Some("a device")
    } else {
        None
    }
}

/// The problem of a special file (FIFO, socket, device): never opened.
pub fn special_file(what: &str) -> String {
    format!("{what}, not a regular file: not opened")
}

/// The files of `path`: itself when it is a file (any name, followed when it is a symbolic
/// link; kind by content when the name gives none); when a directory, the files below it
/// whose names give their kind, sorted, within [`MAX_DEPTH`] and [`MAX_FILES`], hidden
/// entries skipped, symbolic links not followed (a link to a directory, a broken or looping
/// one, or one whose name gives a kind is a problem saying so; other links are skipped).
/// A FIFO, socket or device is a problem, never opened. What cannot be read is returned as
/// `(path, problem)`.
pub fn walk(path: &Path) -> (Vec<Entry>, Vec<(PathBuf, String)>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    match std::fs::metadata(path) {
        Err(e) => problems.push((path.to_owned(), e.to_string())),
        Ok(meta) if meta.is_dir() => {
            let mut seen = HashSet::new();
            walk_dir(path, 0, &mut seen, &mut entries, &mut problems);
        }
        Ok(meta) => match special(meta.file_type()) {
            Some(what) => problems.push((path.to_owned(), special_file(what))),
            None => entries.push(Entry {
                path: path.to_owned(),
                kind: Kind::from_name(path),
                walked: false,
            }),
        },
    }
    (entries, problems)
}

fn walk_dir(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    entries: &mut Vec<Entry>,
    problems: &mut Vec<(PathBuf, String)>,
) {
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if !seen.insert(real) {
                return; // entered already (a bind mount): once
            }
        }
        Err(e) => {
            problems.push((dir.to_owned(), e.to_string()));
            return;
        }
    }
    if depth > MAX_DEPTH {
        problems.push((
            dir.to_owned(),
            format!("deeper than {MAX_DEPTH} directories, not read"),
        ));
        return;
    }
    let mut children: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(read) => read.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            problems.push((dir.to_owned(), e.to_string()));
            return;
        }
    };
    children.sort();
    for child in children {
        let hidden = child
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // symlink_metadata does not follow a link: a walk never leaves the tree through one.
        let meta = match std::fs::symlink_metadata(&child) {
            Ok(meta) => meta,
            Err(e) => {
                problems.push((child, e.to_string()));
                continue;
            }
        };
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            let target_dir = std::fs::metadata(&child).map(|m| m.is_dir());
            if Kind::from_name(&child).is_some() || !matches!(target_dir, Ok(false)) {
                problems.push((
                    child,
                    "a symbolic link: not followed in a directory walk (name it on the command line to read it)".into(),
                ));
            }
            continue;
        }
        if file_type.is_dir() {
            walk_dir(&child, depth + 1, seen, entries, problems);
            continue;
        }
        let Some(kind) = Kind::from_name(&child) else {
            continue;
        };
        if let Some(what) = special(file_type) {
            problems.push((child, special_file(what)));
            continue;
        }
        if entries.len() >= MAX_FILES {
            problems.push((
                child,
                format!("more than {MAX_FILES} files: the walk stops here"),
            ));
            return;
        }
        entries.push(Entry {
            path: child,
            kind: Some(kind),
            walked: true,
        });
    }
}

/// One replacement [`rewrite`] made or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Index into [`FileScan::found`].
    pub index: usize,
    /// `Ok(())` replaced, else why not.
    pub result: Result<(), String>,
}

/// `text` with the images of `scan` that `replacement` gives a new reference for (by index
/// into [`FileScan::found`]) replaced, every other byte kept; and, for each image asked, an
/// [`Outcome`]. [`Edit::Span`]s are replaced where they are; [`Edit::Value`]s through
/// [`yaml::rewrite_document`], which checks the document parses to the same value with only
/// those strings changed: a value it cannot replace is refused with its reason and the
/// others of its document are still replaced; when replacing would change anything else,
/// none of the document's images is replaced, each told why.
///
/// Cost: linear in the text and the number of replacements (each document's lines are
/// read once, whatever the number of images).
pub fn rewrite(
    text: &str,
    scan: &FileScan,
    replacements: &[(usize, String)],
) -> (String, Vec<Outcome>) {
    let mut outcomes = Vec::new();
    // (byte range, new text), sorted, never overlapping.
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut by_document: std::collections::BTreeMap<usize, Vec<(usize, Vec<Segment>, String)>> =
        Default::default();
    for (index, new) in replacements {
        let Some(found) = scan.found.get(*index) else {
            continue;
        };
        match &found.edit {
            Edit::Span(range) => {
                edits.push((range.clone(), new.clone()));
                outcomes.push(Outcome {
                    index: *index,
                    result: Ok(()),
                });
            }
            Edit::Value { document, path } => {
                by_document
                    .entry(*document)
                    .or_default()
                    .push((*index, path.clone(), new.clone()))
            }
            Edit::No(why) => outcomes.push(Outcome {
                index: *index,
                result: Err(why.clone()),
            }),
        }
    }
    for (document, values) in by_document {
        let Some(range) = scan.documents.get(document) else {
            continue;
        };
        let doc_text = &text[range.clone()];
        let asked: Vec<(Vec<Segment>, String, String)> = values
            .iter()
            .map(|(index, path, new)| {
                (
                    path.clone(),
                    scan.found[*index].text().to_owned(),
                    new.clone(),
                )
            })
            .collect();
        match yaml::rewrite_document(doc_text, scan.kind.unwrap_or(Kind::Yaml), &asked) {
            Ok((spans, results)) => {
                for (span, new) in spans {
                    edits.push(((span.start + range.start)..(span.end + range.start), new));
                }
                outcomes.extend(values.iter().zip(results).map(|((index, _, _), result)| {
                    Outcome {
                        index: *index,
                        result,
                    }
                }));
            }
            Err(why) => outcomes.extend(values.iter().map(|(index, _, _)| Outcome {
                index: *index,
                result: Err(why.clone()),
            })),
        }
    }
    edits.sort_by_key(|(r, _)| r.start);
    edits.dedup_by(|b, a| a.0 == b.0);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, new) in edits {
        if range.start < at {
            continue; // overlapping: never made by the scanners
        }
        out.push_str(&text[at..range.start]);
        out.push_str(&new);
        at = range.end;
    }
    out.push_str(&text[at..]);
    outcomes.sort_by_key(|o| o.index);
    (out, outcomes)
}

/// A unified diff of `old` and `new`, which have the same lines but for replaced text within
/// lines (what [`rewrite`] makes), with three lines of context, as `diff -u` writes it
/// (<https://www.gnu.org/software/diffutils/manual/html_node/Detailed-Unified.html>): headers
/// `--- {old_name}` and `+++ {new_name}`, `@@ -l,n +l,n @@` hunks, line endings kept (CRLF
/// included), `\ No newline at end of file` after a last line without one. Empty when equal.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    if a == b {
        return String::new();
    }
    let same_shape = a.len() == b.len();
    let changed: Vec<usize> = if same_shape {
        (0..a.len()).filter(|i| a[*i] != b[*i]).collect()
    } else {
        Vec::new()
    };
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    if !same_shape {
        // Not made by rewrite; one hunk of everything keeps the patch correct.
        push_hunk(&mut out, &a, &b, 0..a.len(), 0..b.len());
        return out;
    }
    const CONTEXT: usize = 3;
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(CONTEXT);
        let mut end = (changed[i] + CONTEXT + 1).min(a.len());
        let mut j = i + 1;
        while j < changed.len() && changed[j].saturating_sub(CONTEXT) <= end {
            end = (changed[j] + CONTEXT + 1).min(a.len());
            j += 1;
        }
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            start + 1,
            end - start,
            start + 1,
            end - start
        ));
        let mut k = start;
        while k < end {
            if a[k] == b[k] {
                push_line(&mut out, ' ', a[k]);
                k += 1;
            } else {
                // A run of changed lines: all the old ones, then all the new ones.
                let run_end = (k..end).find(|x| a[*x] == b[*x]).unwrap_or(end);
                for line in &a[k..run_end] {
                    push_line(&mut out, '-', line);
                }
                for line in &b[k..run_end] {
                    push_line(&mut out, '+', line);
                }
                k = run_end;
            }
        }
        i = j;
    }
    out
}

fn push_hunk(out: &mut String, a: &[&str], b: &[&str], ra: Range<usize>, rb: Range<usize>) {
    out.push_str(&format!(
        "@@ -{},{} +{},{} @@\n",
        if ra.is_empty() { 0 } else { ra.start + 1 },
        ra.len(),
        if rb.is_empty() { 0 } else { rb.start + 1 },
        rb.len()
    ));
    for line in &a[ra] {
        push_line(out, '-', line);
    }
    for line in &b[rb] {
        push_line(out, '+', line);
    }
}

fn push_line(out: &mut String, mark: char, line: &str) {
    out.push(mark);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

/// 1-based line number of byte `offset` in `text`.
/// The lines of `text` without their `\n` or `\r\n`, each with its number (0-based) and the
/// byte offset where it starts in `text`; a byte-order mark opens only the file, so it is
/// skipped on the first line alone (its offset counted).
pub(crate) fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str, usize)> {
    let mut offset = 0;
    text.split_inclusive('\n').enumerate().map(move |(n, raw)| {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if n == 0 {
            let body = line.trim_start_matches('\u{feff}');
            (n, body, start + line.len() - body.len())
        } else {
            (n, line, start)
        }
    })
}

pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name_and_content() {
        for (name, kind) in [
            ("Dockerfile", Some(Kind::Dockerfile)),
            ("api.Dockerfile", Some(Kind::Dockerfile)),
            ("Containerfile.dev", Some(Kind::Dockerfile)),
            ("web.dockerfile", Some(Kind::Dockerfile)),
            ("Dockerfile.dockerignore", None),
            ("sources.list", None),
            ("images.list", Some(Kind::List)),
            ("images.txt", Some(Kind::List)),
            ("prod.images", Some(Kind::List)),
            ("watch-list.txt", Some(Kind::List)),
            ("prod.watchlist", Some(Kind::List)),
            ("notes.txt", None),
            ("x.YAML", Some(Kind::Yaml)),
            ("x.json", Some(Kind::Json)),
            ("base-images.txt", Some(Kind::List)),
            ("README.md", None),
        ] {
            assert_eq!(Kind::from_name(Path::new(name)), kind, "{name}");
        }
        assert_eq!(
            Kind::from_content("# syntax=docker/dockerfile:1\nFROM x"),
            Kind::Dockerfile
        );
        assert_eq!(
            Kind::from_content("\n# c\nARG X=1\nFROM $X"),
            Kind::Dockerfile
        );
        assert_eq!(Kind::from_content("apiVersion: v1\nkind: Pod"), Kind::Yaml);
        assert_eq!(Kind::from_content("{\"kind\": \"Pod\"}"), Kind::Json);
        assert_eq!(Kind::from_content("nginx:1.25\nquay.io/a/b"), Kind::List);
    }

    #[test]
    fn written_suffixes() {
        for (r, suffix) in [
            ("quay.io/prometheus/node-exporter", ""),
            ("nginx", ""),
            ("nginx:1.25", ":1.25"),
            ("localhost:5000/a", ""),
            ("localhost:5000/a:1", ":1"),
            ("a/b@sha256:00", "@sha256:00"),
            ("a/b:1@sha256:00", ":1@sha256:00"),
        ] {
            assert_eq!(written_suffix(r), suffix, "{r}");
        }
    }

    #[test]
    fn diff_keeps_crlf_and_marks_a_missing_last_newline() {
        let old = "a\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng\r\nh";
        let new = "a\r\nB\r\nc\r\nd\r\ne\r\nf\r\ng\r\nH";
        let diff = unified_diff(old, new, "a/x", "b/x");
        assert_eq!(
            diff,
            "--- a/x\n+++ b/x\n@@ -1,8 +1,8 @@\n a\r\n-b\r\n+B\r\n c\r\n d\r\n e\r\n f\r\n g\r\n-h\n\\ No newline at end of file\n+H\n\\ No newline at end of file\n"
        );
        assert_eq!(unified_diff(old, old, "a", "b"), "");
    }
}
