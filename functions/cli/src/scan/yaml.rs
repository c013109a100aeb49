//! YAML and JSON: the images of Kubernetes workloads and of Flux HelmReleases' values.
//!
//! - Documents: a line starting with `---` followed by a blank or the line's end opens a new
//!   one (YAML 1.2.2 §9.2, `c-directives-end`: such a line is never content, so splitting on
//!   it is exact); each document is parsed on its own with serde_norway, so one that does
//!   not parse is a [`Problem`] and the others are read. A JSON file is one document.
//! - Workloads (Kubernetes API reference, `PodSpec`, `PodTemplateSpec`): Pod (`spec`),
//!   Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController
//!   (`spec.template.spec`), CronJob (`spec.jobTemplate.spec.template.spec`), PodTemplate
//!   (`template.spec`); `kind: List` and other `*List` kinds: each of `items`. In a pod spec:
//!   `initContainers`, `containers`, `ephemeralContainers`, each container's `image`.
//! - Flux HelmRelease (`apiVersion: helm.toolkit.fluxcd.io/*`, any version): `spec.values`,
//!   walked whole: a string under a key `image` or ending in `Image` is a reference; a
//!   mapping with a string `repository` beside a `registry`, `tag`, `imageTag` or `digest`
//!   (or alone when the mapping is an `image:` value: `{repository, pullPolicy}`, the
//!   chart's default tag applying), or a string `image` beside a `registry` (ingress-nginx's `controller.image: {registry,
//!   image, tag, digest}`), is the split form charts use, composed as their helpers do:
//!   `[registry/]repository[:tag][@digest]`, and never rewritten. The registry: Bitnami's
//!   `global.imageRegistry` wins over the registry of every split with a `repository` key,
//!   whether or not it writes `registry` (never an `{registry, image}` split, which
//!   Bitnami's helper does not read), with a note naming it (bitnami/charts
//!   `bitnami/common/templates/_images.tpl`, `common.images.image`: `$registryName :=
//!   .imageRoot.registry`, then `if .global.imageRegistry` it is replaced, at commit
//!   05cddae9; later versions write `default .imageRoot.registry ((.global).imageRegistry)`,
//!   Sprig's `default` giving the global one whenever it is set), which wins over
//!   nats' `global.image.registry`, a fallback (nats-io/k8s
//!   `helm/charts/nats/templates/_helpers.tpl` `nats.image`). A whole `image:` string with
//!   no tag of its own beside an `imageTag` or `tag` is composed with it (`{{ .image }}:{{
//!   .imageTag }}`) for the scan; a rewrite replaces only the string, keeping it tagless.
//!   `spec.valuesFrom` (values from ConfigMaps and Secrets) is not read: a note says so.
//! - YAML merge keys (`<<: *anchor`, which Kubernetes applies) are applied before the pod
//!   specs are read (serde_norway's `Value::apply_merge`); an image that comes through a
//!   merge is found but not rewritten (its text is the anchor's, shared).
//! - A UTF-8 byte order mark opening the file is skipped (kubectl and PyYAML accept it).

use std::ops::Range;

use serde_norway::{Mapping, Value};

use super::{Edit, FileScan, Found, Kind, Problem, Segment, line_of};

/// The most unparsable documents reported for one file; the rest of it is then not read.
pub const MAX_PROBLEMS: usize = 100;

