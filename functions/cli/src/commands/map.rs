//! `ptc map`: upstream references → cached image URIs, as a table, JSON, a watch list, or
//! one of the formats teams point clusters with ([`crate::formats`]).

use std::io::Write;
use std::path::{Component, Path};

use ptc_core::adoption::{self, Classified, ImageClass};
use ptc_core::rules::RuleSet;
use serde::Serialize;

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::formats::{self, Format, Input, OutputFile};
use crate::output::{self, OutputFormat};
use crate::routing::{self, RoutingArgs};

/// `ptc map [--rule PREFIX=UPSTREAM_URL]... [--registry HOST | --account ID] [--format FORMAT
/// [--out-dir DIR]] [REF]...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--rule`, `--registry`, `--account`: what to route with.
    #[command(flatten)]
    pub routing: RoutingArgs,
    /// Print the routing as a file teams use (helm-values and kustomize-images need references).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// With --format: write the files under DIR (created) instead of stdout; a file there that
    /// differs is not replaced.
    #[arg(long, value_name = "DIR", requires = "format")]
    pub out_dir: Option<String>,
    /// With --out-dir: replace files that exist and differ.
    #[arg(long, requires = "out_dir")]
    pub force: bool,
    /// References as people write them (nginx:1.25, quay.io/x/y:v1); `-` reads them from stdin.
    #[arg(value_name = "REF")]
    pub references: Vec<String>,
}

/// Map the references and print one [`Mapping`] each (`--output table|json`), the routable
/// ones' upstream references (`--output watch-list`), or the rules and references in
/// `--format`. AWS is reached only for what the flags and the settings do not give
/// ([`routing::resolve`]).
///
/// Errors: [`CliError::Usage`] (no reference where one is needed), [`routing::resolve`]'s,
/// [`CliError::Stdin`] (each before any output); [`Findings::UnmappedReferences`] when a
/// reference cannot be mapped (table, JSON, watch list) or is invalid (formats, whose output
/// comments out what is not routable and exits 0 otherwise); [`CliError::File`] for
/// `--out-dir`; [`CliError::Output`].
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    if args.format.is_some() && ctx.output() != OutputFormat::Table {
        return Err(CliError::Usage(
            "--format prints its own file format: --output json or watch-list cannot go with it"
                .to_owned(),
        ));
    }
    let from_stdin = args.references.iter().any(|r| r == "-");
    let inputs = routing::expand_stdin(args.references)?;
    let needs_refs = args.format.is_none_or(Format::per_reference);
    if needs_refs && inputs.is_empty() {
        return Err(CliError::Usage(match (args.format, from_stdin) {
            (_, true) => "-: stdin held no reference".to_owned(),
            (Some(_), false) => {
                "this --format is one entry per reference: give references (or - for stdin)"
                    .to_owned()
            }
            (None, false) => {
                "give one or more references (or - for stdin), or --format for the rules' routing"
                    .to_owned()
            }
        }));
    }
    let routing = routing::resolve(ctx, &args.routing).await?;
    let images = classify_all(&routing.rules, &routing.registry_host, &inputs);
    if let Some(format) = args.format {
        return print_format(
            &routing,
            format,
            &images,
            args.out_dir.as_deref(),
            args.force,
        );
    }
    let mappings: Vec<Mapping> = images.iter().map(Mapping::from).collect();
    let failed = mappings.iter().filter(|m| m.failed()).count();
    if ctx.output() == OutputFormat::WatchList {
        let mut out = std::io::stdout().lock();
        output::watch_list(&mut out, &images).map_err(CliError::Output)?;
    } else {
        ctx.print(&mappings, |out| print(out, &mappings))?;
    }
    match failed {
        0 => Ok(()),
        failed => Err(CliError::Findings(Findings::UnmappedReferences(failed))),
    }
}

/// Every reference classified against the rules ([`adoption::classify`]), in order.
pub fn classify_all(rules: &RuleSet, registry_host: &str, inputs: &[String]) -> Vec<Classified> {
    inputs
        .iter()
        .map(|i| adoption::classify(i, rules, registry_host))
        .collect()
}

