//! `ptc rewrite PATH... [--write]`: the scan of `ptc scan`, then the cached location in place
//! of each routable reference written as a whole string (a container's or a HelmRelease
//! value's `image:`, a Dockerfile's literal `FROM` / `COPY --from` / `RUN --mount from`
//! image, a list line), every other byte kept (comments, quotes, indentation, CRLF).
//!
//! The new text is `<registry host>/<cached repository>` (as [`adoption::classify`] routes
//! it: `Classified::repository`) followed by exactly the tag and digest the reference was
//! written with, or none when it had none: `quay.io/prometheus/node-exporter` becomes
//! `<host>/quay/prometheus/node-exporter`, not `...:latest`, so a chart writing `{{ .image
//! }}:{{ .imageTag }}` still renders one tag.
//!
//! A unified diff on stdout, or `--write`: each file replaced atomically (a temporary file
//! made with `O_EXCL` in its directory, with the old file's mode and, when the process may,
//! its owner and group, then renamed over it). Because the new file is renamed over the
//! path, a file with other hard links gets a new inode: the path given (or walked) holds the
//! new text, and every other hard link to the old file keeps the old content (a file
//! reached through two hard links is read once, under the first name: see
//! [`read_paths`]). The patch names a relative path `a/<path>`
//! and `b/<path>` (`git apply`, `patch -p1`), and so an absolute path below the current
//! directory (made relative to it); an absolute path elsewhere is named as it is, for
//! `patch -p0` (`git apply` refuses such names). A path with whitespace, control
//! characters or the invisible formatting characters [`escape_controls`] escapes
//! (bidirectional overrides such as U+202E) is not put in a patch (a problem says so;
//! `--write` rewrites it).
//! Idempotent: a rewritten reference names the cache (`already-cached`) and is left alone.
//!
//! Never touched, and each said on stderr with its class and reason: images that are not
//! routable (already cached, AWS-owned, unsupported registries, no rule, invalid); Helm's
//! split values (`registry`, `repository`/`image`, `tag`: `ptc map --format helm-values`
//! prints them), images built from `ARG`s, values a document writes in flow style, with a
//! tag, through aliases or merge keys. Every stderr line built from file content has its
//! control characters escaped.

use std::io::Write;
use std::path::Path;

use ptc_core::adoption;

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::output::{OutputFormat, escape_controls};
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
            say(&format!("{} {}: {}", file.name, p.location, p.reason));
        }
        for n in &file.scan.notes {
            say(&format!("{} {}: {}", file.name, n.location, n.reason));
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
        if args.write {
            write_atomically(path, &new).map_err(|reason| CliError::File {
                path: escape_controls(&file.name),
                reason,
            })?;
            say(&format!("rewrote {}", file.name));
        } else {
            let Some((a, b)) = diff_names(&file.name) else {
                problems += 1;
                say(&format!(
                    "{}: a file name with whitespace, control or formatting characters cannot be named in a patch: not in it (ptc rewrite --write rewrites it)",
                    file.name
                ));
                continue;
            };
            stdout
                .write_all(scan::unified_diff(old, &new, &a, &b).as_bytes())
                .map_err(CliError::Output)?;
        }
        rewritten += done;
        files_changed += 1;
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

/// One line on stderr, `ptc: ` and `text` with its control characters escaped (file names,
/// references and reasons come from files).
fn say(text: &str) {
    eprintln!("ptc: {}", escape_controls(text));
}

/// What replaces a routable reference: `<registry host>/<cached repository>` and the tag
/// and digest exactly as `written` gives them (none when it gives none). `None` when the
/// classification names no repository.
pub fn replacement(c: &adoption::Classified, registry_host: &str, written: &str) -> Option<String> {
    let repository = c.repository.as_deref()?;
    Some(format!(
        "{registry_host}/{repository}{}",
        scan::written_suffix(written)
    ))
}

/// The file's new text and how many references changed; each reference left as it is said
/// on stderr with its class and reason. `None` when the file could not be read.
fn rewrite_file(file: &ScannedFile, routing: &routing::Routing) -> Option<(String, usize)> {
    let text = file.text.as_ref()?;
    let mut replacements = Vec::new();
    let mut classes = Vec::with_capacity(file.scan.found.len());
    for (index, found) in file.scan.found.iter().enumerate() {
        let c = classify(found, routing);
        if c.is_routable()
            && let Some(new) = replacement(&c, &routing.registry_host, found.text())
        {
            replacements.push((index, new));
        } else {
            say(&format!(
                "{} {}: {} left as written: {}: {}",
                file.name,
                found.location,
                found.text(),
                c.class,
                c.reason.as_deref().unwrap_or("no cached repository")
            ));
        }
        classes.push(c.class);
    }
    let (new, outcomes) = scan::rewrite(text, &file.scan, &replacements);
    let mut done = 0;
    for outcome in outcomes {
        match outcome.result {
            Ok(()) => done += 1,
            Err(why) => {
                let found = &file.scan.found[outcome.index];
                say(&format!(
                    "{} {}: {} left as written: {} but not rewritten: {why}",
                    file.name,
                    found.location,
                    found.text(),
                    classes[outcome.index]
                ));
            }
        }
    }
    Some((new, done))
}

/// The patch's file names: `a/<path>` and `b/<path>` for a relative path (`git apply`,
/// `patch -p1`) and for an absolute path below the current directory (made relative to
/// it); the path itself twice for another absolute one (apply with `patch -p0`; `git apply` refuses
/// it). `None` when the name has whitespace or control characters (a unified diff header
/// cannot name it without quoting, which `patch` and `git apply` read differently), or a
/// character [`escape_controls`] escapes (a bidirectional override would show a reviewer
/// another name than the one the patch writes).
fn diff_names(name: &str) -> Option<(String, String)> {
    // Also what `escape_controls` would change (U+202E and the other "Trojan Source"
    // characters): a reviewer reading the patch would not see the name it writes.
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) || escape_controls(name) != name {
        return None;
    }
    let path = Path::new(name);
    let relative = if path.is_absolute() {
        let below = std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
        match below.as_ref().and_then(|p| p.to_str()) {
            Some(rel) if !rel.is_empty() => rel.to_owned(),
            _ => return Some((name.to_owned(), name.to_owned())),
        }
    } else {
        name.to_owned()
    };
    let mut rel = relative.as_str();
    while let Some(rest) = rel.strip_prefix("./") {
        rel = rest;
    }
    Some((format!("a/{rel}"), format!("b/{rel}")))
}

