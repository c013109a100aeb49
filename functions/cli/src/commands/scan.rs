//! `ptc scan PATH...`: every image of rendered Kubernetes YAML, Flux HelmReleases,
//! Dockerfiles and plain lists ([`crate::scan`]), with where it was found and its class
//! ([`adoption::classify`]): a table, `--output json`, or the routable set as a watch list
//! (`--output watch-list`, for `ptc prewarm --image -`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ptc_core::adoption::{self, Classified, ImageClass};
use serde::Serialize;

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::output::{self, OutputFormat};
use crate::routing::{self, RoutingArgs};
use crate::scan::{self, FileScan, Found, Kind};

/// `ptc scan [--rule ..] [--registry HOST | --account ID] PATH...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--rule`, `--registry`, `--account`: what to route with.
    #[command(flatten)]
    pub routing: RoutingArgs,
    /// Files or directories to read; `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Scan the paths, classify every image, print one [`Row`] per image and per problem
/// (`--output table|json`) or the routable images' upstream references once each
/// (`--output watch-list`; images whose tag the values leave to the chart are left out, and
/// said so on stderr). AWS is reached only for what the flags and the settings do not give
/// ([`routing::resolve`]).
///
/// Errors: [`routing::resolve`]'s (before any output), [`CliError::Output`];
/// [`Findings::ScanProblems`] when a file or a document could not be read (each is a row).
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let files = read_paths(&args.paths);
    let routing = routing::resolve(ctx, &args.routing).await?;
    let report = Report::new(&files, &routing);
    if ctx.output() == OutputFormat::WatchList {
        let images: Vec<Classified> = report
            .classified
            .iter()
            .filter(|(row, _)| report.rows[*row].exact)
            .map(|(_, c)| c.clone())
            .collect();
        for (row, c) in &report.classified {
            let r = &report.rows[*row];
            if !r.exact && c.is_routable() {
                eprintln!(
                    "ptc: {}",
                    output::escape_controls(&format!(
                        "{} {}: {} left out of the watch list: {}",
                        r.file,
                        r.location,
                        c.reference,
                        r.note.as_deref().unwrap_or_default()
                    ))
                );
            }
        }
        for r in report.rows.iter().filter(|r| r.image.is_none()) {
            let text = r.problem.as_deref().or(r.note.as_deref());
            eprintln!(
                "ptc: {}",
                output::escape_controls(&format!(
                    "{} {}: {}",
                    r.file,
                    r.location,
                    text.unwrap_or_default()
                ))
            );
        }
        let mut out = std::io::stdout().lock();
        output::watch_list(&mut out, &images).map_err(CliError::Output)?;
    } else {
        ctx.print(&report.json(), |out| report.print(out))?;
    }
    match report.problems() {
        0 => Ok(()),
        n => Err(CliError::Findings(Findings::ScanProblems(n))),
    }
}

/// One file read (or not): its name as printed, its path (`None` for stdin), its text when
/// it could be read, and what it holds.
#[derive(Debug)]
pub struct ScannedFile {
    /// As given, or joined below a directory given; `-` for stdin.
    pub name: String,
    /// The file, `None` for stdin.
    pub path: Option<PathBuf>,
    /// The text, when it could be read.
    pub text: Option<String>,
    /// The images and problems.
    pub scan: FileScan,
}

/// Every file of `paths` (`-` = stdin, read once however often it is given; directories
/// walked: [`scan::walk`]) read within [`scan::MAX_FILE_BYTES`] and scanned; what cannot be
/// read is a [`scan::Problem`] of the file named. A file reached twice (named twice, as
/// `a.txt` and `./a.txt`, through a symbolic link or a hard link, or inside a directory also
/// given) is read once, under the first spelling: files are told apart by their device and
/// inode (`stat`, following links), so a rewrite never gives two patch sections for one
/// file. A walk's problem for an entry also named on the command line (a symbolic link the
/// walk does not follow, say) is not reported: the entry named is read (or its own problem
/// told).
pub fn read_paths(paths: &[String]) -> Vec<ScannedFile> {
    use std::os::unix::fs::MetadataExt;
    let mut files = Vec::new();
    let mut seen: std::collections::HashSet<(u64, u64)> = std::collections::HashSet::new();
    let named: std::collections::HashSet<PathBuf> = paths
        .iter()
        .filter(|p| *p != "-")
        .filter_map(|p| std::path::absolute(p).ok())
        .collect();
    let mut stdin_read = false;
    for given in paths {
        if given == "-" {
            if !std::mem::replace(&mut stdin_read, true) {
                let bytes = scan::read_bounded(std::io::stdin().lock());
                files.push(scanned("-".into(), None, bytes, None));
            }
            continue;
        }
        let (entries, problems) = scan::walk(Path::new(given));
        for (path, reason) in problems {
            let walked = path != Path::new(given);
            if walked && std::path::absolute(&path).is_ok_and(|a| named.contains(&a)) {
                continue; // named on the command line too: read (or told) there
            }
            files.push(ScannedFile {
                name: path.display().to_string(),
                path: Some(path),
                text: None,
                scan: problem(reason),
            });
        }
        for entry in entries {
            // A path that cannot be stat'ed is read (and its error told) as given.
            if let Ok(meta) = std::fs::metadata(&entry.path)
                && !seen.insert((meta.dev(), meta.ino()))
            {
                continue;
            }
            let bytes = read_file(&entry.path, entry.walked);
            files.push(scanned(
                entry.path.display().to_string(),
                Some(entry.path),
                bytes,
                entry.kind,
            ));
        }
    }
    files
}