/// The images of a YAML or JSON text (see the module's docs).
pub fn scan(text: &str, kind: Kind) -> FileScan {
    let mut scan = FileScan::default();
    let documents = match kind {
        Kind::Json => std::iter::once(0..text.len()).collect(),
        _ => split_documents(text),
    };
    // Lines counted as the documents go (once over the text, whatever their number).
    let (mut first_line, mut counted_to) = (1, 0);
    for (index, range) in documents.iter().enumerate() {
        let doc = &text[range.clone()];
        first_line += line_of(&text[counted_to..range.start], usize::MAX) - 1;
        counted_to = range.start;
        match parse(doc, kind).and_then(|raw| merged(raw, kind)) {
            Ok((raw, merged)) => {
                let mut path = Vec::new();
                let first = scan.found.len();
                let mut walk = Objects {
                    document: index,
                    out: &mut scan.found,
                    notes: &mut scan.notes,
                };
                walk.object(merged.as_ref().unwrap_or(&raw), &mut path, 0);
                if merged.is_some() {
                    for found in &mut scan.found[first..] {
                        through_merge(found, &raw);
                    }
                }
            }
            Err(reason) => scan.problems.push(Problem {
                location: format!("document {} (line {first_line})", index + 1),
                reason: shift_lines(&reason, first_line - 1),
            }),
        }
        if scan.problems.len() >= MAX_PROBLEMS {
            scan.problems.push(Problem {
                location: format!("document {} (line {first_line})", index + 1),
                reason: format!(
                    "{MAX_PROBLEMS} documents do not parse: the rest of the file is not read"
                ),
            });
            break;
        }
    }
    scan.documents = documents;
    scan
}

/// One document's value, a byte order mark opening it skipped. Errors: the parser's
/// message (lines counted in `doc`).
pub fn parse(doc: &str, kind: Kind) -> Result<Value, String> {
    let doc = doc.strip_prefix('\u{feff}').unwrap_or(doc);
    match kind {
        Kind::Json => serde_json::from_str(doc).map_err(|e| e.to_string()),
        _ => serde_norway::from_str(doc).map_err(|e| e.to_string()),
    }
}

/// The raw value, and the value with its YAML merge keys applied when it has any (`None`
/// when it has none). Errors: a merge key whose value is not a mapping or a list of them.
///
/// Limit: a quoted `"<<"` key is a plain key for YAML 1.1 loaders (PyYAML, go-yaml v2,
/// which Kubernetes uses: the merge key is the plain `<<` resolved to `tag:yaml.org,2002:merge`),
/// but serde_norway 0.9 cannot tell it from a plain `<<`: its `Value` keeps no scalar
/// style and its event parser (`de`'s loader, `libyaml`) is private. So a quoted `"<<"` is
/// applied as a merge here too.
fn merged(raw: Value, kind: Kind) -> Result<(Value, Option<Value>), String> {
    if kind == Kind::Json || !has_merge_key(&raw, 0) {
        return Ok((raw, None));
    }
    let mut merged = raw.clone();
    merged
        .apply_merge()
        .map_err(|e| format!("a YAML merge key (<<) cannot be applied: {e}"))?;
    Ok((raw, Some(merged)))
}

fn has_merge_key(v: &Value, depth: usize) -> bool {
    if depth > 256 {
        return false;
    }
    match v {
        Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some("<<") || has_merge_key(v, depth + 1)),
        Value::Sequence(items) => items.iter().any(|v| has_merge_key(v, depth + 1)),
        Value::Tagged(t) => has_merge_key(&t.value, depth + 1),
        _ => false,
    }
}

/// A found whole string that the document without its merges applied does not hold at its
/// path came through a merge key: not rewritten (its text is the anchor's).
fn through_merge(found: &mut Found, raw: &Value) {
    let Edit::Value { path, .. } = &found.edit else {
        return;
    };
    if value_ref(raw, path).and_then(Value::as_str) != Some(found.text()) {
        found.edit = Edit::No(
            "it comes through a YAML merge key (<<: *anchor): change the anchored value it merges from".into(),
        );
    }
}

/// The documents' byte ranges: split before each `---` line; a part holding only comments,
/// blank lines or directives (`%YAML`) is joined to the next; parts with no content at all
/// (the end of the stream) are dropped.
pub fn split_documents(text: &str) -> Vec<Range<usize>> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset != 0 && is_document_start(line) {
            starts.push(offset);
        }
        offset += line.len();
    }
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut pending: Option<usize> = None;
    for (i, start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let start = pending.take().unwrap_or(*start);
        if has_content(&text[start..end]) {
            out.push(start..end);
        } else if text[start..end]
            .lines()
            .any(|l| l.trim_start().starts_with('%'))
        {
            pending = Some(start); // directives belong to the next document
        }
    }
    out
}