/// `--format`: render, then stdout (one file as is; several, each after a `# ==> path <==`
/// line) or `--out-dir`.
fn print_format(
    routing: &routing::Routing,
    format: Format,
    images: &[Classified],
    out_dir: Option<&str>,
    force: bool,
) -> Result<(), CliError> {
    let (mirrors, unused_rules) = adoption::mirrors(&routing.rules);
    let input = Input {
        registry_host: &routing.registry_host,
        mirrors: &mirrors,
        unused_rules: &unused_rules,
        images,
    };
    let files = formats::render(format, &input).map_err(CliError::Usage)?;
    match out_dir {
        Some(dir) => write_files(Path::new(dir), &files, force)?,
        None => {
            let mut out = std::io::stdout().lock();
            let many = files.len() > 1;
            for file in &files {
                if many {
                    writeln!(out, "# ==> {} <==", file.path).map_err(CliError::Output)?;
                }
                out.write_all(file.text.as_bytes())
                    .map_err(CliError::Output)?;
            }
        }
    }
    let left: Vec<&Classified> = images.iter().filter(|i| !i.is_routable()).collect();
    for image in &left {
        eprintln!(
            "ptc: {}: {} ({}), left as it is",
            output::escape_controls(&image.reference),
            image.class,
            output::escape_controls(image.reason.as_deref().unwrap_or_default())
        );
    }
    match left
        .iter()
        .filter(|i| i.class == ImageClass::Invalid)
        .count()
    {
        0 => Ok(()),
        n => Err(CliError::Findings(Findings::UnmappedReferences(n))),
    }
}

/// What is at one output path before anything is written.
enum Existing {
    /// Nothing: the file is created.
    Nothing,
    /// A regular file with this output's content: left as it is.
    Same,
    /// A regular file with other content, and its permissions: replaced only with `--force`,
    /// the new file given the old one's mode.
    Differs(std::fs::Permissions),
}

/// Write each file under `dir`, creating directories. Nothing someone else wrote is lost,
/// and nothing is written unless everything can be:
/// - first every path is checked without following links (`symlink_metadata`): a symbolic
///   link, a directory, a FIFO or a device at an output path or at a directory on the way is
///   refused, `--force` or not (it would be followed, opened or block); a regular file with
///   other content is refused without `force`; one with the same content is left as it is;
/// - then every new content is written to a new temporary file beside its path
///   (`create_new`: never a file or link already there) and only when all are written, each
///   is renamed over its path (a rename replaces the name, it never writes through a link).
///
/// Errors: [`CliError::File`] naming the first path refused (and how many), or the I/O
/// error; a path that would leave `dir` is refused (the formats make none).
fn write_files(dir: &Path, files: &[OutputFile], force: bool) -> Result<(), CliError> {
    let file_err = |path: &Path, reason: String| CliError::File {
        path: path.display().to_string(),
        reason,
    };
    // 1. Check everything.
    let mut plan = Vec::new();
    let mut differing = Vec::new();
    for file in files {
        let rel = Path::new(&file.path);
        let path = dir.join(rel);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(file_err(&path, "not a path inside --out-dir".to_owned()));
        }
        let mut on_the_way = dir.to_path_buf();
        let components: Vec<_> = rel.components().collect();
        for c in &components[..components.len() - 1] {
            on_the_way.push(c);
            match std::fs::symlink_metadata(&on_the_way) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(file_err(
                        &on_the_way,
                        "not a directory (a link or a file): nothing was written".to_owned(),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(file_err(&on_the_way, e.to_string())),
            }
        }
        let existing = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Existing::Nothing,
            Err(e) => return Err(file_err(&path, e.to_string())),
            Ok(meta) if !meta.file_type().is_file() => {
                return Err(file_err(
                    &path,
                    "not a regular file (a link, a directory or a special file): not replaced, --force or not; nothing was written".to_owned(),
                ));
            }
            Ok(meta) => match std::fs::read(&path) {
                Ok(old) if old == file.text.as_bytes() => Existing::Same,
                Ok(_) => Existing::Differs(meta.permissions()),
                Err(e) => return Err(file_err(&path, e.to_string())),
            },
        };
        if matches!(existing, Existing::Differs(_)) && !force {
            differing.push(path.display().to_string());
        }
        plan.push((path, file, existing));
    }
    if let Some(first) = differing.first() {
        return Err(CliError::File {
            path: first.clone(),
            reason: format!(
                "exists with other content, not replaced ({} such files; nothing was written): --force replaces them",
                differing.len()
            ),
        });
    }
    // 2. Every new content in a new temporary file beside its path. What is told on stderr
    // never stops the run (a closed or full stderr is not an error of the files).
    let tell = |text: String| {
        let _ = writeln!(std::io::stderr(), "ptc: {text}");
    };
    let mut temps: Vec<(std::path::PathBuf, &Path)> = Vec::new();
    let cleanup = |temps: &[(std::path::PathBuf, &Path)]| {
        for (temp, _) in temps {
            let _ = std::fs::remove_file(temp);
        }
    };
    for (path, file, existing) in &plan {
        if matches!(existing, Existing::Same) {
            tell(format!("{} unchanged", path.display()));
            continue;
        }
        let parent = path.parent().unwrap_or(dir);
        let written = std::fs::create_dir_all(parent).and_then(|()| {
            let (temp, mut out) = new_temporary_file(path)?;
            temps.push((temp, path.as_path()));
            if let Existing::Differs(permissions) = existing {
                out.set_permissions(permissions.clone())?;
            }
            out.write_all(file.text.as_bytes())?;
            out.sync_all()
        });
        if let Err(e) = written {
            cleanup(&temps);
            return Err(file_err(path, format!("{e}; nothing was written")));
        }
    }
    // 3. All written: each renamed over its path.
    for (i, (temp, path)) in temps.iter().enumerate() {
        if let Err(e) = std::fs::rename(temp, path) {
            cleanup(&temps[i..]);
            return Err(file_err(path, e.to_string()));
        }
        tell(format!("wrote {}", path.display()));
    }
    Ok(())
}