fn problem(reason: String) -> FileScan {
    FileScan {
        problems: vec![scan::Problem {
            location: String::new(),
            reason,
        }],
        ..FileScan::default()
    }
}

/// Open `path` without blocking (a FIFO put in place of a regular file would block `open`)
/// and, when a walk found it, without following a symbolic link (`O_NOFOLLOW`: a link put
/// in place after the walk fails with ELOOP); refused unless a regular file.
fn read_file(path: &Path, walked: bool) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK;
    if walked {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(scan::special_file("not a regular file"));
    }
    let len = meta.len();
    if len > scan::MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} MiB ({len} bytes), not read",
            scan::MAX_FILE_BYTES / 1024 / 1024
        ));
    }
    scan::read_bounded(file)
}

fn scanned(
    name: String,
    path: Option<PathBuf>,
    bytes: Result<Vec<u8>, String>,
    kind: Option<Kind>,
) -> ScannedFile {
    match bytes {
        Err(reason) => ScannedFile {
            name,
            path,
            text: None,
            scan: problem(reason),
        },
        Ok(bytes) => {
            let (scan, text) = scan::scan_bytes(&bytes, kind);
            ScannedFile {
                name,
                path,
                text,
                scan,
            }
        }
    }
}

/// One line of `ptc scan`'s answer: an image found, a problem reading a file, or a note on
/// what the scan could not see (class `note` in the table; not a problem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The file, `-` for stdin.
    pub file: String,
    /// Where in it (`Deployment/web initContainers[0] migrate`, `FROM line 3`, `line 2`,
    /// `document 2 (line 14)`; empty: the whole file).
    pub location: String,
    /// The reference as written (composed for Helm's split values, substituted for
    /// Dockerfile `ARG`s); absent for a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Its class ([`ImageClass`]); an unresolved `ARG` or a non-string value is `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<ImageClass>,
    /// The normalised upstream reference, when it parses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The cached image URI (routable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Why it is not routable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Something to know: the `ARG`s it came from, a tag the values leave to the chart; alone
    /// (no image, no problem), a note on the file (a HelmRelease's `valuesFrom`, not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What kept the file or document from being read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Whether a watch list may hold it (false when the chart chooses the tag).
    #[serde(skip)]
    pub exact: bool,
}

/// The rows of every file, and the classified images (row index, classification).
#[derive(Debug)]
pub struct Report {
    /// In file order, problems first within a file.
    pub rows: Vec<Row>,
    /// The images (not the problems): index into `rows`, and their classification.
    pub classified: Vec<(usize, Classified)>,
    /// Files read (with or without images).
    pub files: usize,
}

/// The classification of one found image: [`adoption::classify`], or `invalid` with the
/// reason when the scan could not resolve it.
pub fn classify(found: &Found, routing: &routing::Routing) -> Classified {
    match &found.unresolved {
        None => adoption::classify(&found.image, &routing.rules, &routing.registry_host),
        Some(why) => Classified {
            reference: found.image.clone(),
            class: ImageClass::Invalid,
            upstream: None,
            prefix: None,
            repository: None,
            tag: None,
            digest: None,
            uri: None,
            reason: Some(format!("unresolved: {why}")),
        },
    }
}