fn is_document_start(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Whether a part holds anything but blank lines, comments, directives and markers.
fn has_content(part: &str) -> bool {
    part.lines().any(|l| {
        let t = l.trim_start_matches('\u{feff}').trim();
        let marker = |m: &str| {
            t.strip_prefix(m)
                .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
        };
        !(t.is_empty()
            || t.starts_with('#')
            || t.starts_with('%')
            || (marker("---") && t[3..].trim().is_empty())
            || (marker("...") && t[3..].trim().is_empty()))
    })
}

/// `line N` in a parser's message, counted from the document's first line, counted from
/// the file's.
fn shift_lines(message: &str, by: usize) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        out.push_str(&rest[..at + 5]);
        rest = &rest[at + 5..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    untag(v).as_mapping()?.get(key).map(untag)
}

fn get_path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| get(v, k))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key)?.as_str()
}

/// Where a pod spec is in each workload kind.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        _ => return None,
    })
}

/// The images (and notes) of a document's Kubernetes objects.
struct Objects<'a> {
    document: usize,
    out: &'a mut Vec<Found>,
    notes: &'a mut Vec<Problem>,
}

impl Objects<'_> {
    /// The images of one Kubernetes object (and of a list's items), `path` leading to it.
    fn object(&mut self, v: &Value, path: &mut Vec<Segment>, depth: usize) {
        let v = untag(v);
        let kind = str_of(v, "kind").unwrap_or_default();
        let name = get_path(v, &["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or("(no name)");
        if kind.ends_with("List")
            && depth < 8
            && let Some(items) = get(v, "items").and_then(Value::as_sequence)
        {
            for (i, item) in items.iter().enumerate() {
                path.extend([Segment::Key("items".into()), Segment::Index(i)]);
                self.object(item, path, depth + 1);
                path.truncate(path.len() - 2);
            }
            return;
        }
        if let Some(spec_path) = pod_spec_path(kind) {
            let Some(spec) = get_path(v, spec_path) else {
                return;
            };
            let base = path.len();
            path.extend(spec_path.iter().map(|k| Segment::Key((*k).into())));
            for field in ["initContainers", "containers", "ephemeralContainers"] {
                let Some(containers) = get(spec, field).and_then(Value::as_sequence) else {
                    continue;
                };
                for (i, c) in containers.iter().enumerate() {
                    let Some(image) = get(c, "image") else {
                        continue;
                    };
                    let cname = str_of(c, "name").unwrap_or("(no name)");
                    let location = format!("{kind}/{name} {field}[{i}] {cname}");
                    path.extend([
                        Segment::Key(field.into()),
                        Segment::Index(i),
                        Segment::Key("image".into()),
                    ]);
                    self.out
                        .push(whole_string(location, image, path, self.document));
                    path.truncate(path.len() - 3);
                }
            }
            path.truncate(base);
            return;
        }
        let api = str_of(v, "apiVersion").unwrap_or_default();
        if kind == "HelmRelease" && api.starts_with("helm.toolkit.fluxcd.io/") {
            // An empty list (`valuesFrom: []`) or null reads nothing: no note.
            let values_from = get_path(v, &["spec", "valuesFrom"]).is_some_and(|f| match f {
                Value::Null => false,
                Value::Sequence(items) => !items.is_empty(),
                _ => true,
            });
            if values_from {
                self.notes.push(Problem {
                    location: format!("HelmRelease/{name} spec.valuesFrom"),
                    reason: "values from ConfigMaps or Secrets (valuesFrom) are not read: their images are not in this scan".into(),
                });
            }
            let Some(values) = get_path(v, &["spec", "values"]) else {
                return;
            };
            let nonempty = |keys: &[&str]| {
                get_path(values, keys)
                    .and_then(scalar_text)
                    .filter(|r| !r.is_empty())
            };
            let base = path.len();
            path.extend([Segment::Key("spec".into()), Segment::Key("values".into())]);
            let mut walk = ValuesWalk {
                owner: format!("HelmRelease/{name}"),
                global_image_registry: nonempty(&["global", "imageRegistry"]),
                global_fallback_registry: nonempty(&["global", "image", "registry"]),
                document: self.document,
                out: self.out,
            };
            walk.values(values, path, "values".to_owned(), 0);
            path.truncate(base);
        }
    }
}

/// A found whole-string value; a value that is not a string is unresolved.
fn whole_string(location: String, image: &Value, path: &[Segment], document: usize) -> Found {
    match image.as_str() {
        Some(s) => Found::new(
            location,
            s.to_owned(),
            Edit::Value {
                document,
                path: path.to_vec(),
            },
        ),
        None => {
            let text = scalar_text(image).unwrap_or_else(|| "(not a scalar)".into());
            let mut found = Found::new(location, text, Edit::No("not a string".into()));
            found.unresolved = Some("the image value is not a string".into());
            found
        }
    }
}

/// The non-empty text of the scalar at `key` of `m` (a number read as its text), if any.
fn text_field(m: &Mapping, key: &str) -> Option<String> {
    m.get(key)
        .map(untag)
        .and_then(scalar_text)
        .filter(|s| !s.is_empty())
}

fn scalar_text(v: &Value) -> Option<String> {
    match untag(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A HelmRelease's values, walked for images.
struct ValuesWalk<'a> {
    owner: String,
    /// Bitnami's `global.imageRegistry`: wins over an image's own `registry`.
    global_image_registry: Option<String>,
    /// nats' `global.image.registry`: used when an image gives no `registry`.
    global_fallback_registry: Option<String>,
    document: usize,
    out: &'a mut Vec<Found>,
}

/// The keys that make a string `repository` (or `image`) part of a split.
const TAG_KEYS: [&str; 2] = ["tag", "imageTag"];

impl ValuesWalk<'_> {
    fn values(&mut self, v: &Value, path: &mut Vec<Segment>, at: String, depth: usize) {
        if depth > 64 {
            return;
        }
        match untag(v) {
            Value::Mapping(m) => {
                if let Some(found) = self.split(m, &at, {
                    let last = at.rsplit('.').next().unwrap_or_default();
                    last == "image" || last.ends_with("Image")
                }) {
                    self.out.push(found);
                    return;
                }
                for (k, child) in m {
                    let Some(key) = k.as_str() else { continue };
                    path.push(Segment::Key(key.to_owned()));
                    let child_at = format!("{at}.{key}");
                    let child = untag(child);
                    let image_key = key == "image" || key.ends_with("Image");
                    match child {
                        Value::String(s) if image_key && !s.trim().is_empty() => {
                            let mut found = whole_string(
                                format!("{} {child_at}", self.owner),
                                child,
                                path,
                                self.document,
                            );
                            if key == "image" {
                                with_sibling_tag(&mut found, m);
                            }
                            self.out.push(found);
                        }
                        Value::Mapping(_) | Value::Sequence(_) => {
                            self.values(child, path, child_at, depth + 1)
                        }
                        _ => {}
                    }
                    path.pop();
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    self.values(item, path, format!("{at}[{i}]"), depth + 1);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// The split forms, composed as the charts' helpers do (see the module's docs): a string
    /// `repository` beside `registry`, `tag`, `imageTag` or `digest`, or alone (with keys
    /// such as `pullPolicy`) when the mapping is an `image:` value (`image_value`); a string
    /// `image` beside `registry`.
    fn split(&self, m: &Mapping, at: &str, image_value: bool) -> Option<Found> {
        let string = |k: &str| m.get(k).map(untag).and_then(Value::as_str);
        let has = |keys: &[&str]| keys.iter().any(|k| m.contains_key(*k));
        let (repository, key) = match (string("repository"), string("image")) {
            (Some(r), _)
                if !r.trim().is_empty()
                    && (image_value || has(&["registry", "tag", "imageTag", "digest"])) =>
            {
                (r, "repository")
            }
            (_, Some(i)) if has(&["registry"]) => (i, "image"),
            _ => return None,
        };
        let field = |k: &str| text_field(m, k);
        let tag = TAG_KEYS.iter().find_map(|k| field(k));
        let digest = field("digest");
        // Bitnami's `global.imageRegistry` wins over the image's own registry whether or
        // not the values write `registry` (bitnami/charts `bitnami/common/templates/
        // _images.tpl` `common.images.image`: `$registryName := default
        // .imageRoot.registry ((.global).imageRegistry)`, Sprig's `default D V` giving V
        // whenever V is set). The helper reads `.imageRoot.repository`, so every split
        // with a `repository` key gets it; an `{registry, image}` split (ingress-nginx) is
        // another chart's, whose templates never read it.
        // A repository that names its own host (`ghcr.io/o/app`) is not Bitnami's (its
        // repositories never do): `helm create`-style charts compose `repository:tag` and read
        // no global, so the global is not put in front of it.
        let names_a_host = repository
            .split('/')
            .next()
            .is_some_and(|first| first.contains(['.', ':']) || first == "localhost");
        let global = if key == "repository" && !names_a_host {
            self.global_image_registry.clone()
        } else {
            None
        };
        let from_global = global.is_some();
        let registry = global
            .or(field("registry"))
            .or(self.global_fallback_registry.clone());
        let mut image = match &registry {
            Some(r) => format!("{}/{repository}", r.trim_end_matches('/')),
            None => repository.to_owned(),
        };
        match (&digest, &tag) {
            (Some(d), _) => image = format!("{image}@{d}"),
            (None, Some(t)) => image = format!("{image}:{t}"),
            (None, None) => {}
        }
        let mut found = Found::new(
            format!("{} {at}", self.owner),
            image,
            Edit::No(format!(
                "split Helm values (registry/{key}/tag): not rewritten; `ptc map --format helm-values` prints the values to set"
            )),
        );
        let mut notes = Vec::new();
        if from_global {
            notes.push(
                "registry from the values' global.imageRegistry (Bitnami's common.images.image)",
            );
        }
        if digest.is_none() && tag.is_none() {
            notes.push("no tag in the values: the chart's default tag applies (often its appVersion); not in the watch list");
            found.exact = false;
        }
        if !notes.is_empty() {
            found.note = Some(notes.join("; "));
        }
        Some(found)
    }
}

/// A whole `image:` string with no tag or digest of its own, beside an `imageTag` or `tag`
/// (and `digest`): the image is composed with them as the chart writes `{{ .image }}:{{
/// .imageTag }}`; the string itself (tagless) is what a rewrite replaces.
fn with_sibling_tag(found: &mut Found, m: &Mapping) {
    if found.unresolved.is_some() || !super::written_suffix(&found.image).is_empty() {
        return;
    }
    let field = |k: &str| text_field(m, k);
    let tag = TAG_KEYS.iter().find_map(|k| field(k));
    let digest = field("digest");
    if tag.is_none() && digest.is_none() {
        return;
    }
    let mut image = found.image.clone();
    if let Some(t) = &tag {
        image = format!("{image}:{t}");
    }
    if let Some(d) = &digest {
        image = format!("{image}@{d}");
    }
    found.written = Some(std::mem::replace(&mut found.image, image));
    found.note =
        Some("the tag from the values beside it; a rewrite keeps the string tagless".into());
}

/// What [`rewrite_document`] gives: the byte ranges (in the document) and their new texts,
/// and for each value asked, `Ok(())` when replaced or why not.
pub type DocumentRewrite = (Vec<(Range<usize>, String)>, Vec<Result<(), String>>);

/// The most differing values [`diff_strings`] collects.
const MAX_DIFFS: usize = 100;

/// The byte ranges (in `doc`) and new texts that replace, in one YAML or JSON document, the
/// whole-string values `asked` gives as `(path, old, new)`: each `key: old` line (the key
/// being the path's last, the value plain, single- or double-quoted with no escapes, in
/// block or JSON style) gets `new` in place of `old`. The document's lines are read once,
/// each matched against the values asked through a map (linear in the document and the
/// values asked; at most twice, see below).
///
/// Checked: the document, so changed, parses to its old value with exactly the asked
/// strings that were replaced changed. A value not written on such a line (flow style, a
/// `!!str` tag, an alias, a multi-line or escaped string) is refused with its reason and
/// the others are still replaced. When replacing a text's lines would change another value
/// too (the same text under that key in a block scalar, or an anchored value merged or
/// aliased elsewhere), the values with that text are refused, the reason naming it, and the
/// document is tried once more without them. Errors (then nothing in the document is
/// changed): the document does not parse, or the second try still changes something else.
pub fn rewrite_document(
    doc: &str,
    kind: Kind,
    asked: &[(Vec<Segment>, String, String)],
) -> Result<DocumentRewrite, String> {
    use std::collections::{BTreeSet, HashMap};
    let original = parse(doc, kind)?;
    // key -> old text -> new text.
    let mut wanted: HashMap<&str, HashMap<&str, &str>> = HashMap::new();
    for (path, old, new) in asked {
        if value_ref(&original, path).and_then(Value::as_str) != Some(old.as_str()) {
            return Err(format!("`{old}` is not at its scanned place any more"));
        }
        if let Some(Segment::Key(key)) = path.last() {
            wanted
                .entry(key.as_str())
                .or_default()
                .entry(old.as_str())
                .or_insert(new.as_str());
        }
    }
    let mut guilty: BTreeSet<&str> = BTreeSet::new();
    for round in 0..2 {
        let attempt = attempt(doc, kind, &original, asked, &wanted, &guilty)?;
        let (spans, mut results, reparsed, expected) = attempt;
        if reparsed == expected {
            for ((_, old, _), result) in asked.iter().zip(&mut results) {
                if guilty.contains(old.as_str()) {
                    *result = Err(format!(
                        "`{old}` is also written under that key in another value of the document (a block scalar, or an anchored value merged or aliased elsewhere), which a rewrite of its line would change too: change it by hand"
                    ));
                }
            }
            return Ok((spans, results));
        }
        if round == 1 {
            break;
        }
        // The texts whose new value shows up where nothing was asked: refused, and once more.
        let mut diffs = Vec::new();
        diff_strings(&reparsed, &expected, &mut diffs, 0);
        for olds in wanted.values() {
            for (old, new) in olds {
                if diffs.iter().any(|d| d.contains(new)) {
                    guilty.insert(old);
                }
            }
        }
        if guilty.is_empty() {
            break;
        }
    }
    let olds: Vec<&str> = guilty.iter().copied().take(3).collect();
    Err(format!(
        "replacing the lines would change another value of the document too{}: nothing in this document rewritten",
        if olds.is_empty() {
            String::new()
        } else {
            format!(" (through the lines of `{}`)", olds.join("`, `"))
        }
    ))
}

/// One try of [`rewrite_document`], leaving out the lines of the `excluded` texts: the
/// spans, each asked value's result, the document reparsed, and the value it should be.
#[allow(clippy::type_complexity)]
fn attempt(
    doc: &str,
    kind: Kind,
    original: &Value,
    asked: &[(Vec<Segment>, String, String)],
    wanted: &std::collections::HashMap<&str, std::collections::HashMap<&str, &str>>,
    excluded: &std::collections::BTreeSet<&str>,
) -> Result<
    (
        Vec<(Range<usize>, String)>,
        Vec<Result<(), String>>,
        Value,
        Value,
    ),
    String,
> {
    let mut spans = Vec::new();
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        for (key, olds) in wanted {
            if let Some(range) = scalar_after_key(line, key)
                && let Some(new) = olds.get(&line[range.clone()])
            {
                if !excluded.contains(&line[range.clone()]) {
                    spans.push((
                        (range.start + offset)..(range.end + offset),
                        (*new).to_owned(),
                    ));
                }
                break;
            }
        }
        offset += line.len();
    }
    let mut changed = String::with_capacity(doc.len());
    let mut at = 0;
    for (range, new) in &spans {
        changed.push_str(&doc[at..range.start]);
        changed.push_str(new);
        at = range.end;
    }
    changed.push_str(&doc[at..]);
    let reparsed =
        parse(&changed, kind).map_err(|e| format!("the rewritten document does not parse: {e}"))?;
    let mut expected = original.clone();
    let mut results = Vec::with_capacity(asked.len());
    for (path, old, new) in asked {
        let now = value_ref(&reparsed, path).and_then(Value::as_str);
        if now == Some(new.as_str()) {
            if let Some(slot) = value_at(&mut expected, path) {
                *slot = Value::String(new.clone());
            }
            results.push(Ok(()));
        } else if now == Some(old.as_str()) {
            results.push(Err(format!(
                "`{old}` is not written as a plain or quoted string on its own block-style `key: value` line (flow style, a !!tag, an alias, a multi-line or escaped string): change it by hand"
            )));
        } else {
            return Err(format!(
                "replacing `{old}` would not give `{new}` where it was scanned: nothing in this document rewritten"
            ));
        }
    }
    Ok((spans, results, reparsed, expected))
}

/// The strings (and keys) of `a` where it differs from `b`, at most [`MAX_DIFFS`].
fn diff_strings(a: &Value, b: &Value, out: &mut Vec<String>, depth: usize) {
    if out.len() >= MAX_DIFFS || depth > 256 || a == b {
        return;
    }
    match (untag(a), untag(b)) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff_strings(v, w, out, depth + 1),
                    None => out.extend(k.as_str().map(str::to_owned)),
                }
            }
        }
        (Value::Sequence(x), Value::Sequence(y)) if x.len() == y.len() => {
            for (v, w) in x.iter().zip(y) {
                diff_strings(v, w, out, depth + 1);
            }
        }
        (Value::String(x), _) => out.push(x.clone()),
        _ => out.push(String::new()),
    }
}