/// A new file beside `path`, `.<name>.ptc-map.<pid>.<n>`, made with `create_new` (`O_EXCL`:
/// never a file or a link already there; a name left by an earlier run, or another process
/// with the same PID in another container, is skipped), mode 0644. Errors: the I/O error, or
/// no free name in 100 tries.
fn new_temporary_file(path: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    for attempt in 0..100 {
        let temp = parent.join(format!(".{name}.ptc-map.{}.{attempt}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "no free temporary name beside {}",
        path.display()
    )))
}

/// Two columns: the reference as given, its cached image URI or `error: <why>`.
pub fn print(out: &mut impl Write, mappings: &[Mapping]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = mappings
        .iter()
        .map(|m| match (&m.uri, &m.error) {
            (Some(uri), _) => vec![m.reference.clone(), uri.clone()],
            (None, error) => vec![
                m.reference.clone(),
                format!("error: {}", error.as_deref().unwrap_or_default()),
            ],
        })
        .collect();
    output::table(out, &["REFERENCE", "CACHED IMAGE"], &rows)
}

/// One line of `ptc map`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// As the user wrote it.
    pub reference: String,
    /// Where it stands ([`ImageClass`]): `routable`, `already-cached`, `aws-owned`,
    /// `no-rule`, `unsupported`, `invalid`.
    pub class: ImageClass,
    /// The cached repository (`<prefix>/<upstream path>`), when it maps.
    pub repository: Option<String>,
    /// The tag (`latest` when neither tag nor digest is given), when it maps.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), when given and it maps.
    pub digest: Option<String>,
    /// The cached image URI on the registry host, when it maps (for a reference that already
    /// names the cache, itself).
    pub uri: Option<String>,
    /// Why it does not map: an unreadable reference, no rule for its registry, an upstream
    /// ECR cannot cache, AWS's own registries.
    pub error: Option<String>,
}

impl Mapping {
    /// The reference could not be mapped.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

impl From<&Classified> for Mapping {
    fn from(c: &Classified) -> Self {
        let maps = matches!(c.class, ImageClass::Routable | ImageClass::AlreadyCached);
        let uri = match c.class {
            ImageClass::Routable => c.uri.clone(),
            ImageClass::AlreadyCached => Some(c.reference.clone()),
            _ => None,
        };
        Self {
            reference: c.reference.clone(),
            class: c.class,
            repository: c.repository.clone().filter(|_| maps),
            tag: c.tag.clone().filter(|_| maps),
            digest: c.digest.clone().filter(|_| maps),
            uri,
            error: if maps { None } else { c.reason.clone() },
        }
    }
}

#[cfg(test)]
mod tests {
    use ptc_core::rules::PtcRule;

    use super::*;

    /// A name an earlier run left (the same PID in another container) never blocks a write.
    #[test]
    fn a_temporary_name_left_behind_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.toml");
        let left = dir
            .path()
            .join(format!(".hosts.toml.ptc-map.{}.0", std::process::id()));
        std::fs::write(&left, "left by an earlier run").unwrap();
        let (temp, _) = new_temporary_file(&path).unwrap();
        assert_ne!(temp, left);
        assert_eq!(
            std::fs::read_to_string(&left).unwrap(),
            "left by an earlier run"
        );
    }

    #[test]
    fn maps_good_references_and_reports_bad_ones() {
        let rules = RuleSet::new(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("quay", "quay.io").unwrap(),
        ]);
        let inputs: Vec<String> = ["nginx:1.25", "gcr.io/x/y", "Bad", "quay.io/a/b"]
            .map(String::from)
            .to_vec();
        let out: Vec<Mapping> = classify_all(
            &rules,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            &inputs,
        )
        .iter()
        .map(Mapping::from)
        .collect();
        assert_eq!(
            out[0].uri.as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.25")
        );
        assert_eq!(
            out[0].repository.as_deref(),
            Some("docker-hub/library/nginx")
        );
        assert!(out[1].error.as_deref().unwrap().contains("not supported"));
        assert!(out[2].error.as_deref().unwrap().contains("lowercase"));
        assert_eq!(out[3].tag.as_deref(), Some("latest"));
        assert_eq!(out.iter().filter(|m| m.failed()).count(), 2);
    }
}