/// Replace the file (through symbolic links: the file they name) with `text`: written to a
/// new temporary file in the same directory, made with `create_new` (`O_EXCL`: never a file
/// or symbolic link already there), given the old file's owner and group when the process
/// may (`fchown`: root may; another user may keep its own uid and set a group it is in;
/// else the new file keeps the process's, which cannot be helped without privileges) and
/// then its mode (after `fchown`, which clears set-id bits), synced, renamed over it.
/// Errors: the I/O error's message.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let target = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let dir = target.parent().ok_or("no parent directory")?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("not a file name")?;
    let meta = std::fs::metadata(&target).map_err(|e| e.to_string())?;
    let mut made = None;
    for attempt in 0..100 {
        let temp = dir.join(format!(
            ".{name}.ptc-rewrite.{}.{attempt}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => {
                made = Some((temp, file));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    let (temp, mut file) = made.ok_or("no temporary file name free beside it")?;
    let result = (|| {
        file.write_all(text.as_bytes())?;
        if std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())).is_err() {
            // Not root: keep at least the group when the process is in it; else the
            // process's own owner and group stay (nothing more can be done unprivileged).
            let _ = std::os::unix::fs::fchown(&file, None, Some(meta.gid()));
        }
        file.set_permissions(meta.permissions())?;
        file.sync_all()?;
        std::fs::rename(&temp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_is_new_never_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("pod.yaml");
        let victim = dir.path().join("victim");
        std::fs::write(&target, "old\n").unwrap();
        std::fs::write(&victim, "keep\n").unwrap();
        // The name the first attempt uses, planted as a link to another file.
        let planted = dir
            .path()
            .join(format!(".pod.yaml.ptc-rewrite.{}.0", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomically(&target, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        assert!(std::fs::symlink_metadata(&planted).unwrap().is_symlink());
    }

    #[test]
    fn patch_names() {
        assert_eq!(
            diff_names("./x/a.yaml"),
            Some(("a/x/a.yaml".into(), "b/x/a.yaml".into()))
        );
        assert_eq!(
            diff_names("/elsewhere/a.yaml"),
            Some(("/elsewhere/a.yaml".into(), "/elsewhere/a.yaml".into()))
        );
        assert_eq!(diff_names("a b.yaml"), None);
        assert_eq!(diff_names("a\nb.yaml"), None);
    }
}