fn value_at<'a>(v: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    let mut v = v;
    for seg in path {
        while let Value::Tagged(t) = v {
            v = &mut t.value;
        }
        v = match seg {
            Segment::Key(k) => v.as_mapping_mut()?.get_mut(k.as_str())?,
            Segment::Index(i) => v.as_sequence_mut()?.get_mut(*i)?,
        };
    }
    while let Value::Tagged(t) = v {
        v = &mut t.value;
    }
    Some(v)
}

fn value_ref<'a>(v: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut v = untag(v);
    for seg in path {
        v = match seg {
            Segment::Key(k) => v.as_mapping()?.get(k.as_str())?,
            Segment::Index(i) => v.as_sequence()?.get(*i)?,
        };
        v = untag(v);
    }
    Some(v)
}

/// The range of the scalar after `key:` on a block-style line (`  - key: value  # c`,
/// `key: "value"`, `"key": "value",`), inside its quotes; `None` for anything else.
fn scalar_after_key(line: &str, key: &str) -> Option<Range<usize>> {
    let body = line.trim_end_matches(['\n', '\r']);
    let mut at = 0;
    loop {
        let rest = &body[at..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        at += rest.len() - trimmed.len();
        if let Some(after) = trimmed.strip_prefix('-')
            && after.starts_with([' ', '\t'])
        {
            at += 1;
            continue;
        }
        break;
    }
    let rest = &body[at..];
    let key_len = [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
        .into_iter()
        .find(|k| rest.starts_with(k.as_str()))?
        .len();
    at += key_len;
    let rest = &body[at..];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let colon = trimmed.strip_prefix(':')?;
    at += rest.len() - trimmed.len() + 1;
    let value = colon.trim_start_matches([' ', '\t']);
    if value.len() == colon.len() && !value.starts_with(['"', '\'']) {
        return None; // `key:value` is not a mapping entry in YAML's block style
    }
    at += colon.len() - value.len();
    let tail_ok = |tail: &str| {
        let t = tail.trim_start_matches([' ', '\t']);
        t.is_empty() || t == "," || t.starts_with('#') && tail.len() != t.len()
    };
    match value.chars().next()? {
        q @ ('"' | '\'') => {
            let inner = &value[1..];
            let close = inner.find(q)?;
            let content = &inner[..close];
            if content.contains('\\') && q == '"' {
                return None;
            }
            tail_ok(&inner[close + 1..]).then_some((at + 1)..(at + 1 + close))
        }
        c if "[{&*!|>%@`,?".contains(c) => None,
        _ => {
            let end = value
                .find(" #")
                .or_else(|| value.find("\t#"))
                .unwrap_or(value.len());
            let plain = value[..end].trim_end_matches([' ', '\t']);
            (!plain.is_empty() && !plain.contains(": ")).then_some(at..at + plain.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_on_marker_lines_only() {
        let text = "# c\n---\na: 1\n---  # x\nb: |\n  --- not a marker\n...\n---\n";
        let docs = split_documents(text);
        let parts: Vec<&str> = docs.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(
            parts,
            ["---\na: 1\n", "---  # x\nb: |\n  --- not a marker\n...\n"]
        );
    }

    #[test]
    fn scalar_forms() {
        let line = "      - image: \"nginx:1.25\" # pinned\r\n";
        assert_eq!(
            &line[scalar_after_key(line, "image").unwrap()],
            "nginx:1.25"
        );
        let line = "  image: nginx:1.25  # c\n";
        assert_eq!(
            &line[scalar_after_key(line, "image").unwrap()],
            "nginx:1.25"
        );
        let line = "        \"image\": \"quay.io/a/b:v1\",\n";
        assert_eq!(
            &line[scalar_after_key(line, "image").unwrap()],
            "quay.io/a/b:v1"
        );
        assert!(scalar_after_key("  image: {a: b}\n", "image").is_none());
        assert!(scalar_after_key("  imagePullPolicy: x\n", "image").is_none());
        assert!(scalar_after_key("  image: *ref\n", "image").is_none());
    }

    #[test]
    fn rewrite_refuses_a_text_also_written_elsewhere_and_keeps_the_others() {
        let path = |i: usize| {
            vec![
                Segment::Key("spec".into()),
                Segment::Key("containers".into()),
                Segment::Index(i),
                Segment::Key("image".into()),
            ]
        };
        let asked = [(path(0), "nginx".to_owned(), "cache/nginx".to_owned())];
        let doc = "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: nginx  # c\n";
        let (spans, results) = rewrite_document(doc, Kind::Yaml, &asked).unwrap();
        assert_eq!(results, [Ok(())]);
        assert_eq!(spans.len(), 1);
        assert_eq!(&doc[spans[0].0.clone()], "nginx");
        // The same text in a block scalar of the same document: refused, nothing changed.
        let doc = "kind: Pod\nmetadata:\n  annotations:\n    note: |\n      image: nginx\nspec:\n  containers:\n    - image: nginx\n";
        let (spans, results) = rewrite_document(doc, Kind::Yaml, &asked).unwrap();
        assert!(spans.is_empty());
        let err = results[0].as_ref().unwrap_err();
        assert!(err.contains("`nginx` is also written"), "{err}");
        // The same, with another image beside it: that one is still replaced.
        let asked2 = [
            asked[0].clone(),
            (
                vec![
                    Segment::Key("spec".into()),
                    Segment::Key("containers".into()),
                    Segment::Index(1),
                    Segment::Key("image".into()),
                ],
                "quay.io/a/b:1".to_owned(),
                "cache/quay/a/b:1".to_owned(),
            ),
        ];
        let doc2 = format!("{doc}    - image: quay.io/a/b:1\n");
        let (spans, results) = rewrite_document(&doc2, Kind::Yaml, &asked2).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(&doc2[spans[0].0.clone()], "quay.io/a/b:1");
        assert!(
            results[0]
                .as_ref()
                .unwrap_err()
                .contains("`nginx` is also written")
        );
        assert_eq!(results[1], Ok(()));
        // Flow style: not located, refused with its reason.
        let doc = "kind: Pod\nspec: {containers: [{image: nginx}]}\n";
        let (spans, results) = rewrite_document(doc, Kind::Yaml, &asked).unwrap();
        assert!(spans.is_empty());
        assert!(results[0].as_ref().unwrap_err().contains("flow style"));
    }

    #[test]
    fn unparsable_documents_stop_at_the_bound() {
        let text = "a: [\n---\n".repeat(1000);
        let scan = scan(&text, Kind::Yaml);
        assert_eq!(scan.problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(scan.problems[1].location, "document 2 (line 2)");
        assert!(
            scan.problems[MAX_PROBLEMS]
                .reason
                .contains("the rest of the file is not read")
        );
    }

    #[test]
    fn errors_name_the_file_line() {
        let text = "a: 1\n---\nb: [\n";
        let scan = scan(text, Kind::Yaml);
        assert_eq!(scan.problems.len(), 1);
        assert_eq!(scan.problems[0].location, "document 2 (line 2)");
        assert!(
            scan.problems[0].reason.contains("line 4"),
            "{:?}",
            scan.problems
        );
    }
}
