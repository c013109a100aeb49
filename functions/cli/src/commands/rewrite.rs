//! `ptc rewrite PATH... [--write]`: the scan of `ptc scan`, then the cached URI in place of
//! each routable reference written as a whole string (a container's or a HelmRelease value's
//! `image:`, a Dockerfile's literal `FROM` image, a list line), every other byte kept
//! (comments, quotes, indentation, CRLF). A unified diff on stdout (`git apply` / `patch
//! -p1` take it), or `--write`: each file replaced atomically (a temporary file in its
//! directory, then renamed over it). Idempotent: a rewritten reference names the cache
//! (`already-cached`) and is left alone.
//!
//! Never touched: images that are not routable; Helm's split values (`registry`,
//! `repository`, `tag`: `ptc map --format helm-values` prints them), `FROM` images built from
//! `ARG`s, values a document writes in flow style or through aliases; each is said on stderr.

use std::io::Write;
use std::path::Path;

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::output::OutputFormat;
use crate::routing::{self, RoutingArgs};
use crate::scan;

use super::scan::{ScannedFile, classify, read_paths};

/// `ptc rewrite [--rule ..] [--registry HOST | --account ID] [--write] PATH...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--rule`, `--registry`, `--account`: what to route with.
    #[command(flatten)]
    pub routing: RoutingArgs,
    /// Rewrite the files in place instead of printing a patch.
    #[arg(long)]
    pub write: bool,
    /// Files or directories to rewrite.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Rewrite the routable whole-string references of the paths: a patch on stdout, or the
/// files with `--write`; on stderr, each routable reference left as it is and why, and a
/// summary line.
///
/// Errors: [`CliError::Usage`] for `-` (nothing to patch) or `--output` other than table;
/// [`routing::resolve`]'s; [`CliError::File`] when a file cannot be written (the files before
/// it are written); [`CliError::Output`]; [`Findings::ScanProblems`] when a file or document
/// could not be read (said on stderr; the others are rewritten).
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    if args.paths.iter().any(|p| p == "-") {
        return Err(CliError::Usage(
            "ptc rewrite changes files: give paths, not - (ptc scan - reads stdin)".into(),
        ));
    }
    if ctx.output() != OutputFormat::Table {
        return Err(CliError::Usage(
            "ptc rewrite prints a patch: --output is for ptc scan".into(),
        ));
    }
    let files = read_paths(&args.paths);
    let routing = routing::resolve(ctx, &args.routing).await?;
    let mut stdout = std::io::stdout().lock();
    let (mut rewritten, mut files_changed, mut problems) = (0, 0, 0);
    for file in &files {
        for p in &file.scan.problems {
            problems += 1;
            eprintln!("ptc: {} {}: {}", file.name, p.location, p.reason);
        }
        let Some((new, done)) = rewrite_file(file, &routing) else {
            continue;
        };
        let (Some(old), Some(path)) = (&file.text, &file.path) else {
            continue;
        };
        if *old == new {
            continue;
        }
        rewritten += done;
        files_changed += 1;
        if args.write {
            write_atomically(path, &new).map_err(|reason| CliError::File {
                path: file.name.clone(),
                reason,
            })?;
            eprintln!("ptc: rewrote {}", file.name);
        } else {
            let (a, b) = diff_names(&file.name);
            stdout
                .write_all(scan::unified_diff(old, &new, &a, &b).as_bytes())
                .map_err(CliError::Output)?;
        }
    }
    eprintln!(
        "ptc: {rewritten} reference{} rewritten in {files_changed} file{}{}",
        if rewritten == 1 { "" } else { "s" },
        if files_changed == 1 { "" } else { "s" },
        if args.write || files_changed == 0 {
            ""
        } else {
            " (patch on stdout; --write to change the files)"
        }
    );
    match problems {
        0 => Ok(()),
        n => Err(CliError::Findings(Findings::ScanProblems(n))),
    }
}

/// The file's new text and how many references changed; each routable reference left as it
/// is said on stderr. `None` when the file could not be read.
fn rewrite_file(file: &ScannedFile, routing: &routing::Routing) -> Option<(String, usize)> {
    let text = file.text.as_ref()?;
    let mut replacements = Vec::new();
    for (index, found) in file.scan.found.iter().enumerate() {
        let c = classify(found, routing);
        if let (true, Some(uri)) = (c.is_routable(), c.uri) {
            replacements.push((index, uri));
        }
    }
    let (new, outcomes) = scan::rewrite(text, &file.scan, &replacements);
    let mut done = 0;
    for outcome in outcomes {
        match outcome.result {
            Ok(()) => done += 1,
            Err(why) => {
                let found = &file.scan.found[outcome.index];
                eprintln!(
                    "ptc: {} {}: {} not rewritten: {why}",
                    file.name, found.location, found.image
                );
            }
        }
    }
    Some((new, done))
}

/// The patch's file names: `a/<path>` and `b/<path>` for a relative path (`git apply`,
/// `patch -p1`), the path itself twice for an absolute one (`patch -p0`).
fn diff_names(name: &str) -> (String, String) {
    if Path::new(name).is_absolute() {
        (name.to_owned(), name.to_owned())
    } else {
        let name = name.trim_start_matches("./");
        (format!("a/{name}"), format!("b/{name}"))
    }
}

/// Replace the file (through symbolic links: the file they name) with `text`: written to a
/// temporary file in the same directory with the old one's permissions, synced, renamed over
/// it. Errors: the I/O error's message.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let target = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let dir = target.parent().ok_or("no parent directory")?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("not a file name")?;
    let temp = dir.join(format!(".{name}.ptc-rewrite.{}", std::process::id()));
    let result = (|| {
        let permissions = std::fs::metadata(&target)?.permissions();
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(permissions)?;
        file.sync_all()?;
        std::fs::rename(&temp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(|e| e.to_string())
}