impl Report {
    /// Classify every image of `files`.
    pub fn new(files: &[ScannedFile], routing: &routing::Routing) -> Self {
        let mut rows = Vec::new();
        let mut classified = Vec::new();
        for file in files {
            for p in &file.scan.problems {
                rows.push(Row {
                    file: file.name.clone(),
                    location: p.location.clone(),
                    image: None,
                    class: None,
                    upstream: None,
                    uri: None,
                    reason: None,
                    note: None,
                    problem: Some(p.reason.clone()),
                    exact: false,
                });
            }
            for n in &file.scan.notes {
                rows.push(Row {
                    file: file.name.clone(),
                    location: n.location.clone(),
                    image: None,
                    class: None,
                    upstream: None,
                    uri: None,
                    reason: None,
                    note: Some(n.reason.clone()),
                    problem: None,
                    exact: false,
                });
            }
            for found in &file.scan.found {
                let c = classify(found, routing);
                classified.push((rows.len(), c.clone()));
                let (upstream, uri) = if chart_tag(found) {
                    (untagged(&c.upstream, &c), untagged(&c.uri, &c))
                } else {
                    (c.upstream.clone(), c.uri.clone())
                };
                rows.push(Row {
                    file: file.name.clone(),
                    location: found.location.clone(),
                    image: Some(found.image.clone()),
                    class: Some(c.class),
                    upstream,
                    uri,
                    reason: c.reason.clone(),
                    note: found.note.clone(),
                    problem: None,
                    exact: found.exact,
                });
            }
        }
        Self {
            rows,
            classified,
            files: files.iter().filter(|f| f.text.is_some()).count(),
        }
    }

    /// How many problems.
    pub fn problems(&self) -> usize {
        self.rows.iter().filter(|r| r.problem.is_some()).count()
    }

    /// Images per class, in the class order.
    pub fn counts(&self) -> BTreeMap<ImageClass, usize> {
        let mut counts = BTreeMap::new();
        for (_, c) in &self.classified {
            *counts.entry(c.class).or_insert(0) += 1;
        }
        counts
    }

    /// `--output json`: `{"rows": [...], "counts": {"routable": n, ...}, "problems": n}`.
    pub fn json(&self) -> serde_json::Value {
        let counts: BTreeMap<&str, usize> = self
            .counts()
            .into_iter()
            .map(|(class, n)| (class.as_str(), n))
            .collect();
        serde_json::json!({
            "rows": self.rows,
            "counts": counts,
            "problems": self.problems(),
        })
    }

    /// The summary line: `12 images in 3 files: 9 routable, 1 no-rule, ...; 1 problem`.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        let per_class = counts
            .iter()
            .map(|(class, n)| format!("{n} {class}"))
            .collect::<Vec<_>>()
            .join(", ");
        let images = self.classified.len();
        let mut line = format!(
            "{images} image{} in {} file{}",
            plural(images),
            self.files,
            plural(self.files)
        );
        if !per_class.is_empty() {
            line.push_str(&format!(": {per_class}"));
        }
        let problems = self.problems();
        if problems > 0 {
            line.push_str(&format!("; {problems} problem{}", plural(problems)));
        }
        let notes = self
            .rows
            .iter()
            .filter(|r| r.image.is_none() && r.problem.is_none())
            .count();
        if notes > 0 {
            line.push_str(&format!("; {notes} note{}", plural(notes)));
        }
        line
    }

    /// The table (FILE, WHERE, IMAGE, CLASS, CACHED URI / REASON) and the summary line.
    pub fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let last = match (&r.problem, &r.uri, &r.reason) {
                    (Some(p), _, _) => p.clone(),
                    (None, Some(uri), _) => uri.clone(),
                    (None, None, reason) => reason.clone().unwrap_or_default(),
                };
                let last = match &r.note {
                    Some(note) if last.is_empty() => note.clone(),
                    Some(note) => format!("{last} ({note})"),
                    None => last,
                };
                vec![
                    r.file.clone(),
                    if r.location.is_empty() {
                        "-".into()
                    } else {
                        r.location.clone()
                    },
                    r.image.clone().unwrap_or_else(|| "-".into()),
                    match (r.class, &r.problem) {
                        (Some(c), _) => c.as_str().to_owned(),
                        (None, Some(_)) => "problem".into(),
                        (None, None) => "note".into(),
                    },
                    last,
                ]
            })
            .collect();
        output::table(
            out,
            &["FILE", "WHERE", "IMAGE", "CLASS", "CACHED URI / REASON"],
            &rows,
        )?;
        writeln!(out, "{}", self.summary())
    }
}

/// Whether the values leave `found`'s tag to the chart (a tagless split, not exact): its
/// row shows the upstream and cached references without the `:latest` the classification
/// defaults to, as its note says the chart's default tag applies.
fn chart_tag(found: &Found) -> bool {
    !found.exact && scan::written_suffix(&found.image).is_empty()
}

/// `reference` without the `:<tag>` the classification `c` gave it (none when it has a
/// digest or no tag).
fn untagged(reference: &Option<String>, c: &Classified) -> Option<String> {
    let reference = reference.as_ref()?;
    match (&c.tag, &c.digest) {
        (Some(tag), None) => Some(
            reference
                .strip_suffix(&format!(":{tag}"))
                .unwrap_or(reference)
                .to_owned(),
        ),
        _ => Some(reference.clone()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
